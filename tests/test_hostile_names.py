"""Names from the data shown as literal text everywhere (issue 18, part 2), and every CSV that leaves
neutralised against spreadsheet formulas.

The data set is the committed sample with its clinics, clinicians' names, specialties, a few clinician
ids and some drug descriptions replaced by the hostile payloads of tests/hostile.py (BEACON_HOST is a
discard port here; the browser test points it at a server that counts requests). Expected escaped
forms are written out below as constants, worked by hand from analysis/display.py's rules.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analysis import charts, db, exports, feedback, ingest, measures, privacy, report, summary
from analysis.display import WORD_JOINER as WJ
from analysis.display import file_part, html_text, md, plotly_text, spreadsheet_safe
from tests.fixtures import HEADERS, PRESCRIPTIONS, write_dataset
from tests.hostile import FORMULA_NAMES, FORMULA_STARTS, HOSTILE_NAMES, MARKUP_NAMES

assert len(HOSTILE_NAMES) == len(MARKUP_NAMES) + len(FORMULA_NAMES) == 13   # the indexes below count on it

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
APP_BEACON = "127.0.0.1:9"          # the discard port: nothing listens, nothing is fetched
PERIOD = (dt.date(2025, 1, 1), dt.date(2025, 12, 31))

# --- What each renderer must receive (worked by hand) ------------------------------------------------
# Markdown: every ASCII punctuation character backslash-escaped; a word joiner (U+2060) between ":" and
# "/", after "www" and after "@" (GFM links bare URLs after escapes are read); whitespace runs to one space.
MD_EXPECTED = {
    "![c](http://BEACON_HOST/beacon.png?clinic)":
        r"\!\[c\]\(http\:" + WJ + r"\/\/BEACON\_HOST\/beacon\.png\?clinic\)",
    "[click me](http://BEACON_HOST/beacon.png?link)":
        r"\[click me\]\(http\:" + WJ + r"\/\/BEACON\_HOST\/beacon\.png\?link\)",
    "<script>alert('x')</script>": r"\<script\>alert\(\'x\'\)\<\/script\>",
    "**bold** _it_ `code` # heading": r"\*\*bold\*\* \_it\_ \`code\` \# heading",
    ":red[coloured] $x^2$ :smile:": r"\:red\[coloured\] \$x\^2\$ \:smile\:",
    "\t=1+1": r"\=1\+1",
    "\r=1+1": r"\=1\+1",
    "two\nlines   and  spaces": "two lines and spaces",
    "mail a@b.org or www.x.org": r"mail a\@" + WJ + r"b\.org or www" + WJ + r"\.x\.org",
    "    indented": "indented",
    "Dr. O'Neil & Partners": r"Dr\. O\'Neil \& Partners",
}
# Plotly: & < > as entities (plotly decodes them once, after reading its tags); $ as &#36; (no LaTeX).
PLOTLY_EXPECTED = {
    "<a href='http://BEACON_HOST/beacon.png?a'>anchor</a>":
        "&lt;a href='http://BEACON_HOST/beacon.png?a'&gt;anchor&lt;/a&gt;",
    "<b>x</b> &amp; $x^2$": "&lt;b&gt;x&lt;/b&gt; &amp;amp; &#36;x^2&#36;",
    "plain name": "plain name",
}
HTML_EXPECTED = {
    "<img src='http://BEACON_HOST/beacon.png?img' onerror='alert(1)'>":
        "&lt;img src=&#x27;http://BEACON_HOST/beacon.png?img&#x27; onerror=&#x27;alert(1)&#x27;&gt;",
    "<script>alert('x')</script>": "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;",
}
# Spreadsheets: a leading quote before = + - @ tab CR; numbers (and text that is a plain number) untouched.
CELL_EXPECTED = {
    '=HYPERLINK("http://BEACON_HOST/x","click")': '\'=HYPERLINK("http://BEACON_HOST/x","click")',
    "+cmd|' /C calc'!A0": "'+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0": "'@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0": "'-2+3+cmd|' /C calc'!A0",
    "\t=1+1": "'\t=1+1",
    "\r=1+1": "'\r=1+1",
    "-2.5": "-2.5",
    "+1e5": "+1e5",
    "North": "North",
    "![c](x)": "![c](x)",
}
# Clinician ids from the data that a spreadsheet would run, or that would climb out of a folder.
HOSTILE_IDS = {"D0001": "../../D0001", "D0002": "=D0002", "D0003": "+D0003", "D0004": "-D0004",
               "D0005": "@D0005", "D0006": "D/0006", "D0007": "D_0006"}
RAW_TAG = re.compile(r"<\s*(a|img|script|iframe|svg|object)\b", re.I)
MD_RAW_TAG = re.compile(r"(?<!\\)<\s*(a|img|script|iframe|svg|object)\b", re.I)   # "\<img" is text


def payloads(beacon_host: str) -> list[str]:
    return [n.replace("BEACON_HOST", beacon_host) for n in HOSTILE_NAMES]


def clinic_name(i: int, beacon_host: str) -> str:
    return payloads(beacon_host)[i]


def clinician_name(i: int, beacon_host: str) -> str:
    """The i-th clinician (0-based): the payloads in order, then again with a number after them."""
    names = payloads(beacon_host)
    return names[i % len(names)] + ("" if i < len(names) else f" {i // len(names) + 1}")


def specialty(i: int, beacon_host: str) -> str:
    names = payloads(beacon_host)
    return names[(i + 7) % len(names)]


def hostile_dataset(folder: Path, beacon_host: str) -> Path:
    """The sample with hostile names: 13 clinics named by the payloads, the 40 clinicians named by them
    (three to a clinic) with payloads as specialties, seven hostile clinician ids, and 26 extra fills
    whose drug description (and for half, ingredient) is a payload."""
    folder.mkdir(parents=True, exist_ok=True)
    names = payloads(beacon_host)

    def read(name: str) -> tuple[list[str], list[list[str]]]:
        with (SAMPLE / f"{name}.csv").open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        return rows[0], rows[1:]

    def write(name: str, header: list[str], rows: list[list[str]]) -> None:
        write_quoted(folder / f"{name}.csv", header, rows)

    write("clinics", ["clinic_id", "clinic_name"], [[f"H{i + 1:02d}", n] for i, n in enumerate(names)])
    header, clinicians = read("clinicians")
    write("clinicians", header, [[HOSTILE_IDS.get(r[0], r[0]), clinician_name(i, beacon_host),
                                  specialty(i, beacon_host), f"H{i % len(names) + 1:02d}"]
                                 for i, r in enumerate(clinicians)])
    header, rx = read("prescriptions")
    rx = [[*r[:2], HOSTILE_IDS.get(r[2], r[2]), *r[3:]] for r in rx]
    patient = rx[0][1]
    for i, n in enumerate(names):   # described by a payload: given fields win over the name
        rx.append([f"RXH{i:03d}", patient, "D0010", "2024-03-01", n, "oxycodone", "5", "MG", "Oral Tablet",
                   "10", "5", "", ""])
        rx.append([f"RXI{i:03d}", patient, "D0010", "2024-03-02", n, n, "5", "MG", "Oral Tablet", "10", "5", "", ""])
    write("prescriptions", header, rx)
    for name in ("patients", "events"):
        shutil.copy(SAMPLE / f"{name}.csv", folder / f"{name}.csv")
    return folder


def write_quoted(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    """A contract CSV file with every field quoted: Python's writer leaves a bare CR unquoted when the line
    terminator is "\n", which would split the "\r=1+1" payload's row in two (tests/fixtures.write_csv does)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_ALL)
        w.writerow(header)
        w.writerows(rows)
    return path


def load_hostile(tmp: Path, beacon_host: str) -> str:
    """The hostile data set loaded into a DuckDB file in `tmp`; its URL."""
    folder = hostile_dataset(tmp / "hostile", beacon_host)
    url = f"duckdb:///{tmp / 'hostile.duckdb'}"
    engine = db.make_engine(url)
    ingest.load_directory(engine, folder, tmp / "rejects.csv", replace=True)
    engine.dispose()
    return url


def strings(obj) -> list[str]:
    """Every string inside a JSON-like structure (a figure, an element tree)."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in strings(v)]
    if isinstance(obj, (list, tuple)):
        return [s for v in obj for s in strings(v)]
    return []


def no_raw_markup(figure: dict) -> None:
    """No string of a figure opens a tag that came from data, and no hovertemplate carries data."""
    found = [s for s in strings(figure) if RAW_TAG.search(s)]
    assert not found, found[:3]
    templates = [t.get("hovertemplate") or "" for t in figure.get("data", [])]
    assert not any("beacon" in t or "cmd|" in t for t in templates), templates


@pytest.fixture(scope="module")
def hostile_url(tmp_path_factory) -> str:
    return load_hostile(tmp_path_factory.mktemp("hostile"), APP_BEACON)


@pytest.fixture(scope="module")
def hostile_engine(hostile_url):
    engine = db.make_engine(hostile_url, read_only=True)
    yield engine
    engine.dispose()


@pytest.fixture
def hostile_env(monkeypatch, hostile_url):
    monkeypatch.setenv("RXDASH_DB_URL", hostile_url)


# --- The display functions ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", MD_EXPECTED.items())
def test_md_makes_data_literal_in_streamlit_markdown(raw, expected):
    assert md(raw) == expected


def test_md_leaves_no_markdown_construct_from_any_payload():
    for raw in payloads(APP_BEACON):
        out = md(raw)
        assert "![" not in out and "](" not in out and "<" not in out.replace("\\<", "")
        assert "://" not in out and "\n" not in out and "\t" not in out and "\r" not in out
        # Unescaping gives the payload back (whitespace made single spaces), invisible joiners aside.
        assert re.sub(r"\\(.)", r"\1", out).replace(WJ, "") == " ".join(raw.split())


@pytest.mark.parametrize("raw, expected", PLOTLY_EXPECTED.items())
def test_plotly_text_escapes_its_html_and_latex(raw, expected):
    assert plotly_text(raw) == expected


@pytest.mark.parametrize("raw, expected", HTML_EXPECTED.items())
def test_html_text_escapes_tags_and_quotes(raw, expected):
    assert html_text(raw) == expected


@pytest.mark.parametrize("raw, expected", CELL_EXPECTED.items())
def test_spreadsheet_safe_neutralises_formula_cells_only(raw, expected):
    assert spreadsheet_safe(raw) == expected


def test_spreadsheet_safe_on_a_frame_leaves_numbers_alone():
    frame = pd.DataFrame({"name": ["=1+1", "North", None], "n": [-3, 0, 7], "share": [-0.25, 0.5, float("nan")],
                          "mixed": [-1, "-1+1", None], "day": [dt.date(2025, 1, 1)] * 3,
                          "kind": pd.Categorical(["@x", "y", "@x"])})
    out = spreadsheet_safe(frame)
    assert out["name"].tolist()[:2] == ["'=1+1", "North"] and out["name"].isna().tolist()[2]
    assert out["n"].tolist() == [-3, 0, 7] and out["n"].dtype == frame["n"].dtype
    assert out["share"].tolist()[:2] == [-0.25, 0.5]
    assert out["mixed"].tolist()[:2] == [-1, "'-1+1"]
    assert out["kind"].tolist() == ["'@x", "y", "'@x"]
    assert frame["name"].tolist()[0] == "=1+1"                # the caller's frame is untouched
    assert list(spreadsheet_safe(pd.DataFrame(columns=["=bad", "ok"])).columns) == ["'=bad", "ok"]
    text = exports.csv_bytes(frame).decode("utf-8")
    assert text.splitlines()[1] == "'=1+1,-3,-0.25,-1,2025-01-01,'@x"


def test_file_part_keeps_names_inside_their_folder_and_apart():
    assert file_part("D0001") == "D0001" and file_part("high_dose_50_funnel") == "high_dose_50_funnel"
    parts = {i: file_part(i) for i in ("../../etc/passwd", "D/0006", "D_0006", "C:\\x", "..", "\x00", "a b")}
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", p) for p in parts.values()), parts
    assert len(set(parts.values())) == len(parts)             # D/0006 and D_0006 stay apart
    assert parts["D_0006"] == "D_0006" and parts["D/0006"].startswith("D_0006-")
    assert feedback._file_name("../../D0001").startswith("letter_D0001-")


# --- Charts ------------------------------------------------------------------------------------------

def _units(names: list[str], clinics: list[str]) -> pd.DataFrame:
    n = len(names)
    return pd.DataFrame({"unit_id": [f"D{i}" for i in range(n)], "unit_label": names,
                         "clinic_name": [clinics[i % len(clinics)] for i in range(n)],
                         "numerator": [i % 5 for i in range(n)], "denominator": [10 + i for i in range(n)],
                         "value": [(i % 5) / (10 + i) for i in range(n)], "shrunk_value": [0.1 + i / 100 for i in range(n)],
                         "shrunk_lower": [0.05] * n, "shrunk_upper": [0.3] * n,
                         "flag": ["high" if i % 4 == 0 else "within" for i in range(n)]})


LINES = pd.DataFrame({"n": [1, 40], "lower_95": [0, 0], "upper_95": [1, 0.4], "lower_998": [0, 0],
                      "upper_998": [1, 0.5]})


def every_chart(names: list[str], clinics: list[str]) -> dict[str, dict]:
    """Every chart builder given hostile labels, names and titles; figure JSON by builder."""
    units = _units(names, clinics)
    funnel = charts.funnel_chart(units, LINES, f"{names[0]}: compared", names[1], 0.2, True, "lower")
    charts.highlight(funnel, 12, 0.3, names[2], True)
    caterpillar = charts.caterpillar_chart(units, names[3], names[4], 0.2, True)
    charts.highlight(caterpillar, 3, 0.3, names[5], True)
    tapers = pd.DataFrame({"clinician_id": names * 2, "category": ["rapid", "gradual"] * len(names),
                           "max_monthly_reduction_pct": [50.0, 5.0] * len(names)})
    rows = pd.DataFrame([{"measure": names[6], "peers": [0.1, 0.2], "own": 0.15, "median": 0.15, "percent": True}])
    segments = pd.DataFrame({"panel": [1, 1], "day_from": [-180, 0], "day_to": [-1, 210], "pct_of_baseline": [100, 50]})
    figures = {
        "funnel": funnel, "caterpillar": caterpillar,
        "funnel_merged": charts.funnel_chart(_units(names * 30, clinics), LINES, "t", "v", 0.2, True, "lower"),
        "clinics": charts.clinic_distribution_chart(units, names[7], "share", 0.2, True),
        "taper_categories": charts.taper_categories_chart(tapers, names[8]),
        "taper_speed": charts.taper_speed_chart(tapers, names[9], 10, 40),
        "peer_strip": charts.peer_strip_chart(rows, f"{names[10]} (diamond) among peers (grey)"),
        "trajectories": charts.trajectories_chart(segments, pd.DataFrame({"panel": [1], "caption": [names[11]]}),
                                                  f"Daily dose around {names[12]}'s tapers"),
        "trend": charts.consistency_trend_chart(pd.DataFrame({"quarter_start": [PERIOD[0]], "p90_p10_ratio": [2.0],
                                                              "phi": [1.1]}), names[0]),
        "outcomes": charts.outcomes_chart(pd.DataFrame({"band": ["rapid"], "tapers": [3], "within_30": [0.1],
                                                        "within_90": [0.2]}), names[1]),
        "rejects": charts.rejects_chart(pd.DataFrame({"table_name": [names[2]], "reason_code": [names[3]],
                                                      "n_rows": [4]})),
        "monthly": charts.monthly_fills_chart(pd.DataFrame({"month": [PERIOD[0]], "patients": [3]}), names[4]),
    }
    context = exports.Context(names[5], "01 Jan 2025 to 31 Dec 2025", scope=f"{clinics[0]}; {names[6].lower()}")
    figures["footer"] = exports.with_footer(funnel, context)
    return {k: json.loads(f.to_json()) for k, f in figures.items()}


def test_every_chart_builder_draws_data_as_plain_text():
    names = payloads(APP_BEACON)
    figures = every_chart(names, names[::-1])
    for key, figure in figures.items():
        no_raw_markup(figure)
        assert not any("$" in s for s in strings(figure["layout"])), key   # no LaTeX from data
    # The escaped forms are what the figures carry (plotly shows them as the characters).
    img, script, anchor = (plotly_text(names[i]) for i in (2, 3, 6))
    assert figures["funnel"]["layout"]["title"]["text"] == plotly_text(names[0]) + ": compared"
    labels = {c[0] for t in figures["funnel"]["data"] if t.get("customdata") for c in t["customdata"]}
    assert {plotly_text(n) for n in names} <= labels
    star = next(t for t in figures["funnel"]["data"] if t.get("mode") == "markers+text")
    assert star["name"] == img and star["text"] == [img] and star["hovertemplate"].startswith("%{text}<br>")
    assert figures["caterpillar"]["layout"]["title"]["text"] == script
    ticks = [t["name"] for t in figures["clinics"]["data"]]
    assert set(ticks) == {plotly_text(n) for n in names}                  # clinic names on the axis
    box = next(t for t in figures["clinics"]["data"] if t["name"] == anchor)
    assert box["hovertemplate"].endswith("<extra>%{customdata[1]}</extra>") and box["customdata"][0][1] == anchor
    assert set(figures["taper_categories"]["data"][0]["x"]) == {plotly_text(n) for n in names}
    assert figures["trajectories"]["layout"]["annotations"][0]["text"] == plotly_text(names[11])
    footer = figures["footer"]["layout"]["annotations"][-1]["text"]
    # The footer's title and scope (clinic "\r=1+1"; specialty <a href=...>), wrapped on whitespace.
    assert footer.startswith(plotly_text(names[5]) + " · ") and f"· =1+1; {plotly_text(names[6])}" in footer
    assert "\\:red[coloured]" not in footer and ":red[coloured] &#36;x^2&#36; :smile:" in footer


def test_chart_exports_html_carries_no_tag_from_data():
    names = payloads(APP_BEACON)
    fig = charts.funnel_chart(_units(names, names), LINES, names[3], "share", 0.2, True, "lower")
    page = exports.html(fig, exports.Context(names[2], "2025", scope=names[6])).decode("utf-8")
    # (plotly.js itself holds an <a href=...> of its own, so the payloads are looked for, not any tag.)
    assert names[2] not in page and names[3] not in page and names[6] not in page
    assert "&lt;script&gt;alert('x')&lt;\\u002fscript&gt;" in page       # plotly's JSON writes / as \\u002f


# --- CSV exports -------------------------------------------------------------------------------------

def csv_cells(data: bytes | str) -> list[list[str]]:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_no_formula_cells(rows: list[list[str]]) -> None:
    """Every cell a spreadsheet would read as a formula is neutralised; what starts with - or + is a number."""
    for row in rows:
        for cell in row:
            if cell.startswith(FORMULA_STARTS):
                float(cell)      # raises for anything but a plain number


def test_the_data_behind_charts_csvs_are_neutralised_and_keep_their_numbers():
    names = payloads(APP_BEACON)
    units = _units(names, names[::-1]).assign(unit_id=[f"D{i}" for i in range(len(names))],
                                              clinic_id="H01", pooled_value=0.2, lower_95=-0.01, upper_95=0.4,
                                              lower_998=-0.02, upper_998=0.5)
    m = measures.BY_ID["high_dose_90"]
    rows = csv_cells(exports.measure_csv(units, m, min_cell=0))
    assert_no_formula_cells(rows)
    header, body = rows[0], rows[1:]
    by_name = {r[header.index("clinician")]: r for r in body}
    assert set(by_name) == {spreadsheet_safe(n) for n in names}
    assert "'=HYPERLINK(\"http://127.0.0.1:9/x\",\"click\")" in by_name and "'\t=1+1" in by_name
    first = by_name[spreadsheet_safe(names[0])]
    assert first[header.index("lower_95")] == "-0.01" and first[header.index("denominator")] == "10"
    counts = pd.DataFrame({"clinician": names, "category": "rapid", "tapers": range(len(names)),
                           "change": [-5] * len(names)})
    rows = csv_cells(exports.suppressed_csv(counts, counts=["tapers"]))
    assert_no_formula_cells(rows)
    assert [r[0] for r in rows[1:]] == [spreadsheet_safe(n) for n in names]
    assert {r[3] for r in rows[1:]} == {"-5"}                                     # numbers unchanged
    assert [r[2] for r in rows[1:11]] == ["0", "", "", "", "", "", "", "", "", ""]   # 1-10 suppressed


def test_summarize_files_are_neutralised_on_both_databases(engine, tmp_path):
    names = payloads(APP_BEACON)
    clinics = [["C1", names[7]], ["C2", names[8]]]
    clinicians = [["=D1", names[9], names[10], "C1"], ["-D2", names[11], names[12], "C2"]]
    rx = [[r[0], r[1], {"D1": "=D1", "D2": "-D2"}[r[2]], *r[3:]] for r in PRESCRIPTIONS]
    folder = write_dataset(tmp_path / "d", prescriptions=rx)
    write_quoted(folder / "clinics.csv", HEADERS["clinics"], clinics)
    write_quoted(folder / "clinicians.csv", HEADERS["clinicians"], clinicians)
    ingest.load_directory(engine, folder, tmp_path / "rejects.csv", as_of=dt.date(2026, 1, 1))
    with engine.connect() as conn:
        stored = db.read_frame(conn, "clinician_names")
    assert set(stored["clinician_name"]) == {names[9], names[11]}                   # stored as given
    s = summary.Settings(dt.date(2025, 1, 1), dt.date(2025, 6, 30), min_cell=0)
    summary.write_summary(engine, s, tmp_path / "out")
    measures_csv = csv_cells((tmp_path / "out" / "clinician_measures.csv").read_text(encoding="utf-8"))
    assert_no_formula_cells(measures_csv)
    ids = {r[measures_csv[0].index("clinician_id")] for r in measures_csv[1:]}
    assert ids & {"'=D1", "'-D2"} and not ids & {"=D1", "-D2"}
    for name in ("tapers", "consistency"):
        assert_no_formula_cells(csv_cells((tmp_path / "out" / f"{name}.csv").read_text(encoding="utf-8")))


def test_summarize_on_the_hostile_sample_keeps_every_number(hostile_engine, tmp_path):
    s = summary.Settings(*PERIOD)
    counts = summary.write_summary(hostile_engine, s, tmp_path)
    written = {n: csv_cells((tmp_path / f"{n}.csv").read_text(encoding="utf-8")) for n in counts}
    for rows in written.values():
        assert_no_formula_cells(rows)
    ids = {r[written["clinician_measures"][0].index("clinician_id")] for r in written["clinician_measures"][1:]}
    assert {"'=D0002", "'+D0003", "'-D0004", "'@D0005"} <= ids and "../../D0001" in ids
    # The numbers read back equal the table's (six significant digits), negative or not.
    with hostile_engine.connect() as conn:
        table = summary.suppress(summary.measure_table(conn, s), s.min_cell)
    back = pd.read_csv(tmp_path / "clinician_measures.csv")
    for col in ("denominator", "value", "lower_95", "upper_998", "shrunk_value", "phi", "tau2"):
        assert np.allclose(back[col].astype(float), pd.to_numeric(table[col]).astype(float), rtol=1e-5,
                           equal_nan=True), col
    assert (back["lower_95"] < 0).sum() == (pd.to_numeric(table["lower_95"]) < 0).sum()


# --- Documents ---------------------------------------------------------------------------------------

def test_report_pack_shows_clinic_names_escaped(hostile_engine, tmp_path):
    names = payloads(APP_BEACON)
    s = summary.Settings(*PERIOD)
    out = report.write(hostile_engine, s, tmp_path / "pack.html", clinics=("H03", "H04", "H05"))
    page = out.read_text(encoding="utf-8")
    scope = ", ".join(names[2:5])
    assert html_text(scope) in page            # the cover names the clinics, escaped
    assert names[2] not in page and names[3] not in page                    # the raw <img ...> and <script>
    assert "<script" not in page and "<img" not in page and "<a " not in page and "onerror='alert" not in page


def test_letters_name_the_clinician_escaped(hostile_engine):
    names = payloads(APP_BEACON)
    s = summary.Settings(*PERIOD)
    with hostile_engine.connect() as conn:
        peers = feedback.compare_all(conn, s, ("H01", "H02", "H03", "H04", "H05", "H06", "H07"))
    best = peers.benchmarks()
    for clinician_id in feedback.clinicians_with_patients(peers):
        name = peers.names[clinician_id]
        page = feedback.page(feedback.letter(peers, clinician_id, s.min_cell, best), s, peers.scope, s.min_cell)
        assert f"For {html_text(name)} · " in page and f"<title>Prescribing feedback: {html_text(name)}</title>" in page
        assert "<script" not in page and "<img" not in page and "<a " not in page
    assert html_text(", ".join(names[:7])) in page                     # peers: clinicians of <the clinics>


def test_all_letters_zip_has_safe_distinct_entry_names(hostile_url, tmp_path):
    engine = db.make_engine(hostile_url, read_only=True)
    try:
        n = feedback.write_all(engine, summary.Settings(*PERIOD), tmp_path / "letters.zip", clinics=("H01", "H06",
                                                                                                    "H07", "H08"))
    finally:
        engine.dispose()
    with zipfile.ZipFile(tmp_path / "letters.zip") as z:
        entries = z.namelist()
    assert len(entries) == n == len(set(entries)) and n > 0
    assert all(re.fullmatch(r"letter_[A-Za-z0-9_-]+\.pdf", e) for e in entries), entries
    # D0001 is "../../D0001", D0006 "D/0006" and D0007 "D_0006": inside the zip's root, apart.
    assert f"letter_{file_part('../../D0001')}.pdf" in entries
    assert {f"letter_{file_part('D/0006')}.pdf", "letter_D_0006.pdf"} <= set(entries)


# --- The dashboard in AppTest, as a leader (names) and a committee member (pseudonyms) ----------------

from tests.test_access import page as signed_page  # noqa: E402

LEADER, COMMITTEE = ("lead@example.org", []), ("q@example.org", ["quality"])


def markdown_values(at: AppTest) -> list[str]:
    """The Markdown source of every element that renders Markdown, in the main area and the sidebar."""
    out = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "header", "subheader"):
        out += [e.value for e in getattr(at, kind)]
    return out


def assert_markdown_literal(at: AppTest) -> None:
    for value in markdown_values(at):
        assert "![" not in value and "](http" not in value, value
        assert not MD_RAW_TAG.search(value), value
        assert "://" not in value, value          # a bare URL would become a link


def figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def opened(name: str, who: tuple[str, list[str]], query: dict | None = None) -> AppTest:
    at = signed_page(name, *who, {"start": "2025-01-01", "end": "2025-12-31", **(query or {})})
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert_markdown_literal(at)
    for figure in figures(at):
        no_raw_markup(figure)
    return at


def leader_names() -> dict[str, str]:
    """clinician id -> name as a leader sees it (the data's own names)."""
    return {HOSTILE_IDS.get(f"D{i + 1:04d}", f"D{i + 1:04d}"): clinician_name(i, APP_BEACON) for i in range(40)}


def test_overview_caption_names_the_chosen_clinics_literally(hostile_env):
    names = payloads(APP_BEACON)
    for who in (LEADER, COMMITTEE):
        at = opened("overview", who, {"clinic": ["H01", "H03"]})
        caption = next(c.value for c in at.caption if c.value.startswith("How consistently"))
        assert caption.endswith(f"01 Jan 2025 to 31 Dec 2025, {md(names[0] + ', ' + names[2])}.")
        assert md(names[0]) == (r"\!\[c\]\(http\:" + WJ + r"\/\/127\.0\.0\.1\:9\/beacon\.png\?clinic\)")
        assert at.sidebar.multiselect(key="f_clinics").value == ["H01", "H03"]


def test_variation_allowing_for_patient_mix_shows_names_literally(hostile_env):
    names = payloads(APP_BEACON)
    at = opened("variation", LEADER, {"measure": "benzo_overlap", "basis": "adjusted",
                                      "specialty": [names[7], names[8]]})
    assert not at.exception
    assert any(c.value.startswith("**Allowing for patient mix**") for c in at.caption)
    specs = figures(at)
    labels = {c[0] for t in specs[0]["data"] if t.get("customdata") for c in t["customdata"]}
    assert labels and labels <= {plotly_text(n) for n in leader_names().values()}
    for figure in specs:
        no_raw_markup(figure)


@pytest.mark.parametrize("view", ["Ranked, allowing for chance", "By clinic", "Are we converging?", "Over time",
                                  "The numbers"])
def test_variation_shows_names_literally_in_every_tab(hostile_env, view):
    names = payloads(APP_BEACON)
    at = opened("variation", LEADER, {"measure": "high_dose_90", "view": view,
                                      "specialty": [names[7], names[8]]})
    options = at.selectbox(key="highlight").options
    assert set(options[1:]) <= set(leader_names().values()) and len(options) > 1   # the raw names, as text
    limits = next(c.value for c in at.caption if c.value.startswith("Limits:"))
    assert f"selected ({md('all clinics; ' + names[7].lower() + ', ' + names[8].lower())})" in limits
    specs = figures(at)
    labels = {c[0] for t in specs[0]["data"] if t.get("customdata") for c in t["customdata"]}
    assert labels and labels <= {plotly_text(n) for n in leader_names().values()}
    if view == "By clinic":
        ticks = {t["name"] for t in specs[1]["data"]}
        assert ticks and ticks <= {plotly_text(n) for n in names}
    if view == "The numbers":
        table = at.dataframe[0].value
        assert set(table["unit_label"]) <= set(leader_names().values())          # a grid cell is text
    # Highlighting a hostile name marks it, as text, on the funnel and on the chart of the open tab (the
    # ranked one or the clinics'; the variation index by quarter draws no unit).
    pick = options[1]
    at.selectbox(key="highlight").set_value(pick).run()
    assert not at.exception
    stars = [t for f in figures(at)[:2] for t in f["data"] if t.get("mode") == "markers+text"]
    assert [t["name"] for t in stars] == [plotly_text(pick)] * (2 if view in ("Ranked, allowing for chance", "By clinic")
                                                                else 1)
    if view == "Over time":   # the highlighted clinician's own line on the decile chart, named as text
        drawn = plotly_text(pick) in {t.get("name") for t in figures(at)[1]["data"]}
        assert drawn or any(c.value.startswith("Each line is a centile") and f"{md(pick)}'s own value" in c.value
                            for c in at.caption)
    for figure in figures(at):
        no_raw_markup(figure)


def test_variation_as_committee_shows_pseudonyms_and_clinic_names_literally(hostile_env):
    at = opened("variation", COMMITTEE, {"measure": "multiple_prescribers"})   # compared between clinics
    labels = {c[0] for t in figures(at)[0]["data"] if t.get("customdata") for c in t["customdata"]}
    assert labels and labels <= {plotly_text(n) for n in payloads(APP_BEACON)}
    at = opened("variation", COMMITTEE, {"measure": "high_dose_90"})
    options = at.selectbox(key="highlight").options[1:]
    assert options and all(o.startswith("Clinician ") for o in options)


@pytest.mark.parametrize("panel", ["By clinician", "Daily dose around tapers", "What followed"])
def test_tapers_pages_draw_names_literally(hostile_env, panel):
    at = opened("tapers", LEADER, {"panel": panel})
    if panel == "By clinician":
        bars = figures(at)[1]["data"][0]["x"]
        assert bars and set(bars) <= {plotly_text(n) for n in leader_names().values()}
    opened("tapers", COMMITTEE, {"panel": panel})


def test_profile_heading_names_a_hostile_clinician_literally(hostile_env):
    codes = {i: p.split()[-1] for i, p in privacy.pseudonyms(list(leader_names()), privacy.pseudonym_secret()).items()}
    for clinician_id in ("+D0003", "=D0002", "D0008", "D0012"):   # <img ...>, [link](...), =HYPERLINK, tab
        name = leader_names()[clinician_id]
        at = opened("profile", LEADER, {"clinician": codes[clinician_id]})
        heading = at.markdown[0].value
        assert heading.startswith(f"#### {md(name)}: your prescribing beside your peers, 01 Jan 2025 to 31 Dec 2025")
        assert at.selectbox(key="clinician").value == codes[clinician_id]
        titles = [f["layout"]["title"]["text"] for f in figures(at)]
        assert any(t.startswith(plotly_text(name)) for t in titles), titles
    assert md(leader_names()["+D0003"]) == (r"\<img src\=\'http\:" + WJ + r"\/\/127\.0\.0\.1\:9\/beacon\.png\?img\' "
                                          r"onerror\=\'alert\(1\)\'\>")


def test_data_quality_and_methods_show_data_literally(hostile_env):
    at = opened("data-quality", LEADER)                # the lead is also an admin (tests/test_access.py)
    drugs = next(d.value for d in at.dataframe if "drug_name" in d.value.columns and "drug_class" in d.value.columns)
    assert set(payloads(APP_BEACON)) <= set(drugs["drug_name"])            # shown as grid text
    at = opened("methods", LEADER, {"clinic": "H05", "specialty": payloads(APP_BEACON)[5]})
    caption = next(c.value for c in at.caption if c.value.startswith("Period"))
    scope = f"{payloads(APP_BEACON)[4]}; {payloads(APP_BEACON)[5].lower()}"
    assert caption.startswith(f"Period 01 Jan 2025 to 31 Dec 2025; {md(scope)}; high-dose")
