"""No secret leaves the process (issue #29, item 2): a database URL's password and tokens, and secrets in the
environment, never appear on the command line, in a written file or on a page."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from analysis import redact
from tests.conftest import PG_URL, SAMPLE

TOKEN = "tok3n-5ecret-Q7"   # one recognisable secret, looked for everywhere afterwards


@pytest.mark.parametrize("url, shown", [
    # Spark Connect's parameters ride in the path: the token hidden, use_ssl kept.
    (f"sc://spark.example.org:15002/;token={TOKEN};use_ssl=true", "sc://spark.example.org:15002/;token=***;use_ssl=true"),
    (f"sc://10.1.2.3:15002/;use_ssl=false;token={TOKEN}", "sc://10.1.2.3:15002/;use_ssl=false;token=***"),
    (f"sc://10.1.2.3:15002/%3Btoken%3D{TOKEN}", "sc://10.1.2.3:15002/;token=***"),          # as SQLAlchemy writes it
    (f"spark://local[2]?warehouse=/data/wh&token={TOKEN}", "spark://local[2]?token=***&warehouse=%2Fdata%2Fwh"),
    # PostgreSQL: the password, and every parameter not known to be harmless (password=, sslpassword=, a proxy's key).
    (f"postgresql://rx:{TOKEN}@db.example.org:5432/rx", "postgresql://rx:***@db.example.org:5432/rx"),
    (f"postgresql://rx@db/rx?sslmode=require&sslpassword={TOKEN}", "postgresql://rx@db/rx?sslmode=require&sslpassword=***"),
    (f"postgresql://rx@db/rx?password={TOKEN}&application_name=rxdash",
     "postgresql://rx@db/rx?application_name=rxdash&password=***"),
    (f"postgresql://rx@db/rx?api_key={TOKEN}", "postgresql://rx@db/rx?api_key=***"),
    ("duckdb:///data/rxdash.duckdb", "duckdb:///data/rxdash.duckdb"),                           # nothing to hide
])
def test_a_url_is_shown_without_its_secrets(url, shown):
    assert redact.shown_url(url) == shown
    assert TOKEN not in redact.shown_url(url)


def test_scrub_blanks_every_secret_the_process_knows_however_it_is_written():
    url = f"sc://spark.example.org:15002/;token={TOKEN}"
    env = {"PGPASSWORD": "pg-pa55word", "SPARK_CONNECT_AUTHENTICATE_TOKEN": "spark-tok-9", "HOME": "/root",
           "RXDASH_DB_URL": "postgresql://u:url-pa55@h/d", "PORT": "8501"}
    text = (f"connect failed for {url} (token {TOKEN}, encoded {TOKEN.replace('-', '%2D')}); pg-pa55word; "
            "spark-tok-9; url-pa55; home /root; port 8501")
    scrubbed = redact.scrub(text, [url], env)
    for secret in (TOKEN, "pg-pa55word", "spark-tok-9", "url-pa55"):
        assert secret not in scrubbed
    assert "home /root; port 8501" in scrubbed      # ordinary values stay


def _run(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "RXDASH_DB_URL"}
    return subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=cwd, env={**environ, **env},
                          capture_output=True, text=True, timeout=600)


def _pg_url_with_secret(schema: str) -> str:
    # libpq reads sslpassword only for an encrypted client key, so this URL connects to the trust-auth test server;
    # it stands for any secret a real URL carries in a parameter.
    return (sa.make_url(PG_URL).render_as_string(hide_password=False)
            + f"?sslpassword={TOKEN}&options=-csearch_path%3D{schema}")


def test_commands_print_and_write_no_secret_from_the_url(tmp_path):
    """Load, summarize and a failing command on PostgreSQL with a secret in the URL: neither the terminal nor the
    summary's README.txt carries it (before: the last line and README.txt printed `sslpassword=...`)."""
    schema = f"rxsecret_{os.urandom(4).hex()}"
    admin = sa.create_engine(PG_URL)
    url = _pg_url_with_secret(schema)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"create schema {schema}")
        load = _run("load", str(SAMPLE), "--rejects", str(tmp_path / "r.csv"), env={"RXDASH_DB_URL": url},
                    cwd=tmp_path)
        assert load.returncode == 0, load.stderr
        assert "sslpassword=***" in load.stdout
        out = tmp_path / "summary"
        summary = _run("summarize", "--db", url, "--out", str(out), "--start", "2024-01-01", "--end", "2024-12-31",
                       env={}, cwd=tmp_path)
        assert summary.returncode == 0, summary.stderr
        readme = (out / "README.txt").read_text(encoding="utf-8")
        assert "sslpassword=***" in readme
        # A driver error that echoes the connection string (an unknown host) is one line, with the secret blanked.
        bad = url.replace("127.0.0.1", "no-such-host.invalid")
        failed = _run("summarize", "--db", bad, "--out", str(tmp_path / "s2"), "--start", "2024-01-01", "--end",
                      "2024-12-31", env={"PGPASSWORD": "pg-" + TOKEN},
                      cwd=tmp_path)
        assert failed.returncode != 0 and len(failed.stderr.strip().splitlines()) == 1, failed.stderr
        for result in (load, summary, failed):
            assert TOKEN not in result.stdout + result.stderr
        assert TOKEN not in readme and not any(TOKEN in p.read_text(errors="replace") for p in out.iterdir())
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"drop schema if exists {schema} cascade")
        admin.dispose()


def test_a_page_names_an_unreachable_database_without_its_secrets(monkeypatch):
    """The dashboard's "could not be reached" message shows the URL and the driver's error: the password and the
    token in it are blanked (before: only the password was)."""
    from tests.test_app import run

    monkeypatch.setenv("RXDASH_DB_URL", f"postgresql://nobody:{TOKEN}@127.0.0.1:1/none?sslpassword={TOKEN}x")
    at = run("overview")
    shown = at.info[0].value
    assert "could not be reached" in shown and "sslpassword\\=\\*\\*\\*" in shown
    assert TOKEN not in shown.replace("\\", "")
