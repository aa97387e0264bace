"""Clinician variation: one measure's funnel plot, caterpillar, clinics, trend and the table behind them."""
from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from analysis import charts, coverage, dose, dose_unknown, exports, measures, report, stats
from analysis.display import md
from dashboard import data, downloads, filters, viewer


TABS = ("Ranked, allowing for chance", "By clinic", "Are we converging?", "The numbers")


def trend(f: filters.Filters, measure: measures.Measure) -> pd.DataFrame:
    """Consistency indices for each quarter of the period (each quarter's rows come from the cache)."""
    out = []
    for q_start, q_end in measures.quarters(f.start, f.end):
        # analysis.coverage: a quarter whose days are not all measurable is shaded on the chart
        state = f.measurability(measure, q_start, q_end)
        if not state.has_figure:
            # No patient's record can measure it (queries/_measurable_patients.sql): no point, but the quarter
            # stays on the chart, shaded with its state, so the gap says why.
            out.append({"quarter_start": q_start, "measurement": state.state})
            continue
        result = data.compared(measure, f.measure_params(measure, q_start, q_end), f.clinicians)
        if result is not None and len(result.units) >= 2:
            out.append({"quarter_start": q_start, **stats.indices(result, measure.kind), "measurement": state.state})
    return pd.DataFrame(out)


def quarter_spans(by_quarter: pd.DataFrame) -> list[tuple[object, object, str]]:
    """Shaded stretches of the quarterly chart (a point stands on the quarter's first day): each incomplete
    quarter from halfway to the quarter before to halfway to the next, so neighbouring shades meet."""
    half = pd.Timedelta(days=45)
    return [(pd.Timestamp(q) - half, pd.Timestamp(q) + half, state)
            for q, state in zip(by_quarter["quarter_start"], by_quarter["measurement"]) if state != coverage.COMPLETE]


def _linked(f: filters.Filters, units, measure) -> Callable[[list[str]], str]:
    """Join shown unit labels for a sentence: each clinician a link to its profile with the same filters
    (the pseudonym's code, never an id, in the link); clinic names as plain text. Labels are escaped."""
    if measure.unit != "clinician":
        return lambda labels: ", ".join(md(x) for x in labels)
    code_of = {label: f.codes.get(unit) for unit, label in zip(units["unit_id"], units["unit_label"])}

    def join(labels: list[str]) -> str:
        out = []
        for label in labels:
            code = code_of.get(label)
            query = urlencode({**filters.link_params(f), "clinician": code}, doseq=True) if code else ""
            out.append(f"[{md(label)}](/profile?{query})" if code else md(label))
        return ", ".join(out)
    return join


def render() -> None:
    viewer.require("variation")
    st.title("Clinician variation")
    f = filters.current()
    if f is None:
        return

    # Ask
    options = [m.id for m in f.measures()]
    filters.page_choice("measure", options)
    cols = st.columns([3, 2])
    measure_id = cols[0].selectbox("Measure", options, format_func=lambda i: f.measure(i).title, key="measure")
    filters.remember("measure", measure_id)
    measure = f.measure(measure_id)
    unit_word = "clinics" if measure.unit == "clinic" else "clinicians"
    state = f.measurability(measure)     # the data's start and end (analysis.coverage)
    if not state.has_figure:
        st.info(f"**{md(measure.title)}** {f.span}: {state.word}. {md(state.sentence())} Choose another period "
                "(the Methods page explains the rule).", icon=":material/hourglass_empty:")
        return
    if not state.complete:
        st.warning(f"**Provisional.** {md(state.sentence())}", icon=":material/hourglass_top:")

    # Fetch and summarise
    try:
        result = data.compared(measure, f.measure_params(measure), f.clinicians)
    except data.DataUnavailable as e:
        st.error(str(e), icon=":material/error:")
        return
    if result is None:
        st.info(f"No patients count towards this measure {f.span} ({md(f.scope)}). "
                "Try a longer period, more clinics or another measure.", icon=":material/info:")
        return
    units = f.labelled(result.units, measure)
    shown = units[units["denominator"] >= f.min_patients]
    percent = measure.kind == "proportion"
    value_label = "Share of patients" if percent else measure.value_unit
    highlight = cols[1].selectbox("Highlight", ["(nobody)"] + sorted(shown["unit_label"]), key="highlight",
                                  help="Mark one clinician (or clinic) on the charts.")

    # Show
    st.caption(measure.why)
    if dose_unknown.is_dose_based(measure.query):
        unknown = f.keep(data.query(measure.query, **{**f.measure_params(measure), "dose_unknown": True}))
        what = "tapers" if measure.query == "measure_taper_rapid" else "patients"
        if note := dose_unknown.left_out(len(unknown), what):
            st.warning(f"{note}. A prescription in supply in the period had no MME factor under "
                       f"{dose.FACTOR_SETS[f.factor_set]}, or no quantity, so their dose cannot be computed; they are not counted "
                       "as 0 MME. The Data quality page lists the drugs.", icon=":material/warning:")
    flagged = units[units["flag"].isin(["high", "low"])]
    judged = int((units["flag"] != "too_few").sum())
    idx = stats.indices(result, measure.kind)   # the same period statistic as the Overview and the report
    index_name, index_key = (("Median odds ratio", "median_odds_ratio") if measure.kind == "proportion"
                             else ("90th/10th centile ratio", "p90_p10_ratio"))
    # The headline: what a leader asks, in one sentence, the clinicians who stand out named (each a link to
    # its profile); the statistics behind it are in "Technical details" below the chart.
    st.markdown(f"**{report.standout_sentence(units, measure, _linked(f, units, measure))}**")
    metrics = st.columns(4)
    metrics[0].metric(unit_word.capitalize(), f"{len(units):,}",
                      help=f"{judged:,} with at least {stats.MIN_DENOMINATOR} {report.case_word(measure)} "
                           "(judged); the others are too few to judge.")
    metrics[1].metric("Stand out", f"{len(flagged):,} of {judged:,}" if judged else "none judged",
                      help="Outside the range chance explains: the 99.8% funnel limits, widened when the "
                           "clinicians differ more than chance alone would make them (overdispersion).")
    metrics[2].metric("Better when", {"lower": "Lower", "higher": "Higher"}.get(measure.direction, "Neither"),
                      help="Which way is better for patients, from the measure's declaration (Methods page)."
                      if measure.direction != "neutral" else "Neither higher nor lower is better in itself: "
                      "no verdict is drawn.")
    metrics[3].metric("Pooled value", measures.describe_value(result.pooled, measure),
                      help=f"All the {unit_word} selected taken together.")
    if not judged:
        st.info(f"{report.too_few_sentence(measure)}: the funnel shows them as too few to judge, and none is "
                "flagged. A longer period or a wider selection may give a comparison.", icon=":material/info:")
    if shown.empty:
        st.info(f"No {unit_word[:-1]} has {f.min_patients} patients or more in this measure. Lower the minimum "
                "in the sidebar.", icon=":material/info:")
        return
    lines = stats.funnel_lines(result, float(units["denominator"].max()))
    title = f"{measure.title}: {unit_word} compared, {f.period}"
    funnel = charts.funnel_chart(shown, lines, title, value_label, result.pooled, percent, measure.direction)
    caterpillar = charts.caterpillar_chart(shown, f"{measure.title}: shrunken values with 95% intervals, "
                                                  f"{f.period}", value_label, result.pooled, percent)
    if highlight != "(nobody)":
        row = shown[shown["unit_label"] == highlight].iloc[0]
        charts.highlight(funnel, row["denominator"], row["value"], highlight, percent)
        rank = int((shown["shrunk_value"] < row["shrunk_value"]).sum()) + 1
        charts.highlight(caterpillar, rank, row["shrunk_value"], highlight, percent)
    context = f.context(measure.title, clinicians=len(units) if measure.unit == "clinician" else None,
                        patients=int(units["denominator"].sum()) if measure.kind == "proportion" else None)
    csv = lambda: exports.measure_csv(units, measure)  # noqa: E731 - built only when the button is pressed
    downloads.show(funnel, f"{measure.id}_funnel", f, context, csv)
    hidden = len(units) - len(shown)
    with st.expander("Technical details"):
        st.markdown(
            f"- **{index_name}: {report.index_text(idx[index_key], idx['estimable'])}**. "
            + ("The typical ratio between the odds of two clinicians picked at random, after chance is allowed "
               "for (1 = no difference; Merlo 2006)" if index_key == "median_odds_ratio" else
               "The 90th centile of the clinicians' shrunken values divided by the 10th")
            + f"; estimated between {unit_word} with at least {stats.MIN_DENOMINATOR} cases, when at least "
            f"{stats.MIN_UNITS} have them.\n"
            f"- **Overdispersion φ = {result.phi:.2f}**: how much more the {unit_word} differ than chance alone "
            "would make them (1 = as chance; winsorised z-scores, Spiegelhalter 2005).\n"
            f"- **τ² = {result.tau2:.3g}**: the between-{unit_word[:-1]} variance added to the limits when φ > 1 "
            "(DerSimonian–Laird), so that only the differences chance and ordinary variation cannot explain are "
            "flagged.\n"
            f"- **Limits used: {md(result.limits)}**.\n"
            "- **Shrunken values** (the Ranked tab): each value pulled towards the pooled one in proportion to "
            "how little data it rests on (beta-binomial empirical Bayes), so a small clinician's extreme value "
            "is not read as a verdict.")
    st.caption(f"Limits: {result.limits} around the pooled value of "
               f"the {unit_word} selected ({md(f.scope)}). {unit_word.capitalize()} with fewer than "
               f"{stats.MIN_DENOMINATOR} {report.case_word(measure)} are too few to judge (hollow markers), never "
               "flagged; one at 0% or 100% is flagged only when chance under the pooled value cannot explain it"
               + (f"; {hidden:,} with fewer than {f.min_patients} patients are counted but not drawn" if hidden else "")
               + f". Numerator: {measure.numerator}. Denominator: {measure.denominator}. "
               f"Attribution: {measures.ATTRIBUTION_RULE}")
    # The detail comes in tabs that run only when opened (each chart costs the browser time to draw).
    ranked_tab, clinic_tab, quarter_tab, table_tab = filters.tabs("view", TABS)
    with ranked_tab:
        if ranked_tab.open:
            downloads.show(caterpillar, f"{measure.id}_ranked", f, context, csv)
    with clinic_tab:
        if clinic_tab.open:
            if measure.unit == "clinician":
                downloads.show(charts.clinic_distribution_chart(
                    shown, f"{measure.title}: clinicians' shrunken values by clinic, {f.period}", value_label,
                    result.pooled, percent), f"{measure.id}_by_clinic", f, context, csv)
            else:
                st.info("This measure is compared between clinics: see the funnel plot above.", icon=":material/info:")
    with quarter_tab:
        if quarter_tab.open:
            by_quarter = trend(f, measure)
            if len(by_quarter) >= 2:
                if not by_quarter["estimable"].all():
                    st.caption(f"Quarters with fewer than {stats.MIN_UNITS} {unit_word} of {stats.MIN_DENOMINATOR} "
                               "cases are left blank: too few to estimate.")
                index, name = (("median_odds_ratio", "median odds ratio") if measure.kind == "proportion"
                               else ("p90_p10_ratio", "90th/10th centile ratio"))
                # Only quarters measured in full are compared (a provisional quarter may still change).
                complete = by_quarter[by_quarter["measurement"] == coverage.COMPLETE]
                if sentence := report.trend_sentence(complete, index, name, unit_word=unit_word):
                    st.markdown(sentence)
                fig = charts.shade_incomplete(
                    charts.consistency_trend_chart(
                        by_quarter, f"{measure.title}: are we converging? Variation between {unit_word} by quarter",
                        index),
                    quarter_spans(by_quarter),
                    "Shaded quarters: some of their days cannot be measured yet (see the Methods page); "
                    f"data run from {f.data_start:%d %b %Y} to {f.data_end:%d %b %Y}.")
                downloads.show(fig, f"{measure.id}_by_quarter", f, context,
                    lambda: exports.suppressed_csv(by_quarter, counts=[]))
            else:
                st.info("Pick a period of two quarters or more to see whether variation is narrowing.",
                        icon=":material/info:")
    with table_tab:
        if table_tab.open:
            _table(shown, measure, percent)


def _table(shown: pd.DataFrame, measure: measures.Measure, percent: bool) -> None:
    st.caption("The numbers behind the charts: shrunken values allow for chance; flags are outside the 99.8% limits.")
    fmt = "percent" if percent else "%.1f"
    table = shown[["unit_label", "clinic_name", "numerator", "denominator", "value", "shrunk_value", "shrunk_lower",
                   "shrunk_upper", "flag"]].sort_values("shrunk_value", ascending=False)
    table["flag"] = table["flag"].map(lambda x: stats.FLAG_WORDS.get(x, x))
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"unit_label": "Clinic" if measure.unit == "clinic" else "Clinician",
                                "clinic_name": "Clinic",
                                "numerator": st.column_config.NumberColumn(
                                    "Numerator", format="%d" if percent else "%.0f"),
                                "denominator": "Patients",
                                "value": st.column_config.NumberColumn("Value", format=fmt),
                                "shrunk_value": st.column_config.NumberColumn("Shrunken", format=fmt),
                                "shrunk_lower": st.column_config.NumberColumn("95% from", format=fmt),
                                "shrunk_upper": st.column_config.NumberColumn("95% to", format=fmt),
                                "flag": "Against the 99.8% limits"})
