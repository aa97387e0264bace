"""Benchmark: the dose engine on DuckDB for every patient: daily-dose aggregates, long-term episodes, tapers.

The first step recomputes every patient's daily series (the load stores it in daily_dose_segments for
each factor set); the others run the queries the dashboard runs, over every patient.

    python benchmarks/dose.py --prescriptions 1000000        # generate, load, then measure
    python benchmarks/dose.py --db duckdb:////path/file.duckdb  # measure an existing database

Prints seconds for each step and the peak resident memory of the process that ran them (a child
process, so generating and loading do not count).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import synthetic_database  # benchmarks/ is on sys.path when a script runs


def _measure(url: str) -> None:
    import sqlalchemy as sa

    import queries
    from analysis import db, dose

    engine = db.make_engine(url, read_only=True)
    timings = {}
    with engine.connect() as conn:
        bounds = db.read_frame(conn, "data_bounds").iloc[0]
        base = dose.DoseParams().sql()
        steps = {
            # The daily series of every patient (what each load stores in daily_dose_segments), recomputed.
            "daily_series_build": ("build_dose_segments", {"factor_set": "cdc2022", "exclude": False}, False),
            # Every patient's dose per calendar month over the whole data range, kept in the database.
            "patient_month_dose": ("patient_period_dose", {**base, **dose.period_grid(bounds.data_start, bounds.data_end, "month")}, False),
            # Every patient's dose over the analysis period, fetched into pandas (one row per patient).
            "patient_period_dose_to_pandas": ("patient_period_dose", {**base, **dose.period_grid(bounds.data_start, bounds.data_end, "all")}, True),
            "ltot_episodes": ("ltot_episodes", {**base, **dose.LtotParams().sql()}, False),
            "tapers_to_pandas": ("tapers", {**base, **dose.TaperParams().sql(bounds.data_start, bounds.data_end)}, True),
        }
        rows = {}
        for label, (name, params, fetch) in steps.items():
            start = time.perf_counter()
            if fetch:
                rows[label] = len(db.read_frame(conn, name, params))
            else:
                sql = queries.load(name, conn.dialect.name)
                conn.execute(sa.text(f"create or replace temporary table bench_{label} as {sql}"), params)
                rows[label] = conn.exec_driver_sql(f"select count(*) from bench_{label}").scalar_one()
            timings[label] = time.perf_counter() - start
        n_rx = conn.exec_driver_sql("select count(*) from prescriptions").scalar_one()
    print(json.dumps({"timings": timings, "rows": rows, "prescriptions": n_rx}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prescriptions", type=int, default=1_000_000)
    parser.add_argument("--db", help="measure this existing database instead of generating one")
    parser.add_argument("--_measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._measure:
        _measure(args._measure)
        return

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or synthetic_database(args.prescriptions, Path(tmp))
        out = subprocess.run([sys.executable, __file__, "--_measure", url], capture_output=True, text=True)
        if out.returncode:
            sys.exit(out.stderr)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        total = sum(result["timings"].values())
        print(f"{result['prescriptions']:,} prescriptions on DuckDB")
        for label, seconds in result["timings"].items():
            print(f"  {label:<32} {seconds:8.1f} s  {result['rows'][label]:>12,} rows")
        print(f"  {'total':<32} {total:8.1f} s   peak memory {peak_mb:,.0f} MB")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
