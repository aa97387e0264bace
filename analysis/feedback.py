"""Peer-comparison letters (`rxdash feedback`): one page for one clinician, their own figures named and
their peers anonymous, written for audit and feedback, not policing.

Each clinician-level measure gives the clinician's figure (a shrunken estimate that allows for chance),
the peers' median, a top-performer benchmark and the peers' spread; then their tapers against the
guideline pace. The benchmark is the Achievable Benchmark of Care (Kiefe et al. 1998, J Eval Clin Pract
4:1; Kiefe et al. 2001, JAMA 285:2871): the pooled rate of the best-performing clinicians who together
hold at least 10% of the patients, ranked by the adjusted performance fraction (x + 1) / (n + 2) so that a
clinician with few patients cannot set the bar. It exists only where the measure has a better direction.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import html
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from analysis import db, disclosure, exports, measures, outputs, privacy, report, stats, summary
from analysis.display import counted, file_part, html_text

ABC_SHARE = 0.10   # the best performers must hold at least this share of the patients (Kiefe 1998)
MAX_TICKS = 60     # beyond this many peers the strip shows their spread as a box, not one tick each


def benchmark(units: pd.DataFrame, direction: str, share: float = ABC_SHARE) -> float:
    """Achievable Benchmark of Care for a proportion: units (numerator, denominator) ranked best first by
    (x + 1) / (n + 2), taken until they hold `share` of all patients; their pooled rate. NaN for a
    measure without a better direction."""
    if direction not in ("lower", "higher") or units.empty or units["denominator"].sum() <= 0:
        return float("nan")
    adjusted = (units["numerator"] + 1) / (units["denominator"] + 2)
    ranked = units.assign(adjusted=adjusted).sort_values("adjusted", ascending=direction == "lower", kind="stable")
    held = ranked["denominator"].cumsum()
    needed = share * units["denominator"].sum()
    best = ranked.iloc[: int(np.searchsorted(held.to_numpy(), needed)) + 1]
    return float(best["numerator"].sum() / best["denominator"].sum())


ADJUSTED_NOTE = ("<b>For patient mix</b>: your count against the count expected for your patients' age, sex, "
                 "opioid use disorder and, for some measures, long-term therapy or a taper's starting dose (one "
                 "model over all clinicians compared); 1.00 = as expected.")
PEER_RULE = f"peers are the other clinicians in the selection with at least {stats.MIN_DENOMINATOR} cases in the measure"


def peer_group(units: pd.DataFrame, clinician_id: str) -> pd.DataFrame:
    """The one definition of a clinician's peers in a measure, used by the profile page and the letter: the
    other units of the comparison (the selected clinics and specialties) with at least stats.MIN_DENOMINATOR
    cases, i.e. clinicians who are judged, not "too few". units: a compared measure's units (stats.Funnel)."""
    return units[(units["unit_id"] != clinician_id) & (units["denominator"] >= stats.MIN_DENOMINATOR)]


def position(row: pd.Series) -> str:
    """Where a clinician stands, in plain words that pass no verdict the data cannot carry."""
    if row["flag"] in ("too_few", "small"):
        return "too few patients to judge"
    if row["flag"] in ("high", "low"):
        side = "above" if row["flag"] == "high" else "below"
        return f"{side} the range chance alone would explain"
    return "within the range chance alone would explain"


def _own_ratio(adjusted: stats.Funnel | None, clinician_id: str) -> tuple[str, pd.Series | None]:
    """The clinician in an adjusted funnel: ("absent", None) without one or outside it, ("too_few", row) when
    not judged, ("judged", row) otherwise."""
    own = adjusted.units[adjusted.units["unit_id"] == clinician_id] if adjusted is not None else ()
    if len(own) == 0:
        return "absent", None
    r = own.iloc[0]
    return ("too_few" if r["flag"] == "too_few" or r["value"] != r["value"] else "judged"), r


def adjusted_position(adjusted: stats.Funnel | None, clinician_id: str) -> str:
    """Where a clinician stands allowing for patient mix, in the words of `position`: "1.32 × the count
    expected: within the range chance alone would explain"; "" when the measure is not adjusted or the
    clinician is not in the comparison. The ratio is O/E itself, the point the funnel judges (its shrunken
    value can sit near 1 while O/E is outside the limits, which would read as a contradiction)."""
    state, r = _own_ratio(adjusted, clinician_id)
    if state != "judged":
        return {"absent": "", "too_few": "too few patients to judge"}[state]
    return f"{r['value']:.2f} × the count expected: {position(r)}"


SIDE_WORDS = {"high": "above", "low": "below", "within": "within"}   # the range, as the column before says


def adjusted_cell(adjusted: stats.Funnel | None, clinician_id: str) -> str:
    """The letter's "For patient mix" cell (HTML): O/E (adjusted_position) and where it stands, in two short
    lines so the letter stays on one page; "as observed" for a measure that is not adjusted."""
    if adjusted is None:
        return "<span class='muted'>as observed</span>"
    state, r = _own_ratio(adjusted, clinician_id)
    if state != "judged":
        return {"absent": "", "too_few": "too few to judge"}[state]
    return f"<b>{r['value']:.2f}</b> × expected<br><span class='small muted'>{SIDE_WORDS[r['flag']]}</span>"


def peer_row(result: stats.Funnel, m: measures.Measure, clinician_id: str, best: float | None = None,
             adjusted: stats.Funnel | None = None) -> dict | None:
    """One measure for one clinician: own figures, the peers' shrunken values (peer_group), their median, the
    share of peers lower, the benchmark (`best`, computed when not given) and the position; `adjusted`, the
    position allowing for patient mix (adjusted_position; "" without an adjusted comparison). None when the
    clinician has no patients in the measure. With no peer who can be judged, the median is NaN and the
    position says so."""
    units = result.units
    own = units[units["unit_id"] == clinician_id]
    if own.empty:
        return None
    peers = peer_group(units, clinician_id)
    r = own.iloc[0]
    values = peers["shrunk_value"].dropna()
    if values.empty:
        nobody = int((units["denominator"] >= stats.MIN_DENOMINATOR).sum()) == 0
        where = (report.too_few_sentence(m).replace("No", "no", 1) if nobody else
                 f"no peer has the {stats.MIN_DENOMINATOR} {report.case_word(m)} needed to compare with")
    return {
        "measure_id": m.id, "measure": m.title, "percent": m.kind == "proportion", "direction": m.direction,
        "patients": int(r["denominator"]), "value": float(r["value"]), "own": float(r["shrunk_value"]),
        "own_lower": float(r["shrunk_lower"]), "own_upper": float(r["shrunk_upper"]),
        "median": float(values.median()) if len(values) else float("nan"), "peers": values.tolist(),
        "n_peers": len(values),
        "percentile": float((values < r["shrunk_value"]).mean() * 100) if len(values) else float("nan"),
        "benchmark": best if best is not None else
        benchmark(units, m.direction) if m.kind == "proportion" else float("nan"),
        "position": position(r) if len(values) else where,
        "adjusted": adjusted_position(adjusted, clinician_id),
        "adjusted_cell": adjusted_cell(adjusted, clinician_id),
    }


@dataclass(frozen=True)
class TaperSummary:
    """A clinician's tapers by speed band, and the peers' share at the guideline pace."""

    total: int
    by_category: dict[str, int]
    peer_total: int
    peer_gradual_share: float


def taper_summary(tapers: pd.DataFrame, clinician_id: str) -> TaperSummary:
    """tapers: one row per taper in the period (clinician_id, category as banded by the settings)."""
    own = tapers[tapers["clinician_id"] == clinician_id]
    peers = tapers[tapers["clinician_id"] != clinician_id]
    counts = own["category"].value_counts()
    return TaperSummary(len(own), {c: int(counts.get(c, 0)) for c in ("gradual", "moderate", "rapid",
                                                                        "abrupt_discontinuation")},
                        len(peers), float((peers["category"] == "gradual").mean()) if len(peers) else float("nan"))


@dataclass(frozen=True)
class Letter:
    clinician_id: str
    name: str
    rows: pd.DataFrame       # one row per measure (peer_row)
    tapers: TaperSummary
    unmeasured: dict[str, str] = dataclasses.field(default_factory=dict)   # Peers.unmeasured
    provisional: dict[str, object] = dataclasses.field(default_factory=dict)  # Peers.provisional
    dose_unknown: int = 0    # this clinician's long-term patients left out of the dose figures (Peers.dose_unknown)
    extract_date: dt.date | None = None   # the end of the data (Peers.extract_date)


@dataclass(frozen=True)
class Peers:
    """Everything the letters of one period share: each measure compared once, tapers, names."""

    results: dict[str, tuple[measures.Measure, stats.Funnel]]
    tapers: pd.DataFrame
    names: dict[str, str]
    scope: str
    # Measures the period cannot give a figure for, or only a provisional one (analysis.coverage), with why.
    unmeasured: dict[str, str] = dataclasses.field(default_factory=dict)
    provisional: dict[str, object] = dataclasses.field(default_factory=dict)   # id -> coverage.Measurability
    # Long-term patients left out of the dose figures because a prescription in supply has no MME factor in
    # the factor set (analysis.dose_unknown), per attributed clinician.
    dose_unknown: dict[str, int] = dataclasses.field(default_factory=dict)
    extract_date: dt.date | None = None   # the end of the data: queries/data_bounds.sql data_end
    # Each adjustable measure allowing for patient mix (measures.compare_adjusted), when the model could be fitted.
    adjusted: dict[str, stats.Funnel] = dataclasses.field(default_factory=dict)

    def benchmarks(self) -> dict[str, float]:
        """Each measure's benchmark, the same in every letter."""
        return {i: benchmark(r.units, m.direction) if m.kind == "proportion" else float("nan")
                for i, (m, r) in self.results.items()}


def compare_all(conn: sa.Connection, s: summary.Settings, clinics: tuple[str, ...] = ()) -> Peers:
    """Every clinician-level measure compared among the clinicians of `clinics` (all when empty)."""
    bounds = summary.data_bounds(conn)
    directory = db.read_frame(conn, "clinician_directory")
    allowed = summary.chosen_clinicians(directory, clinics)
    keep = lambda rows: summary.keep(rows, allowed)  # noqa: E731
    results, unmeasured, provisional, dose_unknown, adjusted = {}, {}, {}, {}, {}
    mix = None
    for m in measures.configured(s.low_mme, s.high_mme):
        if m.unit != "clinician":
            continue
        state = summary.measurability(m, s, s.start, s.end, bounds)
        if not state.has_figure:     # not measurable yet, or the period is too short: no figure at all
            unmeasured[m.title] = f"{state.word}: {state.reason()}"
            continue
        if not state.complete:
            provisional[m.id] = state
        rows = keep(db.read_frame(conn, m.query, summary.measure_params(m, s, s.start, s.end, bounds)))
        units = measures.unit_rows(rows, m)
        if len(units) >= 2:
            results[m.id] = (m, measures.compare(units, m))
            if measures.adjustable(m):
                mix = summary.patient_mix(conn, s) if mix is None else mix
                if (fitted := measures.compare_adjusted(rows, mix, m, s.start, s.high_mme)) is not None:
                    adjusted[m.id] = fitted
        if m.id == "high_dose_90":   # the long-term patients whose dose is unknown (the same for every dose measure)
            unknown = keep(db.read_frame(conn, m.query, {**summary.measure_params(m, s, s.start, s.end, bounds),
                                                         "dose_unknown": True}))
            dose_unknown = unknown["clinician_id"].value_counts().to_dict() if len(unknown) else {}
    tapers = keep(summary.period_tapers(conn, s, bounds))
    names = db.read_frame(conn, "clinician_names")
    clinic_names = dict(zip(directory["clinic_id"], directory["clinic_name"]))
    taper_state = summary.measurability(measures.BY_ID["taper_rapid"], s, s.start, s.end, bounds)
    if not taper_state.has_figure:   # no taper in the period can be measured yet: said, never a date span of None
        unmeasured["Tapers"] = f"{taper_state.word}: {taper_state.reason()}"
    elif not taper_state.complete:
        provisional["tapers"] = taper_state
    return Peers(results, tapers, dict(zip(names["clinician_id"], names["clinician_name"])),
                 ", ".join(clinic_names[c] for c in clinics) or "all clinics", unmeasured, provisional,
                 {str(k): int(v) for k, v in dose_unknown.items()}, bounds["data_end"], adjusted)


def letter(peers: Peers, clinician_id: str, min_cell: int, benchmarks: dict[str, float] | None = None) -> Letter:
    """One clinician's letter, addressed by `peers.names`; peers as peer_group defines them (the same as on the
    profile page), whatever `min_cell` (which only suppresses small counts). `benchmarks` (Peers.benchmarks) saves recomputing them letter by letter."""
    best = benchmarks or peers.benchmarks()
    rows = [row for m, result in peers.results.values()
            if (row := peer_row(result, m, clinician_id, best[m.id], peers.adjusted.get(m.id))) is not None]
    name = peers.names.get(clinician_id) or clinician_id
    return Letter(clinician_id, name, pd.DataFrame(rows), taper_summary(peers.tapers, clinician_id),
                  peers.unmeasured, peers.provisional, peers.dose_unknown.get(clinician_id, 0), peers.extract_date)


def clinicians_with_patients(peers: Peers) -> list[str]:
    """Who gets a letter: every clinician counted in at least one measure or with a taper in the period."""
    ids = set(peers.tapers["clinician_id"].dropna())
    for _, result in peers.results.values():
        ids |= set(result.units["unit_id"])
    return sorted(ids)


# ---- the page ------------------------------------------------------------------------------------------

CSS = """
@page { size: A4; margin: 10mm 14mm; }
body { font-family: Inter, 'Segoe UI', Helvetica, Arial, sans-serif; color: #1f2933; font-size: 10.5px;
       line-height: 1.35; margin: 0; }
h1 { font-size: 19px; margin: 0 0 2px; } h2 { font-size: 13px; margin: 12px 0 3px; }
p { margin: 4px 0; } .muted { color: #52606d; } .small { font-size: 9px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0; }
th { text-align: left; font-weight: 600; border-bottom: 1px solid #9aa5b1; padding: 2px 5px; vertical-align: bottom; }
td { border-bottom: 1px solid #e4e7eb; padding: 2px 5px; vertical-align: middle; }
.legend span { margin-right: 12px; white-space: nowrap; }
"""
BLUE, ORANGE, GREEN, GREY = "#0072B2", "#E69F00", "#009E73", "#9aa5b1"


def strip_svg(peers: list[float], own: float, median: float, best: float, percent: bool,
                width: int = 150, height: int = 22) -> str:
    """The peers' spread as grey ticks (a box and whiskers when there are many), their median (orange bar),
    the benchmark (green ring) and the clinician (blue diamond, left out when NaN), on one small axis from
    the lowest to the highest value."""
    values = [v for v in [*peers, own, median, best] if v == v]
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - (0.05 if percent else 1), hi + (0.05 if percent else 1)
    x = lambda v: 8 + (v - lo) / (hi - lo) * (width - 16)  # noqa: E731
    mid = height / 2
    parts = [f'<line x1="8" y1="{mid}" x2="{width - 8}" y2="{mid}" stroke="#e4e7eb"/>']
    if len(peers) <= MAX_TICKS:
        parts += [f'<line x1="{x(v):.1f}" y1="{mid - 5}" x2="{x(v):.1f}" y2="{mid + 5}" stroke="{GREY}" '
                  'stroke-width="1"/>' for v in peers]
    else:   # many peers: their spread as a box (quartiles) with whiskers (10th to 90th centile)
        p10, p25, p75, p90 = np.percentile(peers, [10, 25, 75, 90])
        parts += [f'<line x1="{x(p10):.1f}" y1="{mid}" x2="{x(p90):.1f}" y2="{mid}" stroke="{GREY}" stroke-width="2"/>',
                  f'<rect x="{x(p25):.1f}" y="{mid - 5}" width="{max(x(p75) - x(p25), 1):.1f}" height="10" '
                  f'fill="#e4e7eb" stroke="{GREY}"/>']
    parts.append(f'<rect x="{x(median) - 1.5:.1f}" y="{mid - 9}" width="3" height="18" fill="{ORANGE}"/>')
    if best == best:
        parts.append(f'<circle cx="{x(best):.1f}" cy="{mid}" r="5" fill="none" stroke="{GREEN}" stroke-width="2"/>')
    if own == own:
        c = x(own)
        parts.append(f'<polygon points="{c:.1f},{mid - 7} {c + 6:.1f},{mid} {c:.1f},{mid + 7} {c - 6:.1f},{mid}" '
                     f'fill="{BLUE}" stroke="white" stroke-width="1"/>')
    return f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>'


def _count(n: int, min_cell: int, noun: str) -> str:
    """A count in a letter under the disclosure rule: "34 patients", "1 patient" or "fewer than 11 patients"."""
    return disclosure.count_phrase(n, noun.rstrip("s"), min_cell, plural=noun)


def _taper_text(t: TaperSummary, s: summary.Settings, min_cell: int) -> str:
    gradual, rapid = s.tapers.gradual_max_pct, s.tapers.rapid_min_pct
    pace = (f"The guideline pace is a reduction of {gradual:g}% of the dose a month or slower (HHS 2019 guide: "
            "5–10% every 4 weeks for most patients on long-term therapy; CDC 2022: taper gradually, never abruptly "
            "unless there is a threat of serious harm).")
    if t.total == 0:
        own = "No tapers or discontinuations of your patients started in the period."
    elif t.total < min_cell:
        own = (f"Fewer than {min_cell} tapers or discontinuations of your patients started in the period: too few to "
               "break down here without pointing to individual patients. The dashboard's profile page shows each "
               "taper's daily dose (without dates or names) for your own review.")
    else:
        c = t.by_category
        parts = [f"{c['gradual']:,} at the guideline pace", f"{c['moderate']:,} between {gradual:g}% and {rapid:g}% a month",
                 f"{c['rapid']:,} faster than {rapid:g}% a month",
                 f"{c['abrupt_discontinuation']:,} ended abruptly (at half the starting dose or more)"]
        if any(1 <= c[k] < min_cell for k in c):   # a share would give the small group's count away
            parts = ["the split by speed is not shown because some groups are small"]
        own = f"{counted(t.total, 'taper or discontinuation')} of your patients started in the period: " + "; ".join(parts) + "."
    gradual_peers = round(t.peer_gradual_share * t.peer_total) if t.peer_total else 0
    shown = all(n == 0 or n >= min_cell for n in (gradual_peers, t.peer_total - gradual_peers))  # none derivable
    peers = (f" Among your peers' {counted(t.peer_total, 'taper')}, {t.peer_gradual_share:.0%} went at the guideline pace."
             if t.peer_total and shown else "")
    # Our own sentences (no data text): apostrophes stay as they are.
    return f"<p>{html.escape(own + peers, quote=False)}</p><p class='muted'>{html.escape(pace, quote=False)}</p>"


def page(l: Letter, s: summary.Settings, scope: str, min_cell: int = 11) -> str:
    """The letter as one self-contained HTML page (no script, no network), made to print on one A4 page."""
    period = f"{s.start:%d %b %Y} to {s.end:%d %b %Y}"
    head = (f"<h1>Your opioid prescribing beside your peers</h1><p class='muted'>For {html_text(l.name)} · "
            f"{html_text(period)} · peers: clinicians of {html_text(scope)} · "
            + (f"data extracted {l.extract_date:%d %b %Y} · " if l.extract_date else "")
            + f"prepared {dt.date.today():%d %b %Y}</p>"
            "<p>This page is for you: a mirror, not a rating. It shows how your prescribing compares with your "
            "colleagues' so that you can decide whether anything is worth a closer look or a conversation. Your "
            "patients are yours; some need more, some less, and no figure here can know why. Each of your figures "
            "allows for chance (with few patients it stays near the group's), so a handful of patients cannot make you "
            "look unusual. Your peers are not named.</p>")
    if l.rows.empty:
        body = ("<p><b>None of your patients are counted in these measures in the period.</b> A longer period may "
                "give a picture.</p>")
    else:
        cells = []
        for r in l.rows.itertuples():
            m = measures.BY_ID[r.measure_id]
            fmt = lambda v: measures.describe_value(v, m)  # noqa: E731
            small = 1 <= r.patients < min_cell
            own = "too few to compare" if small else f"<b>{fmt(r.own)}</b><br><span class='small muted'>{fmt(r.own_lower)} to {fmt(r.own_upper)}</span>"
            best = fmt(r.benchmark) if r.benchmark == r.benchmark else "<span class='muted'>no better direction</span>"
            words = "fewer patients than can be shown" if small else html_text(r.position)
            mix = "" if small else r.adjusted_cell
            svg = strip_svg(r.peers, float("nan") if small else r.own, r.median, r.benchmark, r.percent) \
                if r.n_peers else ""
            mark = " †" if r.measure_id in l.provisional else ""     # provisional: the note under the table
            # Never silently 0 MME: the long-term patients a dose measure leaves out for an unknown dose, in the
            # same cell (a line of its own would push the letter onto a second page).
            left = f"fewer than {min_cell}" if 1 <= l.dose_unknown < min_cell else f"{l.dose_unknown:,}"
            unknown = (f"<br><span class='small muted'>+ {left} left out: dose unknown</span>"
                       if l.dose_unknown and m.query == "measure_ltot_dose" else "")
            cells.append(f"<tr><td>{html_text(r.measure)}{mark}</td><td>{_count(r.patients, min_cell, 'patients')}{unknown}</td>"
                         f"<td>{own}</td><td>{fmt(r.median)}</td><td>{best}</td><td>{svg}</td><td>{words}</td><td>{mix}</td></tr>")
        body = ("<h2>Your figures</h2><table><tr><th>Measure</th><th>Your patients</th><th>Your figure (95% "
                "interval)</th><th>Peer median</th><th>Top performers</th><th>You among peers</th><th>Compared with "
                "peers</th><th>For patient mix</th></tr>" + "".join(cells) + "</table>"
                f"<p class='legend small'><span><b style='color:{BLUE}'>◆</b> you</span><span><b style='color:{GREY}'>|"
                f"</b> a peer</span><span><b style='color:{ORANGE}'>▮</b> peer median</span><span><b style='color:"
                f"{GREEN}'>○</b> top performers</span><span>with more than {MAX_TICKS} peers, a box: the middle half of "
                "peers, whiskers from the 10th to the 90th centile</span></p>")
    # One small line for what the data's start and end leave out (analysis.coverage), so the page stays one page.
    edges = [f"<b>{html_text(title)}</b>: {html_text(why)}." for title, why in l.unmeasured.items()]
    if l.provisional:
        spans = sorted({(x.first, x.last) for x in l.provisional.values()})
        edges.append("<b>† provisional</b>: near the data's start or end, only "
                     + " or ".join(f"{a:%d %b %Y} to {b:%d %b %Y}" for a, b in spans) + " can be measured yet.")
    if edges:   # inside the legend's paragraph when there is one: a new paragraph would push onto a second page
        note = " ".join(edges)     # plain text, not a span: the legend's spans do not wrap
        body = body[:-4] + note + "</p>" if body.endswith("</p>") else body + f"<p class='small muted'>{note}</p>"
    tapers = ("<h2>Your tapers" + (" † <span class='small muted'>provisional</span>" if "tapers" in l.provisional
                                    else "") + "</h2>" + _taper_text(l.tapers, s, min_cell))
    notes = ("<h2>How to read this page</h2><p class='small muted'>Lower is not always better: the average dose, for "
             "one, carries no verdict, and a figure outside the range chance would explain is a question worth a "
             "conversation, not an answer. <b>Top performers</b>: the achievable benchmark of care, the pooled figure "
             "of the best-placed colleagues who together hold at least 10% of the patients (Kiefe 2001), shown only "
             f"where the measure has a better direction. {PEER_RULE[0].upper() + PEER_RULE[1:]}. "
             f"{ADJUSTED_NOTE} "
             + html_text(" ".join(summary.parameter_lines(s)))
             + (f" Counts from 1 to {min_cell - 1} are not shown." if min_cell > 1 else
                " Small counts are shown (internal use).")
             + " No patient is named or identifiable on this page.</p>"
             "<p class='small muted'>Support: the CDC 2022 clinical practice guideline for prescribing opioids for "
             "pain and the HHS 2019 guide for clinicians on dose reduction or discontinuation of long-term opioids. "
             "If you would like to talk this through, your clinic's quality lead is glad to.</p>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Prescribing feedback: {html_text(l.name)}"
            f"</title><style>{CSS}</style></head><body>{head}{body}{tapers}{notes}</body></html>")


def _file_name(clinician_id: str) -> str:
    """The letter's name in the zip: `letter_<id>.pdf`, the id made safe for a path (display.file_part)."""
    return f"letter_{file_part(clinician_id)}.pdf"


def write_one(engine: sa.Engine, s: summary.Settings, clinician_id: str, out: Path,
              clinics: tuple[str, ...] = (), on_written: Callable[[Path], None] | None = None) -> Path:
    """One clinician's letter as PDF (or .html), whole or not at all (exports.write_document; `on_written`
    runs once the file is complete, before it takes its name)."""
    with engine.connect() as conn:
        peers = compare_all(conn, s, clinics)
    if clinician_id not in set(peers.names):
        raise ValueError(f"unknown clinician {clinician_id}")
    return exports.write_document(page(letter(peers, clinician_id, s.min_cell), s, peers.scope, s.min_cell), out,
                                  on_written)


def write_all(engine: sa.Engine, s: summary.Settings, out: Path, clinics: tuple[str, ...] = (),
              on_written: Callable[[Path], None] | None = None) -> int:
    """A zip of one PDF letter per clinician with patients in the period; the number of letters. The zip is
    written whole or not at all (outputs.replacing: a temporary zip beside `out`, every entry tested, then
    renamed; `on_written` runs just before the rename), so a full disk leaves no zip missing its last letters."""
    if out.suffix.lower() != ".zip":
        raise ValueError(f"--all writes a .zip file, not {out.suffix or 'nothing'}")
    with engine.connect() as conn:
        peers = compare_all(conn, s, clinics)
    ids = clinicians_with_patients(peers)
    best = peers.benchmarks()
    with outputs.replacing(out, on_written=on_written) as temporary:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as z:
            # Pages are made one at a time as chromium asks for them, and each PDF goes straight into the zip.
            exports.print_pdfs((page(letter(peers, i, s.min_cell, best), s, peers.scope, s.min_cell) for i in ids),
                               lambda n, pdf: z.writestr(_file_name(ids[n]), pdf))
    return len(ids)


def pseudonym_code(engine: sa.Engine, clinician_id: str) -> str:
    """The clinician's pseudonym code ("7KQ2F"), as the dashboard's links and the audit log name them
    (analysis/privacy.py): the letter names the clinician, the record of who took it out does not."""
    with engine.connect() as conn:
        ids = db.read_frame(conn, "clinician_directory")["clinician_id"]
    return privacy.pseudonyms([*ids, clinician_id], privacy.pseudonym_secret())[clinician_id].split(" ", 1)[1]
