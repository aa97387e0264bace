"""Streamlit entry point: page set-up, the shared filters and navigation. Started by `rxdash serve` / `rxdash demo`."""
from __future__ import annotations

import streamlit as st

from dashboard import filters, pages

st.set_page_config(page_title="Prescribing consistency", page_icon=":material/monitoring:", layout="wide")

navigation = st.navigation(pages.all_pages())
# The filters are drawn on every run, whatever the page, so they keep their state (and the URL) across pages.
filters.sidebar()
navigation.run()
