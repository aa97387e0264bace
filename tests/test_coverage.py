"""The measurability rule (analysis.coverage) with each measure's declared needs, worked by hand on the
sample's bounds (first fill 2023-01-01, last fill 2025-12-31) and on short extracts."""
from __future__ import annotations

import datetime as dt

import pytest

from analysis import coverage, dose, measures

D = dt.date
DATA = (D(2023, 1, 1), D(2025, 12, 31))   # the sample's data_bounds
M = measures.BY_ID


def state(measure_id: str, start: dt.date, end: dt.date, bounds=DATA) -> coverage.Measurability:
    return measures.measurability(M[measure_id], start, end, *bounds)


def test_each_measure_declares_the_days_its_definition_needs():
    # Tapers: a 180-day baseline before the start (TaperParams.baseline_days) and the 7-month follow-up of
    # 30-day months after it (30 x 7 = 210), which holds the 60-day windows, the speed and 60 days without supply.
    for i in ("taper_rapid", "abrupt_discontinuation"):
        n = measures.needs(M[i])
        assert (n.before, n.after, n.min_period) == (180, 210, 1)
    # New starts: 90 days of look-back (MeasureParams.new_start_lookback); becoming long-term also needs the
    # episode judged: more than 90 days long and 120 days' supply take at least max(91, 120) = 120 days.
    assert dose.LtotParams().judged_days == 120
    for i, after in (("new_start_over_7d", 0), ("new_start_long_acting", 0), ("new_start_to_ltot", 120)):
        assert (measures.needs(M[i]).before, measures.needs(M[i]).after) == (90, after)
    # Long-term patients: an episode must be judged on both sides of each day: 120 before and after.
    for i in ("high_dose_90", "high_dose_50", "mean_daily_mme"):
        assert (measures.needs(M[i]).before, measures.needs(M[i]).after) == (120, 120)
    # PQA COB: 30 days of overlapping supply must fit inside the period.
    assert measures.needs(M["benzo_overlap"]).min_period == 30
    for i in ("naloxone_at_50", "multiple_prescribers"):
        assert measures.needs(M[i]) == coverage.NOTHING
    # The days follow the parameters: a 360-day research baseline needs 360 days before.
    assert measures.needs(M["taper_rapid"], tapers=dose.TaperParams(baseline_days=360)).before == 360


def test_tapers_in_the_last_year_are_provisional_after_5_june():
    # A taper starting d needs d .. d + 209 in the data: d <= 2025-12-31 - 209 days = 2025-06-05
    # (5 Jun to 31 Dec: 26 + 31 + 31 + 30 + 31 + 30 + 31 = 210 days, the start included).
    s = state("taper_rapid", D(2025, 1, 1), D(2025, 12, 31))
    assert (s.state, s.first, s.last) == ("provisional", D(2025, 1, 1), D(2025, 6, 5))
    assert s.word == "provisional"
    assert "only 01 Jan 2025 to 05 Jun 2025 can be measured" in s.reason()
    assert "the data end 31 Dec 2025" in s.reason()
    # 2024 is complete: 2024-01-01 - 180 days = 2023-07-05 is inside the data, and 2024-12-31 + 209 days
    # = 2025-07-28 is before the data end.
    assert state("taper_rapid", D(2024, 1, 1), D(2024, 12, 31)).state == "complete"


def test_the_first_half_year_of_2023_needs_history_that_does_not_exist():
    # Tapers: the first start with a whole baseline is 2023-01-01 + 180 days = 2023-06-30
    # (30 + 28 + 31 + 30 + 31 + 30 = 180), so of 1 Jan - 30 Jun only 30 Jun can be measured.
    s = state("taper_rapid", D(2023, 1, 1), D(2023, 6, 30))
    assert (s.state, s.first, s.last) == ("provisional", D(2023, 6, 30), D(2023, 6, 30))
    assert "180-day baseline before each day, and the data begin 01 Jan 2023" in s.reason()
    # New starts: 90 days of look-back from 2023-01-01 reach 2023-04-01 (30 + 28 + 31 = 89 days to 31 Mar).
    s = state("new_start_over_7d", D(2023, 1, 1), D(2023, 6, 30))
    assert (s.state, s.first, s.last) == ("provisional", D(2023, 4, 1), D(2023, 6, 30))
    # The first quarter: no day has its baseline or its look-back: no figure at all.
    for i in ("taper_rapid", "abrupt_discontinuation", "new_start_over_7d", "new_start_to_ltot"):
        s = state(i, D(2023, 1, 1), D(2023, 3, 31))
        assert (s.state, s.first, s.has_figure) == ("not measurable yet", None, False), i
        assert s.reason().startswith("no day of the period can be measured")


def test_long_term_figures_need_120_days_on_either_side():
    # 2025-12-31 - 119 days = 2025-09-03 (3 Sep to 31 Dec: 28 + 31 + 30 + 31 = 120 days).
    s = state("high_dose_90", D(2025, 1, 1), D(2025, 12, 31))
    assert (s.state, s.last) == ("provisional", D(2025, 9, 3))
    assert state("high_dose_90", D(2024, 1, 1), D(2024, 12, 31)).complete


def test_a_measure_whose_window_is_longer_than_the_period_cannot_be_met():
    # 1-23 Mar 2025 holds 23 days; 30 days of overlapping supply cannot happen in it.
    s = state("benzo_overlap", D(2025, 3, 1), D(2025, 3, 23))
    assert (s.state, s.has_figure, s.word) == ("too short", False, "needs a period of at least 30 days")
    assert "cannot fit in a period of 23 days" in s.reason()
    # 1-30 Mar 2025 is 30 days: enough.
    assert state("benzo_overlap", D(2025, 3, 1), D(2025, 3, 30)).complete
    # A 23-day claims extract: the period is all of it; tapers and new starts have no history at all.
    extract = (D(2025, 3, 1), D(2025, 3, 23))
    assert state("taper_rapid", *extract, bounds=extract).state == "not measurable yet"
    assert state("new_start_over_7d", *extract, bounds=extract).state == "not measurable yet"
    assert state("naloxone_at_50", *extract, bounds=extract).state == "complete"


@pytest.mark.parametrize("period, previous", [
    ((D(2025, 1, 1), D(2025, 12, 31)), (D(2024, 1, 1), D(2024, 12, 31))),       # a calendar year
    ((D(2025, 4, 1), D(2025, 6, 30)), (D(2025, 1, 1), D(2025, 3, 31))),         # a quarter
    ((D(2025, 3, 1), D(2025, 3, 31)), (D(2025, 2, 1), D(2025, 2, 28))),         # a month: February's 28 days
    ((D(2024, 7, 1), D(2025, 6, 30)), (D(2023, 7, 1), D(2024, 6, 30))),         # twelve months to June
    ((D(2025, 3, 1), D(2025, 3, 23)), (D(2025, 2, 6), D(2025, 2, 28))),         # 23 days: 28 - 22 = 6 Feb
    # 364 days: the 364 before, 4 Jan 2024 to 1 Jan 2025 (28 days of January + 335 to the end of leap-year
    # 2024 + 1 Jan 2025 = 364).
    ((D(2025, 1, 2), D(2025, 12, 31)), (D(2024, 1, 4), D(2025, 1, 1))),
])
def test_the_previous_period_is_calendar_aligned(period, previous):
    assert coverage.previous_period(*period) == previous


def test_the_default_period_is_the_latest_twelve_whole_months():
    assert coverage.default_period(*DATA) == (D(2025, 1, 1), D(2025, 12, 31))            # the calendar year 2025
    # Data ending 23 Dec 2025: December is not whole, so December 2024 to November 2025.
    assert coverage.default_period(D(2024, 6, 1), D(2025, 12, 23)) == (D(2024, 12, 1), D(2025, 11, 30))
    # Under twelve whole months of data: the last 365 days, or all of it.
    assert coverage.default_period(D(2025, 1, 1), D(2025, 8, 20)) == (D(2025, 1, 1), D(2025, 8, 20))


def test_month_states_shade_the_months_a_taper_cannot_be_followed_in():
    months = coverage.month_states(measures.needs(M["taper_rapid"]), D(2025, 1, 1), D(2025, 12, 31), *DATA)
    # January to May complete; June measurable to the 5th; July to December not at all.
    assert [m.state for m in months] == ["complete"] * 5 + ["provisional"] + ["not measurable yet"] * 6
    assert (months[5].first, months[5].last) == (D(2025, 6, 1), D(2025, 6, 5))
