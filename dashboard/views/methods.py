"""Methods: every measure's declaration and SQL, the MME factors with sources, the parameters in force."""
from __future__ import annotations

import csv
import dataclasses
from importlib import resources

import pandas as pd
import streamlit as st

import queries
from analysis import dose, measures, stats
from analysis.display import md
from dashboard import filters, viewer


def _factor_table() -> pd.DataFrame:
    text = resources.files("analysis").joinpath("reference/mme_factors.csv").read_text(encoding="utf-8")
    return pd.DataFrame(list(csv.DictReader(text.splitlines())))


def _parameters(obj: object, source: str) -> pd.DataFrame:
    return pd.DataFrame([{"parameter": f.name, "value": getattr(obj, f.name), "set in": source}
                         for f in dataclasses.fields(obj)])


def render() -> None:
    viewer.require("methods")
    st.title("Methods")
    st.markdown("Every number on these pages comes from a declared measure, its SQL and the parameters "
                "below. Definitions follow the CDC 2022 guideline, the HHS 2019 guide on dose reduction, "
                "Von Korff 2008 (long-term therapy), Fenton 2019 and Agnoli 2021 (tapers), Neprash 2021 "
                "(abrupt discontinuation) and Spiegelhalter 2005 (funnel plots and overdispersion).")
    st.subheader("Attribution")
    st.write(measures.ATTRIBUTION_RULE)
    st.write(f"Exclusions (on by default): {measures.EXCLUSIONS}.")

    f = st.session_state.get(filters.STATE)   # the sidebar's choices, when there are data
    st.subheader("Measures")
    for m in (f.measures() if f else measures.MEASURES):
        with st.expander(f"{m.title} ({m.id})"):
            st.markdown(f"**Why it matters.** {m.why}")
            st.markdown(f"**Numerator:** {m.numerator}.  \n**Denominator:** {m.denominator}.  \n"
                        f"**Better when:** {m.direction}.  \n**Compared between:** {m.unit}s.  \n"
                        f"**Authored by** {m.authored_by}; **checked by** {m.checked_by}; "
                        f"**reviewed** {m.reviewed_on}; **next review** {m.next_review}.")
            if m.params:
                st.markdown("**Measure parameters:** " + ", ".join(f"{k} = {v}" for k, v in m.params.items()))
            st.markdown(f"**SQL** (`queries/{m.query}.sql`, shared steps included):")
            st.code(queries.load(m.query), language="sql")

    st.subheader("Comparing fairly")
    st.markdown(
        "Funnel limits at 95% and 99.8% around the pooled value: exact binomial with interpolation for "
        "shares, normal for means. Overdispersion: z-scores winsorised at 10% at each end give φ; when φ > 1 "
        "and the DerSimonian–Laird τ² is above zero, additive random-effects limits are used. A unit outside "
        f"the 99.8% limits is flagged, except that units with fewer than {stats.MIN_DENOMINATOR} patients are "
        "never flagged. Rankings use empirical-Bayes shrunken values with 95% intervals.")

    st.subheader("Parameters in force" if f else "Parameters in force (defaults)")
    if f:
        st.caption(f"Period {f.period}; {md(f.scope)}; high-dose thresholds {f.low_mme:g} and {f.high_mme:g} MME a day "
                   "(as chosen in the sidebar).")
    st.dataframe(pd.concat([_parameters(f.dose() if f else dose.DoseParams(), "dose"),
                            _parameters(dose.LtotParams(), "long-term"),
                            _parameters(f.tapers() if f else dose.TaperParams(), "tapers"),
                            _parameters(measures.MeasureParams(), "measures")], ignore_index=True)
                 .astype({"value": str}), hide_index=True, width="stretch")

    st.subheader("Choices behind the pages")
    st.markdown(
        "- **Filters.** Choosing clinics or specialties keeps the patients attributed to those clinicians; "
        "the pooled value and the limits are then those of the selection. Clinicians under the sidebar's "
        "minimum number of patients still count in the pooled value and limits; they are only not drawn.\n"
        "- **Stored at load.** Long-term episodes and tapers are measured when data are loaded, with the "
        "parameters above; the taper speed bands and the abrupt fraction apply when they are read, so the "
        "sidebar can change them. Changing any other taper parameter needs a new load.\n"
        "- **Previous period.** The Overview compares with the period of the same length just before, when "
        "the data cover it.\n"
        "- **Roles.** Leaders see clinicians' names; committees see pseudonyms; a clinician sees their own "
        "profile, named, beside anonymous peers; admins see the data pages and the audit log. Small counts are "
        "suppressed in every exported file whatever the role.\n"
        "- **Pseudonyms.** Clinicians are shown as a keyed hash of their id (stable within a deployment); "
        "patients never appear, and taper trajectories show days from the start, not dates.\n"
        "- **Events after tapers** are described by speed band, not attributed to the taper: who was tapered, "
        "and why, differs between bands.\n"
        "- **Where clinicians differ most** ranks measures by the median odds ratio (Merlo 2006); the average "
        "dose, which has none, by the ratio of the 90th to the 10th centile of shrunken values.\n"
        "- **The report pack's reading** counts units outside the 99.8% limits and compares the first and last "
        "quarter of the period: a change of more than 5% in that index is 'narrowed' or 'widened'.\n"
        "- **Feedback letters' top-performer benchmark** is the Achievable Benchmark of Care (Kiefe 2001): "
        "clinicians ranked by (x + 1) / (n + 2), best first, until they hold 10% of the patients; their pooled "
        "rate, for measures with a better direction only. A letter shows no figure for a measure with fewer than "
        "11 of the clinician's patients, and peers are those with at least 11.")

    st.subheader("MME conversion factors")
    st.dataframe(_factor_table(), hide_index=True, width="stretch")
