"""Fixtures: a real DuckDB file and a real PostgreSQL schema for every database test."""
from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from analysis import db, spark_sql

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
# One pseudonym secret for the whole run (and the browser tests' server, which inherits it), so labels
# are stable and no key file is written in the home folder.
os.environ.setdefault("RXDASH_PSEUDONYM_SECRET", "rxdash-test-secret")
# Every export, sign-in and profile view a test makes is audited: into a temporary file for the run, never
# the real ~/.rxdash/audit.jsonl of whoever runs the tests (tests that read the log set their own path).
os.environ["RXDASH_AUDIT_LOG"] = str(Path(tempfile.mkdtemp(prefix="rxdash-test-audit-")) / "audit.jsonl")
PG_URL = os.environ.get("RXDASH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_schema_engine() -> tuple[sa.Engine, sa.Engine, str]:
    admin = sa.create_engine(PG_URL)
    schema = f"rxtest_{uuid.uuid4().hex[:10]}"
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"create schema {schema}")
    except sa.exc.OperationalError as e:  # CI must run these tests: fail loudly, never skip
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}: {e.orig}")
    return admin, db.make_engine(PG_URL, schema=schema), schema


@contextlib.contextmanager
def empty_database(kind: str, folder: Path, request) -> Iterator[sa.Engine]:
    """An empty database of one kind: a DuckDB file in folder, a fresh PostgreSQL schema, or a fresh
    database on the test session's Spark Connect server; dropped afterwards."""
    if kind == "duckdb":
        eng = db.make_engine(f"duckdb:///{folder / 'test.duckdb'}")
        yield eng
        eng.dispose()
        return
    if kind == "spark":
        server = request.getfixturevalue("spark_server")
        name = f"rxtest_{uuid.uuid4().hex[:10]}"
        eng = db.make_engine(server.url, schema=name)
        yield eng
        with eng.connect() as conn:
            conn.exec_driver_sql(f"{spark_sql.NATIVE} drop database if exists {name} cascade")
        eng.dispose()
        return
    admin, eng, schema = _pg_schema_engine()
    yield eng
    eng.dispose()
    with admin.begin() as conn:
        conn.exec_driver_sql(f"drop schema {schema} cascade")
    admin.dispose()


@pytest.fixture(params=["duckdb", "postgresql"])
def engine(request, tmp_path):
    """An empty database of each kind: a DuckDB file, and a fresh PostgreSQL schema dropped afterwards."""
    with empty_database(request.param, tmp_path, request) as eng:
        yield eng


@pytest.fixture(scope="module", params=["duckdb", "postgresql", "spark"])
def module_engine(request, tmp_path_factory):
    """An empty database of each kind, Apache Spark (through Spark Connect) included, shared by a module's
    tests that only read what one load put there: a Spark load takes about a minute."""
    with empty_database(request.param, tmp_path_factory.mktemp(request.param), request) as eng:
        yield eng


@pytest.fixture(scope="session")
def spark_server(tmp_path_factory):
    """One Spark Connect server for the test session (pyspark's own sbin/start-connect-server.sh, on
    127.0.0.1, logs and warehouse in a temporary folder): the tests talk to it as to a cluster."""
    from analysis import spark

    try:
        server = spark.ConnectServer(tmp_path_factory.mktemp("spark"))
    except Exception as e:   # CI must run these tests: fail loudly, never skip
        pytest.fail(f"the Spark Connect server did not start (Java 17 or 21 and pyspark are needed): {e}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sample_duckdb(tmp_path_factory) -> str:
    """A DuckDB file holding the committed sample, built once per test session; returns its URL."""
    from analysis import ingest

    path = tmp_path_factory.mktemp("sample") / "sample.duckdb"
    url = f"duckdb:///{path}"
    eng = db.make_engine(url)
    ingest.load_directory(eng, SAMPLE, path.parent / "rejects.csv", replace=True)
    eng.dispose()
    return url
