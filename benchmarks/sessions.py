"""Benchmark: many clinic leaders opening the dashboard at the same moment (a Monday morning).

    python benchmarks/sessions.py --db duckdb:////path/to/rxdash.duckdb [--sessions 20] [--settle 0]

Starts `rxdash serve` on 127.0.0.1 (a free port; nothing leaves the machine), waits for its health check,
then opens `--sessions` browser sessions (one headless Chromium, one context each: no shared cookies or
cache) on the Overview at the same moment. While they load, another process asks the server's health check
(/_stcore/health) every 0.25 s. Prints one JSON line per session (seconds to its first complete page, and
whether the page showed an error) and per health check, then a summary: time to first page (min, median,
max), the health check's latency (median, 95th percentile, max), the number of sessions that saw an
error, and the CPU seconds the server used meanwhile. The browsers stand for twenty leaders' own computers but
share this one: they run at a lower CPU priority than the server (--browsers-nice, default 19, the lowest), so the health
check and the server's work are measured as a deployment would see them; the time to first page still
includes twenty Chromium tabs drawing the Overview's charts on the same two cores. Bounded: at most 50 sessions, each given --timeout seconds (default 300), the whole run
2 x --timeout.

Targets (issue #29, item 9): every session gets its page with no error; the health check answers in under
1 s throughout. What every session needs is computed once (dashboard/data.py: Streamlit's cache computes a
key once while other sessions wait for it; the default view's answers are precomputed at load,
analysis/precomputed.py), so twenty sessions cost little more than one.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import signal
import subprocess
import time
import urllib.request
from pathlib import Path


def _page_benchmark():
    """benchmarks/dashboard.py (its server start and page markers), loaded under its own name: the name
    `dashboard` is the application's package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("page_benchmark", Path(__file__).with_name("dashboard.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_pages = _page_benchmark()
CHROMIUM, PAGES, start_server = _pages.CHROMIUM, _pages.PAGES, _pages.start_server

MAX_SESSIONS = 50


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, every thread) the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def poll_health(base: str, started: float) -> None:
    """Ask /_stcore/health every 0.25 s until killed; print one line per answer: seconds since `started`
    (perf_counter), latency, HTTP status (0: no answer). Runs as its own process, so the browsers' driver
    in this one cannot delay it."""
    while True:
        asked = time.perf_counter()
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=60) as r:
                status = r.status
        except OSError:
            status = 0
        print(f"{asked - started:.3f} {time.perf_counter() - asked:.4f} {status}", flush=True)
        time.sleep(0.25)


def start_health_poller(base: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--poll-health", base, "--since", repr(time.perf_counter())],
                            stdout=subprocess.PIPE, text=True)


def stop_health_poller(poller: subprocess.Popen) -> list[tuple[float, float, int]]:
    poller.terminate()
    out, _ = poller.communicate(timeout=70)
    return [(float(a), float(b), int(c)) for a, b, c in (line.split() for line in out.splitlines() if line.strip())]


async def one_session(browser, base: str, marker: str, timeout_s: float) -> dict[str, object]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    start = time.perf_counter()
    result: dict[str, object] = {}
    try:
        await page.goto(base + "/", timeout=timeout_s * 1000)
        await page.get_by_text(marker).first.wait_for(timeout=timeout_s * 1000)
        await page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')",
                                     timeout=timeout_s * 1000)
        result["first_page_s"] = round(time.perf_counter() - start, 2)
        result["error_shown"] = await page.locator("[data-testid=stException], [data-testid=stAlertContentError]").count() > 0
    except Exception as e:  # noqa: BLE001 - a session that never renders is a result, not a crash
        result["first_page_s"] = None
        result["error_shown"] = True
        result["why"] = str(e).splitlines()[0][:200]
    finally:
        await context.close()
    return result


async def sessions_at_once(base: str, n: int, timeout_s: float) -> list[dict[str, object]]:
    from playwright.async_api import async_playwright

    marker = PAGES["overview"][1]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            return await asyncio.wait_for(asyncio.gather(*(one_session(browser, base, marker, timeout_s)
                                                           for _ in range(n))), timeout=2 * timeout_s)
        finally:
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="SQLAlchemy URL of a loaded database (required)")
    parser.add_argument("--sessions", type=int, default=20, help=f"sessions opened at once (1-{MAX_SESSIONS})")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds between the server's start and the sessions (0: while the start-up warm-up "
                             "still runs, the worst case)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds each session is given")
    parser.add_argument("--browsers-nice", type=int, default=19,
                        help="how much lower the browsers' CPU priority is than the server's (0: the same)")
    parser.add_argument("--poll-health", metavar="BASE", help=argparse.SUPPRESS)
    parser.add_argument("--since", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.poll_health:   # the health-check poller's own process (start_health_poller)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        poll_health(args.poll_health, args.since)
        return
    if not args.db:
        parser.error("--db is required")
    if not 1 <= args.sessions <= MAX_SESSIONS:
        parser.error(f"--sessions is from 1 to {MAX_SESSIONS}")

    proc, base = start_server(args.db)
    health: list[tuple[float, float, int]] = []
    poller = None
    try:
        time.sleep(args.settle)
        poller = start_health_poller(base)
        # Twenty leaders' browsers run on twenty computers, not on the server: here they share its two cores, so
        # they run at a lower priority (the server and the health-check poller were started before) and the
        # figures measure the server rather than the machine's share of twenty Chromium tabs.
        os.nice(args.browsers_nice)
        cpu_before, wall_before = cpu_seconds(proc.pid), time.perf_counter()
        results = asyncio.run(sessions_at_once(base, args.sessions, args.timeout))
        server_cpu, wall = cpu_seconds(proc.pid) - cpu_before, time.perf_counter() - wall_before
    finally:
        if poller is not None:
            health = stop_health_poller(poller)
        proc.terminate()
        proc.wait()

    for i, r in enumerate(results):
        print(json.dumps({"session": i + 1, **r}))
    for at, latency, status in health:
        print(json.dumps({"health_at_s": round(at, 2), "latency_s": round(latency, 3), "status": status}))
    times = sorted(r["first_page_s"] for r in results if r["first_page_s"] is not None)
    latencies = sorted(latency for _, latency, _ in health)
    errors = sum(bool(r["error_shown"]) for r in results)
    print(f"\n{args.sessions} sessions at once (settle {args.settle:g} s, browsers at nice {args.browsers_nice}):")
    if times:
        print(f"  time to first page: min {times[0]:.1f} s, median {statistics.median(times):.1f} s, "
              f"max {times[-1]:.1f} s ({len(times)} of {args.sessions} rendered)")
    if latencies:
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        print(f"  health check: {len(latencies)} asked, median {statistics.median(latencies):.2f} s, "
              f"95th percentile {p95:.2f} s, max {latencies[-1]:.2f} s, "
              f"{sum(s != 200 for _, _, s in health)} not OK")
    print(f"  sessions that showed an error or never rendered: {errors}")
    # The browsers run on the same machine: the server's share of the CPU says how much of the wait is the server's.
    print(f"  the server used {server_cpu:.1f} CPU seconds in the {wall:.1f} s the sessions took")


if __name__ == "__main__":
    main()
