"""The OMOP CDM adapter (analysis/sources/omop.py): a code-built CDM folder with hand-worked values on DuckDB and
PostgreSQL, the committed Eunomia extract (tests/data/omop, Apache-2.0), contract-vs-OMOP equivalence, bad and
hostile input, and the database-URL source on the local PostgreSQL."""
from __future__ import annotations

import csv
import datetime as dt
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from analysis import db, ingest
from analysis.sources import create_reject_table, omop
from tests.conftest import PG_URL
from tests.fixtures import by_source_file, daily_mme, read_rejects, write_csv

EXTRACT = Path(__file__).parent / "data" / "omop"
AS_OF = dt.date(2026, 1, 1)
EXTRACT_DATE = dt.date(2025, 6, 30)

PERSON = ["person_id", "gender_concept_id", "year_of_birth", "month_of_birth", "day_of_birth", "birth_datetime",
          "gender_source_value"]
DRUG = ["drug_exposure_id", "person_id", "drug_concept_id", "drug_exposure_start_date", "drug_exposure_end_date",
        "drug_type_concept_id", "quantity", "days_supply", "provider_id", "drug_source_value"]
CONCEPT = ["concept_id", "concept_name", "vocabulary_id", "concept_code"]
PROVIDER = ["provider_id", "provider_name", "specialty_concept_id", "care_site_id", "specialty_source_value"]
CARE_SITE = ["care_site_id", "care_site_name"]
PERIOD = ["observation_period_id", "person_id", "observation_period_start_date", "observation_period_end_date"]
CONDITION = ["condition_occurrence_id", "person_id", "condition_concept_id", "condition_start_date",
             "condition_source_value", "condition_source_concept_id"]
VISIT = ["visit_occurrence_id", "person_id", "visit_concept_id", "visit_start_date"]

HYDROCODONE_10 = "acetaminophen 325 MG / hydrocodone bitartrate 10 MG Oral Tablet"   # RxNorm 856999


def cdm_tables(**override) -> dict[str, tuple[list[str], list[list[str]]]]:
    tables = {
        "PERSON": (PERSON, [["1", "8532", "1960", "", "", "", "F"],          # month blank: 1 July 1960
                            ["2", "8507", "1971", "3", "", "", "M"]]),      # day blank: 15 March 1971
        "DRUG_EXPOSURE": (DRUG, [
            # A dispensing: 120 tablets for 30 days of hydrocodone 10 mg = 4 a day x 10 mg = 40 MME a day.
            ["101", "1", "9001", "2025-01-10", "2025-02-08", "38000175", "120", "30", "7", ""],
            # An order, quantity 120, days_supply 0, 2025-03-01..2025-04-29 (60 days): 2 fills of 30 days,
            # 60 tablets each, 2 a day x 10 mg = 20 MME a day.
            ["102", "2", "9001", "2025-03-01", "2025-04-29", "38000177", "120", "0", "7", ""],
            # Quantity 0, no sig: nothing gives the quantity; the 30 days are supply whose dose is unknown
            # (days_only: quantity NULL, no MME; never a dose invented, never a false gap in supply).
            ["103", "2", "9001", "2025-05-01", "2025-05-30", "32869", "0", "30", "7", ""],
            # Quantity 0 and 371 days (a Synthea year-long record): not a dispensing; its span 2024-01-01 to
            # 2025-01-05 (366 + 5 = 371 days) is read as an order: 12 fills of 30 days and one of 11, dose unknown.
            ["107", "1", "9001", "2024-01-01", "2025-01-05", "32869", "0", "371", "7", ""],
            # Acetaminophen alone: another drug, skipped.
            ["104", "1", "9002", "2025-01-10", "2025-01-19", "32869", "20", "10", "7", ""],
            # Given in hospital: skipped inpatient_administration.
            ["105", "1", "9001", "2025-01-05", "2025-01-05", "38000180", "1", "1", "7", ""],
            # A person PERSON does not hold: passed on, rejected by the checks as unknown_patient.
            ["106", "99", "9001", "2025-01-10", "2025-02-08", "38000175", "120", "30", "7", ""],
        ]),
        "CONCEPT": (CONCEPT, [["9001", HYDROCODONE_10, "RxNorm", "856999"],
                              ["9002", "acetaminophen 325 MG Oral Tablet", "RxNorm", "313782"],
                              ["38004446", "General Practice", "Medicare Specialty", "01"]]),
        "PROVIDER": (PROVIDER, [["7", "Dr Seven", "38004446", "", "GENERAL PRACTICE"]]),
        "CARE_SITE": (CARE_SITE, []),
        "OBSERVATION_PERIOD": (PERIOD, [["1", "1", "2020-01-01", "2023-12-31"], ["2", "1", "2024-01-01", "2025-06-30"],
                                        ["3", "99", "2020-01-01", "2025-06-30"]]),
        "CONDITION_OCCURRENCE": (CONDITION, [
            ["201", "1", "0", "2019-05-01", "C50.911", "0"],    # breast cancer by ICD-10-CM source value
            ["202", "2", "0", "2025-02-01", "J06.9", "0"],      # a cold: not a measured condition
            ["203", "99", "0", "2025-02-01", "C50.911", "0"],   # unknown person: rejected in the adapter
        ]),
        "VISIT_OCCURRENCE": (VISIT, [["301", "2", "9203", "2025-05-20"], ["302", "2", "9202", "2025-05-21"]]),
    }
    tables.update(override)
    return tables


def write_cdm(folder: Path, tables=None, suffix=".csv", delimiter=",", lower=False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (header, rows) in (tables or cdm_tables()).items():
        path = folder / f"{name.lower() if lower else name}{suffix}"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter=delimiter)
            w.writerow(header)
            w.writerows(rows)
    return folder


def load(engine, source, tmp_path, **kw):
    return ingest.load_source(engine, source, "omop", tmp_path / "rejects.csv", replace=True, as_of=AS_OF,
                              extract_date=EXTRACT_DATE, **kw)




def test_code_built_cdm(engine, tmp_path):
    report = load(engine, write_cdm(tmp_path / "cdm"), tmp_path)
    assert by_source_file(report) == {
        "PERSON.csv": (2, 2, {}, {}),
        "DRUG_EXPOSURE.csv": (7, 4, {"other_drug_by_rxcui": 1, "inpatient_administration": 1},
                              {"unknown_patient": 1}),
        "PROVIDER.csv": (1, 1, {}, {}),
        "CARE_SITE.csv": (0, 0, {}, {}),
        "OBSERVATION_PERIOD.csv": (3, 2, {}, {"unknown_person": 1}),
        "CONDITION_OCCURRENCE.csv": (3, 1, {"not_a_measured_condition": 1}, {"unknown_person": 1}),
        "VISIT_OCCURRENCE.csv": (2, 1, {"not_emergency_or_inpatient": 1}, {}),
        "CONCEPT.csv": (3, 3, {}, {}),
        "(added by rxdash)": (1, 1, {}, {}),
    }
    assert "1 of 1 clinician is in the clinic Unassigned (CARE_SITE is empty)" in report.notes
    with engine.connect() as conn:
        patients = {r[0]: tuple(r[1:]) for r in conn.exec_driver_sql(
            "select patient_id, birth_date, sex, cancer, record_start, record_end from patients")}
        fills = conn.exec_driver_sql("select rx_id, fill_date, quantity, days_supply, rxcui from prescriptions "
                                     "order by rx_id").fetchall()
        events = conn.exec_driver_sql("select patient_id, event_date, event_type from events").fetchall()
        clinician = conn.exec_driver_sql("select specialty, clinic_id from clinicians").fetchall()
    assert patients == {"1": (dt.date(1960, 7, 1), "F", True, dt.date(2020, 1, 1), dt.date(2025, 6, 30)),
                        "2": (dt.date(1971, 3, 15), "M", False, None, None)}
    got = [(r[0], r[1], None if r[2] is None else float(r[2]), int(r[3]), r[4]) for r in fills]
    assert [g for g in got if not g[0].startswith("107")] == [
        ("101", dt.date(2025, 1, 10), 120.0, 30, "856999"),
        ("102", dt.date(2025, 3, 1), 60.0, 30, "856999"),
        ("102~fill2", dt.date(2025, 3, 31), 60.0, 30, "856999"),
        ("103", dt.date(2025, 5, 1), None, 30, "856999")]
    year = sorted((g for g in got if g[0].startswith("107")), key=lambda g: g[1])
    assert len(year) == 13 and sum(g[3] for g in year) == 371 and {g[2] for g in year} == {None}
    assert (year[0][1], year[-1][1], year[-1][3]) == (dt.date(2024, 1, 1), dt.date(2024, 12, 26), 11)
    assert events == [("2", dt.date(2025, 5, 20), "ed_visit")]
    assert clinician == [("General Practice", "Unassigned")]
    mme = daily_mme(engine)
    assert {k: mme[k] for k in ("101", "102", "102~fill2")} == {"101": pytest.approx(40), "102": pytest.approx(20),
                                                                  "102~fill2": pytest.approx(20)}
    assert all(mme[k] != mme[k] for k in mme if k.startswith(("103", "107")))   # no quantity: dose unknown (NaN)
    rejects = {(r["file"], r["line"], r["reason_code"]) for r in read_rejects(tmp_path / "rejects.csv")}
    assert rejects == {("DRUG_EXPOSURE.csv", "8", "unknown_patient"),
                       ("OBSERVATION_PERIOD.csv", "4", "unknown_person"),
                       ("CONDITION_OCCURRENCE.csv", "4", "unknown_person")}


def test_lowercase_tab_separated_files_load_the_same(tmp_path):
    a = load(db.make_engine(f"duckdb:///{tmp_path / 'a.duckdb'}"), write_cdm(tmp_path / "csv"), tmp_path)
    b = load(db.make_engine(f"duckdb:///{tmp_path / 'b.duckdb'}"),
             write_cdm(tmp_path / "tsv", suffix=".tsv", delimiter="\t", lower=True), tmp_path)
    assert [(s.rows_read, s.rows_loaded, s.rows_skipped, s.rows_rejected) for s in a.sources] == \
           [(s.rows_read, s.rows_loaded, s.rows_skipped, s.rows_rejected) for s in b.sources]
    assert b.sources[1].name == "drug_exposure.tsv"


def _adapt(source, **kw):
    reader = ingest.open_reader()
    create_reject_table(reader)
    return reader, omop.adapt(source, reader, **kw)


def test_eunomia_extract_counts(tmp_path):
    """Persons 4, 25 and 28 of Eunomia Synthea27Nj with all their rows: 31 exposures, quantity 0 everywhere."""
    reader, adapted = _adapt(str(EXTRACT))
    files = {f.name: (f.rows_read, f.rows_used, dict(f.skipped), dict(f.rejected)) for f in adapted.files}
    assert files == {
        "PERSON.csv": (3, 0, {}, {}), "DRUG_EXPOSURE.csv": (31, 0, {}, {}), "PROVIDER.csv": (4, 0, {}, {}),
        "CARE_SITE.csv": (0, 0, {}, {}), "OBSERVATION_PERIOD.csv": (3, 3, {}, {}),
        "CONDITION_OCCURRENCE.csv": (52, 0, {"not_a_measured_condition": 52}, {}),
        "VISIT_OCCURRENCE.csv": (134, 0, {"not_emergency_or_inpatient": 128}, {}),
        "CONCEPT.csv": (39, 39, {}, {}), "DRUG_STRENGTH.csv": (0, 0, {}, {}), "(added by rxdash)": (1, 0, {}, {})}
    assert reader.execute("select patient_id, birth_date, sex, record_start, record_end from src_patients "
                          "order by line_no").fetchall() == [
        ("4", "2000-08-14", "M", "2003-01-20", "2019-10-14"), ("25", "2003-12-18", "M", "2003-12-19", "2022-09-06"),
        ("28", "1970-07-10", "F", "1988-09-02", "2022-06-24")]
    assert reader.execute("select event_type, count(*) from src_events group by 1 order by 1").fetchall() == [
        ("ed_visit", 5), ("hospitalization", 1)]
    # quantity 0 -> blank; the 6 exposures of 371 days with no quantity pass their span (end_date), not 371.
    assert reader.execute("select count(*) filter (where quantity = ''), count(*) filter (where days_supply = '371'), "
                          "count(*) filter (where days_supply = '' and end_date <> '') "
                          "from src_prescriptions").fetchall() == [(31, 0, 6 + 5)]   # 371 days; days_supply 0
    reader.close()
    # Loaded: the 14 other drugs are skipped; the 17 opioid exposures have no quantity, so they load as supply
    # of unknown dose: 11 by their days (a days_supply of 0 and an end date on the start day is 1 day) and
    # the 6 year-long records as orders over their span, split into fills of at most 30 days.
    engine = db.make_engine(f"duckdb:///{tmp_path / 'e.duckdb'}")
    report = load(engine, str(EXTRACT), tmp_path)
    assert by_source_file(report)["DRUG_EXPOSURE.csv"] == (31, 17, {"other_drug_by_rxcui": 14}, {})
    assert report.tables[3].orders_split == 6
    with engine.connect() as conn:
        assert sorted(conn.exec_driver_sql("select quantity_source, count(*), sum(days_supply) from prescriptions "
                                           "where quantity is null group by 1").fetchall()) == [
            ("days_only", 6, 146), ("end_only", 83, 2237)]
        # Person 28's supply runs to the end of their record (2022-06-24): censored, not a discontinuation;
        # with no dose, no taper can be measured at all: the sample shows no abrupt discontinuation.
        assert conn.exec_driver_sql("select max(fill_date + days_supply - 1) from prescriptions "
                                    "where patient_id = '28'").scalar() == dt.date(2022, 6, 24)
        assert conn.exec_driver_sql("select count(*) from stored_tapers").scalar() == 0
        assert conn.exec_driver_sql("select count(*) from stored_ltot_episodes where is_ltot").scalar() == 2
    engine.dispose()


def test_eunomia_extract_with_quantities_loads(engine, tmp_path):
    """The extract with a quantity written into its 11 opioid exposures of ≤ 365 days (test data only)."""
    folder = Path(shutil.copytree(EXTRACT, tmp_path / "eun"))
    path = folder / "DRUG_EXPOSURE.csv"
    rows = list(csv.reader(path.open(encoding="utf-8")))
    for r in rows[1:]:
        if r[11] == "0":
            r[11] = "60"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    report = load(engine, str(folder), tmp_path)
    got = by_source_file(report)
    assert got["DRUG_EXPOSURE.csv"][0] == 31
    assert got["DRUG_EXPOSURE.csv"][2] == {"other_drug_by_rxcui": 14}
    assert got["DRUG_EXPOSURE.csv"][1] + sum(got["DRUG_EXPOSURE.csv"][3].values()) == 17
    assert got["DRUG_EXPOSURE.csv"][3].get("days_supply_over_365") == 6
    assert got["PERSON.csv"] == (3, 3, {}, {})
    assert got["(added by rxdash)"] == (1, 1, {}, {})


def test_contract_and_omop_give_the_same_prescriptions(tmp_path):
    """The same two patients as contract CSV files and as an OMOP folder: the same typed prescriptions."""
    contract = tmp_path / "contract"
    contract.mkdir()
    write_csv(contract / "clinics.csv", ["clinic_id", "clinic_name"], [["Unassigned", "Unassigned"]])
    write_csv(contract / "clinicians.csv", ["clinician_id", "clinician_name", "specialty", "clinic_id"],
              [["7", "Dr Seven", "General Practice", "Unassigned"]])
    write_csv(contract / "patients.csv", ["patient_id", "birth_date", "sex", "cancer", "hospice_palliative",
                                          "sickle_cell", "opioid_use_disorder", "record_start", "record_end"],
              [["1", "1960-07-01", "F", "true", "false", "false", "false", "2020-01-01", "2025-06-30"],
               ["2", "1971-03-15", "M", "false", "false", "false", "false", "", ""]])
    write_csv(contract / "prescriptions.csv", ["rx_id", "patient_id", "clinician_id", "fill_date", "drug_name",
                                               "ingredient", "strength", "strength_unit", "dose_form", "quantity",
                                               "days_supply", "long_acting", "rxcui", "end_date"],
              [["101", "1", "7", "2025-01-10", HYDROCODONE_10, "", "", "", "", "120", "30", "", "856999", ""],
               ["102", "2", "7", "2025-03-01", HYDROCODONE_10, "", "", "", "", "120", "", "", "856999", "2025-04-29"]])
    write_csv(contract / "events.csv", ["patient_id", "event_date", "event_type"], [["2", "2025-05-20", "ed_visit"]])
    tables = cdm_tables()
    tables["DRUG_EXPOSURE"] = (DRUG, tables["DRUG_EXPOSURE"][1][:2])
    tables["OBSERVATION_PERIOD"] = (PERIOD, tables["OBSERVATION_PERIOD"][1][:2])
    tables["CONDITION_OCCURRENCE"] = (CONDITION, tables["CONDITION_OCCURRENCE"][1][:2])
    a, b = (db.make_engine(f"duckdb:///{tmp_path / n}") for n in ("a.duckdb", "b.duckdb"))
    ingest.load_source(a, contract, "contract", tmp_path / "ra.csv", replace=True, as_of=AS_OF,
                       extract_date=EXTRACT_DATE)
    load(b, write_cdm(tmp_path / "cdm", tables), tmp_path)
    query = ("select p.*, w.window_start, w.window_end from prescriptions p join patients w using (patient_id) "
             "order by rx_id")
    with a.connect() as ca, b.connect() as cb:
        left = [tuple(r) for r in ca.exec_driver_sql(query)]
        right = [tuple(r) for r in cb.exec_driver_sql(query)]
        assert len(left) == 3 and left == right
        for q in ("select * from events", "select patient_id, birth_date, sex, cancer from patients order by 1"):
            assert ca.exec_driver_sql(q).fetchall() == cb.exec_driver_sql(q).fetchall()
    assert daily_mme(a) == daily_mme(b)


def test_missing_person_file_is_one_line(tmp_path):
    tables = cdm_tables()
    del tables["PERSON"]
    with pytest.raises(ingest.LoadError, match=r"^.*: no PERSON file \(\.csv, \.tsv or \.txt\) in the folder$"):
        _adapt(str(write_cdm(tmp_path / "cdm", tables)))


def test_bad_header_is_refused(tmp_path):
    tables = cdm_tables(DRUG_EXPOSURE=(["drug_exposure_id", "person", "drug_concept_id", "drug_exposure_start_date"],
                                       [["1", "1", "9001", "2025-01-01"]]))
    engine = db.make_engine(f"duckdb:///{tmp_path / 'x.duckdb'}")
    with pytest.raises(ingest.LoadError, match="DRUG_EXPOSURE.csv: not an OMOP DRUG_EXPOSURE table, it lacks "
                                               "column person_id"):
        load(engine, write_cdm(tmp_path / "cdm", tables), tmp_path)
    with engine.connect() as conn:   # nothing was loaded: not even the tables
        assert not sa.inspect(conn).has_table("prescriptions")


def test_hostile_id_loads_as_text(tmp_path):
    hostile = "1'); drop table patients; --"
    tables = cdm_tables()
    tables["PERSON"][1][0][0] = hostile
    tables["DRUG_EXPOSURE"][1][0][1] = hostile
    engine = db.make_engine(f"duckdb:///{tmp_path / 'x.duckdb'}")
    load(engine, write_cdm(tmp_path / "cdm", tables), tmp_path)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select patient_id from prescriptions where rx_id = '101'").scalar_one() == hostile


def _pg_cdm(tmp_path) -> tuple[sa.Engine, str]:
    """A uniquely named schema on the local PostgreSQL holding the code-built CDM tables (all text)."""
    admin = sa.create_engine(PG_URL)
    schema = f"omop_{uuid.uuid4().hex[:10]}"
    prep = admin.dialect.identifier_preparer
    with admin.begin() as conn:
        conn.exec_driver_sql(f"create schema {prep.quote_schema(schema)}")
        for name, (header, rows) in cdm_tables().items():
            table = f"{prep.quote_schema(schema)}.{prep.quote(name.lower())}"
            conn.exec_driver_sql(f"create table {table} ({', '.join(f'{c} text' for c in header)})")
            if rows:
                marks = ", ".join(f":{c}" for c in header)
                conn.execute(sa.text(f"insert into {table} values ({marks})"), [dict(zip(header, r)) for r in rows])
    return admin, schema


def test_database_source_on_postgresql(engine, tmp_path):
    admin, schema = _pg_cdm(tmp_path)
    try:
        report = load(engine, PG_URL, tmp_path, schema=schema)
        got = by_source_file(report)
        assert got[f"{schema}.drug_exposure"] == (7, 4, {"other_drug_by_rxcui": 1, "inpatient_administration": 1},
                                                  {"unknown_patient": 1})
        assert got[f"{schema}.person"] == (2, 2, {}, {})
        mme = daily_mme(engine)
        assert {k: mme[k] for k in ("101", "102", "102~fill2")} == {
            "101": pytest.approx(40), "102": pytest.approx(20), "102~fill2": pytest.approx(20)}
        with pytest.raises(ingest.LoadError, match="schema .* not found"):
            load(engine, PG_URL, tmp_path, schema=f'{schema}"; drop schema {schema} cascade; --')
        with admin.connect() as conn:   # the hostile name did nothing
            assert conn.execute(sa.text("select count(*) from information_schema.schemata where schema_name = :s"),
                                {"s": schema}).scalar_one() == 1
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"drop schema {admin.dialect.identifier_preparer.quote_schema(schema)} cascade")
        admin.dispose()


def test_sql_in_the_header_names_of_every_cdm_file_is_only_an_ignored_column(engine, tmp_path):
    """The hostile input set (tests/hostile.py) as extra columns of every CDM file, its cells holding the
    payloads too: the load reads the same rows with the same outcomes, and no payload runs."""
    from tests.hostile import header_payloads

    secret = tmp_path / "secret.txt"
    secret.write_text("rxdash-secret-7f3a9")
    copy_target = tmp_path / "written-by-payload.csv"
    payloads = header_payloads(secret, copy_target)
    hostile = {name: (header + payloads, [r + payloads for r in rows]) for name, (header, rows) in cdm_tables().items()}
    plain = by_source_file(load(engine, write_cdm(tmp_path / "plain"), tmp_path))
    got = by_source_file(load(engine, write_cdm(tmp_path / "hostile", hostile), tmp_path))
    assert got == plain
    assert not copy_target.exists()
    with engine.connect() as conn:
        stored = repr([conn.exec_driver_sql(f"select * from {t}").all() for t in ("patients", "prescriptions",
                                                                                  "clinicians", "clinics", "events")])
    assert "rxdash-secret-7f3a9" not in stored + (tmp_path / "rejects.csv").read_text()


def test_a_data_line_not_in_utf8_is_one_line_naming_the_file(tmp_path):
    folder = write_cdm(tmp_path / "cdm")
    provider = folder / "PROVIDER.csv"
    provider.write_bytes(provider.read_bytes().replace(b"Dr Seven", "Dr Sévèn".encode("latin-1")))
    engine = db.make_engine(f"duckdb:///{tmp_path / 'x.duckdb'}")
    with pytest.raises(ingest.LoadError) as refused:
        load(engine, folder, tmp_path)
    assert str(refused.value) == "PROVIDER.csv: not UTF-8 encoded (line 2); save the file as UTF-8 and load again"
