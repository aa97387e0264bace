"""Overview: what is loaded, and opioid fills over time."""
from __future__ import annotations

import streamlit as st

from analysis import charts
from dashboard import data, widgets


def render() -> None:
    st.title("Prescribing consistency")
    st.caption("How consistently clinicians prescribe opioids for persistent pain, and how fast they taper.")
    try:
        summary = data.query("data_summary").iloc[0]
    except data.DataUnavailable as e:
        st.info(str(e), icon=":material/info:")
        return
    if not summary["prescriptions"]:
        st.info("The database has no prescriptions yet. Load some with `rxdash load DIR`.")
        return

    first, last = summary["first_fill"], summary["last_fill"]
    # Ask
    chosen = widgets.period("Period", (first, last), (first, last), "period")
    if chosen is None:
        return
    start, end = chosen
    # Fetch
    monthly = data.query("monthly_opioid_fills", start=start, end=end)

    cols = st.columns(4)
    cols[0].metric("Clinics", f"{summary['clinics']:,}")
    cols[1].metric("Clinicians", f"{summary['clinicians']:,}")
    cols[2].metric("Patients with an opioid fill", f"{summary['opioid_patients']:,}")
    cols[3].metric("Opioid prescriptions", f"{summary['opioid_prescriptions']:,}")
    st.caption(f"Data from {first:%d %b %Y} to {last:%d %b %Y}.")

    # Show
    if monthly.empty:
        st.info("No opioid fills in this period. Widen the period.")
        return
    period = f"{start:%d %b %Y} to {end:%d %b %Y}"
    st.plotly_chart(charts.monthly_fills_chart(monthly, period), theme=None, use_container_width=True)
