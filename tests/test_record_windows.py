"""Each patient's own record window and the extract date (issue 13, sections 3 and 4), on DuckDB and
PostgreSQL. Every expected value is worked out by hand in the comments."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from analysis import db, dose, ingest, measures
from tests.fixtures import HEADERS, OXY10, read_rejects, write_dataset

D = dt.date
AS_OF = D(2026, 1, 1)
PATIENT_HEADER = HEADERS["patients"] + ["record_start", "record_end"]
CLINICS = [["C1", "North"]]
CLINICIANS = [["D1", "Ada Byron", "Family medicine", "C1"]]


def patient(pid: str, record_start: str = "", record_end: str = "", birth: str = "1960-01-01") -> list[str]:
    return [pid, birth, "F", "0", "0", "0", "0", record_start, record_end]


def stopping(pid: str, first: dt.date = D(2024, 10, 24), n: int = 8) -> list[list[str]]:
    """n 30-day fills of 200 oxycodone 10 mg tablets (2 x 15 MME a day = 100 MME a day), back to back.
    From 2024-10-24, the 8th fill is 2025-05-22 and the last day of supply 2025-05-22 + 29 = 2025-06-20."""
    return [[f"{pid}-{i}", pid, "D1", (first + dt.timedelta(days=30 * i)).isoformat(), OXY10, "", "", "", "",
             "200", "30", ""] for i in range(n)]


def load(engine, tmp_path, patients, prescriptions, extract_date=None, **kwargs):
    folder = write_dataset(tmp_path / "d", headers={"patients": PATIENT_HEADER}, clinics=CLINICS,
                           clinicians=CLINICIANS, patients=patients, prescriptions=prescriptions, events=[])
    return ingest.load_directory(engine, folder, tmp_path / "rejects.csv", as_of=AS_OF, extract_date=extract_date,
                                 **kwargs)


def stored_tapers(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select patient_id, taper_start, discontinued, stop_day, stop_mme "
                                    "from stored_tapers where factor_set = 'cdc2022'")).all()
    return {r.patient_id: (r.taper_start, r.discontinued, r.stop_day, r.stop_mme) for r in rows}


def test_a_record_that_ends_is_not_a_discontinuation(engine, tmp_path):
    # Both patients take 100 MME a day until 2025-06-20; the data were extracted on 2025-12-31.
    # ENDS's record ends 2025-06-30: 10 days without supply by then (fewer than 60), and no 60-day
    # window after 2025-06-21 fits in the record, so there is no taper and no discontinuation.
    # STOPS's record ends 2025-12-31: 2025-06-21 .. 2025-12-31 is 194 days without supply, a stop on
    # 2025-06-21; the 30 days before it were at 100 MME, the baseline's 100 (>= 50%): abrupt.
    report = load(engine, tmp_path, [patient("ENDS", record_end="2025-06-30"), patient("STOPS", record_end="2025-12-31")],
                  stopping("ENDS") + stopping("STOPS"), extract_date=D(2025, 12, 31))
    assert report.rows_rejected == 0
    got = stored_tapers(engine)
    assert "ENDS" not in got
    assert got["STOPS"][:3] == (D(2025, 6, 21), True, D(2025, 6, 21))
    assert got["STOPS"][3] == pytest.approx(100)
    # The live query (any taper parameters) reads the same windows.
    with engine.connect() as conn:
        live = db.read_frame(conn, "tapers", {**dose.DoseParams().sql(),
                                              **dose.TaperParams().sql(D(2024, 10, 24), D(2025, 12, 31))})
    assert live["patient_id"].tolist() == ["STOPS"]
    assert live["category"].tolist() == ["abrupt_discontinuation"]


def test_a_patient_whose_record_is_too_short_is_not_measurable_rather_than_counted(engine, tmp_path):
    # Abrupt discontinuation over 2025-04-01 .. 2025-06-30 needs a 180-day baseline before each day and a
    # 210-day follow-up from it (analysis.measures.needs). STOPS's window (2024-10-24 .. 2025-12-31) holds
    # 2025-04-22 .. 2025-06-05 (2024-10-24 + 180 and 2025-12-31 - 209): measurable, with its abrupt stop.
    # ENDS's window ends 2025-06-30: its last measurable day would be 2024-12-03, before the period:
    # not measurable, so it is in neither the numerator nor the denominator (not a 0).
    load(engine, tmp_path, [patient("ENDS", record_end="2025-06-30"), patient("STOPS")],
         stopping("ENDS") + stopping("STOPS"), extract_date=D(2025, 12, 31))
    m = measures.BY_ID["abrupt_discontinuation"]
    with engine.connect() as conn:
        rows = db.read_frame(conn, m.query, measures.sql_params(m, D(2025, 4, 1), D(2025, 6, 30), D(2024, 10, 24),
                                                                D(2025, 12, 31)))
    assert rows[["patient_id", "in_numerator"]].values.tolist() == [["STOPS", True]]


def test_record_windows_are_clipped_to_the_data_and_blank_ones_take_the_data(engine, tmp_path):
    # Data: first fill 2024-10-24, extract date 2025-12-31. A record from 2020 to 2030 is clipped to both.
    load(engine, tmp_path, [patient("WIDE", "2020-01-01", "2030-01-01"), patient("BLANK"),
                            patient("OWN", "2024-10-24", "2025-08-31")],
         stopping("WIDE") + stopping("BLANK") + stopping("OWN"), extract_date=D(2025, 12, 31))
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select patient_id, record_start, record_end, window_start, window_end "
                                    "from patients order by patient_id")).all()
        bounds = db.read_frame(conn, "data_bounds").iloc[0]
    assert [tuple(r) for r in rows] == [
        ("BLANK", None, None, D(2024, 10, 24), D(2025, 12, 31)),
        ("OWN", D(2024, 10, 24), D(2025, 8, 31), D(2024, 10, 24), D(2025, 8, 31)),
        ("WIDE", D(2020, 1, 1), D(2030, 1, 1), D(2024, 10, 24), D(2025, 12, 31))]
    assert (bounds["data_start"], bounds["data_end"], bool(bounds["extract_given"])) == (
        D(2024, 10, 24), D(2025, 12, 31), True)


def test_the_new_start_look_back_must_lie_inside_the_patient_record(engine, tmp_path):
    # OLD fills from 2024-10-24 set the data's start. LATE and JOINED each first fill on 2025-03-15:
    # LATE's record is the data's (look-back 2024-12-15 .. 2025-03-14 inside it): a new start.
    # JOINED's record starts 2025-03-01: the 90 days before the fill are not in it, so no one can say
    # there was no supply: not a new start (and not measurable for the new-start measures).
    late = [["LATE-1", "LATE", "D1", "2025-03-15", OXY10, "", "", "", "", "20", "10", ""]]
    joined = [["JOINED-1", "JOINED", "D1", "2025-03-15", OXY10, "", "", "", "", "20", "10", ""]]
    load(engine, tmp_path, [patient("OLD"), patient("LATE"), patient("JOINED", record_start="2025-03-01")],
         stopping("OLD") + late + joined, extract_date=D(2025, 12, 31))
    m = measures.BY_ID["new_start_over_7d"]
    with engine.connect() as conn:
        rows = db.read_frame(conn, m.query, measures.sql_params(m, D(2025, 3, 1), D(2025, 3, 31), D(2024, 10, 24),
                                                                D(2025, 12, 31)))
    # LATE: a 10-day index supply is over 7 days.
    assert rows[["patient_id", "in_numerator"]].values.tolist() == [["LATE", True]]


def test_fills_outside_the_record_or_after_the_extract_date_are_rejected_with_their_reason(engine, tmp_path):
    rx = stopping("P1", n=3)   # 2024-10-24, 2024-11-23, 2024-12-23
    rx.append(["P1-late", "P1", "D1", "2025-02-01", OXY10, "", "", "", "", "20", "10", ""])
    rx.append(["P2-1", "P2", "D1", "2025-01-10", OXY10, "", "", "", "", "20", "10", ""])
    report = load(engine, tmp_path, [patient("P1", "2024-11-01", "2024-12-31"), patient("P2")], rx,
                  extract_date=D(2025, 1, 31))
    rejected = {r["row_id"]: (r["reason_code"], r["reason"]) for r in read_rejects(tmp_path / "rejects.csv")}
    assert rejected == {
        "P1-0": ("outside_record_window", "fill_date 2024-10-24 is outside the patient's record (2024-11-01 to 2024-12-31)"),
        "P1-late": ("after_extract_date", "fill_date 2025-02-01 is after the extract date 2025-01-31"),
    }
    pres = next(t for t in report.tables if t.table == "prescriptions")
    assert (pres.rows_read, pres.rows_loaded, pres.rows_rejected) == (5, 3, 2)


def test_birth_dates_after_the_first_fill_or_a_century_out_are_rejected_and_say_why(engine, tmp_path):
    # SLIP: born "2065-03-01" (01-MAR-65 read in the wrong century): after the load date; 1965 would fit.
    # AFTER: born 2025-02-01, first fill 2025-01-10: after the first fill (a century earlier fits too).
    # Their prescriptions say the patient's row was rejected, not that the patient is unknown.
    pts = [patient("SLIP", birth="2065-03-01"), patient("AFTER", birth="2025-02-01"), patient("OK")]
    rx = [[f"{p}-1", p, "D1", "2025-01-10", OXY10, "", "", "", "", "20", "10", ""] for p in ("SLIP", "AFTER", "OK")]
    load(engine, tmp_path, pts, rx)
    rejected = {(r["file"], r["row_id"]): (r["line"], r["reason_code"], r["reason"])
                for r in read_rejects(tmp_path / "rejects.csv")}
    assert rejected == {
        ("patients.csv", "SLIP"): ("2", "future_birth_date", "birth_date 2065-03-01 is in the future (a two-digit "
                                                            "year read in the wrong century? 1965 would fit)"),
        ("patients.csv", "AFTER"): ("3", "birth_after_first_fill", "birth_date 2025-02-01 is after the patient's "
                                    "first fill (2025-01-10) (a two-digit year read in the wrong century? 1925 would fit)"),
        ("prescriptions.csv", "SLIP-1"): ("2", "rejected_patient", "the patient's row in patients.csv (line 2) was rejected"),
        ("prescriptions.csv", "AFTER-1"): ("3", "rejected_patient", "the patient's row in patients.csv (line 3) was rejected"),
    }


def test_bad_record_windows_are_rejected(engine, tmp_path):
    pts = [patient("BACK", "2025-06-01", "2025-01-01"), patient("BAD", record_end="2025-13-01"), patient("OK")]
    rx = [["OK-1", "OK", "D1", "2025-01-10", OXY10, "", "", "", "", "20", "10", ""]]
    load(engine, tmp_path, pts, rx)
    rejected = {r["row_id"]: (r["reason_code"], r["reason"]) for r in read_rejects(tmp_path / "rejects.csv")}
    assert rejected == {
        "BACK": ("record_end_before_start", "record_end 2025-01-01 is before record_start 2025-06-01"),
        "BAD": ("bad_record_end", "record_end '2025-13-01' is not a real date in YYYY-MM-DD form"),
    }


def test_the_default_extract_date_is_the_last_fill_and_an_append_never_moves_it_back(engine, tmp_path):
    load(engine, tmp_path, [patient("P1")], stopping("P1", n=2), extract_date=D(2025, 6, 30))
    folder = write_dataset(tmp_path / "more", headers={"patients": PATIENT_HEADER}, clinics=[], clinicians=[],
                           patients=[patient("P2")],
                           prescriptions=[["P2-1", "P2", "D1", "2025-01-10", OXY10, "", "", "", "", "20", "10", ""]],
                           events=[])
    ingest.load_directory(engine, folder, tmp_path / "r2.csv", as_of=AS_OF)
    with engine.connect() as conn:
        assert db.read_frame(conn, "data_bounds").iloc[0]["data_end"] == D(2025, 6, 30)
    # A replace without --extract-date: the last fill date (2024-11-23, the 2nd fill) ends the data.
    load(engine, tmp_path, [patient("P1")], stopping("P1", n=2), replace=True)
    with engine.connect() as conn:
        bounds = db.read_frame(conn, "data_bounds").iloc[0]
    assert (bounds["data_end"], bool(bounds["extract_given"])) == (D(2024, 11, 23), False)


def test_an_extract_date_after_the_load_date_is_refused(engine, tmp_path):
    with pytest.raises(ingest.LoadError, match="the extract date 2026-02-01 is after the load date 2026-01-01"):
        load(engine, tmp_path, [patient("P1")], stopping("P1", n=1), extract_date=D(2026, 2, 1))


def test_a_required_file_that_loads_nothing_refuses_the_load_and_leaves_the_database_as_it_was(engine, tmp_path):
    load(engine, tmp_path, [patient("P1")], stopping("P1", n=1))
    # Every row of the new prescriptions file fails (no drug can be read): nothing changes, the reason is
    # one line, and the rejects file is still written.
    bad = [[f"X{i}", "P1", "D1", "2025-01-10", "", "", "", "", "", "20", "10", ""] for i in range(3)]
    with pytest.raises(ingest.EmptyRefusal) as refused:
        load(engine, tmp_path, [patient("P1")], bad, replace=True)
    assert str(refused.value) == ("prescriptions.csv: no row could be loaded, none of its 3 rows (3 × unparseable_drug; "
                                  "see rejects.csv); nothing was loaded")
    assert len(read_rejects(tmp_path / "rejects.csv")) == 3
    with engine.connect() as conn:
        assert conn.execute(sa.text("select rx_id from prescriptions")).scalars().all() == ["P1-0"]
    # A header and no rows says so.
    with pytest.raises(ingest.EmptyRefusal, match="prescriptions.csv: no row could be loaded, it has a header and no rows"):
        load(engine, tmp_path, [patient("P1")], [], replace=True)


def test_a_taper_whose_record_ends_before_its_follow_up_is_provisional_in_the_export(engine, tmp_path):
    # Both take 100 MME a day from 2024-04-01 for 8 fills: the last day of supply is 2024-11-26 and the
    # stop 2024-11-27, 125+ days without supply before either record ends: a discontinuation for both.
    # Its 210-day follow-up runs to 2025-06-24. EARLY's record ends 2025-03-31: provisional; FULL's
    # runs to the extract date 2025-12-31: complete.
    from analysis import summary

    load(engine, tmp_path, [patient("EARLY", record_end="2025-03-31"), patient("FULL")],
         stopping("EARLY", first=D(2024, 4, 1)) + stopping("FULL", first=D(2024, 4, 1)), extract_date=D(2025, 12, 31))
    with engine.connect() as conn:
        t = summary.taper_table(conn, summary.Settings(D(2024, 1, 1), D(2024, 12, 31)), b"k" * 32)
    got = {k: (start, category, follow_up) for k, start, category, follow_up in
           zip(t["patient_key"], t["taper_start"], t["category"], t["follow_up"])}
    assert got == {summary.patient_key("FULL", b"k" * 32): (D(2024, 11, 27), "abrupt_discontinuation", "complete"),
                   summary.patient_key("EARLY", b"k" * 32): (D(2024, 11, 27), "abrupt_discontinuation", "provisional")}


def test_an_order_stops_at_the_extract_date(engine, tmp_path):
    # 4 oxycodone 5 mg tablets a day (30 MME) ordered 2025-01-01 .. 2025-03-31; extracted 2025-02-15.
    # Fills: 2025-01-01 (30 days, 120 tablets), 2025-01-31 cut to 16 days (to 2025-02-15) and 64 tablets
    # (120 x 16 / 30); the third (2025-03-02) had not happened when the data were extracted.
    header = HEADERS["prescriptions"] + ["units_per_day", "end_date"]
    order = ["O1", "P1", "D1", "2025-01-01", "oxycodone hydrochloride 5 MG Oral Tablet", "", "", "", "", "", "", "",
             "4", "2025-03-31"]
    folder = write_dataset(tmp_path / "d", headers={"patients": PATIENT_HEADER, "prescriptions": header},
                           clinics=CLINICS, clinicians=CLINICIANS, patients=[patient("P1")], prescriptions=[order],
                           events=[])
    ingest.load_directory(engine, folder, tmp_path / "rejects.csv", as_of=AS_OF, extract_date=D(2025, 2, 15))
    with engine.connect() as conn:
        fills = conn.execute(sa.text("select rx_id, fill_date, days_supply, quantity, quantity_source "
                                     "from prescriptions order by fill_date")).all()
        segments = conn.execute(sa.text("select seg_start, seg_end, daily_mme from daily_dose_segments "
                                        "where factor_set = 'cdc2022' and supplied order by seg_start")).all()
    assert [tuple(f) for f in fills] == [("O1", D(2025, 1, 1), 30, 120.0, "sig_end"),
                                         ("O1~fill2", D(2025, 1, 31), 16, 64.0, "sig_end")]
    # 30 MME on every day from 2025-01-01 to 2025-02-15 (a stretch per fill), no supply after.
    assert [(a, b) for a, b, _ in segments] == [(D(2025, 1, 1), D(2025, 1, 30)), (D(2025, 1, 31), D(2025, 2, 15))]
    assert [m for _, _, m in segments] == [pytest.approx(30), pytest.approx(30)]
