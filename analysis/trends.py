"""Clinicians over time: deciles by quarter, and sustained shifts found by a CUSUM (DESIGN.md "Over time").

Pure functions on one row per clinician (or clinic) and quarter, built from each quarter's funnel
(analysis.stats: value, se, pooled_value, flag; `quarter_rows`).

- Deciles (OpenPrescribing's decile charts): the 10th to 90th centiles of the units' values in each quarter,
  over the units judged that quarter (at least stats.MIN_DENOMINATOR cases), when at least stats.MIN_UNITS
  are; the median is the 50th.
- What changed: each unit's quarterly standardised difference from the quarter's pooled value,
  z = (value - pooled) / sqrt(se^2 + tau^2) (observed minus expected in standard errors; tau^2 the
  between-unit variance the quarter's limits allow for, so ordinary differences between colleagues are not
  read as change; a movement of everyone together leaves z unchanged). z is compared with the unit's own
  level (the mean z of its first REFERENCE quarters) by a two-sided tabular CUSUM (Page 1954; Montgomery,
  Introduction to Statistical Quality Control, 6th ed., section 9.1): S+ = max(0, S+ + d - k),
  S- = max(0, S- - d - k), d = z - level clipped to [-h, h], with k = 0.5 (tuned to a shift of one standard
  error) and h = 4 (the decision interval: for one unit in control, an average of about 168 quarters between
  false alarms). A shift is reported when S crosses h *and* at least MIN_QUARTERS quarters pushed it up:
  one unusual quarter, however large, is not a sustained change. It began in the quarter S last left 0 (the
  CUSUM's change-point estimate); the unit's level then becomes the shift's, so it is reported once. A
  quarter in which the unit has fewer than MIN_DENOMINATOR cases does not enter.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from analysis import stats

K = 0.5            # reference value, in standard errors: half the shift the CUSUM is tuned to detect
H = 4.0            # decision interval, in standard errors
MIN_QUARTERS = 2   # a shift needs at least this many quarters behind it: never one quarter alone
REFERENCE = 2      # the unit's own level: the mean z of its first quarters (OpenPrescribing's CUSUM likewise
                   # measures change against the unit's own past, not against the peers' level)
HISTORY = 8        # quarters a "what changed" judgement looks back over, the quarter judged included (two years)
CENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)
SHIFT_COLUMNS = ["unit_id", "direction", "began", "signalled", "quarters", "before", "before_numerator",
                 "before_denominator", "after", "after_numerator", "after_denominator"]


def quarter_of(day: dt.date) -> dt.date:
    """The first day of the calendar quarter holding `day`."""
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def history_start(quarter_start: dt.date, data_start: dt.date) -> dt.date:
    """The first day of the HISTORY quarters ending with the one starting `quarter_start`, not before the
    quarter holding `data_start`: the digest and the Overview judge "what changed" over the same span."""
    first = quarter_of(data_start)
    months = quarter_start.year * 12 + quarter_start.month - 1 - 3 * (HISTORY - 1)
    return max(first, dt.date(months // 12, months % 12 + 1, 1))


def last_complete_quarter(m, start: dt.date, end: dt.date, data_start: dt.date, data_end: dt.date,
                          tapers=None) -> dt.date | None:
    """The first day of the last quarter of start..end measured in full for measure m (a whole calendar quarter
    whose measurability is complete: analysis.measures.measurability with the taper rules `tapers`), or None:
    the quarter "what moved" judges."""
    from analysis import dose, measures

    tapers = tapers or dose.TaperParams()
    for q_start, q_end in reversed(measures.quarters(start, end)):
        whole = q_start == quarter_of(q_start) and q_end == dose.add_months(q_start, 3) - dt.timedelta(days=1)
        if whole and measures.measurability(m, q_start, q_end, data_start, data_end, dose.LtotParams(),
                                            tapers).complete:
            return q_start
    return None


def quarter_rows(result: stats.Funnel, quarter_start) -> pd.DataFrame:
    """One quarter's funnel as rows of the series: unit_id, quarter_start, numerator, denominator, value,
    pooled_value, z (standardised against the pooled value with the quarter's tau^2 when its limits use
    it), flag."""
    u = result.units
    tau2 = result.tau2 if result.limits.startswith("additive") else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (u["value"] - result.pooled) / np.sqrt(u["se"] ** 2 + tau2)
    return pd.DataFrame({"unit_id": u["unit_id"], "quarter_start": pd.Timestamp(quarter_start),
                         "numerator": u["numerator"], "denominator": u["denominator"], "value": u["value"],
                         "pooled_value": result.pooled, "z": z, "flag": u["flag"]})


def deciles(series: pd.DataFrame, min_denominator: int = stats.MIN_DENOMINATOR,
            min_units: int = stats.MIN_UNITS) -> pd.DataFrame:
    """Per quarter: quarter_start, units (judged that quarter), p10 ... p90 of their values (NaN when fewer
    than `min_units` units are judged: too few to draw a spread)."""
    rows = []
    for quarter, part in series.groupby("quarter_start", sort=True):
        judged = part.loc[part["denominator"] >= min_denominator, "value"].dropna()
        cells = {f"p{c}": float(np.percentile(judged, c)) if len(judged) >= min_units else np.nan for c in CENTILES}
        rows.append({"quarter_start": quarter, "units": int(len(judged)), **cells})
    return pd.DataFrame(rows, columns=["quarter_start", "units", *(f"p{c}" for c in CENTILES)])


def cusum(z: pd.Series, k: float = K, h: float = H, min_quarters: int = MIN_QUARTERS,
          reference: int = REFERENCE) -> list[dict]:
    """Sustained shifts in one unit's quarterly z-scores (index: quarter_start, in order; NaN = the quarter
    does not enter), against the unit's own level: the mean z of its first `reference` quarters (they are
    not tested). Each quarter's difference from that level counts at most h either way, so one extreme
    quarter cannot carry a signal on its own, and a run needs `min_quarters` quarters that pushed its sum up.
    Returns [{direction: up | down, began, signalled, quarters}]; after a signal the unit's level becomes the
    mean z of the shift's quarters and both sums restart from 0, so each shift is reported once."""
    entered = [(q, float(v)) for q, v in z.items() if np.isfinite(v)]
    return _cusum(entered, k, h, min_quarters, reference)


def _cusum(entered: list[tuple[object, float]], k: float = K, h: float = H, min_quarters: int = MIN_QUARTERS,
           reference: int = REFERENCE) -> list[dict]:
    """cusum over (quarter, z) pairs already in order, every z finite."""
    out = []
    level = sum(v for _, v in entered[:reference]) / reference if reference and len(entered) >= reference else None
    runs = {"up": Run(), "down": Run()}
    for quarter, value in entered[reference:] if level is not None else []:
        d = min(max(value - level, -h), h)
        signal = None
        for direction, step in (("up", d), ("down", -d)):
            run = runs[direction]
            run.add(quarter, value, step - k)
            if run.total > h and run.pushed >= min_quarters and signal is None:
                signal = (direction, run)
        if signal is not None:
            direction, run = signal
            out.append({"direction": direction, "began": run.began, "signalled": quarter, "quarters": run.pushed})
            level = sum(run.values) / len(run.values)
            runs = {"up": Run(), "down": Run()}
    return out


class Run:
    """One side of the CUSUM: its sum, the quarter it last left 0, the quarters that pushed it up, and the
    z-scores since it left 0."""

    def __init__(self) -> None:
        self.total, self.began, self.pushed, self.values = 0.0, None, 0, []

    def add(self, quarter, value: float, step: float) -> None:
        total = max(0.0, self.total + step)
        if total == 0:
            self.total, self.began, self.pushed, self.values = 0.0, None, 0, []
            return
        if self.total == 0:
            self.began, self.pushed, self.values = quarter, 0, []
        self.total = total
        self.pushed += step > 0
        self.values.append(value)


def shifts(series: pd.DataFrame, min_denominator: int = stats.MIN_DENOMINATOR) -> pd.DataFrame:
    """Every unit's sustained shifts (cusum) in a series (quarter_rows of consecutive quarters): unit_id,
    direction, began, signalled, quarters; before (the unit's value over the quarters before the shift: its
    pooled share, or patient-weighted mean) with before_numerator and before_denominator, the counts it rests
    on (for the disclosure rule); after, after_numerator, after_denominator likewise from `began` to
    `signalled`. Quarters with fewer than `min_denominator` cases do not enter, nor count towards a level."""
    # One pass over plain arrays, unit by unit (a health system has thousands of clinicians and the Overview
    # judges every measure): pandas indexing per unit cost seconds a page.
    ordered = series.sort_values(["unit_id", "quarter_start"], kind="stable")
    units = ordered["unit_id"].to_numpy()
    quarters = list(ordered["quarter_start"])
    z = ordered["z"].to_numpy(dtype=float)
    denominator = ordered["denominator"].to_numpy(dtype=float)
    numerator = ordered["numerator"].to_numpy(dtype=float)
    value = ordered["value"].to_numpy(dtype=float)
    entered = denominator >= min_denominator
    tested = entered & np.isfinite(z)
    cuts = np.flatnonzero(units[1:] != units[:-1]) + 1 if len(units) else np.array([], dtype=int)
    out = []
    for first, last in zip(np.r_[0, cuts], np.r_[cuts, len(units)]):
        rows = np.flatnonzero(tested[first:last]) + first
        if len(rows) < REFERENCE + MIN_QUARTERS:   # too few quarters to test any after the reference
            continue
        span = np.arange(first, last)
        in_unit = [quarters[i] for i in span]
        for s in _cusum([(quarters[i], float(z[i])) for i in rows]):
            before = span[entered[span] & np.array([q < s["began"] for q in in_unit])]
            after = span[entered[span] & np.array([s["began"] <= q <= s["signalled"] for q in in_unit])]
            out.append({"unit_id": units[first], **s, **_level(value, numerator, denominator, before, "before"),
                        **_level(value, numerator, denominator, after, "after")})
    return pd.DataFrame(out, columns=SHIFT_COLUMNS)


def _level(value: np.ndarray, numerator: np.ndarray, denominator: np.ndarray, rows: np.ndarray,
           name: str) -> dict[str, float]:
    """The value over several quarters (the positions `rows` of the arrays), weighted by each quarter's cases
    (NaN for none), and the summed numerator and denominator behind it, as {name, name_numerator,
    name_denominator}."""
    n = denominator[rows]
    total = float(n.sum())
    level = float((value[rows] * n).sum() / total) if total > 0 else float("nan")
    return {name: level, f"{name}_numerator": float(numerator[rows].sum()), f"{name}_denominator": total}
