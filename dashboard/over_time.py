"""Clinicians over time on the pages: each quarter's comparison (from the cache), the decile chart and
"what moved" (analysis.trends, the same judgement as `rxdash digest`)."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from analysis import charts, coverage, digest, dose, exports, measures, stats, trends
from analysis.display import md
from dashboard import data, downloads, filters


MOVED_COLUMNS = ["unit_label", "direction", "began", "before", "after", "measure"]


def history(f: filters.Filters, m: measures.Measure, q_start: dt.date) -> list[tuple]:
    """(quarter_start, measurability, funnel or None) for the trends.HISTORY quarters up to the one starting
    q_start (from the data's first), among the sidebar's clinicians; each quarter's funnel from the cache."""
    out = []
    q_end = dose.add_months(q_start, 3) - dt.timedelta(days=1)
    for start, end in measures.quarters(trends.history_start(q_start, f.data_start), q_end):
        state = f.measurability(m, start, end)
        result = data.compared(m, f.measure_params(m, start, end), f.clinicians) if state.has_figure else None
        out.append((start, state, result))
    return out


def last_complete_quarter(f: filters.Filters, m: measures.Measure) -> dt.date | None:
    """The first day of the period's last quarter measured in full for m (a whole calendar quarter), or None."""
    return trends.last_complete_quarter(m, f.start, f.end, f.data_start, f.data_end, f.tapers())


def label(f: filters.Filters, m: measures.Measure):
    """unit_id -> the name on screen: the clinician's pseudonym (or name, by role), or the clinic's name."""
    return f.label if m.unit == "clinician" else (lambda c: f.clinic_names.get(c, "Clinic (unknown)"))


def moved_for(f: filters.Filters, m: measures.Measure) -> tuple[pd.DataFrame, dt.date | None]:
    """Sustained shifts of m signalled in its last complete quarter of the period (digest.measure_quarter with
    the rule off: the screen shows exact levels): unit_label, direction, began, before, after, measure; and
    that quarter (None, and no rows, when the period has none)."""
    q = last_complete_quarter(f, m)
    if q is None:
        return pd.DataFrame(columns=MOVED_COLUMNS), None
    return digest.measure_quarter(m, history(f, m, q), label(f, m), 0).moved.assign(measure=m.title), q


def moved(f: filters.Filters) -> tuple[pd.DataFrame, dict[str, dt.date]]:
    """moved_for over every measure (the Overview's "what moved"), and the quarter judged per measure id;
    worked out once per filters and data version for every session (data.computed)."""
    return data.computed(moved_now, f)


def moved_now(f: filters.Filters) -> tuple[pd.DataFrame, dict[str, dt.date]]:
    """moved, worked out now."""
    parts, judged = [], {}
    for m in f.measures():
        rows, q = moved_for(f, m)
        if q is not None:
            judged[m.id] = q
            parts.append(rows)
    return (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=MOVED_COLUMNS)), judged


def moved_lines(rows: pd.DataFrame, direction: str) -> list[str]:
    """'Clinician AB2CD: Long-term patients at 90 MME a day or more rose from 12.0% to 25.3% (since Q3 2025)'."""
    verb = "rose" if direction == "up" else "fell"
    return [f"**{md(r.unit_label)}**: {md(r.measure)} {verb} from {md(r.before)} to {md(r.after)} "
            f"(since {charts.quarter_label(r.began)})" for r in rows[rows["direction"] == direction].itertuples()]


def period_series(f: filters.Filters, m: measures.Measure) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """The quarters measured in full for m among the trends.HISTORY quarters up to the period's end (the span
    "what moved" is judged over): the series (trends.quarter_rows), its deciles, and the quarters left out
    with their state (shown as words under the chart)."""
    frames, left_out = [], []
    for start, end in measures.quarters(trends.history_start(trends.quarter_of(f.end), f.data_start), f.end):
        state = f.measurability(m, start, end)
        if not state.complete:
            left_out.append((start, state))
            continue
        result = data.compared(m, f.measure_params(m, start, end), f.clinicians)
        if result is not None:
            frames.append(trends.quarter_rows(result, start))
    series = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["unit_id", "quarter_start", "numerator", "denominator", "value", "pooled_value", "z", "flag"])
    return series, trends.deciles(series), left_out


def decile_section(f: filters.Filters, m: measures.Measure, unit_id: str | None, name: str, key: str) -> None:
    """The decile chart of m over the period, with one unit's line (unit_id, shown as `name`), its download
    and what it leaves out."""
    series, deciles, left_out = period_series(f, m)
    percent = m.kind == "proportion"
    unit_word = "clinics" if m.unit == "clinic" else "clinicians"
    if deciles["p50"].isna().all():
        cases = "tapers" if "taper" in m.query else "patients"
        st.info(f"No quarter in the {trends.HISTORY} up to the period's end has the {stats.MIN_UNITS} {unit_word} "
                f"with {stats.MIN_DENOMINATOR} {cases} each that a spread needs.", icon=":material/info:")
        return
    own = None
    if unit_id is not None:
        own = series[(series["unit_id"] == unit_id) & (series["denominator"] >= stats.MIN_DENOMINATOR)]
    span = f"{charts.quarter_label(deciles['quarter_start'].min())} to {charts.quarter_label(deciles['quarter_start'].max())}"
    title = (f"{m.title}: {unit_word} by quarter, 10th to 90th centile, {span}" + (f", with {name}" if unit_id else ""))
    value_label = "Share of patients" if percent else m.value_unit

    def chart(min_cell: int = 0):
        return charts.decile_chart(deciles, title, value_label, percent, own, name, min_cell=min_cell)
    downloads.show(chart(), f"{m.id}_{key}_deciles", f, f.context(title),
                   lambda: exports.suppressed_csv(deciles, counts=["units"]), export=chart)
    words = [f"Each line is a centile of the {unit_word}' values in a quarter, over those with at least "
             f"{stats.MIN_DENOMINATOR} cases (the median bold; OpenPrescribing's decile chart), over the "
             f"{trends.HISTORY} quarters up to the period's end that \"what moved\" is judged on."]
    if unit_id is not None:
        words.append(f"{md(name)}'s own value is drawn in quarters with at least {stats.MIN_DENOMINATOR} cases"
                     + ("." if own is not None and len(own) else ": none has so many, so no line is drawn."))
    if left_out:
        words.append("Not drawn, not measured in full: " + ", ".join(
            f"{charts.quarter_label(q)} ({st_.word or coverage.PROVISIONAL})" for q, st_ in left_out) + ".")
    st.caption(" ".join(words))
