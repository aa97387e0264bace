"""Where the database URL comes from, and which databases are accepted."""
from __future__ import annotations

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
    with pytest.raises(ValueError, match="use one of: duckdb, postgresql"):
        db.dialect_of(url)


INJECTIONS = ["D1' or '1'='1", "D1; drop table prescriptions; --", "') or true --", "D1\" or \"1\"=\"1"]


def test_list_parameters_are_bound_values_never_sql(engine, tmp_path):
    # Every value, however it is written, is compared as a value: no row matches, no table is dropped.
    from analysis import ingest
    from tests.fixtures import write_dataset

    ingest.load_directory(engine, write_dataset(tmp_path / "d"), tmp_path / "r.csv")
    params = {"start": "2025-01-01", "end": "2025-12-31", "all_clinicians": False}
    with engine.connect() as conn:
        assert db.read_frame(conn, "monthly_opioid_fills", {**params, "clinician_ids": tuple(INJECTIONS)}).empty
        assert db.read_frame(conn, "monthly_opioid_fills", {**params, "clinician_ids": ()}).empty   # empty list
        got = db.read_frame(conn, "monthly_opioid_fills", {**params, "clinician_ids": ("D1",) + tuple(INJECTIONS)})
        # D1 wrote R1 (Jan) and R2 (Jan 31) for P1.
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
