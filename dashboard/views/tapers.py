"""Tapers: how fast doses fall, by clinician, against the guideline pace."""
from __future__ import annotations

import streamlit as st

from analysis import charts, dose
from dashboard import data, widgets


def render() -> None:
    st.title("Tapers")
    bounds = widgets.data_range()
    if bounds is None:
        return
    data_start, data_end = bounds

    # Ask
    cols = st.columns([2, 1])
    factor_set = cols[1].selectbox("MME factors", list(dose.FACTOR_SETS), key="taper_factor_set")
    # Tapers are rarer than prescriptions: the whole data range is the useful default.
    period = widgets.period("Tapers starting between", bounds, bounds, "taper_period", where=cols[0])
    if period is None:
        return
    start, end = period
    params = dose.TaperParams()

    # Fetch
    tapers = data.query("tapers_attributed", **dose.DoseParams(factor_set).sql(),
                        **params.sql(data_start, data_end))
    tapers = tapers[(tapers["taper_start"] >= start) & (tapers["taper_start"] <= end)]
    if tapers.empty:
        st.info(f"No tapers or discontinuations from a baseline of {params.baseline_min_mme:g} MME a day or more "
                f"started between {start:%d %b %Y} and {end:%d %b %Y}. Try a longer period.")
        return

    # Summarise and show
    label = f"{start:%d %b %Y} to {end:%d %b %Y}"
    metrics = st.columns(4)
    metrics[0].metric("Tapers and discontinuations", f"{len(tapers):,}")
    metrics[1].metric(f"Faster than {params.rapid_min_pct:g}%/month",
                      f"{(tapers['max_monthly_reduction_pct'] > params.rapid_min_pct).mean():.0%}")
    metrics[2].metric(f"Within {params.gradual_max_pct:g}%/month",
                      f"{(tapers['max_monthly_reduction_pct'] <= params.gradual_max_pct).mean():.0%}")
    metrics[3].metric("Abrupt discontinuations", f"{(tapers['category'] == 'abrupt_discontinuation').sum():,}")
    st.plotly_chart(charts.taper_speed_chart(tapers, label, params.gradual_max_pct, params.rapid_min_pct),
                    theme=None, use_container_width=True)
    st.plotly_chart(charts.taper_categories_chart(tapers, label), theme=None, use_container_width=True)
    st.caption(f"A taper is a fall of at least {params.min_fall:.0%} from a baseline of {params.baseline_min_mme:g} "
               f"MME a day or more (mean over the {params.baseline_days} days before) in a 60-day window; its speed "
               "is the largest fall between consecutive 30-day windows, as % of baseline a month. Abrupt: no supply "
               f"for {params.stop_days} days while the last 30 days were still at {params.abrupt_fraction:.0%} of "
               "baseline or more. See Methods.")
