"""Streamlit entry point: page set-up, sign-in and roles, the shared filters and navigation.
Started by `rxdash serve` / `rxdash demo`."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import filters, pages, viewer

# The tab's icon is shipped in the package (Streamlit draws a ":material/...:" page icon from fonts.gstatic.com):
# no request leaves the machine. The pages' own :material/...: icons use the font Streamlit bundles.
ICON = Path(__file__).parent / "icons" / "monitoring.svg"
st.set_page_config(page_title="Prescribing consistency", page_icon=str(ICON), layout="wide")

v = viewer.current()
if v is None:                      # sign-in configured, nobody signed in yet
    st.navigation([st.Page(viewer.sign_in_page, title="Sign in", icon=":material/login:")]).run()
elif not v.roles:                  # signed in, but no role given to this account
    st.navigation([st.Page(viewer.no_role_page, title="No access", icon=":material/lock:")]).run()
else:
    # Only the pages the viewer's roles allow are registered; each page checks the role again itself.
    navigation = st.navigation(pages.for_viewer(v))
    viewer.header(v)
    # The filters are drawn on every run, whatever the page, so they keep their state (and the URL) across pages.
    filters.sidebar()
    navigation.run()
