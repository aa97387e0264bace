"""Tapers: how fast doses fall, by clinician, against the guideline pace; trajectories and what followed."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis import charts, exports, tapering
from analysis.display import counted, md
from dashboard import data, downloads, filters, pages, viewer

RAPID_MEASURES = ("taper_rapid", "abrupt_discontinuation")
TABS = ("By clinician", "Daily dose around tapers", "What followed")


def period_tapers(f: filters.Filters) -> pd.DataFrame:
    """Tapers and discontinuations starting in the period, attributed to a selected clinician."""
    tapers = f.keep(data.query("tapers_attributed", **f.taper_params()))
    return tapers[(tapers["taper_start"] >= f.start) & (tapers["taper_start"] <= f.end)]


def trajectories(f: filters.Filters, tapers: pd.DataFrame, title: str, n: int = 12) -> None:
    """Small multiples of the daily dose around up to n tapers (no dates, no patient identifiers)."""
    picked = tapering.pick(tapers, n)
    segments = data.query("taper_trajectories", **f.dose().sql(), patient_ids=tuple(sorted(picked["patient_id"])))
    relative = tapering.relative_segments(segments, picked, f.data_end)
    # One line per patient: no CSV ever (patients' own doses), and no image while small counts are
    # suppressed (downloads.PATIENT_LEVEL).
    downloads.show(charts.trajectories_chart(relative, picked, title), "taper_trajectories", f,
                   f.context(title, patients=len(picked)), export=downloads.PATIENT_LEVEL)


def render() -> None:
    viewer.require("tapers")
    st.title("Tapers")
    f = filters.current()
    if f is None:
        return
    params = f.tapers()

    try:
        tapers = period_tapers(f)
    except data.DataUnavailable as e:
        st.error(str(e), icon=":material/error:")
        return
    state = f.measurability(f.measure("taper_rapid"))    # the data's start and end (analysis.coverage)
    if not state.has_figure:
        st.info(f"Tapers {f.span}: {state.word}. {md(state.sentence())}", icon=":material/hourglass_empty:")
        return
    if not state.complete:
        st.warning(f"**Provisional.** {md(state.sentence())} Later tapers' speed, category and any stop may still "
                   "change as data arrive.", icon=":material/hourglass_top:")
    if tapers.empty:
        st.info(f"No tapers or discontinuations from a baseline of {params.baseline_min_mme:g} MME a day or more "
                f"started {f.span} ({md(f.scope)}). Try a longer period or more clinics.",
                icon=":material/info:")
        return

    rapid = tapers["max_monthly_reduction_pct"] > params.rapid_min_pct
    metrics = st.columns(4)
    metrics[0].metric("Tapers and discontinuations", f"{len(tapers):,}")
    metrics[1].metric(f"Faster than {params.rapid_min_pct:g}%/month", f"{rapid.mean():.0%}")
    metrics[2].metric(f"Within {params.gradual_max_pct:g}%/month",
                      f"{(tapers['max_monthly_reduction_pct'] <= params.gradual_max_pct).mean():.0%}")
    metrics[3].metric("Abrupt discontinuations", f"{(tapers['category'] == 'abrupt_discontinuation').sum():,}")
    speeds = tapering.speed_counts(tapers)
    def speed_chart(min_cell: int = 0):
        return charts.taper_speed_chart(tapers, f.period, params.gradual_max_pct, params.rapid_min_pct,
                                        min_cell=min_cell)
    # The chart's title gives the total, so the CSV withholds a lone small bin's neighbour as the image does.
    downloads.show(speed_chart(), "taper_speeds", f, f.context("How fast doses fell", patients=len(tapers)),
                   lambda: exports.suppressed_csv(speeds, counts=["tapers"], total_shown=["tapers"]),
                   export=speed_chart)

    by_clinician_tab, trajectories_tab, outcomes_tab = filters.tabs("panel", TABS)
    with by_clinician_tab:
        if by_clinician_tab.open:
            _by_clinician(f, tapers)
    with trajectories_tab:
        if trajectories_tab.open:
            st.caption("Twelve tapers spread from the slowest to the fastest, each as % of its baseline dose, from "
                       "180 days before to 210 days after the start. Patients are not identified and dates are not "
                       "shown.")
            trajectories(f, tapers, f"Daily dose around {min(12, len(tapers))} of {counted(len(tapers), 'taper')}, {f.period}")
    with outcomes_tab:
        if outcomes_tab.open:
            _outcomes(f, tapers)


def _by_clinician(f: filters.Filters, tapers: pd.DataFrame) -> None:
    by_clinician = tapers.assign(clinician_id=tapers["clinician_id"].map(f.label))
    counts = by_clinician["clinician_id"].value_counts()
    by_clinician = by_clinician[by_clinician["clinician_id"].isin(counts[counts >= f.min_patients].index)]
    if not by_clinician.empty:
        counts = by_clinician.groupby(["clinician_id", "category"]).size().rename("tapers").reset_index() \
            .rename(columns={"clinician_id": "clinician"})
        drawn = tapering.busiest(by_clinician)
        if drawn["clinician_id"].nunique() < by_clinician["clinician_id"].nunique():
            st.caption(f"The {tapering.MAX_BARS} clinicians with the most tapers of {by_clinician['clinician_id'].nunique():,}; "
                       "every clinician is in the CSV.")
        def categories_chart(min_cell: int = 0):
            return charts.taper_categories_chart(drawn, f.period, min_cell=min_cell)
        downloads.show(categories_chart(), "taper_categories", f,
                       f.context("Taper categories by clinician", clinicians=counts["clinician"].nunique(),
                                 patients=len(by_clinician)),
                       lambda: exports.suppressed_csv(counts, counts=["tapers"]), export=categories_chart)
    st.caption("Are some clinicians' tapers faster than chance would explain? The funnel plots weigh each "
               "clinician's share against their number of tapers:")
    links = st.columns(len(RAPID_MEASURES))
    for col, measure_id in zip(links, RAPID_MEASURES):
        col.page_link(pages.page("variation"), label=f.measure(measure_id).title, icon=":material/scatter_plot:",
                      query_params={"measure": measure_id})


def _outcomes(f: filters.Filters, tapers: pd.DataFrame) -> None:
    params = f.tapers()
    outcomes = data.query("taper_outcomes", **f.taper_params())
    if outcomes.empty:
        st.info("No events (emergency visits, overdoses, crises) are loaded, so what followed tapers cannot be "
                "shown. Load an events.csv to see it.", icon=":material/info:")
        return
    outcomes = outcomes.merge(tapers[["patient_id", "taper_start"]], on=["patient_id", "taper_start"])
    bands = tapering.outcomes_by_band(tapers, outcomes, params.gradual_max_pct, params.rapid_min_pct)
    def outcomes_chart(min_cell: int = 0):
        return charts.outcomes_chart(bands, f"Tapers followed by an event within 30 and 90 days, by speed, {f.period}",
                                     min_cell=min_cell)
    downloads.show(outcomes_chart(), "events_after_tapers", f,
                   f.context("Tapers followed by an event, by speed", patients=len(tapers)),
                   lambda: exports.suppressed_csv(bands, counts=["tapers", "events_30", "events_90"],
                                                  derived=["within_30", "within_90"],
                                                  parts_of={"events_30": "tapers", "events_90": "tapers"}),
                   export=outcomes_chart)
    st.caption("Events are any emergency visit, overdose or crisis recorded for the patient after the taper "
               "started. This is a description, not a cause: faster tapers may differ in who was tapered and "
               "why (Agnoli 2021 found more overdoses and mental-health crises after faster tapers).")
