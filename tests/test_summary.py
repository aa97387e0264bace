"""`rxdash summarize`: the files, small-cell suppression, and no patient identifier anywhere."""
from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from analysis import ingest, summary
from tests.conftest import SAMPLE


def table(rows):
    cols = ["measure_id", "unit", "clinician_id", "clinic_id", "numerator", "denominator", "value", "pooled_value",
            "lower_95", "upper_95", "lower_998", "upper_998", "flag", "shrunk_value", "shrunk_lower", "shrunk_upper",
            "limits", "phi", "tau2"]
    out = []
    for measure, unit_id, num, den in rows:
        out.append([measure, "clinician", unit_id, "C1", num, den, num / den, 0.3, 0, 1, 0, 1, "within",
                    num / den, 0, 1, "exact binomial", 1.0, 0.0])
    return pd.DataFrame(out, columns=cols)


def test_small_counts_and_their_complements_are_suppressed():
    t = summary.suppress(table([
        ("high_dose_90", "A", 5, 40),    # numerator 5: suppressed
        ("high_dose_90", "B", 35, 40),   # 5 not in the numerator: suppressed
        ("high_dose_90", "C", 20, 40),   # fine
        ("high_dose_90", "D", 0, 8),     # denominator 8: suppressed, denominator too
        ("high_dose_90", "E", 0, 30),    # zero is not a small count
    ]), min_cell=11)
    got = t.set_index("clinician_id")
    # Flags are kept (a direction, never a count); the counts are banded and why is said.
    assert got["flag"].to_dict() == {"A": "within", "B": "within", "C": "within", "D": "within", "E": "within"}
    assert got["numerator"].to_dict() == {"A": None, "B": None, "C": 20, "D": None, "E": 0}
    assert got["denominator"].to_dict() == {"A": 40, "B": 40, "C": 40, "D": None, "E": 30}
    assert np.isnan(got.loc["B", "value"]) and np.isnan(got.loc["B", "shrunk_value"])
    assert got["withheld_why"].to_dict() == {
        "A": "numerator fewer than 11: numerator, value and shrunken value withheld",
        "B": "fewer than 11 not in the numerator (denominator minus numerator): numerator, value and shrunken value withheld",
        "C": "", "D": "denominator fewer than 11: numerator, value and shrunken value withheld", "E": ""}


def test_a_lone_suppressed_cell_gets_a_complementary_one():
    # Only A is small; the pooled rate and the other rows would give its numerator back, so the row with the
    # next smallest numerator (C, 12) is suppressed as well.
    t = summary.suppress(table([("benzo_overlap", "A", 3, 50), ("benzo_overlap", "B", 20, 50),
                                ("benzo_overlap", "C", 12, 50)]), min_cell=11).set_index("clinician_id")
    assert t["numerator"].to_dict() == {"A": None, "B": 20, "C": None}
    assert t["value"].isna().to_dict() == {"A": True, "B": False, "C": True}
    assert t.loc["C", "withheld_why"].startswith("withheld too, or the pooled rate would give a small count away")


def test_min_cell_zero_turns_suppression_off():
    t = summary.suppress(table([("high_dose_90", "A", 5, 40)]), min_cell=0)
    assert t["numerator"].tolist() == [5] and t["flag"].tolist() == ["within"]


def test_patient_key_is_a_keyed_hash():
    a = summary.patient_key("P0000001", b"secret")
    assert a == summary.patient_key("P0000001", b"secret") and len(a) == 16
    assert a != summary.patient_key("P0000001", b"other") and "P0000001" not in a


@pytest.fixture
def sample_engine(engine, tmp_path):
    ingest.load_directory(engine, SAMPLE, tmp_path / "rejects.csv")
    return engine


def test_summarize_writes_the_four_files_on_both_databases(sample_engine, tmp_path, monkeypatch):
    monkeypatch.setenv(summary.SALT_ENV, "test-secret")
    s = summary.Settings(dt.date(2024, 1, 1), dt.date(2024, 6, 30))
    out = tmp_path / "out"
    counts = summary.write_summary(sample_engine, s, out)
    assert sorted(p.name for p in out.iterdir()) == ["README.txt", "clinician_measures.csv", "consistency.csv",
                                                     "tapers.csv"]
    measures_csv = pd.read_csv(out / "clinician_measures.csv")
    assert list(measures_csv.columns[:16]) == summary.MEASURE_COLUMNS[:16]
    assert set(measures_csv["flag"]) <= {"high", "low", "within", "too_few"}
    # Every withheld numerator says why; the flags of withheld rows are kept.
    withheld = measures_csv["numerator"].isna()
    assert withheld.any() and measures_csv.loc[withheld, "withheld_why"].notna().all()
    assert set(measures_csv["measure_id"]) >= {"high_dose_90", "benzo_overlap", "multiple_prescribers"}
    # No count from 1 to 10 survives in any count column.
    for col in ("numerator", "denominator"):
        counts_left = measures_csv[col].dropna()
        assert not ((counts_left >= 1) & (counts_left <= 10)).any(), col
    consistency = pd.read_csv(out / "consistency.csv")
    assert sorted(set(consistency["quarter_start"])) == ["2024-01-01", "2024-04-01"]
    # tapers.csv at default settings: counts by clinician, no patient-level row, no count from 1 to 10.
    tapers = pd.read_csv(out / "tapers.csv", dtype=str, keep_default_na=False)
    assert list(tapers.columns) == ["clinician_id", "clinic_id", *summary.TAPER_COUNT_COLUMNS, "withheld_why"]
    assert counts["tapers"] == len(tapers) > 0
    for col in summary.TAPER_COUNT_COLUMNS:
        shown = pd.to_numeric(tapers[col], errors="coerce").dropna()
        assert not ((shown >= 1) & (shown <= 10)).any(), col
        blank = tapers[col] == ""
        assert set(tapers.loc[~blank, col].map(str.isdigit)) <= {True}, col
        assert (tapers.loc[blank, "withheld_why"] != "").all(), col   # every blank cell says why
    # With suppression off (--min-cell 0), one row per taper, and the counts add up to the same tapers.
    full = tmp_path / "full"
    summary.write_summary(sample_engine, summary.Settings(s.start, s.end, min_cell=0), full)
    rows = pd.read_csv(full / "tapers.csv")
    assert list(rows.columns) == ["clinician_id", "clinic_id", "patient_key", "baseline_mme", "taper_start",
                                  "end_mme", "max_monthly_reduction_pct", "category", "follow_up"]
    assert rows["max_monthly_reduction_pct"].between(0, 100).all()
    by_clinician = pd.read_csv(full / "tapers.csv").groupby("clinician_id").size()
    aggregated = pd.read_csv(out / "tapers.csv", dtype=str).set_index("clinician_id")["tapers"]
    for clinician, n in by_clinician.items():
        assert (aggregated[clinician] == str(n)) if n >= 11 else pd.isna(aggregated[clinician]), clinician
    readme = (out / "README.txt").read_text(encoding="utf-8")
    for needle in ("Period: 2024-01-01 to 2024-06-30", "cdc2022", "Exclusions: on", "Attribution:",
                   "counts from 1 to 10 are suppressed", "stable across runs"):
        assert needle in readme
    # No raw patient identifier in any byte written.
    for path in out.iterdir():
        assert not re.search(rb"P\d{7}", path.read_bytes()), path.name


def test_taper_counts_withhold_small_counts_and_what_gives_them_away():
    def tapers(clinician, **categories):
        return [(clinician, "K1", c, "complete") for c, n in categories.items() for _ in range(n)]

    rows = (tapers("A", gradual=12, rapid=3) + tapers("B", gradual=4, abrupt_discontinuation=1)
            + tapers("C", gradual=20, moderate=11))
    frame = pd.DataFrame(rows, columns=["clinician_id", "clinic_id", "category", "follow_up"])
    frame.loc[frame.index[-1], "follow_up"] = "provisional"
    got = summary.taper_counts(frame, 11).set_index("clinician_id")
    # A: 15 tapers, 3 rapid (small): blank; gradual 12 withheld too, since 15 - 12 would give 3 back.
    assert got.loc["A", ["tapers", "gradual", "moderate", "rapid", "abrupt_discontinuation"]].tolist() == [
        15, None, 0, None, 0]
    assert got.loc["A", "withheld_why"] == ("rapid from 1 to 10; gradual withheld too, or the total would give a "
                                            "small count away")
    # B: 5 tapers in all: every count withheld.
    assert got.loc["B", list(summary.TAPER_COUNT_COLUMNS)].isna().all()
    assert got.loc["B", "withheld_why"] == "fewer than 11 tapers in all: every count withheld"
    # C: 31 tapers, 20 gradual, 11 moderate, one provisional (small): shown, except the provisional count.
    assert got.loc["C", ["tapers", "gradual", "moderate", "provisional"]].tolist() == [31, 20, 11, None]
    assert got.loc["C", "withheld_why"] == "provisional from 1 to 10"
    # Suppression off: the plain counts.
    assert summary.taper_counts(frame, 0).set_index("clinician_id").loc["B", "tapers"] == 5


# --- The data's start and end (analysis.coverage) ------------------------------------------------------

def test_summary_says_which_figures_the_data_cannot_measure_yet(sample_duckdb, tmp_path, monkeypatch):
    from analysis import db

    monkeypatch.setenv(summary.SALT_ENV, "test-secret")
    engine = db.make_engine(sample_duckdb, read_only=True)
    # The sample's first 23 days (1-23 Jan 2023; data begin 1 Jan 2023): 30 overlapping days cannot fit
    # (benzo_overlap); tapers need 180 days before, new starts 90, long-term figures 120: none exists.
    out = tmp_path / "first"
    summary.write_summary(engine, summary.Settings(dt.date(2023, 1, 1), dt.date(2023, 1, 23)), out)
    table = pd.read_csv(out / "clinician_measures.csv").set_index("measure_id")
    assert table.loc["benzo_overlap", "measurement"] == "needs a period of at least 30 days"
    for i in ("taper_rapid", "abrupt_discontinuation", "new_start_over_7d", "new_start_to_ltot", "high_dose_90"):
        assert table.loc[i, "measurement"] == "not measurable yet", i
        assert pd.isna(table.loc[i, "numerator"]) and pd.isna(table.loc[i, "value"]), i   # no figure at all
    assert set(table.loc[["naloxone_at_50"], "measurement"]) == {"complete"}
    readme = (out / "README.txt").read_text(encoding="utf-8")
    assert "benzo_overlap: needs a period of at least 30 days" in readme
    assert "taper_rapid: not measurable yet (no day of the period can be measured" in readme
    # 2025 (data end 31 Dec 2025): a taper needs 210 days from its start, so starts after 5 Jun 2025 are
    # provisional. The sample's 2025 tapers by quarter of start are 14, 10, 7, 1 (issue 12): the 7 + 1 of
    # the second half all start after 5 June.
    out = tmp_path / "last"
    summary.write_summary(engine, summary.Settings(dt.date(2025, 1, 1), dt.date(2025, 12, 31), min_cell=0), out)
    table = pd.read_csv(out / "clinician_measures.csv")
    tapers_rows = table[table["measure_id"] == "taper_rapid"]
    assert set(tapers_rows["measurement"]) == {"provisional"}
    assert set(tapers_rows["measurable_from"]) == {"2025-01-01"} and set(tapers_rows["measurable_to"]) == {"2025-06-05"}
    assert set(table.loc[table["measure_id"] == "new_start_over_7d", "measurement"]) == {"complete"}
    tapers = pd.read_csv(out / "tapers.csv", parse_dates=["taper_start"])
    assert len(tapers) == 14 + 10 + 7 + 1
    late = tapers["taper_start"] > "2025-06-05"
    assert (tapers.loc[late, "follow_up"] == "provisional").all() and (tapers.loc[~late, "follow_up"] == "complete").all()
    assert late.sum() >= 7 + 1
    consistency = pd.read_csv(out / "consistency.csv")
    q = consistency[consistency["measure_id"] == "taper_rapid"].set_index("quarter_start")["measurement"]
    # Q1 complete; Q2 measurable to 5 Jun; Q3 and Q4 not at all (1 Jul + 209 days is past the data end).
    assert q.to_dict() == {"2025-01-01": "complete", "2025-04-01": "provisional", "2025-07-01": "not measurable yet",
                           "2025-10-01": "not measurable yet"}
    engine.dispose()
