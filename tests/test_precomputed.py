"""Answers computed when data arrive (analysis/precomputed.py, issue #28): every stored answer is the answer the
live query gives, on DuckDB and PostgreSQL; the dashboard's default view is answered from the store; other
questions still go to the query."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from analysis import db, ingest, measures, precomputed, summary
from tests.fixtures import write_dataset
from tests.test_measures import CLINICIANS, CLINICS, dataset

D = dt.date
# The worked example of tests/test_measures.py: fills from 2024-06-01 (T1, T2) to 2025-12-23 (T2's last), so
# the default period is the latest twelve whole months, 2024-12-01 to 2025-11-30; the twelve months before it
# start before the data, so there is no previous period; the quarters "what moved" looks back over are those
# from 2024 Q2 (the quarter of the first fill; eight quarters back would be 2024 Q1) to 2025 Q4, clipped to
# the period's end.
DEFAULT_PERIOD = (D(2024, 12, 1), D(2025, 11, 30))
QUARTERS = [(D(2024, 4, 1), D(2024, 6, 30)), (D(2024, 7, 1), D(2024, 9, 30)), (D(2024, 10, 1), D(2024, 12, 31)),
            (D(2025, 1, 1), D(2025, 3, 31)), (D(2025, 4, 1), D(2025, 6, 30)), (D(2025, 7, 1), D(2025, 9, 30)),
            (D(2025, 10, 1), D(2025, 11, 30))]
# Long-term patients in 2025 Q1 and whether their average daily MME on supplied days is >= 90 (by hand, from the
# worked example's comments): L1 100, L2 60, L3 30, N1 20, T1 100 (to Feb 25); T2 56 days at 100 then 34 days
# at 75 from Feb 26: (5600 + 2550) / 90 = 90.6, so in the numerator this quarter (82.9 over the half year).
Q1_HIGH_DOSE_90 = {"L1": ("D1", True), "L2": ("D1", False), "L3": ("D2", False), "N1": ("D2", False),
                   "T1": ("D3", True), "T2": ("D3", True)}


@pytest.fixture
def worked(engine, tmp_path):
    patients, rows = dataset()
    folder = write_dataset(tmp_path / "d", clinics=CLINICS, clinicians=CLINICIANS, patients=patients,
                           prescriptions=rows, events=[])
    ingest.load_directory(engine, folder, tmp_path / "rejects.csv", as_of=D(2026, 11, 1))
    return engine


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns[:3])).reset_index(drop=True)


def stored_questions(conn) -> list[tuple[str, dict]]:
    """Each stored question as (query name, the parameters it was computed with), rebuilt from the questions."""
    bounds = summary.data_bounds(conn)
    asked = precomputed.questions(bounds["data_start"], bounds["data_end"])
    keys = set(conn.execute(sa.text("select question_key from stored_questions")).scalars())
    return [(n, p) for n, p in asked if precomputed.key(n, p, conn.dialect.name) in keys]


def test_the_default_periods_are_the_ones_the_pages_open_on(worked):
    with worked.connect() as conn:
        bounds = summary.data_bounds(conn)
        assert (bounds["data_start"], bounds["data_end"]) == (D(2024, 6, 1), D(2025, 12, 23))
        assert precomputed.default_periods(bounds["data_start"], bounds["data_end"]) == ([DEFAULT_PERIOD], QUARTERS)
        stored = conn.execute(sa.text("select query_name, period_start, period_end from stored_questions")).all()
    # Every measure over the default period and each quarter; the dose-based query also for the patients whose
    # dose is unknown over the default period.
    periods = {(r.period_start, r.period_end) for r in stored}
    assert periods == {DEFAULT_PERIOD, *QUARTERS}
    assert {r.query_name for r in stored} == set(precomputed.MEASURE_QUERIES)


def test_a_stored_answer_has_the_hand_worked_members(worked):
    m = measures.BY_ID["high_dose_90"]
    params = measures.sql_params(m, *QUARTERS[3], D(2024, 6, 1), D(2025, 12, 23))
    with worked.connect() as conn:
        stored = precomputed.lookup(conn, m.query, params)
        live = db.read_frame(conn, m.query, params, stored=False)
    assert stored is not None   # answered from the store, not the query
    assert {r.patient_id: (r.clinician_id, bool(r.in_numerator)) for r in stored.itertuples()} == Q1_HIGH_DOSE_90
    assert stored.set_index("patient_id").loc["T2", "value"] == pytest.approx(8150 / 90)
    pd.testing.assert_frame_equal(_sorted(stored), _sorted(live))


def test_every_stored_answer_is_the_live_answer(worked):
    with worked.connect() as conn:
        asked = stored_questions(conn)
        assert len(asked) >= len(measures.configured()) * (1 + len(QUARTERS))
        for name, params in asked:
            stored = precomputed.lookup(conn, name, params)
            assert stored is not None, name
            pd.testing.assert_frame_equal(_sorted(stored), _sorted(db.read_frame(conn, name, params, stored=False)),
                                          obj=f"{name} {params['start']}..{params['end']}")


def test_every_stored_answer_is_the_live_answer_on_the_sample(sample_duckdb):
    """The committed sample (1,200 patients, 40 clinicians): a previous period and every quarter, on DuckDB."""
    engine = db.make_engine(sample_duckdb, read_only=True)
    with engine.connect() as conn:
        asked = stored_questions(conn)
        rows = conn.execute(sa.text("select sum(row_count) from stored_questions")).scalar_one()
        assert rows == conn.execute(sa.text("select count(*) from stored_measure_rows")).scalar_one() > 10_000
        for name, params in asked:
            live = db.read_frame(conn, name, params, stored=False)
            pd.testing.assert_frame_equal(_sorted(precomputed.lookup(conn, name, params)), _sorted(live),
                                          obj=f"{name} {params['start']}..{params['end']}")
    engine.dispose()


def test_a_question_is_the_same_however_its_parameters_are_written():
    m = measures.BY_ID["high_dose_90"]
    params = measures.sql_params(m, D(2025, 1, 1), D(2025, 3, 31), D(2024, 1, 1), D(2025, 12, 31))
    base = precomputed.key(m.query, params, "duckdb")
    assert precomputed.key(m.query, {**params, "threshold_mme": int(params["threshold_mme"])}, "duckdb") == base
    assert precomputed.key(m.query, {**params, "not_used_by_the_query": 7}, "duckdb") == base
    assert precomputed.key(m.query, {**params, "threshold_mme": 80.0}, "duckdb") != base
    assert precomputed.key(m.query, {**params, "start": D(2025, 1, 2)}, "duckdb") != base


def test_other_questions_and_older_databases_are_asked_live(worked):
    m = measures.BY_ID["high_dose_90"]
    with worked.connect() as conn:
        # A period nobody stored: no stored answer, and read_frame runs the query.
        odd = measures.sql_params(m, D(2025, 1, 1), D(2025, 6, 30), D(2024, 6, 1), D(2025, 12, 23))
        assert precomputed.lookup(conn, m.query, odd) is None
        assert len(db.read_frame(conn, m.query, odd)) == 6
    with worked.begin() as conn:   # a database loaded before the store existed
        conn.exec_driver_sql("drop table stored_measure_rows")
        conn.exec_driver_sql("drop table stored_questions")
    with worked.connect() as conn:
        params = measures.sql_params(m, *QUARTERS[3], D(2024, 6, 1), D(2025, 12, 23))
        assert precomputed.lookup(conn, m.query, params) is None
        got = db.read_frame(conn, m.query, params)
        assert {r.patient_id: (r.clinician_id, bool(r.in_numerator)) for r in got.itertuples()} == Q1_HIGH_DOSE_90


def test_a_load_replaces_the_stored_answers(worked, tmp_path):
    """A second load (--replace, fewer patients) leaves no answer of the first behind."""
    patients, rows = dataset()
    kept = [r for r in rows if r[1] != "T2"]
    folder = write_dataset(tmp_path / "again", clinics=CLINICS, clinicians=CLINICIANS,
                           patients=[p for p in patients if p[0] != "T2"], prescriptions=kept, events=[])
    ingest.load_directory(worked, folder, tmp_path / "r2.csv", replace=True, as_of=D(2026, 11, 1))
    with worked.connect() as conn:
        assert conn.execute(sa.text("select count(*) from stored_measure_rows where patient_id = 'T2'")).scalar_one() == 0
        for name, params in stored_questions(conn):
            pd.testing.assert_frame_equal(_sorted(precomputed.lookup(conn, name, params)),
                                          _sorted(db.read_frame(conn, name, params, stored=False)))


def test_the_dashboard_default_view_is_answered_from_the_store(sample_duckdb, monkeypatch):
    """Every measure question the default view asks (the warm-up runs exactly the pages' calls: Overview,
    Clinician variation, Tapers, what moved) is a stored one: none goes to the measure queries."""
    import streamlit as st

    from dashboard import warmup

    monkeypatch.setenv("RXDASH_DB_URL", sample_duckdb)
    asked: list[tuple[str, bool]] = []
    lookup = precomputed.lookup

    def recording(conn, name, params):
        found = lookup(conn, name, params)
        if name in precomputed.MEASURE_QUERIES:
            asked.append((f"{name} {params.get('start')}..{params.get('end')} unknown={params.get('dose_unknown')}",
                          found is not None))
        return found

    monkeypatch.setattr(precomputed, "lookup", recording)
    st.cache_data.clear()   # answers kept by earlier tests in this process would hide the questions
    warmup.default_view()
    assert len(asked) >= 50
    missing = [q for q, found in asked if not found]
    assert missing == [], "\n".join(missing)


def test_kept_answers_last_until_the_data_change(monkeypatch, tmp_path):
    """The dashboard keeps every answer for every session while the data stay the same, and a new load into the
    warehouse it reads (PostgreSQL; a DuckDB file cannot be written while a dashboard has it open) is seen
    without a restart once the data's version is read again (every data.VERSION_SECONDS; cleared here)."""
    from streamlit.testing.v1 import AppTest

    from dashboard import data
    from tests.conftest import PG_URL, _pg_schema_engine
    from tests.test_app import H1, _page, metrics

    admin, engine, schema = _pg_schema_engine()
    try:
        patients, rows = dataset()
        folder = write_dataset(tmp_path / "d", clinics=CLINICS, clinicians=CLINICIANS, patients=patients,
                               prescriptions=rows, events=[])
        ingest.load_directory(engine, folder, tmp_path / "r.csv", as_of=D(2026, 11, 1))
        monkeypatch.setenv("RXDASH_DB_URL", PG_URL)
        monkeypatch.setenv("RXDASH_SCHEMA", schema)

        def opioid_patients() -> str:
            at = AppTest.from_function(_page, args=("overview",), default_timeout=120)
            for k, v in H1.items():
                at.query_params[k] = v
            at.run()
            assert not at.exception, [e.value for e in at.exception]
            return metrics(at)["Patients with an opioid fill"]

        # 2025 H1: ten patients fill opioids (tests/test_app.py: nine once L1's cancer leaves them out).
        assert opioid_patients() == "10"
        first = data.version()
        # The same data loaded again without A1 and A2: a new version, and the page's new figure.
        kept = [r for r in rows if r[1] not in ("A1", "A2")]
        again = write_dataset(tmp_path / "again", clinics=CLINICS, clinicians=CLINICIANS,
                              patients=[p for p in patients if p[0] not in ("A1", "A2")], prescriptions=kept,
                              events=[])
        ingest.load_directory(engine, again, tmp_path / "r2.csv", replace=True, as_of=D(2026, 11, 1))
        assert opioid_patients() == "10"          # within VERSION_SECONDS the kept answer still stands
        data._version.clear()                      # ... until the version is read again
        assert data.version() != first
        assert opioid_patients() == "8"
    finally:
        engine.dispose()
        data.engine.clear()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"drop schema {schema} cascade")
        admin.dispose()
