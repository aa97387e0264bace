"""Streamlit dashboard and the `rxdash` command line."""
