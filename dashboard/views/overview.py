"""Overview: the period's headline figures against the previous period, and where clinicians differ most."""
from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import streamlit as st

from analysis import charts, coverage, dose, dose_unknown, exports, measures, report, stats, trends
from analysis.display import md
from dashboard import data, downloads, filters, over_time, pages, viewer


def headline(f: filters.Filters, start: dt.date, end: dt.date) -> dict[str, float]:
    """The headline figures for one period among the selected clinicians' patients; worked out once per filters,
    period and data version for every session (data.computed)."""
    return data.computed(headline_now, f, start, end)


def headline_now(f: filters.Filters, start: dt.date, end: dt.date) -> dict[str, float]:
    """headline, worked out now."""
    def rows(measure_id: str, unknown: bool = False) -> pd.DataFrame:
        m = f.measure(measure_id)
        return f.keep(data.query(m.query, **{**f.measure_params(m, start, end), "dose_unknown": unknown}))

    def period_tapers(unknown: bool) -> pd.DataFrame:
        t = f.keep(data.query("tapers_attributed", **{**f.taper_params(), "dose_unknown": unknown}))
        return t[(t["taper_start"] >= start) & (t["taper_start"] <= end)]

    opioid = rows("multiple_prescribers")
    ltot = rows("high_dose_90")
    ltot_low = rows("high_dose_50")
    # Long-term patients whose dose is unknown are left out of the dose shares, not counted at 0 MME; they
    # are still long-term patients (analysis.dose_unknown).
    ltot_unknown = rows("high_dose_90", unknown=True)
    tapers = period_tapers(False)
    share = lambda s: float(s.astype(bool).mean()) if len(s) else math.nan  # noqa: E731
    return {
        "opioid_patients": len(opioid),
        "ltot_patients": len(ltot) + len(ltot_unknown),
        "ltot_dose_unknown": len(ltot_unknown),
        "tapers_dose_unknown": len(period_tapers(True)),
        "share_low": share(ltot_low["in_numerator"]),
        "share_high": share(ltot["in_numerator"]),
        "tapers": len(tapers),
        "share_rapid": share(tapers["max_monthly_reduction_pct"] > f.rapid_min_pct),
        "abrupt": int((tapers["category"] == "abrupt_discontinuation").sum()),
    }


def states(f: filters.Filters, start: dt.date, end: dt.date) -> dict[str, coverage.Measurability]:
    """Each headline figure's measurability over start..end: that of the measure it is computed from."""
    return {key: f.measurability(f.measure(i), start, end) for key, i in measures.HEADLINE_MEASURE.items()}


def monthly_tapers(f: filters.Filters) -> tuple[pd.DataFrame, list[coverage.Measurability]]:
    """Tapers starting in each month of the period (month, tapers; every month present) and each month's
    measurability under the taper's own needs (baseline before, follow-up after)."""
    # The headline's tapers: those whose dose is known (analysis.dose_unknown), so the bars add up to the card.
    tapers = f.keep(data.query("tapers_attributed", **{**f.taper_params(), "dose_unknown": False}))
    months = coverage.month_states(measures.needs(f.measure("taper_rapid"), tapers=f.tapers()), f.start, f.end,
                                   f.data_start, f.data_end)
    starts = pd.to_datetime(tapers["taper_start"])
    inside = starts[(tapers["taper_start"] >= f.start) & (tapers["taper_start"] <= f.end)]
    counts = inside.dt.to_period("M").value_counts()
    return pd.DataFrame({"month": [pd.Timestamp(m.start.replace(day=1)) for m in months],
                         "tapers": [int(counts.get(pd.Period(m.start, "M"), 0)) for m in months],
                         "measurement": [m.state for m in months]}), months


def _spans(months: list[coverage.Measurability]) -> list[tuple[object, object, str]]:
    """Shaded stretches of a monthly bar chart (a bar stands on the month's first day): each incomplete month
    from halfway to the month before to halfway to the month after, so neighbouring shades meet."""
    def first(month: dt.date, shift: int) -> pd.Timestamp:
        return pd.Timestamp(dose.add_months(month.replace(day=1), shift))

    return [(first(m.start, 0) - (first(m.start, 0) - first(m.start, -1)) / 2,
             first(m.start, 0) + (first(m.start, 1) - first(m.start, 0)) / 2, m.state)
            for m in months if not m.complete]


def ranking(f: filters.Filters) -> pd.DataFrame:
    """Measures ranked by how much clinicians differ: median odds ratio (proportions), then the rest; worked out
    once per filters and data version for every session (data.computed)."""
    return data.computed(ranking_now, f)


def ranking_now(f: filters.Filters) -> pd.DataFrame:
    """ranking, worked out now."""
    out = []
    for m in f.measures():
        result = data.compared(m, f.measure_params(m), f.clinicians)
        if result is None or len(result.units) < report.MIN_TO_COMPARE:
            continue
        idx = stats.indices(result, m.kind)   # the same period statistic as the report pack's reading
        flagged = int(result.units["flag"].isin(["high", "low"]).sum())
        out.append({"measure_id": m.id, "measure": m.title, "unit": m.unit, "units": idx["units"],
                    "pooled": measures.describe_value(idx["pooled_value"], m), "mor": idx["median_odds_ratio"],
                    "p90_p10": idx["p90_p10_ratio"], "phi": idx["phi"], "flagged": flagged,
                    "judged": idx["judged_units"], "estimable": idx["estimable"], "kind": m.kind})
    table = pd.DataFrame(out)
    if table.empty:
        return table
    return table.sort_values(["mor", "p90_p10"], ascending=False, na_position="last").reset_index(drop=True)


def queries(f: filters.Filters) -> list[tuple[str, dict[str, object]]]:
    """Every query the page runs, so they can run side by side (data.warm) before it reads them."""
    calls = [(m.query, f.measure_params(m)) for m in f.measures()] + [("tapers_attributed", f.taper_params())]
    if previous := f.previous():
        calls += [(f.measure(i).query, f.measure_params(f.measure(i), *previous))
                  for i in ("multiple_prescribers", "high_dose_90", "high_dose_50")]
    return calls


def report_pdf(f: filters.Filters) -> bytes:
    """The report pack (analysis.report) for the sidebar's period, clinics, specialties and thresholds."""
    with data.engine(data.database_url()).connect() as conn:
        page = report.build(conn, f.settings(), f.clinics, f.specialties)
    return exports.pdf_bytes(page)


def md_lines(lines: list[str]) -> str:
    """Sentences as a Markdown list (each already made literal where it holds data text)."""
    return "\n".join(f"- {line}" for line in lines)


def comparison_lines(cards: tuple, now: dict[str, coverage.Measurability], before: dict[str, coverage.Measurability],
                     previous: tuple[dt.date, dt.date] | None) -> list[str]:
    """What the cards are compared with and which are not compared, and why, in plain sentences."""
    def names(keys: list[str]) -> str:
        return "; ".join(label for label, k, _ in cards if k in keys)

    if previous is None:
        return ["No change is shown: the data do not reach back to the previous period."]
    dates = f"{previous[0]:%d %b %Y} to {previous[1]:%d %b %Y}"
    whole_year = (previous[0].month, previous[0].day, previous[1].month, previous[1].day) == (1, 1, 12, 31) \
        and previous[0].year == previous[1].year
    lines = [f"Changes are against the previous period, {f'{previous[0].year} ({dates})' if whole_year else dates}."]
    not_now = [k for k, s in now.items() if not s.complete]
    not_before = [k for k, s in before.items() if s.complete is False and k not in not_now]
    if not_now:
        lines.append(f"No change is shown for {md(names(not_now))}: this period's figure is not complete "
                     "(hover over a card for why).")
    if not_before:
        reasons = sorted({before[k].reason() for k in not_before})
        lines.append(f"No change is shown for {md(names(not_before))}: the previous period cannot be fully "
                     f"measured ({md('; '.join(reasons))}).")
    return lines


def _delta(now: float, before: float | None, percent: bool) -> str | None:
    if before is None or now != now or before != before:
        return None
    diff = now - before
    text = f"{diff * 100:+.1f} points" if percent else f"{diff:+,.0f}"
    # A change that rounds to nothing is said in words, with no arrow ("↑ +0" read as a rise).
    return NO_CHANGE if text.lstrip("+-") in ("0", "0.0 points") else text


NO_CHANGE = "no change"


def _what_moved(f: filters.Filters) -> None:
    """What moved since the quarter before, up and down, in plain words (analysis.trends, as the digest)."""
    st.subheader("What moved since last quarter")
    try:
        rows, judged = over_time.moved(f)
    except data.DataUnavailable as e:
        st.error(str(e), icon=":material/error:")
        return
    if not judged:
        st.info("No quarter of the period is measured in full yet, so nothing can be said to have moved.",
                icon=":material/info:")
        return
    quarters = sorted({charts.quarter_label(q) for q in judged.values()})
    up, down = over_time.moved_lines(rows, "up"), over_time.moved_lines(rows, "down")
    st.caption(f"Sustained shifts in a clinician's figure completed in {', '.join(quarters)} (each measure's last "
               f"quarter measured in full), judged over the {trends.HISTORY} quarters up to it against the "
               "clinician's own earlier level and the peers of each quarter: never one quarter alone (a CUSUM; "
               "the Methods page explains it). `rxdash digest` writes the same for a committee.")
    if not up and not down:
        st.markdown("No clinician's figure moved in a sustained way.")
        return
    if up:
        st.markdown("**Up**\n" + "\n".join(f"- {line}" for line in up))
    if down:
        st.markdown("**Down**\n" + "\n".join(f"- {line}" for line in down))


def render() -> None:
    viewer.require("overview")
    st.title("Prescribing consistency")
    f = filters.current()
    if f is None:
        return
    head, button = st.columns([4, 1], vertical_alignment="center")
    head.caption(f"How consistently clinicians prescribe opioids for persistent pain, and how fast they taper: "
                 f"{f.period}, {md(f.scope)}.")
    with button:
        downloads.document("Report pack (PDF)", lambda: report_pdf(f), f"report_pack_{f.start}_{f.end}.pdf", f,
                           "One document for a quality committee: the rules in force, these figures, every "
                           "measure's funnel with a plain reading, the taper panels and the methods. Pseudonymous "
                           "clinicians; counts from 1 to 10 suppressed. Takes about half a minute.")
    previous = f.previous()
    try:
        data.warm(queries(f))
        now = headline(f, f.start, f.end)
        before = headline(f, *previous) if previous else {}
        monthly = data.query("monthly_opioid_fills", start=f.start, end=f.end, exclude=f.dose().exclude,
                             **f.clinician_params())
        no_dose = f.keep(data.query("period_dose_coverage", start=f.start, end=f.end, **f.dose().sql()))
        ranked = ranking(f)
    except data.DataUnavailable as e:
        st.error(str(e), icon=":material/error:")
        return
    if now["opioid_patients"] == 0:
        st.info(f"No opioid fills by the selected clinicians {f.span}. Widen the period or the "
                "clinic and specialty filters.", icon=":material/info:")
        return

    # Headline figures; deltas against the calendar-aligned previous period. The colour of a delta says
    # only up or down (Streamlit's default green/red would pass a verdict), so it is switched off.
    cards = (("Patients with an opioid fill", "opioid_patients", False),
             ("On long-term opioid therapy", "ltot_patients", False),
             (f"Long-term at ≥ {f.low_mme:g} MME a day", "share_low", True),
             (f"Long-term at ≥ {f.high_mme:g} MME a day", "share_high", True),
             ("Tapers and discontinuations", "tapers", False),
             (f"Tapers faster than {f.rapid_min_pct:g}%/month", "share_rapid", True),
             ("Abrupt discontinuations", "abrupt", False))
    if warning := dose_unknown.warning(no_dose, dose.FACTOR_SETS[f.factor_set]):
        st.warning(warning, icon=":material/warning:")
    now_states = states(f, f.start, f.end)
    before_states = states(f, *previous) if previous else {}
    for i, (label, key, percent) in enumerate(cards):
        if i % 4 == 0:   # one row of columns per four cards, so a card with a tag does not push its column down
            cols = st.columns(4)
        value, state = now[key], now_states[key]
        shown = "–" if value != value else (f"{value:.1%}" if percent else f"{value:,}")
        if not state.has_figure:      # not measurable yet, or the period is too short: the words, no number
            cols[i % 4].metric(label, "–", state.word, delta_color="off", delta_arrow="off", help=state.sentence())
        elif not state.complete:      # provisional: the number, marked, never compared
            cols[i % 4].metric(label, shown, "provisional", delta_color="off", delta_arrow="off",
                               help=state.sentence())
        else:
            comparable = previous is not None and before_states[key].complete
            delta = _delta(value, before.get(key), percent) if comparable else None
            cols[i % 4].metric(label, shown, delta, delta_color="off",
                               delta_arrow="off" if delta == NO_CHANGE else "auto")
    st.markdown(md_lines(comparison_lines(cards, now_states, before_states, previous)))
    left_out = [t for t in (dose_unknown.left_out(now["ltot_dose_unknown"], "long-term patients"),
                            dose_unknown.left_out(now["tapers_dose_unknown"], "tapers")) if t]
    if left_out:
        st.caption(f"Dose figures (long-term at ≥ {f.low_mme:g} and ≥ {f.high_mme:g} MME a day, tapers): "
                   + "; ".join(left_out) + ". A prescription in supply had no MME factor under "
                   + dose.FACTOR_SETS[f.factor_set] + ", or no quantity (see the Data quality page).")

    st.subheader("Where clinicians differ most")
    if ranked.empty:
        st.info(report.too_few_to_compare(), icon=":material/info:")
    else:
        st.caption("Measures ranked by the median odds ratio (MOR): the typical ratio between the odds of two "
                   "clinicians picked at random, after chance is allowed for (1 = no difference; Merlo 2006). "
                   "The average dose has no MOR and comes last, with its ratio of the 90th to the 10th centile. "
                   f"Both are estimated over clinicians with at least {stats.MIN_DENOMINATOR} cases, and only when "
                   f"at least {stats.MIN_UNITS} have them (else: too few to estimate); \"outside limits\" counts "
                   f"those judged, i.e. with at least {stats.MIN_DENOMINATOR} cases.")
        header = st.columns([4, 1, 1, 1, 1, 1])
        for col, text in zip(header, ("Measure", "Compared", "Pooled", "MOR", "P90/P10", "Outside limits")):
            col.markdown(f"**{text}**")
        for row in ranked.itertuples():
            state = f.measurability(f.measure(row.measure_id))
            if not state.has_figure:
                continue    # listed below with the reason, not ranked on a figure that cannot be met
            cells = st.columns([4, 1, 1, 1, 1, 1])
            cells[0].page_link(pages.page("variation"), label=row.measure, icon=":material/scatter_plot:",
                               query_params={"measure": row.measure_id})
            cells[1].write(f"{row.units:,} {'clinics' if row.unit == 'clinic' else 'clinicians'}")
            cells[2].write(row.pooled if state.complete else f"{row.pooled}  \n:gray[provisional]")
            cells[3].write("–" if row.kind != "proportion" else report.index_text(row.mor, row.estimable))
            cells[4].write(report.index_text(row.p90_p10, row.estimable))
            cells[5].write(f"{row.flagged:,} of {row.judged:,} judged" if row.judged else
                           f"{report.too_few_sentence(f.measure(row.measure_id))}.")

    unmet = [(m, st_) for m in f.measures() if not (st_ := f.measurability(m)).has_figure]
    provisional = [m.title for m in f.measures() if f.measurability(m).state == coverage.PROVISIONAL]
    notes = [f"**{md(m.title)}**: {st_.word}: {md(st_.reason())}." for m, st_ in unmet]
    if provisional:
        notes.append("Provisional (some days of the period cannot be measured yet; see the Methods page): "
                     + md(", ".join(provisional)) + ".")
    if notes:
        st.markdown(md_lines(notes))

    _what_moved(f)

    tapers_by_month, months = monthly_tapers(f)
    if tapers_by_month["tapers"].sum() or not all(m.complete for m in months):
        needs = measures.needs(f.measure("taper_rapid"), tapers=f.tapers())

        def tapers_chart(min_cell: int = 0):
            return charts.shade_incomplete(
                charts.monthly_tapers_chart(tapers_by_month, f.period, min_cell=min_cell), _spans(months),
                f"Shaded months: a taper needs a {needs.before}-day baseline before its start and a {needs.after}-day "
                f"follow-up after it; data run from {f.data_start:%d %b %Y} to {f.data_end:%d %b %Y}.")
        downloads.show(tapers_chart(), "tapers_by_month", f, f.context("Tapers and discontinuations, by month of start"),
                       lambda: exports.suppressed_csv(tapers_by_month, counts=["tapers"]), export=tapers_chart)

    if not monthly.empty:
        def fills_chart(min_cell: int = 0):
            return charts.monthly_fills_chart(monthly, f.period, min_cell=min_cell)
        downloads.show(fills_chart(), "opioid_fills_by_month", f,
                       f.context("Patients filling an opioid analgesic, by month"),
                       lambda: exports.suppressed_csv(monthly, counts=["patients", "prescriptions"]),
                       export=fills_chart)
