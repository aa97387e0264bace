"""Parameters of the dose engine (queries/_*.sql) with their defaults and sources, and period grids.

The SQL does the row-level work; these dataclasses are the one place the defaults live, so the
dashboard, the command line and the Methods page state the same numbers.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

FACTOR_SETS = {
    "cdc2022": "CDC 2022 clinical practice guideline (default)",
    "cdc2016": "CDC 2016 guideline (methadone tiered by daily mg)",
    "cdc_file_2018": "CDC oral MME conversion data file, 2018",
}
PERIOD_UNITS = {"month": 1, "quarter": 3, "year": 12}


@dataclass(frozen=True)
class DoseParams:
    """Which MME factors to use, and whether excluded patients (cancer, hospice, sickle cell) are left out."""

    factor_set: str = "cdc2022"
    exclude: bool = True

    def sql(self) -> dict[str, object]:
        if self.factor_set not in FACTOR_SETS:
            raise ValueError(f"unknown factor set {self.factor_set!r}; choose one of: {', '.join(FACTOR_SETS)}")
        # dose_unknown: the dose-based measures return their patients (false) or, when true, the patients
        # they leave out because a prescription in supply has no MME factor in the set (README, dose engine).
        return {"factor_set": self.factor_set, "exclude": self.exclude, "dose_unknown": False}


@dataclass(frozen=True)
class LtotParams:
    """Long-term opioid therapy (Von Korff et al., Clin J Pain 2008)."""

    gap_days: int = 30      # longest gap in supply inside one episode
    min_days: int = 90      # an episode must last more than this
    min_fills: int = 10
    min_supply: int = 120   # days' supply

    @property
    def judged_days(self) -> int:
        """Days of data an episode needs before it can be called long-term or not: more than `min_days`
        long and, with no overlapping fills, `min_supply` days' supply take at least this many days. Days
        needed before and after each day a long-term figure measures (analysis.coverage)."""
        return max(self.min_days + 1, self.min_supply)

    def sql(self) -> dict[str, object]:
        return {"ltot_gap_days": self.gap_days, "ltot_min_days": self.min_days,
                "ltot_min_fills": self.min_fills, "ltot_min_supply": self.min_supply}


@dataclass(frozen=True)
class TaperParams:
    """Tapers and discontinuations (Fenton 2019; Agnoli 2021; Neprash 2021; CDC 2022 pace)."""

    baseline_days: int = 180          # 6 months of 30 days; 360 is the research value
    baseline_min_mme: float = 50.0
    min_fall: float = 0.15            # a 15% fall from baseline ...
    window_months: int = 2            # ... in the mean of a 60-day window ...
    followup_months: int = 7          # ... within seven months (six overlapping windows)
    min_level_days: int = 7           # a lower dose must last a week to be a possible start
    stop_days: int = 60               # days without supply that make a discontinuation
    abrupt_fraction: float = 0.5      # last 30 days' dose >= 50% of baseline: abrupt
    gradual_max_pct: float = 10.0     # <= 10% of baseline a month: gradual (CDC 2022)
    rapid_min_pct: float = 40.0       # > 40% a month (about 10% a week): rapid

    @property
    def days_before(self) -> int:
        """Days of data a taper start needs before it: the baseline (analysis.coverage)."""
        return self.baseline_days

    @property
    def days_after(self) -> int:
        """Days of data a taper start needs from it on: the follow-up in which the 60-day windows, the
        speed and the 60 days without supply are measured (30 x followup_months; analysis.coverage)."""
        return 30 * self.followup_months

    def sql(self, data_start: dt.date, data_end: dt.date) -> dict[str, object]:
        p = asdict(self)
        return {"data_start": data_start, "data_end": data_end, "baseline_days": p["baseline_days"],
                "baseline_min_mme": p["baseline_min_mme"], "taper_min_fall": p["min_fall"],
                "window_months": p["window_months"], "followup_months": p["followup_months"],
                "min_level_days": p["min_level_days"],
                "stop_days": p["stop_days"], "abrupt_fraction": p["abrupt_fraction"],
                "gradual_max_pct": p["gradual_max_pct"], "rapid_min_pct": p["rapid_min_pct"]}


def add_months(day: dt.date, months: int) -> dt.date:
    years, month0 = divmod(day.month - 1 + months, 12)
    return dt.date(day.year + years, month0 + 1, 1)


def period_grid(start: dt.date, end: dt.date, unit: str | int = "month") -> dict[str, object]:
    """Parameters of queries/_periods.sql covering start..end.

    unit: "month", "quarter", "year" (calendar periods; the first starts on the first day of the month,
    quarter or year holding `start`), "all" (one period, start..end), or a number of days (windows
    from `start`).
    """
    if end < start:
        raise ValueError(f"period end {end} is before its start {start}")
    if unit == "all":
        return {"start": start, "months": 0, "days": (end - start).days + 1, "n_periods": 1}
    if isinstance(unit, int):
        if unit < 1:
            raise ValueError("a period must be at least one day long")
        return {"start": start, "months": 0, "days": unit, "n_periods": -(-((end - start).days + 1) // unit)}
    if unit not in PERIOD_UNITS:
        raise ValueError(f"unknown period {unit!r}; use month, quarter, year, all or a number of days")
    months = PERIOD_UNITS[unit]
    first_month = (start.month - 1) // months * months + 1
    aligned = dt.date(start.year, first_month if unit != "year" else 1, 1)
    n = 0
    while add_months(aligned, n * months) <= end:
        n += 1
    return {"start": aligned, "months": months, "days": 0, "n_periods": n}
