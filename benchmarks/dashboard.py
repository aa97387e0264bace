"""Benchmark: how fast each dashboard page renders in a real browser (headless Chromium).

    python benchmarks/dashboard.py --db duckdb:////path/to/1m.duckdb [--runs 3]

For each page: **cold** = a freshly started server and a new browser (no HTTP cache) opening that page's
link first: the browser downloads the app; the server computes what its start-up warm-up has not yet
(with --settle 0, the warm-up is still running: the worst case; with --settle 15 it has finished).
**warm** = the page opened again from the sidebar of an open session, after it has been computed once
on that server (what a leader does moving between pages). **warm, new tab** = the page's link opened in a
new tab of the same browser (new session, cached files). Then **filter, cached**: on the Overview,
switch a sidebar filter off and back on; every change after the first is answered from the cache. A page
counts as rendered when Streamlit's "running" indicator is gone and the page's last element is on screen. Prints one JSON line
per measurement and a summary table. Targets (issue #5): warm < 2 s, cold < 5 s, cached filter < 1 s.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

CHROMIUM = os.environ.get("RXDASH_CHROMIUM", "/usr/bin/chromium")
# url path (with query) -> text that appears once the page's last element has rendered
PAGES = {
    "overview": ("/", "Patients filling an opioid analgesic, by month"),
    "variation": ("/variation", "shrunken values with 95% intervals"),      # the funnel, then the first tab
    "tapers": ("/tapers", "Taper categories by clinician"),                  # the speeds, then the first tab
    "profile": ("/profile?clinician={clinician}", "Your tapers"),
    "data-quality": ("/data-quality", "Drug descriptions"),
    "methods": ("/methods", "MME conversion factors"),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dashboard", "serve", "--db", url, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the dashboard server did not start")


def rendered(page, marker: str, timeout: float = 120_000) -> None:
    page.get_by_text(marker).first.wait_for(timeout=timeout)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=timeout)
    if page.locator("[data-testid=stException]").count():
        raise SystemExit(f"an exception is shown on {page.url}")


_HEADLINE_JS = ("[...document.querySelectorAll('[data-testid=stMetric]')].find(m => "
                "m.innerText.includes('Patients with an opioid fill'))?.querySelector('[data-testid=stMetricValue]')"
                "?.innerText")


def headline(page) -> str:
    return page.evaluate(f"() => {_HEADLINE_JS}")


def visit(context, base: str, path: str, marker: str) -> float:
    page = context.new_page()
    start = time.perf_counter()
    page.goto(base + path)
    rendered(page, marker)
    seconds = time.perf_counter() - start
    page.close()
    return seconds


def navigate(page, title: str, marker: str) -> float:
    """Open a page from the sidebar of the open session; seconds until it has rendered."""
    start = time.perf_counter()
    page.locator("[data-testid=stSidebarNav]").get_by_text(title, exact=True).click()
    rendered(page, marker)
    return time.perf_counter() - start


TITLES = {"overview": "Overview", "variation": "Clinician variation", "tapers": "Tapers",
          "profile": "Clinician profile", "data-quality": "Data quality", "methods": "Methods"}


def busiest_clinician(url: str) -> str:
    """The pseudonym code of the clinician with the most tapers in the last year (a full profile page)."""
    import datetime as dt

    from analysis import db, dose, privacy

    engine = db.make_engine(url, read_only=True)
    with engine.connect() as conn:
        bounds = db.read_frame(conn, "data_bounds").iloc[0]
        tapers = db.read_frame(conn, "tapers_attributed", {**dose.DoseParams().sql(),
                                                          **dose.TaperParams().sql(bounds.data_start, bounds.data_end)})
    engine.dispose()
    recent = tapers[tapers["taper_start"] >= bounds.data_end - dt.timedelta(days=364)]
    top = recent["clinician_id"].value_counts().index[0]
    return privacy.pseudonyms([top], privacy.pseudonym_secret())[top].split()[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of a loaded database (e.g. 1M prescriptions)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds to wait after the server is up before the cold visit (lets the start-up "
                             "warm-up of the default view finish; 0 = visit at once, the worst case)")
    parser.add_argument("--pages", default=",".join(PAGES),
                        help=f"comma-separated pages to time (default: all of {', '.join(PAGES)})")
    parser.add_argument("--no-filter", action="store_true", help="skip the filter-change measurement")
    args = parser.parse_args()
    chosen = [p.strip() for p in args.pages.split(",") if p.strip()]
    if unknown := [p for p in chosen if p not in PAGES]:
        parser.error(f"unknown page(s): {', '.join(unknown)}")
    from playwright.sync_api import sync_playwright

    clinician = busiest_clinician(args.db)
    results: dict[str, dict[str, list[float]]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for _ in range(args.runs):
            for name in chosen:
                path, marker = PAGES[name]
                path = path.format(clinician=clinician)
                proc, base = start_server(args.db)
                try:
                    time.sleep(args.settle)
                    context = browser.new_context(viewport={"width": 1280, "height": 800})
                    cold = visit(context, base, path, marker)
                    new_tab = visit(context, base, path, marker)
                    # In one open session: another page with charts first, then this one from the sidebar.
                    page = context.new_page()
                    other = "tapers" if name != "tapers" else "overview"
                    page.goto(base + PAGES[other][0])
                    rendered(page, PAGES[other][1])
                    if name == "profile":   # the profile keeps its clinician in the session
                        page.goto(base + path)
                        rendered(page, marker)
                        navigate(page, TITLES[other], PAGES[other][1])
                    warm = navigate(page, TITLES[name], marker)
                    context.close()
                finally:
                    proc.terminate()
                    proc.wait()
                r = results.setdefault(name, {"cold": [], "warm": [], "new_tab": []})
                r["cold"].append(cold)
                r["warm"].append(warm)
                r["new_tab"].append(new_tab)
                print(json.dumps({"page": name, "cold_s": round(cold, 2), "warm_s": round(warm, 2),
                                  "warm_new_tab_s": round(new_tab, 2)}), flush=True)

        # A filter change answered from the cache: toggle exclusions off (computed), then on again (cached).
        if args.no_filter:
            browser.close()
            _table(results)
            return
        proc, base = start_server(args.db)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(base + PAGES["overview"][0])
            rendered(page, PAGES["overview"][1])
            toggle = page.locator("[data-testid=stSidebar]").get_by_text("Leave out cancer, hospice and sickle cell")
            value = {True: headline(page)}
            changes = []
            for i in range(2 * args.runs):
                exclusions = i % 2 == 1          # the state after this click
                start = time.perf_counter()
                toggle.click()
                if exclusions not in value:     # first change: the new figure is not known yet
                    page.wait_for_function(f"() => {_HEADLINE_JS} !== {json.dumps(value[True])}", timeout=120_000)
                else:
                    page.wait_for_function(f"() => {_HEADLINE_JS} === {json.dumps(value[exclusions])}",
                                           timeout=120_000)
                rendered(page, PAGES["overview"][1])
                changes.append(time.perf_counter() - start)
                value[exclusions] = headline(page)
            context.close()
        finally:
            proc.terminate()
            proc.wait()
        browser.close()
    # The first change computes the exclusions-off figures; every later one is answered from the cache.
    cached = changes[1:]
    print(json.dumps({"filter_first_change_s": round(changes[0], 2),
                      "filter_cached_median_s": round(statistics.median(cached), 2),
                      "filter_cached_max_s": round(max(cached), 2)}))
    _table(results)


def _table(results: dict[str, dict[str, list[float]]]) -> None:
    print(f"\n{'page':<14}{'cold median s':>15}{'cold max s':>12}{'warm median s':>15}{'warm max s':>12}"
          f"{'new tab median s':>18}")
    for name, r in results.items():
        print(f"{name:<14}{statistics.median(r['cold']):>15.2f}{max(r['cold']):>12.2f}"
              f"{statistics.median(r['warm']):>15.2f}{max(r['warm']):>12.2f}{statistics.median(r['new_tab']):>18.2f}")


if __name__ == "__main__":
    main()
