"""Clinician variation: one measure's funnel plot, caterpillar, clinics, trend and the table behind them."""
from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis import (casemix, charts, coverage, disclosure, dose, dose_unknown, exports, measures, report, stats,
                      trends)
from analysis.display import md, plotly_text
from dashboard import data, downloads, filters, over_time, viewer


TABS = ("Ranked, allowing for chance", "By clinic", "Are we converging?", "Over time", "The numbers")

# Fewer clinicians (or clinics) than this: nothing to compare (analysis/report.py: one rule for every page).
MIN_TO_COMPARE = report.MIN_TO_COMPARE
too_few_to_compare = report.too_few_to_compare


def only_one(units: pd.DataFrame, measure: measures.Measure, pooled: float, span: str) -> str:
    """What the one unit of a selection has, in words: 'Only Clinician AIH2N has patients in this measure
    01 Jan 2025 to 31 Dec 2025 (15.8%, 19 patients); a funnel, a ranking or a spread by clinic needs at least
    2 clinicians.'"""
    unit_word = "clinics" if measure.unit == "clinic" else "clinicians"
    who = md(units["unit_label"].iloc[0]) if len(units) else f"No {unit_word[:-1]}"
    n = int(units["denominator"].sum())
    return (f"Only {who} has {report.case_word(measure)} in this measure {span} "
            f"({measures.describe_value(pooled, measure)}, {n:,} {report.case_word(measure)}); a funnel, a "
            f"ranking or a spread by clinic needs at least {MIN_TO_COMPARE} {unit_word}.")


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
        if result is not None and len(result.units) >= MIN_TO_COMPARE:
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

    basis = basis_choice(measure)

    # Fetch and summarise
    try:
        observed = data.compared(measure, f.measure_params(measure), f.clinicians)
        adjusted = (data.compared(measure, f.measure_params(measure), f.clinicians, "adjusted", f.high_mme)
                    if basis == "adjusted" and observed is not None else None)
    except data.DataUnavailable as e:
        st.error(str(e), icon=":material/error:")
        return
    if observed is None:
        st.info(f"No patients count towards this measure {f.span} ({md(f.scope)}). "
                "Try a longer period, more clinics or another measure.", icon=":material/info:")
        return
    if basis == "adjusted" and adjusted is None:
        st.info(f"**Shown as observed.** Patient mix cannot be allowed for here: the model needs at least "
                f"{casemix.MIN_PATIENTS_TO_FIT} {report.case_word(measure)}, some in the numerator and some not.",
                icon=":material/info:")
    # Everything below draws `result`: the observed comparison, or O/E allowing for patient mix.
    result = adjusted if adjusted is not None else observed
    ratio = result.basis == "adjusted"
    units = f.labelled(result.units, measure)
    st.caption(measure.why)
    if dose_unknown.is_dose_based(measure.query):
        unknown = f.keep(data.query(measure.query, **{**f.measure_params(measure), "dose_unknown": True}))
        what = "tapers" if measure.query == "measure_taper_rapid" else "patients"
        if note := dose_unknown.left_out(len(unknown), what):
            st.warning(f"{note}. A prescription in supply in the period had no MME factor under "
                       f"{dose.FACTOR_SETS[f.factor_set]}, or no quantity, so their dose cannot be computed; they are not counted "
                       "as 0 MME. The Data quality page lists the drugs.", icon=":material/warning:")
    if len(units) < MIN_TO_COMPARE:
        # One clinician (a clinic and specialty leaving one, or a measure only one has cases in): a funnel of
        # one point and an empty ranking would mean nothing; say so, as the Overview does.
        st.info(f"**{too_few_to_compare(unit_word)}** {only_one(units, measure, observed.pooled, f.span)}",
                icon=":material/info:")
        return
    shown = units[units["denominator"] >= f.min_patients]
    percent = measure.kind == "proportion" and not ratio
    value_label = (RATIO_LABEL if ratio else "Share of patients" if percent else measure.value_unit)
    highlight = _highlight_choice(cols[1], f, shown, measure)

    # Show
    flagged = units[units["flag"].isin(["high", "low"])]
    judged = int((units["flag"] != "too_few").sum())
    idx = stats.indices(observed, measure.kind)   # the same period statistic as the Overview and the report
    index_name, index_key = (("Median odds ratio", "median_odds_ratio") if measure.kind == "proportion"
                             else ("90th/10th centile ratio", "p90_p10_ratio"))
    # The headline: what a leader asks, in one sentence, the clinicians who stand out named (each a link to
    # its profile); the statistics behind it are in "Technical details" below the chart.
    st.markdown(f"**{'Allowing for patient mix: ' if ratio else ''}"
                f"{report.standout_sentence(units, measure, _linked(f, units, measure))}**")
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
    metrics[3].metric("Pooled value", measures.describe_value(observed.pooled, measure),
                      help=f"All the {unit_word} selected taken together" + (
                          ": observed ÷ expected is 1 over all of them, by construction." if ratio else "."))
    if not judged:
        st.info(f"{report.too_few_sentence(measure)}: the funnel shows them as too few to judge, and none is "
                "flagged. A longer period or a wider selection may give a comparison.", icon=":material/info:")
    if shown.empty:
        st.info(f"No {unit_word[:-1]} has {f.min_patients} patients or more in this measure. Lower the minimum "
                "in the sidebar.", icon=":material/info:")
        return
    lines = stats.funnel_lines(result, float(units["expected" if ratio else "denominator"].max()))
    title = f"{measure.title}: {unit_word} compared{', allowing for patient mix' if ratio else ''}, {f.period}"
    # Each chart is a function of min_cell: 0 on screen, the disclosure rule's minimum for its files
    # (downloads.show); the highlighted unit is marked on every one where it is drawn.
    def drawn(min_cell: int) -> pd.DataFrame:
        """The units a chart draws: all shown ones on screen; those the rule does not withhold in a file."""
        if not disclosure.applies(min_cell):
            return shown
        return shown[~disclosure.withhold_units(shown["numerator"], shown["denominator"], measure.kind == "mean",
                                                min_cell)["withheld"].to_numpy()]

    def picked(min_cell: int) -> pd.Series | None:
        rows = drawn(min_cell)
        rows = rows[rows["unit_label"] == highlight]
        return rows.iloc[0] if highlight != NOBODY and len(rows) else None

    def funnel(min_cell: int = 0) -> go.Figure:
        fig = charts.funnel_chart(shown, lines, title, value_label, result.pooled, percent, measure.direction,
                                  min_cell=min_cell, unit=measure.unit, ratio=ratio)
        if (row := picked(min_cell)) is not None:
            charts.highlight(fig, row["expected" if ratio else "denominator"], row["value"], highlight, percent)
        return fig

    def caterpillar(min_cell: int = 0) -> go.Figure:
        fig = charts.caterpillar_chart(shown, f"{measure.title}: shrunken {'ratios' if ratio else 'values'} with 95% "
                                       f"intervals, {f.period}", value_label, result.pooled, percent, min_cell=min_cell,
                                       unit=measure.unit, ratio=ratio)
        if (row := picked(min_cell)) is not None:
            ranks = drawn(min_cell)["shrunk_value"]
            charts.highlight(fig, int((ranks < row["shrunk_value"]).sum()) + 1, row["shrunk_value"], highlight, percent)
        return fig

    def by_clinic(min_cell: int = 0) -> go.Figure:
        fig = charts.clinic_distribution_chart(shown, f"{measure.title}: clinicians' shrunken {'ratios' if ratio else 'values'}"
                                               f" by clinic, {f.period}", value_label, result.pooled, percent,
                                               min_cell=min_cell, ratio=ratio)
        if (row := picked(min_cell)) is not None:
            charts.highlight(fig, plotly_text(row["clinic_name"]), row["shrunk_value"], highlight, percent)
        return fig

    context = f.context(measure.title, clinicians=len(units) if measure.unit == "clinician" else None,
                        patients=int(units["denominator"].sum()) if measure.kind == "proportion" else None)
    csv = lambda: exports.measure_csv(units, measure)  # noqa: E731 - built only when the button is pressed
    downloads.show(funnel(), f"{measure.id}_funnel", f, context, csv, export=funnel)
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
            "how little data it rests on (beta-binomial empirical Bayes; for ratios, Poisson-gamma), so a small "
            "clinician's extreme value is not read as a verdict."
            + (f"\n- **Patient-mix model**: logistic regression on {casemix.label_list(result.model.characteristics)}"
               f" over the {result.model.patients:,} {report.case_word(measure)} selected; discrimination "
               f"(c-statistic) {result.model.c_statistic:.2f} (0.5 = the characteristics tell nothing, 1 = they "
               "tell everything). Its fit by tenth of predicted risk is on the Methods page."
               + (f" {md(result.model.note)}" if result.model.note else "") if ratio else ""))
    if ratio:
        st.caption(adjusted_caption(measure, result, unit_word))
    st.caption(f"Limits: {result.limits} around {'1 (as expected)' if ratio else 'the pooled value'} of "
               f"the {unit_word} selected ({md(f.scope)}). {unit_word.capitalize()} with fewer than "
               f"{stats.MIN_DENOMINATOR} {report.case_word(measure)} are too few to judge (hollow markers), never "
               "flagged; one at 0% or 100% is flagged only when chance under the "
               + ("patient-mix model" if ratio else "pooled value") + " cannot explain it"
               + (f"; {hidden:,} with fewer than {f.min_patients} patients are counted but not drawn" if hidden else "")
               + f". Numerator: {measure.numerator}. Denominator: {measure.denominator}. "
               f"Attribution: {measures.ATTRIBUTION_RULE}")
    # The detail comes in tabs that run only when opened (each chart costs the browser time to draw).
    ranked_tab, clinic_tab, quarter_tab, time_tab, table_tab = filters.tabs("view", TABS)
    with ranked_tab:
        if ranked_tab.open:
            downloads.show(caterpillar(), f"{measure.id}_ranked", f, context, csv, export=caterpillar)
            # A newcomer read every interval clear of the pooled line as "stands out": say what the flags use.
            allows = (", which also allow for the ordinary differences between colleagues"
                      if "random" in result.limits.lower() else "")
            st.caption(f"Each line is a 95% interval for one {unit_word[:-1]}'s shrunken value. An interval clear "
                       "of the pooled line is not a flag: who stands out is judged on the funnel, against its "
                       f"limits ({md(result.limits)}{allows}; see Technical details).")
    with clinic_tab:
        if clinic_tab.open:
            if measure.unit == "clinician":
                downloads.show(by_clinic(), f"{measure.id}_by_clinic", f, context, csv, export=by_clinic)
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
                if by_quarter[index].notna().any():
                    # With no quarter estimable the sentence says so; an empty chart would not.
                    fig = charts.shade_incomplete(
                        charts.consistency_trend_chart(
                            by_quarter, f"{measure.title}: are we converging? Variation between {unit_word} by quarter",
                            index),
                        quarter_spans(by_quarter),
                        "Shaded quarters: some of their days cannot be measured yet (see the Methods page); "
                        f"data run from {f.data_start:%d %b %Y} to {f.data_end:%d %b %Y}.")
                    # The variation index by quarter: a statistic over units, no count drawn.
                    downloads.show(fig, f"{measure.id}_by_quarter", f, context,
                                   lambda: exports.suppressed_csv(by_quarter, counts=[]), export=downloads.NO_COUNTS)
            else:
                st.info("Pick a period of two quarters or more to see whether variation is narrowing.",
                        icon=":material/info:")
    with time_tab:
        if time_tab.open:
            marked = shown.loc[shown["unit_label"] == highlight, "unit_id"]
            over_time.decile_section(f, measure, marked.iloc[0] if highlight != NOBODY and len(marked) else None,
                                     highlight, "variation")
            _what_moved(f, measure)
    with table_tab:
        if table_tab.open:
            _table(shown, measure, percent, highlight, ratio)


NOBODY = "(nobody)"


def _what_moved(f: filters.Filters, measure: measures.Measure) -> None:
    """The sustained shifts (analysis.trends) signalled in the period's last quarter measured in full."""
    rows, q = over_time.moved_for(f, measure)
    if q is None:
        st.caption("What moved: no quarter of the period is measured in full yet.")
        return
    lines = over_time.moved_lines(rows, "up") + over_time.moved_lines(rows, "down")
    st.markdown(f"**What moved in {charts.quarter_label(q)}** (a sustained shift, judged over the "
                f"{trends.HISTORY} quarters up to it; the Methods page explains the CUSUM): "
                + ("; ".join(lines) + "." if lines else "no clinician's figure shifted in a sustained way."))


RATIO_LABEL = "Observed ÷ expected (1 = as expected)"


def basis_choice(measure: measures.Measure) -> str:
    """The Compare choice, "observed" or "adjusted" (allowing for patient mix), kept in the page's link
    (`?basis=adjusted`); a measure that is not adjusted says why and is shown as observed."""
    options = list(measures.BASES)
    filters.page_choice("basis", options)
    if not measures.adjustable(measure):
        st.caption(f"Shown as observed. {md(measure.adjust_why)}")
        return "observed"
    basis = st.radio("Compare", options, format_func=measures.BASES.get, horizontal=True, key="basis",
                     help="As observed: each clinician's own share. Allowing for patient mix: each clinician's count "
                          "against the count expected for their patients' "
                          f"{casemix.label_list(measure.adjust_for)} (Methods page).")
    filters.remember("basis", basis)
    return basis


def adjusted_caption(measure: measures.Measure, result: stats.Funnel, unit_word: str) -> str:
    """What the adjusted funnel shows, the characteristics listed and why they are allowed for."""
    return (f"**Allowing for patient mix**: each {unit_word[:-1]}'s observed count of {report.case_word(measure)} in "
            f"the numerator against the count expected for their patients' "
            f"{casemix.label_list(result.model.characteristics)}, from one logistic regression over all the "
            f"{unit_word} selected. 1 = as expected for those patients; 1.5 = half as many again. "
            f"Why these: {md(measure.adjust_why)} Switch to As observed for the shares themselves.")


def _highlight_choice(where, f: filters.Filters, shown: pd.DataFrame, measure: measures.Measure) -> str:
    """The Highlight box, kept in the link (`?highlight=7KQ2F`: the pseudonym's code for a clinician, the
    clinic's id for a clinic; never a name), so a shared link marks the same unit."""
    options = [NOBODY] + sorted(shown["unit_label"])
    key_of = {label: (f.codes.get(u) if measure.unit == "clinician" else u)
              for u, label in zip(shown["unit_id"], shown["unit_label"])}
    label_of = {k: label for label, k in key_of.items() if k}
    if (incoming := filters.fresh("highlight")) and incoming[0] in label_of:
        st.session_state["highlight"] = label_of[incoming[0]]
    elif st.session_state.get("highlight") not in options:   # another measure, or a narrower selection
        st.session_state["highlight"] = st.session_state.get("_kept_highlight_label") \
            if st.session_state.get("_kept_highlight_label") in options else NOBODY
    chosen = where.selectbox("Highlight", options, key="highlight",
                             help="Mark one clinician (or clinic) on every chart and table of this page; kept in "
                                  "the page's link.")
    if chosen != NOBODY and key_of.get(chosen):
        filters.remember("highlight", key_of[chosen])
        st.session_state["_kept_highlight_label"] = chosen
    else:
        st.session_state.pop("_kept_highlight_label", None)
    return chosen


def _table(shown: pd.DataFrame, measure: measures.Measure, percent: bool, highlight: str = NOBODY,
           ratio: bool = False) -> None:
    st.caption("The numbers behind the charts: shrunken values allow for chance; flags are outside the 99.8% limits."
               + (" Values are observed ÷ expected for the patient mix; Expected is the count expected." if ratio else "")
               + (f" ★ marks {md(highlight)}." if highlight != NOBODY else ""))
    # One precision per column: shares as percentages with one decimal ("56.5%", "40.0%"), doses one decimal,
    # ratios two.
    fmt = "%.2f" if ratio else "%.1f%%" if percent else "%.1f"
    table = shown[["unit_label", "clinic_name", "numerator", "denominator"] + (["expected"] if ratio else [])
                  + ["value", "shrunk_value", "shrunk_lower", "shrunk_upper", "flag"]].sort_values("shrunk_value",
                                                                                        ascending=False)
    if percent:
        table[["value", "shrunk_value", "shrunk_lower", "shrunk_upper"]] *= 100
    table["unit_label"] = [f"★ {x}" if x == highlight else x for x in table["unit_label"]]
    table["flag"] = table["flag"].map(lambda x: stats.FLAG_WORDS.get(x, x))
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"unit_label": "Clinic" if measure.unit == "clinic" else "Clinician",
                                "clinic_name": "Clinic",
                                "numerator": st.column_config.NumberColumn(
                                    "Numerator", format="%d" if percent or ratio else "%.0f"),
                                "denominator": "Patients",
                                "expected": st.column_config.NumberColumn("Expected", format="%.1f"),
                                "value": st.column_config.NumberColumn("Observed ÷ expected" if ratio else "Value",
                                                                       format=fmt),
                                "shrunk_value": st.column_config.NumberColumn("Shrunken", format=fmt),
                                "shrunk_lower": st.column_config.NumberColumn("95% from", format=fmt),
                                "shrunk_upper": st.column_config.NumberColumn("95% to", format=fmt),
                                "flag": "Against the 99.8% limits"})
