"""Benchmark: load + summarize on DuckDB and on an embedded Apache Spark session, side by side.

    python benchmarks/spark.py [--prescriptions 1000000] [--cores 2] [--engines duckdb,spark] [--spark-memory 1g]

Generates the synthetic data once (seed 1), then for each engine runs, in its own child process, `rxdash
load --replace` of the files and `rxdash summarize` of 2025 (min-cell 11), and prints the seconds of each
step and the peak resident memory of the child's whole process tree (Spark's JVM is a grandchild, which
getrusage does not see: the tree is sampled from /proc every 0.2 s). --spark-memory is the embedded JVM's
heap (spark-submit's --driver-memory; Spark's default is 1g).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def _child(url: str, data: str, out: str) -> None:
    from analysis import db, ingest, summary

    engine = db.make_engine(url)
    t0 = time.perf_counter()
    report = ingest.load_directory(engine, data, Path(out) / "rejects.csv", replace=True)
    t1 = time.perf_counter()
    counts = summary.write_summary(engine, summary.Settings(dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
                                   Path(out) / "summary")
    t2 = time.perf_counter()
    rx = next(t for t in report.tables if t.table == "prescriptions")
    print(json.dumps({"load": t1 - t0, "summarize": t2 - t1, "prescriptions": rx.rows_read, "rows": counts}))


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total / 1024


def _run(url: str, data: Path, out: Path, spark_memory: str) -> tuple[dict, float]:
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYSPARK_SUBMIT_ARGS=f"--driver-memory {spark_memory} pyspark-shell")
    child = subprocess.Popen([sys.executable, __file__, "--_child", url, str(data), str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0.0]

    def sample() -> None:
        while child.poll() is None:
            peak[0] = max(peak[0], _tree_rss_mb(child.pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    stdout, stderr = child.communicate()
    watcher.join()
    if child.returncode:
        sys.exit(stderr[-2000:])
    return json.loads(stdout.strip().splitlines()[-1]), peak[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prescriptions", type=int, default=1_000_000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--spark-memory", default="1g")
    parser.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        _child(*args._child)
        return

    from analysis import synthetic

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        synthetic.generate(data, max(1, round(args.prescriptions / synthetic.PRESCRIPTIONS_PER_PATIENT)), seed=1)
        urls = {"duckdb": f"duckdb:///{Path(tmp) / 'bench.duckdb'}",
                "spark": f"spark://local[{args.cores}]?warehouse={Path(tmp) / 'warehouse'}"}
        for name in args.engines.split(","):
            r, peak = _run(urls[name], data, Path(tmp) / name, args.spark_memory)
            print(f"{name:6s} {r['prescriptions']:,} prescriptions: load {r['load']:,.1f} s, "
                  f"summarize 2025 {r['summarize']:,.1f} s, peak {peak:,.0f} MB (process tree); "
                  f"rows {r['rows']}")


if __name__ == "__main__":
    main()
