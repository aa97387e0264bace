"""Benchmark: generate N prescriptions, load them into DuckDB, print rows per second and peak memory.

    python benchmarks/load.py [--prescriptions 1000000] [--db duckdb:///path] [--keep DIR]

The load runs in a child process so its peak resident memory is measured on its own.
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


def _load_child(folder: str, url: str) -> None:
    from analysis import db, ingest

    engine = db.make_engine(url)
    start = time.perf_counter()
    phases: dict[str, list[float]] = {}   # phase -> [first report, last report], seconds since the start

    def progress(phase: str, done: int, total: int) -> None:
        now = time.perf_counter() - start
        phases.setdefault(phase, [now, now])[1] = now

    report = ingest.load_directory(engine, folder, Path(folder) / "rejects.csv", replace=True, progress=progress)
    seconds = time.perf_counter() - start
    rows = sum(t.rows_read for t in report.tables)
    rx = next(t for t in report.tables if t.table == "prescriptions")
    print(json.dumps({"seconds": seconds, "rows": rows, "prescriptions": rx.rows_read,
                      "rejected": report.rows_rejected,
                      "phases": {k: round(v[1] - v[0], 1) for k, v in phases.items()}}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prescriptions", type=int, default=1_000_000)
    parser.add_argument("--db", help="SQLAlchemy URL (default: a DuckDB file in a temporary folder)")
    parser.add_argument("--keep", type=Path, help="write the generated CSV files here and keep them")
    parser.add_argument("--_load", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._load:
        _load_child(*args._load)
        return

    from analysis import synthetic

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp) / "data"
        patients = max(1, round(args.prescriptions / synthetic.PRESCRIPTIONS_PER_PATIENT))
        start = time.perf_counter()
        counts = synthetic.generate(folder, patients, seed=1)
        gen_seconds = time.perf_counter() - start
        size_mb = sum(p.stat().st_size for p in Path(folder).glob("*.csv")) / 2**20
        print(f"generated {counts['prescriptions']:,} prescriptions for {patients:,} patients "
              f"({size_mb:,.0f} MB of CSV) in {gen_seconds:,.1f} s")
        url = args.db or f"duckdb:///{Path(tmp) / 'bench.duckdb'}"
        out = subprocess.run([sys.executable, __file__, "--_load", str(folder), url],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"loaded {result['rows']:,} rows ({result['prescriptions']:,} prescriptions, "
              f"{result['rejected']} rejected) into {url.split(':')[0]} in {result['seconds']:,.1f} s: "
              f"{result['rows'] / result['seconds']:,.0f} rows/s, peak memory {peak_mb:,.0f} MB")
        # Each phase from its first progress report to its last (staging counts rows; the derived tables and the
        # precomputed answers count steps): where the time goes.
        for phase, phase_seconds in result["phases"].items():
            print(f"  {phase:<28} {phase_seconds:>8,.1f} s")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
