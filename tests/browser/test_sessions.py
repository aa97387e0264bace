"""Several clinic leaders opening the dashboard at the same moment (issue #29, item 9): every session gets its
page and no error, the server's health check keeps answering, and what every session needs is computed once
and shared. How long it takes is measured by benchmarks/sessions.py, never here."""
from __future__ import annotations

import collections
import re
import shutil
import threading
import urllib.request

from tests.browser.conftest import _free_port, server_env, start_server, stop_server

SESSIONS = 6
HEADLINE = "Patients with an opioid fill"


def _poll(base: str, stop: threading.Event, statuses: list[int]) -> None:
    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=120) as r:
                statuses.append(r.status)
        except OSError:
            statuses.append(0)
        stop.wait(0.5)


def test_sessions_opened_at_once_each_get_the_page_and_share_one_computation(browser, sample_duckdb, tmp_path):
    # A fresh copy of the sample: nothing computed yet by any server; sessions arrive while the warm-up runs.
    db = tmp_path / "sample.duckdb"
    shutil.copy(sample_duckdb.removeprefix("duckdb:///"), db)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**server_env(tmp_path / "audit.jsonl"), "RXDASH_LOG_LEVEL": "debug"}
    log_path = tmp_path / "server.log"
    proc, log = start_server(["--db", f"duckdb:///{db}", "--port", str(port)], env, tmp_path, log_path, base)
    statuses: list[int] = []
    stop = threading.Event()
    poller = threading.Thread(target=_poll, args=(base, stop, statuses), daemon=True)
    contexts = [browser.new_context(viewport={"width": 1280, "height": 800}) for _ in range(SESSIONS)]
    try:
        poller.start()
        pages = [c.new_page() for c in contexts]
        for page in pages:   # every session's request sent before any is answered
            page.goto(base + "/", wait_until="commit", timeout=120_000)
        headlines = []
        for page in pages:
            card = page.locator("[data-testid=stMetric]").filter(has_text=HEADLINE)
            card.wait_for(timeout=300_000)
            page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=300_000)
            assert page.locator("[data-testid=stException], [data-testid=stAlertContentError]").count() == 0
            headlines.append(card.locator("[data-testid=stMetricValue]").inner_text())
    finally:
        stop.set()
        poller.join(timeout=130)
        for c in contexts:
            c.close()
        stop_server(proc, log)

    # The same figure in every session (its value is checked by tests/browser/test_pages.py).
    assert len(headlines) == SESSIONS and len(set(headlines)) == 1, headlines
    assert statuses and set(statuses) == {200}, statuses
    computed = re.findall(r"rxdash\.data: computed (\S+(?: \S+ \S+)?) ([0-9a-f]{12}) in", log_path.read_text())
    assert len(computed) > 10, log_path.read_text()[-2000:]   # the default view's questions were computed here
    twice = {k: n for k, n in collections.Counter(computed).items() if n > 1}
    assert twice == {}, twice
