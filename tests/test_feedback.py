"""Peer-comparison letters (`rxdash feedback`): the benchmark, the suppression, one page, no identifiers."""
from __future__ import annotations

import math
import re
import zipfile

import pandas as pd
import pytest

from analysis import feedback, measures, summary
from analysis.feedback import Letter, TaperSummary, benchmark
from tests.test_cli import SAMPLE, run

PERIOD = ["--start", "2025-01-01", "--end", "2025-12-31"]
# Four clinicians (numerator / denominator), 100 patients in all, so the top 10% is 10 patients.
UNITS = pd.DataFrame({"unit_id": list("ABCD"), "numerator": [0, 1, 3, 20], "denominator": [5, 20, 30, 45]})


def pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf))


def test_achievable_benchmark_worked_by_hand():
    # Adjusted fractions (x+1)/(n+2): A 1/7 = .143, B 2/22 = .091, C 4/32 = .125, D 21/47 = .447.
    # Lower is better: B comes first (A's 0 of 5 cannot set the bar) and holds 20 >= 10 patients: 1/20.
    assert benchmark(UNITS, "lower") == pytest.approx(0.05)
    # A quarter of the patients (25): B then C, (1 + 3) / (20 + 30).
    assert benchmark(UNITS, "lower", share=0.25) == pytest.approx(0.08)
    # Higher is better: D first, 45 patients: 20/45.
    assert benchmark(UNITS, "higher") == pytest.approx(20 / 45)
    assert math.isnan(benchmark(UNITS, "neutral"))


def _letter(patients: int, tapers: TaperSummary) -> str:
    row = {"measure_id": "high_dose_90", "measure": "Long-term patients at 90 MME a day or more", "percent": True,
           "direction": "lower", "patients": patients, "value": 0.2, "own": 0.18, "own_lower": 0.1,
           "own_upper": 0.3, "median": 0.15, "peers": [0.1, 0.15, 0.2], "n_peers": 3, "percentile": 66.7,
           "benchmark": 0.05, "position": "within the range chance alone would explain",
           "adjusted": "1.20 × the count expected: within the range chance alone would explain",
           "adjusted_cell": "<b>1.20</b> × expected<br><span class='small muted'>within</span>"}
    letter = Letter("D7", "Dr Ada Example", pd.DataFrame([row]), tapers)
    settings = summary.Settings(pd.Timestamp("2025-01-01").date(), pd.Timestamp("2025-12-31").date())
    return feedback.page(letter, settings, "all clinics", min_cell=11)


def test_letter_names_the_clinician_and_suppresses_small_counts():
    many = TaperSummary(25, {"gradual": 12, "moderate": 13, "rapid": 0, "abrupt_discontinuation": 0}, 40, 0.5)
    text = _letter(30, many)
    assert "For Dr Ada Example" in text and "30 patients" in text and "<b>18.0%</b>" in text
    assert "Top performers" in text and "5.0%" in text                    # the benchmark
    assert "<th>For patient mix</th>" in text and "<b>1.20</b> × expected" in text   # allowing for patient mix
    assert "25 tapers or discontinuations" in text and "12 at the guideline pace" in text
    assert "Among your peers' 40 tapers, 50% went at the guideline pace." in text
    assert "<script" not in text and "http" not in text.replace("http://www.w3.org", "")
    # 8 patients: count and figure withheld; 3 rapid tapers: no split; peers' 3 of 29 gradual: not shown.
    few = TaperSummary(25, {"gradual": 12, "moderate": 10, "rapid": 3, "abrupt_discontinuation": 0}, 29, 3 / 29)
    text = _letter(8, few)
    assert "fewer than 11 patients" in text and "too few to compare" in text and "18.0%" not in text
    assert "1.20" not in text     # nor the ratio of a count too small to show
    assert "split by speed is not shown" in text and "Among your peers" not in text
    small = TaperSummary(4, {"gradual": 4, "moderate": 0, "rapid": 0, "abrupt_discontinuation": 0}, 29, 0.5)
    assert "Fewer than 11 tapers" in _letter(30, small)


def test_one_page_letter_from_the_command_line(tmp_path, sample_duckdb):
    out = run("feedback", "--db", sample_duckdb, *PERIOD, "--clinician", "D0002", "--out",
              str(tmp_path / "letter.pdf"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert pages((tmp_path / "letter.pdf").read_bytes()) == 1
    out = run("feedback", "--db", sample_duckdb, *PERIOD, "--clinician", "D0002", "--out",
              str(tmp_path / "letter.html"), cwd=tmp_path)
    text = (tmp_path / "letter.html").read_text()
    assert "For Jordan Novak" in text                                      # own name (data/sample/clinicians.csv)
    others = pd.read_csv(SAMPLE / "clinicians.csv")
    assert not any(n in text for n in others.loc[others["clinician_id"] != "D0002", "clinician_name"])
    assert not re.search(r"\bP\d{7}\b|\bD\d{4}\b", text)                  # no patient or clinician id
    counts = [int(n.replace(",", "")) for n in re.findall(r"<td>([\d,]+) patients?</td>", text)]
    assert counts and not any(1 <= n <= 10 for n in counts)
    for m in measures.MEASURES:
        if m.unit == "clinician" and m.title in text:
            break
    else:
        pytest.fail("no measure in the letter")


def test_all_letters_in_a_zip_one_page_each(tmp_path, sample_duckdb):
    out = run("feedback", "--db", sample_duckdb, *PERIOD, "--all", "--out", str(tmp_path / "letters.zip"),
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    with zipfile.ZipFile(tmp_path / "letters.zip") as z:
        names = z.namelist()
        assert len(names) == 40 and f"{len(names)} letters" in out.stdout    # every sample clinician has patients
        assert all(pages(z.read(n)) == 1 for n in names)


def test_feedback_refuses_what_it_cannot_do(tmp_path, sample_duckdb):
    bad = run("feedback", "--db", sample_duckdb, *PERIOD, "--clinician", "D9999", "--out", str(tmp_path / "x.pdf"),
              cwd=tmp_path)
    assert bad.returncode == 1 and "unknown clinician D9999" in bad.stderr and "Traceback" not in bad.stderr
    bad = run("feedback", "--db", sample_duckdb, *PERIOD, "--all", "--out", str(tmp_path / "x.pdf"), cwd=tmp_path)
    assert bad.returncode == 1 and "--all writes a .zip file" in bad.stderr
    bad = run("feedback", "--db", sample_duckdb, *PERIOD, "--out", str(tmp_path / "x.pdf"), cwd=tmp_path)
    assert bad.returncode == 2 and "one of the arguments --clinician --all is required" in bad.stderr
    assert not (tmp_path / "x.pdf").exists()


def test_the_peer_strip_draws_each_peer_or_their_spread():
    few = feedback.strip_svg([0.1, 0.2, 0.3], own=0.25, median=0.2, best=0.05, percent=True)
    assert few.count("<line") == 1 + 3 and "<polygon" in few and "<circle" in few    # axis + 3 peers
    many = feedback.strip_svg([i / 100 for i in range(100)], own=float("nan"), median=0.5, best=float("nan"),
                              percent=True)
    assert many.count("<line") == 2 and many.count("<rect") == 2                     # axis, whiskers; box, median
    assert "<polygon" not in many and "<circle" not in many                          # no own figure, no benchmark


def test_peers_are_defined_once_and_small_clinicians_are_too_few_to_judge():
    from analysis import stats

    m = measures.BY_ID["high_dose_90"]
    units = pd.DataFrame({"unit_id": list("ABCDE"), "clinic_id": "C1", "numerator": [2, 3, 5, 1, 4],
                          "denominator": [20, 30, 40, 5, 11]})
    result = measures.compare(units, m)
    # Peers of A: the others with at least 11 patients (B, C, E); D's 5 patients are not a peer's figure.
    assert list(feedback.peer_group(result.units, "A")["unit_id"]) == ["B", "C", "E"]
    row = feedback.peer_row(result, m, "A")
    assert row["n_peers"] == 3
    assert row["median"] == pytest.approx(result.units.set_index("unit_id").loc[["B", "C", "E"], "shrunk_value"].median())
    d = feedback.peer_row(result, m, "D")
    assert d["position"] == "too few patients to judge" and stats.MIN_DENOMINATOR == 11


def test_a_clinician_at_twelve_of_twelve_among_such_peers_is_within_chance():
    # The letter: 12 clinicians with 12 new starts each, all over 7 days (pooled 100%). A clinician
    # at the peer median is not "above the range chance alone would explain".
    m = measures.BY_ID["new_start_over_7d"]
    units = pd.DataFrame({"unit_id": [f"D{i}" for i in range(12)], "clinic_id": "C1", "numerator": [12] * 12,
                          "denominator": [12] * 12})
    row = feedback.peer_row(measures.compare(units, m), m, "D0")
    assert row["position"] == "within the range chance alone would explain"
    # Nobody with 11 or more: the letter says so in the measure's own word.
    few = pd.DataFrame({"unit_id": ["A", "B"], "clinic_id": "C1", "numerator": [1, 2], "denominator": [3, 4]})
    row = feedback.peer_row(measures.compare(few, m), m, "A")
    assert row["position"] == "no clinician has the 11 new starts needed to be judged" and row["n_peers"] == 0


def test_letters_say_what_the_period_cannot_measure(sample_duckdb):
    import datetime as dt

    from analysis import db

    engine = db.make_engine(sample_duckdb, read_only=True)
    with engine.connect() as conn:
        short = summary.Settings(dt.date(2025, 3, 1), dt.date(2025, 3, 23))     # 23 days
        last_year = summary.Settings(dt.date(2025, 1, 1), dt.date(2025, 12, 31))
        peers_short, peers_year = feedback.compare_all(conn, short), feedback.compare_all(conn, last_year)
    engine.dispose()
    # 23 days cannot hold 30 days of overlapping supply: no benzodiazepine figure, and the letter says why.
    assert "benzo_overlap" not in peers_short.results
    text = feedback.page(feedback.letter(peers_short, "D0002", 11), short, peers_short.scope)
    assert "<b>Opioids with benzodiazepines</b>: needs a period of at least 30 days" in text
    # 2025: tapers need a 210-day follow-up, so only starts to 5 Jun 2025 can be measured: provisional.
    text = feedback.page(feedback.letter(peers_year, "D0002", 11), last_year, peers_year.scope)
    assert "<b>† provisional</b>: near the data's start or end, only 01 Jan 2025 to 05 Jun 2025 or 01 Jan 2025 to " \
        "03 Sep 2025 can be measured yet" in text                         # (the second: long-term figures)  # + long-term
    assert "Your tapers † <span class='small muted'>provisional</span>" in text
    assert "Tapers faster than 40% a month †" in text


def test_letters_count_the_clinicians_patients_whose_dose_is_unknown(tmp_path, sample_duckdb):
    # Under CDC 2016 tramadol and tapentadol have no factor: 93 long-term patients of 2025 are left out of
    # the dose figures (the Overview's and the report's count), 9 of them attributed to D0034. The letter
    # says so, as "fewer than 11" under the disclosure rule and as 9 for the clinician's own use.
    import datetime as dt

    from analysis import db, dose

    s = summary.Settings(dt.date(2025, 1, 1), dt.date(2025, 12, 31), dose.DoseParams("cdc2016", True))
    with db.make_engine(sample_duckdb, read_only=True).connect() as conn:
        peers = feedback.compare_all(conn, s)
        default = feedback.compare_all(conn, summary.Settings(dt.date(2025, 1, 1), dt.date(2025, 12, 31)))
    assert sum(peers.dose_unknown.values()) == 93 and peers.dose_unknown["D0034"] == 9
    letter = feedback.letter(peers, "D0034", 11)
    # In the "your patients" cell of the three long-term dose measures (90 and 50 MME, average dose).
    assert feedback.page(letter, s, peers.scope, 11).count("+ fewer than 11 left out: dose unknown") == 3
    assert feedback.page(feedback.letter(peers, "D0034", 0), s, peers.scope, 0).count("+ 9 left out: dose unknown") == 3
    assert "dose unknown" not in feedback.page(feedback.letter(default, "D0034", 11), s, default.scope, 11)
    out = run("feedback", "--db", sample_duckdb, *PERIOD, "--factor-set", "cdc2016", "--clinician", "D0034",
              "--out", str(tmp_path / "letter.pdf"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert pages((tmp_path / "letter.pdf").read_bytes()) == 1     # the line still fits the one page
