"""No request leaves the machine: every page, with its sidebar, expanders, tabs, popovers and charts opened,
asks the local server only (no web fonts, icon images, CDNs or telemetry)."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.browser.conftest import screenshot
from tests.browser.test_pages import no_exception, wait_for_app

pytestmark = pytest.mark.browser

# path, a text that shows the page has rendered
PAGES = [
    ("/", "Where clinicians differ most"),
    ("/variation", "clinicians compared"),
    ("/tapers", "How fast doses fell"),
    ("/profile", "Clinician profile"),
    ("/data-quality", "Rows rejected by the latest load, by reason"),
    ("/methods", "MME conversion factors"),
]


def _local(url: str) -> bool:
    parts = urlsplit(url)
    # data: and blob: URLs are made inside the page and never reach a network.
    return parts.scheme in ("data", "blob") or parts.hostname == "127.0.0.1"


def _settle(page) -> None:
    wait_for_app(page)
    page.wait_for_timeout(500)   # charts and icons finish drawing after the script run ends
    wait_for_app(page)


def _best_effort(action) -> None:
    """Do one visitor action; an element the page redrew meanwhile (a chart replaced after a tab opened) is
    passed over: the test is about the requests the page makes, which are recorded either way."""
    try:
        action()
    except PlaywrightError:
        pass


def _open_everything(page) -> None:
    """Open what a visitor can open on the page: expanders, tabs and popovers, and hover over each chart."""
    main = page.locator("[data-testid=stMain]")
    for summary in main.locator("[data-testid=stExpander] summary").all():
        _best_effort(lambda: summary.click(timeout=10_000))
    for tab in main.get_by_role("tab").all():
        _best_effort(lambda: tab.click(timeout=10_000))
        _settle(page)
    for button in main.locator("[data-testid=stPopover] button").all():
        _best_effort(lambda: button.click(timeout=10_000))
        page.keyboard.press("Escape")
    for chart in main.locator(".js-plotly-plot").all():
        _best_effort(lambda: (chart.scroll_into_view_if_needed(timeout=10_000),
                              chart.hover(timeout=10_000)))   # the hover label and the mode bar
    _settle(page)


def test_no_request_leaves_the_machine(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    # A request elsewhere fails at once (as on a hospital network that blocks it) instead of waiting on a network.
    context.route(lambda url: not _local(url), lambda route: route.abort())
    page = context.new_page()
    try:
        for path, marker in PAGES:
            page.goto(server + path)
            wait_for_app(page)
            page.get_by_text(marker).first.wait_for(timeout=60_000)
            _settle(page)
            no_exception(page)
            if path == "/profile":   # a clinician's own charts
                page.locator("[data-testid=stMain] [data-testid=stSelectbox]").first.locator("input").click()
                page.keyboard.press("ArrowDown")
                page.keyboard.press("Enter")
                page.get_by_text("your prescribing beside your peers").first.wait_for(timeout=60_000)
                _settle(page)
            _open_everything(page)
            no_exception(page)
        # The sidebar's navigation (pages change without a reload), and the app's menu if it has one
        # (`--client.toolbarMode minimal` leaves none).
        for link in page.locator("[data-testid=stSidebarNav] a").all():
            link.click()
            _settle(page)
        if page.locator("[data-testid=stMainMenu]").count():
            page.locator("[data-testid=stMainMenu]").click()
            page.wait_for_timeout(300)
            page.keyboard.press("Escape")
        # The tab's icon is the packaged SVG, inlined: it is set, and from no other host.
        favicon = page.locator("link[rel~=icon]").first.get_attribute("href") or ""
        assert favicon.startswith("data:image/svg+xml"), favicon[:120]
        page.goto(server + "/")
        page.get_by_text("Where clinicians differ most").first.wait_for(timeout=60_000)
        _settle(page)
        screenshot(page, "no-remote-requests-overview")
    finally:
        context.close()
    assert len(requests) > 50, "the pages made almost no requests: is the recorder working?"
    remote = sorted({url for url in requests if not _local(url)})
    assert not remote, "requests to hosts other than the local server:\n" + "\n".join(remote)
