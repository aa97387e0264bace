"""Download buttons under a chart: PNG, SVG, PDF, HTML and the data behind it (suppressed CSV).

The files are built only when a button is pressed (Streamlit calls the function given as `data`), and
each download is written to the audit log.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from analysis import disclosure, exports
from analysis.display import file_part
from dashboard import filters, viewer

CSV_NOTE = ("Counts from 1 to 10 are left blank, with what would give them away; the column withheld_why says "
            "why (analysis/disclosure.py).")
# What a chart's files may show, stated at every call of show() (the disclosure rule, analysis/disclosure.py):
NO_COUNTS = "no counts"          # the figure draws no count nor anything derived from one: exported as shown
PATIENT_LEVEL = "patient level"  # one mark per patient: no image leaves while small counts are suppressed
ExportFigure = Callable[[int], go.Figure] | str


def _audited(build: Callable[[], bytes], what: str, f: filters.Filters) -> Callable[[], bytes]:
    # Who is asking is read now, in the script run: Streamlit builds the file later, in a thread where
    # st.user is not available (signed-in downloads failed with "st.user has no attribute is_logged_in").
    who = viewer.current()

    def run() -> bytes:
        content = build()
        viewer.record("export", what, filters.describe(f), who)
        return content
    return run


def allowed() -> bool:
    """Whether the viewer's role may take files out of the dashboard."""
    v = viewer.current()
    return v is not None and v.exports


def exported(fig: go.Figure, export: ExportFigure, min_cell: int) -> go.Figure | None:
    """The figure a chart's image and HTML files hold: the builder `export` run under the disclosure rule
    (small counts withheld, units under the minimum not drawn individually), the figure shown when it holds
    no count, or None for a patient-level chart while the rule is on."""
    if callable(export):
        return export(min_cell)
    if export == NO_COUNTS:
        return fig
    if export == PATIENT_LEVEL:
        return None if disclosure.applies(min_cell) else fig
    raise ValueError(f"unknown export rule {export!r}")


def show(fig: go.Figure, name: str, f: filters.Filters, context: exports.Context,
         csv: Callable[[], bytes] | None = None, *, export: ExportFigure) -> None:
    """Draw the chart, then a row of download buttons: images, HTML and (when `csv` is given) the data
    behind it. Nothing is built until a button is pressed. `name` becomes the files' names, made safe
    for a path whatever it was built from.

    `export` says what the files may show, and every caller must say it: a function of min_cell that builds
    the chart again under the disclosure rule (the chart builders' `min_cell` keyword), NO_COUNTS when the
    figure holds no count, or PATIENT_LEVEL (no image while small counts are suppressed). The screen draws
    `fig` with its exact counts: only signed-in roles see it, and nothing on screen leaves."""
    name = file_part(name)
    st.plotly_chart(fig, theme=None, width="stretch")
    if not allowed():
        return
    images = not (export == PATIENT_LEVEL and disclosure.applies(context.min_cell))
    if not images:
        st.caption("This chart draws one line per patient: no image of it leaves the dashboard while counts "
                   "from 1 to 10 are suppressed.")
    cols = st.columns([1, 1, 1, 1, 3])
    browser = Path(os.environ.get(exports.BROWSER_ENV, exports.DEFAULT_BROWSER))
    for col, fmt in zip(cols if images else [], ("png", "svg", "pdf", "html")):
        build = (lambda: exports.html(exported(fig, export, context.min_cell), context)) if fmt == "html" else \
            (lambda fmt=fmt: exports.image(exported(fig, export, context.min_cell), fmt, context))
        missing = fmt != "html" and not browser.exists()
        col.download_button(fmt.upper(), _audited(build, f"{name}.{fmt}", f), file_name=f"{name}.{fmt}",
                            mime=exports.FORMATS[fmt], key=f"dl_{name}_{fmt}", on_click="ignore",
                            icon=":material/download:", disabled=missing,
                            help=f"Images need chromium at {browser} (apt-get install chromium)" if missing else None)
    if csv is not None:
        cols[4].download_button("Data behind this chart (CSV)", _audited(csv, f"{name}.csv", f),
                                file_name=f"{name}.csv", mime="text/csv", key=f"dl_{name}_csv", on_click="ignore",
                                help=CSV_NOTE, icon=":material/table:")


def document(label: str, build: Callable[[], bytes], file_name: str, f: filters.Filters, note: str) -> None:
    """One button for a whole document (report pack, feedback letter) as PDF, built when pressed, audited."""
    if not allowed():
        return
    file_name = file_part(Path(file_name).stem) + Path(file_name).suffix
    browser = Path(os.environ.get(exports.BROWSER_ENV, exports.DEFAULT_BROWSER))
    missing = not browser.exists()
    st.download_button(label, _audited(build, file_name, f), file_name=file_name, mime=exports.FORMATS["pdf"],
                       key=f"dl_{file_name}", on_click="ignore", icon=":material/picture_as_pdf:", disabled=missing,
                       help=f"PDF needs chromium at {browser} (apt-get install chromium)" if missing else note)
