"""Data quality: loads, rejected rows by reason, how drug descriptions were read, the load history and
(for roles allowed it) the audit log."""
from __future__ import annotations

import collections
import json

import pandas as pd
import streamlit as st

from analysis import charts, dose, exports
from analysis.display import md
from dashboard import data, viewer


def render() -> None:
    v = viewer.require("data-quality")
    st.title("Data quality")
    st.caption("Everything loaded, whatever the sidebar's filters: this page describes the data, not a period.")
    try:
        history = data.query("load_history")
        reasons = data.query("reject_reasons")
        drugs = data.query("drug_mapping")
        summary = data.query("data_summary").iloc[0]
    except data.DataUnavailable as e:
        st.info(str(e), icon=":material/info:")
        return
    if history.empty:
        st.info("Nothing has been loaded yet. Load a folder of CSV files with `rxdash load DIR`.")
        return

    st.subheader("What is loaded")
    cols = st.columns(5)
    cols[0].metric("Clinics", f"{summary['clinics']:,}")
    cols[1].metric("Clinicians", f"{summary['clinicians']:,}")
    cols[2].metric("Patients", f"{summary['patients']:,}")
    cols[3].metric("Prescriptions", f"{summary['prescriptions']:,}")
    cols[4].metric("Events", f"{summary['events']:,}")
    if summary["first_fill"] is not None:
        st.caption(f"Fills from {summary['first_fill']:%d %b %Y} to {summary['last_fill']:%d %b %Y}; the last fill "
                   "date stands for the extract date (supply running past it is not yet known).")

    latest = history[history["run_id"] == history["run_id"].iloc[0]]
    st.subheader("Latest load")
    st.caption(f"Loaded {latest['loaded_at'].iloc[0]:%d %b %Y %H:%M} from {md(latest['source_dir'].iloc[0])}. "
               "Every row read is either loaded or rejected with a reason (rows read = loaded + rejected).")
    st.dataframe(
        latest[["table_name", "rows_read", "rows_loaded", "rows_rejected", "ignored_columns"]],
        hide_index=True, width="stretch",
        column_config={"table_name": "File", "rows_read": "Read", "rows_loaded": "Loaded",
                       "rows_rejected": "Rejected", "ignored_columns": "Extra columns ignored"})
    if reasons.empty:
        st.success("No rows were rejected.")
    else:
        st.plotly_chart(charts.rejects_chart(reasons), theme=None, width="stretch")
        st.caption("The rejects file written by `rxdash load` lists each rejected row with its line number.")

    st.subheader("Dose coverage")
    factor_set = st.selectbox("MME factor set", list(dose.FACTOR_SETS), format_func=dose.FACTOR_SETS.get,
                              key="coverage_factor_set")
    coverage = data.query("dose_coverage", factor_set=factor_set, exclude=False)
    if coverage.empty:
        st.info("No opioid analgesic prescriptions are loaded.")
    else:
        computable = coverage.loc[coverage["mme_status"] != "no_factor", "prescriptions"].sum()
        st.metric("Opioid prescriptions with a computable MME", f"{computable / coverage['prescriptions'].sum():.1%}")
        missing = coverage[coverage["mme_status"] == "no_factor"]
        if not missing.empty:
            st.warning("These opioid prescriptions have no MME factor in this set, so their dose is unknown. "
                       "Their patients are left out of the dose measures (high dose, average dose, naloxone, "
                       "tapers) for the periods they cover, never counted as 0 MME:")
            st.dataframe(missing[["ingredient", "strength_unit", "prescriptions"]], hide_index=True)

    st.subheader("Drug descriptions")
    unmapped = drugs[drugs["drug_class"] == "unmapped"]
    parsed_share = drugs.loc[drugs["drug_parsed"], "prescriptions"].sum() / max(drugs["prescriptions"].sum(), 1)
    cols = st.columns(3)
    cols[0].metric("Distinct drug descriptions", f"{len(drugs):,}")
    cols[1].metric("Prescriptions read from the drug name", f"{parsed_share:.0%}")
    cols[2].metric("Unmapped ingredients", f"{unmapped['ingredient'].nunique():,}")
    if not unmapped.empty:
        st.warning("These ingredients are not in the drug reference, so no measure counts them:")
        st.dataframe(unmapped[["drug_name", "ingredient", "prescriptions"]], hide_index=True)
    st.dataframe(drugs, hide_index=True, width="stretch")

    st.subheader("Load history")
    runs = history.groupby(["run_id", "loaded_at", "source_dir"], as_index=False)[
        ["rows_read", "rows_loaded", "rows_rejected"]].sum().sort_values("loaded_at", ascending=False)
    st.dataframe(runs, hide_index=True, width="stretch",
                 column_config={"run_id": "Run", "loaded_at": "Loaded at", "source_dir": "From", "rows_read": "Read",
                                "rows_loaded": "Loaded", "rows_rejected": "Rejected"})
    if v.audit_log:
        audit_log()


def audit_log(limit: int = 500) -> None:
    """The latest entries of the audit log (sign-ins, profile views, exports), newest first."""
    st.subheader("Audit log")
    path = exports.audit_path()
    if not path.is_file():
        st.info(f"Nothing has been recorded yet ({md(path)}).", icon=":material/info:")
        return
    with path.open(encoding="utf-8") as f:   # the last lines only, without holding the whole log
        lines = collections.deque((line for line in f if line.strip()), maxlen=limit)
    entries = pd.DataFrame([json.loads(line) for line in lines])
    entries["filters"] = entries["filters"].map(lambda d: json.dumps(d, default=str) if isinstance(d, dict) else "")
    columns = [c for c in ("at", "event", "user", "role", "what", "filters") if c in entries]
    st.caption(f"The last {len(entries):,} entries of {md(path)}, newest first.")
    st.dataframe(entries[columns].iloc[::-1], hide_index=True, width="stretch")
