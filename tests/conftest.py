"""Fixtures: a real DuckDB file and a real PostgreSQL schema for every database test."""
from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from analysis import db

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


@pytest.fixture(params=["duckdb", "postgresql"])
def engine(request, tmp_path):
    """An empty database of each kind: a DuckDB file, and a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "duckdb":
        eng = db.make_engine(f"duckdb:///{tmp_path / 'test.duckdb'}")
        yield eng
        eng.dispose()
        return
    admin, eng, schema = _pg_schema_engine()
    yield eng
    eng.dispose()
    with admin.begin() as conn:
        conn.exec_driver_sql(f"drop schema {schema} cascade")
    admin.dispose()


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
