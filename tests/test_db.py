"""Where the database URL comes from, and which databases are accepted."""
from __future__ import annotations

from pathlib import Path

import pytest

from analysis import db


def test_flag_beats_environment_beats_secrets_beats_default(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(db.ENV_VAR, raising=False)
    assert db.resolve_url() == "duckdb:///rxdash.duckdb"
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        '[connections.rxdash]\nurl = "postgresql+psycopg://reader@db.example/rx"\n', encoding="utf-8")
    assert db.resolve_url() == "postgresql+psycopg://reader@db.example/rx"
    monkeypatch.setenv(db.ENV_VAR, "duckdb:///from-env.duckdb")
    assert db.resolve_url() == "duckdb:///from-env.duckdb"
    assert db.resolve_url("duckdb:///from-flag.duckdb") == "duckdb:///from-flag.duckdb"


def test_plain_postgresql_urls_use_psycopg_3():
    assert db.make_engine("postgresql://postgres@127.0.0.1/test").url.drivername == "postgresql+psycopg"


@pytest.mark.parametrize("url", ["sqlite:///x.db", "mysql://u@h/d"])
def test_other_databases_are_refused_with_the_supported_list(url):
    with pytest.raises(ValueError, match=r"use one of: duckdb:///FILE, postgresql://\.\.\., spark://local\[N\], sc://HOST:PORT"):
        db.dialect_of(url)


INJECTIONS = ["D1' or '1'='1", "D1; drop table prescriptions; --", "') or true --", "D1\" or \"1\"=\"1"]


def test_list_parameters_are_bound_values_never_sql(engine, tmp_path):
    # Every value, however it is written, is compared as a value: no row matches, no table is dropped.
    from analysis import ingest
    from tests.fixtures import write_dataset

    ingest.load_directory(engine, write_dataset(tmp_path / "d"), tmp_path / "r.csv")
    params = {"start": "2025-01-01", "end": "2025-12-31", "all_clinicians": False, "exclude": True}
    with engine.connect() as conn:
        assert db.read_frame(conn, "monthly_opioid_fills", {**params, "clinician_ids": tuple(INJECTIONS)}).empty
        assert db.read_frame(conn, "monthly_opioid_fills", {**params, "clinician_ids": ()}).empty   # empty list
        got = db.read_frame(conn, "monthly_opioid_fills", {**params, "clinician_ids": ("D1",) + tuple(INJECTIONS)})
        # P1 is attributed to D1, who wrote R1 (Jan) and R2 (Jan 31).
        assert got[["patients", "prescriptions"]].values.tolist() == [[1, 2]]
        assert db.read_frame(conn, "data_bounds").iloc[0]["data_start"] is not None   # prescriptions still there


def test_the_dashboard_connection_cannot_write(engine, tmp_path):
    import sqlalchemy as sa

    from analysis import ingest
    from tests.fixtures import write_dataset

    ingest.load_directory(engine, write_dataset(tmp_path / "d"), tmp_path / "r.csv")
    url = engine.url
    if url.get_backend_name() == "duckdb":
        engine.dispose()
        reader = db.make_engine(url.render_as_string(hide_password=False), read_only=True)
    else:
        with engine.connect() as c:
            schema = c.exec_driver_sql("select current_schema()").scalar()
        reader = db.make_engine(url.render_as_string(hide_password=False), read_only=True, schema=schema)
    with pytest.raises(sa.exc.DBAPIError, match="(?i)read.only"):
        with reader.begin() as conn:
            conn.exec_driver_sql("delete from prescriptions")
    with reader.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from prescriptions").scalar() == 4   # R1-R4
    reader.dispose()


READ_QUERIES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "queries").glob("*.sql")
                      if not p.stem.startswith(("_", "functions", "build_", "checked_", "schema")))
TEXT_PARAMETERS = {"factor_set", "clinician_ids", "patient_ids"}   # every parameter that carries text


def test_every_text_parameter_of_every_query_is_a_bound_value(engine, tmp_path):
    """Injection strings in each text parameter of each query the dashboard and the commands run: the query
    runs, matches nothing through that parameter, and leaves every table as it was."""
    import datetime as dt

    import sqlalchemy as sa

    import queries
    from analysis import ingest, measures
    from tests.fixtures import write_dataset

    ingest.load_directory(engine, write_dataset(tmp_path / "d"), tmp_path / "r.csv")
    base = {**measures.sql_params(measures.BY_ID["high_dose_90"], dt.date(2025, 1, 1), dt.date(2025, 12, 31),
                                  dt.date(2024, 1, 1), dt.date(2025, 12, 31)),
            "all_clinicians": False, "clinician_ids": ("D1",), "patient_ids": ("P1",), "as_of": dt.date(2026, 1, 1),
            "threshold_mme": 90, "naloxone_mme": 50}
    with engine.connect() as conn:
        before = conn.exec_driver_sql("select count(*) from prescriptions").scalar()
        tried = 0
        for name in READ_QUERIES:
            used = set(sa.text(queries.load(name, conn.dialect.name))._bindparams) & TEXT_PARAMETERS
            for parameter in used:
                for value in INJECTIONS:
                    bad = (value,) if parameter.endswith("_ids") else value
                    frame = db.read_frame(conn, name, {**base, parameter: bad})
                    tried += 1
                    if parameter.endswith("_ids"):                 # the only id asked for matches nobody
                        assert frame.empty, (name, value)
        assert tried >= 15 * len(INJECTIONS)                       # factor_set alone is in 15 queries
        assert conn.exec_driver_sql("select count(*) from prescriptions").scalar() == before


def test_the_documented_postgresql_reader_role_reads_and_cannot_write(tmp_path):
    """scripts/postgresql_reader.sql, as the README tells an administrator to run it: the role reads
    everything the dashboard needs and cannot write, even on a connection not opened read-only."""
    import uuid

    import sqlalchemy as sa

    from analysis import ingest
    from tests.conftest import PG_URL, _pg_schema_engine
    from tests.fixtures import write_dataset

    admin, owner, schema = _pg_schema_engine()
    reader = f"rxdash_reader_{uuid.uuid4().hex[:8]}"
    script = (Path(__file__).resolve().parents[1] / "scripts" / "postgresql_reader.sql").read_text()
    statements = [s for s in script.replace(':"reader"', f'"{reader}"').replace(':"schema"', f'"{schema}"')
                  .split(";") if s.strip() and not all(x.strip().startswith("--") for x in s.strip().splitlines())]
    try:
        ingest.load_directory(owner, write_dataset(tmp_path / "d"), tmp_path / "r.csv")
        with admin.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
        url = sa.make_url(PG_URL).set(username=reader).render_as_string(hide_password=False)
        engine = db.make_engine(url, schema=schema)            # not asked to be read-only: the role is
        with engine.connect() as conn:
            assert db.read_frame(conn, "data_bounds").iloc[0]["data_start"] is not None
            assert len(db.read_frame(conn, "clinician_directory")) > 0
        for write in ("delete from prescriptions", "create table x (i int)", "drop table prescriptions"):
            with pytest.raises(sa.exc.DBAPIError, match="(?i)read-only"):
                with engine.begin() as conn:
                    conn.exec_driver_sql(write)
        engine.dispose()
    finally:
        owner.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"drop schema {schema} cascade")
            if _role_exists(conn, reader):
                conn.exec_driver_sql(f'drop owned by "{reader}"')
                conn.exec_driver_sql(f'drop role "{reader}"')
        admin.dispose()


def _role_exists(conn, role: str) -> bool:
    return bool(conn.exec_driver_sql("select 1 from pg_roles where rolname = %(r)s", {"r": role}).scalar())
