"""Streamlit entry point: page set-up and navigation. Started by `rxdash serve` / `rxdash demo`."""
from __future__ import annotations

import streamlit as st

from dashboard.views import data_quality, methods, overview, tapers, variation

st.set_page_config(page_title="Prescribing consistency", page_icon=":material/monitoring:", layout="wide")

pages = [
    st.Page(overview.render, title="Overview", icon=":material/dashboard:", url_path="overview", default=True),
    st.Page(variation.render, title="Clinician variation", icon=":material/scatter_plot:", url_path="variation"),
    st.Page(tapers.render, title="Tapers", icon=":material/trending_down:", url_path="tapers"),
    st.Page(data_quality.render, title="Data quality", icon=":material/fact_check:", url_path="data-quality"),
    st.Page(methods.render, title="Methods", icon=":material/menu_book:", url_path="methods"),
]
st.navigation(pages).run()
