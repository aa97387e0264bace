"""Clinician variation: one measure's funnel plot, with the numbers behind it."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from analysis import charts, dose, measures, stats
from dashboard import data, widgets


def _trend(measure: measures.Measure, start: dt.date, end: dt.date, data_start: dt.date, data_end: dt.date,
           factor_set: str) -> pd.DataFrame:
    """Consistency indices for each quarter of the period (each quarter's rows come from the cache)."""
    out = []
    for q_start, q_end in measures.quarters(start, end):
        params = measures.sql_params(measure, q_start, q_end, data_start, data_end, dose.DoseParams(factor_set))
        units = measures.unit_rows(data.query(measure.query, **params), measure)
        if len(units) >= 2:
            out.append({"quarter_start": q_start, **stats.consistency(units, measure.kind)})
    return pd.DataFrame(out)


def render() -> None:
    st.title("Clinician variation")
    bounds = widgets.data_range()
    if bounds is None:
        return
    data_start, data_end = bounds

    # Ask
    cols = st.columns([2, 2, 1])
    measure_id = cols[0].selectbox("Measure", [m.id for m in measures.MEASURES],
                                   format_func=lambda i: measures.BY_ID[i].title, key="measure")
    measure = measures.BY_ID[measure_id]
    factor_set = cols[2].selectbox("MME factors", list(dose.FACTOR_SETS), key="variation_factor_set")
    last_year = (max(data_start, data_end - dt.timedelta(days=364)), data_end)
    period = widgets.period("Period", last_year, bounds, "variation_period", where=cols[1])
    if period is None:
        return
    start, end = period

    # Fetch
    params = measures.sql_params(measure, start, end, data_start, data_end, dose.DoseParams(factor_set))
    rows = data.query(measure.query, **params)
    units = measures.unit_rows(rows, measure)
    if units.empty:
        st.info(f"No patients count towards this measure between {start:%d %b %Y} and {end:%d %b %Y}. "
                "Try a longer period or another measure.")
        return

    # Summarise
    result = measures.compare(units, measure)
    lines = stats.funnel_lines(result, float(result.units["denominator"].max()))
    percent = measure.kind == "proportion"
    unit_word = "clinics" if measure.unit == "clinic" else "clinicians"
    title = f"{measure.title}: {unit_word} compared, {start:%d %b %Y} to {end:%d %b %Y}"

    # Show
    st.caption(measure.why)
    flagged = result.units[result.units["flag"].isin(["high", "low"])]
    metrics = st.columns(4)
    metrics[0].metric("Pooled value", measures.describe_value(result.pooled, measure))
    metrics[1].metric(unit_word.capitalize(), f"{len(result.units):,}")
    metrics[2].metric("Outside the 99.8% limits", f"{len(flagged):,}")
    metrics[3].metric("Overdispersion (φ)", f"{result.phi:.2f}")
    st.plotly_chart(charts.funnel_chart(result.units, lines, title,
                                        "Share of patients" if percent else measure.value_unit,
                                        result.pooled, percent, measure.direction),
                    theme=None, use_container_width=True)
    st.caption(f"Limits: {result.limits} (φ {result.phi:.2f}, τ² {result.tau2:.3g}). "
               f"{unit_word.capitalize()} with fewer than {stats.MIN_DENOMINATOR} patients are never flagged. "
               f"Numerator: {measure.numerator}. Denominator: {measure.denominator}. "
               f"Attribution: {measures.ATTRIBUTION_RULE}")
    value_label = "Share of patients" if percent else measure.value_unit
    st.plotly_chart(charts.caterpillar_chart(result.units, f"Shrunken values with 95% intervals, {start:%b %Y} to "
                                               f"{end:%b %Y}", value_label, result.pooled, percent),
                      theme=None, use_container_width=True)
    trend = _trend(measure, start, end, data_start, data_end, factor_set)
    if len(trend) >= 2:
        st.plotly_chart(charts.consistency_trend_chart(trend, "Are we converging? Variation by quarter"),
                           theme=None, use_container_width=True)
    else:
        st.info("Pick a period of two quarters or more to see whether variation is narrowing.")
    table = result.units[["unit_id", "clinic_id", "numerator", "denominator", "value", "shrunk_value",
                          "shrunk_lower", "shrunk_upper", "flag"]].sort_values("shrunk_value", ascending=False)
    st.dataframe(table, hide_index=True, use_container_width=True,
                 column_config={"unit_id": "Clinic" if measure.unit == "clinic" else "Clinician",
                                "value": st.column_config.NumberColumn("Value", format="percent" if percent else "%.1f"),
                                "shrunk_value": st.column_config.NumberColumn("Shrunken", format="percent" if percent else "%.1f"),
                                "shrunk_lower": st.column_config.NumberColumn("95% from", format="percent" if percent else "%.1f"),
                                "shrunk_upper": st.column_config.NumberColumn("95% to", format="percent" if percent else "%.1f")})
