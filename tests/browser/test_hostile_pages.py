"""Hostile names in a real browser (issue 18, part 2): a leader, signed in (names shown), opens every page
of a dashboard whose clinics, clinicians, specialties and drug descriptions are the payloads of
tests/hostile.py, pointed at a local "beacon" server that counts requests. Nothing may reach the beacon,
no dialog may open, no request may leave for another host, and each name must read as itself.

Sign-in is the local OIDC provider of test_sign_in.py: the local demo shows pseudonyms, not names.
No request may go to any other host at all, fonts included (tests/browser/test_no_remote_requests.py checks
the same for every page and state).
"""
from __future__ import annotations

import csv
import io
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode, urlparse

import pytest

from analysis import privacy
from tests.browser.conftest import AUTH_SECRETS, _free_port, screenshot, server_env, start_server, stop_server
from tests.browser.test_pages import no_exception, wait_for_app
from tests.test_hostile_names import (HOSTILE_IDS, assert_no_formula_cells, clinician_name, load_hostile, payloads,
                                      specialty)

pytestmark = pytest.mark.browser

LEADER = "lead@example.org"
SECRETS = AUTH_SECRETS + """
[rxdash.roles]
leader = ["{leader}"]
admin = ["{leader}"]
"""
ALLOWED_ELSEWHERE: set[str] = set()   # nothing leaves the machine, not even a font (issue 15, section 4)
LOCAL = {"127.0.0.1", "localhost"}


class Beacon(ThreadingHTTPServer):
    """A local server that answers every request with a 1x1 GIF and remembers its path."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        beacon = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:   # noqa: N802 (http.server's name)
                beacon.hits.append(self.path)
                body = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_HEAD = do_GET

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture(scope="module")
def beacon():
    server = Beacon()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def host(beacon) -> str:
    return f"127.0.0.1:{beacon.server_address[1]}"


@pytest.fixture(scope="module")
def hostile_server(beacon, host, tmp_path_factory):
    """`rxdash serve` with sign-in (a local OIDC provider, one leader) on the hostile data set."""
    from oidc_provider_mock import User, run_server_in_thread

    tmp = tmp_path_factory.mktemp("hostile_browser")
    url = load_hostile(tmp, host)
    lead = User(sub=LEADER, claims={"email": LEADER, "email_verified": True})
    with run_server_in_thread(user_claims=[lead]) as oidc:
        port = _free_port()
        folder = tmp / "serve"
        (folder / ".streamlit").mkdir(parents=True)
        (folder / ".streamlit" / "secrets.toml").write_text(
            SECRETS.format(port=port, cookie=secrets.token_hex(32), oidc_port=oidc.server_port, leader=LEADER))
        base = f"http://localhost:{port}"
        proc, log = start_server(["--db", url, "--port", str(port)], server_env(folder / "audit.jsonl"), folder,
                                 folder / "server.log", base)
        yield base
        stop_server(proc, log)


@pytest.fixture(scope="module")
def leader(browser, hostile_server):
    """One signed-in leader's tab for the whole module, with every request and dialog recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(hostile_server + "/")
    wait_for_app(page)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/oauth2/authorize**", timeout=30_000)
    page.get_by_role("button", name=LEADER).click()
    page.wait_for_url(hostile_server + "/**", timeout=30_000)
    page.get_by_text("Signed in as " + LEADER.replace("@", "@\u2060")).wait_for(timeout=60_000)
    wait_for_app(page)
    requests.clear()    # the OIDC provider's own sign-in page loads a stylesheet from a CDN: not the app's
    yield page, requests, dialogs
    context.close()


def text_of(s: str) -> str:
    """Text as a reader sees it: whitespace runs as one space, invisible word joiners gone."""
    return " ".join(s.replace("\u2060", "").split())


def plot_texts(page) -> list[str]:
    return page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot text')].map(t => t.textContent)")


def visit(leader, beacon, base: str, path: str, query: dict | None = None, marker: str | None = None,
          plots: int = 0) -> str:
    """Open a page, let it draw, check that nothing left or popped up; the main area's text."""
    page, requests, dialogs = leader
    page.goto(base + path + ("?" + urlencode(query, doseq=True) if query else ""))
    wait_for_app(page)
    if marker:
        page.get_by_text(marker).first.wait_for(timeout=60_000)
    if plots:
        page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length >= {plots}",
                               timeout=60_000)
    wait_for_app(page)
    time.sleep(1.5)                      # images and late requests would be on their way by now
    no_exception(page)
    assert beacon.hits == [], beacon.hits
    assert dialogs == [], dialogs
    beacon_port = beacon.server_address[1]
    left = [u for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")
            and (urlparse(u).port == beacon_port
                 or (urlparse(u).hostname not in LOCAL and urlparse(u).hostname not in ALLOWED_ELSEWHERE))]
    assert left == [], left
    assert page.locator("[data-testid=stMain] img[src*='beacon'], .js-plotly-plot a").count() == 0
    return page.locator("[data-testid=stMain]").inner_text()


def codes() -> dict[str, str]:
    ids = [HOSTILE_IDS.get(f"D{i + 1:04d}", f"D{i + 1:04d}") for i in range(40)]
    return {i: p.split()[-1] for i, p in privacy.pseudonyms(ids, privacy.pseudonym_secret()).items()}


def test_overview_names_the_chosen_clinics_as_text(leader, beacon, host, hostile_server):
    names = payloads(host)
    chosen = ["H01", "H03", "H07"]                # ![c](...), <img ...>, <a href=...>
    main = visit(leader, beacon, hostile_server, "/", {"clinic": chosen}, "Where clinicians differ most", plots=1)
    expected = ", ".join(names[int(c[1:]) - 1] for c in chosen)
    assert text_of(expected) in text_of(main)
    sidebar = leader[0].locator("[data-testid=stSidebar]").inner_text()
    assert all(text_of(names[int(c[1:]) - 1]) in text_of(sidebar) for c in chosen)   # the filter's chips
    screenshot(leader[0], "hostile-overview")


@pytest.mark.parametrize("view", ["Ranked, allowing for chance", "By clinic", "Are we converging?", "Over time",
                                  "The numbers"])
def test_variation_tabs_show_names_as_text(leader, beacon, host, hostile_server, view):
    names = payloads(host)
    query = {"measure": "high_dose_90", "view": view, "clinic": ["H02", "H04", "H05"]}   # [link], <script>, **
    main = visit(leader, beacon, hostile_server, "/variation", query, "clinicians compared",
                 plots=1 if view == "The numbers" else 2)
    scope = ", ".join(names[i] for i in (1, 3, 4))
    assert text_of(f"selected ({scope})") in text_of(main)             # the limits caption
    if view == "By clinic":
        ticks = {text_of(t) for t in plot_texts(leader[0])}
        assert {text_of(names[i]) for i in (1, 3, 4)} <= ticks       # clinic names on the axis, as text
        screenshot(leader[0], "hostile-variation-by-clinic")
    if view == "Ranked, allowing for chance":
        screenshot(leader[0], "hostile-variation")


def test_variation_csv_is_neutralised(leader, beacon, host, hostile_server):
    page = leader[0]
    visit(leader, beacon, hostile_server, "/variation", {"measure": "high_dose_90"}, "clinicians compared", plots=2)
    with page.expect_download(timeout=60_000) as download:
        page.locator("[data-testid=stDownloadButton]").filter(has_text="Data behind this chart").first.click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"), newline="")))
    assert_no_formula_cells(rows)
    shown = {r[rows[0].index("clinician")] for r in rows[1:]}
    assert "'" + clinician_name(7, host) in shown                  # =HYPERLINK(...), by name for a leader


@pytest.mark.parametrize("panel", ["By clinician", "Daily dose around tapers", "What followed"])
def test_tapers_panels_show_names_as_text(leader, beacon, host, hostile_server, panel):
    visit(leader, beacon, hostile_server, "/tapers", {"panel": panel}, "How fast doses fell", plots=2)
    if panel == "By clinician":
        ticks = {text_of(t) for t in plot_texts(leader[0])}
        names = {text_of(clinician_name(i, host)) for i in range(40)}
        assert ticks & names                                          # clinicians' names on the axis
        screenshot(leader[0], "hostile-tapers")


@pytest.mark.parametrize("clinician_id, index", [("+D0003", 2), ("=D0002", 1), ("D0008", 7), ("@D0005", 4)])
def test_profile_heading_shows_the_name_as_text(leader, beacon, host, hostile_server, clinician_id, index):
    name = clinician_name(index, host)
    main = visit(leader, beacon, hostile_server, "/profile", {"clinician": codes()[clinician_id]},
                 "your prescribing beside your peers")
    assert text_of(f"{name}: your prescribing beside your peers") in text_of(main)
    if index == 2:
        screenshot(leader[0], "hostile-profile")


def test_data_quality_and_methods_show_data_as_text(leader, beacon, host, hostile_server):
    visit(leader, beacon, hostile_server, "/data-quality", None, "Drug descriptions")
    screenshot(leader[0], "hostile-data-quality")
    names = payloads(host)
    main = visit(leader, beacon, hostile_server, "/methods", {"clinic": "H06", "specialty": specialty(0, host)},
                 "MME conversion factors")
    assert text_of(f"Period 01 Jan 2025 to 31 Dec 2025; {names[5]}; {specialty(0, host).lower()};") in text_of(main)
    screenshot(leader[0], "hostile-methods")
