"""Database access: where the URL comes from, engines for DuckDB and PostgreSQL, and the schema."""
from __future__ import annotations

import contextlib
import os
import re
import tomllib
import warnings
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa

import queries

ENV_VAR = "RXDASH_DB_URL"
DEFAULT_URL = "duckdb:///rxdash.duckdb"
SUPPORTED = ("duckdb", "postgresql", "spark")
# URL schemes of each engine: Spark is embedded (spark://local[N]) or a Spark Connect server (sc://HOST:PORT).
SCHEMES = {"duckdb": "duckdb", "postgresql": "postgresql", "spark": "spark", "sc": "spark"}
SCHEMA_ENV = "RXDASH_SCHEMA"
# A schema (PostgreSQL) or database (Spark) name as the operator gives it with --schema: lower case, as both
# engines fold unquoted names, and never more than PostgreSQL's 63 bytes. Anything else is refused, not quoted:
# the name goes into a connection option (search_path) where quoting rules differ from SQL's.
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
DUCKDB_MEMORY_ENV = "RXDASH_DUCKDB_MEMORY_LIMIT"
DUCKDB_MEMORY_DEFAULT = "3GB"


def secrets_url(search: tuple[Path, ...] | None = None) -> str | None:
    """`[connections.rxdash] url` from Streamlit's secrets.toml (project folder first, then home)."""
    search = search or (Path.cwd() / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml")
    for path in search:
        if path.is_file():
            with path.open("rb") as f:
                url = tomllib.load(f).get("connections", {}).get("rxdash", {}).get("url")
            if url:
                return str(url)
    return None


def resolve_url(flag: str | None = None) -> str:
    """The database URL: --db flag, else $RXDASH_DB_URL, else Streamlit secrets, else the DuckDB file."""
    return flag or os.environ.get(ENV_VAR) or secrets_url() or DEFAULT_URL


def resolve_schema(flag: str | None = None) -> str | None:
    """The schema (PostgreSQL) or database (Spark) holding rxdash's tables: --schema, else $RXDASH_SCHEMA,
    else None (the URL's own: PostgreSQL's search path, Spark's ?database= or its current database)."""
    return flag or os.environ.get(SCHEMA_ENV) or None


def check_schema(name: str, dialect: str) -> str:
    """`name` when it may name rxdash's schema on `dialect`; ValueError with one plain line otherwise."""
    if dialect == "duckdb":
        raise ValueError("--schema names a PostgreSQL schema or a Spark database; a DuckDB file holds one data "
                         "set (choose another file with --db)")
    if not SCHEMA_NAME.fullmatch(name):
        raise ValueError(f"--schema {name[:80]!r}: a schema name is lower-case letters, digits and _, starting with a "
                         "letter or _, at most 63 characters")
    return name


def dialect_of(url_or_engine: str | sa.Engine) -> str:
    """'duckdb', 'postgresql' or 'spark'; any other backend is refused with the list of supported ones."""
    url = url_or_engine.url if isinstance(url_or_engine, sa.Engine) else sa.make_url(url_or_engine)
    name = SCHEMES.get(url.get_backend_name())
    if name is None:
        raise ValueError(f"database '{url.get_backend_name()}' is not supported; use one of: "
                         "duckdb:///FILE, postgresql://..., spark://local[N], sc://HOST:PORT")
    return name


def check_load_target(url: str) -> str:
    """`url` when a load into it outlives the command; ValueError with one plain line for an in-memory DuckDB
    (`duckdb://`, `duckdb:///:memory:`, `duckdb:///:memory:NAME`), which `rxdash load` would fill and then
    throw away when the process ends, reporting rows "loaded" that nobody can read."""
    parsed = sa.make_url(url)
    if dialect_of(url) == "duckdb" and (not parsed.database or parsed.database.startswith(":memory:")):
        raise ValueError("the database URL names DuckDB's memory, which is emptied when the command ends; name a "
                         "file, e.g. duckdb:///data/rxdash.duckdb")
    return url


def make_engine(url: str, read_only: bool = False, schema: str | None = None) -> sa.Engine:
    """An engine for the URL; read_only opens DuckDB read-only or makes PostgreSQL sessions read-only (Spark
    has no read-only sessions: the dashboard only reads). schema: PostgreSQL's search path, Spark's database
    (check_schema's rules; ValueError otherwise); a writing engine creates it when missing, a read-only one
    does not (a reader finds no tables there, which the pages and commands say in plain words)."""
    parsed = sa.make_url(url)
    name = dialect_of(url)
    if schema is not None:
        check_schema(schema, name)
    if name == "spark":
        from analysis import spark

        return spark.make_engine(url, schema=schema)
    connect_args: dict = {}
    if name == "duckdb":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if read_only:
            connect_args["read_only"] = True
        # DuckDB spills to disk beyond its memory limit; the default (80% of RAM) would let one
        # dashboard or load take the whole machine.
        connect_args["config"] = {"memory_limit": os.environ.get(DUCKDB_MEMORY_ENV, DUCKDB_MEMORY_DEFAULT)}
        return sa.create_engine(parsed, connect_args=connect_args)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    # Analytic queries join CTE results that have no statistics; PostgreSQL then picks nested loops that
    # grow with the square of the rows (minutes on the sample's tapers), and JIT-compiles the big plans.
    # Hash and merge joins without JIT run the same queries in well under a second.
    options = ["-c enable_nestloop=off", "-c jit=off"]
    if read_only:
        options.append("-c default_transaction_read_only=on")
    if schema:
        options.append(f"-c search_path={schema}")
    if "options" in parsed.query:  # keep options given in the URL (e.g. -csearch_path=...)
        options.append(str(parsed.query["options"]))
        parsed = parsed.difference_update_query(["options"])
    connect_args["options"] = " ".join(options)
    engine = sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
    if schema and not read_only:
        @sa.event.listens_for(engine, "first_connect")
        def create_schema(dbapi_connection, _record) -> None:
            # The name passed check_schema; quote_identifier is PostgreSQL's own quoting all the same.
            with dbapi_connection.cursor() as cur:
                cur.execute("select 1 from pg_namespace where nspname = %s", (schema,))
                if cur.fetchone() is None:
                    quoted = engine.dialect.identifier_preparer.quote_identifier(schema)
                    cur.execute(f"create schema if not exists {quoted}")
                    dbapi_connection.commit()
    return engine


_ADD_COLUMN = re.compile(r"alter table (?P<table>\w+) add column if not exists (?P<column>\w+) (?P<type>[\w ]+)$",
                         re.IGNORECASE)


def init_schema(conn: sa.Connection) -> None:
    """Create the tables and the parsing functions if they are missing (idempotent)."""
    dialect = conn.dialect.name
    if dialect == "spark":
        from analysis.spark_sql import NATIVE

        # Spark has no `add column if not exists`: a column the schema adds later is added when missing.
        # The schema's other `alter table` steps change a DuckDB or PostgreSQL database made by an earlier
        # version; a Spark database is made by this one, and has the columns as created.
        for statement in queries.statements("schema"):
            added = _ADD_COLUMN.match(statement.strip())
            if not statement.lstrip().lower().startswith("alter table"):
                conn.exec_driver_sql(statement)
            elif not added:
                continue
            elif added["column"] not in conn.connection.driver_connection.columns_of(added["table"]):
                conn.exec_driver_sql(f"alter table {added['table']} add columns ({added['column']} {added['type']})")
        for statement in queries.statements("functions", dialect):
            conn.exec_driver_sql(f"{NATIVE}\n{statement}")
        return
    for statement in queries.statements("schema") + queries.statements("functions", dialect):
        conn.exec_driver_sql(statement)


def has_schema(conn: sa.Connection) -> bool:
    """True when the prescriptions table exists."""
    return sa.inspect(conn).has_table("prescriptions")


DERIVED_TABLES = ("daily_dose_segments", "stored_tapers", "stored_ltot_episodes")
# Columns added after the first release: a database loaded before them must be loaded again.
LATER_COLUMNS = {"prescriptions": ("form_group", "quantity_source", "drug_source"),
                 "daily_dose_segments": ("dose_known",)}


def is_current(conn: sa.Connection) -> bool:
    """True when every table a load derives exists, with the columns this version reads (a database loaded
    by an older version lacks some)."""
    inspector = sa.inspect(conn)
    if not all(inspector.has_table(t) for t in ("prescriptions", *DERIVED_TABLES)):
        return False
    # An empty select names the columns on every dialect (duckdb_engine's inspector cannot list them);
    # the table names are this module's constants, never data.
    return all(set(columns) <= set(conn.exec_driver_sql(f"select * from {table} where 1 = 0").keys())
               for table, columns in LATER_COLUMNS.items())


@contextlib.contextmanager
def all_or_nothing(conn: sa.Connection, fresh: set[str], only: set[str] | None = None) -> Iterator[None]:
    """What makes a load all or nothing inside `engine.begin()`: the transaction on DuckDB and PostgreSQL;
    on Spark, which has none, a staging database swapped in on success (analysis.spark.staged_load; fresh:
    the tables the load makes again from nothing, which need no copy; only: the tables it changes, when it
    changes no other)."""
    if conn.dialect.name != "spark":
        yield
        return
    from analysis import spark

    with spark.staged_load(conn, fresh, only):
        yield


def bound(statement: sa.TextClause, params: dict[str, object]) -> tuple[sa.TextClause, dict[str, object]]:
    """The statement with its list parameters bound as expanding IN lists (one bound parameter per value, never
    spliced text; typed as text when every value is, so an empty list still compares with a text column), and
    the values to execute it with (tuples as lists; values the statement does not use are ignored)."""
    lists = [sa.bindparam(k, expanding=True, type_=sa.String if all(isinstance(x, str) for x in v) else None)
             for k, v in params.items() if isinstance(v, (list, tuple)) and k in statement._bindparams]
    if lists:
        statement = statement.bindparams(*lists)
    return statement, {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def read_frame(conn: sa.Connection, name: str, params: dict[str, object] | None = None, stored: bool = True):
    """Run queries/<name>.sql with bound parameters and return a pandas DataFrame. stored: answer from the
    answers computed at load time when this exact question is one of them (analysis.precomputed), which is
    the same frame the query gives (row order aside)."""
    params = params or {}
    if stored:
        from analysis import precomputed

        found = precomputed.lookup(conn, name, params)
        if found is not None:
            return found
    return frame_of(conn, conn.execute(*bound(sa.text(queries.load(name, conn.dialect.name)), params)))


def frame_of(conn: sa.Connection, result: sa.CursorResult):
    """A result's rows as a pandas DataFrame, by the fastest path each engine has."""
    import pandas as pd

    if conn.dialect.name == "spark" and result.returns_rows:
        return result.cursor.arrow.to_pandas()   # Spark sends the rows as Arrow (analysis.spark.Cursor)
    if conn.dialect.name == "duckdb" and result.returns_rows:
        # DuckDB hands the rows over as one Arrow table: 2-3x faster than building Python row objects, and
        # the same frame (dates stay datetime.date, text stays text).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # "an extra copy of the rows": still the fastest path
            return result.cursor.to_arrow_table().to_pandas()
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
