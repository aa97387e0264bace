"""Allowing for patient mix (analysis.casemix): hand-worked O, E and O/E, the limits for ratios, and a planted
data set loaded into a real database where one clinician's higher share is explained by the patients and
another's is not."""
from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import pandas as pd
import pytest

from analysis import casemix, feedback, ingest, measures, report, stats, summary
from tests.fixtures import OXY10, write_dataset

D = dt.date


def small_case() -> pd.DataFrame:
    """40 patients of two clinicians. Under 45: 30 patients, 3 in the numerator (10%); 65 and over: 10 patients,
    6 in the numerator (60%). X has 6 young (1 in the numerator) and 4 old (1); Y has 24 young (2) and 6 old (5)."""
    def patients(clinician, band, n, hits):
        return [{"patient_id": f"{clinician}{band[:2]}{i}", "clinician_id": clinician, "clinic_id": "C1",
                 "in_numerator": i < hits, "value": None, "age_band": band} for i in range(n)]
    return pd.DataFrame(patients("X", "under 45", 6, 1) + patients("X", "65 and over", 4, 1)
                        + patients("Y", "under 45", 24, 2) + patients("Y", "65 and over", 6, 5))


def test_expected_counts_and_standardised_ratios_worked_by_hand():
    rows = small_case()
    expected, model = casemix.fit(rows, ("age_band",))
    # One two-level term and an intercept: the model is saturated, so each patient's expected probability is
    # the share of their age band: 3/30 = 0.1 under 45, 6/10 = 0.6 at 65 and over.
    assert sorted(set(np.round(expected, 9))) == [0.1, 0.6]
    assert model.characteristics == ("age_band",) and model.patients == 40 and model.events == 9
    # The reference level is the first in sorted order ("65 and over"); the odds ratio of "under 45" against it:
    # (0.1/0.9) / (0.6/0.4) = 1/13.5.
    assert model.terms[["term", "level"]].values.tolist() == [["age_band", "under 45"]]
    assert model.terms["odds_ratio"].iloc[0] == pytest.approx(1 / 13.5, rel=1e-6)
    units = measures.unit_rows(rows.assign(expected=expected), measures.BY_ID["new_start_over_7d"]).set_index("unit_id")
    # E_X = 6 x 0.1 + 4 x 0.6 = 3.0, O_X = 2: O/E = 0.667; E_Y = 24 x 0.1 + 6 x 0.6 = 6.0, O_Y = 7: 1.167.
    assert units.loc["X", "expected"] == pytest.approx(3.0, rel=1e-9)
    assert units.loc["Y", "expected"] == pytest.approx(6.0, rel=1e-9)
    assert units["numerator"].to_dict() == {"X": 2, "Y": 7}
    # The model's chance that all of X's patients were in the numerator: 0.1^6 x 0.6^4; none: 0.9^6 x 0.4^4.
    assert units.loc["X", "chance_all"] == pytest.approx(0.1 ** 6 * 0.6 ** 4, rel=1e-6)
    assert units.loc["X", "chance_none"] == pytest.approx(0.9 ** 6 * 0.4 ** 4, rel=1e-6)
    funnel = stats.funnel_ratios(units.reset_index())
    got = funnel.units.set_index("unit_id")
    assert got["value"].to_dict() == pytest.approx({"X": 2 / 3, "Y": 7 / 6}, rel=1e-9)
    assert funnel.pooled == 1.0 and funnel.basis == "adjusted"
    # Observed share 9/40 = 22.5%: the share each would have with the average patient mix is O/E x 22.5%.
    assert got["adjusted_share"].to_dict() == pytest.approx({"X": 0.15, "Y": 0.2625}, rel=1e-9)
    # Fewer than 11 patients (X has 10): never judged, as in the observed funnel.
    assert got.loc["X", "flag"] == "too_few" and got.loc["Y", "flag"] == "within"


def poisson_cdf(r: int, mean: float) -> float:
    return sum(math.exp(-mean) * mean ** k / math.factorial(k) for k in range(r + 1))


def test_poisson_limits_of_a_ratio_follow_spiegelhalter_a12():
    # E = 3: the 99.9% point. P(O <= 9) = 0.998898, P(O <= 10) = 0.999708, so r = 10 and
    # alpha = (0.999708 - 0.999) / P(O = 10) = 0.000708 / 0.000810; the limit is (10 - alpha) / 3.
    at_10, at_9 = poisson_cdf(10, 3.0), poisson_cdf(9, 3.0)
    assert at_9 < 0.999 <= at_10
    alpha = (at_10 - 0.999) / (at_10 - at_9)
    assert stats.poisson_limit(3.0, 0.999) == pytest.approx((10 - alpha) / 3, rel=1e-9)
    # The lower 0.1% point at E = 3: P(O <= 0) = e^-3 = 0.0498 >= 0.001, so r = 0 and alpha = (0.0498 - 0.001) /
    # 0.0498: the limit is (0 - alpha) / 3 < 0, clipped to 0.
    assert stats.poisson_limit(3.0, 0.001) == 0.0
    # With overdispersion the limits are (1 -/+ z sqrt(1/4E + tau^2))^2 on the square-root scale.
    z = 3.090232306167813
    lines = stats.funnel_lines(stats.Funnel(pd.DataFrame(), 1.0, 2.0, 0.01, "additive random effects", basis="adjusted"),
                               40.0)
    e = lines["n"].to_numpy()
    assert lines["upper_998"].to_numpy() == pytest.approx((1 + z * np.sqrt(1 / (4 * e) + 0.01)) ** 2, rel=1e-9)


def test_c_statistic_and_calibration_by_tenth():
    # Pairs of (event, non-event): (0.9, 0.1) right, (0.9, 0.6) right, (0.4, 0.1) right, (0.4, 0.6) wrong: 3/4.
    assert casemix.c_statistic(np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.4, 0.6])) == 0.75
    assert casemix.c_statistic(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    y = np.array([0] * 18 + [1] * 2, dtype=float)
    p = np.linspace(0.01, 0.2, 20)
    cal = casemix.calibration(y, p)
    assert cal["patients"].tolist() == [2] * 10 and cal["group"].tolist() == list(range(1, 11))
    assert cal["observed"].tolist() == [0.0] * 9 + [1.0]
    assert cal["expected"].iloc[0] == pytest.approx((0.01 + 0.02) / 2)
    # Patients who share a prediction stay in one group, whatever their order: 3 at 0.2 (1 event), 2 at 0.5 (2).
    tied = casemix.calibration(np.array([0, 1, 0, 1, 1]), np.array([0.2, 0.2, 0.2, 0.5, 0.5]))
    np.testing.assert_allclose(tied.to_numpy(float), [[1, 3, 1 / 3, 0.2], [2, 2, 1.0, 0.5]], rtol=1e-12)


def test_nothing_to_fit_gives_no_adjusted_comparison():
    rows = small_case().assign(in_numerator=False)
    assert casemix.fit(rows, ("age_band",)) is None
    assert casemix.fit(small_case().head(19), ("age_band",)) is None   # fewer than 20 patients
    mix = pd.DataFrame(columns=["patient_id", "birth_date", "sex", "opioid_use_disorder", "long_term_therapy"])
    assert measures.compare_adjusted(rows, mix, measures.BY_ID["new_start_over_7d"], D(2025, 1, 1)) is None
    # The average dose is never adjusted (no verdict; its declaration says why).
    assert not measures.adjustable(measures.BY_ID["mean_daily_mme"])
    assert measures.BY_ID["mean_daily_mme"].adjust_why


def test_characteristics_in_words():
    rows = pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "baseline_mme": [120.0, 60.0, None, 90.0]})
    mix = pd.DataFrame({"patient_id": ["a", "b", "c"], "birth_date": [D(1980, 7, 2), D(1960, 7, 1), None],
                        "sex": ["F", "m", "X"], "opioid_use_disorder": [True, False, True],
                        "long_term_therapy": [False, True, False]})
    out = casemix.characteristics(rows, mix, D(2025, 7, 1)).set_index("patient_id")
    # Age on 1 Jul 2025: a is 44 (birthday the next day), b is 65 that day; c has no birth date; d is not in mix.
    assert out["age_band"].to_dict() == {"a": "under 45", "b": "65 and over", "c": "not recorded", "d": "not recorded"}
    assert out["sex"].to_dict() == {"a": "female", "b": "male", "c": "other or not recorded",
                                    "d": "other or not recorded"}
    assert out["opioid_use_disorder"].to_dict() == {"a": "yes", "b": "no", "c": "yes", "d": "not recorded"}
    assert out["baseline_dose_band"].to_dict() == {"a": "90 MME or more", "b": "below 90 MME", "c": "not recorded",
                                                   "d": "90 MME or more"}
    assert casemix.label_list(("age_band", "sex", "opioid_use_disorder")) == "age band, sex and opioid use disorder"


# --- A planted data set, loaded and summarised ---------------------------------------------------------------
# New starts on 1 Jun 2025 (no opioid in the 90 days before), the first supply 10 days (in the numerator of
# "new starts given more than 7 days") or 5. Four kinds of patient, with these shares of long first supplies:
#   under 45 without opioid use disorder (born 1990)   ordinary clinicians: 2 of 20
#   65 and over without (born 1945)                    2 of 6
#   under 45 with opioid use disorder                  2 of 6
#   65 and over with opioid use disorder               5 of 8
# 20 ordinary clinicians have that mix (11 of 40, 27.5%). OLD has 40 patients, all 65 and over with opioid use
# disorder, 26 long (65%): high as observed, but as expected for such patients. HIGH has the ordinary mix
# but gives 16 of its 20 young patients without the disorder a long supply (25 of 40, 62.5%): high either way.
GROUPS = {"Y": ("1990-03-01", "0"), "O": ("1945-03-01", "0"), "YU": ("1990-03-01", "1"), "OU": ("1945-03-01", "1")}
ORDINARY = {"Y": (20, 2), "O": (6, 2), "YU": (6, 2), "OU": (8, 5)}


def planted(folder):
    clinicians = [f"D{i:02d}" for i in range(1, 21)] + ["OLD", "HIGH"]
    mixes = {c: ORDINARY for c in clinicians}
    mixes["OLD"] = {"OU": (40, 26)}
    mixes["HIGH"] = {**ORDINARY, "Y": (20, 16)}
    patients, rx = [["PX", "1970-01-01", "F", "0", "0", "0", "0"]], \
        [["RX0", "PX", "D01", "2025-01-01", OXY10, "", "", "", "", "20", "5", ""]]   # the data start 1 Jan 2025
    for c in clinicians:
        for group, (n, long) in mixes[c].items():
            born, oud = GROUPS[group]
            for i in range(n):
                p = f"{c}-{group}-{i}"
                patients.append([p, born, "FM"[i % 2], "0", "0", "0", oud])
                days = 10 if i < long else 5
                rx.append([f"R{p}", p, c, "2025-06-01", OXY10, "", "", "", "", str(4 * days), str(days), ""])
    return write_dataset(folder, clinicians=[[c, "", "Family medicine", "C1"] for c in clinicians],
                         clinics=[["C1", "North"]], patients=patients, prescriptions=rx, events=[])


def test_a_higher_share_explained_by_older_patients_with_opioid_use_disorder_is_not_flagged_once_adjusted(
        engine, tmp_path):
    ingest.load_directory(engine, planted(tmp_path / "data"), tmp_path / "rejects.csv", as_of=D(2026, 1, 1),
                          extract_date=D(2025, 12, 31))
    s = summary.Settings(D(2025, 4, 1), D(2025, 12, 31), selected=("new_start_over_7d",))
    with engine.connect() as conn:
        t = summary.measure_table(conn, s).set_index("clinician_id")
    assert t.loc["OLD", ["numerator", "denominator"]].tolist() == [26, 40]
    assert t.loc["HIGH", ["numerator", "denominator"]].tolist() == [25, 40]
    assert t.loc["D01", ["numerator", "denominator"]].tolist() == [11, 40]
    # As observed, both stand out (pooled 271 / 880 = 30.8%; 65% and 62.5% of 40 are above its 99.8% limit).
    assert t.loc["OLD", "flag"] == "high" and t.loc["HIGH", "flag"] == "high"
    assert (t.drop(["OLD", "HIGH"])["flag"] == "within").all()
    # Allowing for age band, sex and opioid use disorder: OLD is as expected for its patients; HIGH is not.
    assert t.loc["OLD", "adjusted_flag"] == "within"
    assert t.loc["HIGH", "adjusted_flag"] == "high"
    assert (t.drop(["OLD", "HIGH"])["adjusted_flag"] == "within").all()
    assert t["adjusted_for"].iloc[0] == "age_band sex opioid_use_disorder"
    # The expected counts add up to the observed ones (maximum likelihood with an intercept), so O/E = 1 overall.
    assert t["expected"].sum() == pytest.approx(271, rel=1e-6)
    assert t.loc["OLD", "ratio"] == pytest.approx(26 / t.loc["OLD", "expected"], rel=1e-9)
    assert 0.9 < t.loc["OLD", "ratio"] < 1.2 and t.loc["HIGH", "ratio"] > 2
    # The report pack and the letters say both, and which is which.
    with engine.connect() as conn:
        page = report.build(conn, s)
        peers = feedback.compare_all(conn, s)
    section = page.split("<h3>New starts given more than 7 days</h3>")[1].split("<h3>")[0]
    assert "2 of 22 clinicians with at least 11 new starts above the upper limit" in section
    assert ("Allowing for patient mix (age band, sex and opioid use disorder; observed against expected counts): "
            "1 of 22 clinicians judged is above the range chance explains") in section
    letters = {c: feedback.page(feedback.letter(peers, c, 11), s, "all clinics") for c in ("OLD", "HIGH")}
    row = {c: text.split("New starts given more than 7 days")[1].split("</tr>")[0] for c, text in letters.items()}
    # As observed, OLD is above the range; allowing for patient mix, its count is as expected (within).
    assert "<td>above the range chance alone would explain</td>" in row["OLD"]
    assert re.search(r"<b>\d\.\d\d</b> × expected<br><span class='small muted'>within</span>", row["OLD"])
    assert re.search(r"<b>[2-9]\.\d\d</b> × expected<br><span class='small muted'>above</span>", row["HIGH"])
