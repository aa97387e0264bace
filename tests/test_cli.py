"""The `rxdash` command as a user runs it: real processes, real databases."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import SAMPLE
from tests.fixtures import write_dataset

RXDASH = [sys.executable, "-m", "dashboard"]


def run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "RXDASH_DB_URL"}
    return subprocess.run([*RXDASH, *args], cwd=cwd, env={**environ, **(env or {})},
                          capture_output=True, text=True, timeout=300)


def test_load_prints_counts_and_writes_rejects_in_the_working_folder(tmp_path):
    result = run("load", str(SAMPLE), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if ".csv " in line}
    assert table["prescriptions.csv"] == ["21,894", "21,881", "0", "13"]   # read, loaded, skipped, rejected
    assert table["patients.csv"] == ["1,202", "1,200", "0", "2"]
    assert "rejected 2 × conflicting_duplicate" in result.stdout
    assert (tmp_path / "rxdash.duckdb").is_file()  # the default embedded database
    lines = (tmp_path / "rejects.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "file,line,row_id,reason_code,reason" and len(lines) == 1 + 16


def test_load_a_source_format_prints_each_source_file(tmp_path):
    # The committed OMOP extract (Eunomia, persons 4, 25, 28): 31 exposures, 14 other drugs, 17 opioid
    # exposures of unknown dose (quantity 0 everywhere).
    extract = Path(__file__).parent / "data" / "omop"
    result = run("load", str(extract), "--format", "omop", "--extract-date", "2022-09-30", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:6] for line in result.stdout.splitlines() if line.endswith("prescriptions")}
    assert rows["DRUG_EXPOSURE.csv"] == ["31", "17", "14", "0", "prescriptions"]
    assert "skipped 14 × other_drug_by_rxcui" in result.stdout
    assert "Note: 4 of 4 clinicians are in the clinic Unassigned (CARE_SITE is empty)" in result.stdout
    assert "(omop)" in result.stdout.splitlines()[0]
    # A flag of another format is a usage error, one line, exit 2.
    wrong = run("load", str(extract), "--cdm-schema", "cdm", cwd=tmp_path)
    assert wrong.returncode == 2 and wrong.stderr.strip() == "rxdash load: error: --cdm-schema goes with --format omop"
    # An unreadable source is one line, exit 1.
    missing = run("load", str(tmp_path / "nowhere"), "--format", "fhir", cwd=tmp_path)
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    assert "Traceback" not in missing.stderr


def test_load_into_postgresql_by_url_from_the_environment(tmp_path):
    from tests.conftest import _pg_schema_engine

    admin, engine, schema = _pg_schema_engine()
    try:
        url = engine.url.render_as_string(hide_password=False) + f"?options=-csearch_path%3D{schema}"
        result = run("load", str(write_dataset(tmp_path / "d")), "--rejects", "r.csv", cwd=tmp_path,
                     env={"RXDASH_DB_URL": url})
        assert result.returncode == 0, result.stderr
        with engine.connect() as conn:
            assert conn.execute(sa.text("select count(*) from prescriptions")).scalar_one() == 4
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"drop schema {schema} cascade")


def test_schema_chooses_where_every_command_reads_and_writes(tmp_path):
    """--schema names the PostgreSQL schema (or Spark database): load creates it, the reading commands read it,
    a name that is not a plain lower-case identifier and --schema on a DuckDB file are refused in one line."""
    from tests.conftest import PG_URL

    schema = f"rxcli_{os.urandom(5).hex()}"
    admin = sa.create_engine(PG_URL)
    try:
        data = write_dataset(tmp_path / "d")
        loaded = run("load", str(data), "--db", PG_URL, "--schema", schema, "--rejects", "r.csv", cwd=tmp_path)
        assert loaded.returncode == 0, loaded.stderr
        assert f"(schema {schema})" in loaded.stdout.splitlines()[0]
        with admin.connect() as conn:
            assert conn.exec_driver_sql(f"select count(*) from {schema}.prescriptions").scalar_one() == 4
            # Nothing was written to the default schema's search path instead.
            assert not sa.inspect(conn).has_table("prescriptions", schema="public")
        summarized = run("summarize", "--db", PG_URL, "--schema", schema, "--start", "2025-01-01",
                         "--end", "2025-12-31", "--out", "out", cwd=tmp_path)
        assert summarized.returncode == 0, summarized.stderr
        assert (tmp_path / "out" / "clinician_measures.csv").is_file()
        # The environment variable is the same choice as the flag.
        again = run("summarize", "--db", PG_URL, "--start", "2025-01-01", "--end", "2025-12-31", "--out", "out2",
                    cwd=tmp_path, env={"RXDASH_SCHEMA": schema})
        assert again.returncode == 0, again.stderr
        assert ((tmp_path / "out2" / "clinician_measures.csv").read_bytes()
                == (tmp_path / "out" / "clinician_measures.csv").read_bytes())
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"drop schema if exists {schema} cascade")
        admin.dispose()
    hostile = run("load", str(data), "--db", PG_URL, "--schema", "x; drop schema public", cwd=tmp_path)
    assert hostile.returncode == 1
    assert hostile.stderr.strip() == ("rxdash load: error: --schema 'x; drop schema public': a schema name is "
                                      "lower-case letters, digits and _, starting with a letter or _, at most 63 "
                                      "characters")
    duck = run("summarize", "--schema", "main", "--start", "2025-01-01", "--end", "2025-12-31", "--out", "o",
               cwd=tmp_path)
    assert duck.returncode == 1 and len(duck.stderr.strip().splitlines()) == 1
    assert "a DuckDB file holds one data set" in duck.stderr


def test_a_failed_load_exits_non_zero_with_one_line_and_no_traceback(tmp_path):
    folder = write_dataset(tmp_path / "d")
    (folder / "patients.csv").write_text("patient_id;birth_date\nP1;1960-01-01\n", encoding="utf-8")
    result = run("load", str(folder), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "rxdash load: error: patients.csv: columns are separated by semicolons; the data contract uses commas")
    assert "Traceback" not in result.stderr


def test_strict_refuses_the_whole_load(tmp_path):
    result = run("load", str(SAMPLE), "--strict", "--db", f"duckdb:///{tmp_path / 's.duckdb'}", cwd=tmp_path)
    assert result.returncode == 1
    assert "--strict: 16 rows rejected" in result.stderr
    engine = sa.create_engine(f"duckdb:///{tmp_path / 's.duckdb'}")
    with engine.connect() as conn:  # exactly as it was: not even the tables were created
        assert not sa.inspect(conn).has_table("prescriptions")
    engine.dispose()


def test_a_prescriptions_file_that_loads_nothing_exits_1_with_one_line(tmp_path):
    # Every prescription names an NDC-less, nameless drug: nothing can load, so nothing is loaded.
    rows = [[f"X{i}", "P1", "D1", "2025-01-10", "", "", "", "", "", "20", "10", ""] for i in range(4)]
    folder = write_dataset(tmp_path / "d", prescriptions=rows)
    result = run("load", str(folder), "--db", f"duckdb:///{tmp_path / 's.duckdb'}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == ("rxdash load: error: prescriptions.csv: no row could be loaded, none of its 4 rows "
                                     "(4 × unparseable_drug; see rejects.csv); nothing was loaded")
    assert len((tmp_path / "rejects.csv").read_text(encoding="utf-8").splitlines()) == 1 + 4


def test_load_states_the_extract_date_given_or_taken_from_the_last_fill(tmp_path):
    folder = write_dataset(tmp_path / "d")   # fills on 2025-01-01, 2025-01-31 and 2025-02-01
    result = run("load", str(folder), "--db", f"duckdb:///{tmp_path / 'a.duckdb'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ("Extract date: 2025-02-01 (the last fill date; set it with --extract-date); every patient's record ends "
            "there unless the patient's record_end is earlier") in result.stdout
    result = run("load", str(folder), "--db", f"duckdb:///{tmp_path / 'b.duckdb'}", "--extract-date", "2025-01-31",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Extract date: 2025-01-31 (given)" in result.stdout
    assert "rejected 2 × after_extract_date" in result.stdout   # R3, R4 on 2025-02-01


def test_generate_writes_the_five_files(tmp_path):
    result = run("generate", "--patients", "40", "--seed", "11", "--out", "gen", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == [
        "clinicians.csv", "clinics.csv", "events.csv", "patients.csv", "prescriptions.csv"]
    assert result.stdout.startswith("Wrote gen: 3 clinics, 12 clinicians, 42 patients")


def test_unsupported_database_is_refused_plainly(tmp_path):
    result = run("load", str(SAMPLE), "--db", "sqlite:///x.db", cwd=tmp_path)
    assert result.returncode == 1
    assert "database 'sqlite' is not supported" in result.stderr


def test_summarize_from_the_command_line(tmp_path, sample_duckdb):
    result = run("summarize", "--db", sample_duckdb, "--start", "2024-01-01", "--end", "2024-03-31",
                 "--out", "summary", "--min-cell", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Wrote summary: ")
    assert "Suppression: OFF" in (tmp_path / "summary" / "README.txt").read_text(encoding="utf-8")


def test_summarize_refuses_a_period_that_ends_before_it_starts(tmp_path, sample_duckdb):
    result = run("summarize", "--db", sample_duckdb, "--start", "2024-03-01", "--end", "2024-01-31",
                 "--out", "x", cwd=tmp_path)
    assert result.returncode == 2 and "is before --start" in result.stderr
    bad = run("summarize", "--db", sample_duckdb, "--start", "2024-13-01", "--end", "2024-12-31", "--out", "x",
              cwd=tmp_path)
    assert bad.returncode == 2 and "'2024-13-01' is not a date in YYYY-MM-DD form" in bad.stderr


def test_demo_database_is_rebuilt_when_an_older_version_made_it(tmp_path):
    from analysis import db
    from dashboard import cli

    url = f"duckdb:///{tmp_path / 'demo.duckdb'}"
    assert cli.ensure_sample_database(url) is True           # first start: built
    assert cli.ensure_sample_database(url) is False          # then kept
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("drop table stored_tapers")     # as a database from before tapers were stored
    with engine.connect() as conn:
        assert not db.is_current(conn)
    engine.dispose()
    assert cli.ensure_sample_database(url) is True           # rebuilt, not served broken
    engine = db.make_engine(url)
    with engine.connect() as conn:
        assert db.is_current(conn)
        assert conn.exec_driver_sql("select count(*) from prescriptions").scalar() == 21_881
    engine.dispose()


def test_serve_on_a_busy_port_is_one_line_and_exit_1(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--db", f"duckdb:///{tmp_path / 'x.duckdb'}", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (f"rxdash serve: error: port {port} on 127.0.0.1 is in use (another dashboard?); choose "
                             "another with --port N\n")
    assert "Serving" not in result.stdout


def test_a_database_open_in_another_program_is_one_line_and_exit_1(tmp_path):
    import duckdb

    path = tmp_path / "held.duckdb"
    holder = duckdb.connect(str(path))   # this test process holds the file open for writing
    try:
        for args in (("demo", "--port", "8599"), ("load", str(write_dataset(tmp_path / "d")))):
            result = run(*args, "--db", f"duckdb:///{path}", cwd=tmp_path)
            assert result.returncode == 1, result.stderr
            assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
            assert (f"the database {path} is open in another program (process {os.getpid()}), perhaps another rxdash "
                    "load, demo or serve; stop it, or choose another database with --db") in result.stderr
    finally:
        holder.close()


def test_the_server_imports_its_pages_without_streamlit_runtime_warnings(tmp_path):
    result = subprocess.run([sys.executable, "-c", "import dashboard.server"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "No runtime found" not in result.stderr and result.stderr == ""


def test_a_large_load_shows_every_phase_a_small_one_none():
    """Progress (issue #28): once a step counted in rows is large, every later phase counted in steps (checking,
    deriving, precomputing) is shown too, so a long load is never silent; a small load prints no bars."""
    import io

    from dashboard.cli import _progress_printer

    small, large = io.StringIO(), io.StringIO()
    for stream, rows in ((small, 1_000), (large, 2_000_000)):
        show = _progress_printer(stream)
        show("staging prescriptions", rows, rows)
        for phase, total in (("checking tables", 5), ("deriving daily doses", 3), ("precomputing answers", 122)):
            show(phase, 0, total)
            show(phase, total, total)
    assert small.getvalue() == ""
    lines = [line.split("[")[0].strip() for line in large.getvalue().replace("\r", "\n").splitlines() if line.strip()]
    assert ["staging prescriptions", "checking tables", "deriving daily doses", "precomputing answers"] == list(
        dict.fromkeys(lines))
    assert large.getvalue().rstrip().endswith("122/122")


def test_a_load_refused_part_way_ends_its_progress_bar_before_the_error():
    # A refused FHIR archive (issue #29) printed its error after the half-drawn bar, on the same terminal line.
    import io

    from dashboard.cli import _progress_printer

    stream = io.StringIO()
    show = _progress_printer(stream)
    show("reading FHIR", 300_000, 4_000_000)
    show.finish()
    show.finish()   # once only
    assert stream.getvalue().endswith("300,000/4,000,000\n") and stream.getvalue().count("\n") == 1
    done = io.StringIO()
    show = _progress_printer(done)
    show("reading FHIR", 4_000_000, 4_000_000)
    show.finish()   # a finished bar already ended its line
    assert done.getvalue().endswith("4,000,000/4,000,000\n") and done.getvalue().count("\n") == 1


def test_load_refuses_a_database_in_memory_that_would_throw_the_rows_away(tmp_path):
    # rxdash load into DuckDB's memory reported every row "loaded", then the process ended and took them along.
    for url in ("duckdb:///:memory:", "duckdb://", "duckdb:///:memory:shared"):
        result = run("load", str(SAMPLE), "--db", url, cwd=tmp_path)
        assert result.returncode == 1, (url, result.stdout, result.stderr)
        assert result.stderr.strip().splitlines() == [
            "rxdash load: error: the database URL names DuckDB's memory, which is emptied when the command ends; "
            "name a file, e.g. duckdb:///data/rxdash.duckdb"], url
        assert "Loaded" not in result.stdout
    assert list(tmp_path.iterdir()) == []   # no rejects file, no database: nothing was read
