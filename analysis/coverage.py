"""Which part of a period a figure can be measured in, given the days the data cover (issue 12, section 1).

A figure measures something about each day (a taper starting that day, a new start on it, a patient on
therapy on it). To measure day d it may need days of data before d (a baseline, a look-back) and from d
on (a follow-up, days without supply), and its own window may need a period of some length (30 days of
overlapping supply cannot happen in 23 days). `Needs` declares that once per figure (analysis.measures
reads the days from LtotParams, TaperParams and MeasureParams); `measurable` applies the one rule:

    day d is measurable when  d - before >= window_start  and  d + after - 1 <= window_end

and the period's state is `complete` (every day measurable), `provisional` (some days), `not measurable
yet` (none) or `too short` (the period is shorter than `min_period`). The window is the data set's first
and last dates today (queries/data_bounds.sql); a patient's own record window (issue 13) can be passed
instead, per patient, without changing the rule.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from analysis import dose

COMPLETE, PROVISIONAL, NOT_MEASURABLE, TOO_SHORT = "complete", "provisional", "not measurable yet", "too short"
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Needs:
    """Days of data a figure needs around each day it measures, and the shortest period it can be met in.

    before: days before the day (d - before .. d - 1); after: days from the day on, the day included
    (d .. d + after - 1); min_period: days the period must hold. The `*_why` texts say what the days are
    for, in words for the screen ("a 180-day baseline").
    """

    before: int = 0
    after: int = 0
    min_period: int = 1
    before_why: str = ""
    after_why: str = ""
    period_why: str = ""


NOTHING = Needs()


@dataclass(frozen=True)
class Measurability:
    """A figure's state for one period: which days of it can be measured (first..last; None when none)."""

    state: str
    start: dt.date
    end: dt.date
    first: dt.date | None
    last: dt.date | None
    needs: Needs
    window_start: dt.date
    window_end: dt.date

    @property
    def complete(self) -> bool:
        return self.state == COMPLETE

    @property
    def has_figure(self) -> bool:
        """A number can be shown (complete or provisional); otherwise the word stands in for it."""
        return self.state in (COMPLETE, PROVISIONAL)

    @property
    def word(self) -> str:
        """What stands beside (provisional) or instead of (the others) the figure; '' when complete."""
        if self.state == TOO_SHORT:
            return f"needs a period of at least {self.needs.min_period} days"
        return "" if self.state == COMPLETE else self.state

    def sentence(self) -> str:
        """The reason as a sentence: capital first letter, full stop; '' when complete."""
        text = self.reason()
        return text[:1].upper() + text[1:] + "." if text else ""

    def reason(self) -> str:
        """Why, in one plain sentence for the screen and the exports; '' when complete."""
        n = self.needs
        if self.state == COMPLETE:
            return ""
        if self.state == TOO_SHORT:
            return (f"{n.period_why} cannot fit in a period of {(self.end - self.start).days + 1} days; choose "
                    f"at least {n.min_period}")
        missing = []
        if n.before and self.start - dt.timedelta(days=n.before) < self.window_start:
            missing.append(f"{n.before_why} before each day, and the data begin {self.window_start:%d %b %Y}")
        if n.after and self.end + dt.timedelta(days=n.after - 1) > self.window_end:
            missing.append(f"{n.after_why} from each day, and the data end {self.window_end:%d %b %Y}")
        why = "it needs " + "; it needs ".join(missing)
        if self.state == NOT_MEASURABLE:
            return f"no day of the period can be measured: {why}"
        return f"only {self.first:%d %b %Y} to {self.last:%d %b %Y} can be measured: {why}"


def measurable(needs: Needs, start: dt.date, end: dt.date, window_start: dt.date,
               window_end: dt.date) -> Measurability:
    """The state of a figure with `needs` over start..end, when data exist from window_start to window_end
    (the data set's bounds today; a patient's record window later)."""
    if (end - start).days + 1 < needs.min_period:
        return Measurability(TOO_SHORT, start, end, None, None, needs, window_start, window_end)
    first = max(start, window_start + dt.timedelta(days=needs.before))
    last = min(end, window_end - dt.timedelta(days=max(needs.after - 1, 0)))
    if first > last:
        return Measurability(NOT_MEASURABLE, start, end, None, None, needs, window_start, window_end)
    state = COMPLETE if (first, last) == (start, end) else PROVISIONAL
    return Measurability(state, start, end, first, last, needs, window_start, window_end)


def previous_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period to compare with, calendar-aligned: a run of whole calendar months (a year, a quarter, a
    month, twelve months to June) is compared with the same number of months just before (2025 with 2024);
    any other period with the same number of days just before."""
    if start.day == 1 and (end + DAY).day == 1:
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        return dose.add_months(start, -months), start - DAY
    p_end = start - DAY
    return p_end - (end - start), p_end


def default_period(window_start: dt.date, window_end: dt.date) -> tuple[dt.date, dt.date]:
    """The period a leader opens on: the latest twelve whole calendar months of data (a calendar year when
    the data end on 31 December), so it has a calendar-aligned previous period; when the data hold fewer
    than twelve whole months, the last 365 days (or all the data)."""
    last = window_end if (window_end + DAY).day == 1 else window_end.replace(day=1) - DAY
    first = dose.add_months(last.replace(day=1), -11)
    if first >= window_start:
        return first, last
    return max(window_start, window_end - dt.timedelta(days=364)), window_end


def month_states(needs: Needs, start: dt.date, end: dt.date, window_start: dt.date,
                 window_end: dt.date) -> list[Measurability]:
    """The state of each calendar month overlapping start..end (clipped to it), for shading charts."""
    out, month = [], start.replace(day=1)
    while month <= end:
        following = dose.add_months(month, 1)
        out.append(measurable(needs, max(month, start), min(following - DAY, end), window_start, window_end))
        month = following
    return out
