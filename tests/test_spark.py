"""Apache Spark as the database: the SQL carried over to Spark SQL (analysis/spark_sql.py), and the sample
summarised on DuckDB and on Spark (through the test session's Spark Connect server) giving the same files.

The measure tests (tests/test_measures.py) and the taper tests (tests/test_dose.py, `tapers`) run on Spark
too, through the module_engine fixture, with the same expected values as DuckDB and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import os
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import queries
from analysis import db, ingest, spark_sql, summary
from tests.conftest import SAMPLE, empty_database
from tests.fixtures import read_rejects


def spark(sql: str) -> str:
    return " ".join(spark_sql.to_spark(sql).main.split())


def test_date_minus_date_is_a_whole_number_of_days_and_date_plus_days_a_date():
    # DuckDB and PostgreSQL: date - date is days (an integer); Spark: an interval. date + n needs INT n.
    out = spark("select fill_date - fill_date as a, fill_date + days_supply - 1 as b, fill_date - 7 as c, "
                "(fill_date + 3) - fill_date as d from prescriptions")
    assert "DATEDIFF(prescriptions.fill_date, prescriptions.fill_date) AS a" in out
    # days_supply is INT already; the literal 1 is INT: the outer subtraction is date - int.
    assert "DATE_ADD(DATE_ADD(prescriptions.fill_date, prescriptions.days_supply), -1) AS b" in out
    assert "DATE_ADD(prescriptions.fill_date, -7) AS c" in out
    assert "DATEDIFF((DATE_ADD(prescriptions.fill_date, 3)), prescriptions.fill_date) AS d" in out


def test_date_parameters_and_parsed_dates_are_typed_and_counts_cast_to_int():
    out = spark("select :data_end - fill_date as a, rx_parse_date(x) - :as_of as b, fill_date + count(*) as c "
                "from prescriptions group by fill_date")
    assert "DATEDIFF(CAST(:data_end AS DATE), prescriptions.fill_date) AS a" in out
    assert "DATEDIFF(CAST(RX_PARSE_DATE(x) AS DATE), CAST(:as_of AS DATE)) AS b" in out
    assert "DATE_ADD(prescriptions.fill_date, CAST(COUNT(*) AS INT)) AS c" in out   # count is BIGINT


def test_months_of_an_interval_stay_an_interval():
    # i * :months * interval '1 month' is months, not a number of days to DATE_ADD (Spark would cast the
    # interval to its count of months and add that many days: periods of 1 and 2 days instead of months).
    out = spark("select cast(:start as date) + i * :months * interval '1 month' as s, "
                "cast(cast(:start as date) + (i + 1) * :months * interval '1 month' as date) - 1 as e "
                "from generate_series(0, 2) as g(i)")
    assert "CAST(:start AS DATE) + g.i * :months * INTERVAL '1' MONTH AS s" in out
    assert "DATE_ADD(CAST(CAST(:start AS DATE) + (g.i + 1) * :months * INTERVAL '1' MONTH AS DATE), -1) AS e" in out


def test_columns_of_cte_are_typed_through_the_chain():
    out = spark("with a as (select fill_date + days_supply as ends, fill_date from prescriptions) "
                "select ends - fill_date as n from a where ends - fill_date > 3")
    assert out.count("DATEDIFF(a.ends, a.fill_date)") == 2


def test_statement_shapes_spark_lacks():
    assert spark("delete from ref_ndc") == "TRUNCATE TABLE ref_ndc"
    assert spark("create temporary table stg_x (line_no bigint, a varchar)") == \
        "CREATE TABLE stg_x (line_no BIGINT, a STRING)"
    assert spark("select g.i from generate_series(0, :n - 1) as g(i)") == \
        "SELECT g.i AS i FROM EXPLODE(SEQUENCE(0, :n - 1)) AS g(i)"
    assert "d.x = (NOT :y)" in spark("select 1 from t as d where d.x = not :y")
    # Values are never written into the text: parameters stay Spark's own :name markers.
    assert ":clinic_1, :clinic_2" in spark("select 1 from clinics where clinic_id in (:clinic_1, :clinic_2)")


def test_update_becomes_a_rewrite_of_the_table():
    t = spark_sql.to_spark("update patients set window_end = record_end where record_end is not null")
    assert [s.split(" AS ")[0] for s in t.before] == ["DROP TABLE IF EXISTS rx_update_rxmark_patients",
                                                    "CREATE TABLE rx_update_rxmark_patients"]
    assert t.main.startswith("INSERT OVERWRITE TABLE patients (patient_id, birth_date, sex")
    assert ("CASE WHEN patients.record_end IS NOT NULL THEN patients.record_end ELSE patients.window_end END "
            "AS window_end") in t.before[1]
    assert t.after == ["DROP TABLE IF EXISTS rx_update_rxmark_patients"]
    marked = t.marked("ab12")
    assert "rx_update_ab12_patients" in marked.main and "rxmark" not in " ".join(marked.before + marked.after)


def test_a_cte_read_more_than_once_is_made_once_as_a_scratch_table():
    t = spark_sql.to_spark("with a as (select patient_id from patients), b as (select patient_id from a), "
                           "c as (select patient_id from prescriptions) "
                           "select * from a join b using (patient_id) join c using (patient_id)")
    # a is read twice (by b and by the final select): made first; b and c are read once and stay CTEs.
    assert t.before == ["DROP TABLE IF EXISTS rx_cte_rxmark_a",
                        "CREATE TABLE rx_cte_rxmark_a AS SELECT patients.patient_id AS patient_id "
                        "FROM patients AS patients"]
    assert t.main.startswith("WITH b AS (SELECT a.patient_id AS patient_id FROM rx_cte_rxmark_a AS a), c AS")
    assert t.after == ["DROP TABLE IF EXISTS rx_cte_rxmark_a"]


def test_every_query_file_carries_over():
    # Every query parses, is typed and becomes Spark SQL; the taper rules' shared CTEs are made first.
    for name in queries.names():
        if name in ("schema",) or name.startswith("functions"):
            continue
        assert spark_sql.to_spark(queries.load(name)).main, name
    assert len(spark_sql.to_spark(queries.load("build_tapers")).before) >= 10


def test_urls():
    assert db.dialect_of("spark://local[2]") == db.dialect_of("sc://127.0.0.1:15002") == "spark"
    with pytest.raises(ValueError, match="spark://local"):
        db.dialect_of("mysql://x/y")


def _same(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """The columns in which two files differ (numbers within 1e-9 relative, text exactly), rows in any order."""
    a = a.sort_values(list(a.columns)).reset_index(drop=True)
    b = b.sort_values(list(b.columns)).reset_index(drop=True)
    differ = []
    for c in a.columns:
        if a[c].dtype.kind in "fi" and b[c].dtype.kind in "fi":
            same = np.allclose(a[c].to_numpy(float), b[c].to_numpy(float), rtol=1e-9, atol=0, equal_nan=True)
        else:
            same = a[c].fillna("<blank>").astype(str).equals(b[c].fillna("<blank>").astype(str))
        if not same:
            differ.append(c)
    return differ


def test_the_sample_summarised_on_duckdb_and_on_spark_gives_the_same_files(sample_duckdb, request, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv(summary.SALT_ENV, "one-secret-for-both")   # the same patient keys in both files
    settings = summary.Settings(dt.date(2025, 1, 1), dt.date(2025, 12, 31), min_cell=0)
    duck = summary.write_summary(db.make_engine(sample_duckdb, read_only=True), settings, tmp_path / "duckdb")
    with empty_database("spark", tmp_path, request) as engine:
        report = ingest.load_directory(engine, SAMPLE, tmp_path / "rejects.csv", replace=True)
        assert [(t.table, t.rows_read, t.rows_loaded, t.rows_rejected) for t in report.tables] == [
            ("clinics", 5, 5, 0), ("clinicians", 40, 40, 0), ("patients", 1202, 1200, 2),
            ("prescriptions", 21894, 21881, 13), ("events", 93, 92, 1)]
        on_spark = summary.write_summary(engine, settings, tmp_path / "spark")
    assert on_spark == duck == {"clinician_measures": 386, "tapers": 32, "consistency": 44}
    for name in ("clinician_measures", "tapers", "consistency"):
        a = pd.read_csv(tmp_path / "duckdb" / f"{name}.csv")
        b = pd.read_csv(tmp_path / "spark" / f"{name}.csv")
        assert list(a.columns) == list(b.columns) and len(a) == len(b), name
        assert _same(a, b) == [], name


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.exec_driver_sql(f"select count(*) from {t}").scalar_one()
                for t in ("clinics", "clinicians", "patients", "prescriptions", "events", "daily_dose_segments",
                          "stored_tapers", "load_runs")}


def test_a_load_into_spark_that_fails_part_way_leaves_the_database_unchanged(request, tmp_path):
    # Spark has no transactions: the load runs in a staging database swapped in only on success.
    from tests.fixtures import write_dataset

    with empty_database("spark", tmp_path, request) as engine:
        ingest.load_directory(engine, write_dataset(tmp_path / "good"), tmp_path / "rejects.csv")
        before = _counts(engine)
        assert before["prescriptions"] == 4 and before["load_runs"] == 1
        # --replace empties every contract table before the bad event row fails the whole load.
        bad = write_dataset(tmp_path / "bad", events=[["P1", "2025-02-30", "ed_visit"]])
        with pytest.raises(ingest.LoadError, match="--strict: 1 row rejected"):
            ingest.load_directory(engine, bad, tmp_path / "rejects.csv", replace=True, strict=True)
        assert _counts(engine) == before
        with engine.connect() as conn:
            session = conn.connection.driver_connection.session
            assert not [d.name for d in session.catalog.listDatabases() if "__rxload_" in d.name]
            current = session.catalog.currentDatabase()
            assert not [t.name for t in session.catalog.listTables(current)
                        if t.name.startswith(("stg_", "chk_", "rx_cte_", "rx_update_"))]
        # And a load that succeeds is swapped in whole: an append of the same files rejects them all.
        report = ingest.load_directory(engine, write_dataset(tmp_path / "again"), tmp_path / "rejects.csv")
        assert report.tables[3].reasons == {"already_loaded": 4}
        assert _counts(engine) == {**before, "load_runs": 2}


def test_rxdash_load_of_parquet_part_files_into_a_spark_database_named_by_schema(request, tmp_path):
    """`rxdash load DIR --db sc://... --schema NAME`: the contract's tables as Parquet part files (as a lake
    holds them) load into the database NAME, created for it, with the same rows and rejects as on DuckDB."""
    import subprocess
    import sys

    from tests.test_parquet import _rows, _write_typed

    server = request.getfixturevalue("spark_server")
    data = tmp_path / "lake"
    _write_typed(data, parts=True)
    name = f"rxcli_{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if k not in ("RXDASH_DB_URL", "RXDASH_SCHEMA")}
    result = subprocess.run([sys.executable, "-m", "dashboard", "load", str(data), "--db", server.url, "--schema",
                             name, "--rejects", str(tmp_path / "rejects.csv")], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"(schema {name})" in result.stdout.splitlines()[0]
    table = {line.split()[0]: line.split()[1:5] for line in result.stdout.splitlines() if ".parquet " in line}
    assert table == {"patients.parquet": ["3", "3", "0", "0"], "prescriptions.parquet": ["4", "2", "0", "2"]}
    engine = db.make_engine(server.url, schema=name)
    try:
        assert _rows(engine, "prescriptions", "rx_id, fill_date, quantity, days_supply, strength") == [
            ("R1", dt.date(2025, 1, 1), 60.0, 30, 10.0), ("R2", dt.date(2025, 1, 31), 90.0, 30, 10.0)]
        rejects = {r["row_id"]: (r["file"], r["line"]) for r in read_rejects(tmp_path / "rejects.csv")}
        assert rejects == {"R3": ("prescriptions.parquet/part-00001.parquet", "2"),
                           "R4": ("prescriptions.parquet/part-00001.parquet", "3")}
        # `rxdash reference ndc` into the same database: ref_ndc alone is replaced (through a staging database,
        # as a load is), the loaded prescriptions are untouched and no staging database is left behind.
        from analysis import ndc

        mine = tmp_path / "mine.csv"
        mine.write_text(",".join(ndc.NDC_COLUMNS) + "\n"
                        "55555-0001-01,MY MORPHINE,Morphine Sulfate,30,mg,Tablet,false,,Local formulary 2025\n",
                        encoding="utf-8")
        reference = subprocess.run([sys.executable, "-m", "dashboard", "reference", "ndc", str(mine), "--db",
                                    server.url, "--schema", name], env=env, capture_output=True, text=True, timeout=600)
        assert reference.returncode == 0, reference.stderr
        with engine.connect() as conn:
            origins = conn.exec_driver_sql("select origin, count(*) from ref_ndc group by origin").fetchall()
            assert dict(origins)["loaded"] >= 1 and "bundled" not in dict(origins)
            assert conn.exec_driver_sql("select ingredient, strength from ref_ndc where ndc11 = '55555000101'"
                                        ).one() == ("morphine", 30.0)
            session = conn.connection.driver_connection.session
            assert not [d.name for d in session.catalog.listDatabases() if "__rxload_" in d.name]
        assert _rows(engine, "prescriptions", "rx_id, quantity") == [("R1", 60.0), ("R2", 90.0)]
        # The same folder given as a URI is read by Spark itself (as s3a://... on a cluster): the same rows and
        # rejects, the rows never passing through rxdash.
        # A lake holds every table as Parquet: the fixture's CSV tables are written as Parquet of text columns.
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        # Hadoop's local file system checks a part file against its .crc file: the made-up one is no checksum.
        (data / "prescriptions.parquet" / ".part-00000.parquet.crc").unlink()
        for csv_file in data.glob("*.csv"):
            text = pacsv.read_csv(csv_file, convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in csv_file.read_text().splitlines()[0].split(",")}))
            pq.write_table(text, data / f"{csv_file.stem}.parquet")
            csv_file.unlink()
        lake = ingest.load_directory(engine, data.as_uri(), tmp_path / "lake-rejects.csv", replace=True)
        outcome = {t.file: (t.rows_read, t.rows_loaded, t.rows_rejected, t.ignored_columns) for t in lake.tables}
        assert outcome["prescriptions.parquet"] == (4, 2, 2, ("pharmacy_note",))
        assert outcome["patients.parquet"] == (3, 3, 0, ())
        assert _rows(engine, "prescriptions", "rx_id, fill_date, quantity, days_supply, strength") == [
            ("R1", dt.date(2025, 1, 1), 60.0, 30, 10.0), ("R2", dt.date(2025, 1, 31), 90.0, 30, 10.0)]
        assert _rows(engine, "patients", "patient_id, cancer") == [("P1", False), ("P2", False), ("P3", True)]
        assert {r["row_id"]: (r["file"], r["line"]) for r in read_rejects(tmp_path / "lake-rejects.csv")} == rejects
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"{spark_sql.NATIVE} drop database if exists {name} cascade")
        engine.dispose()
