"""Degenerate data sets for the chart builders (issue 15, "charts that hold on any data"): one unit, all
values equal, all 0%, all 100%, counts of 1 to 4, one week, one month, taper speeds of exactly 0 and 100.

Each data set is a few numbers; `inputs` turns one into the frames every builder in analysis.charts takes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Degenerate:
    name: str
    shares: list[float]                 # one per unit (proportions, 0..1)
    counts: list[int]                   # denominators, monthly counts, rejected rows, tapers per clinician
    speeds: list[float]                 # tapers' fastest monthly fall, % of baseline a month
    months: list[str] = field(default_factory=lambda: ["2025-01-01"])


SETS = [
    Degenerate("one unit", [0.3], [1], [42.0]),
    Degenerate("all values equal", [0.25] * 6, [4] * 6, [30.0] * 6),
    Degenerate("all 0%", [0.0] * 5, [3, 5, 8, 2, 9], [0.0] * 5),
    Degenerate("all 100%", [1.0] * 5, [3, 5, 8, 2, 9], [100.0] * 5),
    Degenerate("counts 1 to 4", [0.0, 0.5, 1 / 3, 0.25], [1, 2, 3, 4], [5.0, 10.0, 95.0, 100.0],
               ["2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01"]),
    Degenerate("one week", [0.1, 0.11], [2, 2], [12.5, 100.0], ["2025-03-03"]),
    Degenerate("one month", [0.5, 0.52, 0.51], [1, 1, 1], [50.0, 50.0, 50.0], ["2025-03-01"]),
    Degenerate("speeds exactly 0 and 100", [0.05, 0.95], [7, 1], [0.0, 100.0, 0.0, 100.0, 100.0]),
    Degenerate("no tapers, nothing counted", [0.2, 0.2], [0, 0], []),
    Degenerate("a narrow band of shares", [0.201, 0.203, 0.204, 0.202], [500, 800, 650, 900], [20.0, 21.0]),
]

LINES = pd.DataFrame({"n": [1, 2, 5], "lower_95": [0.0, 0.0, 0.0], "upper_95": [1.0, 0.9, 0.7],
                      "lower_998": [0.0, 0.0, 0.0], "upper_998": [1.0, 0.95, 0.8]})


def inputs(d: Degenerate) -> dict[str, object]:
    """The frames the builders take, made from one degenerate data set."""
    n = len(d.shares)
    counts = [d.counts[i % len(d.counts)] for i in range(n)]
    units = pd.DataFrame({"unit_id": [f"U{i}" for i in range(n)],
                          "unit_label": [f"Clinician <b>{i}</b>" for i in range(n)],
                          "clinic_name": [f"Clinic {i % 2}" for i in range(n)],
                          "numerator": [round(s * c) for s, c in zip(d.shares, counts)], "denominator": counts,
                          "value": d.shares, "shrunk_value": d.shares,
                          "shrunk_lower": [max(0.0, s - 0.01) for s in d.shares],
                          "shrunk_upper": [min(1.0, s + 0.01) for s in d.shares], "flag": ["within"] * n})
    categories = ["gradual", "moderate", "rapid", "abrupt_discontinuation"]
    tapers = pd.DataFrame({"clinician_id": [f"C{i % 3}" for i in range(len(d.speeds))],
                           "category": [categories[min(3, int(s // 30))] for s in d.speeds],
                           "max_monthly_reduction_pct": pd.Series(d.speeds, dtype=float)})
    months = pd.to_datetime(pd.Series(d.months))
    monthly_counts = [d.counts[i % len(d.counts)] for i in range(len(months))]
    return {
        "units": units, "lines": LINES, "pooled": float(sum(d.shares) / n), "tapers": tapers,
        "fills": pd.DataFrame({"month": months, "patients": monthly_counts}),
        "monthly_tapers": pd.DataFrame({"month": months, "tapers": monthly_counts}),
        "rejects": pd.DataFrame({"table_name": ["prescriptions"] * len(d.counts),
                                 "reason_code": [f"reason_{i}" for i in range(len(d.counts))], "n_rows": d.counts}),
        "bands": pd.DataFrame({"band": ["gradual", "rapid"][: max(1, min(2, n))],
                               "tapers": d.counts[: max(1, min(2, n))],
                               "within_30": d.shares[: max(1, min(2, n))], "within_90": d.shares[: max(1, min(2, n))]}),
        "peers": pd.DataFrame([{"measure": "Share <i>high</i>", "peers": list(d.shares), "own": d.shares[0],
                                "median": float(pd.Series(d.shares).median()), "percent": True},
                               {"measure": "Days", "peers": [float(c) for c in d.counts], "own": float(d.counts[0]),
                                "median": float(pd.Series(d.counts).median()), "percent": False}]),
        "trend": pd.DataFrame({"quarter_start": months[:1], "median_odds_ratio": [1.0], "p90_p10_ratio": [1.0],
                               "phi": [1.0]}),
        "segments": pd.DataFrame({"panel": [1, 1], "day_from": [-180, 0], "day_to": [-1, 210],
                                  "pct_of_baseline": [100.0, 100.0 - (d.speeds[0] if d.speeds else 0.0)]}),
        "panels": pd.DataFrame({"panel": [1], "caption": ["abrupt · 100%/month"]}),
    }
