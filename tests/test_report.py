"""The report pack (`rxdash report`): built headless from the command line, private, readable."""
from __future__ import annotations

import re
import time

import pandas as pd

from analysis import measures, stats
from analysis.report import reading
from tests.test_cli import run


def test_report_pack_builds_as_pdf_and_html_from_the_command_line(tmp_path, sample_duckdb):
    started = time.perf_counter()
    result = run("report", "--db", sample_duckdb, "--start", "2025-01-01", "--end", "2025-12-31",
                 "--out", str(tmp_path / "pack.pdf"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert time.perf_counter() - started < 60            # the bound, on the sample
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


def test_reading_says_how_many_stand_out_and_whether_variation_narrowed():
    units = pd.DataFrame({"unit_id": list("ABCD"), "flag": ["high", "within", "within", "low"]})
    result = stats.Funnel(units, 0.2, 1.0, 0.0, "exact binomial")
    trend = pd.DataFrame({"quarter_start": pd.to_datetime(["2025-01-01", "2025-04-01", "2025-07-01"]),
                          "median_odds_ratio": [1.9, 1.8, 1.6], "p90_p10_ratio": [3.0, 3.0, 3.0]})
    text = reading(result, measures.BY_ID["high_dose_90"], trend)
    assert text == ("1 of 4 clinicians above the upper limit and 1 below the lower limit (99.8%); variation has "
                    "narrowed since Q1 2025 (median odds ratio 1.90 → 1.60).")
    neutral = reading(result, measures.BY_ID["mean_daily_mme"], trend)
    assert neutral.startswith("2 of 4 clinicians outside the 99.8% limits (no verdict") and "stayed about the same" in neutral
