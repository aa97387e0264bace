"""Small words a leader trips over (issue: readable screens, section 4): counts with their noun in the right
number, and a change that rounds to nothing said as "no change", not "↑ +0"."""
from analysis.display import counted
from dashboard.views.overview import NO_CHANGE, _delta


def test_counts_take_their_noun_in_the_right_number():
    assert counted(1, "taper") == "1 taper"
    assert counted(0, "taper") == "0 tapers"
    assert counted(1200, "patient") == "1,200 patients"
    assert counted(1, "taper or discontinuation") == "1 taper or discontinuation"
    assert counted(3, "taper or discontinuation") == "3 tapers or discontinuations"
    assert counted(2, "child", "children") == "2 children"


def test_a_change_that_rounds_to_nothing_is_no_change():
    assert _delta(12, 12, percent=False) == NO_CHANGE
    assert _delta(12.2, 12.0, percent=False) == NO_CHANGE        # +0 after rounding to a whole count
    assert _delta(0.5004, 0.5, percent=True) == NO_CHANGE        # +0.0 points
    assert _delta(13, 12, percent=False) == "+1"
    assert _delta(0.40, 0.45, percent=True) == "-5.0 points"
    assert _delta(12, None, percent=False) is None


def test_the_funnel_headline_names_who_stands_out_and_which_way_is_better():
    import pandas as pd

    from analysis import measures, report

    u = pd.DataFrame({"flag": ["high", "high", "within", "low", "too_few"],
                      "unit_label": ["Clinician B", "Clinician A", "Clinician C", "Clinician D", "Clinician E"]})
    high_dose = measures.BY_ID["high_dose_90"]                       # lower is better
    assert report.standout_sentence(u, high_dose) == (
        "2 of 4 clinicians judged are above the range chance explains: Clinician A, Clinician B; "
        "1 is below it: Clinician D (lower is better).")
    assert report.standout_sentence(u[u["flag"] != "low"], high_dose) == (
        "2 of 3 clinicians judged are above the range chance explains: Clinician A, Clinician B (lower is better).")
    assert report.standout_sentence(u[u["flag"].isin(["within", "low"])], measures.BY_ID["naloxone_at_50"]) == (
        "1 of 2 clinicians judged is below the range chance explains: Clinician D (higher is better).")
    assert report.standout_sentence(u[u["flag"] == "within"], high_dose) == (
        "The one clinician judged is inside the range chance explains.")
    assert report.standout_sentence(u[u["flag"] == "too_few"], high_dose) == (
        "No clinician has the 11 patients needed to be judged.")
    assert report.standout_sentence(u, measures.BY_ID["mean_daily_mme"]).endswith(
        "Clinician A, Clinician B, Clinician D (neither higher nor lower is better in itself).")
    # The page makes each name a link: names() receives the sorted labels.
    linked = report.standout_sentence(u[u["flag"] != "low"], high_dose, lambda xs: " & ".join(f"<{x}>" for x in xs))
    assert "<Clinician A> & <Clinician B>" in linked


def test_are_we_converging_is_one_axis_with_quarter_labels_and_a_sentence():
    import pandas as pd

    from analysis import charts, report

    trend = pd.DataFrame({"quarter_start": pd.to_datetime(["2025-01-01", "2025-04-01", "2025-07-01"]),
                          "median_odds_ratio": [1.6016, float("nan"), 1.4837], "phi": [2.0, 1.0, 3.0]})
    fig = charts.consistency_trend_chart(trend, "Converging?", "median_odds_ratio")
    assert len(fig.data) == 1 and "yaxis2" not in fig.layout.to_plotly_json()     # one axis: the ranked index
    assert list(fig.layout.xaxis.ticktext) == ["Q1 2025", "Q2 2025", "Q3 2025"]
    assert [pd.Timestamp(t) for t in fig.layout.xaxis.tickvals] == list(trend["quarter_start"])
    assert fig.layout.yaxis.tickformat == ".2f" and fig.layout.yaxis.range[0] == 1.0
    # 1.4837 / 1.6016 - 1 = -7.4%: narrowed (a change within 5% is "about the same").
    assert report.trend_sentence(trend, "median_odds_ratio", "median odds ratio") == (
        "Variation between clinicians (median odds ratio) has narrowed since Q1 2025: 1.60 then, 1.48 in Q3 2025; "
        "1 quarter with too few to estimate left out.")
    flat = trend.assign(median_odds_ratio=[1.50, 1.52, 1.55])
    assert "stayed about the same since Q1 2025" in report.trend_sentence(flat, "median_odds_ratio", "median odds ratio")
    assert report.trend_sentence(trend.iloc[:1], "median_odds_ratio", "median odds ratio") == ""
