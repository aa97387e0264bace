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
