"""The report pack (`rxdash report`): built headless from the command line, private, readable."""
from __future__ import annotations

import re

import pandas as pd

from analysis import measures, stats
from analysis.report import reading
from tests.test_cli import run


def test_report_pack_builds_as_pdf_and_html_from_the_command_line(tmp_path, sample_duckdb):
    result = run("report", "--db", sample_duckdb, "--start", "2025-01-01", "--end", "2025-12-31",
                 "--out", str(tmp_path / "pack.pdf"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    pdf = (tmp_path / "pack.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 5
    result = run("report", "--db", sample_duckdb, "--start", "2025-01-01", "--end", "2025-12-31",
                 "--clinic", "C01", "--out", str(tmp_path / "pack.html"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "pack.html").read_text()
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")   # no script, no network
    for m in measures.MEASURES:
        assert m.title in page                              # every funnel and the methods appendix
    assert "above the upper limit" in page and "Methods" in page and "Tapers" in page
    assert not re.search(r"\bP\d{7}\b|\bD\d{4}\b", page)    # no patient or clinician id
    overview = page.split("<h2 class='first'>Overview</h2>")[1].split("</table>")[0]
    numbers = [int(n.replace(",", "")) for n in re.findall(r"<b>([\d,]+)</b>", overview)]
    assert numbers and not any(1 <= n <= 10 for n in numbers)   # small counts shown as "< 11"


def test_report_refuses_an_unknown_clinic_and_a_bad_file_type(tmp_path, sample_duckdb):
    bad = run("report", "--db", sample_duckdb, "--start", "2025-01-01", "--end", "2025-12-31",
              "--clinic", "C99", "--out", str(tmp_path / "x.pdf"), cwd=tmp_path)
    assert bad.returncode == 1 and "unknown clinic C99" in bad.stderr and "Traceback" not in bad.stderr
    bad = run("report", "--db", sample_duckdb, "--start", "2025-01-01", "--end", "2025-12-31",
              "--out", str(tmp_path / "x.docx"), cwd=tmp_path)
    assert bad.returncode == 1 and "must end in .pdf or .html" in bad.stderr
    bad = run("report", "--db", sample_duckdb, "--start", "2025-03-01", "--end", "2025-01-31",
              "--out", str(tmp_path / "x.pdf"), cwd=tmp_path)
    assert bad.returncode == 2 and "--end 2025-01-31 is before --start 2025-03-01" in bad.stderr
    assert not (tmp_path / "x.pdf").exists()


def _compared(numerators, denominators, m):
    units = pd.DataFrame({"unit_id": [f"D{i}" for i in range(len(numerators))], "clinic_id": "C1",
                          "numerator": numerators, "denominator": denominators})
    return measures.compare(units, m)


def test_reading_states_the_period_statistic_and_the_estimable_quarters():
    m = measures.BY_ID["high_dose_90"]
    # Eight clinicians of 100 at 10%..24% and one at 60% (far above any limit), plus two with 3 patients
    # (too few to judge). The period's MOR is stats.indices over the period: the Overview's figure.
    result = _compared([10, 12, 14, 16, 18, 20, 22, 24, 60, 1, 3], [100] * 9 + [3, 3], m)
    flags = result.units["flag"].tolist()
    assert flags[-2:] == ["too_few", "too_few"] and flags.count("high") + flags.count("low") >= 1
    high, low = flags.count("high"), flags.count("low")
    mor = stats.indices(result, m.kind)["median_odds_ratio"]
    assert mor > 1.2
    # Quarters: Q2 had too few clinicians with 11 patients (NaN): it is left out of the trend.
    trend = pd.DataFrame({"quarter_start": pd.to_datetime(["2025-01-01", "2025-04-01", "2025-07-01"]),
                          "median_odds_ratio": [1.9, float("nan"), 1.6], "p90_p10_ratio": [3.0, 3.0, 3.0]})
    text = reading(result, m, trend)
    assert text == (f"{high} of 9 clinicians with at least 11 patients above the upper limit and {low} below the "
                    f"lower limit (99.8%); 2 with fewer are too few to judge. The median odds ratio over the period "
                    f"is {mor:.2f}; by quarter it has narrowed since Q1 2025 (1.90 → 1.60; 1 quarter with too few "
                    "to estimate left out).")
    # One estimable quarter is no trend: the sentence says so instead of quoting 1.00 -> 1.00.
    one = trend.assign(median_odds_ratio=[1.9, float("nan"), float("nan")])
    assert reading(result, m, one).endswith("(too few quarters where it can be estimated to follow it by quarter).")


def test_reading_when_nobody_can_be_judged_says_so_in_the_measures_own_word():
    # Three clinicians with 4, 6 and 10 tapers: none has the 11 needed; no "0 of 3 above the upper limit".
    m = measures.BY_ID["taper_rapid"]
    text = reading(_compared([4, 0, 10], [4, 6, 10], m), m, pd.DataFrame())
    assert text == ("No clinician has the 11 tapers needed to be judged (3 clinicians with fewer); variation "
                    "between them is too few to estimate.")
    m = measures.BY_ID["new_start_over_7d"]
    assert reading(_compared([1, 2], [2, 3], m), m, pd.DataFrame()).startswith(
        "No clinician has the 11 new starts needed to be judged")


def test_twelve_clinicians_at_twelve_of_twelve_read_as_none_above_the_limit():
    # The case: 12 clinicians, 12 new starts each, all given more than 7 days (pooled 100%).
    m = measures.BY_ID["new_start_over_7d"]
    text = reading(_compared([12] * 12, [12] * 12, m), m, pd.DataFrame())
    assert text.startswith("0 of 12 clinicians with at least 11 new starts above the upper limit and 0 below")
    # MOR over 12 units of 12/12: no variation at all, so it is estimable and exactly 1.
    assert "The median odds ratio over the period is 1.00." in text


def test_report_pack_marks_what_the_data_cannot_measure(sample_duckdb):
    import datetime as dt

    from analysis import db, report, summary

    engine = db.make_engine(sample_duckdb, read_only=True)
    with engine.connect() as conn:
        # Q1 2023, the sample's first quarter: no taper has its 180-day baseline, no new start its 90 days.
        page = report.build(conn, summary.Settings(dt.date(2023, 1, 1), dt.date(2023, 3, 31)))
    engine.dispose()
    overview = page.split("<h2 class='first'>Overview</h2>")[1].split("<h2>")[0]
    assert "<td>Tapers and discontinuations</td><td><b>not measurable yet</b></td>" in overview
    assert "<td>Abrupt discontinuations</td><td><b>not measurable yet</b></td>" in overview
    assert "the data begin 01 Jan 2023" in overview
    section = page.split("<h3>New starts given more than 7 days</h3>")[1].split("<h3>")[0]
    assert "<b>Not measurable yet.</b>" in section and "<svg" not in section     # no funnel drawn on no figure
    assert "<b>Not measurable yet.</b>" in page.split("<h2>Tapers</h2>")[1]


def test_report_pack_says_whose_dose_is_unknown_under_the_factor_set(sample_duckdb):
    # Under CDC 2016 tramadol and tapentadol have no factor: 976 of the 6,554 opioid prescriptions filled
    # in 2025 (14.9%, over the 1% warning line), and 93 of the 557 long-term patients have a day of unknown
    # dose, so the high-dose measures leave them out (the same counts as the Overview's; tests/test_app.py).
    import datetime as dt

    from analysis import db, dose, report, summary

    s = summary.Settings(dt.date(2025, 1, 1), dt.date(2025, 12, 31), dose.DoseParams("cdc2016", True))
    with db.make_engine(sample_duckdb, read_only=True).connect() as conn:
        page = report.build(conn, s)
    assert "14.9% of the period&#x27;s opioid prescriptions (976 of 6,554) have no dose under CDC 2016" in page
    high_90 = page.split(f"<h3>{measures.MEASURES[0].title}</h3>")[1].split("<h3>")[0]
    assert "93 patients left out: dose unknown" in high_90
    with db.make_engine(sample_duckdb, read_only=True).connect() as conn:
        default = report.build(conn, summary.Settings(dt.date(2025, 1, 1), dt.date(2025, 12, 31)))
    assert "left out: dose unknown" not in default and "have no dose under" not in default
