"""Chart builders (analysis.charts): what the figures carry, checked in their JSON."""
from __future__ import annotations

import pandas as pd

from analysis import charts, trends


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
import re  # noqa: E402

import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import pytest  # noqa: E402

from analysis.display import plotly_text  # noqa: E402
from tests.degenerate import SETS, inputs  # noqa: E402

HELPERS = {"count_axis", "share_axis", "quarter_label", "month_axis",   # axis, label and layout helpers,
           "fit_layout", "wrap_text", "text_lines", "fits", "legend_entries", "legend_rows",   # not builders
           "top_row_subtitles"}


def every_figure(d, long: str = "") -> dict[str, tuple[go.Figure, str, dict[str, str]]]:
    """Every builder on one degenerate data set: figure, the title it was given, and its axes by kind
    ({"yaxis": "count", "xaxis": "share", ...}). `long` is added to every title (and period) given."""
    i = inputs(d)
    units, lines, pooled, tapers = i["units"], i["lines"], i["pooled"], i["tapers"]
    year = "2025" + long
    funnel = charts.funnel_chart(units, lines, "Funnel <b>t</b>" + long, "Share", pooled, True, "lower")
    charts.highlight(funnel, units["denominator"].iloc[0], units["value"].iloc[0], "Clinician <b>0</b>", True)
    caterpillar = charts.caterpillar_chart(units, "Caterpillar" + long, "Share", pooled, True)
    charts.highlight(caterpillar, 1, units["shrunk_value"].iloc[0], "Clinician 0", True)
    fills = charts.monthly_fills_chart(i["fills"], year)
    month = i["fills"]["month"].iloc[0]
    charts.shade_incomplete(fills, [(month, month + pd.Timedelta(days=6), "provisional")], "Latest week")
    peer = charts.peer_strip_chart(i["peers"], "Peers" + long)
    # Deciles by quarter from the units' shares (each month a quarter here), one unit's line on top.
    quarters = i["fills"]["month"]
    series = pd.concat([units.assign(quarter_start=q) for q in quarters], ignore_index=True)
    deciles = trends.deciles(series, min_denominator=1)
    own = series[series["unit_id"] == "U0"][["quarter_start", "value", "numerator", "denominator"]]
    decile = charts.decile_chart(deciles, "Deciles <b>d</b>" + long, "Share", True, own, "Clinician <b>0</b>")
    return {
        "decile_chart": (decile, "Deciles <b>d</b>" + long, {"yaxis": "share"}),
        "monthly_fills_chart": (fills, f"Patients filling an opioid analgesic, by month ({year})", {"yaxis": "count"}),
        "shade_incomplete": (fills, f"Patients filling an opioid analgesic, by month ({year})", {"yaxis": "count"}),
        "monthly_tapers_chart": (charts.monthly_tapers_chart(i["monthly_tapers"], year),
                                 f"Tapers and discontinuations, by month of start ({year})", {"yaxis": "count"}),
        "rejects_chart": (charts.rejects_chart(i["rejects"]), "Rows rejected by the latest load, by reason",
                          {"xaxis": "count"}),
        "funnel_chart": (funnel, "Funnel <b>t</b>" + long, {"xaxis": "count", "yaxis": "share"}),
        "highlight": (funnel, "Funnel <b>t</b>" + long, {"xaxis": "count", "yaxis": "share"}),
        "taper_speed_chart": (charts.taper_speed_chart(tapers, "in " + year, 10, 40),
                              f"How fast doses fell: {len(tapers):,} taper{'' if len(tapers) == 1 else 's'} starting "
                              f"in {year}", {"yaxis": "count"}),
        "taper_categories_chart": (charts.taper_categories_chart(tapers, year),
                                   f"Taper categories by clinician, {year}", {"yaxis": "count"}),
        "caterpillar_chart": (caterpillar, "Caterpillar" + long, {"yaxis": "share"}),
        "consistency_trend_chart": (charts.consistency_trend_chart(i["trend"], "Trend <i>x</i>" + long),
                                    "Trend <i>x</i>" + long, {}),
        "clinic_distribution_chart": (charts.clinic_distribution_chart(units, "Clinics" + long, "Share", pooled, True),
                                      "Clinics" + long, {"yaxis": "share"}),
        "trajectories_chart": (charts.trajectories_chart(i["segments"], i["panels"], "Trajectories" + long),
                               "Trajectories" + long, {}),
        "outcomes_chart": (charts.outcomes_chart(i["bands"], "Outcomes" + long), "Outcomes" + long, {"yaxis": "share"}),
        "peer_strip_chart": (peer, "Peers" + long, {"xaxis": "share"}),   # the first panel is a share; the second is not
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
        # Titles are plain text, wrapped (<br>) between words where they are too long for the width.
        assert fig.layout.title.text.replace("<br>", " ") == plotly_text(title), name
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


def test_a_ranked_chart_of_a_few_units_names_them_and_of_many_ticks_whole_ranks():
    clinics = _units(5).assign(unit_label=[f"Clinic {c}" for c in "EDCBA"], shrunk_value=[0.5, 0.4, 0.3, 0.2, 0.1])
    fig = charts.caterpillar_chart(clinics, "t", "share", 0.3, True, unit="clinic")
    # Ranked lowest first: Clinic A (0.1) at rank 1 ... Clinic E (0.5) at 5, each rank named.
    assert list(fig.layout.xaxis.tickvals) == [1, 2, 3, 4, 5]
    assert list(fig.layout.xaxis.ticktext) == ["Clinic A", "Clinic B", "Clinic C", "Clinic D", "Clinic E"]
    assert fig.layout.xaxis.title.text == "Clinic (lowest to highest shrunken value)"
    many = charts.caterpillar_chart(_units(40), "t", "share", 0.1, True)
    assert many.layout.xaxis.ticktext is None and many.layout.xaxis.tickformat == ",d"
    assert many.layout.xaxis.dtick == 10 and list(many.layout.xaxis.range) == [0.5, 40.5]


# --- Layout: titles, legends and subplot titles that do not overlap or run off (issue 15) ----------------

# A caterpillar title as the Variation page writes it (107 characters: it ran off the right edge at 1280 px).
LONG = (": shrunken values with 95% intervals, 01 Jan 2025 to 31 Dec 2025, North Clinic & South Clinic, "
        "Pain medicine")
LINE_CHARS = charts.fits(charts.FIGURE_WIDTH, charts.TITLE_SIZE)     # 80 characters of 18 px at 800 px


def _lines(text: str) -> list[str]:
    return charts.text_lines(text)


@pytest.mark.parametrize("long", ["", LONG], ids=["short titles", "long titles"])
@pytest.mark.parametrize("d", SETS, ids=[d.name for d in SETS])
def test_titles_fit_and_the_top_margin_holds_title_legend_and_panel_titles(d, long):
    for name, (fig, title, _) in every_figure(d, long).items():
        lines = _lines(fig.layout.title.text)
        assert all(len(line) <= LINE_CHARS for line in lines), (name, lines)      # nothing runs off the right
        if long and name != "rejects_chart":                                   # (its title is fixed)
            assert len(lines) >= 2, name                                          # wrapped, not cut
        legend_px = charts.legend_rows(fig) * charts.LEGEND_ROW
        panels = charts.top_row_subtitles(fig)
        panel_px = max((len(_lines(a.text)) * charts.SUBTITLE_SIZE * charts.LINE_HEIGHT for a in panels), default=0)
        t = fig.layout.title
        # The title's last line stands above the legend and the first panel's title, and grows upwards.
        assert (t.y, t.yref, t.yanchor) == (1, "paper", "bottom"), name
        assert t.pad.b >= legend_px + panel_px, name
        needed = charts.TOP_PAD + len(lines) * charts.TITLE_SIZE * charts.LINE_HEIGHT + legend_px + panel_px
        assert fig.layout.margin.t >= needed, (name, fig.layout.margin.t, needed)
        if legend_px and panels:
            # The legend's bottom edge is above the first panel's title, not on it.
            plot_px = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
            assert (fig.layout.legend.y - 1) * plot_px >= panel_px, name


def test_legends_are_counted_as_plotly_draws_them():
    d = SETS[1]
    figs = every_figure(d)
    # The funnel: 99.8% and 95% limits, within limits and the highlighted clinician: one row at 800 px.
    assert charts.legend_entries(figs["funnel_chart"][0]) == ["99.8% limits", "95% limits", "Within limits",
                                                              "Clinician &lt;b&gt;0&lt;/b&gt;"]
    assert charts.legend_rows(figs["peer_strip_chart"][0]) == 1            # peers, peer median, you
    assert charts.legend_entries(figs["caterpillar_chart"][0]) == []          # showlegend=False
    assert charts.legend_entries(figs["trajectories_chart"][0]) == []
    # Fifteen long names do not fit one row of 800 px.
    wide = go.Figure([go.Scatter(x=[1], y=[1], name=f"Clinic number {k} of the health system") for k in range(15)])
    assert charts.legend_rows(wide) >= 4


def test_the_peer_strips_legend_sits_above_the_first_measure_name():
    fig = every_figure(SETS[1])["peer_strip_chart"][0]
    first = charts.top_row_subtitles(fig)
    assert [a.text for a in first] == ["Share &lt;i&gt;high&lt;/i&gt;"]
    assert fig.layout.legend.y > 1.0 and fig.layout.legend.yanchor == "bottom"


def test_trajectory_panels_keep_their_shape_with_one_taper_or_twelve():
    i = inputs(SETS[0])
    one = charts.trajectories_chart(i["segments"], i["panels"], "t")
    captions = pd.DataFrame({"panel": range(1, 13), "caption": ["abrupt discontinuation · 100%/month"] * 12})
    twelve = charts.trajectories_chart(i["segments"].assign(panel=1), captions, "t")
    for fig, rows in ((one, 1), (twelve, 3)):
        plot_px = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
        domain = fig.layout.yaxis.domain
        assert (domain[1] - domain[0]) * plot_px >= 160, rows      # a panel is about 170 px tall
    # The long caption is wrapped to its panel (a quarter of the plot), not run into the next one.
    panel_chars = charts.fits((charts.FIGURE_WIDTH - 90) * (1 - 0.03 * 3) / 4, charts.SUBTITLE_SIZE)
    for a in twelve.layout.annotations[:12]:
        assert len(_lines(a.text)) >= 2 and all(len(x) <= panel_chars for x in _lines(a.text)), a.text


def test_wrap_text_breaks_between_words_and_keeps_entities_whole():
    text = plotly_text("Clinic <North> & South: " + "x" * 100)
    wrapped = charts.wrap_text(text, 400, 18)
    limit = charts.fits(400, 18)                       # 40 characters of 18 px (0.55 x 18 = 9.9 px each)
    assert limit == 40
    lines = wrapped.split("<br>")
    assert lines[0] == "Clinic &lt;North&gt; &amp; South:"    # entities whole, counted as one character
    assert [len(x) for x in _lines(wrapped)][1:] == [40, 40, 20]   # a 100-letter word cut to the line
    assert charts.wrap_text(wrapped, 400, 18) == wrapped   # idempotent: fit_layout may run again


# --- Month axes: one week or one month is one labelled bar (issue 15) -------------------------------------

MONTH_LABEL = re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}$")


@pytest.mark.parametrize("d", [d for d in SETS if d.name in ("one week", "one month", "counts 1 to 4")],
                         ids=lambda d: d.name)
def test_monthly_charts_label_months_not_times_of_day(d):
    figs = every_figure(d)
    months = [pd.Timestamp(m) for m in d.months]
    for name in ("monthly_fills_chart", "shade_incomplete", "monthly_tapers_chart"):
        axis = figs[name][0].layout.xaxis
        assert axis.tickformat == "%b %Y" and axis.tickmode == "array", name
        assert [pd.Timestamp(v) for v in axis.tickvals] == months, name
        assert all(MONTH_LABEL.match(t) for t in axis.ticktext), (name, axis.ticktext)
        assert list(axis.ticktext) == [f"{m:%b %Y}" for m in months]
        lo, hi = (pd.Timestamp(v) for v in axis.range)
        # A range of a month or more around the data's months (not a millisecond around one bar).
        assert lo < months[0] < months[-1] + pd.Timedelta(days=6) <= hi and hi - lo >= pd.Timedelta(days=31), name
        bars = [t for t in figs[name][0].data if t.type == "bar"]
        assert bars and all(b.width >= 20 * 86_400_000 for b in bars), name   # bars a few weeks wide


def test_a_long_period_thins_month_labels_to_twelve_at_most():
    months = pd.date_range("2021-01-01", periods=36, freq="MS")
    fig = charts.monthly_fills_chart(pd.DataFrame({"month": months, "patients": range(36)}), "2021 to 2023")
    assert len(fig.layout.xaxis.tickvals) == 12 and fig.layout.xaxis.ticktext[:2] == ("Jan 2021", "Apr 2021")
