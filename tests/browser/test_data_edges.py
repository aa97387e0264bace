"""The Overview at the data's start and end in a real browser (issue 12, section 1): complete, provisional and
not measurable yet, each screenshotted (test-artifacts/overview-edge-*.png)."""
from __future__ import annotations

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_pages import metric, no_exception, wait_for_app

pytestmark = pytest.mark.browser


def card(page, label: str):
    return page.locator("[data-testid=stMetric]").filter(has_text=label).first


def open_overview(page, server: str, query: str) -> None:
    page.goto(f"{server}/?{query}")
    wait_for_app(page)
    page.get_by_text("Where clinicians differ most").first.wait_for(timeout=60_000)
    page.get_by_text("Tapers and discontinuations, by month of start").first.wait_for(timeout=60_000)
    no_exception(page)


def test_overview_complete_year_2024(server, page):
    # 2024: every taper start has its 180-day baseline (from 5 Jul 2023) and 210-day follow-up (to 28 Jul
    # 2025) inside the data: figures shown, nothing marked provisional, no month shaded.
    open_overview(page, server, "start=2024-01-01&end=2024-12-31")
    assert "provisional" not in card(page, "Tapers and discontinuations").inner_text()
    assert int(metric(page, "Tapers and discontinuations").replace(",", "")) > 0
    assert page.get_by_text("Changes are against the previous period, 2024").count() == 0
    assert page.get_by_text("Changes are against the previous period, 2023").count() == 1
    page.set_viewport_size({"width": 1280, "height": 2400})     # the cards and the tapers chart in one picture
    page.wait_for_timeout(1500)
    screenshot(page, "overview-edge-complete")


def test_overview_default_year_is_provisional_at_the_data_end(server, page):
    # 2025 (the default): tapers measurable only to 5 Jun 2025: 32 marked provisional, no "down 44".
    open_overview(page, server, "start=2025-01-01&end=2025-12-31")
    text = card(page, "Tapers and discontinuations").inner_text()
    assert "32" in text and "provisional" in text
    assert page.get_by_text("Shaded: not measurable yet").count() >= 1     # the chart's legend
    page.set_viewport_size({"width": 1280, "height": 2400})     # the cards and the tapers chart in one picture
    page.wait_for_timeout(1500)
    screenshot(page, "overview-edge-provisional")


def test_overview_first_quarter_is_not_measurable_yet(server, page):
    # Q1 2023: no taper has a 180-day baseline, no new start 90 days of history.
    open_overview(page, server, "start=2023-01-01&end=2023-03-31")
    for name in ("Tapers and discontinuations", "Abrupt discontinuations"):
        assert metric(page, name) == "–" and "not measurable yet" in card(page, name).inner_text()
    page.set_viewport_size({"width": 1280, "height": 2400})     # the cards and the tapers chart in one picture
    page.wait_for_timeout(1500)
    screenshot(page, "overview-edge-not-measurable")
