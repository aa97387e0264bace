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


# --- Charts that hold on any data (issue 15): degenerate data sets through every builder ---------------

import inspect  # noqa: E402

import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import pytest  # noqa: E402

from analysis.display import plotly_text  # noqa: E402
from tests.degenerate import SETS, inputs  # noqa: E402

HELPERS = {"count_axis", "share_axis", "quarter_label"}   # axis and label helpers, not builders


def every_figure(d) -> dict[str, tuple[go.Figure, str, dict[str, str]]]:
    """Every builder on one degenerate data set: figure, the title it was given, and its axes by kind
    ({"yaxis": "count", "xaxis": "share", ...})."""
    i = inputs(d)
    units, lines, pooled, tapers = i["units"], i["lines"], i["pooled"], i["tapers"]
    funnel = charts.funnel_chart(units, lines, "Funnel <b>t</b>", "Share", pooled, True, "lower")
    charts.highlight(funnel, units["denominator"].iloc[0], units["value"].iloc[0], "Clinician <b>0</b>", True)
    caterpillar = charts.caterpillar_chart(units, "Caterpillar", "Share", pooled, True)
    charts.highlight(caterpillar, 1, units["shrunk_value"].iloc[0], "Clinician 0", True)
    fills = charts.monthly_fills_chart(i["fills"], "2025")
    month = i["fills"]["month"].iloc[0]
    charts.shade_incomplete(fills, [(month, month + pd.Timedelta(days=6), "provisional")], "Latest week")
    peer = charts.peer_strip_chart(i["peers"], "Peers")
    return {
        "monthly_fills_chart": (fills, "Patients filling an opioid analgesic, by month (2025)", {"yaxis": "count"}),
        "shade_incomplete": (fills, "Patients filling an opioid analgesic, by month (2025)", {"yaxis": "count"}),
        "monthly_tapers_chart": (charts.monthly_tapers_chart(i["monthly_tapers"], "2025"),
                                 "Tapers and discontinuations, by month of start (2025)", {"yaxis": "count"}),
        "rejects_chart": (charts.rejects_chart(i["rejects"]), "Rows rejected by the latest load, by reason",
                          {"xaxis": "count"}),
        "funnel_chart": (funnel, "Funnel <b>t</b>", {"xaxis": "count", "yaxis": "share"}),
        "highlight": (funnel, "Funnel <b>t</b>", {"xaxis": "count", "yaxis": "share"}),
        "taper_speed_chart": (charts.taper_speed_chart(tapers, "in 2025", 10, 40),
                              f"How fast doses fell: {len(tapers):,} taper{'' if len(tapers) == 1 else 's'} starting in 2025", {"yaxis": "count"}),
        "taper_categories_chart": (charts.taper_categories_chart(tapers, "2025"), "Taper categories by clinician, 2025",
                                   {"yaxis": "count"}),
        "caterpillar_chart": (caterpillar, "Caterpillar", {"yaxis": "share"}),
        "consistency_trend_chart": (charts.consistency_trend_chart(i["trend"], "Trend <i>x</i>"),
                                    "Trend <i>x</i>", {}),
        "clinic_distribution_chart": (charts.clinic_distribution_chart(units, "Clinics", "Share", pooled, True),
                                      "Clinics", {"yaxis": "share"}),
        "trajectories_chart": (charts.trajectories_chart(i["segments"], i["panels"], "Trajectories"),
                               "Trajectories", {}),
        "outcomes_chart": (charts.outcomes_chart(i["bands"], "Outcomes"), "Outcomes", {"yaxis": "share"}),
        "peer_strip_chart": (peer, "Peers", {"xaxis": "share"}),   # the first panel is a share; the second is not
    }


def test_every_builder_is_run_on_the_degenerate_sets():
    builders = {name for name, f in inspect.getmembers(charts, inspect.isfunction)
                if f.__module__ == charts.__name__ and not name.startswith("_")} - HELPERS
    assert builders == set(every_figure(SETS[0]))


def _ticks(axis) -> list[float]:
    lo, hi = axis.range
    first = axis.tick0 + np.ceil((lo - axis.tick0) / axis.dtick - 1e-9) * axis.dtick
    return list(np.arange(first, hi + axis.dtick * 1e-6, axis.dtick))


@pytest.mark.parametrize("d", SETS, ids=[d.name for d in SETS])
def test_charts_hold_on_degenerate_data(d):
    for name, (fig, title, axes) in every_figure(d).items():
        assert fig.layout.title.text == plotly_text(title), name          # titles are plain text
        for key, kind in axes.items():
            axis = fig.layout[key]
            if kind == "count":
                # Whole-number ticks: no "1.5 patients", no "0.5 rejected rows".
                assert axis.tickformat == ",d", (name, key)
                assert axis.dtick >= 1 and float(axis.dtick).is_integer() and axis.tick0 == 0, (name, key)
                assert axis.rangemode == "tozero" or (axis.range and axis.range[0] == 0), (name, key)
            else:
                # Shares inside 0%..100% (never -100%), labels that are all different.
                lo, hi = axis.range
                assert 0 <= lo < hi <= 1, (name, key, axis.range)
                decimals = int(axis.tickformat.strip(".%"))
                labels = [f"{t * 100:.{decimals}f}%" for t in _ticks(axis)]
                assert len(labels) >= 2 and len(set(labels)) == len(labels), (name, key, labels)


@pytest.mark.parametrize("d", SETS, ids=[d.name for d in SETS])
def test_the_speed_histogram_holds_every_taper(d):
    tapers = inputs(d)["tapers"]
    fig = charts.taper_speed_chart(tapers, "2025", 10, 40)
    bars = fig.data[0]
    assert sum(bars.y) == len(tapers)                                 # an abrupt stop (100%/month) included
    if (tapers["max_monthly_reduction_pct"] == 100).any():
        assert bars.y[-1] >= (tapers["max_monthly_reduction_pct"] == 100).sum()   # the last bar: [95, 100]
        assert bars.x[-1] + bars.width[-1] / 2 <= 100


def test_share_labels_are_distinct_on_a_narrow_range():
    fig = charts.caterpillar_chart(_units(3).assign(shrunk_lower=[0.201, 0.202, 0.203], shrunk_upper=[0.204] * 3),
                                   "t", "share", 0.2025, True)
    assert fig.layout.yaxis.tickformat in (".1%", ".2%")
    wide = charts.caterpillar_chart(_units(3).assign(shrunk_lower=[0.0, 0.1, 0.2], shrunk_upper=[0.9] * 3),
                                    "t", "share", 0.3, True)
    assert wide.layout.yaxis.tickformat == ".0%" and wide.layout.yaxis.range[0] == 0
