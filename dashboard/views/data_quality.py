"""Data quality: loads, rejected rows by reason, how drug descriptions were read, the load history and
(for roles allowed it) the audit log."""
from __future__ import annotations

import collections
import json

import pandas as pd
import streamlit as st

from analysis import charts, dose, exports
from analysis.display import md
from analysis.drugs import SKIP_REASONS
from dashboard import data, viewer


def _record_windows(w: pd.Series) -> None:
    """Each patient's own record window (patients.csv record_start / record_end), in one sentence."""
    if not w["with_record_start"] and not w["with_record_end"]:
        st.caption("No patient has a record window of its own (a record start or end date in patients.csv: "
                   "`record_start`, `record_end`): every record is taken to run from the first fill to the extract date.")
        return
    st.caption(f"Record windows: {w['with_record_start']:,} of {w['patients']:,} patients have a record start date "
               f"(`record_start`) and {w['with_record_end']:,} a record end date (`record_end`); "
               f"{w['ending_early']:,} records end before the extract date. "
               "Supply that stops within 60 days of a record's end is not counted as a discontinuation, and a "
               "patient whose record cannot hold the days a measure needs is left out of it (not counted as 0).")


# The drug tables' columns in words (queries/drug_mapping.sql returns the contract's names).
DRUG_COLUMNS = {"drug_name": "Drug name", "ingredient": "Ingredient", "strength": "Strength",
                "strength_unit": "Unit", "dose_form": "Dose form", "long_acting": "Long-acting",
                "drug_class": "Class", "drug_parsed": "Read from the name", "prescriptions": "Prescriptions"}

# Drug classes (analysis/reference/drug_classes.csv) in words.
DRUG_CLASS_LABELS = {"opioid_analgesic": "opioid analgesic", "benzodiazepine": "benzodiazepine",
                     "buprenorphine": "buprenorphine", "naloxone": "naloxone",
                     "unmapped": "unmapped (not in the drug reference)"}

# Where a prescription's quantity and days came from (prescriptions.quantity_source; README "Prescribing
# orders"), in words; the code is shown after it, for engineers.
QUANTITY_SOURCE_LABELS = {
    "given": "quantity and days' supply both given (a dispensing): measured",
    "sig_days": "days' supply given; quantity = units a day × days",
    "sig_end": "days to the order's end date; quantity = units a day × days",
    "sig_open": "open order: days to the extract date; quantity = units a day × days",
    "qty_end": "quantity given; days to the order's end date",
    "qty_sig": "quantity given; days = quantity ÷ units a day, rounded up",
    "days_only": "days' supply given, no quantity: supply counted, dose unknown",
    "end_only": "days to the order's end date, no quantity: supply counted, dose unknown",
    "not recorded": "not recorded (loaded by an older version)",
}


def _count(label: str):
    """A count column: whole numbers with thousands separators, as the page's metrics show them (21,881)."""
    return st.column_config.NumberColumn(label, format="localized")


def _decimals(values: pd.Series, most: int = 3) -> int:
    """The fewest decimals (up to `most`) that show every value of a column exactly, so that one format with
    that many decimals serves the whole column (0.5 and 15 read 0.5 and 15.0, not 0.5 and 15)."""
    for d in range(most + 1):
        if all(abs(v - round(v, d)) < 1e-9 for v in values.dropna().astype(float)):
            return d
    return most


def _yes_no(flag) -> str:
    return "" if pd.isna(flag) else ("yes" if flag else "no")


def _drug_table(drugs: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The drug descriptions as shown: classes and flags in words, strength with one number of decimals;
    returns the frame (the contract's column names kept as keys) and its column_config."""
    shown = drugs.copy()
    if "drug_class" in shown:
        shown["drug_class"] = shown["drug_class"].map(lambda c: DRUG_CLASS_LABELS.get(c, c))
    for text in ("ingredient", "strength_unit", "dose_form"):   # a blank field reads blank, not "None"
        if text in shown:
            shown[text] = shown[text].fillna("")
    for flag in ("long_acting", "drug_parsed"):
        if flag in shown:
            shown[flag] = shown[flag].map(_yes_no)
    config = {**DRUG_COLUMNS, "prescriptions": _count("Prescriptions")}
    if "strength" in shown:
        config["strength"] = st.column_config.NumberColumn("Strength", format=f"%.{_decimals(shown['strength'])}f")
    return shown, config


DRUG_SOURCE_LABELS = {"given": "its ingredient, strength and unit fields", "ndc": "its NDC (NDC reference)",
                      "rxcui": "its RxCUI (RxCUI reference)", "name": "its drug name, read",
                      "unrecorded": "not recorded (loaded by an older version)"}


def render() -> None:
    v = viewer.require("data-quality")
    st.title("Data quality")
    st.caption("Everything loaded, whatever the sidebar's filters: this page describes the data, not a period.")
    try:
        history = data.query("load_history")
        reasons = data.query("reject_reasons")
        drugs = data.query("drug_mapping")
        sources = data.query("drug_sources")
        skips = data.query("skip_reasons")
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
        bounds = data.query("data_bounds").iloc[0]
        how = ("given when the data were loaded" if bounds["extract_given"] else
               "the last fill date, since none was given (`rxdash load --extract-date`)")
        st.caption(f"Fills from {summary['first_fill']:%d %b %Y} to {summary['last_fill']:%d %b %Y}. Extract date: "
                   f"{bounds['data_end']:%d %b %Y}, {how}: supply running past it is not yet known.")
        _record_windows(data.query("record_windows_summary", data_end=bounds["data_end"]).iloc[0])

    latest = history[history["run_id"] == history["run_id"].iloc[0]]
    st.subheader("Latest load")
    st.caption(f"Loaded {latest['loaded_at'].iloc[0]:%d %b %Y %H:%M} from {md(latest['source_dir'].iloc[0])}. "
               "Every row read is loaded, skipped as another drug's prescription, or rejected with a reason "
               "(rows read = loaded + skipped + rejected).")
    st.dataframe(
        # No extra column is "none", not an empty (None) cell.
        latest[["table_name", "rows_read", "rows_loaded", "rows_skipped", "rows_rejected", "ignored_columns"]]
        .fillna({"ignored_columns": "none"}).replace({"ignored_columns": {"": "none"}}),
        hide_index=True, width="stretch",
        column_config={"table_name": "Table" if _is_source_format() else "File", "rows_read": _count("Read"),
                       "rows_loaded": _count("Loaded"), "rows_skipped": _count("Skipped"),
                       "rows_rejected": _count("Rejected"), "ignored_columns": "Extra columns ignored"})
    _source_files()
    if not skips.empty:
        st.caption("Skipped, not errors: " + "; ".join(
            f"{r.n_rows:,} rows: other drugs ({SKIP_REASONS.get(r.reason_code, r.reason_code)})"
            for r in skips.itertuples()) + ". A prescription whose code is in neither code reference and whose "
            "name or fields do not name an opioid, benzodiazepine, buprenorphine or naloxone product is skipped; "
            "such rows are not written to the rejects file.")
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
        computable = coverage.loc[~coverage["mme_status"].isin(["no_factor", "no_quantity"]), "prescriptions"].sum()
        st.metric("Opioid prescriptions with a computable MME", f"{computable / coverage['prescriptions'].sum():.1%}")
        no_quantity = coverage[coverage["mme_status"] == "no_quantity"]
        if not no_quantity.empty:
            st.warning(f"{int(no_quantity['prescriptions'].sum()):,} opioid prescriptions have no quantity (the "
                       "source gives their days of supply but not how much was supplied): their days count as "
                       "supply (long-term therapy, new starts, overlaps), and their dose is unknown, so their "
                       "patients are left out of the dose measures for the days they cover, never counted as 0 MME.")
        missing = coverage[coverage["mme_status"] == "no_factor"]
        if not missing.empty:
            st.warning("These opioid prescriptions have no MME factor in this set, so their dose is unknown. "
                       "Their patients are left out of the dose measures (high dose, average dose, naloxone, "
                       "tapers) for the periods they cover, never counted as 0 MME:")
            st.dataframe(missing[["ingredient", "strength_unit", "prescriptions"]], hide_index=True, column_config=DRUG_COLUMNS)

    _quantity_sources()

    st.subheader("Drug descriptions")
    unmapped = drugs[drugs["drug_class"] == "unmapped"]
    parsed_share = drugs.loc[drugs["drug_parsed"], "prescriptions"].sum() / max(drugs["prescriptions"].sum(), 1)
    cols = st.columns(3)
    cols[0].metric("Distinct drug descriptions", f"{len(drugs):,}")
    cols[1].metric("Prescriptions read from the drug name", f"{parsed_share:.1%}")   # as the page's other shares
    cols[2].metric("Unmapped ingredients", f"{unmapped['ingredient'].nunique():,}")
    if not unmapped.empty:
        st.warning("These ingredients are not in the drug reference, so no measure counts them:")
        st.dataframe(unmapped[["drug_name", "ingredient", "prescriptions"]], hide_index=True, column_config=DRUG_COLUMNS)
    shown, config = _drug_table(drugs)
    st.dataframe(shown, hide_index=True, width="stretch", column_config=config)
    if not sources.empty:
        st.markdown("**How each prescription's drug was identified** (its own fields win over its codes, an NDC "
                    "over an RxCUI, codes over reading the drug name; Methods names the NDC reference in force):")
        st.dataframe(sources.assign(drug_source=sources["drug_source"].map(lambda s: DRUG_SOURCE_LABELS.get(s, s))),
                     hide_index=True, column_config={"drug_source": "Identified by", "prescriptions": _count("Prescriptions")})

    st.subheader("Load history")
    runs = history.groupby(["run_id", "loaded_at", "source_dir"], as_index=False)[
        ["rows_read", "rows_loaded", "rows_skipped", "rows_rejected"]].sum().sort_values("loaded_at", ascending=False)
    st.dataframe(runs, hide_index=True, width="stretch",
                 column_config={"run_id": "Run", "loaded_at": st.column_config.DatetimeColumn("Loaded at", format="D MMM YYYY, HH:mm"),
                                "source_dir": "From", "rows_read": _count("Read"), "rows_loaded": _count("Loaded"),
                                "rows_skipped": _count("Skipped"), "rows_rejected": _count("Rejected")})
    if v.audit_log:
        audit_log()


def _is_source_format() -> bool:
    """Whether the latest load read a source format (OMOP, FHIR, Part D) rather than contract files."""
    try:
        return not data.query("source_files").empty
    except data.DataUnavailable:
        return False


def _source_files() -> None:
    """For a load of another format (OMOP, FHIR, Part D): each source file's rows and what the adapter noted."""
    try:
        files = data.query("source_files")
        notes = data.query("load_notes")["note"]
    except data.DataUnavailable:   # a database loaded by a version before source formats
        return
    if files.empty:
        return
    fmt = FORMAT_LABELS.get(files["source_format"].iloc[0], files["source_format"].iloc[0])
    st.markdown(f"**Read from {md(fmt)}.** Each source file's rows were loaded (into the table it gives, or used "
                "to complete another row: a record window, a patient's flag), skipped with a reason, or rejected "
                "with a reason. The table above counts the contract tables the source was mapped onto.")
    st.dataframe(files[["file_name", "feeds", "rows_read", "rows_loaded", "rows_skipped", "rows_rejected"]],
                 hide_index=True, width="stretch",
                 column_config={"file_name": "Source file", "feeds": "Gives", "rows_read": _count("Read"),
                                "rows_loaded": _count("Loaded"), "rows_skipped": _count("Skipped"),
                                "rows_rejected": _count("Rejected")})
    for note in notes:
        st.info(md(note), icon=":material/info:")


FORMAT_LABELS = {"omop": "an OMOP CDM extract", "fhir": "FHIR R4 files", "pde": "CMS Part D event files"}


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
    st.caption(("The only entry" if len(entries) == 1 else f"The last {len(entries):,} entries")
               + f" of {md(path)}" + (", newest first." if len(entries) > 1 else "."))
    st.dataframe(entries[columns].iloc[::-1], hide_index=True, width="stretch",
                 column_config={"at": "When", "event": "Event", "user": "User", "role": "Role", "what": "What",
                                "filters": "Filters (as recorded)"})


def _quantity_sources() -> None:
    """How much of the supply is measured (a dispensing's quantity and days supply) and how much is inferred
    from prescribing orders (units_per_day with days_supply, end_date or an open order): queries/quantity_sources.sql."""
    st.subheader("Measured or inferred supply")
    try:
        q = data.query("quantity_sources")
    except data.DataUnavailable as e:
        st.info(str(e), icon=":material/info:")
        return
    if q.empty:
        return
    # Days given with no quantity (days_only) are measured days; every other non-dispensing is inferred.
    inferred = ~q["quantity_source"].isin(["given", "not recorded", "days_only"])
    opioid, days = q["opioid_prescriptions"].sum(), q["opioid_days_supply"].sum()
    cols = st.columns(2)
    cols[0].metric("Opioid prescriptions with a measured quantity",
                   f"{q.loc[q['quantity_source'] == 'given', 'opioid_prescriptions'].sum() / opioid:.1%}" if opioid else "–")
    cols[1].metric("Opioid days of supply inferred from orders",
                   f"{q.loc[inferred, 'opioid_days_supply'].sum() / days:.1%}" if days else "–")
    # Sums come back as decimals from PostgreSQL and DuckDB; as whole numbers they read like the other counts.
    shown = q.assign(how=q["quantity_source"].map(lambda c: QUANTITY_SOURCE_LABELS.get(c, c)),
                     **{c: pd.to_numeric(q[c]).astype("Int64")
                        for c in ("prescriptions", "opioid_prescriptions", "opioid_days_supply")})
    st.dataframe(shown[["how", "prescriptions", "opioid_prescriptions", "opioid_days_supply", "quantity_source"]],
                 hide_index=True, width="stretch",
                 column_config={"how": "Quantity and days' supply", "prescriptions": _count("Fills"),
                                "opioid_prescriptions": _count("Opioid fills"),
                                "opioid_days_supply": _count("Opioid days of supply"),
                                "quantity_source": "Code (quantity_source)"})
    st.caption("A dispensing's quantity and days' supply are measured; a prescribing order's are inferred from its "
               "sig (units a day, `units_per_day`) and its days, and an order longer than the longest fill (`rxdash "
               "load --max-fill-days`, 30 by default) is counted here as its consecutive fills. A dose computed from "
               "an inferred quantity is what was prescribed, not what was dispensed. Supply with days but no quantity "
               "(`days_only`, `end_only`) counts as days with supply of unknown dose; a row that gives neither days "
               "nor a quantity is rejected (`no_quantity`, in the rejected rows above).")
