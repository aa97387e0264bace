"""Every page in degenerate states, in a real browser (issue 15, section 2 "Done when"): screenshots saved as
test-artifacts/degenerate-<page>-<state>.png, and what must hold on any data checked on each.

States: on the sample, by link filters, a one-week period, a one-month period, a selection that leaves one
clinician (Northgate Health Centre's pain medicine: Clinician 355OZ alone) and a month without tapers
(August 2023); and a tiny database built here through the real loader (tests/browser/degenerate_db.py: one
clinic, two clinicians, four patients, counts of 1 to 4, equal shares).

On every page: no exception; on every chart axis no tick label repeated, no time of day in a date label, no
decimal or negative tick on a count axis (patients, tapers, clinicians, rank), no share tick outside 0-100%;
no chart drawn with no point in it (a chart that cannot be drawn is replaced by a plain sentence); no chart
title cut off, and no text of a chart (title, legend, axis titles, annotations, tick labels) over another.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.conftest import _free_port, screenshot, server_env, start_server, stop_server
from tests.browser.test_pages import wait_for_app

pytestmark = pytest.mark.browser

# One week, one month, one clinician, no tapers: the link's filters (dashboard/filters.py `_to_url`).
SAMPLE_STATES = {
    "one-week": "start=2025-03-03&end=2025-03-09",
    "one-month": "start=2025-03-01&end=2025-03-31",
    "one-clinician": "start=2025-01-01&end=2025-12-31&clinic=C02&specialty=Pain+medicine",
    "no-tapers": "start=2023-08-01&end=2023-08-31",
}
PROFILED = {"sample": "D0002", "tiny": "D1"}    # the clinician whose profile is opened (D0002: the one left)

# page name in the screenshot, path with the page's own choice (a tab is opened by its link, filters.tabs)
PAGES = {
    "overview": "/",
    "variation-ranked": "/variation",
    "variation-by-clinic": "/variation?view=By+clinic",
    "variation-converging": "/variation?view=Are+we+converging%3F",
    "variation-numbers": "/variation?view=The+numbers",
    "tapers-by-clinician": "/tapers",
    "tapers-dose-around": "/tapers?panel=Daily+dose+around+tapers",
    "tapers-what-followed": "/tapers?panel=What+followed",
    "profile": "/profile",
    "data-quality": "/data-quality",
    "methods": "/methods",
}
# What each page shows once its script has run: the title, then (below) charts finish drawing.
TITLES = {"overview": "Prescribing consistency", "variation": "Clinician variation", "tapers": "Tapers",
          "profile": "Clinician profile", "data-quality": "Data quality", "methods": "Methods"}

# Axis titles that count whole things: their ticks must be whole numbers.
COUNT_AXIS = re.compile(r"\b(patients?|tapers?|discontinuations?|clinicians?|rows?|count|number|rank|events?|"
                        r"fills?|prescriptions?)\b", re.I)
NOT_COUNT = re.compile(r"share|%|per ?cent|mme|dose|ratio|days", re.I)
TIME_OF_DAY = re.compile(r"\b\d{1,2}:\d{2}\b")
NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")

# Per chart: its title, and per axis (each subplot's own x and y tick layer) the title, the axis type and the
# tick texts read from the SVG (a label broken over lines is joined with a space); the number of data points.
READ_CHARTS = r"""() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => {
  const layout = gd._fullLayout || {};
  const text = t => { const lines = t.querySelectorAll('tspan.line');
                      return (lines.length ? [...lines].map(l => l.textContent).join(' ') : t.textContent).trim(); };
  const axes = [];
  for (const sub of gd.querySelectorAll('.cartesianlayer g.subplot')) {
    const id = (sub.getAttribute('class').match(/subplot\s+(x\d*)(y\d*)/) || []).slice(1);
    for (const [letter, name] of [['x', id[0]], ['y', id[1]]]) {
      if (!name) continue;
      const ax = layout[letter + 'axis' + name.slice(1)] || {};
      const ticks = [...sub.querySelectorAll(`:scope > .${letter}axislayer-above .${letter}tick text`)].map(text)
                    .filter(t => t !== '');
      if (ticks.length) axes.push({axis: name, title: (ax.title || {}).text || '', type: ax.type || '', ticks});
    }
  }
  // Points actually drawn: a calculated point with both coordinates, a bar's size or a box's median (a line
  // of missing values draws nothing).
  const finite = v => typeof v === 'number' && isFinite(v);
  const points = (gd.calcdata || []).reduce((n, cd) => n + cd.filter(p => p && ((finite(p.x) && finite(p.y))
                                                      || finite(p.s) || finite(p.v) || finite(p.med))).length, 0);
  // Text that must not overlap other text: the chart title, the legend, axis titles, annotations (subplot
  // titles, band labels) and tick labels; each with its box on the screen.
  const items = [];
  const add = (kind, el, label, axis) => { const r = el.getBoundingClientRect();
    const rotated = /rotate\(\s*-?[1-9]/.test(el.getAttribute('transform') || '');
    if (r.width > 0 && r.height > 0) items.push({kind, label: label.slice(0, 40), axis, r, rotated}); };
  const box = gd.getBoundingClientRect();
  const title = gd.querySelector('.infolayer .gtitle');
  if (title) add('title', title, title.textContent.trim(), '');
  for (const t of gd.querySelectorAll('.infolayer .legend text.legendtext')) add('legend', t, text(t), '');
  for (const t of gd.querySelectorAll('.infolayer g[class^="g-"][class$="title"]:not(.g-gtitle) text'))
    add('axis title', t, t.textContent.trim(), '');
  for (const t of gd.querySelectorAll('.annotation-text-g text')) add('annotation', t, text(t), '');
  for (const sub of gd.querySelectorAll('.cartesianlayer g.subplot')) {
    const id = (sub.getAttribute('class').match(/subplot\s+(x\d*)(y\d*)/) || []).slice(1);
    for (const [letter, name] of [['x', id[0]], ['y', id[1]]])
      for (const t of sub.querySelectorAll(`:scope > .${letter}axislayer-above .${letter}tick text`))
        if (text(t)) add('tick', t, text(t), name);
  }
  const overlaps = [];
  const hit = (a, b) => a.r.left < b.r.right - 2 && b.r.left < a.r.right - 2 && a.r.top < b.r.bottom - 2
                        && b.r.top < a.r.bottom - 2;
  for (let i = 0; i < items.length; i++) for (let j = i + 1; j < items.length; j++) {
    const [a, b] = [items[i], items[j]];
    // Two axes meet at a corner; slanted labels' boxes overlap where their letters do not.
    if (a.kind === 'tick' && b.kind === 'tick' && (a.axis !== b.axis || a.rotated || b.rotated)) continue;
    if (hit(a, b)) overlaps.push(`${a.kind} '${a.label}' overlaps ${b.kind} '${b.label}'`);
  }
  const clipped = title && (title.getBoundingClientRect().right > box.right + 1
                            || title.getBoundingClientRect().left < box.left - 1);
  return {title: ((layout.title || {}).text || '').replace(/<[^>]+>/g, ''), axes, points,
          overlaps: overlaps.slice(0, 6), clipped};
})"""


def open_page(page, base: str, path: str, query: str) -> None:
    """Open path with the state's filters and wait until the script has run and every chart is drawn."""
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(base + path + ("&" if "?" in path else "?") + query)
    wait_for_app(page)
    root = path.strip("/").split("?")[0] or "overview"
    page.get_by_role("heading", name=TITLES[root]).first.wait_for(timeout=60_000)
    wait_for_app(page)
    # Streamlit sends the page in pieces and draws each plotly chart after the run ends (a skeleton stands
    # in until plotly has loaded): wait until the script has run (stApp's script state), no skeleton is
    # left, every chart element holds a drawn plot, and the page has not changed for 0.6 s.
    page.wait_for_function(SETTLED, timeout=60_000, polling=200)


SETTLED = """() => {
  const main = document.querySelector('[data-testid=stMain]');
  const charts = [...document.querySelectorAll('[data-testid=stPlotlyChart]')];
  const drawn = charts.every(c => c.querySelector('.js-plotly-plot .main-svg'));
  const app = document.querySelector('[data-testid=stApp]');
  const busy = !main || !app || app.getAttribute('data-test-script-state') !== 'notRunning'
               || document.querySelector('[data-testid=stStatusWidget]')
               || main.querySelector('[data-testid=stSkeleton]');   // a chart still loading
  const sig = [main ? main.querySelectorAll('*').length : 0, main ? main.innerText.length : 0,
               document.querySelectorAll('.js-plotly-plot .xtick, .js-plotly-plot .ytick').length].join('/');
  const now = Date.now();
  if (busy || !drawn || sig !== window.__rxSig) { window.__rxSig = sig; window.__rxSince = now; return false; }
  return now - window.__rxSince >= 600;
}"""


def problems(page) -> list[str]:
    """What is wrong on the page as drawn: one line per broken rule, naming the chart and axis."""
    found = []
    for shown in page.locator("[data-testid=stException]").all():
        found.append("an exception is shown: " + " ".join(shown.inner_text().split())[:300])
    if "Traceback (most recent call last)" in page.locator("[data-testid=stMain]").inner_text():
        found.append("a traceback is shown")
    for chart in page.evaluate(READ_CHARTS):
        name = chart["title"][:60] or "(untitled chart)"
        if chart["points"] == 0:
            found.append(f"{name}: a chart with no point drawn (say in words why it cannot be drawn)")
        if chart["clipped"]:
            found.append(f"{name}: the chart's title is cut off (wider than the chart)")
        found += [f"{name}: {overlap}" for overlap in chart["overlaps"]]
        for ax in chart["axes"]:
            where, ticks = f"{name} / {ax['axis']} '{ax['title']}'", ax["ticks"]
            repeated = sorted({t for t in ticks if ticks.count(t) > 1})
            if repeated:
                found.append(f"{where}: tick labels repeated {repeated} in {ticks}")
            if any(TIME_OF_DAY.search(t) for t in ticks):
                found.append(f"{where}: time of day in date ticks {ticks}")
            numbers = [t.replace("\u2212", "-").replace(",", "") for t in ticks]
            if COUNT_AXIS.search(ax["title"]) and not NOT_COUNT.search(ax["title"]):
                if any(NUMBER.match(t) and "." in t for t in numbers):
                    found.append(f"{where}: decimal ticks on a count axis {ticks}")
                if any(NUMBER.match(t) and float(t) < 0 for t in numbers):
                    found.append(f"{where}: negative ticks on a count axis {ticks}")
            if re.search(r"share", ax["title"], re.I):
                shares = [float(t[:-1]) for t in numbers if t.endswith("%") and NUMBER.match(t[:-1])]
                if any(s < 0 or s > 100 for s in shares):
                    found.append(f"{where}: share ticks outside 0-100% {ticks}")
    return found


def shoot(page, name: str) -> None:
    """Screenshot the whole page: the viewport made as tall as the content (Streamlit scrolls inside)."""
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                           "[data-testid=stAppViewContainer], section.main')].map(e => e.scrollHeight), 800)")
    page.set_viewport_size({"width": 1280, "height": min(int(height) + 40, 8000)})
    page.wait_for_timeout(400)
    screenshot(page, name)


def code_of(clinician_id: str) -> str:
    """The pseudonym code in a profile link (the run's secret: tests/conftest.py)."""
    from analysis import privacy

    return privacy.pseudonyms([clinician_id], privacy.pseudonym_secret())[clinician_id].split(" ", 1)[1]


def visit(page, base: str, db_name: str, page_name: str, state: str, query: str,
          log: Path | None) -> tuple[str, list[str]]:
    """Open one page in one state and screenshot it: (the page's main text, the problems found on it). An
    exception's own message is taken from the server's log (the page shows it redacted)."""
    path = PAGES[page_name]
    if page_name == "profile":
        query += f"&clinician={code_of(PROFILED[db_name])}"
    seen = log.stat().st_size if log and log.exists() else 0
    open_page(page, base, path, query)
    text = page.locator("[data-testid=stMain]").inner_text()
    found = problems(page)
    if log and log.exists():
        with log.open(errors="replace") as f:
            f.seek(seen)
            found += [f"server log: {line.strip()}" for line in f if re.match(r"^\w+(Error|Exception)\b", line)]
    shoot(page, f"degenerate-{page_name}-{state}")
    return text, found


def verdict(found: list[str], page_name: str, state: str) -> None:
    """Fail with every problem of the page at once, named by its screenshot."""
    assert not found, f"test-artifacts/degenerate-{page_name}-{state}.png:\n  " + "\n  ".join(found)


@pytest.fixture(scope="module")
def tab(browser):
    """One browser tab for the whole file: plotly's script is fetched and compiled once, not per page (each
    goto still opens a new Streamlit session, so no state carries over between tests)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory):
    """`rxdash serve` on the tiny database, built through the real loader from contract CSV files."""
    from analysis import db, ingest
    from tests.browser.degenerate_db import write_tiny

    folder = tmp_path_factory.mktemp("tiny")
    url = f"duckdb:///{folder / 'tiny.duckdb'}"
    eng = db.make_engine(url)
    report = ingest.load_directory(eng, write_tiny(folder / "csv"), folder / "rejects.csv", replace=True)
    eng.dispose()
    assert {t.table: t.rows_loaded for t in report.tables} == {
        "clinics": 1, "clinicians": 2, "patients": 4, "prescriptions": 54, "events": 1}
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc, log = start_server(["--db", url, "--port", str(port)], server_env(folder / "audit.jsonl"), folder,
                             folder / "server.log", base)
    yield base, folder / "server.log"
    stop_server(proc, log)


@pytest.fixture(scope="module")
def sample_log(server, tmp_path_factory) -> Path | None:
    """The log of the shared sample server (tests/browser/conftest.py keeps it in its temporary folder)."""
    return next((log for log in tmp_path_factory.getbasetemp().glob("*/server.log")
                 if server in log.read_text(errors="replace")[:2000]), None)


# Data quality describes everything loaded, whatever the period, and Methods is text that only names the
# period: once per database.
ONCE = ("data-quality", "methods")
SAMPLE_CASES = ([(p, s) for s in SAMPLE_STATES for p in PAGES if p not in ONCE]
                + [(p, "one-week") for p in ONCE])


@pytest.mark.parametrize("page_name, state", SAMPLE_CASES)
def test_sample_page_in_a_degenerate_state(server, sample_log, tab, page_name, state):
    query = SAMPLE_STATES.get(state, "start=2025-01-01&end=2025-12-31")
    text, found = visit(tab, server, "sample", page_name, state, query, sample_log)
    if state == "one-clinician" and page_name in ("overview", "variation-ranked"):
        # One clinician cannot be compared with anyone: the page says so rather than draw a funnel of one.
        if not re.search(r"too few clinicians", text, re.I):
            found.append("one clinician left, but the page does not say 'too few clinicians to compare'")
    if state == "no-tapers" and page_name.startswith("tapers"):
        if "No tapers or discontinuations" not in text or tab.locator(".js-plotly-plot").count():
            found.append("no taper in the period, but no plain 'No tapers or discontinuations' (or a chart drawn)")
    if state in ("one-week", "one-month") and page_name == "variation-converging":
        if "Pick a period of two quarters or more" not in text:
            found.append("a period shorter than two quarters, but no 'Pick a period of two quarters or more'")
    verdict(found, page_name, state)


# The tiny database's default period (01 May 2024 to 30 Apr 2025) holds both tapers (29 Jun 2024).
TINY_QUERY = "start=2024-05-01&end=2025-04-30"


@pytest.mark.parametrize("page_name", list(PAGES))
def test_tiny_database_page(tiny_server, tab, page_name):
    base, log = tiny_server
    text, found = visit(tab, base, "tiny", page_name, "tiny", TINY_QUERY, log)
    if page_name.startswith("variation") and "No clinician has the 11 patients needed to be judged" not in text:
        # Two clinicians of 1 to 2 patients: nobody can be judged, and the page says so in words.
        found.append("nobody has 11 patients, but no 'No clinician has the 11 patients needed to be judged'")
    if page_name == "tapers-by-clinician":
        card = tab.locator("[data-testid=stMetric]").filter(has_text="Tapers and discontinuations").first
        if (shown := card.locator("[data-testid=stMetricValue]").inner_text()) != "2":     # one taper each
            found.append(f"'Tapers and discontinuations' reads {shown!r}, not 2 (one taper per clinician)")
    verdict(found, page_name, "tiny")
