"""Benchmark: `rxdash summarize` (all measures, funnel limits, shrinkage, tapers, quarterly consistency).

    python benchmarks/summarize.py --prescriptions 1000000            # generate, load into DuckDB, measure
    python benchmarks/summarize.py --db URL [--start 2025-01-01 --end 2025-12-31]

Prints the seconds for the comparison of one year and the peak memory of the process that ran it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import synthetic_database  # benchmarks/ is on sys.path when a script runs


def _measure(url: str, start: str, end: str, out: str) -> None:
    from analysis import db, summary

    engine = db.make_engine(url, read_only=True)
    settings = summary.Settings(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    t0 = time.perf_counter()
    with engine.connect() as conn:
        table = summary.measure_table(conn, settings)
        t1 = time.perf_counter()
        consistency = summary.consistency_table(conn, settings)
        t2 = time.perf_counter()
        tapers = summary.taper_table(conn, settings, b"benchmark")
        t3 = time.perf_counter()
        n_rx = conn.exec_driver_sql("select count(*) from prescriptions").scalar_one()
    print(json.dumps({"measures": t1 - t0, "consistency_by_quarter": t2 - t1, "tapers": t3 - t2,
                      "rows": [len(table), len(consistency), len(tapers)], "prescriptions": n_rx}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prescriptions", type=int, default=1_000_000)
    parser.add_argument("--db")
    parser.add_argument("--start", default="2025-01-01")
    parser.add_argument("--end", default="2025-12-31")
    parser.add_argument("--_measure", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._measure:
        _measure(*args._measure)
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or synthetic_database(args.prescriptions, Path(tmp))
        out = subprocess.run([sys.executable, __file__, "--_measure", url, args.start, args.end, tmp],
                             capture_output=True, text=True)
        if out.returncode:
            sys.exit(out.stderr)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"{r['prescriptions']:,} prescriptions, {url.split(':')[0]}, period {args.start} to {args.end}")
        print(f"  11 measures with funnel limits and shrinkage  {r['measures']:6.1f} s  ({r['rows'][0]:,} rows)")
        print(f"  consistency indices by quarter                {r['consistency_by_quarter']:6.1f} s  ({r['rows'][1]:,} rows)")
        print(f"  tapers starting in the period                 {r['tapers']:6.1f} s  ({r['rows'][2]:,} rows)")
        print(f"  total {r['measures'] + r['consistency_by_quarter'] + r['tapers']:.1f} s, peak memory {peak:,.0f} MB")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
