"""Every page in a real browser: renders, no exception block, filters and links work; screenshots saved."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser


def wait_for_app(page) -> None:
    page.wait_for_selector("[data-testid=stAppViewContainer]", timeout=30_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000)


def no_exception(page) -> None:
    assert page.locator("[data-testid=stException]").count() == 0


def metric(page, label: str) -> str:
    card = page.locator("[data-testid=stMetric]").filter(has_text=label).first
    return card.locator("[data-testid=stMetricValue]").inner_text()


def test_overview_renders_headline_figures_ranking_and_chart(server, page):
    page.goto(server + "/")
    wait_for_app(page)
    page.get_by_text("Where clinicians differ most").first.wait_for(timeout=60_000)
    page.get_by_text("Patients filling an opioid analgesic, by month").first.wait_for(timeout=60_000)
    assert int(metric(page, "On long-term opioid therapy").replace(",", "")) > 0
    no_exception(page)
    # The shared filters are in the link from the first render.
    assert "start=2025-01-01" in page.url and "end=2025-12-31" in page.url
    screenshot(page, "overview")


def test_a_filter_changes_the_figures_and_the_link(server, page):
    page.goto(server + "/")
    wait_for_app(page)
    page.get_by_text("Where clinicians differ most").first.wait_for(timeout=60_000)
    before = metric(page, "Patients with an opioid fill")
    page.locator("[data-testid=stSidebar]").get_by_text("Leave out cancer, hospice and sickle cell").click()
    page.wait_for_url(re.compile(r"exclusions=off"), timeout=30_000)
    wait_for_app(page)
    page.wait_for_function(
        "(before) => [...document.querySelectorAll('[data-testid=stMetric]')].some(m => "
        "m.innerText.includes('Patients with an opioid fill') && !m.innerText.includes(before))", arg=before,
        timeout=30_000)
    after = metric(page, "Patients with an opioid fill")
    assert int(after.replace(",", "")) > int(before.replace(",", ""))    # excluded patients count again
    no_exception(page)
    screenshot(page, "overview-exclusions-off")


def test_a_shared_link_opens_the_same_view(server, page):
    page.goto(server + "/variation?start=2025-01-01&end=2025-06-30&measure=benzo_overlap")
    wait_for_app(page)
    page.get_by_text("Opioids with benzodiazepines: clinicians compared, 01 Jan 2025 to 30 Jun 2025").first.wait_for(
        timeout=60_000)
    no_exception(page)
    assert page.locator(".js-plotly-plot").count() == 2   # funnel and the first tab's caterpillar
    page.get_by_role("tab", name="Are we converging?").click()
    page.get_by_text("are we converging? Variation between clinicians").first.wait_for(timeout=60_000)   # title wrapped
    page.wait_for_url(re.compile(r"view=Are"), timeout=30_000)
    no_exception(page)
    screenshot(page, "variation-shared-link")


def test_overview_ranking_links_to_the_measure_panel(server, page):
    page.goto(server + "/")
    wait_for_app(page)
    page.get_by_text("Where clinicians differ most").first.wait_for(timeout=60_000)
    link = page.locator("[data-testid=stPageLink]").first
    title = link.inner_text().strip().splitlines()[-1]   # after the icon's name
    link.click()
    page.wait_for_url(re.compile(r"/variation\?.*measure="), timeout=30_000)
    page.get_by_text(f"{title}: clinicians compared").first.wait_for(timeout=60_000)
    no_exception(page)


@pytest.mark.parametrize("path, markers, plots", [
    ("/variation", ["clinicians compared", "shrunken values with 95% intervals"], 2),   # funnel, first tab
    ("/variation?view=Are+we+converging%3F", ["clinicians compared", "are we converging?"], 2),
    # Allowing for patient mix: the O/E funnel and the ranked ratios, the characteristics listed
    ("/variation?measure=benzo_overlap&basis=adjusted",
     ["clinicians compared, allowing for patient mix", "shrunken ratios with 95% intervals",
      "opioid use disorder and long-term opioid therapy, from one logistic regression"], 2),
    ("/variation?view=Over+time", ["clinicians compared", "Each line is a centile of the clinicians' values",
                                   "What moved in"], 2),
    ("/tapers", ["How fast doses fell", "Taper categories by clinician"], 2),
    ("/tapers?panel=What+followed", ["Tapers followed by an event within 30 and 90 days"], 2),
    ("/methods", ["Abrupt discontinuations (abrupt_discontinuation)", "MME conversion factors",
                  "Allowing for patient mix", "Opioids with benzodiazepines: adjusted for age band, sex"], 0),
])
def test_page_renders_all_its_parts(server, page, path, markers, plots):
    page.goto(server + path)
    wait_for_app(page)
    for text in markers:
        page.get_by_text(text).first.wait_for(timeout=60_000)
    wait_for_app(page)
    no_exception(page)
    # Charts finish drawing after the script run ends: wait for them, then check there are no more.
    page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length >= {plots}", timeout=30_000)
    assert page.locator(".js-plotly-plot").count() == plots
    screenshot(page, path.strip("/").split("?")[0] + ("-" + path.split("=")[-1][:12] if "?" in path else ""))


def test_open_a_clinician_profile(server, page):
    page.goto(server + "/profile")
    wait_for_app(page)
    page.locator("[data-testid=stMain] [data-testid=stSelectbox]").first.locator("input").click()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.get_by_text("your prescribing beside your peers").first.wait_for(timeout=60_000)
    page.get_by_text("among peers (grey)").first.wait_for(timeout=60_000)
    wait_for_app(page)
    # Beside each observed position, the one allowing for patient mix (or why a measure is shown as observed).
    header = page.locator("[data-testid=stTable] th").filter(has_text="Allowing for patient mix")
    assert header.count() == 1
    assert page.locator("[data-testid=stTable] td").filter(has_text="× the count expected:").count() >= 1
    assert page.locator("[data-testid=stTable] td").filter(has_text="shown as observed").count() == 1   # the average dose
    assert re.search(r"clinician=[A-Z2-7]{5}", page.url)
    no_exception(page)
    screenshot(page, "profile")


def test_overview_says_what_moved_since_last_quarter(server, page):
    page.goto(server + "/")
    wait_for_app(page)
    page.get_by_text("What moved since last quarter").first.wait_for(timeout=60_000)
    # The sample's one sustained shift: a clinician's share at 50 MME or more, in plain words.
    moved = page.get_by_text(re.compile(r"Long-term patients at 50 MME a day or more fell from \d+\.\d% to \d+\.\d% "
                                        r"\(since Q\d 20\d\d\)"))
    moved.first.wait_for(timeout=60_000)
    no_exception(page)


def test_methods_page_shows_the_patient_mix_models_fit(server, page):
    page.goto(server + "/methods")
    wait_for_app(page)
    page.get_by_text("Long-term patients at 90 MME a day or more: adjusted for age band, sex and opioid use "
                     "disorder").first.click()
    fit = page.get_by_text(re.compile(r"discrimination \(c-statistic, the area under the ROC curve\) 0\.\d\d"))
    fit.first.wait_for(timeout=60_000)
    page.get_by_text("Calibration: patients in up to ten groups").first.wait_for(timeout=30_000)
    no_exception(page)
    screenshot(page, "methods-patient-mix")


def test_navigate_to_data_quality_from_the_sidebar(server, page):
    page.goto(server + "/")
    wait_for_app(page)
    page.locator("[data-testid=stSidebarNav]").get_by_text("Data quality").click()
    page.get_by_text("Rows rejected by the latest load, by reason").first.wait_for(timeout=30_000)
    assert "/data-quality" in page.url
    no_exception(page)
    screenshot(page, "data-quality")


def test_download_the_funnel_as_png_and_its_data_as_csv(server, page):
    import json
    import struct

    from tests.browser.conftest import AUDIT_LOG

    page.goto(server + "/variation?measure=benzo_overlap")
    wait_for_app(page)
    page.get_by_text("clinicians compared").first.wait_for(timeout=60_000)
    buttons = page.locator("[data-testid=stDownloadButton]")
    with page.expect_download(timeout=120_000) as png:
        buttons.filter(has_text="PNG").first.click()
    data = Path(png.value.path()).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">I", data[16:20])[0] == 2400   # 1200 px at 2x
    assert png.value.suggested_filename == "benzo_overlap_funnel.png"
    with page.expect_download(timeout=60_000) as csv:
        buttons.filter(has_text="Data behind this chart").first.click()
    text = Path(csv.value.path()).read_text()
    rows = list(__import__("csv").DictReader(text.splitlines()))
    assert len(rows) == 40 and not re.search(r"\bD\d{4}\b|\bP\d{7}\b", text)       # pseudonyms only
    counts = [float(r[c]) for r in rows for c in ("numerator", "denominator") if r[c]]
    assert counts and not any(1 <= c <= 10 for c in counts)                          # small counts blank
    audit = [json.loads(line) for line in AUDIT_LOG.read_text().splitlines()]
    exported = [a["what"] for a in audit if a["event"] == "export"]
    assert exported[-2:] == ["benzo_overlap_funnel.png", "benzo_overlap_funnel.csv"]
    assert audit[-1]["filters"]["start"] == "2025-01-01" and audit[-1]["user"] == "local (no sign-in configured)"


def test_download_the_report_pack_and_a_feedback_letter(server, page):
    import json

    from analysis import privacy
    from tests.browser.conftest import AUDIT_LOG

    page.goto(server + "/")
    wait_for_app(page)
    with page.expect_download(timeout=180_000) as pack:
        page.locator("[data-testid=stDownloadButton]").filter(has_text="Report pack (PDF)").first.click()
    data = Path(pack.value.path()).read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 5
    assert pack.value.suggested_filename == "report_pack_2025-01-01_2025-12-31.pdf"

    code = privacy.pseudonyms(["D0002"], privacy.pseudonym_secret())["D0002"].split(" ")[1]
    page.goto(server + f"/profile?clinician={code}")
    wait_for_app(page)
    page.get_by_text("your prescribing beside your peers").first.wait_for(timeout=60_000)
    with page.expect_download(timeout=120_000) as letter:
        page.locator("[data-testid=stDownloadButton]").filter(has_text="Feedback letter (PDF)").first.click()
    data = Path(letter.value.path()).read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", data)) == 1
    audit = [json.loads(line) for line in AUDIT_LOG.read_text().splitlines()]
    exported = [a["what"] for a in audit if a["event"] == "export"]
    assert exported[-2:] == ["report_pack_2025-01-01_2025-12-31.pdf", f"feedback_{code}.pdf"]
    no_exception(page)
