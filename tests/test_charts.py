"""Chart builders (analysis.charts): what the figures carry, checked in their JSON."""
from __future__ import annotations

import pandas as pd

from analysis import charts


def _units(n: int) -> pd.DataFrame:
    # n clinicians over three distinct points: 0 of 10, 1 of 10, 5 of 20.
    pairs = [(0, 10), (1, 10), (5, 20)]
    rows = [pairs[i % 3] for i in range(n)]
    return pd.DataFrame({"unit_label": [f"Clinician {i:05d}" for i in range(n)],
                         "numerator": [r[0] for r in rows], "denominator": [r[1] for r in rows],
                         "value": [r[0] / r[1] for r in rows], "shrunk_value": [0.1] * n,
                         "shrunk_lower": [0.05] * n, "shrunk_upper": [0.2] * n, "flag": ["within"] * n})


LINES = pd.DataFrame({"n": [1, 20], "lower_95": [0, 0], "upper_95": [1, 0.4], "lower_998": [0, 0],
                      "upper_998": [1, 0.5]})


def test_a_few_hundred_units_are_drawn_one_point_each():
    fig = charts.funnel_chart(_units(30), LINES, "t", "share", 0.1, True, "lower")
    points = [t for t in fig.data if t.mode == "markers"]
    assert sum(len(t.x) for t in points) == 30


def test_thousands_of_units_share_their_identical_points():
    fig = charts.funnel_chart(_units(900), LINES, "t", "share", 0.1, True, "lower")
    within = next(t for t in fig.data if t.mode == "markers" and t.name == "Within limits")
    assert len(within.x) == 3                                    # three distinct points
    labels = sorted(c[0] for c in within.customdata)
    assert labels[0].startswith("300 clinicians (e.g. Clinician 00000, Clinician 00003, Clinician 00006")
    assert max(within.marker.size) == 24                          # capped growth
    caterpillar = charts.caterpillar_chart(_units(900), "t", "share", 0.1, True)
    assert caterpillar.data[1].mode == "lines"                    # one path, not 900 markers
