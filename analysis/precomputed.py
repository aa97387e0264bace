"""Answers computed once, when data arrive: every measure's rows for the questions the default views ask.

A clinic leader opens the dashboard on its defaults (the latest twelve whole months, the period before, every
quarter of the two years "what moved" looks back over; default factor set, exclusions, thresholds and taper
rules). Each of those questions is one measure query with one set of bound parameters. `rebuild` runs every
one of them inside the load's transaction, in the database (the rows never pass through Python), and keeps
the answers in `stored_measure_rows` under a key made of the query's name and the parameters it uses
(`stored_questions`). `db.read_frame` answers a question from there when its key is stored, and runs the
query otherwise: a question is stored only with the exact parameters it was computed with, so a stored answer
is always the answer the live query would give on the same data (tests/test_precomputed.py checks every
stored question against the live query on DuckDB and PostgreSQL). Any other period or setting is computed when
asked, and the dashboard keeps it for every session (dashboard/data.py).

Spark keeps computing live for now: its staging swap (analysis.spark.staged_load) would copy these tables too.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import sqlalchemy as sa

import queries
from analysis import coverage, db, dose, measures, trends

# The per-patient columns every measure query returns; baseline_mme only where the query returns it.
COLUMNS = ("patient_id", "clinician_id", "clinic_id", "in_numerator", "value", "baseline_mme")
MEASURE_QUERIES = tuple(sorted({m.query for m in measures.MEASURES}))
Progress = Callable[[str, int, int], None]


def _plain(value: object) -> object:
    """A bound value as it appears in a key: dates in ISO form, numbers as floats (90 and 90.0 are one
    question), lists as lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def used_parameters(name: str, dialect: str) -> frozenset[str]:
    """The bound parameters queries/<name>.sql uses (others passed to it are ignored, so are not in its key)."""
    return frozenset(sa.text(queries.load(name, dialect))._bindparams)


def key(name: str, params: dict[str, object], dialect: str) -> str:
    """The question: the query's name and the parameters it uses, as canonical JSON."""
    used = used_parameters(name, dialect)
    return json.dumps([name, {k: _plain(v) for k, v in sorted(params.items()) if k in used}],
                      separators=(",", ":"))


def default_periods(data_start: dt.date, data_end: dt.date) -> tuple[list[tuple[dt.date, dt.date]],
                                                                     list[tuple[dt.date, dt.date]]]:
    """The periods the default views ask about: the headline periods (the default period,
    coverage.default_period, and the calendar-aligned period before it when the data reach back to its start)
    and every calendar quarter (clipped to the default period's end) from trends.history_start of its last
    quarter: the quarterly charts and "what moved"."""
    start, end = coverage.default_period(data_start, data_end)
    headline = [(start, end)]
    before = coverage.previous_period(start, end)
    if before[0] >= data_start:
        headline.append(before)
    return headline, measures.quarters(trends.history_start(trends.quarter_of(end), data_start), end)


def judged_quarters(m: measures.Measure, data_start: dt.date, data_end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The quarters "what moved" reads for measure m over the default period: trends.HISTORY quarters up to the
    period's last quarter measured in full for m (earlier than the period's last quarter for a measure that
    needs follow-up after it), which may begin before the quarters of the default period's charts."""
    start, end = coverage.default_period(data_start, data_end)
    q = trends.last_complete_quarter(m, start, end, data_start, data_end)
    if q is None:
        return []
    return measures.quarters(trends.history_start(q, data_start), dose.add_months(q, 3) - dt.timedelta(days=1))


def questions(data_start: dt.date, data_end: dt.date) -> list[tuple[str, dict[str, object]]]:
    """Every (query name, bound parameters) the default views ask: each measure at the default settings over
    each default period and the quarters "what moved" judges it over (judged_quarters), and over the headline periods also the patients the dose-based measures leave out
    for an unknown dose (dose_unknown true). A question may appear twice in other words (a parameter its query
    does not use); rebuild stores it once."""
    headline, quarters = default_periods(data_start, data_end)
    out = []
    for m in measures.configured():
        for start, end in list(dict.fromkeys(headline + quarters + judged_quarters(m, data_start, data_end))):
            params = measures.sql_params(m, start, end, data_start, data_end)
            for unknown in ((False, True) if (start, end) in headline else (False,)):
                out.append((m.query, {**params, "dose_unknown": unknown}))
    return out


def rebuild(conn: sa.Connection, progress: Progress | None = None) -> int:
    """Compute and store the answer to every default question (questions()) from the data now loaded,
    replacing what was stored. Runs inside the load's transaction. Returns how many questions were stored;
    0 when there are no data or on Spark (analysis/precomputed.py's docstring)."""
    dialect = conn.dialect.name
    if dialect == "spark":   # never filled there, never read there (lookup)
        return 0
    conn.exec_driver_sql("delete from stored_measure_rows")
    conn.exec_driver_sql("delete from stored_questions")
    bounds = conn.execute(sa.text(queries.load("data_bounds"))).one()
    if bounds.data_start is None:
        return 0
    asked, stored = questions(bounds.data_start, bounds.data_end), set()
    for i, (name, params) in enumerate(asked):
        if progress:
            progress("precomputing answers", i, len(asked))
        question = key(name, params, dialect)
        if question in stored:
            continue
        stored.add(question)
        sql = queries.load(name, dialect)
        columns = list(conn.execute(*db.bound(sa.text(f"select * from (\n{sql}\n) as q where 1 = 0"), params)).keys())
        unknown = [c for c in columns if c not in COLUMNS]
        if unknown:
            raise ValueError(f"{name} returns columns the store does not keep: {', '.join(unknown)}")
        chosen = ", ".join(f"q.{c}" if c in columns else f"null as {c}" for c in COLUMNS)
        insert = sa.text(f"insert into stored_measure_rows (question_id, {', '.join(COLUMNS)}) "
                         f"select :question_id as question_id, {chosen} from (\n{sql}\n) as q")
        conn.execute(*db.bound(insert, {**params, "question_id": i}))
        count = conn.execute(sa.text("select count(*) from stored_measure_rows where question_id = :id"),
                             {"id": i}).scalar_one()
        conn.execute(sa.text("insert into stored_questions (question_id, question_key, query_name, period_start, "
                             "period_end, row_count, returned_columns) values (:id, :key, :name, :start, :end, "
                             ":rows, :columns)"),
                     {"id": i, "key": question, "name": name, "start": params.get("start"),
                      "end": params.get("end"), "rows": count, "columns": ",".join(columns)})
    if dialect == "postgresql":   # each read takes one question's rows (DuckDB's zone maps do this by themselves)
        conn.exec_driver_sql("create index if not exists stored_measure_rows_question "
                             "on stored_measure_rows (question_id)")
    if progress:
        progress("precomputing answers", len(asked), len(asked))
    return len(stored)


def lookup(conn: sa.Connection, name: str, params: dict[str, object]):
    """The stored answer to a question as a frame with the live query's columns, or None when it is not stored
    (another period or setting, a database loaded before the store existed, or Spark)."""
    if name not in MEASURE_QUERIES or conn.dialect.name == "spark":
        return None
    if not sa.inspect(conn).has_table("stored_questions"):   # loaded by an earlier version: ask the query
        return None
    found = conn.execute(sa.text("select question_id, returned_columns from stored_questions "
                                 "where question_key = :key"), {"key": key(name, params, conn.dialect.name)}).first()
    if found is None:
        return None
    # The column names come from stored_questions, which only rebuild() writes, each checked against COLUMNS.
    columns = found.returned_columns.split(",")
    return db.frame_of(conn, conn.execute(
        sa.text(f"select {', '.join(columns)} from stored_measure_rows where question_id = :id"),
        {"id": found.question_id}))
