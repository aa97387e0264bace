"""Charts and tables as files that stand on their own: images with a footer, offline HTML, suppressed CSV.

Static images come from kaleido driving Debian's chromium ($BROWSER_PATH, default /usr/bin/chromium; no
browser is downloaded). One kaleido server is started per process, on the first export, so later exports
take a fraction of a second. The figure exported is the figure shown (same builder, same template; the
dashboard draws charts with theme=None), with a footer saying what it shows and under which rules.
"""
from __future__ import annotations

import datetime as dt
import errno
import io
import json
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from analysis import disclosure, measures, outputs
from analysis.display import plotly_text, spreadsheet_safe

BROWSER_ENV = "BROWSER_PATH"
DEFAULT_BROWSER = "/usr/bin/chromium"
AUDIT_ENV = "RXDASH_AUDIT_LOG"
DEFAULT_AUDIT = Path.home() / ".rxdash" / "audit.jsonl"
FORMATS = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf", "html": "text/html"}
FOOTER_LINE_HEIGHT = 17   # pixels per footer line at font size 11


@dataclass(frozen=True)
class Context:
    """What a chart shows and under which rules: printed under every exported image."""

    title: str
    period: str
    scope: str = "all clinics"
    clinicians: int | None = None
    patients: int | None = None
    thresholds: str = ""
    factor_set: str = "cdc2022"
    exclusions: bool = True
    min_cell: int = 11
    generated: dt.datetime = field(default_factory=lambda: dt.datetime.now().replace(microsecond=0))

    def lines(self) -> list[str]:
        counts = ", ".join(p for p in (
            f"{self.clinicians:,} clinicians" if self.clinicians is not None else "",
            f"{self.patients:,} patients" if self.patients is not None else "") if p)
        return [
            f"{self.title} · {self.period} · {self.scope}" + (f" · {counts}" if counts else ""),
            f"MME factors: {self.factor_set}" + (f" · {self.thresholds}" if self.thresholds else "")
            + f" · exclusions: {'on (' + measures.EXCLUSIONS + ')' if self.exclusions else 'off'}",
            f"Attribution: {measures.ATTRIBUTION_RULE}",
            (f"Counts from 1 to {self.min_cell - 1} are suppressed in exported tables. " if self.min_cell > 1
             else "Small counts are NOT suppressed (internal use). ")
            + f"Generated {self.generated:%Y-%m-%d %H:%M} by the prescribing consistency dashboard.",
        ]


def with_footer(fig: go.Figure, context: Context, width: int = 1200) -> go.Figure:
    """A copy of the figure with the context as a footer below the plot (the figure on screen is untouched).
    The footer's lines carry the title, scope and clinic names as given: plain text, never plotly HTML."""
    out = go.Figure(fig)
    lines = [plotly_text(line) for line in context.lines()]
    height = int(out.layout.height or 450)
    extra = FOOTER_LINE_HEIGHT * (len(lines) + 1) + 20
    bottom = int((out.layout.margin.b if out.layout.margin and out.layout.margin.b is not None else 60))
    out.update_layout(height=height + extra, width=width, margin=dict(b=bottom + extra))
    out.add_annotation(text="<br>".join(_wrap(line, 170) for line in lines), xref="paper", yref="paper",
                       x=0, y=0, yshift=-(bottom + 10), xanchor="left", yanchor="top", showarrow=False,
                       align="left", font=dict(size=11, color="#52606d"))
    return out


def _wrap(text: str, width: int) -> str:
    """Break a long footer line on spaces (plotly annotations do not wrap by themselves)."""
    words, lines, current = text.split(), [], ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    lines.append(current)
    return "<br>".join(lines)


_server_lock = threading.Lock()
_server_started = False


def start_kaleido() -> None:
    """Start this process's kaleido server once (later exports reuse its browser)."""
    global _server_started
    with _server_lock:
        if _server_started:
            return
        os.environ.setdefault(BROWSER_ENV, DEFAULT_BROWSER)
        import kaleido

        # No MathJax: kaleido would fetch it from a CDN for every image (no request may leave the machine),
        # and no chart uses LaTeX (display.plotly_text escapes "$").
        kaleido.start_sync_server(silence_warnings=True, mathjax=False)
        _server_started = True


def image(fig: go.Figure, fmt: str, context: Context) -> bytes:
    """PNG (2x scale), SVG or PDF of the figure with its footer."""
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"unknown image format {fmt!r}")
    start_kaleido()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # "kopts ignored with a server": expected
        return with_footer(fig, context).to_image(format=fmt, scale=2 if fmt == "png" else 1)


def html(fig: go.Figure, context: Context) -> bytes:
    """A self-contained HTML page: plotly.js embedded, so it opens offline; the footer included."""
    return with_footer(fig, context).to_html(include_plotlyjs=True, full_html=True,
                                             config={"displaylogo": False}).encode("utf-8")


def suppressed_csv(table: pd.DataFrame, counts: Sequence[str], derived: Sequence[str] = (), min_cell: int = 11,
                   total_shown: Sequence[str] = (), parts_of: dict[str, str] | None = None) -> bytes:
    """The table as CSV under the disclosure rule (analysis.disclosure.table): every count from 1 to
    min_cell - 1 left blank, the columns that would give it away (shares, shrunken values) blanked on the
    same rows, `withheld_why` saying why; `total_shown` names count columns whose total the chart shows
    (complementary suppression down the column); `parts_of` names counts that are parts of another (events of
    tapers), withheld when the remainder is small. min_cell <= 1 turns this off."""
    return csv_bytes(disclosure.table(table, counts, derived, min_cell, total_shown, parts_of))


def csv_bytes(table: pd.DataFrame) -> bytes:
    """A table as the CSV a user takes away (every CSV the dashboard and `rxdash summarize` write): UTF-8,
    no index, numbers to six significant digits, every text cell a spreadsheet would run as a formula
    neutralised (analysis.display.spreadsheet_safe), and CRLF line ends (RFC 4180): Python's CSV writer
    quotes a cell holding a line-end character only when it is in the line terminator, and an unquoted
    CR inside a name would start a new row (one that could begin with a formula)."""
    buffer = io.StringIO()
    spreadsheet_safe(table).to_csv(buffer, index=False, float_format="%.6g", lineterminator="\r\n")
    return buffer.getvalue().encode("utf-8")


def audit_path() -> Path:
    return Path(os.environ.get(AUDIT_ENV) or DEFAULT_AUDIT)


def audit(what: str, user: str, filters: dict[str, object], path: Path | None = None, role: str = "",
          event: str = "export") -> None:
    """Append one event to the audit log (JSON lines: when, event, user, role, what, filters). The line goes in
    with one write on an append-only descriptor (never split by another process's line) and reaches the disk
    (fsync) before this returns; else what went in of it is cut off again (unless another line followed it)
    and the OSError raised: a full disk leaves no half line that would spoil the log for its readers."""
    target = Path(path or audit_path())
    target.parent.mkdir(parents=True, exist_ok=True)
    entry = {"at": dt.datetime.now().isoformat(timespec="seconds"), "event": event, "user": user, "role": role,
             "what": what,
             "filters": {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in filters.items()}}
    line = (json.dumps(entry, default=str) + "\n").encode("utf-8")
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    written = 0
    try:
        written = os.write(fd, line)
        if written < len(line):   # the disk filled up part-way: the rest would fail, or land after another line
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        os.fsync(fd)
    except OSError:
        end = os.lseek(fd, 0, os.SEEK_CUR)
        if written and os.fstat(fd).st_size == end:
            os.ftruncate(fd, end - written)
        raise
    finally:
        os.close(fd)


UNIT_COLUMNS = ["measure_id", "unit", "unit_label", "clinic_name", "numerator", "denominator", "value",
                "pooled_value", "lower_95", "upper_95", "lower_998", "upper_998", "flag", "shrunk_value",
                "shrunk_lower", "shrunk_upper", "withheld_why"]


def measure_csv(units: pd.DataFrame, measure: measures.Measure, min_cell: int = 11) -> bytes:
    """A measure's units (labelled: unit_label, clinic_name) as CSV under the disclosure rule, as `rxdash
    summarize` writes them (summary.suppress: small numerators, denominators and complements left blank,
    with complementary suppression; flags kept; `withheld_why` per row). Ids never leave: clinicians appear by
    pseudonym. Units allowing for patient mix (they carry `expected`: stats.funnel_ratios) are written with
    value = O/E and their limits around 1, plus expected, adjusted_share and `basis` naming what was allowed
    for."""
    from analysis import summary

    table = units.assign(measure_id=measure.id, unit=measure.unit)
    table = summary.suppress(table, min_cell)
    ratio = "adjusted_share" in table
    table["basis"] = (f"allowing for patient mix ({' '.join(measure.adjust_for)}): value is observed / expected"
                      if ratio else "as observed")
    extra = ["expected", "adjusted_share", "basis"] if ratio else ["basis"]
    return csv_bytes(table[UNIT_COLUMNS + extra].rename(columns={"unit_label": measure.unit, "clinic_name": "clinic"}))


def print_pdf(page: str, out: Path, on_written: Callable[[Path], None] | None = None) -> Path:
    """Print an HTML page to `out` as PDF with headless chromium: printed into memory (pdf_bytes), then written
    whole or not at all (outputs.replacing: temporary file beside `out`, fsynced, checked, renamed;
    `on_written` runs just before the rename). The PDF is written by this process, not by chromium, so a full
    disk is an error with its cause, never a truncated file reported as written."""
    pdf = pdf_bytes(page)
    with outputs.replacing(out, on_written=on_written) as temporary:
        temporary.write_bytes(pdf)
    return out


def pdf_bytes(page: str) -> bytes:
    """An HTML page printed to PDF by headless chromium (print_pdfs), as bytes for a download button or a file."""
    printed: list[bytes] = []
    print_pdfs([page], lambda n, pdf: printed.append(pdf))
    return printed[0]


def print_pdfs(pages: Iterable[str], sink: Callable[[int, bytes], None], timeout: float = 60.0) -> int:
    """Print HTML pages to PDF with one headless chromium (driven over the DevTools protocol by
    choreographer, which kaleido uses too), handing each PDF to `sink(index, pdf)` as it is printed, so
    neither the pages nor the PDFs pile up in memory. Returns the number printed.

    Each page is handed to chromium as the document of a blank tab (Page.setDocumentContent), so nothing is
    written to disk on the way (no page file to fill a disk, no copy of the figures left in a temporary folder),
    and each PDF is checked whole (outputs.check_pdf: its %PDF- start and %%EOF end) before `sink` sees it."""
    import asyncio
    import base64

    import choreographer

    browser_path = os.environ.get(BROWSER_ENV, DEFAULT_BROWSER)
    if not Path(browser_path).exists():
        raise ValueError(f"PDF needs chromium at {browser_path} (apt-get install chromium, or set {BROWSER_ENV})")

    async def run() -> int:
        n = 0
        async with choreographer.Browser(path=browser_path, headless=True) as browser:
            tab = browser.get_tab()
            await tab.send_command("Page.enable")
            loaded = tab.subscribe_once("Page.loadEventFired")
            await tab.send_command("Page.navigate", params={"url": "about:blank"})
            await asyncio.wait_for(loaded, timeout)
            tree = await tab.send_command("Page.getFrameTree")
            frame = tree["result"]["frameTree"]["frame"]["id"]
            for n, page in enumerate(pages, start=1):
                loaded = tab.subscribe_once("Page.loadEventFired")
                done = await tab.send_command("Page.setDocumentContent", params={"frameId": frame, "html": page})
                if "error" in done:
                    raise ValueError(f"chromium could not open page {n}: {done['error']}")
                await asyncio.wait_for(loaded, timeout)
                printed = await tab.send_command("Page.printToPDF", params={"preferCSSPageSize": True,
                                                                             "printBackground": True})
                if "error" in printed:
                    raise ValueError(f"chromium could not print page {n}: {printed['error']}")
                sink(n - 1, outputs.check_pdf(base64.b64decode(printed["result"]["data"]),
                                              f"chromium's PDF of page {n}"))
        return n

    try:
        asyncio.get_running_loop()
    except RuntimeError:   # the usual case: no event loop in this thread
        return asyncio.run(run())
    # Called from code that runs an event loop in this thread (a notebook, playwright's sync API):
    # asyncio.run refuses there, so the browser is driven from a thread of its own.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(asyncio.run, run()).result()


def write_document(page: str, out: Path, on_written: Callable[[Path], None] | None = None) -> Path:
    """A self-contained HTML page written as `out`: .html as it is, .pdf printed by headless chromium; either
    whole or not at all (outputs.replacing; `on_written` runs once the file is complete, before it is renamed)."""
    if out.suffix.lower() == ".html":
        with outputs.replacing(out, on_written=on_written) as temporary:
            temporary.write_text(page, encoding="utf-8")
        return out
    if out.suffix.lower() != ".pdf":
        raise ValueError(f"--out must end in .pdf or .html, not {out.suffix or 'nothing'}")
    return print_pdf(page, out, on_written)
