"""The dose engine on hand-worked examples: MME factors, the daily series, long-term therapy, tapers.

Every test runs on DuckDB and on PostgreSQL, those marked ALL_ENGINES on Apache Spark too. Each builds a small data set by code, loads it through
the real loader and runs the real queries; expected numbers are worked out by hand in the comments.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from analysis import db, dose, ingest
from tests.fixtures import CLINICIANS, CLINICS, HEADERS, write_dataset

D = dt.date
OXY10 = "oxycodone hydrochloride 10 MG Oral Tablet"  # 10 mg x 1.5 = 15 MME a tablet in every set
DATA_START, DATA_END = D(2023, 12, 20), D(2025, 6, 30)


def patient(pid: str, cancer: str = "0", hospice: str = "0", sickle: str = "0") -> list[str]:
    return [pid, "1960-01-01", "F", cancer, hospice, sickle, "0"]


def fill(rx_id, pid, day, drug, quantity, days, clinician="D1"):
    return [rx_id, pid, clinician, day.isoformat(), drug, "", "", "", "", str(quantity), str(days), ""]


def monthly(pid: str, start: dt.date, doses: list[float], every: int = 30) -> list[list[str]]:
    """One 30-day oxycodone 10 mg fill per dose, every `every` days; quantity = 2 x MME a day (15 MME a tablet)."""
    return [fill(f"{pid}-{i}", pid, start + dt.timedelta(days=every * i), OXY10, round(2 * mme, 6), 30)
            for i, mme in enumerate(doses)]


# The dose rules that every measure rests on run on Spark too: the MME factors, methadone, overlaps and gaps,
# the windows, orders, long-term episodes and unknown doses (a Spark load takes about 40 s, so the tests of
# single products' spellings run on DuckDB and PostgreSQL only; the taper and measure tests load once per
# module on every engine).
ALL_ENGINES = pytest.mark.parametrize("engine", ["duckdb", "postgresql", "spark"], indirect=True)


def load(engine, tmp_path, patients, prescriptions, events=(), extract_date=None):
    folder = write_dataset(tmp_path / "d", clinics=CLINICS, clinicians=CLINICIANS, patients=patients,
                           prescriptions=prescriptions, events=list(events))
    return ingest.load_directory(engine, folder, tmp_path / "rejects.csv", as_of=D(2026, 1, 1),
                                 extract_date=extract_date)


def run(engine, name, factor_set="cdc2022", exclude=True, **params):
    with engine.connect() as conn:
        return db.read_frame(conn, name, {**dose.DoseParams(factor_set, exclude).sql(), **params})


# --- MME per prescription ------------------------------------------------------------------------
# Factors as DESIGN.md states them (None: no factor in that set), written here by hand, not read from
# the reference CSV, so a wrong CSV row fails.
FACTORS = {
    "codeine": (0.15, 0.15, 0.15), "hydrocodone": (1, 1, 1), "morphine": (1, 1, 1),
    "oxycodone": (1.5, 1.5, 1.5), "oxymorphone": (3, 3, 3), "hydromorphone": (5, 4, 4),
    "methadone": (4.7, "tiered", 3), "tramadol": (0.2, None, 0.1), "tapentadol": (0.4, None, 0.4),
    "meperidine": (0.1, 0.1, 0.1), "butorphanol": (7, 7, 7), "levorphanol": (11, 11, 11),
    "pentazocine": (0.37, 0.37, 0.37), "dihydrocodeine": (0.25, 0.25, 0.25), "opium": (1, 1, 1),
    # Listed by the CDC MME data file only (issue 12: every ingredient the cited source lists).
    "propoxyphene": (None, None, 0.23), "levomethadyl": (None, None, 8),
}
SETS = ("cdc2022", "cdc2016", "cdc_file_2018")


@ALL_ENGINES
def test_each_factor_in_each_set(engine, tmp_path):
    # "<Ingredient> 10 MG Oral Tablet", 60 tablets for 30 days = 20 mg a day; MME = 20 x factor.
    rows = [fill(ing, "P1", D(2025, 1, 1), f"{ing.title()} 10 MG Oral Tablet", 60, 30) for ing in FACTORS]
    load(engine, tmp_path, [patient("P1")], rows)
    for i, factor_set in enumerate(SETS):
        got = run(engine, "rx_daily_mme", factor_set).set_index("rx_id")
        for ing, factors in FACTORS.items():
            expected = factors[i]
            status = got.loc[ing, "mme_status"]
            if expected is None:
                assert status == "no_factor", (factor_set, ing)
            elif expected == "tiered":
                assert status == "tiered", (factor_set, ing)
            else:
                assert got.loc[ing, "daily_mme"] == pytest.approx(20 * expected), (factor_set, ing)


def test_fentanyl_patch_counts_mcg_per_hour_worn(engine, tmp_path):
    # 10 patches of 25 mcg/hr for 30 days: each patch is worn 72 h, so 30 days are covered and the
    # patient wears 25 mcg/hr throughout: 25 x 2.4 = 60 MME a day (CDC 2022, 2016); the 2018 file's
    # 7.2 x 10 patches / 30 days x 25 = 60 as well.
    load(engine, tmp_path, [patient("P1")],
         [fill("F1", "P1", D(2025, 1, 1), "72 HR Fentanyl 0.025 MG/HR Transdermal System", 10, 30)])
    for factor_set in SETS:
        assert run(engine, "rx_daily_mme", factor_set)["daily_mme"].tolist() == [pytest.approx(60)]


def test_combination_product_counts_its_opioid(engine, tmp_path):
    # Acetaminophen 325 / oxycodone 5: 120 tablets in 30 days = 4 a day x 5 mg x 1.5 = 30 MME a day.
    load(engine, tmp_path, [patient("P1")],
         [fill("C1", "P1", D(2025, 1, 1), "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet", 120, 30)])
    assert run(engine, "rx_daily_mme")["daily_mme"].tolist() == [pytest.approx(30)]


def test_dose_coverage_counts_prescriptions_without_a_factor(engine, tmp_path):
    # Tramadol has no factor in the CDC 2016 set: counted as no_factor, not dropped; the day still has
    # supply (days_supplied 30) but adds no MME. Oxycodone is computed; methadone is tiered.
    load(engine, tmp_path, [patient("P1")], [
        fill("T1", "P1", D(2025, 1, 1), "Tramadol Hydrochloride 50 MG Oral Tablet", 120, 30),
        fill("T2", "P1", D(2025, 2, 1), "Tramadol Hydrochloride 50 MG Oral Tablet", 120, 30),
        fill("O1", "P1", D(2025, 1, 1), OXY10, 60, 30),
        fill("M1", "P1", D(2025, 1, 1), METHADONE, 30, 30),
    ])
    got = run(engine, "dose_coverage", "cdc2016")
    assert sorted(got[["ingredient", "mme_status", "prescriptions"]].values.tolist()) == [
        ["methadone", "tiered", 1], ["oxycodone", "computed", 1], ["tramadol", "no_factor", 2]]
    # February: only tramadol (Feb 1 - Mar 2): 28 days with supply, 0 MME under cdc2016;
    # under cdc2022 tramadol is 4 x 50 mg x 0.2 = 40 MME a day: 28 x 40 = 1120.
    feb = dose.period_grid(D(2025, 2, 1), D(2025, 2, 28), "month")
    assert run(engine, "patient_period_dose", "cdc2016", **feb)[["days_supplied", "total_mme"]].values.tolist() == [[28, 0]]
    assert run(engine, "patient_period_dose", "cdc2022", **feb)["total_mme"].tolist() == [pytest.approx(1120)]


def test_buprenorphine_naloxone_and_benzodiazepines_never_enter_mme(engine, tmp_path):
    load(engine, tmp_path, [patient("P1")], [
        fill("B1", "P1", D(2025, 1, 1), "Buprenorphine 8 MG / Naloxone 2 MG Sublingual Tablet", 60, 30),
        fill("N1", "P1", D(2025, 1, 1), "Naloxone Hydrochloride 4 MG/ACTUAT Nasal Spray", 2, 1),
        fill("Z1", "P1", D(2025, 1, 1), "Alprazolam 0.5 MG Oral Tablet", 60, 30),
    ])
    assert run(engine, "rx_daily_mme").empty
    assert run(engine, "patient_dose_segments").empty


METHADONE = "Methadone Hydrochloride 10 MG Oral Tablet"


@ALL_ENGINES
def test_methadone_single_factor_2022_and_tiers_of_the_patients_total_2016(engine, tmp_path):
    # P1: one prescription, 90 tablets of 10 mg in 30 days = 30 mg a day.
    #   cdc2022: 30 x 4.7 = 141. cdc2016: 30 mg is in the 21-40 tier, factor 8: 240. 2018 file: 30 x 3 = 90.
    # P2: two overlapping prescriptions of 15 mg a day each: 30 mg a day in total on the shared days, so
    #   the 2016 tier is 8 (240), not 4 applied to each (2 x 60 = 120). Alone (days 31-45): 15 mg x 4 = 60.
    # P3: 20 mg a day exactly is the top of the first tier: 20 x 4 = 80.
    load(engine, tmp_path, [patient("P1"), patient("P2"), patient("P3")], [
        fill("M1", "P1", D(2025, 1, 1), METHADONE, 90, 30),
        fill("M2", "P2", D(2025, 1, 1), METHADONE, 45, 30),
        fill("M3", "P2", D(2025, 1, 16), METHADONE, 45, 30),
        fill("M4", "P3", D(2025, 1, 1), METHADONE, 60, 30),
    ])
    per_rx = run(engine, "rx_daily_mme", "cdc2022").set_index("rx_id")["daily_mme"]
    assert per_rx["M1"] == pytest.approx(141)
    assert run(engine, "rx_daily_mme", "cdc_file_2018").set_index("rx_id").loc["M1", "daily_mme"] == pytest.approx(90)
    segments = run(engine, "patient_dose_segments", "cdc2016")
    supplied = segments[segments["supplied"]]
    got = {(r.patient_id, r.seg_start): r.daily_mme for r in supplied.itertuples()}
    assert got == {
        ("P1", D(2025, 1, 1)): pytest.approx(240),
        ("P2", D(2025, 1, 1)): pytest.approx(60),    # 15 mg x 4, Jan 1-15
        ("P2", D(2025, 1, 16)): pytest.approx(240),  # 30 mg x 8, Jan 16-30
        ("P2", D(2025, 1, 31)): pytest.approx(60),   # 15 mg x 4, Jan 31 - Feb 14
        ("P3", D(2025, 1, 1)): pytest.approx(80),
    }


# --- The daily series and per-period aggregates ----------------------------------------------------
MONTHS_2025 = dose.period_grid(D(2025, 1, 1), D(2025, 3, 31), "month")


@ALL_ENGINES
def test_overlapping_prescriptions_sum_on_shared_days(engine, tmp_path):
    # Oxycodone 10 mg 60 tablets / 30 days from Jan 1 = 30 MME (Jan 1-30); hydrocodone 10 mg 30 tablets /
    # 30 days from Jan 16 = 10 MME (Jan 16 - Feb 14). Daily: Jan 1-15 30, Jan 16-30 40, Jan 31 - Feb 14 10.
    # January: 15 x 30 + 15 x 40 + 1 x 10 (Jan 31) = 1060 over all 31 days (avg 34.19 both ways), max 40.
    # February: 14 x 10 = 140 over 14 days (avg 10), / 28 days = 5, max 10.
    load(engine, tmp_path, [patient("P1")], [
        fill("A", "P1", D(2025, 1, 1), OXY10, 60, 30),
        fill("B", "P1", D(2025, 1, 16), "Hydrocodone Bitartrate 10 MG Oral Tablet", 30, 30),
    ])
    got = run(engine, "patient_period_dose", **MONTHS_2025).sort_values("period_index")
    rows = [(r.period_start, r.total_mme, r.days_supplied, r.avg_mme_supplied, r.avg_mme_period, r.max_daily_mme)
            for r in got.itertuples()]
    assert rows == [
        (D(2025, 1, 1), pytest.approx(1060), 31, pytest.approx(1060 / 31), pytest.approx(1060 / 31), pytest.approx(40)),
        (D(2025, 2, 1), pytest.approx(140), 14, pytest.approx(10), pytest.approx(5), pytest.approx(10)),
    ]


@ALL_ENGINES
def test_early_refill_overlaps_and_a_gap_leaves_days_unsupplied(engine, tmp_path):
    # 30 MME fills (60 tablets / 30 days): Jan 1 (to Jan 30), an early refill Jan 26 (to Feb 24: Jan 26-30
    # at 60 MME), then Mar 7 after a gap Feb 25 - Mar 6 (to Apr 5).
    # Jan: 25 x 30 + 5 x 60 + 1 x 30 (Jan 31, second fill alone) = 1080 over 31 days supplied; max 60.
    # Feb: Feb 1-24 = 24 days x 30 = 720; avg over supplied days 30; over the month 720 / 28 = 25.714.
    # Mar: Mar 7-31 = 25 days x 30 = 750; / 31 days = 24.194.
    load(engine, tmp_path, [patient("P1")], [
        fill("A", "P1", D(2025, 1, 1), OXY10, 60, 30),
        fill("B", "P1", D(2025, 1, 26), OXY10, 60, 30),
        fill("C", "P1", D(2025, 3, 7), OXY10, 60, 30),
    ])
    got = run(engine, "patient_period_dose", **MONTHS_2025).set_index("period_start")
    assert got.loc[D(2025, 1, 1), ["total_mme", "days_supplied"]].tolist() == [pytest.approx(1080), 31]
    assert got.loc[D(2025, 1, 1), "max_daily_mme"] == pytest.approx(60)
    assert got.loc[D(2025, 2, 1), ["total_mme", "days_supplied", "avg_mme_supplied"]].tolist() == [
        pytest.approx(720), 24, pytest.approx(30)]
    assert got.loc[D(2025, 2, 1), "avg_mme_period"] == pytest.approx(720 / 28)
    assert got.loc[D(2025, 3, 1), ["days_supplied", "avg_mme_period"]].tolist() == [25, pytest.approx(750 / 31)]


def test_period_grids():
    assert dose.period_grid(D(2024, 2, 10), D(2024, 12, 31), "quarter") == {
        "start": D(2024, 1, 1), "months": 3, "days": 0, "n_periods": 4}
    assert dose.period_grid(D(2024, 1, 1), D(2024, 3, 1), 30) == {
        "start": D(2024, 1, 1), "months": 0, "days": 30, "n_periods": 3}  # 61 days: 30 + 30 + 1
    assert dose.period_grid(D(2024, 1, 1), D(2024, 12, 31), "all")["days"] == 366


@ALL_ENGINES
def test_thirty_day_windows_and_whole_period(engine, tmp_path):
    # One 30 MME fill Jan 1 - Jan 30: 30-day windows from Jan 1 -> window 0 holds all 900 MME;
    # the whole period Jan 1 - Mar 31 (90 days) -> avg over the period 900 / 90 = 10.
    load(engine, tmp_path, [patient("P1")], [fill("A", "P1", D(2025, 1, 1), OXY10, 60, 30)])
    windows = run(engine, "patient_period_dose", **dose.period_grid(D(2025, 1, 1), D(2025, 3, 31), 30))
    assert windows[["period_index", "total_mme", "period_days"]].values.tolist() == [[0, 900, 30]]
    whole = run(engine, "patient_period_dose", **dose.period_grid(D(2025, 1, 1), D(2025, 3, 31), "all"))
    assert whole["avg_mme_period"].tolist() == [pytest.approx(10)]


@ALL_ENGINES
def test_a_prescribing_order_becomes_thirty_day_fills_at_its_daily_dose(engine, tmp_path):
    # Issue 13: an order (no quantity, no days_supply) of oxycodone 5 mg tablets, 4 a day, from 2025-01-01
    # to 2025-03-31 (31 + 28 + 31 = 90 days) is three consecutive 30-day fills of 4 x 30 = 120 tablets, on
    # 01-01, 01-31 and 03-02; each is 120 x 5 mg x 1.5 / 30 = 30 MME a day, marked as derived (sig_end).
    header = HEADERS["prescriptions"] + ["units_per_day", "end_date"]
    oxy5 = "Oxycodone Hydrochloride 5 MG Oral Tablet"
    folder = write_dataset(tmp_path / "d", headers={"prescriptions": header}, clinics=CLINICS,
                           clinicians=CLINICIANS, patients=[patient("P1")], events=[],
                           prescriptions=[["O1", "P1", "D1", "2025-01-01", oxy5, "", "", "", "", "", "", "",
                                           "4", "2025-03-31"]])
    ingest.load_directory(engine, folder, tmp_path / "rejects.csv", as_of=D(2026, 1, 1), extract_date=D(2025, 6, 30))
    per_rx = run(engine, "rx_daily_mme").sort_values("fill_date")
    assert per_rx[["rx_id", "fill_date", "days_supply"]].values.tolist() == [
        ["O1", D(2025, 1, 1), 30], ["O1~fill2", D(2025, 1, 31), 30], ["O1~fill3", D(2025, 3, 2), 30]]
    assert per_rx["daily_mme"].tolist() == [pytest.approx(30)] * 3
    with engine.connect() as conn:
        sources = conn.exec_driver_sql("select distinct quantity_source from prescriptions").scalars().all()
        segments = conn.exec_driver_sql(
            "select seg_start, seg_end, daily_mme, supplied from daily_dose_segments "
            "where factor_set = 'cdc2022' and patient_id = 'P1' order by seg_start").all()
    assert sources == ["sig_end"]
    # The stored daily series: 30 MME every day from 01-01 to 03-31 (stretches that follow each other
    # without a gap), then no supply from 04-01 on.
    supplied = [s for s in segments if s.supplied]
    assert supplied[0].seg_start == D(2025, 1, 1) and supplied[-1].seg_end == D(2025, 3, 31)
    assert all(b.seg_start == a.seg_end + dt.timedelta(days=1) for a, b in zip(supplied, supplied[1:]))
    assert [s.daily_mme for s in supplied] == [pytest.approx(30)] * len(supplied)
    rest = segments[len(supplied):]
    assert [(s.seg_start, s.daily_mme, s.supplied) for s in rest] == [(D(2025, 4, 1), 0, False)]


# --- Long-term opioid therapy (Von Korff 2008) ------------------------------------------------------
LTOT = dose.LtotParams().sql()


def spaced(pid: str, n: int, every: int, days: int, start=D(2025, 1, 1)) -> list[list[str]]:
    return [fill(f"{pid}-{i}", pid, start + dt.timedelta(days=every * i), OXY10, 2 * days, days) for i in range(n)]


LTOT_CASES = {
    # pid: (fills, days, n, every) -> is_ltot.  Duration = last fill + days - first fill.
    "A": (spaced("A", 4, 30, 30), True),    # 120 days, 4 fills, 120 days' supply: >= 120 supply -> LTOT
    "B": (spaced("B", 4, 29, 29), False),   # 116 days, 116 supply, 4 fills: just under 120 -> not
    "C": (spaced("C", 10, 9, 10), True),    # fills on day 0..81, last covers 81-90: 91 days > 90, 10 fills
    "D": (spaced("D", 10, 9, 9), False),    # covers days 0-89: 90 days, not MORE than 90 (10 fills, 90 supply)
    "E": (spaced("E", 9, 11, 7), False),    # 95 days but 9 fills and 63 days' supply
    "F": (spaced("F", 3, 31, 31), False),   # 93 days, 3 fills, 93 supply
}


@ALL_ENGINES
def test_long_term_episodes_just_over_and_under_each_threshold(engine, tmp_path):
    load(engine, tmp_path, [patient(p) for p in LTOT_CASES], [r for rows, _ in LTOT_CASES.values() for r in rows])
    got = run(engine, "ltot_episodes", **LTOT).set_index("patient_id")
    assert got["is_ltot"].to_dict() == {p: expected for p, (_, expected) in LTOT_CASES.items()}
    assert got.loc["C", ["duration_days", "fills", "days_supply"]].tolist() == [91, 10, 100]
    assert got.loc["D", "duration_days"] == 90


@ALL_ENGINES
def test_a_gap_of_30_days_continues_an_episode_and_31_starts_another(engine, tmp_path):
    # Two 30-day fills Jan 1 and Jan 31 supply Jan 1 - Mar 1. The gap is the days without supply before
    # the next fill: a fill on Apr 1 leaves Mar 2 .. Mar 31 = 30 days (same episode); Apr 2 leaves 31 (new).
    base = [("G30", D(2025, 4, 1)), ("G31", D(2025, 4, 2))]
    rows = []
    for pid, third in base:
        rows += [fill(f"{pid}-1", pid, D(2025, 1, 1), OXY10, 60, 30), fill(f"{pid}-2", pid, D(2025, 1, 31), OXY10, 60, 30),
                 fill(f"{pid}-3", pid, third, OXY10, 60, 30)]
    load(engine, tmp_path, [patient("G30"), patient("G31")], rows)
    got = run(engine, "ltot_episodes", **LTOT)
    assert got.groupby("patient_id")["episode_no"].max().to_dict() == {"G30": 1, "G31": 2}


@ALL_ENGINES
def test_patient_is_long_term_in_the_periods_an_episode_overlaps(engine, tmp_path):
    # Case A: Jan 1 - Apr 30 2025 (120 days) -> long-term in Q1 (90 days) and Q2 (30 days), not Q3.
    load(engine, tmp_path, [patient("A")], LTOT_CASES["A"][0])
    got = run(engine, "patient_period_ltot", **LTOT, **dose.period_grid(D(2025, 1, 1), D(2025, 9, 30), "quarter"))
    assert got[["period_start", "ltot_days"]].sort_values("period_start").values.tolist() == [
        [D(2025, 1, 1), 90], [D(2025, 4, 1), 30]]


# --- Tapers (Fenton 2019, Agnoli 2021, Neprash 2021) -------------------------------------------------
# Every taper patient gets eight 100 MME fills from 2023-12-20 (240 days: a stable 100 MME baseline),
# so the next fill, the first at a new dose, falls on 2023-12-20 + 240 days = 2024-08-16, mid-month.
START, STEP = D(2023, 12, 20), D(2024, 8, 16)
BASE = [100.0] * 8
FOLLOW = 14  # fills after the step keep supply going past DATA_END


def taper_data():
    return {
        # A step from 100 to 50 on Aug 16. Calendar months would show Aug 83.9 -> Sep 50 (a 34% fall);
        # sliding 30-day windows see the true step: 100 -> 50 = 50% of baseline a month: rapid.
        "STEP": monthly("STEP", START, BASE + [50.0] * FOLLOW),
        # 8% of baseline a month: 92, 84, ... 36, then 36: every 30-day window falls by exactly 8: gradual.
        "GRAD": monthly("GRAD", START, BASE + [92.0 - 8 * k for k in range(8)] + [36.0] * 6),
        # 100 -> 40: 60% in a month: rapid.
        "RAPID": monthly("RAPID", START, BASE + [40.0] * FOLLOW),
        # Stops dead after 240 days at 100: abrupt discontinuation (last 30 days 100 >= 50% of 100).
        "ABRUPT": monthly("ABRUPT", START, BASE),
        # 100 -> 70 -> 40 -> 10 -> stop: 30%/month (moderate); stops Nov 14 at 10 MME (< 50): not abrupt.
        "DOWN": monthly("DOWN", START, BASE + [70.0, 40.0, 10.0]),
        # Supply ends 2025-06-16, two weeks before the data end: neither a taper nor a discontinuation.
        "CENSOR": monthly("CENSOR", D(2024, 10, 20), BASE),
        # Same as ABRUPT, but the patient has cancer, or is in hospice care: excluded by default.
        "CANCER": monthly("CANCER", START, BASE),
        "HOSPICE": monthly("HOSPICE", START, BASE),
        # Stable at 100 with a 3% dip for a month: a reduction, but never 15% below baseline.
        "STABLE": monthly("STABLE", START, BASE + [97.0] + [100.0] * FOLLOW),
        # Stable at 100, always refilled 3 days early: the overlaps end in falls, but none is sustained.
        "REFILL": monthly("REFILL", START, [100.0] * 22, every=27),
        # Fills every 31 days leave one day without supply before each fill; 100 then 50 from the 9th
        # fill on 2023-12-20 + 8 x 31 = 2024-08-24. The short gaps are not starts; the settled step is.
        "GAPPY": monthly("GAPPY", START, BASE + [50.0] * FOLLOW, every=31),
    }


TAPERS = dose.TaperParams().sql(DATA_START, DATA_END)


@pytest.fixture(scope="module")
def tapers(module_engine, tmp_path_factory):
    """The taper cases, loaded once per database kind (DuckDB, PostgreSQL, Spark); the tests only read."""
    engine, tmp_path = module_engine, tmp_path_factory.mktemp("tapers")
    data = taper_data()
    pts = [patient(p, cancer="1" if p == "CANCER" else "0", hospice="true" if p == "HOSPICE" else "0") for p in data]
    # An ED visit 20 days after the abrupt stop, and one 400 days after it (outside the year).
    events = [["ABRUPT", "2024-09-05", "ed_visit"], ["ABRUPT", "2025-09-20", "ed_visit"]]
    # The data were extracted on DATA_END: later fills are rejected, and every record ends there.
    load(engine, tmp_path, pts, [r for rows in data.values() for r in rows], events, extract_date=DATA_END)
    return engine


def test_taper_categories_speeds_and_doses(tapers):
    got = run(tapers, "tapers", **TAPERS).set_index("patient_id")
    assert sorted(got.index) == ["ABRUPT", "DOWN", "GAPPY", "GRAD", "RAPID", "STEP"]
    gappy = got.loc["GAPPY"]
    got = got.drop("GAPPY")
    assert (got["taper_start"] == STEP).all()
    assert got["baseline_mme"].tolist() == [pytest.approx(100)] * 5
    expected = {
        # patient: (speed % of baseline a month, category, end dose, discontinued, min 60-day mean)
        "STEP": (50, "rapid", 50, False, 50),
        "GRAD": (8, "gradual", 44, False, 48),      # end: days 180-209 are the 7th step, 92 - 48 = 44
        "RAPID": (60, "rapid", 40, False, 40),
        "ABRUPT": (100, "abrupt_discontinuation", 0, True, 0),
        "DOWN": (30, "moderate", 0, True, 5),       # windows: (70+40)/2, (40+10)/2, (10+0)/2 = 5, 0...
    }
    for pid, (speed, category, end, stopped, _) in expected.items():
        row = got.loc[pid]
        assert row["max_monthly_reduction_pct"] == pytest.approx(speed), pid
        assert row["category"] == category, pid
        assert row["end_mme"] == pytest.approx(end), pid
        assert bool(row["discontinued"]) is stopped, pid
    assert got.loc["STEP", "min_window_mme"] == pytest.approx(50)
    assert got.loc["GRAD", "min_window_mme"] == pytest.approx(48)   # (52 + 44) / 2
    assert got.loc["DOWN", "min_window_mme"] == pytest.approx(0)
    # DOWN stops on Nov 14 (Aug 16 + 90); the 30 days before averaged 10 MME, 10% of baseline.
    assert got.loc["DOWN", "stop_day"] == D(2024, 11, 14)
    assert got.loc["DOWN", "stop_mme"] == pytest.approx(10)
    assert got.loc["ABRUPT", "stop_day"] == STEP and got.loc["ABRUPT", "stop_mme"] == pytest.approx(100)
    # GAPPY: baseline Feb 26 - Aug 23 holds 6 gap days (Aug 23 and every 31 days before): 174 x 100 / 180
    # = 290/3. Windows slide from the day before the start: the 30 days ending Aug 23 hold one gap day
    # (29 x 100 / 30 = 96.67) and the next 30 are all at 50: a fall of 140/3 MME, and 140/3 / (290/3)
    # = 48.3% of baseline a month: rapid.
    assert gappy["taper_start"] == D(2024, 8, 24)
    assert gappy["baseline_mme"] == pytest.approx(290 / 3)
    assert gappy["max_monthly_reduction_pct"] == pytest.approx(100 * 140 / 290)
    assert gappy["category"] == "rapid"


def test_excluded_patients_come_back_when_exclusions_are_off(tapers):
    got = run(tapers, "tapers", exclude=False, **TAPERS).set_index("patient_id")
    assert got.loc[["CANCER", "HOSPICE"], "category"].tolist() == ["abrupt_discontinuation"] * 2
    assert run(tapers, "ltot_episodes", exclude=False, **LTOT)["patient_id"].nunique() == 11
    assert run(tapers, "ltot_episodes", **LTOT)["patient_id"].nunique() == 9


def test_research_baseline_of_twelve_months_needs_a_year_of_data(tapers):
    # With a 360-day baseline, a start on Aug 16 2024 would need data from Aug 2023: none can be judged.
    # GRAD's step on Dec 14 2024 (Aug 16 + 120) is the first with 360 days of data before it (from Dec 20
    # 2023); its baseline: (240 x 100 + 30 x (92 + 84 + 76 + 68)) / 360 = 33600 / 360 = 93.33, and the
    # later steps (60, 52, 44, 36) fall more than 15% below that.
    long = dose.TaperParams(baseline_days=360).sql(DATA_START, DATA_END)
    got = run(tapers, "tapers", **long)
    assert got[["patient_id", "taper_start", "category"]].values.tolist() == [["GRAD", D(2024, 12, 14), "gradual"]]
    assert got["baseline_mme"].tolist() == [pytest.approx(33600 / 360)]


def test_events_after_a_taper(tapers):
    got = run(tapers, "taper_outcomes", **TAPERS)
    assert got[["patient_id", "event_type", "days_to_first_event", "category"]].values.tolist() == [
        ["ABRUPT", "ed_visit", 20, "abrupt_discontinuation"]]


# --- What every load stores ---------------------------------------------------------------------------

def _stored(engine, table):
    with engine.connect() as conn:
        return pd.DataFrame(conn.exec_driver_sql(f"select * from {table}").mappings().all())


def test_stored_tapers_equal_the_tapers_measured_from_scratch(tapers):
    # The load measures tapers once per factor set with the default parameters over its own data range
    # (first to last fill); the dashboard reads them. They must be the live query's rows, value for value.
    with tapers.connect() as conn:
        bounds = db.read_frame(conn, "data_bounds").iloc[0]
    own_range = dose.TaperParams().sql(bounds["data_start"], bounds["data_end"])
    live = run(tapers, "tapers", exclude=False, **own_range).sort_values(["patient_id", "taper_start"])
    stored = _stored(tapers, "stored_tapers")
    stored = stored[stored["factor_set"] == "cdc2022"].sort_values(["patient_id", "taper_start"])
    columns = ["patient_id", "taper_start", "baseline_mme", "end_mme", "max_monthly_reduction_pct", "discontinued"]
    assert len(live) == len(stored) >= 8   # at least the 6 above, and the cancer and hospice patients
    for col in columns:
        expected = stored[col].tolist()
        assert live[col].tolist() == (pytest.approx(expected) if live[col].dtype.kind == "f" else expected), col
    # And read back through the stored fragment, the categories follow the speed bands given.
    attributed = run(tapers, "tapers_attributed", **TAPERS).set_index("patient_id")
    assert attributed.loc["GRAD", "category"] == "gradual" and attributed.loc["STEP", "category"] == "rapid"
    wider = run(tapers, "tapers_attributed", **{**TAPERS, "gradual_max_pct": 60, "rapid_min_pct": 80})
    assert wider.set_index("patient_id").loc["STEP", "category"] == "gradual"   # 50%/month under a 60% band


@ALL_ENGINES
def test_stored_long_term_episodes_equal_the_episodes_measured_from_scratch(engine, tmp_path):
    load(engine, tmp_path, [patient(p) for p in LTOT_CASES], [r for rows, _ in LTOT_CASES.values() for r in rows])
    live = run(engine, "ltot_episodes", **LTOT).sort_values(["patient_id", "episode_no"]).reset_index(drop=True)
    stored = _stored(engine, "stored_ltot_episodes").sort_values(["patient_id", "episode_no"]).reset_index(drop=True)
    assert len(live) == len(LTOT_CASES)
    for col in ["patient_id", "episode_start", "episode_end", "duration_days", "fills", "days_supply", "is_ltot"]:
        assert [str(v) for v in live[col]] == [str(v) for v in stored[col]], col


# --- Every spelling of a unit and a dose form (issue 12, part 4) -----------------------------------------

def given(rx_id, pid, day, ingredient, strength, unit, form, quantity, days, name=""):
    """A prescription whose ingredient, strength, unit and dose form are given as fields (FDA/CDC style)."""
    return [rx_id, pid, "D1", day.isoformat(), name, ingredient, strength, unit, form, str(quantity), str(days), ""]


# Fentanyl 50 mcg/hr, 10 patches over 30 days, in the spellings of RxNorm, FDA SPL, the CDC file and
# hand-made extracts. Right: 50 x 2.4 = 120 MME a day (CDC 2022, 2016); the 2018 file's 7.2 x 10 / 30 x 50
# = 120 too. Before the vocabulary, 'PATCH, EXTENDED RELEASE' gave 0 (only "transdermal" was a patch).
PATCHES = [
    ("fentanyl", "50", "MCG/HR", "PATCH, EXTENDED RELEASE"),
    ("fentanyl", "50", "mcg/h", "Transdermal System"),
    ("fentanyl", "50", "MCG/1HR", "FILM, EXTENDED RELEASE"),
    ("fentanyl", "50", "mcg/hr", "Transdermal Patch"),
    ("fentanyl", "50", "µg/hr", "patch"),
    ("fentanyl", "50", "ug/h", ""),                     # per hour: a patch whatever the form says
    ("fentanyl", "0.05", "MG/HR", "PATCH"),
    ("Fentanyl Citrate", "50", "MCG/HR", "Patch, Extended Release"),
]


def test_fentanyl_patch_in_every_spelling_is_120_mme(engine, tmp_path):
    rows = [given(f"F{i}", "P1", D(2025, 1, 1), *p, 10, 30) for i, p in enumerate(PATCHES)]
    rows.append(fill("FN", "P1", D(2025, 1, 1), "Fentanyl 50 MCG/HR PATCH, EXTENDED RELEASE", 10, 30))
    load(engine, tmp_path, [patient("P1")], rows)
    for factor_set in SETS:
        got = run(engine, "rx_daily_mme", factor_set).set_index("rx_id")["daily_mme"]
        assert got.to_dict() == {r[0]: pytest.approx(120) for r in rows}, factor_set


# Oxycodone 5 mg per 5 mL = 1 mg/mL; 150 mL over 10 days = 15 mL a day = 15 mg x 1.5 = 22.5 MME a day
# (before: 5 MG/5ML read as 5 mg/mL gave 112.5).
LIQUIDS = [
    ("oxycodone", "5", "MG/5ML", "SOLUTION; ORAL"),
    ("oxycodone", "5", "mg/5 mL", "Oral Solution"),
    ("oxycodone", "1", "MG/ML", "Oral Solution"),
    ("oxycodone", "1", "mg/1mL", "SOLUTION"),
    ("oxycodone", "1000", "MCG/ML", "Oral Solution"),
]


def test_liquids_per_5_ml_are_per_ml(engine, tmp_path):
    rows = [given(f"L{i}", "P1", D(2025, 1, 1), *x, 150, 10) for i, x in enumerate(LIQUIDS)]
    rows.append(fill("LN", "P1", D(2025, 1, 1), "Oxycodone Hydrochloride 5 MG/5ML Oral Solution", 150, 10))
    load(engine, tmp_path, [patient("P1")], rows)
    got = run(engine, "rx_daily_mme").set_index("rx_id")["daily_mme"]
    assert got.to_dict() == {r[0]: pytest.approx(22.5) for r in rows}


# Transmucosal fentanyl, CDC oral MME data file notes 2-4: buccal/sublingual tablets and lozenges 0.13 per
# mcg, films and oral sprays 0.18, nasal spray 0.16. CDC 2022 and 2016 list fentanyl only as transdermal,
# so under them these have no factor (dose unknown), never 0 MME.
TRANSMUCOSAL = [
    # (spelling, strength, unit, form, quantity, days, MME a day under cdc_file_2018)
    ("buccal 200 mcg x 4 a day: 200 x 4 x 0.13 = 104", "200", "MCG", "Buccal Tablet", 120, 30, 104),
    ("FDA spelling", "200", "MCG", "TABLET; BUCCAL", 120, 30, 104),
    ("sublingual, ug", "200", "ug", "Sublingual Tablet", 120, 30, 104),
    ("lozenge 400 mcg x 2 a day: 400 x 2 x 0.13 = 104", "400", "MCG", "Lozenge", 60, 30, 104),
    ("LOZENGE", "0.4", "MG", "LOZENGE", 60, 30, 104),
    ("CDC spelling", "400", "mcg", "Lozenge/Troche", 60, 30, 104),
    ("nasal spray 100 mcg x 4 a day: 100 x 4 x 0.16 = 64", "100", "MCG/ACTUAT", "Nasal Spray", 120, 30, 64),
    ("FDA spelling, per spray", "100", "mcg per spray", "SPRAY; NASAL", 120, 30, 64),
    ("film 200 mcg x 4 a day: 200 x 4 x 0.18 = 144", "200", "MCG", "Buccal Film", 120, 30, 144),
    ("oral spray 100 mcg x 4 a day: 100 x 4 x 0.18 = 72", "100", "MCG/ACTUAT", "SPRAY; SUBLINGUAL", 120, 30, 72),
]


def test_transmucosal_fentanyl_under_the_cdc_file_and_unknown_under_the_guidelines(engine, tmp_path):
    rows = [given(f"T{i}", "P1", D(2025, 1, 1), "fentanyl", s, u, f, q, d) for i, (_, s, u, f, q, d, _) in
            enumerate(TRANSMUCOSAL)]
    rows.append(fill("TN", "P1", D(2025, 1, 1), "fentanyl citrate 0.2 MG Buccal Tablet", 120, 30))
    load(engine, tmp_path, [patient("P1")], rows)
    got = run(engine, "rx_daily_mme", "cdc_file_2018").set_index("rx_id")["daily_mme"]
    expected = {f"T{i}": pytest.approx(x[-1]) for i, x in enumerate(TRANSMUCOSAL)} | {"TN": pytest.approx(104)}
    assert got.to_dict() == expected
    for factor_set in ("cdc2022", "cdc2016"):
        got = run(engine, "rx_daily_mme", factor_set)
        assert set(got["mme_status"]) == {"no_factor"} and got["daily_mme"].isna().all(), factor_set


def test_factor_rows_never_overlap(engine, tmp_path):
    # rx_mme joins a factor on ingredient, unit and form group 'any' or the prescription's: an ingredient and
    # unit with both an 'any' row and a form row would count a prescription twice.
    load(engine, tmp_path, [patient("P1")], [fill("O1", "P1", D(2025, 1, 1), OXY10, 60, 30)])
    with engine.connect() as conn:   # the reference as the load put it into the database
        ref = pd.read_sql_query("select factor_set, ingredient, strength_unit, form_group from ref_mme_factors "
                                "where daily_mg_above is null", conn)
    grouped = ref.groupby(["factor_set", "ingredient", "strength_unit"])["form_group"].agg(list)
    assert all("any" not in g or len(g) == 1 for g in grouped), grouped[grouped.map(len) > 1]


# --- Dose unknown: left out, never 0 MME ---------------------------------------------------------------

TRAMADOL = "Tramadol Hydrochloride 50 MG Oral Tablet"   # no factor under CDC 2016; 0.2 under CDC 2022


def unknown_dose_data():
    """K1, K2: oxycodone 60 MME a day (120 tablets of 10 mg per 30 days, every 30 days from 1 Jul 2024, 12
    fills: long-term). U1: the same, plus one tramadol fill on 1 Feb 2025 (120 x 50 mg / 30 days)."""
    rows = []
    for pid in ("K1", "K2", "U1"):
        rows += monthly(pid, D(2024, 7, 1), [60] * 12)
    rows.append(fill("U1-T", "U1", D(2025, 2, 1), TRAMADOL, 120, 30))
    return [patient(p) for p in ("K1", "K2", "U1")], rows


def measure_rows(engine, measure_id, factor_set, unknown=False, start=D(2025, 1, 1), end=D(2025, 3, 31)):
    from analysis import measures
    m = measures.BY_ID[measure_id]
    params = measures.sql_params(m, start, end, D(2024, 7, 1), D(2025, 5, 27), dose.DoseParams(factor_set))
    with engine.connect() as conn:
        return db.read_frame(conn, m.query, {**params, "dose_unknown": unknown}).sort_values("patient_id")


@ALL_ENGINES
def test_a_patient_with_a_prescription_of_unknown_dose_is_left_out_not_zero(engine, tmp_path):
    load(engine, tmp_path, *unknown_dose_data())
    # CDC 2016: U1's tramadol (1 Feb - 2 Mar) has no factor, so U1's Q1 dose is unknown: left out of the
    # long-term dose measures and of naloxone at 50 (K1, K2 stay at 60 MME a day), and listed as left out.
    for mid in ("high_dose_90", "high_dose_50", "mean_daily_mme"):
        kept = measure_rows(engine, mid, "cdc2016")
        assert kept["patient_id"].tolist() == ["K1", "K2"], mid
        assert kept["value"].tolist() == [pytest.approx(60), pytest.approx(60)]
        assert measure_rows(engine, mid, "cdc2016", unknown=True)["patient_id"].tolist() == ["U1"], mid
    assert measure_rows(engine, "naloxone_at_50", "cdc2016")["patient_id"].tolist() == ["K1", "K2"]
    assert measure_rows(engine, "naloxone_at_50", "cdc2016", unknown=True)["patient_id"].tolist() == ["U1"]
    # CDC 2022: tramadol 4 x 50 mg x 0.2 = 40 MME a day for 30 days, on top of 60 for all 90 days of Q1:
    # U1's average = (90 x 60 + 30 x 40) / 90 = 73.33; nobody is left out.
    kept = measure_rows(engine, "mean_daily_mme", "cdc2022")
    assert kept["value"].tolist() == [pytest.approx(60), pytest.approx(60), pytest.approx(6600 / 90)]
    assert measure_rows(engine, "mean_daily_mme", "cdc2022", unknown=True).empty
    # Q4 2024 has no tramadol: U1 is known there under CDC 2016 too ("in the period" means supply in it).
    q4 = measure_rows(engine, "mean_daily_mme", "cdc2016", start=D(2024, 10, 1), end=D(2024, 12, 31))
    assert q4["patient_id"].tolist() == ["K1", "K2", "U1"]


def test_prescriptions_without_a_dose_in_the_period(engine, tmp_path):
    load(engine, tmp_path, *unknown_dose_data())
    # Fills in Q1 2025: oxycodone on 27 Jan, 26 Feb, 28 Mar for each of 3 patients (1 Jul 2024 + 210, 240,
    # 270 days) = 9, plus the tramadol = 10; under CDC 2016 1 has no dose: 10%.
    from analysis import dose_unknown
    params = {**dose.DoseParams("cdc2016").sql(), "start": D(2025, 1, 1), "end": D(2025, 3, 31)}
    with engine.connect() as conn:
        rows = db.read_frame(conn, "period_dose_coverage", params)
        rows22 = db.read_frame(conn, "period_dose_coverage", {**params, "factor_set": "cdc2022"})
    assert dose_unknown.share_without_dose(rows) == (10, 1, pytest.approx(0.1))
    assert "10.0% of the period's opioid prescriptions (1 of 10) have no dose" in dose_unknown.warning(rows, "CDC 2016")
    assert dose_unknown.share_without_dose(rows22) == (10, 0, 0.0)
    assert dose_unknown.warning(rows22, "CDC 2022") is None


@ALL_ENGINES
def test_a_switch_to_a_drug_with_no_factor_is_not_a_taper(engine, tmp_path):
    # 60 MME a day of oxycodone from 1 Jan 2024 for 9 months (9 fills), then tramadol 120 x 50 mg a month for
    # 6 months. CDC 2022: 60 -> 40 MME a day is a 33% fall, a taper (>= 15%). CDC 2016: tramadol has no
    # factor, so the "fall to 0" is a switch to a dose we cannot compute: the taper is left out, not counted.
    rows = monthly("S1", D(2024, 1, 1), [60] * 9)
    rows += [fill(f"S1-T{i}", "S1", D(2024, 1, 1) + dt.timedelta(days=270 + 30 * i), TRAMADOL, 120, 30)
             for i in range(6)]
    load(engine, tmp_path, [patient("S1")], rows)
    params = {**dose.TaperParams().sql(D(2024, 1, 1), D(2025, 3, 28))}
    assert len(run(engine, "tapers_attributed", "cdc2022", **params)) == 1
    assert run(engine, "tapers_attributed", "cdc2016", **params).empty
    left_out = run(engine, "tapers_attributed", "cdc2016", **{**params, "dose_unknown": True})
    assert left_out["taper_start"].tolist() == [D(2024, 9, 27)]   # 1 Jan 2024 + 270 days
