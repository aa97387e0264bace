"""Apache Spark hardened for a real deployment (issue #29): items 3 and 8.

- Item 3: the embedded session's warehouse folder reaches the JVM only as whole configuration values, so a
  folder with a space, quotes or ` -Dname=value` in its name works, keeps every table, the catalog and Derby's
  log inside it, and sets no Java option (analysis.spark._embedded_session).
- Item 8: a Spark Connect server that refuses the token, or a connection that cannot complete (a TLS client at
  a port that never answers), ends in one plain line and exit code 1, within a bounded time, with the token
  never shown (analysis.spark._connect_session).

Real Spark throughout: two short-lived embedded Spark processes, and one Spark Connect server for this module
started with a token requirement (Spark's spark.connect.authenticate.token, read from
$SPARK_CONNECT_AUTHENTICATE_TOKEN), besides the test session's server."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import quote

import pytest

from analysis import spark
from dashboard import cli
from tests.fixtures import write_dataset

TOKEN = "rxdash-test-token-4f9c2a7e"
WRONG = "not-the-token-81d3b6"


def _child_env(tmp_path, **extra: str) -> dict[str, str]:
    """The environment of a child rxdash process: no database, schema or Spark Connect setting of this process
    (pyspark marks a process that has used Spark Connect with SPARK_CONNECT_MODE_ENABLED, which would turn an
    embedded session into a Spark Connect one), and Java's temporary folder inside tmp_path, so that whatever
    Spark and Hive put there is seen (and nothing is written outside tmp_path)."""
    drop = {"RXDASH_DB_URL", "RXDASH_SCHEMA", spark.WAREHOUSE_ENV, "SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED",
            "SPARK_LOCAL_REMOTE", "SPARK_CONNECT_AUTHENTICATE_TOKEN", "JAVA_TOOL_OPTIONS"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    (tmp_path / "java-tmp").mkdir(exist_ok=True)
    env["JAVA_TOOL_OPTIONS"] = f"-Djava.io.tmpdir={tmp_path / 'java-tmp'}"   # tmp_path has no space
    return {**env, **extra}


READ_BACK = """
import json
from analysis import db
engine = db.make_engine("spark://local[1]")
with engine.connect() as conn:
    session = conn.connection.driver_connection.session
    system = session.sparkContext._jvm.java.lang.System
    locations = {}
    for table in session.catalog.listTables("default"):
        rows = session.sql(f"describe table extended default.{table.name}").collect()
        locations[table.name] = [r.data_type for r in rows if r.col_name == "Location"][0]
    print(json.dumps({"prescriptions": conn.exec_driver_sql("select count(*) from prescriptions").scalar_one(),
                      "x": system.getProperty("x"), "derby_home": system.getProperty("derby.system.home"),
                      "locations": locations}))
"""


def test_an_embedded_warehouse_with_a_space_quotes_and_option_text_keeps_everything_inside_it(tmp_path):
    """Before: the folder went into spark.driver.extraJavaOptions as -Dderby.system.home=FOLDER, which
    spark-submit splits at spaces and quotes: this folder's quote stopped the JVM (JAVA_GATEWAY_EXITED after
    spark-submit's usage text), and a folder with only a space set the Java property x=y and put derby.log in
    another folder (FOLDER cut at the space)."""
    warehouse = tmp_path / "rx warehouse 'single' \"double\" -Dx=y"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    data = write_dataset(tmp_path / "data")
    # One process loads (the folder given as ?warehouse=), another reads (the same folder as
    # $RXDASH_SPARK_WAREHOUSE): the second finds the first's tables through the catalog inside the folder.
    load = subprocess.run([sys.executable, "-m", "dashboard", "load", str(data), "--db",
                           f"spark://local[1]?warehouse={quote(str(warehouse), safe='/')}",
                           "--rejects", str(tmp_path / "rejects.csv")],
                          env=_child_env(tmp_path), cwd=cwd, capture_output=True, text=True, timeout=900)
    assert load.returncode == 0, load.stderr
    assert load.stdout.splitlines()[0].startswith("Loaded ")
    read = subprocess.run([sys.executable, "-c", READ_BACK], cwd=cwd, capture_output=True, text=True, timeout=900,
                          env=_child_env(tmp_path, RXDASH_SPARK_WAREHOUSE=str(warehouse)))
    assert read.returncode == 0, read.stderr
    seen = json.loads(read.stdout.strip().splitlines()[-1])
    assert seen["prescriptions"] == 4
    assert seen["x"] is None                       # the folder's name set no Java property
    assert seen["derby_home"] == str(warehouse)    # Derby's home is the whole folder name
    tables = set(seen["locations"])
    assert {"clinics", "clinicians", "patients", "prescriptions", "events", "load_runs"} <= tables
    assert seen["locations"] == {t: f"file:{warehouse / t}" for t in tables}
    # Every table, the catalog and Derby's log are inside the folder; nothing else beside it or in the working
    # directory (Spark's and Hive's scratch space is Java's temporary folder, here tmp_path/java-tmp).
    assert {p.name for p in warehouse.iterdir()} == tables | {"metastore_db", "derby.log"}
    assert list(cwd.iterdir()) == []
    assert {p.name for p in tmp_path.iterdir()} == {"data", "cwd", "java-tmp", "rejects.csv", warehouse.name}
    # What Java's temporary folder keeps after both processes ended: Hive's empty `<session id>_resources` folder
    # of each (hive.downloaded.resources.dir); Spark's own scratch folders are removed when its JVM ends.
    left = list((tmp_path / "java-tmp").rglob("*"))
    assert len(left) == 2 and all(p.name.endswith("_resources") and not any(p.iterdir()) for p in left)


@pytest.mark.parametrize("name, why", [
    ("a;create=false", "';', which separates the settings of Derby's connection URL"),
    ("${env.HOME}", "'${', which Spark and Hadoop read as a reference to another setting")])
def test_a_warehouse_name_spark_would_misread_is_refused_in_one_line(tmp_path, capsys, name, why):
    warehouse = tmp_path / name
    code = cli.main(["summarize", "--db", f"spark://local[1]?warehouse={quote(str(warehouse), safe='/')}",
                     "--start", "2025-01-01", "--end", "2025-12-31", "--out", str(tmp_path / "out")])
    assert code == cli.EXIT_REFUSED
    assert capsys.readouterr().err == (
        f"rxdash summarize: error: the Spark warehouse folder {warehouse} contains {why}; choose a folder "
        f"without it (?warehouse=DIR or ${spark.WAREHOUSE_ENV})\n")
    assert list(tmp_path.iterdir()) == []   # refused before anything was made (no JVM started)


# --- Spark Connect: a wrong token, and a connection that cannot complete -------------------------------------

@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    """A Spark Connect server that asks for TOKEN (one per module: a server takes tens of seconds to start)."""
    try:
        server = spark.ConnectServer(tmp_path_factory.mktemp("spark-token"), cores=1, memory="1g", token=TOKEN)
    except Exception as e:
        pytest.fail(f"the Spark Connect server did not start (Java 17 or 21 and pyspark are needed): {e}")
    yield server
    for key in [k for k in spark._sessions if f":{server.port}" in k]:   # sessions this module made
        spark._sessions.pop(key).stop()
    server.stop()


def test_a_wrong_or_missing_token_is_one_line_exit_1_naming_the_url_without_the_token(token_server, tmp_path,
                                                                                       capsys):
    """Before: exit 3, "SparkConnectGrpcException: <_InactiveRpcError of RPC that terminated with: (this is a
    fault in rxdash; ...)". The host is written localhost: a token is sent over plain TCP only there."""
    data = write_dataset(tmp_path / "data")
    port = token_server.port
    code = cli.main(["load", str(data), "--db", f"sc://localhost:{port}/;token={WRONG}",
                     "--rejects", str(tmp_path / "rejects.csv")])
    out = capsys.readouterr()
    assert code == cli.EXIT_REFUSED
    assert out.err == (f"rxdash load: error: database error, nothing was loaded: Spark Connect at "
                       f"sc://localhost:{port}/;token=*** refused the token: check ;token= in the URL\n")
    assert out.out == "" and WRONG not in out.err
    code = cli.main(["summarize", "--db", f"sc://localhost:{port}", "--start", "2025-01-01", "--end", "2025-12-31",
                     "--out", str(tmp_path / "out")])
    assert code == cli.EXIT_REFUSED
    assert capsys.readouterr().err == (f"rxdash summarize: error: Spark Connect at sc://localhost:{port} asks for a "
                                       "token: add ;token=... to the URL\n")
    # The right token is let in (the refusals above were the token's, not the server's state).
    from analysis import db

    engine = db.make_engine(f"sc://localhost:{port}/;token={TOKEN}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select 1 + 1").scalar_one() == 2
    engine.dispose()
    assert not (tmp_path / "rejects.csv").exists() and not (tmp_path / "out").exists()


@pytest.fixture
def silent_port():
    """A port on 127.0.0.1 that accepts connections and never says anything."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for s in [*held, listener]:
        s.close()


def test_a_token_to_a_port_that_never_answers_fails_within_the_connect_timeout(silent_port, tmp_path, capsys):
    """Before: no end in sight (pyspark retries an unreachable server for about 10 minutes, and a TLS
    handshake with a silent port has no deadline at all). A token makes the client use TLS on 127.0.0.1."""
    started = time.monotonic()
    code = cli.main(["summarize", "--db", f"sc://127.0.0.1:{silent_port}/;token={TOKEN}", "--start", "2025-01-01",
                     "--end", "2025-12-31", "--out", str(tmp_path / "out")])
    took = time.monotonic() - started
    out = capsys.readouterr()
    assert code == cli.EXIT_REFUSED
    assert spark.CONNECT_TIMEOUT_S <= took < spark.CONNECT_TIMEOUT_S + 10
    assert out.err == (f"rxdash summarize: error: Spark Connect at sc://127.0.0.1:{silent_port}/;token=*** did not "
                       "complete a connection within 20 s: a token makes the client use TLS; a server without TLS "
                       f"on this machine is reached as sc://localhost:{silent_port}/;token=...\n")
    assert TOKEN not in out.err + out.out and not (tmp_path / "out").exists()


def test_a_token_over_an_ip_address_to_a_plain_server_fails_within_connect_timeout(token_server, tmp_path, capsys):
    """The issue's case: the server's address as 127.0.0.1 with the right token. ;use_ssl=false does not turn
    TLS off (pyspark's DefaultChannelBuilder: TLS whenever a token is given, local credentials only for the
    name localhost), and TLS at a plain server never completes: one line within ?connect_timeout=3 seconds."""
    port = token_server.port
    started = time.monotonic()
    code = cli.main(["summarize", "--db", f"sc://127.0.0.1:{port}/;token={TOKEN};use_ssl=false?connect_timeout=3",
                     "--start", "2025-01-01", "--end", "2025-12-31", "--out", str(tmp_path / "out")])
    took = time.monotonic() - started
    out = capsys.readouterr()
    assert code == cli.EXIT_REFUSED and 3 <= took < 13
    assert out.err == (f"rxdash summarize: error: Spark Connect at sc://127.0.0.1:{port}/;token=***;use_ssl=false "
                       "did not complete a connection within 3 s: a token makes the client use TLS; a server "
                       f"without TLS on this machine is reached as sc://localhost:{port}/;token=...\n")
    assert TOKEN not in out.err + out.out


def test_nothing_listening_is_one_line_at_once(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]   # free once closed: nothing listens there
    started = time.monotonic()
    code = cli.main(["summarize", "--db", f"sc://127.0.0.1:{port}", "--start", "2025-01-01", "--end", "2025-12-31",
                     "--out", str(tmp_path / "out")])
    assert code == cli.EXIT_REFUSED and time.monotonic() - started < 10
    assert capsys.readouterr().err == (f"rxdash summarize: error: Spark Connect at sc://127.0.0.1:{port}: nothing "
                                       f"listens on port {port} (connection refused); is the server running?\n")


def test_demo_against_a_spark_connect_server_that_is_not_there_is_one_line_exit_1(capsys):
    # rxdash demo caught only refusals, so a database it could not reach was reported as a fault in rxdash (exit 3).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert cli.main(["demo", "--db", f"sc://127.0.0.1:{port}"]) == cli.EXIT_REFUSED
    assert capsys.readouterr().err == (f"rxdash demo: error: Spark Connect at sc://127.0.0.1:{port}: nothing "
                                       f"listens on port {port} (connection refused); is the server running?\n")
