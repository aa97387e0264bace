"""Apache Spark as rxdash's database, behind SQLAlchemy like DuckDB and PostgreSQL.

Two URLs (README "Apache Spark"):
- `spark://local[N]` (or `spark://local`, `spark://local[*]`): an embedded Spark session in this process,
  N worker threads, tables kept as Parquet under a warehouse folder (`?warehouse=DIR`, else
  $RXDASH_SPARK_WAREHOUSE, else ./rxdash-spark) with its catalog (an embedded Derby metastore) beside them.
- `sc://HOST:PORT`: a Spark Connect client (Spark 3.4+, Databricks Connect); tables live in the cluster's
  catalog, in the database `--schema` names (created if missing). Its own settings follow the port
  (`/;token=...;use_ssl=true`); `?connect_timeout=SECONDS` bounds the first contact (CONNECT_TIMEOUT_S).

No library joins SQLAlchemy to Spark Connect, so this module is the smallest PEP 249 driver over a
SparkSession (`cursor.execute` -> `SparkSession.sql(text, args=...)`, rows back through Arrow) and a
SQLAlchemy dialect that names it. The rest of rxdash then runs unchanged: `sa.text()` with `:name` bound
parameters (Spark SQL's own named parameter markers; SQLAlchemy expands lists into one marker per value),
`conn.execute`, `read_frame`. Values always travel as parameters, never as text.

Spark SQL has no transactions: `commit` and `rollback` do nothing, and a load keeps its all-or-nothing
promise by another route (analysis.ingest writes new tables and swaps them in). The SQL files are written
for DuckDB and PostgreSQL; `queries.load(name, "spark")` transpiles them with sqlglot, and the few
statements sqlglot cannot carry over have a `<name>.spark.sql` override beside them.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import re
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import default

# pyspark 4.3 warns at import that it does not fully support pandas 3: rxdash hands Spark only Arrow
# tables and takes back only Arrow tables (pandas is built from Arrow by pyarrow), never pyspark's pandas paths.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
# sqlglot logs a warning for statements it passes through as commands; they run as written.
logging.getLogger("sqlglot").setLevel(logging.ERROR)
# pyspark logs every failed statement as a JSON record with the JVM stack; the caller gets the first line.
logging.getLogger("SQLQueryContextLogger").disabled = True
# gRPC's core library (Spark Connect's transport) writes its own log lines to stderr, an INFO line per failed
# TLS handshake among them ("Handshake failed with error SSL_ERROR_SSL..."); errors only, unless the user chose.
# It reads the setting once, when grpc is imported (gRPC's doc/environment_variables.md, GRPC_VERBOSITY).
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

WAREHOUSE_ENV = "RXDASH_SPARK_WAREHOUSE"
DEFAULT_WAREHOUSE = "rxdash-spark"
# Spark 4 reads its session settings once; these make an embedded session quiet, local and deterministic.
_EMBEDDED_CONF = {
    "spark.ui.enabled": "false",             # no web UI port opened by a dashboard or a load
    "spark.ui.showConsoleProgress": "false",  # no progress bars on the command line
    "spark.sql.session.timeZone": "UTC",     # dates are calendar days; no local-time shifts
    "spark.log.level": "OFF",                # errors reach the user as one line (DatabaseError), not a JVM log
    # Small data sets are the common case in tests and trials; Spark's default of 200 shuffle partitions
    # costs seconds per query there. Adaptive execution coalesces partitions on large data anyway.
    "spark.sql.shuffle.partitions": "8",
}

# Settings of every session, embedded or Spark Connect (SQL settings a client may change).
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # Spark 4.3's RemoveRedundantAliases leaves build_tapers.sql's plan unresolved (an internal error,
    # PLAN_VALIDATION_FAILED_RULE_IN_BATCH); without the rule the plan is the same less a renaming step.
    "spark.sql.optimizer.excludedRules": "org.apache.spark.sql.catalyst.optimizer.RemoveRedundantAliases",
}

# ---------------------------------------------------------------------------------------------------
# PEP 249 (DB-API 2.0) driver over a SparkSession

apilevel = "2.0"
threadsafety = 1
paramstyle = "named"


class Error(Exception):
    """Base of this driver's errors (PEP 249)."""


class Warning(Exception):  # noqa: A001 - the name PEP 249 requires
    pass


class InterfaceError(Error):
    pass


class DatabaseError(Error):
    pass


class OperationalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class IntegrityError(DatabaseError):
    pass


class DataError(DatabaseError):
    pass


class NotSupportedError(DatabaseError):
    pass


class InternalError(DatabaseError):
    pass


# Spark's type names as PostgreSQL spells them (analysis.spark_sql reads the SQL files as PostgreSQL).
_PG_TYPES = {"string": "varchar", "int": "integer", "bigint": "bigint", "smallint": "smallint",
             "double": "double precision", "float": "real", "boolean": "boolean", "date": "date",
             "timestamp": "timestamp", "timestamp_ntz": "timestamp"}

NATIVE_SQL = "/* spark sql */"   # analysis.spark_sql.NATIVE: text that runs on Spark as written

_sessions: dict[str, Any] = {}
_sessions_lock = threading.Lock()


def warehouse_of(url: sa.URL) -> Path:
    """The warehouse folder of an embedded session: ?warehouse=, else $RXDASH_SPARK_WAREHOUSE, else
    ./rxdash-spark (the counterpart of ./rxdash.duckdb)."""
    given = url.query.get("warehouse") or os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE
    return Path(str(given)).expanduser().resolve()


def session_for(url: sa.URL):
    """The one SparkSession of this process for the URL (Spark allows one embedded session per process;
    a Spark Connect session is reused the same way: starting either takes seconds)."""
    key = url.render_as_string(hide_password=False).split("?")[0] if url.drivername == "sc" else "spark"
    with _sessions_lock:
        session = _sessions.get(key)
        if session is not None and not _stopped(session):
            return session
        try:
            session = _connect_session(url) if url.drivername == "sc" else _embedded_session(url)
        except Exception as e:  # pyspark raises many kinds (Java missing, server unreachable)
            raise OperationalError(_first_line(e)) from None
        _sessions[key] = session
        return session


def _stopped(session) -> bool:
    try:
        return bool(getattr(session, "is_stopped", False))
    except Exception:
        return True


def _embedded_session(url: sa.URL):
    """The embedded session, its catalog (an embedded Derby metastore) and Derby's log inside the warehouse
    folder, so that a second process (the dashboard after `rxdash load`) finds the same tables.

    The folder is anyone's who can set the URL (`?warehouse=`) or $RXDASH_SPARK_WAREHOUSE, so it reaches the
    JVM only as whole configuration values, never inside an options string: spark-submit splits
    `spark.driver.extraJavaOptions` at spaces and quotes (Spark's launcher, CommandBuilderUtils.parseOptionString),
    so a folder with a space broke the JVM's command line, a quote stopped it with spark-submit's usage text and
    ` -Dname=value` in the folder's name set any Java system property (issue #29, item 3).
    - The metastore: Hive's `javax.jdo.option.ConnectionURL` (Spark passes `spark.hadoop.*` settings to the
      Hadoop configuration its Hive client reads) names the Derby database by its absolute path, one value.
    - Derby's log (derby.log) goes to `derby.system.home`, else the working directory (Derby developer's guide,
      "derby.system.home"): that Java system property is set through the JVM gateway, one value, after the JVM
      starts and before the first catalog request boots Derby. Derby reads it once per JVM: a later session of
      the same process keeps writing the first one's log.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    host = url.host or "local"
    if not (host == "local" or (host.startswith("local[") and host.endswith("]"))):
        raise OperationalError(f"spark://{host}: an embedded session is spark://local or spark://local[N]; "
                               "for a cluster use its Spark Connect URL, sc://HOST:PORT")
    warehouse = warehouse_of(url)
    for text, why in _WAREHOUSE_REFUSED.items():
        if text in str(warehouse):
            raise OperationalError(f"the Spark warehouse folder {warehouse} contains '{text}', which {why}; "
                                   f"choose a folder without it (?warehouse=DIR or ${WAREHOUSE_ENV})")
    warehouse.mkdir(parents=True, exist_ok=True)
    conf = SparkConf().setMaster(host).setAppName("rxdash")
    # enableHiveSupport's setting is in the context's own configuration too: the context is made first.
    settings = {**_EMBEDDED_CONF, "spark.sql.catalogImplementation": "hive", **_catalog_conf(warehouse)}
    for key, value in settings.items():
        conf.set(key, value)
    context = SparkContext.getOrCreate(conf)
    context._jvm.java.lang.System.setProperty("derby.system.home", str(warehouse))
    session = SparkSession.builder.config(conf=conf).enableHiveSupport().getOrCreate()
    session.sparkContext.setLogLevel("OFF")
    return session


# Text a warehouse folder cannot hold. Tried with Spark 4.3 (a space, quotes, '#', '?', '%' and ` -Dx=y` work):
# with ':' the Hive metastore client does not start ("Unable to instantiate SessionHiveMetaStoreClient") and
# with '\' an INSERT fails. By the documents: Derby's connection URL has no escape for ';', which separates its
# attributes (Derby reference manual, "Syntax of database connection URLs"), so a ';' could add attributes; and
# Spark (its ConfigReader) and Hadoop (Configuration, "Variable expansion") replace `${...}` in a setting's value
# with other settings, environment variables or system properties.
_WAREHOUSE_REFUSED = {";": "separates the settings of Derby's connection URL",
                      ":": "the Hive metastore's Derby database cannot have in its path",
                      "\\": "Hadoop's file paths do not allow",
                      "${": "Spark and Hadoop read as a reference to another setting"}


def _catalog_conf(folder: Path, warehouse: Path | None = None) -> dict[str, str]:
    """Settings that keep a session's tables (Parquet, under `warehouse`, else `folder`) and its catalog (an
    embedded Derby metastore, `folder`/metastore_db) in one place; each a single value."""
    return {"spark.sql.warehouse.dir": str(warehouse or folder),
            "spark.hadoop.javax.jdo.option.ConnectionURL":
                f"jdbc:derby:;databaseName={folder / 'metastore_db'};create=true"}


# How long the first contact with a Spark Connect server may take (TCP, TLS, HTTP/2) before rxdash gives up
# with one line; `?connect_timeout=SECONDS` in the URL (the name libpq uses) changes it.
CONNECT_TIMEOUT_S = 20.0


def _connect_session(url: sa.URL):
    """A new Spark Connect session, after a first contact that ends, within the connect timeout, either in a
    working session or in one line saying what is wrong (issue #29, item 8):
    - pyspark's client retries an unreachable server for about 10 minutes (its DefaultPolicy: 15 retries,
      backoff to 60 s) and gives a call up to an hour, so a wrong address, a TLS client at a plain server or a
      port that accepts and never answers looked like a hang. Here the port is tried first (refused, unknown
      host: at once; not when a proxy is set), then the gRPC channel must become READY
      (`grpc.channel_ready_future`: TCP, the TLS handshake and the server's HTTP/2 settings) within the timeout.
    - The client turns TLS on whenever a token is given (pyspark's DefaultChannelBuilder.toChannel: `secure` is
      use_ssl or a token), except for the host name `localhost`, which gets gRPC's local credentials (plain TCP,
      refused by gRPC for any address but this machine's); `;use_ssl=false` does not change that. The timeout's
      line says so when it applies.
    - A server that refuses the token (Spark's PreSharedKeyAuthenticationInterceptor, UNAUTHENTICATED) is the
      user's configuration, not a fault: one line naming the URL as `analysis.redact.shown_url` shows it (the
      token written ***).
    A new session every time (`create`, not `getOrCreate`, which hands back any session the process already
    has, whatever its URL): session_for keeps one per URL."""
    import socket

    from analysis import redact

    if not url.host or not url.port:
        raise OperationalError("a Spark Connect URL names a host and a port: sc://HOST:PORT")
    remote = f"sc://{url.host}:{url.port}"
    if url.database:   # Spark Connect's own ";token=...;use_ssl=true" parameters ride in the path
        remote += f"/{url.database}"
    shown = f"Spark Connect at {redact.shown_url(remote)}"
    try:
        timeout = float(url.query.get("connect_timeout") or CONNECT_TIMEOUT_S)
    except (TypeError, ValueError):   # not a number, or given twice
        timeout = 0
    if not 0 < timeout < float("inf"):
        raise OperationalError(f"connect_timeout={url.query.get('connect_timeout')}: a number of seconds above 0")
    deadline = time.monotonic() + timeout
    try:
        if not _proxied():   # through a proxy only gRPC knows the way
            socket.create_connection((url.host, url.port), timeout=timeout).close()
    except socket.gaierror:
        raise OperationalError(f"{shown}: the host name {url.host} is not known") from None
    except ConnectionRefusedError:
        raise OperationalError(f"{shown}: nothing listens on port {url.port} (connection refused); "
                               "is the server running?") from None
    except OSError as e:   # a timeout, no route to the host
        why = "no answer" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__)
        raise OperationalError(f"{shown}: {why} within {timeout:g} s; check the host and port") from None

    import grpc
    from pyspark.sql import SparkSession
    from pyspark.sql.connect.client import DefaultChannelBuilder

    builder = DefaultChannelBuilder(remote)
    channel = builder.toChannel()
    try:
        grpc.channel_ready_future(channel).result(timeout=max(0.1, deadline - time.monotonic()))
    except grpc.FutureTimeoutError:
        if builder.secure and not builder.use_ssl and builder.host != "localhost":
            hint = ("a token makes the client use TLS; a server without TLS on this machine is reached as "
                    f"sc://localhost:{url.port}/;token=...")
        elif builder.secure:
            hint = "the client uses TLS (;use_ssl=true or a token): does the server?"
        else:
            hint = "is it a Spark Connect server, without TLS?"
        raise OperationalError(f"{shown} did not complete a connection within {timeout:g} s: {hint}") from None
    finally:
        channel.close()
    session = SparkSession.builder.remote(remote).create()
    try:
        session.conf.get("spark.sql.session.timeZone")   # the first request: the token is checked here
    except Exception as e:
        code = getattr(e, "getGrpcStatusCode", lambda: None)()
        with contextlib.suppress(Exception):
            session.stop()
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            if builder.token is None:
                raise OperationalError(f"{shown} asks for a token: add ;token=... to the URL") from None
            raise OperationalError(f"{shown} refused the token: check ;token= in the URL") from None
        raise OperationalError(f"{shown}: {_grpc_line(e)}") from None
    return session


def _proxied() -> bool:
    """Whether gRPC may reach the server through a proxy ($grpc_proxy, $https_proxy, $http_proxy: gRPC's
    doc/core/default_http_proxy_mapper.md), where a direct TCP connection from here says nothing."""
    return any(os.environ.get(name) for name in ("grpc_proxy", "https_proxy", "http_proxy", "GRPC_PROXY",
                                                 "HTTPS_PROXY", "HTTP_PROXY"))


def _grpc_line(error: BaseException) -> str:
    """A gRPC failure as one line: the status's details (pyspark's message is the RPC error's whole repr)."""
    text = str(getattr(error, "getMessage", lambda: None)() or error)
    match = re.search(r'details = "([^"]*)"', text)
    return match.group(1) if match else _first_line(error)


def _first_line(error: BaseException) -> str:
    """A pyspark error as one readable line: its message without the JVM stack or the SQL echo."""
    text = str(getattr(error, "getMessage", lambda: None)() or error).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


class Cursor:
    """A PEP 249 cursor: each statement runs through SparkSession.sql; a query's rows arrive as one Arrow
    table (`arrow`), from which fetch* hand out tuples and analysis.db.read_frame builds its frame."""

    arraysize = 1000

    def __init__(self, connection: Connection):
        self.connection = connection
        self.description: list[tuple] | None = None
        self.rowcount = -1
        self.arrow = None
        self._rows: list[tuple] = []
        self._next = 0

    def execute(self, operation: str, parameters: dict[str, Any] | None = None) -> Cursor:
        from analysis import spark_sql

        self.description, self.arrow, self._rows, self._next = None, None, [], 0
        try:
            translation = spark_sql.to_spark(operation, self.connection.columns_of).marked(uuid.uuid4().hex[:10])
        except Exception as e:   # sqlglot's ParseError: text that is not one statement
            raise ProgrammingError(_first_line(e)) from None
        started = time.perf_counter()
        session = self.connection.session
        statement = translation.main

        def run(text: str):
            # Spark refuses arguments a statement does not use: each gets the ones it names.
            args = {k: v for k, v in (parameters or {}).items() if re.search(rf":{k}\b", text)} or None
            return session.sql(text, args=args)

        try:
            for statement in translation.before:
                run(statement)
            statement = translation.main
            frame = run(statement)
            if frame.columns:   # a query; commands (DDL, INSERT) have run already and return no columns
                self.arrow = frame.toArrow()
        except Exception as e:
            if os.environ.get("RXDASH_SPARK_DEBUG"):
                print(f"--- Spark statement failed:\n{statement}\n--- from:\n{operation}", file=sys.stderr)
            raise DatabaseError(_first_line(e)) from None
        finally:
            for cleanup in translation.after:
                try:
                    session.sql(cleanup)
                except Exception:
                    pass   # the statement's own outcome is what the caller needs; a scratch table may stay
        if os.environ.get("RXDASH_SPARK_DEBUG"):
            print(f"spark {time.perf_counter() - started:7.2f} s  {' '.join(operation.split())[:150]}",
                  file=sys.stderr)
        if self.arrow is not None:
            self.description = [(f.name, str(f.type), None, None, None, None, True) for f in self.arrow.schema]
            self.rowcount = self.arrow.num_rows
        return self

    def executemany(self, operation: str, seq_of_parameters) -> None:
        for parameters in seq_of_parameters:
            self.execute(operation, parameters)

    def _materialise(self) -> None:
        if self.arrow is not None and not self._rows and self.arrow.num_rows:
            columns = [c.to_pylist() for c in self.arrow.columns]
            self._rows = list(zip(*columns))

    def fetchone(self):
        self._materialise()
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchmany(self, size: int | None = None):
        self._materialise()
        size = size or self.arraysize
        out = self._rows[self._next:self._next + size]
        self._next += len(out)
        return out

    def fetchall(self):
        self._materialise()
        out = self._rows[self._next:]
        self._next = len(self._rows)
        return out

    def close(self) -> None:
        self.arrow, self._rows = None, []

    def setinputsizes(self, sizes) -> None:
        pass

    def setoutputsize(self, size, column=None) -> None:
        pass


class Connection:
    """A PEP 249 connection: a SparkSession in the database the URL's schema names. Spark SQL has no
    transactions, so commit and rollback do nothing (the caller keeps all-or-nothing by swapping tables)."""

    def __init__(self, url: sa.URL, schema: str | None = None):
        self.session = session_for(url)
        self.schema = schema
        try:
            for key, value in SESSION_CONF.items():
                self.session.conf.set(key, value)
        except Exception as e:   # the server went away since the session was made: one line, not pyspark's repr
            raise OperationalError(_grpc_line(e)) from None
        if schema:
            # The schema name is the operator's (--schema), quoted as an identifier, never a value.
            quoted = "`" + schema.replace("`", "``") + "`"
            cursor = self.cursor()
            cursor.execute(f"{NATIVE_SQL} create database if not exists {quoted}")
            cursor.execute(f"{NATIVE_SQL} use {quoted}")

    def cursor(self) -> Cursor:
        return Cursor(self)

    def columns_of(self, table: str) -> dict[str, str] | None:
        """{column: type} (PostgreSQL type names, as analysis.spark_sql reads) of a table in the current
        database, or None when there is none: the loader's scratch tables, which queries/schema.sql does
        not declare."""
        try:
            if not self.session.catalog.tableExists(table):
                return None
            fields = self.session.table(table).schema.fields
        except Exception:
            return None
        return {f.name: _PG_TYPES.get(f.dataType.simpleString(), "varchar") for f in fields}

    def insert_arrow(self, table: str, columns: tuple[str, ...], batches, schema, chunk_rows: int) -> None:
        """INSERT INTO table (columns) the rows of Arrow record batches, sent in chunks of about chunk_rows
        rows as Arrow data frames (through Spark Connect's Arrow transport on a cluster). table and columns
        are the caller's constants, never input."""
        import pyarrow as pa

        column_list = ", ".join(columns)
        pending, rows = [], 0

        def send() -> None:
            frame = self.session.createDataFrame(pa.Table.from_batches(pending, schema=schema))
            frame.createOrReplaceTempView("rx_bulk_source")
            try:
                self.session.sql(f"insert into {table} ({column_list}) select {column_list} from rx_bulk_source")
            finally:
                self.session.catalog.dropTempView("rx_bulk_source")

        try:
            for batch in batches:
                pending.append(batch)
                rows += batch.num_rows
                if rows >= chunk_rows:
                    send()
                    pending, rows = [], 0
            if rows:
                send()
        except Error:
            raise
        except Exception as e:
            raise DatabaseError(_first_line(e)) from None

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass   # the session is the process's and outlives its connections


def connect(url: str, schema: str | None = None) -> Connection:
    """PEP 249 connect: a connection to the embedded session or the Spark Connect server of the URL."""
    return Connection(sa.make_url(url), schema)


# ---------------------------------------------------------------------------------------------------
# SQLAlchemy dialect


class SparkDialect(default.DefaultDialect):
    """SQLAlchemy dialect `spark` (embedded, spark://) and `sc` (Spark Connect, sc://): text statements
    with named parameters, run by this module's driver."""

    name = "spark"
    driver = "pyspark"
    paramstyle = "named"
    default_paramstyle = "named"
    supports_statement_cache = True
    supports_native_boolean = True
    supports_native_decimal = True
    supports_sane_rowcount = False
    supports_sane_multi_rowcount = False
    supports_multivalues_insert = True
    postfetch_lastrowid = False
    requires_name_normalize = False

    @classmethod
    def import_dbapi(cls):
        import analysis.spark as module

        return module

    def create_connect_args(self, url: sa.URL):
        return [], {"url": url.render_as_string(hide_password=False)}

    def connect(self, *cargs, **cparams):
        return connect(*cargs, **cparams)

    def initialize(self, connection) -> None:
        # DefaultDialect.initialize asks the server for isolation levels and unicode support; Spark has
        # neither question to answer.
        self.default_isolation_level = None

    def get_isolation_level(self, dbapi_connection) -> None:
        return None

    def get_default_isolation_level(self, dbapi_conn) -> None:
        return None

    def _get_default_schema_name(self, connection) -> str:
        return connection.connection.dbapi_connection.session.catalog.currentDatabase()

    def do_rollback(self, dbapi_connection) -> None:
        pass

    def do_commit(self, dbapi_connection) -> None:
        pass

    def do_ping(self, dbapi_connection) -> bool:
        return True

    def has_table(self, connection, table_name: str, schema: str | None = None, **kw) -> bool:
        session = connection.connection.dbapi_connection.session
        return bool(session.catalog.tableExists(table_name, schema) if schema
                    else session.catalog.tableExists(table_name))

    def get_table_names(self, connection, schema: str | None = None, **kw) -> list[str]:
        session = connection.connection.dbapi_connection.session
        return [t.name for t in session.catalog.listTables(schema) if not t.isTemporary]


def register() -> None:
    """Make `spark://` and `sc://` URLs known to SQLAlchemy (idempotent)."""
    sa.dialects.registry.register("spark", "analysis.spark", "SparkDialect")
    sa.dialects.registry.register("sc", "analysis.spark", "SparkDialect")


def make_engine(url: str, schema: str | None = None) -> sa.Engine:
    """An engine on the embedded session (spark://local[N]) or a Spark Connect server (sc://HOST:PORT), in
    the database `schema` (else the URL's ?database=NAME, else Spark's current one), created if missing.
    One pooled connection: every connection shares the process's session anyway."""
    register()
    parsed = sa.make_url(url)
    schema = schema or parsed.query.get("database")
    return sa.create_engine(parsed.difference_update_query(["database"]), poolclass=sa.pool.StaticPool,
                            connect_args={"schema": str(schema) if schema else None})


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@contextlib.contextmanager
def staged_load(conn: sa.Connection, fresh: set[str], only: set[str] | None = None) -> Iterator[None]:
    """All or nothing for a load into Spark, which has no transactions: the load runs in a new database
    beside the target (`<target>__rxload_<token>`) holding copies of the target's tables, except those in
    `fresh` (tables the load rebuilds from nothing: made empty there). Only when the load has succeeded are
    its tables written over the target's (INSERT OVERWRITE, each table replaced at once, the target's other
    tables untouched); the staging database is then dropped, and dropped without a trace on any failure.
    Readers see the old tables until the swap, which copies validated rows only. `only`: the tables the work
    changes, when it is known to change no other (`rxdash reference` changes ref_ndc): only they are copied and
    swapped, so a reference load does not copy the prescriptions."""
    dbapi = conn.connection.driver_connection
    session = dbapi.session
    target = session.catalog.currentDatabase()
    staging = f"{target}__rxload_{uuid.uuid4().hex[:10]}"
    run = dbapi.cursor().execute
    existing = [t.name for t in session.catalog.listTables(target) if not t.isTemporary]
    run(f"{NATIVE_SQL} create database {_quoted(staging)}")
    try:
        for table in existing:
            if (table not in fresh and (only is None or table in only)
                    and not table.startswith(("stg_", "chk_", "rx_cte_", "rx_update_"))):
                run(f"{NATIVE_SQL} create table {_quoted(staging)}.{_quoted(table)} as "
                    f"select * from {_quoted(target)}.{_quoted(table)}")
        run(f"{NATIVE_SQL} use {_quoted(staging)}")
        yield
        run(f"{NATIVE_SQL} use {_quoted(target)}")
        for table in [t.name for t in session.catalog.listTables(staging)
                      if not t.isTemporary and (only is None or t.name in only)]:
            columns = ", ".join(_quoted(c) for c in session.table(f"{_quoted(staging)}.{_quoted(table)}").columns)
            if table in existing:
                run(f"{NATIVE_SQL} insert overwrite table {_quoted(target)}.{_quoted(table)} ({columns}) "
                    f"select {columns} from {_quoted(staging)}.{_quoted(table)}")
            else:
                run(f"{NATIVE_SQL} create table {_quoted(target)}.{_quoted(table)} as "
                    f"select {columns} from {_quoted(staging)}.{_quoted(table)}")
    finally:
        run(f"{NATIVE_SQL} use {_quoted(target)}")
        run(f"{NATIVE_SQL} drop database if exists {_quoted(staging)} cascade")


def spark_home() -> Path:
    """The Spark distribution inside the pyspark package (its sbin/ scripts and jars)."""
    import pyspark

    return Path(pyspark.__file__).parent


class ConnectServer:
    """A Spark Connect server on 127.0.0.1 started from pyspark's own distribution
    (sbin/start-connect-server.sh), with its logs, process id and warehouse inside `folder`; for the
    tests and benchmarks, which talk to it as to a cluster. `url` is its sc:// URL; stop() ends it.
    `token`: clients must present it (`;token=`); the server reads it from $SPARK_CONNECT_AUTHENTICATE_TOKEN
    (Spark's Connect.getAuthenticateToken: spark.connect.authenticate.token, else that variable), which keeps
    it off the process list. Every setting is one --conf value (no Java options string: the folder's name is
    never split); Derby, if the catalog uses it, writes its log in the working directory, `folder`."""

    def __init__(self, folder: Path, port: int | None = None, cores: int = 2, memory: str = "4g",
                 timeout_s: float = 120, token: str | None = None):
        import socket
        import subprocess

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.port = port
        self.url = f"sc://127.0.0.1:{port}"
        self.env = {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOG_DIR": str(self.folder / "logs"),
                    "SPARK_PID_DIR": str(self.folder / "pids"), "SPARK_IDENT_STRING": f"rxdash{port}"}
        if token is not None:
            self.env["SPARK_CONNECT_AUTHENTICATE_TOKEN"] = token
        conf = {"spark.connect.grpc.binding.address": "127.0.0.1", "spark.connect.grpc.binding.port": str(port),
                **_catalog_conf(self.folder, self.folder / "warehouse"), **_EMBEDDED_CONF}
        command = ["bash", str(spark_home() / "sbin" / "start-connect-server.sh"), "--master", f"local[{cores}]",
                   "--driver-memory", memory]
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        subprocess.run(command, env=self.env, check=True, capture_output=True, cwd=self.folder)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.5)
        self.stop()
        raise OperationalError(f"the Spark Connect server did not listen on port {port} within {timeout_s:.0f} s "
                               f"(see {self.folder / 'logs'})")

    def stop(self) -> None:
        import subprocess

        with _sessions_lock:
            session = _sessions.pop(self.url, None)
        if session is not None:
            try:
                session.stop()   # closes the client's channel before the server goes
            except Exception:
                pass
        subprocess.run(["bash", str(spark_home() / "sbin" / "stop-connect-server.sh")], env=self.env,
                       capture_output=True, cwd=self.folder)
