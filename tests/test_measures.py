"""Every declared measure on a small hand-built data set, on DuckDB and PostgreSQL.

Period: 2025-01-01 to 2025-06-30; the data are taken to run from 2024-01-01 to 2025-12-31.
Who is in each numerator and denominator, and to which clinician each patient is attributed, is worked
out by hand below the data set.
"""
from __future__ import annotations

import datetime as dt

import pytest

from analysis import db, ingest, measures
from tests.fixtures import write_dataset

D = dt.date
START, END = D(2025, 1, 1), D(2025, 6, 30)
DATA_START, DATA_END = D(2024, 1, 1), D(2025, 12, 31)
OXY10, OXY5 = "oxycodone hydrochloride 10 MG Oral Tablet", "oxycodone hydrochloride 5 MG Oral Tablet"
MORPHINE_ER = "12 HR Morphine Sulfate 15 MG Extended Release Oral Tablet"
ALPRAZOLAM, NALOXONE = "Alprazolam 0.5 MG Oral Tablet", "Naloxone Hydrochloride 4 MG/ACTUAT Nasal Spray"

CLINICS = [["C1", "North"], ["C2", "South"]]
CLINICIANS = [["D1", "A", "FM", "C1"], ["D2", "B", "FM", "C2"], ["D3", "C", "Pain", "C1"], ["D4", "D", "FM", "C2"]]


def rx(rx_id, pid, doc, day, drug, qty, days):
    return [rx_id, pid, doc, day.isoformat(), drug, "", "", "", "", str(qty), str(days), ""]


def monthly(pid, doc, start, mme, n):
    """n 30-day oxycodone 10 mg fills every 30 days at `mme` a day (quantity = 2 x MME)."""
    return [rx(f"{pid}-{start}-{i}", pid, doc, start + dt.timedelta(days=30 * i), OXY10, 2 * mme, 30) for i in range(n)]


def dataset():
    rows = []
    # L1, L2, L3: long-term since 2024-07-01 at 100, 60 and 30 MME; 18 fills run supply to 2025-12-21,
    # less than 60 days before the data end, so no stop is seen. L1 fills naloxone; L3 benzodiazepines.
    rows += monthly("L1", "D1", D(2024, 7, 1), 100, 18) + [rx("L1-nal", "L1", "D1", D(2025, 2, 1), NALOXONE, 2, 1)]
    rows += monthly("L2", "D1", D(2024, 7, 1), 60, 18)
    rows += monthly("L3", "D2", D(2024, 7, 1), 30, 18)
    rows += [rx("L3-bz1", "L3", "D2", D(2025, 1, 10), ALPRAZOLAM, 60, 30),
             rx("L3-bz2", "L3", "D2", D(2025, 2, 9), ALPRAZOLAM, 60, 30)]
    # T1: 100 MME from 2024-06-01, 9 fills (supply to 2025-02-25), then nothing: abrupt stop 2025-02-26.
    rows += monthly("T1", "D3", D(2024, 6, 1), 100, 9)
    # T2: the same 9 fills, then 75 MME from 2025-02-26 to past the data end: a 25%/month taper.
    rows += monthly("T2", "D3", D(2024, 6, 1), 100, 9) + monthly("T2", "D3", D(2025, 2, 26), 75, 11)
    # A1: new start 2025-03-01, 10 days (oxycodone 5 mg x 4 a day = 30 MME). A2: new start on ER morphine.
    rows += [rx("A1-1", "A1", "D2", D(2025, 3, 1), OXY5, 40, 10)]
    rows += [rx("A2-1", "A2", "D1", D(2025, 4, 1), MORPHINE_ER, 10, 5)]
    # A3: a fill on 2024-12-15 (10 days) means 2025-02-01 is not a new start (supply in the 90 days before).
    rows += [rx("A3-1", "A3", "D2", D(2024, 12, 15), OXY10, 20, 10), rx("A3-2", "A3", "D2", D(2025, 2, 1), OXY10, 20, 10)]
    # N1: new start 2025-01-15 at 20 MME, five 30-day fills: 150 days, 150 days' supply: long-term.
    rows += monthly("N1", "D2", D(2025, 1, 15), 20, 5)
    # M1: four prescribers within 180 days (5-day fills), after a 2024 fill (so not a new start).
    rows += [rx("M1-0", "M1", "D1", D(2024, 12, 10), OXY10, 20, 10)]
    rows += [rx(f"M1-{i}", "M1", doc, day, OXY10, 10, 5) for i, (doc, day) in enumerate(
        [("D1", D(2025, 2, 1)), ("D2", D(2025, 3, 1)), ("D3", D(2025, 4, 1)), ("D4", D(2025, 5, 1))], 1)]
    patients = sorted({r[1] for r in rows})
    return [[p, "1960-01-01", "F", "0", "0", "0", "0"] for p in patients], rows


# patient -> (clinician, in_numerator) for each measure, worked out by hand:
# - Attribution (most opioid days in the period): L1, L2, A2 -> D1; L3, N1, A1, A3 -> D2; T1, T2 -> D3;
#   M1 has 5 days from each of D1-D4: the tie goes to the latest fill, D4.
# - Long-term in the period: L1, L2, L3, T1, T2 (episodes since mid-2024) and N1 (150 days, 5 fills).
#   Average daily MME on supplied days in the period: L1 100, L2 60, L3 30, N1 20, T1 100 (Jan 1 - Feb 25),
#   T2 (56 days x 100 + 125 days x 75) / 181 = 82.9.
# - New starts: A1 (10 days), A2 (5 days, ER), N1 (30 days, becomes long-term); A3 and M1 had supply
#   in the 90 days before their first 2025 fill.
# - Benzodiazepine denominator: 2+ opioid fills and 15+ days' supply in the period: L1, L2, L3, N1, T2, M1
#   (T1 has one fill in 2025; A1, A2, A3 one each). L3: two alprazolam fills, 60 days overlapping.
# - Tapers starting in the period: T1 (2025-02-26, abrupt stop, speed 100%) and T2 (same day, 25%).
# - Eligible baseline (180 days before Jan 1 at >= 50 MME, or a taper in the period): L1, L2, T1, T2;
#   L1 and L2 are attributed by their baseline before Jan 1 (D1), T1 and T2 by theirs (D3).
# - Multiple prescribers, by clinic: M1 (clinic C2 through D4) is the only one with 4.
EXPECTED = {
    "high_dose_90": {"L1": ("D1", True), "L2": ("D1", False), "L3": ("D2", False), "N1": ("D2", False),
                     "T1": ("D3", True), "T2": ("D3", False)},
    "high_dose_50": {"L1": ("D1", True), "L2": ("D1", True), "L3": ("D2", False), "N1": ("D2", False),
                     "T1": ("D3", True), "T2": ("D3", True)},
    "benzo_overlap": {"L1": ("D1", False), "L2": ("D1", False), "L3": ("D2", True), "N1": ("D2", False),
                      "T2": ("D3", False), "M1": ("D4", False)},
    "naloxone_at_50": {"L1": ("D1", True), "L2": ("D1", False), "T1": ("D3", False), "T2": ("D3", False)},
    "new_start_over_7d": {"A1": ("D2", True), "A2": ("D1", False), "N1": ("D2", True)},
    "new_start_long_acting": {"A1": ("D2", False), "A2": ("D1", True), "N1": ("D2", False)},
    "new_start_to_ltot": {"A1": ("D2", False), "A2": ("D1", False), "N1": ("D2", True)},
    "taper_rapid": {"T1": ("D3", True), "T2": ("D3", False)},
    "abrupt_discontinuation": {"L1": ("D1", False), "L2": ("D1", False), "T1": ("D3", True), "T2": ("D3", False)},
    "multiple_prescribers": {"L1": ("D1", False), "L2": ("D1", False), "L3": ("D2", False), "N1": ("D2", False),
                             "T1": ("D3", False), "T2": ("D3", False), "A1": ("D2", False), "A2": ("D1", False),
                             "A3": ("D2", False), "M1": ("D4", True)},
}
EXPECTED["mean_daily_mme"] = EXPECTED["high_dose_90"]


@pytest.fixture(scope="module")
def loaded(module_engine, tmp_path_factory):
    """The hand-built data set, loaded once per database kind (DuckDB, PostgreSQL, Spark); tests only read."""
    tmp_path = tmp_path_factory.mktemp("measures")
    patients, rows = dataset()
    folder = write_dataset(tmp_path / "d", clinics=CLINICS, clinicians=CLINICIANS, patients=patients,
                           prescriptions=rows, events=[])
    ingest.load_directory(module_engine, folder, tmp_path / "rejects.csv", as_of=D(2026, 11, 1))
    return module_engine


def fetch(engine, measure):
    with engine.connect() as conn:
        return db.read_frame(conn, measure.query, measures.sql_params(measure, START, END, DATA_START, DATA_END))


def test_every_declared_measure_has_its_sql_and_its_hand_worked_members(loaded):
    assert {m.id for m in measures.MEASURES} == set(EXPECTED)
    for m in measures.MEASURES:
        rows = fetch(loaded, m)
        got = {r.patient_id: (r.clinician_id, bool(r.in_numerator)) for r in rows.itertuples()}
        assert got == EXPECTED[m.id], m.id


def test_mean_daily_mme_values_and_unit_rows(loaded):
    m = measures.BY_ID["mean_daily_mme"]
    rows = fetch(loaded, m).set_index("patient_id")
    assert rows["value"].to_dict() == pytest.approx(
        {"L1": 100, "L2": 60, "L3": 30, "N1": 20, "T1": 100, "T2": (56 * 100 + 125 * 75) / 181})
    units = measures.unit_rows(rows.reset_index(), m).set_index("unit_id")
    assert units.loc["D1", ["numerator", "denominator"]].tolist() == [pytest.approx(160), 2]  # 100 + 60
    assert units.loc["D1", "mean"] == pytest.approx(80)                      # (100 + 60) / 2
    assert units.loc["D3", "clinic_id"] == "C1"


def test_clinic_level_measure_groups_by_clinic(loaded):
    m = measures.BY_ID["multiple_prescribers"]
    units = measures.unit_rows(fetch(loaded, m), m).set_index("unit_id")
    assert units[["numerator", "denominator"]].to_dict("index") == {
        "C1": {"numerator": 0, "denominator": 5}, "C2": {"numerator": 1, "denominator": 5}}


def test_declarations_are_complete():
    for m in measures.MEASURES:
        assert m.direction in {"lower", "higher", "neutral"} and m.unit in {"clinician", "clinic"}
        assert m.kind in {"proportion", "mean"}
        assert all([m.title, m.why, m.numerator, m.denominator, m.authored_by, m.checked_by, m.reviewed_on,
                    m.next_review])
    assert measures.BY_ID["mean_daily_mme"].direction == "neutral"


def test_configured_thresholds_change_parameters_and_wording_not_ids():
    got = {m.id: m for m in measures.configured(low=40, high=80)}
    assert got["high_dose_90"].params["threshold_mme"] == 80
    assert got["high_dose_90"].title == "Long-term patients at 80 MME a day or more"
    assert got["high_dose_50"].params["threshold_mme"] == 40
    assert "is 40 or more" in got["high_dose_50"].numerator
    assert got["naloxone_at_50"].params["naloxone_mme"] == 40
    assert got["naloxone_at_50"].title == "Naloxone for patients at 40 MME a day or more"
    assert got["benzo_overlap"] == measures.BY_ID["benzo_overlap"]
    assert measures.configured() == measures.MEASURES


def test_naloxone_threshold_follows_the_configured_dose(loaded):
    # At 70 MME: L1 (100), T1 (100), T2 (82.9) qualify, L2 (60) does not; L1 alone has naloxone.
    m = next(x for x in measures.configured(low=70) if x.id == "naloxone_at_50")
    got = fetch(loaded, m).set_index("patient_id")
    assert sorted(got.index) == ["L1", "T1", "T2"] and got["in_numerator"].astype(bool).sum() == 1
