"""The contract's tables as Parquet (analysis/contract_parquet.py): typed columns read as the text a CSV holds,
a folder of part files read in order, every row loaded or rejected with its part file and row, the same
checks and the same result as the CSV files."""
from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from analysis import ingest
from analysis.errors import LoadError
from tests.conftest import SAMPLE
from tests.fixtures import read_rejects, write_dataset

AS_OF = dt.date(2026, 1, 1)


def _rows(engine, table: str, columns: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(f"select {columns} from {table} order by 1, 2").fetchall()]


def _typed_prescriptions() -> pa.Table:
    """Prescriptions as a lake writes them: dates as DATE or TIMESTAMP, numbers as numbers, a boolean, an
    extra column, a column name in capitals, and two rows the checks reject (a NULL fill date, a
    negative quantity)."""
    oxy = "oxycodone hydrochloride 10 MG Oral Tablet"
    return pa.table({
        "RX_ID": ["R1", "R2", "R3", "R4"],
        "patient_id": ["P1", "P1", "P2", "P2"],
        "clinician_id": ["D1", "D1", "D2", "D2"],
        # A timestamp is dated by its day; 23:59 stays on 31 January (no time-zone shift).
        "fill_date": pa.array([dt.datetime(2025, 1, 1), dt.datetime(2025, 1, 31, 23, 59), None,
                               dt.datetime(2025, 2, 1)], pa.timestamp("us")),
        "drug_name": [oxy, oxy, oxy, oxy],
        # All-NULL columns typed as text, as a lake's writer types them (Spark cannot read Parquet's NULL type).
        "ingredient": pa.array([None, None, None, None], pa.string()),
        "strength": pa.array([Decimal("10.00"), None, None, None], pa.decimal128(6, 2)),
        "strength_unit": ["mg", None, None, None],
        "dose_form": pa.array([None, None, None, None], pa.string()),
        "quantity": pa.array([60.0, 90.0, 60.0, -5.0], pa.float64()),
        "days_supply": pa.array([30, 30, 30, 30], pa.int32()),
        "long_acting": pa.array([False, None, None, None], pa.bool_()),
        "pharmacy_note": ["kept out", "", "", ""],
    })


def _write_typed(folder, parts: bool):
    """The fixture data set with prescriptions (and patients, typed) as Parquet instead of CSV."""
    write_dataset(folder)
    (folder / "prescriptions.csv").unlink()
    (folder / "patients.csv").unlink()
    pq.write_table(pa.table({
        "patient_id": ["P1", "P2", "P3"],
        "birth_date": pa.array([dt.date(1960, 1, 1), dt.date(1975, 6, 15), dt.date(1950, 3, 3)], pa.date32()),
        "sex": ["F", "M", "F"],
        "cancer": pa.array([False, False, True], pa.bool_()),
        "hospice_palliative": pa.array([0, 0, None], pa.int8()),
        "sickle_cell": pa.array([0, 0, None], pa.int64()),
        "opioid_use_disorder": pa.array([False, False, None], pa.bool_()),
    }), folder / "patients.parquet")
    table = _typed_prescriptions()
    if not parts:
        pq.write_table(table, folder / "prescriptions.parquet")
        return
    # A table as Spark writes it: part files, a _SUCCESS marker and a checksum file that are not data.
    target = folder / "prescriptions.parquet"
    target.mkdir()
    pq.write_table(table.slice(0, 1), target / "part-00000.parquet")
    pq.write_table(table.slice(1, 3), target / "part-00001.parquet")
    (target / "_SUCCESS").write_bytes(b"")
    (target / ".part-00000.parquet.crc").write_bytes(b"not parquet")


@pytest.mark.parametrize("parts", [False, True], ids=["one file", "part files"])
def test_typed_parquet_columns_load_as_their_csv_text_would(engine, tmp_path, parts):
    _write_typed(tmp_path / "d", parts)
    report = ingest.load_directory(engine, tmp_path / "d", tmp_path / "rejects.csv", as_of=AS_OF)
    by_table = {t.table: t for t in report.tables}
    rx = by_table["prescriptions"]
    assert (rx.file, rx.rows_read, rx.rows_loaded, rx.rows_rejected) == ("prescriptions.parquet", 4, 2, 2)
    assert rx.ignored_columns == ("pharmacy_note",)
    assert (by_table["patients"].file, by_table["patients"].rows_loaded) == ("patients.parquet", 3)
    assert by_table["clinics"].file == "clinics.csv"   # CSV and Parquet tables side by side
    assert _rows(engine, "prescriptions", "rx_id, fill_date, quantity, days_supply, strength") == [
        ("R1", dt.date(2025, 1, 1), 60.0, 30, 10.0),
        ("R2", dt.date(2025, 1, 31), 90.0, 30, 10.0),   # from the drug name
    ]
    assert _rows(engine, "patients", "patient_id, cancer, hospice_palliative") == [
        ("P1", False, False), ("P2", False, False), ("P3", True, False)]
    rejects = {r["row_id"]: (r["file"], r["line"], r["reason_code"]) for r in read_rejects(tmp_path / "rejects.csv")}
    # The row is located by its part file and its row in that file (1-based).
    second = "prescriptions.parquet/part-00001.parquet"
    third, fourth = ((second, "2"), (second, "3")) if parts else (("prescriptions.parquet", "3"),
                                                                    ("prescriptions.parquet", "4"))
    assert rejects["R3"][:2] == third and rejects["R4"][:2] == fourth
    assert {rejects["R3"][2], rejects["R4"][2]} == {"bad_fill_date", "non_positive_quantity"}


def test_the_sample_as_parquet_loads_exactly_as_its_csv_files(tmp_path):
    """Every contract file of the sample written as Parquet (text columns, as a lake copy of the CSVs holds):
    the same rows loaded, skipped and rejected, with the same reasons, and the same tables."""
    lake = tmp_path / "lake"
    lake.mkdir()
    with duckdb.connect() as con:
        for spec in ingest.TABLES:
            source = SAMPLE / spec.file_name
            con.execute("copy (select * from read_csv($f, all_varchar = true, header = true, quote = '\"', "
                        "escape = '\"', ignore_errors = true)) to "
                        f"'{lake / spec.name}.parquet' (format parquet)", {"f": str(source)})
    from analysis import db

    engines = {kind: db.make_engine(f"duckdb:///{tmp_path / kind}.duckdb") for kind in ("csv", "parquet")}
    reports = {"csv": ingest.load_directory(engines["csv"], SAMPLE, tmp_path / "r1.csv", as_of=AS_OF),
               "parquet": ingest.load_directory(engines["parquet"], lake, tmp_path / "r2.csv", as_of=AS_OF)}

    def outcome(report):
        return {t.table: (t.rows_read, t.rows_loaded, t.rows_skipped, t.rows_rejected, dict(t.reasons))
                for t in report.tables}

    # The sample's malformed CSV rows cannot be in a Parquet copy (the CSV reader drops them): only they differ.
    csv_outcome, parquet_outcome = outcome(reports["csv"]), outcome(reports["parquet"])
    for table, (read, loaded, skipped, rejected, reasons) in csv_outcome.items():
        malformed = reasons.pop("malformed_row", 0)
        assert parquet_outcome[table] == (read - malformed, loaded, skipped, rejected - malformed, reasons)
    assert csv_outcome["prescriptions"][1] == 21_881
    for table in ("patients", "prescriptions", "events", "daily_dose_segments", "stored_tapers"):
        with engines["csv"].connect() as a, engines["parquet"].connect() as b:
            query = f"select * from {table} order by all"
            assert a.exec_driver_sql(query).fetchall() == b.exec_driver_sql(query).fetchall(), table
    for e in engines.values():
        e.dispose()


def test_unreadable_or_unsuitable_parquet_refuses_the_load_in_one_line(tmp_path, engine):
    folder = write_dataset(tmp_path / "d")
    def refused(match: str) -> None:
        with pytest.raises(LoadError, match=match):
            ingest.load_directory(engine, folder, tmp_path / "r.csv", as_of=AS_OF)

    (folder / "events.parquet").write_bytes(b"PAR1 not really")
    refused(r"holds both events\.csv and events\.parquet; keep the one to load")
    (folder / "events.csv").unlink()
    refused(r"^events\.parquet: cannot be read as Parquet")
    (folder / "events.parquet").unlink()
    pq.write_table(pa.table({"patient_id": ["P1"], "event_date": [[1, 2]], "event_type": ["ed_visit"]}),
                   folder / "events.parquet")
    refused(r"^events\.parquet: column event_date is of Parquet type BIGINT\[\]; the contract's columns are")
    pq.write_table(pa.table({"patient_id": ["P1"], "Event_Date ": ["2025-03-01"]}), folder / "events.parquet")
    refused(r"^events\.parquet: missing required column event_type \(columns: patient_id, event_date\)")
    pq.write_table(pa.table({"a": ["x"], "A": ["y"]}), folder / "events.parquet")
    refused(r"^events\.parquet: column a appears more than once")
    (folder / "events.parquet").unlink()
    (folder / "events.parquet").mkdir()
    (folder / "events.parquet" / "_SUCCESS").write_bytes(b"")
    refused(r"^events\.parquet: a folder with no Parquet part files")
    shutil.rmtree(folder / "events.parquet")
    (folder / "prescriptions.csv").unlink()
    refused(r"^prescriptions\.csv \(or prescriptions\.parquet\): not found in")
    with engine.connect() as conn:   # each was refused before anything was written
        assert not ingest.db.has_schema(conn)


def test_a_folder_given_as_a_uri_is_for_spark_alone(engine, tmp_path):
    """s3a://, abfss://, file:/ ... are read by a Spark database itself (tests/test_spark.py); DuckDB and
    PostgreSQL refuse them in one line, and a Windows drive letter is a local folder, not a URI."""
    from analysis import contract_parquet

    for uri in ("s3a://bucket/extract", "file:/lake/extract", "dbfs:/mnt/extract"):
        with pytest.raises(LoadError, match=r"a folder given as a URI is read by Spark itself; load it into a Spark"):
            ingest.load_directory(engine, uri, tmp_path / "r.csv", as_of=AS_OF)
    assert not contract_parquet.is_lake_uri("C:/data/extract") and contract_parquet.is_lake_uri("gs://b/x")
