"""Start the Streamlit server with the dashboard's modules already imported.

Streamlit imports an app's modules when the first visitor arrives; pandas, scipy, plotly and the database
drivers take a few seconds to import on a small server, and that visitor would wait for them. Importing
them here, before the server starts, moves that cost to start-up; then the default view is computed in
the background as soon as the server is up (dashboard/warmup.py). `rxdash serve` runs this module.
"""
from __future__ import annotations

import logging
import os
import sys

from analysis import redact

# Before Streamlit makes its log handlers (they write to the sys.stderr of that moment): no password or token in
# the database URL ($RXDASH_DB_URL) or the environment reaches the server's log.
redact.install()

# rxdash's own lines in the server's log, in Streamlit's format: the warm-up's time, and with
# RXDASH_LOG_LEVEL=debug each answer the server computes (never a value: a query's name and a digest of its
# parameters), which shows that every session's shared work is done once (tests/browser/test_sessions.py).
LOG_LEVEL_ENV = "RXDASH_LOG_LEVEL"
_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
_rxdash_log = logging.getLogger("rxdash")
_rxdash_log.addHandler(_handler)
_rxdash_log.setLevel(os.environ.get(LOG_LEVEL_ENV, "INFO").upper()
                     if os.environ.get(LOG_LEVEL_ENV, "INFO").upper() in ("DEBUG", "INFO", "WARNING", "ERROR")
                     else "INFO")
_rxdash_log.propagate = False

# The pages and everything they import (analysis, pandas, scipy, plotly, SQLAlchemy, DuckDB's driver).
import duckdb_engine  # noqa: F401
import psycopg  # noqa: F401
from streamlit.web import cli

# Each @st.cache_data checks its storage when it is declared and, before the server runs, warns "No runtime
# found, using MemoryCacheStorageManager": true and harmless here (the memory store is what the running
# server uses too), so that one logger is quiet while the pages are imported, and only then.
_caching = logging.getLogger("streamlit.runtime.caching.cache_data_api")
_level = _caching.level
_caching.setLevel(logging.ERROR)
try:
    from dashboard import data, filters, pages, warmup  # noqa: F401
    from dashboard.views import data_quality, methods, overview, profile, tapers, variation  # noqa: F401
finally:
    _caching.setLevel(_level)

if __name__ == "__main__":
    warmup.start_when_ready()
    sys.argv = ["streamlit", "run", *sys.argv[1:]]
    sys.exit(cli.main(prog_name="streamlit"))
