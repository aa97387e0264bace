"""Compute the default view of the main pages when the server starts, before anyone asks.

A clinic leader opening the dashboard on Monday morning sees the last year, all clinics, default
thresholds. The server computes exactly those results (same cached functions, same parameters) as soon
as it is up, so the first visitor does not wait for them. Other filter choices are computed on demand
and cached in the same way.
"""
from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("rxdash.warmup")


def default_view() -> None:
    """Fill the query cache for the default filters: Overview, Clinician variation (first measure with its
    quarterly trend), Tapers, and what moved (every measure by quarter). Errors are ignored: the pages report them in plain words when visited."""
    from analysis import measures
    from dashboard import data, filters, over_time
    from dashboard.views import overview, tapers, variation

    # Cached functions called outside a page run warn that there is no page ("missing ScriptRunContext"):
    # expected here, and not worth a line per query in the server's log.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    started = time.perf_counter()
    try:
        f = filters.default()
        if f is None:
            return
        data.warm(overview.queries(f))
        overview.ranking(f)
        variation.trend(f, f.measures()[0])
        tapers.period_tapers(f)
        data.query("taper_outcomes", **f.taper_params())
        data.query("monthly_opioid_fills", start=f.start, end=f.end, exclude=f.dose().exclude,
                   **f.clinician_params())
        over_time.moved(f)   # the Overview's "what moved": every measure's quarters over two years
        # Allowing for patient mix, as every clinician profile and the variation page's second basis show it: the
        # model is fitted over all clinicians' patients, the same for every profile.
        for m in f.measures():
            if measures.adjustable(m):
                data.compared(m, f.measure_params(m), f.clinicians, "adjusted", f.high_mme)
    except Exception as e:  # noqa: BLE001 - a failed warm-up must never stop the server
        log.warning("warm-up stopped: %s", str(e).splitlines()[0] if str(e) else type(e).__name__)
        return
    log.info("default view computed in %.1f s", time.perf_counter() - started)


def start_when_ready() -> threading.Thread:
    """Run default_view in a background thread once Streamlit's runtime (and its caches) exist."""
    def wait_then_warm() -> None:
        from streamlit.runtime import Runtime

        while not Runtime.exists():
            time.sleep(0.2)
        default_view()

    thread = threading.Thread(target=wait_then_warm, name="rxdash-warmup", daemon=True)
    thread.start()
    return thread
