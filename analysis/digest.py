"""The quarterly digest (`rxdash digest --quarter 2025Q4`): what a committee asks each quarter, in one short
document. For the quarter, measure by measure: which clinicians' figures moved in a sustained way
(analysis.trends, over the two years up to this quarter), who came inside or went outside the
funnel limits since the quarter before, and how the variation between clinicians changed. Everything
under the disclosure rule: clinicians by pseudonym, no patient, no count from 1 to min_cell - 1 (a level
resting on such a count is withheld).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from analysis import charts, coverage, db, disclosure, dose, exports, measures, privacy, report, stats, summary, trends
from analysis.display import html_text

WITHHELD = "withheld"   # a level resting on a small count (the disclosure rule)
QUARTER = re.compile(r"(\d{4})\s*-?\s*Q([1-4])", re.IGNORECASE)


def parse_quarter(text: str) -> tuple[dt.date, dt.date]:
    """'2025Q4' (or 2025-Q4, 2025q4) as its first and last day; ValueError in plain words otherwise."""
    match = QUARTER.fullmatch(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a quarter: write it as 2025Q4")
    year, q = int(match.group(1)), int(match.group(2))
    start = dt.date(year, 3 * q - 2, 1)
    return start, dose.add_months(start, 3) - dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class MeasureQuarter:
    """One measure's part of the digest."""

    measure: measures.Measure
    state: coverage.Measurability           # the quarter's measurability
    moved: pd.DataFrame                     # trends.shifts signalled in the quarter, with unit_label
    went_outside: list[str]                 # unit labels judged within last quarter, outside now
    came_inside: list[str]                  # unit labels outside last quarter, within now
    variation: str                          # a sentence on the variation index, this quarter against the last


def _level_text(value: float, numerator: float, denominator: float, m: measures.Measure, min_cell: int) -> str:
    """A level of a shift (a share or a mean) unless it rests on a small count (the disclosure rule)."""
    if value != value:
        return "–"
    if disclosure.applies(min_cell) and m.kind == "proportion" and (
            disclosure.is_small(numerator, min_cell) or disclosure.is_small(denominator - numerator, min_cell)):
        return WITHHELD
    return measures.describe_value(value, m)


def measure_quarter(m: measures.Measure, history: list[tuple[dt.date, coverage.Measurability, stats.Funnel | None]],
                    label: Callable[[str], str], min_cell: int) -> MeasureQuarter:
    """One measure's digest from its quarters up to the digest's (the last of `history`, oldest first): shifts
    over the complete quarters (a provisional quarter is never compared), flags and variation this quarter
    against the one before. label(unit_id): the name shown (a pseudonym or a clinic's name)."""
    quarter, state, result = history[-1]
    complete = [(q, r) for q, st, r in history if st.complete and r is not None]
    series = pd.concat([trends.quarter_rows(r, q) for q, r in complete], ignore_index=True) if complete else None
    moved = trends.shifts(series) if series is not None else pd.DataFrame(columns=trends.SHIFT_COLUMNS)
    moved = pd.DataFrame([{"unit_label": label(s.unit_id), "direction": s.direction, "began": s.began,
                           "before": _level_text(s.before, s.before_numerator, s.before_denominator, m, min_cell),
                           "after": _level_text(s.after, s.after_numerator, s.after_denominator, m, min_cell)}
                          for s in moved[moved["signalled"] == pd.Timestamp(quarter)].itertuples()],
                         columns=["unit_label", "direction", "began", "before", "after"])
    went_outside, came_inside, variation = [], [], ""
    previous = history[-2] if len(history) >= 2 else None
    if state.complete and result is not None and previous and previous[1].complete and previous[2] is not None:
        now = result.units.set_index("unit_id")["flag"]
        before = previous[2].units.set_index("unit_id")["flag"]
        both = now.index.intersection(before.index)
        judged = both[(now[both] != "too_few") & (before[both] != "too_few")]   # judged in both quarters
        out_now, out_before = now[judged].isin(["high", "low"]), before[judged].isin(["high", "low"])
        went_outside = sorted(label(u) for u in judged[(out_now & ~out_before).to_numpy()])
        came_inside = sorted(label(u) for u in judged[(~out_now & out_before).to_numpy()])
        index, name = (("median_odds_ratio", "median odds ratio") if m.kind == "proportion"
                       else ("p90_p10_ratio", "90th/10th centile ratio"))
        trend = pd.DataFrame([{"quarter_start": previous[0], **stats.indices(previous[2], m.kind)},
                              {"quarter_start": quarter, **stats.indices(result, m.kind)}])
        variation = report.trend_sentence(trend, index, name,
                                          unit_word="clinics" if m.unit == "clinic" else "clinicians")
    return MeasureQuarter(m, state, moved, went_outside, came_inside, variation)


def build(conn: sa.Connection, quarter: str, s: summary.Settings | None = None, clinics: tuple[str, ...] = ()) -> str:
    """The digest for `quarter` ('2025Q4') as one self-contained HTML page, for the clinicians of `clinics`
    (everyone when empty). `s` gives the rules (factor set, exclusions, thresholds, min_cell); its period is
    replaced by every quarter from the data's first to this one."""
    q_start, q_end = parse_quarter(quarter)
    bounds = summary.data_bounds(conn)
    if q_start > bounds["data_end"] or q_end < bounds["data_start"]:
        raise ValueError(f"{quarter} is outside the data ({bounds['data_start']:%d %b %Y} to "
                         f"{bounds['data_end']:%d %b %Y})")
    first = trends.history_start(q_start, bounds["data_start"])
    base = s or summary.Settings(q_start, q_end)
    history_settings = dataclasses.replace(base, start=first, end=q_end)
    directory = db.read_frame(conn, "clinician_directory")
    allowed = summary.chosen_clinicians(directory, clinics)
    pseudonyms = privacy.pseudonyms(directory["clinician_id"], privacy.pseudonym_secret())
    clinic_names = dict(zip(directory["clinic_id"], directory["clinic_name"]))
    by_measure: dict[str, list] = {}
    for m, start, _, state, result in summary.quarter_results(conn, history_settings, allowed):
        by_measure.setdefault(m.id, []).append((start, state, result))
    parts = _head(quarter, q_start, q_end, clinics, directory, bounds, base)
    # A unit not in the directory is never shown by its id (clinician ids are not for the page).
    names = {"clinician": lambda u: pseudonyms.get(u, "Clinician (unknown)"),
             "clinic": lambda u: clinic_names.get(u, "Clinic (unknown)")}
    sections = [measure_quarter(m, by_measure[m.id], names[m.unit], base.min_cell)
                for m in measures.configured(base.low_mme, base.high_mme) if m.id in by_measure]
    parts.append(_summary(sections, q_start))
    for sec in sections:
        parts.append(_section(sec, q_start))
    parts.append(_methods(base))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Quarterly digest {html_text(quarter)}</title>"
            f"<style>{report.CSS}</style></head><body>{''.join(parts)}</body></html>")


def _head(quarter: str, q_start: dt.date, q_end: dt.date, clinics, directory: pd.DataFrame, bounds,
          s: summary.Settings) -> list[str]:
    names = dict(zip(directory["clinic_id"], directory["clinic_name"]))
    scope = ", ".join(names[c] for c in clinics) or "all clinics"
    label = charts.quarter_label(q_start)
    return [f"<h1>Quarterly digest: {html_text(label)}</h1><p class='muted'>{q_start:%d %b %Y} to {q_end:%d %b %Y} · "
            f"{html_text(scope)} · generated {dt.datetime.now():%Y-%m-%d %H:%M}</p>"
            f"<p class='muted'>{html_text(summary.data_line(bounds))} Clinicians appear by pseudonym; patients never "
            "appear" + (f"; counts from 1 to {s.min_cell - 1} are not shown, nor a level resting on one." if
                        disclosure.applies(s.min_cell) else "; small counts are NOT suppressed (internal use).")
            + "</p>"]


def _moved_words(sec: MeasureQuarter) -> list[str]:
    out = []
    for r in sec.moved.itertuples():
        verb = "rose" if r.direction == "up" else "fell"
        since = f"since {charts.quarter_label(r.began)}"
        levels = {"before": r.before != WITHHELD, "after": r.after != WITHHELD}
        if all(levels.values()):
            words = f"{verb} from {html_text(r.before)} to {html_text(r.after)} ({since})"
        elif levels["after"]:
            words = f"{verb} to {html_text(r.after)} ({since}; the level before rests on a small count, not shown)"
        elif levels["before"]:
            words = f"{verb} from {html_text(r.before)} ({since}; the new level rests on a small count, not shown)"
        else:
            words = f"{verb} ({since}; both levels rest on small counts, not shown)"
        out.append(f"{html_text(r.unit_label)}: {words}")
    return out


def _summary(sections: list[MeasureQuarter], q_start: dt.date) -> str:
    """The first lines: how many sustained shifts up and down, and limits crossed, across the measures."""
    up = sum(int((s.moved["direction"] == "up").sum()) for s in sections)
    down = sum(int((s.moved["direction"] == "down").sum()) for s in sections)
    outside = sum(len(s.went_outside) for s in sections)
    inside = sum(len(s.came_inside) for s in sections)
    partial = [s.measure.title for s in sections if not s.state.complete]
    label = charts.quarter_label(q_start)
    count = lambda n, one, many: f"{'no' if n == 0 else n} {one if n == 1 else many}"  # noqa: E731
    lines = [f"<h2 class='first'>In brief</h2><p class='reading'>In {label}: {count(up, 'sustained rise', 'sustained rises')}"
             f" and {count(down, 'sustained fall', 'sustained falls')} in a clinician's figures; "
             f"{count(outside, 'clinician', 'clinicians')} went outside the funnel limits and "
             f"{count(inside, 'clinician', 'clinicians')} came inside, since the quarter before.</p>"]
    if partial:
        lines.append(f"<p class='muted'>Not yet measurable in full for {label} (reported when the data cover "
                     f"the days they need): {html_text('; '.join(partial))}.</p>")
    return "".join(lines)


def _section(sec: MeasureQuarter, q_start: dt.date) -> str:
    m = sec.measure
    out = [f"<h3>{html_text(m.title)}</h3>"]
    if not sec.state.has_figure:
        return out[0] + f"<p class='muted'>{html_text(sec.state.word.capitalize())}: {html_text(sec.state.sentence())}</p>"
    if not sec.state.complete:
        out.append(f"<p class='muted'><b>Provisional.</b> {html_text(sec.state.sentence())} Shifts and limits are "
                   "compared on quarters measured in full only.</p>")
    moved = _moved_words(sec)
    out.append("<p><b>What moved:</b> " + ("; ".join(moved) + "." if moved else
                                          "no sustained shift in any clinician's figure.") + "</p>")
    if sec.went_outside or sec.came_inside:
        out.append("<p><b>Limits:</b> " + "; ".join(
            p for p in (f"went outside: {html_text(', '.join(sec.went_outside))}" if sec.went_outside else "",
                        f"came inside: {html_text(', '.join(sec.came_inside))}" if sec.came_inside else "") if p)
                   + ".</p>")
    elif sec.state.complete:
        out.append("<p><b>Limits:</b> nobody went outside or came inside since the quarter before.</p>")
    if sec.variation:
        out.append(f"<p><b>Variation:</b> {html_text(sec.variation)}</p>")
    return "".join(out)


def _methods(s: summary.Settings) -> str:
    return ("<h2>How this is worked out</h2><p class='small muted'>A <b>sustained shift</b>: each quarter, a "
            "clinician's figure is set against the pooled figure of all clinicians compared, in standard errors "
            "(allowing for the ordinary differences between colleagues, τ²), over the "
            f"{trends.HISTORY} quarters up to this one, and a two-sided CUSUM (k = "
            f"{trends.K}, h = {trends.H}; Page 1954) follows how far that moves from the clinician's own level (their first "
            f"{trends.REFERENCE} quarters). A shift is reported when the sum crosses h after at least "
            f"{trends.MIN_QUARTERS} quarters that pushed it, never on one quarter, and is dated from the quarter it "
            f"began. A quarter with fewer than {stats.MIN_DENOMINATOR} cases, or not measurable in full, does not "
            "enter. <b>Limits</b>: the 99.8% funnel limits of each quarter (clinicians with fewer than "
            f"{stats.MIN_DENOMINATOR} cases in either quarter are not compared). <b>Variation</b>: the median odds "
            "ratio (shares) or 90th/10th centile ratio (averages) of this quarter against the last. "
            + html_text(" ".join(summary.parameter_lines(s))) + "</p>")


def write(engine: sa.Engine, quarter: str, out: Path, s: summary.Settings | None = None,
          clinics: tuple[str, ...] = (), on_written: Callable[[Path], None] | None = None) -> Path:
    """Write the digest as .html, or as .pdf printed by headless chromium; whole or not at all
    (exports.write_document; `on_written` runs once the file is complete, before it takes its name)."""
    if out.suffix.lower() not in (".pdf", ".html"):   # before the minutes of work, not after
        raise ValueError(f"--out must end in .pdf or .html, not {out.suffix or 'nothing'}")
    with engine.connect() as conn:
        page = build(conn, quarter, s, clinics)
    return exports.write_document(page, out, on_written)
