"""The whole sign-in flow in a real browser: Streamlit's st.login against a local OIDC provider
(oidc-provider-mock, started here), roles from the server's secrets.toml, sign-out, and the audit log."""
from __future__ import annotations

import json
import secrets

import pytest

from tests.browser.conftest import AUTH_SECRETS, _free_port, screenshot, server_env, start_server, stop_server
from tests.browser.test_pages import no_exception, wait_for_app

pytestmark = pytest.mark.browser

SECRETS = AUTH_SECRETS + """
[rxdash.roles]
committee = ["group:quality"]
clinician = ["jordan.novak@example.org"]

[rxdash.clinicians]
"jordan.novak@example.org" = "D0002"
"""


@pytest.fixture(scope="module")
def signed_server(sample_duckdb, tmp_path_factory):
    """A local OIDC provider with one predefined committee member, and `rxdash serve` configured to use it.
    Yields (base URL, audit log path)."""
    from oidc_provider_mock import User, run_server_in_thread

    # Predefined accounts (a button each on the provider's page). Only a verified e-mail counts (issue #29).
    users = [User(sub="qc@example.org", claims={"email": "qc@example.org", "email_verified": True,
                                                 "groups": ["quality"]}),
             User(sub="jordan.novak@example.org", claims={"email": "jordan.novak@example.org",
                                                           "email_verified": True}),
             # Two hostile accounts: an e-mail claim spelling a group entry, and a clinician's address in other
             # letter case that the provider has not verified.
             User(sub="spoof-group", claims={"email": "group:quality", "email_verified": True}),
             User(sub="spoof-clinician", claims={"email": "Jordan.Novak@Example.org", "email_verified": False})]
    with run_server_in_thread(user_claims=users) as oidc:
        port = _free_port()
        folder = tmp_path_factory.mktemp("signed")
        (folder / ".streamlit").mkdir()
        (folder / ".streamlit" / "secrets.toml").write_text(
            SECRETS.format(port=port, cookie=secrets.token_hex(32), oidc_port=oidc.server_port))
        audit = folder / "audit.jsonl"
        base = f"http://localhost:{port}"
        proc, log = start_server(["--db", sample_duckdb, "--port", str(port)], server_env(audit), folder,
                                 folder / "server.log", base)
        yield base, audit
        stop_server(proc, log)


def sign_in(page, base: str) -> None:
    page.goto(base + "/")
    wait_for_app(page)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/oauth2/authorize**", timeout=30_000)        # the provider's page


def test_committee_member_signs_in_sees_their_pages_and_signs_out(signed_server, page):
    base, audit = signed_server
    sign_in(page, base)
    page.get_by_role("button", name="qc@example.org").click()           # the predefined user
    page.wait_for_url(base + "/**", timeout=30_000)
    # The address is shown escaped (analysis.display.md): a word joiner after "@" keeps it from becoming a link.
    page.get_by_text("Signed in as qc@\u2060example.org (committee)").wait_for(timeout=60_000)
    wait_for_app(page)
    nav = page.locator("[data-testid=stSidebarNav]").inner_text()
    assert "Overview" in nav and "Clinician variation" in nav and "Tapers" in nav
    assert "Clinician profile" not in nav and "Data quality" not in nav  # not registered for this role
    page.locator("[data-testid=stMetric]").nth(6).wait_for(timeout=60_000)   # the seven headline figures
    assert "Local demo" not in page.content()
    no_exception(page)
    screenshot(page, "signed-in-committee")

    page.goto(base + "/profile")                                        # a page the role may not open
    wait_for_app(page)
    page.locator("[data-testid=stMetric]").first.wait_for(timeout=60_000)   # their first page instead
    assert page.get_by_text("your prescribing beside your peers").count() == 0
    no_exception(page)

    page.goto(base + "/")
    wait_for_app(page)
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click()             # the provider ends its session too
    page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
    assert page.locator("[data-testid=stMetric]").count() == 0
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert {"event": "sign-in", "user": "qc@example.org", "role": "committee"}.items() <= entries[0].items()


def test_clinician_signs_in_to_their_own_named_profile(signed_server, page):
    base, audit = signed_server
    sign_in(page, base)
    page.get_by_role("button", name="jordan.novak@example.org").click()
    page.wait_for_url(base + "/**", timeout=30_000)
    page.get_by_text("Jordan Novak: your prescribing beside your peers").wait_for(timeout=60_000)
    wait_for_app(page)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 1", timeout=60_000)
    nav = page.locator("[data-testid=stSidebarNav]").inner_text()
    assert "Clinician profile" in nav and "Overview" not in nav
    no_exception(page)
    screenshot(page, "signed-in-clinician")
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert any(e["event"] == "profile view" and e["user"] == "jordan.novak@example.org" for e in entries)


@pytest.mark.parametrize("account, user", [("spoof-group", "group:quality"),   # a verified (if odd) address
                                           ("spoof-clinician", "sub:spoof-clinician")])   # not verified: the subject
def test_claims_the_provider_does_not_vouch_for_give_no_role(signed_server, page, account, user):
    """Issue #29, item 1: an e-mail claim reading "group:quality" gave the committee role; an unverified address
    in other letter case gave a clinician's role. Both now reach the no-access page and nothing else."""
    base, audit = signed_server
    sign_in(page, base)
    page.get_by_role("button", name=account).click()
    page.wait_for_url(base + "/**", timeout=30_000)
    page.get_by_text("No access yet").wait_for(timeout=60_000)
    wait_for_app(page)
    assert page.locator("[data-testid=stMetric]").count() == 0 and page.locator(".js-plotly-plot").count() == 0
    assert "Jordan Novak" not in page.content()
    assert f"You are signed in as {user}," in page.get_by_text("You are signed in as").inner_text()
    no_exception(page)
    screenshot(page, f"no-role-{account}")
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert {"event": "sign-in", "user": user, "role": "none"}.items() <= entries[-1].items()
