"""Taper panels' summaries (analysis.tapering), with numbers worked by hand."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from analysis import tapering

D = dt.date


def test_pick_spreads_the_panels_over_the_range_of_speeds():
    tapers = pd.DataFrame({"patient_id": [f"P{i:02d}" for i in range(20)], "taper_start": D(2025, 1, 1),
                           "max_monthly_reduction_pct": [5.0 * i for i in range(20)], "category": "moderate"})
    picked = tapering.pick(tapers, 12)
    # Positions round(linspace(0, 19, 12)) = 0, 2, 3, 5, 7, 9, 10, 12, 14, 16, 17, 19: slowest and fastest kept.
    assert picked["max_monthly_reduction_pct"].tolist() == [5.0 * i for i in (0, 2, 3, 5, 7, 9, 10, 12, 14, 16, 17, 19)]
    assert picked["panel"].tolist() == list(range(1, 13))
    assert picked["caption"].iloc[-1] == "moderate · 95%/month"
    assert len(tapering.pick(tapers.head(3), 12)) == 3


def test_relative_segments_count_days_from_the_start_and_stop_at_the_data_end():
    picked = pd.DataFrame({"patient_id": ["P1"], "taper_start": [D(2025, 3, 1)], "baseline_mme": [100.0],
                           "panel": [1]})
    segments = pd.DataFrame({
        "patient_id": ["P1"] * 3,
        "seg_start": [D(2024, 6, 1), D(2025, 3, 1), D(2025, 5, 30)],
        "seg_end": [D(2025, 2, 28), D(2025, 5, 29), None],           # open stretch after the last supply
        "daily_mme": [100.0, 50.0, 0.0], "supplied": [True, True, False]})
    got = tapering.relative_segments(segments, picked, D(2025, 6, 30))
    # 2024-06-01 is 273 days before: clipped to -180. 2025-05-29 is day 89. The data end (2025-06-30) is
    # day 121, so the open stretch is drawn from day 90 to 121 only.
    assert got.values.tolist() == [[1, -180, -1, 100.0], [1, 0, 89, 50.0], [1, 90, 121, 0.0]]


def test_relative_segments_stop_at_the_patient_record_end_when_it_is_earlier():
    picked = pd.DataFrame({"patient_id": ["P1"], "taper_start": [D(2025, 3, 1)], "baseline_mme": [100.0],
                           "panel": [1], "window_end": [D(2025, 6, 9)]})
    segments = pd.DataFrame({
        "patient_id": ["P1"] * 2, "seg_start": [D(2025, 3, 1), D(2025, 5, 30)], "seg_end": [D(2025, 5, 29), None],
        "daily_mme": [50.0, 0.0], "supplied": [True, False]})
    # The record ends 2025-06-09 (day 100), before the data end (day 121): the open stretch stops at day 100.
    got = tapering.relative_segments(segments, picked, D(2025, 6, 30))
    assert got.values.tolist() == [[1, 0, 89, 50.0], [1, 90, 100, 0.0]]


def test_events_after_tapers_by_speed_band():
    tapers = pd.DataFrame({"patient_id": ["A", "B", "C", "E"], "taper_start": [D(2025, 1, 1)] * 4,
                           "max_monthly_reduction_pct": [5.0, 25.0, 50.0, 80.0]})
    # A: first event on day 60; C: day 12 (and another type on day 200); B and E: none.
    outcomes = pd.DataFrame({"patient_id": ["A", "C", "C"], "taper_start": [D(2025, 1, 1)] * 3,
                             "days_to_first_event": [60, 12, 200], "event_type": ["ed_visit", "overdose", "ed_visit"]})
    got = tapering.outcomes_by_band(tapers, outcomes, 10, 40).set_index("band")
    assert got["tapers"].tolist() == [1, 1, 2]
    assert got.loc["≤ 10%/month", ["within_30", "within_90"]].tolist() == [0.0, 1.0]
    assert got.loc["10–40%/month", ["within_30", "within_90"]].tolist() == [0.0, 0.0]
    assert got.loc["> 40%/month", ["within_30", "within_90"]].tolist() == [0.5, 0.5]
    none = tapering.outcomes_by_band(tapers.head(1), outcomes.head(0), 10, 40).set_index("band")
    assert none.loc["≤ 10%/month", "within_90"] == 0.0 and np.isnan(none.loc["> 40%/month", "within_90"])


def test_speed_counts_follow_the_histogram_bins():
    tapers = pd.DataFrame({"max_monthly_reduction_pct": [0.0, 4.9, 5.0, 42.0, 100.0, 100.0]})
    got = tapering.speed_counts(tapers).set_index("pct_from")["tapers"]
    assert got[0.0] == 2 and got[5.0] == 1 and got[40.0] == 1 and got[95.0] == 2 and got.sum() == 6
