"""Database access: where the URL comes from, engines for DuckDB and PostgreSQL, and the schema."""
from __future__ import annotations

import os
import tomllib
import warnings
from pathlib import Path

import sqlalchemy as sa

import queries

ENV_VAR = "RXDASH_DB_URL"
DEFAULT_URL = "duckdb:///rxdash.duckdb"
SUPPORTED = ("duckdb", "postgresql")
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


def dialect_of(url_or_engine: str | sa.Engine) -> str:
    """'duckdb' or 'postgresql'; any other backend is refused with the list of supported ones."""
    url = url_or_engine.url if isinstance(url_or_engine, sa.Engine) else sa.make_url(url_or_engine)
    name = url.get_backend_name()
    if name not in SUPPORTED:
        raise ValueError(f"database '{name}' is not supported; use one of: {', '.join(SUPPORTED)}")
    return name


def make_engine(url: str, read_only: bool = False, schema: str | None = None) -> sa.Engine:
    """An engine for the URL; read_only opens DuckDB read-only or makes PostgreSQL sessions read-only."""
    parsed = sa.make_url(url)
    name = dialect_of(url)
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
    return sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)


def init_schema(conn: sa.Connection) -> None:
    """Create the tables and the parsing functions if they are missing (idempotent)."""
    dialect = conn.dialect.name
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


def read_frame(conn: sa.Connection, name: str, params: dict[str, object] | None = None):
    """Run queries/<name>.sql with bound parameters and return a pandas DataFrame."""
    import pandas as pd

    params = params or {}
    statement = sa.text(queries.load(name, conn.dialect.name))
    # Lists and tuples are bound as expanding IN lists: one bound parameter per value, never spliced text.
    # Typed as text when every value is (an empty list must still compare with a text column).
    lists = [sa.bindparam(k, expanding=True, type_=sa.String if all(isinstance(x, str) for x in v) else None)
             for k, v in params.items() if isinstance(v, (list, tuple)) and k in statement._bindparams]
    if lists:
        statement = statement.bindparams(*lists)
    result = conn.execute(statement, {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()})
    if conn.dialect.name == "duckdb" and result.returns_rows:
        # DuckDB hands the rows over as one Arrow table: 2-3x faster than building Python row objects, and
        # the same frame (dates stay datetime.date, text stays text).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # "an extra copy of the rows": still the fastest path
            return result.cursor.to_arrow_table().to_pandas()
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
