"""Sign-in and roles: who may open which page and see which names, with faked signed-in users in AppTest
(the real app script and the real pages on the worked example's database), and the audit of it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analysis import access
from analysis.display import md
from dashboard import pages
from tests.test_app import H1, _page, label, worked, worked_db  # noqa: F401  (fixtures)

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
# The worked example's clinicians are D1-D4, named A-D (tests/test_measures.py).
CONFIG = {"roles": {"leader": ["Lead@Example.org"], "committee": ["group:quality"], "clinician": ["c@example.org"],
                    "admin": ["it@example.org", "lead@example.org"]},
          "clinicians": {"c@example.org": "D3"}}
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32, "client_id": "rxdash",
        "client_secret": "s", "server_metadata_url": "http://localhost:9/.well-known/openid-configuration"}
# Who is who, and the pages each may open (in the navigation's order).
PEOPLE = {
    "leader": ("lead@example.org", [], ["overview", "variation", "tapers", "profile", "data-quality", "methods"]),
    "committee": ("q@example.org", ["quality"], ["overview", "variation", "tapers", "methods"]),
    "clinician": ("c@example.org", [], ["profile", "methods"]),
    "admin": ("it@example.org", [], ["data-quality", "methods"]),
}


@pytest.fixture
def audit_log(monkeypatch, tmp_path) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("RXDASH_AUDIT_LOG", str(path))
    return path


def signed_in(at: AppTest, who: str | None, groups: list[str] | None = None) -> AppTest:
    at.secrets["auth"] = AUTH
    at.secrets["rxdash"] = CONFIG
    at.user = {"is_logged_in": False} if who is None else {"is_logged_in": True, "email": who, "email_verified": True,
                                                           "sub": f"id-{who}", "groups": groups or []}
    return at


def app(who: str | None, groups: list[str] | None = None, query: dict | None = None) -> AppTest:
    at = signed_in(AppTest.from_file(APP, default_timeout=120), who, groups)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def page(name: str, who: str, groups: list[str] | None = None, query: dict | None = None) -> AppTest:
    """One page opened directly (as a hidden but reachable URL would), with the shared sidebar."""
    at = signed_in(AppTest.from_function(_page, args=(name,), default_timeout=120), who, groups)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# --- The rules ---------------------------------------------------------------------------------------

def claims(email: str | None = None, groups: list[str] | None = None, verified: object = True,
           sub: str = "provider-id-1", **more: object) -> dict[str, object]:
    """An OIDC token's claims as Streamlit's st.user gives them."""
    return {"sub": sub, **({"email": email, "email_verified": verified} if email is not None else {}),
            "groups": groups or [], **more}


@pytest.mark.parametrize("role", PEOPLE)
def test_each_role_gets_its_pages(role):
    email, groups, expected = PEOPLE[role]
    v = access.viewer_for(claims(email, groups), CONFIG)
    assert pages.allowed(v) == expected


def test_roles_from_a_verified_email_and_groups():
    roles = lambda *a, **k: access.viewer_for(claims(*a, **k), CONFIG).roles   # noqa: E731
    assert roles("LEAD@example.org") == ("leader", "admin")            # case-insensitive, both roles
    assert roles("anyone@example.org", ["quality", "other"]) == ("committee",)
    assert roles("anyone@example.org", ["qual"]) == ()                 # whole group names only
    assert roles("anyone@example.org", ["Quality"]) == ()              # group names exactly as the provider writes them
    assert roles("lead@example.org", verified="true") == ("leader", "admin")   # Cognito's text "true"
    assert access.viewer_for(claims(""), {"roles": {"committee": [""]}}).roles == ()   # a blank never matches
    assert access.viewer_for(claims("x@y.org"), {"roles": {"superuser": ["x@y.org"], "local demo": ["x@y.org"]}}
                             ).roles == ()
    assert access.viewer_for(claims("x@y.org"), {"roles": {"leader": 7, "admin": "x@y.org"}}).roles == ("admin",)
    assert access.viewer_for(claims("x@y.org"), {"roles": {"clinician": ["x@y.org"]}, "clinicians": "oops"}
                             ).clinician_id is None
    v = access.viewer_for(claims("c@example.org"), CONFIG)
    assert v.clinician_id == "D3" and not v.names and not v.any_profile and v.exports
    assert access.viewer_for(claims("lead@example.org"), CONFIG).names
    assert access.local_viewer().pages == access.ALL_PAGES and not access.local_viewer().names


# Issue #29, item 1: tokens a hostile account holder can obtain from an ordinary identity provider.
@pytest.mark.parametrize("token", [
    claims("group:quality"),                                    # an e-mail claim that spells a group entry
    claims("group:quality", verified=True, groups=[]),
    claims("Lead@Example.ORG", verified=False),                 # a leader's address, not verified, other case
    claims("lead@example.org", verified=None),                  # no email_verified claim at all
    claims("lead@example.org", verified="false"),
    claims("lead@example.org", verified=1),                     # not the boolean true
    claims("c@example.org", verified=False),                    # a clinician's address: no role, no clinician
    claims(None, sub="lead@example.org"),                       # a subject that looks like a leader's address
    claims(None, sub="group:quality"),
    claims("q@example.org", groups="group:quality"),            # the group entry's text in the groups claim
], ids=["email-is-group-entry", "verified-email-is-group-entry", "unverified-leader-other-case",
        "no-verified-claim", "verified-text-false", "verified-one", "unverified-clinician", "sub-is-leader-email",
        "sub-is-group-entry", "groups-claim-has-prefix"])
def test_no_role_from_claims_the_provider_does_not_vouch_for(token):
    v = access.viewer_for(token, CONFIG)
    assert v.roles == () and v.clinician_id is None and not v.names


def test_each_kind_of_entry_matches_its_own_claim():
    config = {"roles": {"leader": ["sub:00u1abc"], "committee": ["group:Quality Committee"]},
              "clinicians": {"sub:00u2def": "D3"}, "groups_claim": "cognito:groups"}
    assert access.viewer_for(claims(None, sub="00u1abc"), config).roles == ("leader",)
    assert access.viewer_for(claims(None, sub="00u1ABC"), config).roles == ()          # a subject compares exactly
    assert access.viewer_for(claims("a@b.org", **{"cognito:groups": ["Quality Committee"]}), config).roles == (
        "committee",)
    assert access.viewer_for(claims("a@b.org", groups=["Quality Committee"]), config).roles == ()   # other claim
    assert access.viewer_for(claims("a@b.org", **{"cognito:groups": "Quality Committee"}), config).roles == (
        "committee",)                                                   # one group given as text
    assert access.viewer_for(claims(None, sub="00u2def"), config).clinician_id == "D3"
    # Who the audit log and the sidebar name: the verified e-mail, else the subject, never an unverified address.
    assert access.viewer_for(claims("Lead@Example.org"), CONFIG).user == "lead@example.org"
    assert access.viewer_for(claims("lead@example.org", verified=False, sub="u-9"), CONFIG).user == "sub:u-9"


def test_auth_is_configured_only_by_an_auth_section(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[rxdash]\npseudonym_secret = "s"\n')
    assert not access.auth_configured([secrets])
    secrets.write_text('[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\n')
    assert access.auth_configured([secrets])


# --- The app for each person -------------------------------------------------------------------------

def test_sign_in_is_asked_before_anything_is_shown(worked):
    at = app(None)
    assert at.title[0].value == "Prescribing consistency" and at.button[0].label == "Sign in"
    assert not at.metric and not at.sidebar.date_input and not at.get("plotly_chart")


def test_a_signed_in_account_without_a_role_sees_nothing(worked, audit_log):
    at = app("stranger@example.org", ["other"])
    assert at.title[0].value == "No access yet" and md("stranger@example.org") in at.warning[0].value
    assert not at.metric and not at.sidebar.date_input
    entry = json.loads(audit_log.read_text().splitlines()[-1])
    assert (entry["event"], entry["user"], entry["role"]) == ("sign-in", "stranger@example.org", "none")


def test_committee_opens_on_the_overview_with_pseudonyms(worked, audit_log):
    at = app("q@example.org", ["quality"], H1)
    assert at.title[0].value == "Prescribing consistency" and at.metric
    assert f"Signed in as {md('q@example.org')} (committee)" in at.sidebar.caption[0].value
    assert not at.warning                                           # no local-demo banner
    entry = json.loads(audit_log.read_text().splitlines()[-1])
    assert (entry["event"], entry["user"], entry["role"]) == ("sign-in", "q@example.org", "committee")
    at = page("variation", "q@example.org", ["quality"], {**H1, "measure": "high_dose_90"})
    assert sorted(at.selectbox(key="highlight").options)[1:] == sorted(label(d) for d in ("D1", "D2", "D3"))


def test_leader_sees_names(worked):
    at = page("variation", "lead@example.org", [], {**H1, "measure": "high_dose_90"})
    assert sorted(at.selectbox(key="highlight").options) == ["(nobody)", "A", "B", "C"]
    assert not any(label(d) in str(at.selectbox(key="highlight").options) for d in ("D1", "D2", "D3"))


def test_clinician_sees_their_own_named_profile_only(worked, audit_log):
    at = app("c@example.org", [], H1)
    assert at.title[0].value == "Clinician profile"                 # their default page
    assert at.markdown[0].value.startswith("#### C: your prescribing beside your peers")
    assert "clinician" not in [s.key for s in at.selectbox]            # no choosing someone else
    # A link to another clinician's profile still shows their own.
    at = page("profile", "c@example.org", [], {**H1, "clinician": label("D1").split()[-1]})
    assert at.markdown[0].value.startswith("#### C: your prescribing") and "A" not in at.markdown[0].value.split(":")[0]
    events = [json.loads(x) for x in audit_log.read_text().splitlines()]
    views = [e for e in events if e["event"] == "profile view"]
    assert views and views[-1]["what"] == f"profile {label('D3').split()[-1]}" and views[-1]["role"] == "clinician"


@pytest.mark.parametrize("name, who, groups", [
    ("profile", "q@example.org", ["quality"]),        # committee: aggregate panels only
    ("variation", "c@example.org", []),               # clinician: own profile only
    ("overview", "it@example.org", []),               # admin: data pages only
    ("data-quality", "q@example.org", ["quality"]),
    ("tapers", "stranger@example.org", []),           # no role at all
])
def test_a_page_refuses_a_role_it_is_not_for_even_when_opened_directly(worked, name, who, groups):
    at = page(name, who, groups, H1)
    assert "not open to your role" in at.error[0].value
    assert not at.metric and not at.get("plotly_chart") and not at.dataframe


def test_admin_reads_data_quality_load_history_and_the_audit_log(worked, audit_log):
    app("q@example.org", ["quality"], H1)                           # a sign-in to find in the log
    at = app("it@example.org", [], H1)
    assert at.title[0].value == "Data quality"
    headers = [h.value for h in at.subheader]
    assert "Load history" in headers and "Audit log" in headers
    log = at.dataframe[-1].value
    assert {"sign-in"} <= set(log["event"]) and "q@example.org" in set(log["user"])
    assert not at.get("download_button")                            # admin takes no files out


def test_local_demo_shows_a_banner_and_every_page(worked):
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    assert "Local demo" in at.warning[0].value


def test_a_clinician_account_not_linked_to_an_id_is_told_so(worked):
    config = {"roles": {"clinician": ["new@example.org"]}, "clinicians": {}}
    at = AppTest.from_function(_page, args=("profile",), default_timeout=120)
    at.secrets["auth"], at.secrets["rxdash"] = AUTH, config
    at.user = {"is_logged_in": True, "email": "new@example.org", "email_verified": True}
    at.run()
    assert not at.exception and "not linked to a clinician" in at.warning[0].value
    assert not at.dataframe and not at.get("plotly_chart")


def test_leader_chooses_profiles_by_name(worked):
    at = page("profile", "lead@example.org", [], {**H1, "clinician": label("D3").split()[-1]})
    assert at.markdown[0].value.startswith("#### C: your prescribing beside your peers")
    chooser = at.selectbox(key="clinician")
    assert chooser.options == ["A", "B", "C", "D"]                     # names, in name order
