"""Loading the data contract: every row loaded or rejected with a reason, and all-or-nothing loads.

Every test here runs on DuckDB and on PostgreSQL (the `engine` fixture).
"""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

import queries
from analysis import db, ingest
from tests.conftest import SAMPLE
from tests.fixtures import HEADERS, OXY10, PRESCRIPTIONS, read_rejects, write_csv, write_dataset

AS_OF = dt.date(2026, 1, 1)

# The committed sample (data/sample, seed 7): rows per file, and the deliberately bad rows.
SAMPLE_READ = {"clinics": 5, "clinicians": 40, "patients": 1202, "prescriptions": 21894, "events": 93}
SAMPLE_REJECTED = {"clinics": 0, "clinicians": 0, "patients": 2, "prescriptions": 13, "events": 1}


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.exec_driver_sql(f"select count(*) from {t.name}").scalar_one()
                for t in ingest.TABLES}


def load(engine, folder, tmp_path, **kw):
    return ingest.load_directory(engine, folder, tmp_path / "rejects.csv", as_of=AS_OF, **kw)


def rx(rx_id="R9", patient="P1", clinician="D1", fill="2025-03-01", drug=OXY10, ingredient="", strength="",
       unit="", form="", quantity="60", days="30", long_acting=""):
    return [rx_id, patient, clinician, fill, drug, ingredient, strength, unit, form, quantity, days, long_acting]


def test_clean_load_loads_every_row_with_typed_values(engine, tmp_path):
    report = load(engine, write_dataset(tmp_path / "d"), tmp_path)
    assert {t.table: (t.rows_read, t.rows_loaded, t.rows_rejected) for t in report.tables} == {
        "clinics": (2, 2, 0), "clinicians": (2, 2, 0), "patients": (3, 3, 0),
        "prescriptions": (4, 4, 0), "events": (1, 1, 0)}
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "select rx_id, fill_date, ingredient, strength, strength_unit, dose_form, quantity, days_supply, "
            "long_acting, drug_class, drug_parsed from prescriptions order by rx_id").all()
        patient = conn.exec_driver_sql("select cancer, hospice_palliative from patients where patient_id = 'P3'").one()
    assert rows[0] == ("R1", dt.date(2025, 1, 1), "oxycodone", 10.0, "MG", "Oral Tablet", 60.0, 30, False,
                       "opioid_analgesic", True)
    # 0.025 MG/HR is 25 mcg/hr, the unit the fentanyl MME factor uses; patches are long-acting.
    assert rows[2][2:5] == ("fentanyl", 25.0, "MCG/HR") and rows[2][8] is True
    assert rows[3][9] == "benzodiazepine"
    assert tuple(patient) == (True, False)  # "1" is true; a blank flag is false


def test_sample_reconciles_read_loaded_rejected(engine, tmp_path):
    report = load(engine, SAMPLE, tmp_path)
    for t in report.tables:
        assert t.rows_read == SAMPLE_READ[t.table]
        assert t.rows_rejected == SAMPLE_REJECTED[t.table]
        assert t.rows_loaded + t.rows_rejected == t.rows_read
    assert counts(engine) == {t: SAMPLE_READ[t] - SAMPLE_REJECTED[t] for t in SAMPLE_READ}
    rejects = read_rejects(tmp_path / "rejects.csv")
    assert len(rejects) == sum(SAMPLE_REJECTED.values())
    with engine.connect() as conn:
        logged = dict(conn.exec_driver_sql("select table_name, rows_rejected from load_counts").all())
    assert logged == SAMPLE_REJECTED


# One bad prescription row (at file line 6, after the four good ones) per rejection reason.
BAD_PRESCRIPTIONS = [
    (rx(fill="2025-13-45"), "bad_fill_date", "fill_date '2025-13-45' is not a real date"),
    (rx(fill="2025-02-29"), "bad_fill_date", "not a real date"),  # 2025 is not a leap year
    (rx(fill="01/03/2025"), "bad_fill_date", "YYYY-MM-DD"),
    (rx(fill="2026-06-01"), "future_fill_date", "after the load date"),
    (rx(quantity="sixty"), "bad_quantity", "quantity 'sixty' is not a number"),
    (rx(quantity="0"), "non_positive_quantity", "must be greater than zero"),
    (rx(quantity="-30"), "non_positive_quantity", "must be greater than zero"),
    (rx(days=""), "missing_days_supply", "days_supply is blank"),
    (rx(days="0"), "non_positive_days_supply", "at least 1"),
    (rx(days="-7"), "non_positive_days_supply", "at least 1"),
    (rx(days="30.5"), "bad_days_supply", "not a whole number"),
    (rx(days="400"), "days_supply_over_365", "over 365"),
    (rx(patient="P404"), "unknown_patient", "not in patients.csv"),
    (rx(clinician="D404"), "unknown_clinician", "'D404' is not in clinicians.csv"),
    (rx(drug="Tylenol"), "unparseable_drug", "cannot read ingredient"),
    (rx(drug=""), "unparseable_drug", "drug_name is blank"),
    (rx(long_acting="maybe"), "unparseable_drug", "long_acting 'maybe'"),
    (rx(rx_id=""), "missing_id", "rx_id is blank"),
]


@pytest.mark.parametrize("row, code, text", BAD_PRESCRIPTIONS, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD_PRESCRIPTIONS)])
def test_each_bad_prescription_is_rejected_with_its_reason(engine, tmp_path, row, code, text):
    report = load(engine, write_dataset(tmp_path / "d", prescriptions=PRESCRIPTIONS + [row]), tmp_path)
    rx_report = report.tables[3]
    assert (rx_report.rows_read, rx_report.rows_loaded, rx_report.rows_rejected) == (5, 4, 1)
    [reject] = read_rejects(tmp_path / "rejects.csv")
    assert (reject["file"], reject["line"], reject["reason_code"]) == ("prescriptions.csv", "6", code)
    assert text in reject["reason"]


def test_exact_repeat_is_loaded_once_and_conflicting_ids_are_all_rejected(engine, tmp_path):
    rows = PRESCRIPTIONS + [rx("R5"), rx("R5"), rx("R6"), rx("R6", quantity="90")]
    report = load(engine, write_dataset(tmp_path / "d", prescriptions=rows), tmp_path)
    assert (report.tables[3].rows_loaded, report.tables[3].rows_rejected) == (5, 3)
    rejects = [(r["line"], r["row_id"], r["reason_code"]) for r in read_rejects(tmp_path / "rejects.csv")]
    assert rejects == [("7", "R5", "duplicate"), ("8", "R6", "conflicting_duplicate"),
                       ("9", "R6", "conflicting_duplicate")]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from prescriptions where rx_id in ('R5', 'R6')").scalar_one() == 1


def test_bad_rows_in_other_files_are_rejected_with_reasons(engine, tmp_path):
    folder = write_dataset(
        tmp_path / "d",
        clinics=[["C1", "North"], ["C2", "South"], ["C3", ""]],
        clinicians=[["D1", "Ada", "FM", "C1"], ["D2", "Ben", "Pain", "C2"], ["D3", "Cy", "FM", "C9"]],
        patients=[["P1", "1960-01-01", "F", "0", "0", "0", "0"], ["P2", "1975-06-15", "M", "0", "0", "0", "0"],
                  ["P3", "1950-03-03", "F", "yes", "", "", ""], ["P4", "1970-02-30", "F", "0", "0", "0", "0"],
                  ["P5", "1970-01-01", "F", "maybe", "0", "0", "0"], ["P6", "2030-01-01", "F", "0", "0", "0", "0"]],
        events=[["P1", "2025-03-01", "ed_visit"], ["P404", "2025-03-01", "overdose"], ["P1", "2025-02-30", "x"],
                ["P2", "2025-03-01", ""]],
    )
    load(engine, folder, tmp_path)
    got = [(r["file"], r["line"], r["reason_code"]) for r in read_rejects(tmp_path / "rejects.csv")]
    assert got == [
        ("clinics.csv", "4", "missing_name"),
        ("clinicians.csv", "4", "unknown_clinic"),
        ("patients.csv", "5", "bad_birth_date"),
        ("patients.csv", "6", "bad_flag_cancer"),
        ("patients.csv", "7", "future_birth_date"),
        ("events.csv", "3", "unknown_patient"),
        ("events.csv", "4", "bad_event_date"),
        ("events.csv", "5", "missing_event_type"),
    ]


def test_malformed_rows_are_rejected_with_their_line_numbers(engine, tmp_path):
    folder = write_dataset(tmp_path / "d")
    with (folder / "prescriptions.csv").open("a", encoding="utf-8") as f:
        f.write("R7,P1,D1\n")                                             # line 6: too few fields
        f.write(",".join(rx("R8")) + ",extra,fields\n")                   # line 7: too many
        f.write(",".join(rx("R9")) + "\n")                                # line 8: fine
    report = load(engine, folder, tmp_path)
    assert (report.tables[3].rows_read, report.tables[3].rows_loaded, report.tables[3].rows_rejected) == (7, 5, 2)
    got = [(r["line"], r["row_id"], r["reason_code"]) for r in read_rejects(tmp_path / "rejects.csv")]
    assert got == [("6", "R7", "malformed_row"), ("7", "R8", "malformed_row")]


def test_extra_columns_are_ignored_and_listed(engine, tmp_path):
    folder = write_dataset(tmp_path / "d")
    write_csv(folder / "clinics.csv", ["clinic_id", "region", "clinic_name"], [["C1", "N", "North"], ["C2", "S", "South"]])
    report = load(engine, folder, tmp_path)
    assert report.tables[0].ignored_columns == ("region",)
    assert report.tables[0].rows_loaded == 2


def test_optional_prescription_columns_load_when_present(engine, tmp_path):
    folder = write_dataset(tmp_path / "d")
    header = ["rx_id", "patient_id", "clinician_id", "fill_date", "drug_name", "ingredient", "strength",
              "strength_unit", "dose_form", "quantity", "days_supply", "long_acting", "ndc", "pharmacy_id"]
    write_csv(folder / "prescriptions.csv", header,
              [["R1", "P1", "D1", "2025-01-01", "", "Oxycodone HCl", "5", "mg", "Oral Tablet", "60", "30", "false",
                "00406055201", "PH1"]])
    load(engine, folder, tmp_path)
    with engine.connect() as conn:
        row = conn.exec_driver_sql(
            "select ingredient, strength, strength_unit, drug_parsed, ndc, pharmacy_id, rxcui from prescriptions").one()
    assert tuple(row) == ("oxycodone", 5.0, "MG", False, "00406055201", "PH1", None)


@pytest.mark.parametrize("content, message", [
    (b"clinic_id;clinic_name\nC1;North\n", "separated by semicolons"),
    (b"clinic_id,name\nC1,North\n", "missing required column clinic_name"),
    (b"", "file is empty"),
    ("clinic_id,clinic_name\nC1,Norrt\u00e4lje\n".encode("latin-1"), "not UTF-8 encoded (first invalid byte on line 2)"),
    ("clinic_id,clinic_n\u00e4me\n".encode("latin-1"), "not UTF-8 encoded"),
    (b"clinic_id,clinic_name,clinic_id\nC1,North,C1\n", "appears more than once"),
])
def test_a_bad_file_stops_the_load_with_a_clear_message(engine, tmp_path, content, message):
    load(engine, write_dataset(tmp_path / "first"), tmp_path)
    before = counts(engine)
    folder = write_dataset(tmp_path / "d")
    (folder / "clinics.csv").write_bytes(content)
    with pytest.raises(ingest.LoadError) as err:
        load(engine, folder, tmp_path, replace=True)
    assert str(err.value).startswith("clinics.csv: ")
    assert message in str(err.value)
    assert counts(engine) == before


def test_missing_required_file_is_named(engine, tmp_path):
    folder = write_dataset(tmp_path / "d")
    (folder / "patients.csv").unlink()
    with pytest.raises(ingest.LoadError, match=r"^patients\.csv \(or patients\.parquet\): not found"):
        load(engine, folder, tmp_path)


def test_events_file_is_optional(engine, tmp_path):
    folder = write_dataset(tmp_path / "d")
    (folder / "events.csv").unlink()
    report = load(engine, folder, tmp_path)
    assert [t.table for t in report.tables] == ["clinics", "clinicians", "patients", "prescriptions"]


def test_strict_load_that_fails_part_way_leaves_the_database_unchanged(engine, tmp_path):
    load(engine, SAMPLE, tmp_path)
    before = counts(engine)
    with engine.connect() as conn:
        runs_before = conn.exec_driver_sql("select count(*) from load_runs").scalar_one()
    # --replace deletes everything and inserts four tables before the bad event row fails the load.
    folder = write_dataset(tmp_path / "d", events=[["P1", "2025-02-30", "ed_visit"]])
    with pytest.raises(ingest.LoadError, match="--strict: 1 row rejected"):
        load(engine, folder, tmp_path, replace=True, strict=True)
    assert counts(engine) == before
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from load_runs").scalar_one() == runs_before
    assert read_rejects(tmp_path / "rejects.csv")[0]["reason_code"] == "bad_event_date"


def test_appending_the_same_files_again_rejects_them_as_already_loaded(engine, tmp_path):
    folder = write_dataset(tmp_path / "d")
    load(engine, folder, tmp_path)
    before = counts(engine)
    report = load(engine, folder, tmp_path)
    assert counts(engine) == before
    assert report.tables[3].reasons == {"already_loaded": 4}
    assert report.tables[4].reasons == {"already_loaded": 1}


def test_events_repeated_within_a_file_are_all_kept(engine, tmp_path):
    twice = [["P1", "2025-03-01", "ed_visit"], ["P1", "2025-03-01", "ed_visit"]]
    report = load(engine, write_dataset(tmp_path / "d", events=twice), tmp_path)
    assert (report.tables[4].rows_loaded, report.tables[4].rows_rejected) == (2, 0)


def test_replace_swaps_the_data(engine, tmp_path):
    load(engine, SAMPLE, tmp_path)
    load(engine, write_dataset(tmp_path / "d"), tmp_path, replace=True)
    assert counts(engine) == {"clinics": 2, "clinicians": 2, "patients": 3, "prescriptions": 4, "events": 1}


def test_reference_tables_are_loaded_with_sources(engine, tmp_path):
    load(engine, write_dataset(tmp_path / "d"), tmp_path)
    with engine.connect() as conn:
        fentanyl = conn.exec_driver_sql(
            "select mme_factor, quantity_multiplier from ref_mme_factors "
            "where factor_set = 'cdc2022' and ingredient = 'fentanyl'").one()
        tiers = conn.exec_driver_sql(
            "select daily_mg_above, daily_mg_up_to, mme_factor from ref_mme_factors "
            "where factor_set = 'cdc2016' and ingredient = 'methadone' order by daily_mg_above").all()
        blank_sources = conn.exec_driver_sql("select count(*) from ref_mme_factors where source = ''").scalar_one()
    assert tuple(fentanyl) == (2.4, 3.0)
    assert [tuple(t) for t in tiers] == [(0, 20, 4), (20, 40, 8), (40, 60, 10), (60, None, 12)]
    assert blank_sources == 0


# --- Prescribing orders: quantity and days supply derived from the sig (units_per_day) and the days ---------
ORDER_HEADER = HEADERS["prescriptions"] + ["units_per_day", "end_date"]
OXY5 = "Oxycodone Hydrochloride 5 MG Oral Tablet"


def order(rx_id="O9", fill="2025-03-01", quantity="", days="", units="", end="", patient="P1", drug=OXY10):
    """A prescriptions.csv row with the two optional order columns (quantity and days blank by default)."""
    return rx(rx_id, patient=patient, fill=fill, drug=drug, quantity=quantity, days=days) + [units, end]


def load_orders(engine, tmp_path, rows, extract_date=dt.date(2025, 6, 30), **kw):
    """The fixture's four dispensings plus `rows`, in a prescriptions.csv with units_per_day and end_date."""
    folder = write_dataset(tmp_path / "d", headers={"prescriptions": ORDER_HEADER},
                           prescriptions=[r + ["", ""] for r in PRESCRIPTIONS] + rows)
    return load(engine, folder, tmp_path, extract_date=extract_date, **kw)


def stored(engine, where="rx_id not in ('R1', 'R2', 'R3', 'R4')"):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(
            "select rx_id, fill_date, days_supply, quantity, quantity_source from prescriptions "
            f"where {where} order by fill_date, rx_id").all()]


def test_an_order_longer_than_the_longest_fill_becomes_consecutive_fills(engine, tmp_path):
    # 2025-01-01 to 2025-03-31 is 31 + 28 + 31 = 90 days; 4 tablets a day. Split into 30-day fills: the
    # first on 01-01, the second 30 days later (01-31), the third 60 days later (03-02: Jan 31 + Feb 28 =
    # 59 days to 03-01), each 30 days and 4 x 30 = 120 tablets; the first keeps the rx_id.
    report = load_orders(engine, tmp_path, [order("O1", fill="2025-01-01", units="4", end="2025-03-31", drug=OXY5)])
    rx_report = report.tables[3]
    # One input row is one row loaded, stored as three fills; loaded + rejected = read counts input rows.
    assert (rx_report.rows_read, rx_report.rows_loaded, rx_report.rows_rejected) == (5, 5, 0)
    assert (rx_report.fills_loaded, rx_report.orders_split) == (7, 1)
    assert stored(engine) == [
        ("O1", dt.date(2025, 1, 1), 30, 120.0, "sig_end"),
        ("O1~fill2", dt.date(2025, 1, 31), 30, 120.0, "sig_end"),
        ("O1~fill3", dt.date(2025, 3, 2), 30, 120.0, "sig_end"),
    ]
    assert stored(engine, "rx_id = 'R1'") == [("R1", dt.date(2025, 1, 1), 30, 60.0, "given")]


def test_given_values_win_and_each_derivation_is_recorded(engine, tmp_path):
    rows = [
        order("G1", quantity="60", days="30", units="4", end="2025-03-31"),  # both given: the sig and end ignored
        order("G2", fill="2025-03-02", quantity="180", days="90"),         # a 90-day dispensing stays one fill
        order("S1", fill="2025-03-03", days="14", units="4"),              # 4 x 14 = 56
        order("S2", fill="2025-03-04", quantity="0", days="10", units="2.5"),  # a 0 quantity: 2.5 x 10 = 25
        order("Q1", fill="2025-03-05", quantity="90", units="3"),          # 90 / 3 = 30 days
        # 100 / 3 = 33.3, rounded up to 34 days: fills of 30 and 4 days holding 100 x 30/34 and 100 x 4/34.
        order("Q2", fill="2025-03-06", quantity="100", days="0", units="3"),
        order("E1", fill="2025-03-07", quantity="60", end="2025-03-16"),   # 03-07 .. 03-16 is 10 days
    ]
    report = load_orders(engine, tmp_path, rows)
    assert (report.tables[3].rows_loaded, report.tables[3].rows_rejected, report.tables[3].fills_loaded) == (11, 0, 12)
    got = stored(engine)
    assert got[:6] == [
        ("G1", dt.date(2025, 3, 1), 30, 60.0, "given"),
        ("G2", dt.date(2025, 3, 2), 90, 180.0, "given"),
        ("S1", dt.date(2025, 3, 3), 14, 56.0, "sig_days"),
        ("S2", dt.date(2025, 3, 4), 10, 25.0, "sig_days"),
        ("Q1", dt.date(2025, 3, 5), 30, 90.0, "qty_sig"),
        ("Q2", dt.date(2025, 3, 6), 30, pytest.approx(1500 / 17), "qty_sig"),
    ]
    assert got[6:] == [("E1", dt.date(2025, 3, 7), 10, 60.0, "qty_end"),
                       ("Q2~fill2", dt.date(2025, 4, 5), 4, pytest.approx(200 / 17), "qty_sig")]
    # The Data quality page's split: R1-R4, G1, G2 given (R4 is alprazolam, not an opioid); opioid days
    # 30 + 30 + 30 (R1-R3) + 30 + 90 = 210 given, 14 + 10 = 24 sig_days, 30 + 30 + 4 = 64 qty_sig, 10 qty_end.
    with engine.connect() as conn:
        split = db.read_frame(conn, "quantity_sources")
    assert sorted(split.itertuples(index=False, name=None)) == [
        ("given", 6, 5, 210), ("qty_end", 1, 1, 10), ("qty_sig", 3, 3, 64), ("sig_days", 2, 2, 24)]


def test_an_open_order_runs_to_the_extract_date(engine, tmp_path):
    # No end_date, days_supply or quantity: from 2025-05-01 to the extract date 2025-06-30 is 31 + 30 = 61
    # days at 2 tablets a day: fills of 30, 30 and 1 day (05-01, 05-31, 06-30) holding 60, 60 and 2.
    load_orders(engine, tmp_path, [order("OPEN", fill="2025-05-01", units="2")], extract_date=dt.date(2025, 6, 30))
    assert stored(engine) == [
        ("OPEN", dt.date(2025, 5, 1), 30, 60.0, "sig_open"),
        ("OPEN~fill2", dt.date(2025, 5, 31), 30, 60.0, "sig_open"),
        ("OPEN~fill3", dt.date(2025, 6, 30), 1, 2.0, "sig_open"),
    ]


def test_the_longest_fill_is_a_parameter(engine, tmp_path):
    # The 90-day order in 45-day fills: 01-01 and 02-15 (31 days to 02-01, 14 more), 4 x 45 = 180 each.
    rows = [order("O1", fill="2025-01-01", units="4", end="2025-03-31")]
    load_orders(engine, tmp_path, rows, max_fill_days=45)
    assert stored(engine) == [("O1", dt.date(2025, 1, 1), 45, 180.0, "sig_end"),
                              ("O1~fill2", dt.date(2025, 2, 15), 45, 180.0, "sig_end")]
    load_orders(engine, tmp_path, rows, max_fill_days=90, replace=True)
    assert stored(engine) == [("O1", dt.date(2025, 1, 1), 90, 360.0, "sig_end")]
    with pytest.raises(ingest.LoadError, match="must be a whole number of days from 1 to 365"):
        load_orders(engine, tmp_path, rows, max_fill_days=0, replace=True)


def test_supply_whose_quantity_nothing_gives_loads_with_its_dose_unknown(engine, tmp_path):
    # Days known, quantity not (an OMOP extract with quantity 0, a claim without it): the days are supply,
    # the dose is unknown. Rejecting the row would open a false gap in the patient's supply.
    rows = [order("D1", fill="2025-03-01", days="30"),                     # days_supply given: one fill
            order("E1", fill="2025-04-01", end="2025-05-30")]              # 04-01 .. 05-30 is 60 days: 2 fills
    report = load_orders(engine, tmp_path, rows)
    assert (report.tables[3].rows_loaded, report.tables[3].rows_rejected, report.tables[3].fills_loaded) == (6, 0, 7)
    assert stored(engine) == [("D1", dt.date(2025, 3, 1), 30, None, "days_only"),
                              ("E1", dt.date(2025, 4, 1), 30, None, "end_only"),
                              ("E1~fill2", dt.date(2025, 5, 1), 30, None, "end_only")]
    with engine.connect() as conn:
        mme = {r.rx_id: (r.daily_mme, r.mme_status) for r in conn.execute(
            sa.text(queries.load("rx_daily_mme")), {"factor_set": "cdc2022", "exclude": False})}
        segments = conn.exec_driver_sql(
            "select seg_start, seg_end, supplied, dose_known from daily_dose_segments where factor_set = 'cdc2022' "
            "and patient_id = 'P1' and seg_start >= date '2025-03-01' order by seg_start").all()
    assert mme["D1"] == (None, "no_quantity") and mme["E1~fill2"] == (None, "no_quantity")
    # P1's supply from 03-01 to 05-30 is known, and every day of it has an unknown dose.
    supplied = [s for s in segments if s.supplied and s.seg_start <= dt.date(2025, 5, 30)]
    assert supplied and not any(s.dose_known for s in supplied)
    assert supplied[0].seg_start == dt.date(2025, 3, 1) and supplied[-1].seg_end == dt.date(2025, 5, 30)


# One bad order row (line 6, after the four good dispensings) per reason; rows that derive nothing keep
# the codes a dispensing has (non_positive_quantity, missing_days_supply, ...).
BAD_ORDERS = [
    (order(), "no_quantity", "quantity, units_per_day, days_supply and end_date are blank: nothing gives the supply"),
    (order(quantity="0", days="30"), "non_positive_quantity", "must be greater than zero"),
    (order(quantity="60"), "missing_days_supply", "days_supply is blank and neither end_date nor units_per_day"),
    (order(quantity="60", days="0"), "non_positive_days_supply", "must be at least 1"),
    (order(days="400", units="4"), "days_supply_over_365", "days_supply 400 is over 365 days"),
    (order(units="four"), "bad_units_per_day", "units_per_day 'four' is not a number"),
    (order(units="0"), "non_positive_units_per_day", "units_per_day 0 must be greater than zero"),
    (order(units="-2", quantity="60", days="30"), "non_positive_units_per_day", "must be greater than zero"),
    (order(units="4", end="2025-02-30"), "bad_end_date", "end_date '2025-02-30' is not a real date"),
    (order(units="4", end="31/03/2025"), "bad_end_date", "YYYY-MM-DD"),
    (order(units="4", end="2025-02-01"), "end_before_fill", "end_date 2025-02-01 is before fill_date 2025-03-01"),
    (order(units="4", end="2040-01-01"), "order_days_over_3650", "2025-03-01 to end_date 2040-01-01 is over 3650"),
    (order(quantity="1000000", units="1"), "order_days_over_3650", "lasts over 3650 days"),
]


@pytest.mark.parametrize("row, code, text", BAD_ORDERS, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD_ORDERS)])
def test_an_order_that_gives_no_quantity_or_days_is_rejected_with_its_reason(engine, tmp_path, row, code, text):
    report = load_orders(engine, tmp_path, [row])
    rx_report = report.tables[3]
    assert (rx_report.rows_read, rx_report.rows_loaded, rx_report.rows_rejected) == (5, 4, 1)
    assert rx_report.fills_loaded == 4
    [reject] = read_rejects(tmp_path / "rejects.csv")
    assert (reject["line"], reject["row_id"], reject["reason_code"]) == ("6", "O9", code)
    assert text in reject["reason"]


def test_an_order_whose_later_fill_ids_are_taken_is_rejected(engine, tmp_path):
    # O1 would be stored as O1, O1~fill2, O1~fill3; the file also holds a prescription O1~fill3.
    rows = [order("O1", fill="2025-01-01", units="4", end="2025-03-31"), order("O1~fill3", quantity="60", days="30"),
            order("X~fill2", quantity="60", days="30")]
    report = load_orders(engine, tmp_path, rows)
    assert report.tables[3].reasons == {"fill_id_taken": 1}
    [reject] = read_rejects(tmp_path / "rejects.csv")
    assert reject["row_id"] == "O1" and "O1~fill3" in reject["reason"]
    assert [r[0] for r in stored(engine)] == ["O1~fill3", "X~fill2"]
    # An id stored by an earlier load counts too: appending an order X of two fills (02-01 to 03-31 is
    # 28 + 31 = 59 days) after X~fill2 was loaded.
    report = load_orders(engine, tmp_path, [order("X", fill="2025-02-01", units="1", end="2025-03-31")])
    assert report.tables[3].reasons == {"already_loaded": 4, "fill_id_taken": 1}
    assert [r[0] for r in stored(engine)] == ["O1~fill3", "X~fill2"]


def test_appending_an_order_again_rejects_it_as_already_loaded(engine, tmp_path):
    rows = [order("O1", fill="2025-01-01", units="4", end="2025-03-31")]
    load_orders(engine, tmp_path, rows)
    before = stored(engine)
    report = load_orders(engine, tmp_path, rows)
    assert report.tables[3].reasons == {"already_loaded": 5}
    assert stored(engine) == before


def test_a_database_loaded_before_quantity_source_is_reported_as_older(engine, tmp_path):
    load(engine, write_dataset(tmp_path / "d"), tmp_path)
    with engine.begin() as conn:
        assert db.is_current(conn)
        conn.exec_driver_sql("alter table prescriptions drop column quantity_source")
        assert not db.is_current(conn)
