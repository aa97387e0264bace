"""Every page in a real browser: renders, no exception block, navigation works; screenshots saved."""
from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


def wait_for_app(page) -> None:
    page.wait_for_selector("[data-testid=stAppViewContainer]", timeout=30_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=30_000)


def test_overview_renders_headline_figures_and_chart(server, page):
    page.goto(server + "/")
    wait_for_app(page)
    page.get_by_text("Patients filling an opioid analgesic, by month").first.wait_for(timeout=30_000)
    assert page.locator("[data-testid=stMetricValue]").first.inner_text() == "5"
    assert page.locator("[data-testid=stException]").count() == 0
    screenshot(page, "overview")


def test_navigate_to_data_quality_from_the_sidebar(server, page):
    page.goto(server + "/")
    wait_for_app(page)
    page.locator("[data-testid=stSidebarNav]").get_by_text("Data quality").click()
    page.get_by_text("Rows rejected by the latest load, by reason").first.wait_for(timeout=30_000)
    assert page.url.endswith("/data-quality")
    assert page.locator("[data-testid=stException]").count() == 0
    screenshot(page, "data-quality")


def test_clinician_variation_funnel_renders(server, page):
    page.goto(server + "/variation")
    wait_for_app(page)
    page.get_by_text("clinicians compared").first.wait_for(timeout=60_000)
    assert page.locator("[data-testid=stException]").count() == 0
    page.get_by_text("Are we converging?").first.wait_for(timeout=60_000)
    assert page.locator(".js-plotly-plot").count() == 3   # funnel, caterpillar, quarterly trend
    screenshot(page, "variation")
    page.locator(".js-plotly-plot").nth(1).scroll_into_view_if_needed()
    screenshot(page, "variation-caterpillar")


def test_methods_page_lists_the_measures(server, page):
    page.goto(server + "/methods")
    wait_for_app(page)
    page.get_by_text("Abrupt discontinuations (abrupt_discontinuation)").first.wait_for(timeout=30_000)
    assert page.locator("[data-testid=stException]").count() == 0
    screenshot(page, "methods")


def test_tapers_page_renders(server, page):
    page.goto(server + "/tapers")
    wait_for_app(page)
    page.get_by_text("How fast doses fell").first.wait_for(timeout=60_000)
    assert page.locator("[data-testid=stException]").count() == 0
    assert page.locator(".js-plotly-plot").count() == 2
    screenshot(page, "tapers")
