"""The one home of caching: the engine once per process, query results keyed by name and parameters."""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from analysis import db, measures, redact, stats
from analysis.display import md


log = logging.getLogger("rxdash.data")


@contextlib.contextmanager
def _computing(what: str, key: object):
    """Log (at debug level) each answer this process computes: its name and a digest of its key, never a value.
    Streamlit's cache computes a key once while other sessions wait for it (its compute_value_lock), so each
    (name, digest) appears once however many sessions ask at the same moment."""
    started = time.perf_counter()
    yield
    if log.isEnabledFor(logging.DEBUG):
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:12]
        log.debug("computed %s %s in %.2f s", what, digest, time.perf_counter() - started)


class DataUnavailable(Exception):
    """The database cannot answer; the message says what to do, in plain words. Pages show it as Markdown,
    so the parts that come from outside (paths, URLs, the database's own error text) are made literal."""


def database_url() -> str:
    """The URL in force: $RXDASH_DB_URL (set by `rxdash serve`), Streamlit secrets, else the default."""
    return db.resolve_url()


@st.cache_resource
def engine(url: str) -> sa.Engine:
    """A read-only engine, created once per process, in the schema `rxdash serve --schema` set ($RXDASH_SCHEMA)."""
    return db.make_engine(url, read_only=True, schema=db.resolve_schema())


# How long the data's version is trusted before it is asked again: a new load shows within this many seconds.
VERSION_SECONDS = 15


@st.cache_data(ttl=VERSION_SECONDS, show_spinner=False)
def _version(url: str) -> str:
    try:
        with engine(url).connect() as conn:
            row = db.read_frame(conn, "data_version").iloc[0]
        return f"{row['loads']}:{row['last_run']}:{row['last_loaded_at']}"
    except (sa.exc.SQLAlchemyError, IndexError, KeyError):
        return ""   # no data yet: the pages say so in plain words


def version() -> str:
    """The loaded data's version (queries/data_version.sql): every answer below is kept, for every session, until
    it changes; a new `rxdash load` is seen within VERSION_SECONDS."""
    return _version(database_url())


# Answers are kept until the data change (the version is part of every key), not for a fixed time: a question
# asked once is answered from memory for every later session. max_entries bounds the memory.
@st.cache_data(max_entries=512, show_spinner=False)
def _run(url: str, data_version: str, name: str, params: tuple[tuple[str, object], ...]) -> pd.DataFrame:
    with _computing(name, (data_version, params)), engine(url).connect() as conn:
        return db.read_frame(conn, name, dict(params))


# The questions this process has answered (url, version, name, parameters): warm() skips them, since reading a
# kept answer back only to throw it away costs a copy of its rows. Evicted answers are recomputed on demand.
_answered: set[tuple] = set()


def query(name: str, **params: object) -> pd.DataFrame:
    """Run queries/<name>.sql with bound parameters; raise DataUnavailable with advice on failure."""
    url = database_url()
    with _plain_errors(url, name):
        question = (url, version(), name, tuple(sorted(params.items())))
        frame = _run(*question)
        _answered.add(question)
        return frame


@st.cache_data(max_entries=128, show_spinner=False)
def _computed(url: str, data_version: str, function: str, key: tuple, _args: tuple) -> object:
    # _args is not hashed (Streamlit skips parameters named with a leading underscore): `key` stands for it.
    module, name = function.rsplit(".", 1)
    with _computing(function, (data_version, key)):
        return getattr(importlib.import_module(module), name)(*_args)


def computed(function, *args: object) -> object:
    """function(*args), a page's summary of cached queries (the Overview's headline, ranking, "what moved"),
    worked out once per distinct question and data version and shared by every session. `function` is a
    module-level function of the dashboard (named by module and name, so two functions never share answers);
    an argument with a `cache_key` (filters.Filters) is known by it."""
    url = database_url()
    key = tuple(getattr(a, "cache_key", a) for a in args)
    with _plain_errors(url, function.__qualname__):
        return _computed(url, version(), f"{function.__module__}.{function.__qualname__}", key, args)


def warm(calls: list[tuple[str, dict[str, object]]], workers: int = 3) -> None:
    """Run several queries at once to fill the cache before a page reads them one by one.

    The database spends part of each query on one core (sorts, window functions); running a page's
    independent queries side by side uses the idle time. Errors are left for the page's own call to
    report in plain words.
    """
    url = database_url()
    data_version = version()
    ctx = get_script_run_ctx()

    def one(question: tuple) -> None:
        if ctx is not None:
            add_script_run_ctx(threading.current_thread(), ctx)
        try:
            _run(*question)
            _answered.add(question)
        except sa.exc.SQLAlchemyError:
            pass

    questions = [q for q in ((url, data_version, name, tuple(sorted(params.items()))) for name, params in calls)
                 if q not in _answered]
    if not questions:
        return
    with _plain_errors(url, "warm-up"), ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, questions))


@st.cache_data(max_entries=512, show_spinner=False)
def _compared(url: str, data_version: str, measure: measures.Measure, params: tuple[tuple[str, object], ...],
              clinicians: frozenset[str] | None, basis: str = "observed",
              high_mme: float = measures.THRESHOLDS["high"]) -> stats.Funnel | None:
    with _computing(f"compared {measure.id} {basis}", (data_version, params, clinicians, high_mme)):
        return _compare(url, data_version, measure, params, clinicians, basis, high_mme)


def _compare(url: str, data_version: str, measure: measures.Measure, params: tuple[tuple[str, object], ...],
             clinicians: frozenset[str] | None, basis: str, high_mme: float) -> stats.Funnel | None:
    rows = _run(url, data_version, measure.query, params)
    if clinicians is not None:
        rows = rows[rows["clinician_id"].isin(clinicians)]
    if basis == "adjusted":
        given = dict(params)
        mix = _run(url, data_version, "patient_mix", tuple(sorted({"start": given["start"], "end": given["end"],
                                                      "exclude": given["exclude"]}.items())))
        return measures.compare_adjusted(rows, mix, measure, given["start"], high_mme)
    units = measures.unit_rows(rows, measure)
    return measures.compare(units, measure) if not units.empty else None


def compared(measure: measures.Measure, params: dict[str, object],
             clinicians: frozenset[str] | None, basis: str = "observed",
             high_mme: float = measures.THRESHOLDS["high"]) -> stats.Funnel | None:
    """A measure's funnel (limits, flags, shrunken values) among the patients of `clinicians` (None: all);
    None when no patient counts. The query result is shared with every other filter on clinicians.
    basis "adjusted": allowing for patient mix (measures.compare_adjusted: the model fitted over the patients of
    `clinicians`; high_mme splits the taper measures' baseline doses); None when it cannot be fitted."""
    url = database_url()
    with _plain_errors(url, measure.query):
        return _compared(url, version(), measure, tuple(sorted(params.items())), clinicians, basis, high_mme)


@contextlib.contextmanager
def _plain_errors(url: str, name: str):
    """Turn database errors into DataUnavailable with a plain message and what to do."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "duckdb" and parsed.database and not Path(parsed.database).exists():
        raise DataUnavailable(
            f"There is no database file at {md(parsed.database)}. Start the demo with `rxdash demo`, "
            "or load your data with `rxdash load DIR`.")
    try:
        yield
    except sa.exc.OperationalError as e:
        if "lock" in _first_line(e).lower():
            raise DataUnavailable("The database file is in use by another process (a load, perhaps). "
                                  "Try again when it has finished.") from None
        raise DataUnavailable(
            f"The database could not be reached ({md(_first_line(e))}). Check the database URL "
            f"({md(_safe(url))}) and that the server is running.") from None
    except (sa.exc.ProgrammingError, sa.exc.DBAPIError) as e:
        text = _first_line(e)
        # PostgreSQL: "does not exist"; DuckDB: "Catalog Error"; Spark: TABLE_OR_VIEW_NOT_FOUND.
        if "does not exist" in text or "Catalog Error" in text or "TABLE_OR_VIEW_NOT_FOUND" in text:
            raise DataUnavailable(
                "The database has no prescribing data yet, or was loaded by an older version of rxdash. "
                "Load your data with `rxdash load DIR` (add `--replace` to load it again), "
                "or start the demo with `rxdash demo`.") from None
        raise DataUnavailable(f"A query failed ({name}: {md(text)}).") from None


def _first_line(e: sa.exc.DBAPIError) -> str:
    """The database's error in one line, with any secret it echoes (a URL's password or token) blanked."""
    return redact.scrub(str(getattr(e, "orig", e)).strip().splitlines()[0], [database_url()])[:300]


def _safe(url: str) -> str:
    return redact.shown_url(url)
