"""Filters shared by the pages: the data's date range and a period picker, each with its plain message."""
from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboard import data


def data_range() -> tuple[dt.date, dt.date] | None:
    """First and last fill date in the database, or None after telling the user why there are none."""
    try:
        bounds = data.query("data_bounds").iloc[0]
    except data.DataUnavailable as e:
        st.info(str(e), icon=":material/info:")
        return None
    if bounds["data_end"] is None:
        st.info("The database has no prescriptions yet. Load some with `rxdash load DIR`.")
        return None
    return bounds["data_start"], bounds["data_end"]


def period(label: str, default: tuple[dt.date, dt.date], bounds: tuple[dt.date, dt.date], key: str,
           where=st) -> tuple[dt.date, dt.date] | None:
    """A start/end date picker inside `bounds`; None (with a hint) while only the first day is picked."""
    chosen = where.date_input(label, value=default, min_value=bounds[0], max_value=bounds[1], key=key)
    if not isinstance(chosen, tuple) or len(chosen) != 2:
        st.info("Pick the last day of the period.")
        return None
    return chosen
