"""The one disclosure rule (analysis/disclosure.py) and every export that follows it (issue 15, section 3):
hand-worked counts through the rule, every chart builder under it, the CSVs and the report pack."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analysis import charts, disclosure, exports
from tests.degenerate import SETS, inputs

# Counts of patients, tapers and events (a count of clinicians identifies no patient).
SMALL = re.compile(r"(?<![\d.,])([1-9]|10) (taper|tapers|patient|patients|discontinuations?|events?)\b")


# --- The rule, by hand ------------------------------------------------------------------------------------

def test_small_is_one_to_min_cell_minus_one_and_never_zero():
    assert disclosure.is_small(np.array([0, 1, 10, 11, np.nan]), 11).tolist() == [False, True, True, False, False]
    assert disclosure.is_small(4, 11) and not disclosure.is_small(4, 0) and not disclosure.is_small(0, 11)
    assert disclosure.count_phrase(4, "taper") == "fewer than 11 tapers"
    assert disclosure.count_phrase(34, "taper") == "34 tapers"
    assert disclosure.count_phrase(1, "taper", 0) == "1 taper"


def test_parts_of_a_shown_total_withhold_a_lone_small_part_with_the_next_smallest():
    two_small = disclosure.withhold_parts([20, 5, 9, 0], 11)
    assert two_small["shown"].tolist() == [20, None, None, 0]
    assert two_small["text"].tolist() == ["20", "<11", "<11", "0"]
    lone = disclosure.withhold_parts([20, 5, 15, 0], 11)
    # 40 in all is shown: with only 5 hidden, 40 - 20 - 15 would give it back, so 15 goes too.
    assert lone["shown"].tolist() == [20, None, None, 0]
    assert lone["text"].tolist() == ["20", "<11", "withheld", "0"]
    assert lone["why"][2] == "withheld too, or the total would give a small count away"
    assert disclosure.withhold_parts([20, 5, 15], 11, total_shown=False)["shown"].tolist() == [20, None, 15]
    assert disclosure.withhold_parts([20, 5, 15], 0)["shown"].tolist() == [20, 5, 15]


def test_units_are_withheld_on_small_numerators_denominators_and_remainders():
    rule = disclosure.withhold_units(pd.Series([5, 35, 20, 0, 0, 30]), pd.Series([40, 40, 40, 8, 30, 60]),
                                     False, 11)
    assert rule["withheld"].tolist() == [True, True, False, True, False, False]
    assert rule["small_den"].tolist() == [False, False, False, True, False, False]
    lone = disclosure.withhold_units(pd.Series([3, 20, 12]), pd.Series([50, 50, 50]), False, 11)
    assert lone["withheld"].tolist() == [True, False, True]          # 12 is the next smallest numerator
    # A mean's numerator is a sum of doses, not a count: judged on its denominator only.
    means = disclosure.withhold_units(pd.Series([100.0, 2.0]), pd.Series([5, 40]), True, 11)
    assert means["withheld"].tolist() == [True, False]


def test_a_table_says_why_each_withheld_cell_is_withheld():
    frame = pd.DataFrame({"bin": ["0-5", "5-10", "95-100"], "tapers": [20, 5, 15], "share": [0.5, 0.125, 0.375]})
    got = disclosure.table(frame, ["tapers"], ["share"], 11, total_shown=["tapers"])
    assert got["tapers"].tolist() == [20, None, None] and got["share"].tolist() == [0.5, None, None]
    assert got["withheld_why"].tolist() == [
        "", "tapers from 1 to 10; share withheld with it",
        "tapers withheld too, or the total would give a small count away; share withheld with it"]


# --- Every chart builder under the rule -------------------------------------------------------------------

def bar_counts(fig) -> list[float]:
    return [v for t in fig.data if t.type == "bar" and t.y is not None for v in t.y if v is not None]


def texts(fig) -> list[str]:
    """Every text a reader of the image or the HTML file can see: title, annotations, legend names,
    trace texts and hover data."""
    out = [fig.layout.title.text or ""] + [a.text or "" for a in fig.layout.annotations]
    for t in fig.data:
        out.append(t.name or "")
        for field in ("text", "customdata", "hovertext"):
            values = getattr(t, field, None)
            if values is not None:
                out += [str(v) for v in np.ravel(np.asarray(values, dtype=object))]
        if t.type == "bar" and t.x is not None:   # category labels, e.g. "rapid (34 tapers)"
            out += [x for x in t.x if isinstance(x, str)]
    return out


def exported(d, min_cell=11) -> dict[str, object]:
    i = inputs(d)
    units, lines, pooled, tapers = i["units"], i["lines"], i["pooled"], i["tapers"]
    return {
        "monthly_fills_chart": charts.monthly_fills_chart(i["fills"], "2025", min_cell=min_cell),
        "monthly_tapers_chart": charts.monthly_tapers_chart(i["monthly_tapers"], "2025", min_cell=min_cell),
        "taper_speed_chart": charts.taper_speed_chart(tapers, "in 2025", 10, 40, min_cell=min_cell),
        "taper_categories_chart": charts.taper_categories_chart(tapers, "2025", min_cell=min_cell),
        "funnel_chart": charts.funnel_chart(units, lines, "Funnel", "Share", pooled, True, "lower", min_cell=min_cell),
        "caterpillar_chart": charts.caterpillar_chart(units, "Ranked", "Share", pooled, True, min_cell=min_cell),
        "clinic_distribution_chart": charts.clinic_distribution_chart(units, "Clinics", "Share", pooled, True,
                                                                      min_cell=min_cell),
        "outcomes_chart": charts.outcomes_chart(i["bands"], "Outcomes", min_cell=min_cell),
    }


def drawn_units(fig) -> list[tuple[float, float]]:
    """(denominator, value) of every unit marker a funnel draws."""
    return [(x, y) for t in fig.data if t.type == "scatter" and t.mode == "markers"
            for x, y in zip(t.x, t.y)]


@pytest.mark.parametrize("d", SETS, ids=[d.name for d in SETS])
def test_no_exported_chart_draws_or_writes_a_small_count(d):
    for name, fig in exported(d).items():
        assert not any(1 <= v < 11 for v in bar_counts(fig)), name
        for text in texts(fig):
            assert not SMALL.search(text.replace("<br>", " ")), (name, text)
    units = inputs(d)["units"]
    withheld = disclosure.withhold_units(units["numerator"], units["denominator"], False, 11)["withheld"]
    keep = units[~withheld.to_numpy()]
    assert sorted(drawn_units(exported(d)["funnel_chart"])) == sorted(zip(keep["denominator"], keep["value"]))


@pytest.mark.parametrize("d", SETS, ids=[d.name for d in SETS])
def test_with_the_rule_off_exported_charts_are_the_screens(d):
    # min_cell 0 (internal use): the same bars as on screen.
    for name, fig in exported(d, min_cell=0).items():
        i = inputs(d)
        if name == "monthly_tapers_chart":
            assert bar_counts(fig) == list(i["monthly_tapers"]["tapers"])


def test_the_speed_histogram_under_the_rule_bands_small_bars_and_keeps_its_total():
    speeds = [0.0] * 12 + [52.0] * 4 + [100.0] * 3      # 19 tapers: 12 at 0, 4 at 50-55, 3 at 95-100
    tapers = pd.DataFrame({"clinician_id": "C1", "category": "gradual", "max_monthly_reduction_pct": speeds})
    fig = charts.taper_speed_chart(tapers, "in 2025", 10, 40, min_cell=11)
    # 7 of 19 in small bars at 5, 10 and 20%/month wide; in the guideline's bands (0-10, 10-40, 40-100:
    # 12, 0, 7) the lone 7 takes the 12 with it. The finest bars hiding the fewest: 5%/month.
    assert [v for v in bar_counts(fig) if v] == [12] and list(fig.data[0].x)[:2] == [2.5, 7.5]
    marks = next(t for t in fig.data if t.name == "fewer than 11 (not drawn)")
    assert list(marks.text) == ["<11", "<11"] and list(marks.x) == [52.5, 97.5]
    assert "19 tapers" in fig.layout.title.text
    # 12 gradual, 5 at 15%/month and 6 at 30% (a small bar at every width: 20%/month bars are 17 and 6):
    # the guideline's bands draw 12 and 11 whole.
    banded = pd.DataFrame({"clinician_id": "C1", "category": "gradual",
                           "max_monthly_reduction_pct": [0.0] * 12 + [15.0] * 5 + [30.0] * 6})
    fig = charts.taper_speed_chart(banded, "in 2025", 10, 40, min_cell=11)
    assert [(x, v) for x, v in zip(fig.data[0].x, fig.data[0].y)] == [(5, 12), (25, 11), (70, 0)]
    # 6 at 50-55 and 6 at 55-60%/month: withheld as 5%/month bars, drawn whole as one 10%/month bar.
    wider = tapers.iloc[:12].assign(max_monthly_reduction_pct=[0.0] * 6 + [3.0] * 6)
    wider = pd.concat([wider, wider.assign(max_monthly_reduction_pct=[51.0] * 6 + [57.0] * 6)])
    fig = charts.taper_speed_chart(wider, "in 2025", 10, 40, min_cell=11)
    assert [(x, v) for x, v in zip(fig.data[0].x, bar_counts(fig)) if v] == [(5, 12), (55, 12)]
    assert not any(t.name == "fewer than 11 (not drawn)" for t in fig.data)
    # On the screen (no rule) the bars stay 5%/month wide.
    assert list(charts.taper_speed_chart(wider, "in 2025", 10, 40).data[0].x)[:2] == [2.5, 7.5]
    # One small bar beside a shown total: the next smallest goes too, or 15 - 12 would give 3 back.
    lone = charts.taper_speed_chart(tapers.iloc[[*range(12), 16, 17, 18]], "in 2025", 10, 40, min_cell=11)
    assert not any(bar_counts(lone)) and "15 tapers" in lone.layout.title.text
    few = charts.taper_speed_chart(tapers.iloc[:4], "in 2025", 10, 40, min_cell=11)
    assert "fewer than 11 tapers" in few.layout.title.text


def test_an_exported_funnel_names_the_flagged_clinicians_it_does_not_draw():
    units = pd.DataFrame({"unit_id": list("ABCDE"), "unit_label": [f"Clinician {c}" for c in "ABCDE"],
                          "numerator": [5, 35, 20, 0, 0], "denominator": [40, 40, 50, 8, 30],
                          "flag": ["low", "high", "within", "too_few", "within"]})
    units = units.assign(value=units["numerator"] / units["denominator"], shrunk_value=0.3)
    lines = pd.DataFrame({"n": [10, 50], "lower_95": 0.1, "upper_95": 0.6, "lower_998": 0.05, "upper_998": 0.7})
    fig = charts.funnel_chart(units, lines, "Funnel", "Share", 0.35, True, "lower", min_cell=11)
    assert sorted(drawn_units(fig)) == [(30, 0.0), (50, 0.4)]
    note = " ".join(a.text for a in fig.layout.annotations).replace("<br>", " ")
    assert ("Not drawn individually (counts under 11): 3 clinicians; of them outside the 99.8% limits: "
            "Clinician A (low), Clinician B (high).") in note
    screen = charts.funnel_chart(units, lines, "Funnel", "Share", 0.35, True, "lower")
    assert len(drawn_units(screen)) == 5


def test_taper_categories_under_the_rule():
    rows = [("A", "gradual")] * 12 + [("A", "rapid")] * 3 + [("B", "gradual")] * 20 + [("B", "moderate")] * 11 \
        + [("C", "gradual")] * 4
    tapers = pd.DataFrame(rows, columns=["clinician_id", "category"]).assign(max_monthly_reduction_pct=1.0)
    fig = charts.taper_categories_chart(tapers, "2025", min_cell=11)
    by_name = {t.name: dict(zip(t.x, t.y)) for t in fig.data if t.type == "bar"}
    # C (4 tapers in all) is not drawn but counted under the plot; A's 3 rapid withhold its 12 gradual too.
    assert by_name["gradual"] == {"B": 20, "A": None} and by_name["moderate"]["B"] == 11
    assert "Not drawn (fewer than 11 tapers each): 1 clinician." in [a.text for a in fig.layout.annotations]
    assert not any(1 <= v < 11 for v in bar_counts(fig))


def test_outcomes_under_the_rule():
    bands = pd.DataFrame({"band": ["gradual", "rapid"], "tapers": [40, 5], "events_30": [3, 1], "events_90": [20, 2]})
    bands = bands.assign(within_30=bands["events_30"] / bands["tapers"], within_90=bands["events_90"] / bands["tapers"])
    fig = charts.outcomes_chart(bands, "Outcomes", min_cell=11)
    by_name = {t.name: list(t.y) for t in fig.data if t.type == "bar"}
    assert by_name == {"within 30 days": [None, None], "within 90 days": [0.5, None]}
    assert "(fewer than 11 tapers)" in fig.data[0].x[1]


# --- Files: every CSV behind a chart, the report pack -----------------------------------------------------

def test_data_behind_a_chart_keeps_rows_and_says_why():
    frame = pd.DataFrame({"month": ["2025-01", "2025-02"], "tapers": [14, 3]})
    got = pd.read_csv(pd.io.common.BytesIO(exports.suppressed_csv(frame, ["tapers"])), keep_default_na=False)
    assert got.to_dict("list") == {"month": ["2025-01", "2025-02"], "tapers": ["14", ""],
                                   "withheld_why": ["", "tapers from 1 to 10"]}


def test_the_report_pack_writes_no_small_count(sample_duckdb):
    import datetime as dt

    from analysis import db, report, summary

    engine = db.make_engine(sample_duckdb, read_only=True)
    with engine.connect() as conn:
        page = report.build(conn, summary.Settings(dt.date(2024, 1, 1), dt.date(2024, 12, 31)))
    engine.dispose()
    visible = re.sub(r"<[^>]+>", " ", page)
    assert not SMALL.search(visible.replace("&lt;", "<")), SMALL.search(visible).group(0)
    assert "shown as &lt;11" in page
    # The sample's 2024 tapers are spread over clinicians with fewer than 11 each: a sentence, not a chart.
    assert "Taper categories by clinician are not drawn: no clinician has 11 or more tapers" in page
    assert "Taper categories by clinician, " not in visible
