"""Chart files and tables as exported (analysis.exports): real kaleido driving Debian's chromium."""
from __future__ import annotations

import json
import re
import struct

import pandas as pd
import plotly.graph_objects as go
import pytest

from analysis import charts, exports

CONTEXT = exports.Context("Long-term patients at 90 MME a day or more", "01 Jan 2025 to 31 Dec 2025",
                          clinicians=40, patients=529, thresholds="thresholds 50/90 MME a day")


@pytest.fixture(scope="module")
def fig() -> go.Figure:
    monthly = pd.DataFrame({"month": pd.date_range("2025-01-01", periods=12, freq="MS"), "patients": range(100, 112)})
    return charts.monthly_fills_chart(monthly, "01 Jan 2025 to 31 Dec 2025")


def test_png_at_twice_the_size_with_its_footer(fig):
    png = exports.image(fig, "png", CONTEXT)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    footer = exports.FOOTER_LINE_HEIGHT * (len(CONTEXT.lines()) + 1) + 20
    assert (width, height) == (2 * 1200, 2 * (450 + footer))     # 2x scale of the figure and its footer


def test_svg_and_pdf_carry_the_footer(fig):
    svg = exports.image(fig, "svg", CONTEXT).decode("utf-8")
    assert svg.startswith("<svg") and "Attribution: Each patient belongs" in svg
    assert "40 clinicians, 529 patients" in svg and "Counts from 1 to 10 are suppressed" in svg
    pdf = exports.image(fig, "pdf", CONTEXT)
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1        # one page


def test_html_is_self_contained(fig):
    page = exports.html(fig, CONTEXT).decode("utf-8")
    assert "plotly.js" in page and len(page) > 1_000_000             # the library itself is inside
    assert not re.search(r"<script[^>]+src=[\"']https?:", page)      # no script fetched from the network
    assert "Attribution: Each patient belongs" in page


def test_exporting_leaves_the_screen_figure_as_it_was(fig):
    before = fig.to_json()
    exports.with_footer(fig, CONTEXT)
    assert fig.to_json() == before


def test_small_counts_are_banded_in_the_csv_with_what_gives_them_away_and_why():
    table = pd.DataFrame({"month": ["2025-01", "2025-02", "2025-03"], "patients": [120, 7, 0],
                          "share": [0.5, 0.03, 0.0]})
    got = pd.read_csv(pd.io.common.BytesIO(exports.suppressed_csv(table, ["patients"], ["share"])),
                      keep_default_na=False)
    assert got["patients"].tolist() == ["120", "", "0"]
    assert got["share"].tolist() == ["0.5", "", "0"]
    assert got["withheld_why"].tolist() == ["", "patients from 1 to 10; share withheld with it", ""]
    raw = pd.read_csv(pd.io.common.BytesIO(exports.suppressed_csv(table, ["patients"], ["share"], min_cell=0)))
    assert raw["patients"].tolist() == [120, 7, 0]


def test_every_export_is_audited(tmp_path):
    log = tmp_path / "audit.jsonl"
    exports.audit("funnel.png", "local", {"start": "2025-01-01", "clinic": ["C01"]}, path=log)
    exports.audit("funnel.csv", "local", {"start": "2025-01-01"}, path=log)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["what"] for e in entries] == ["funnel.png", "funnel.csv"]
    assert entries[0]["filters"]["clinic"] == ["C01"] and entries[0]["user"] == "local"


def test_an_audit_entry_that_does_not_fit_leaves_no_half_line(tmp_path):
    import resource
    import signal
    import subprocess
    import sys

    log = tmp_path / "audit.jsonl"
    exports.audit("funnel.png", "local", {"start": "2025-01-01"}, path=log)
    before = log.read_bytes()

    def room_for_half_a_line() -> None:   # as a disk that fills up part-way through the next entry
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 60, resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    code = ("import sys; from pathlib import Path; from analysis import exports\n"
            "try:\n    exports.audit('funnel.csv', 'local', {'start': '2025-01-01'}, path=Path(sys.argv[1]))\n"
            "except OSError as e:\n    print(e.strerror); sys.exit(1)")
    result = subprocess.run([sys.executable, "-c", code, str(log)], preexec_fn=room_for_half_a_line,
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (1, "No space left on device\n"), result.stderr
    assert log.read_bytes() == before                       # cut back: no half line for the log's readers
    exports.audit("funnel.csv", "local", {"start": "2025-01-01"}, path=log)
    assert [json.loads(line)["what"] for line in log.read_text().splitlines()] == ["funnel.png", "funnel.csv"]


def test_measure_csv_suppresses_like_summarize_and_shows_no_ids():
    from analysis import measures

    units = pd.DataFrame({
        "unit_id": ["D1", "D2", "D3"], "unit_label": ["Clinician AAAAA", "Clinician BBBBB", "Clinician CCCCC"],
        "clinic_id": ["C1", "C1", "C2"], "clinic_name": ["North", "North", "South"],
        "numerator": [30, 4, 25], "denominator": [100, 50, 90], "value": [0.3, 0.08, 0.28],
        "pooled_value": 0.246, "lower_95": 0.1, "upper_95": 0.4, "lower_998": 0.05, "upper_998": 0.45,
        "flag": "within", "shrunk_value": [0.29, 0.1, 0.27], "shrunk_lower": 0.1, "shrunk_upper": 0.4})
    text = exports.measure_csv(units, measures.BY_ID["high_dose_90"]).decode("utf-8")
    got = pd.read_csv(pd.io.common.BytesIO(text.encode()))
    # D2's numerator 4 is small: banded, its value and shrunken value blank; as the only hidden row, the
    # next smallest numerator (D3, 25) is withheld too, so the pooled rate cannot give 4 back. Flags stay.
    assert got["flag"].tolist() == ["within", "within", "within"]
    assert got["numerator"].isna().tolist() == [False, True, True] and got["value"].isna().tolist() == [False, True, True]
    assert got["withheld_why"].fillna("").str.len().gt(0).tolist() == [False, True, True]
    assert "D1" not in text and "C1" not in text and got["clinician"][0] == "Clinician AAAAA"
    assert not any(1 <= v <= 10 for v in pd.to_numeric(got["numerator"], errors="coerce").dropna())
