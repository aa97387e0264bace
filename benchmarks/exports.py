"""Benchmark: the documents, built as a quality team would from the command line.

    python benchmarks/exports.py --prescriptions 1000000            # generate, load into DuckDB, measure
    python benchmarks/exports.py --db URL [--start 2025-01-01 --end 2025-12-31]

Prints the seconds (and peak memory) of `rxdash report` (PDF), `rxdash feedback` for one clinician and
`rxdash feedback --all` (a zip of one-page letters, one per clinician).
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from common import synthetic_database  # benchmarks/ is on sys.path when a script runs


def _run(*args: str) -> tuple[float, float]:
    """Seconds and peak memory (MB) of one rxdash command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dashboard", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode:
        sys.exit(done.stderr)
    return seconds, max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prescriptions", type=int, default=1_000_000)
    parser.add_argument("--db")
    parser.add_argument("--start", default="2025-01-01")
    parser.add_argument("--end", default="2025-12-31")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or synthetic_database(args.prescriptions, Path(tmp))
        from analysis import db

        with db.make_engine(url, read_only=True).connect() as conn:
            n_rx = conn.exec_driver_sql("select count(*) from prescriptions").scalar_one()
            first = conn.exec_driver_sql("select min(clinician_id) from clinicians").scalar_one()
        period = ["--db", url, "--start", args.start, "--end", args.end]
        out = Path(tmp)
        print(f"{n_rx:,} prescriptions, {url.split(':')[0]}, period {args.start} to {args.end}")
        seconds, peak = _run("report", *period, "--out", str(out / "pack.pdf"))
        print(f"  report pack (PDF)                     {seconds:6.1f} s  peak {peak:,.0f} MB")
        seconds, peak = _run("feedback", *period, "--clinician", first, "--out", str(out / "one.pdf"))
        print(f"  one feedback letter (PDF)             {seconds:6.1f} s  peak {peak:,.0f} MB")
        seconds, peak = _run("feedback", *period, "--all", "--out", str(out / "all.zip"))
        with zipfile.ZipFile(out / "all.zip") as z:
            letters = len(z.namelist())
        print(f"  every clinician's letter (zip)        {seconds:6.1f} s  peak {peak:,.0f} MB  "
              f"({letters:,} letters, {seconds / max(letters, 1):.2f} s each)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
