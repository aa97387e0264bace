"""Funnel limits, overdispersion, shrinkage and consistency indices (analysis.stats), against hand-worked
numbers and scipy's binomial and beta functions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis import stats


def units(numerators, denominators, ids=None):
    ids = ids or [f"D{i:02d}" for i in range(len(numerators))]
    return pd.DataFrame({"unit_id": ids, "numerator": numerators, "denominator": denominators})


def test_exact_binomial_limit_interpolates_between_counts():
    # n = 100, target 0.2, upper 97.5%: P(R <= 28) = 0.97997, P(R <= 27) = 0.96585, so r = 28 and
    # alpha = (0.97997 - 0.975) / (0.97997 - 0.96585) = 0.3520; limit = (28 - 0.3520) / 100 = 0.27648.
    assert stats.binomial_limit(0.2, 100, 0.975) == pytest.approx(0.27648, abs=5e-5)
    r = sps.binom.ppf(0.975, 100, 0.2)
    hi, lo = sps.binom.cdf(r, 100, 0.2), sps.binom.cdf(r - 1, 100, 0.2)
    assert stats.binomial_limit(0.2, 100, 0.975) == pytest.approx((r - (hi - 0.975) / (hi - lo)) / 100)


@pytest.mark.parametrize("n", [5, 20, 57, 300, 2000])
@pytest.mark.parametrize("prob", [0.001, 0.025, 0.975, 0.999])
def test_limits_lie_between_the_neighbouring_counts(n, prob):
    # The interpolated limit sits between (r - 1) / n and r / n, r being scipy's binomial quantile.
    r = sps.binom.ppf(prob, n, 0.3)
    limit = stats.binomial_limit(0.3, n, prob)
    assert (r - 1) / n - 1e-12 <= limit <= r / n + 1e-12


def test_funnels_narrow_as_denominators_grow():
    f = stats.funnel_proportions(units([2, 20, 200], [10, 100, 1000]))
    width = (f.units["upper_998"] - f.units["lower_998"]).tolist()
    assert width[0] > width[1] > width[2]
    assert f.pooled == pytest.approx(222 / 1110)


# 30 ordinary clinicians around 20% (counts chosen by hand, mean 20), one clear outlier and one tiny unit.
ORDINARY = [14, 16, 17, 18, 18, 19, 19, 19, 20, 20, 20, 20, 20, 20, 21, 21, 21, 21, 22, 22,
            22, 23, 23, 24, 25, 26, 17, 18, 22, 23]


def test_a_clear_outlier_is_flagged_and_a_four_patient_clinician_is_not():
    u = units(ORDINARY + [50, 4], [100] * 31 + [4], [f"D{i:02d}" for i in range(30)] + ["OUTLIER", "TINY"])
    f = stats.funnel_proportions(u)
    flags = f.units.set_index("unit_id")["flag"]
    assert flags["OUTLIER"] == "high"
    # 4 of 4: extreme rate, but four patients prove nothing. It used to be listed as "within", which claimed
    # a judgement that was never made; it is its own state now (issue 12).
    assert flags["TINY"] == "too_few"
    assert (flags.drop(["OUTLIER", "TINY"]) == "within").all()
    # Pooled rate: (611 ordinary + 50 + 4) / 3104.
    assert sum(ORDINARY) == 611
    assert f.pooled == pytest.approx(665 / 3104)


def test_overdispersion_widens_limits_with_dersimonian_laird():
    # Rates spread far more than binomial noise allows: 10%, 20%, 30%, 40% at n = 200 each, 5 times.
    num = [20, 40, 60, 80] * 5
    f = stats.funnel_proportions(units(num, [200] * 20))
    assert f.phi > 1 and f.tau2 > 0
    assert f.limits.startswith("additive random effects")
    # Hand check of phi and tau^2: pooled 0.25, se = sqrt(0.25 x 0.75 / 200) = 0.030619;
    # z = (-0.15, -0.05, 0.05, 0.15) / se = (-4.899, -1.633, 1.633, 4.899); the 10th/90th centiles of the
    # 20 z-scores are -4.899 and 4.899, so nothing is clipped: phi = mean(z^2) = (24 + 2.667) / 2 = 13.333.
    assert f.phi == pytest.approx(40 / 3, rel=1e-6)
    # tau^2 = (k phi - (k - 1)) / (sum w - sum w^2 / sum w), w = 1 / se^2 = 1066.67 for all 20:
    # (266.67 - 19) / (21333.3 - 1066.67) = 0.012220.
    w = 1 / (0.25 * 0.75 / 200)
    assert f.tau2 == pytest.approx((20 * 40 / 3 - 19) / (20 * w - w), rel=1e-6)
    se = np.sqrt(0.25 * 0.75 / 200 + f.tau2)
    assert f.units["upper_998"].iloc[0] == pytest.approx(0.25 + sps.norm.ppf(0.999) * se)
    assert (f.units["flag"] == "within").all()   # wide variation: no unit stands out from the others


def test_shrinkage_matches_the_beta_posterior_and_pulls_small_units_most():
    u = units(ORDINARY + [4], [100] * 30 + [4])
    out = stats.shrink_proportions(u)
    a, b = stats._beta_binomial_prior(u["numerator"].to_numpy(float), u["denominator"].to_numpy(float))
    tiny = out.iloc[-1]
    assert tiny["shrunk_value"] == pytest.approx((a + 4) / (a + b + 4))
    assert tiny["shrunk_lower"] == pytest.approx(sps.beta.ppf(0.025, a + 4, b))
    assert tiny["shrunk_upper"] == pytest.approx(sps.beta.ppf(0.975, a + 4, b))
    assert tiny["shrunk_value"] < 0.5          # 4 of 4 is pulled a long way towards ~20%
    # These 30 vary no more than chance allows, so even 14 of 100 is pulled almost to the pooled rate
    # (615 / 3004): the data give no reason to believe that unit differs.
    assert 0.14 < out.iloc[0]["shrunk_value"] < 615 / 3004


def test_funnel_for_means_uses_the_pooled_within_unit_sd():
    # Three units of 25 patients, means 40, 50, 60, each SD 20: pooled mean 50, pooled SD 20,
    # se = 20 / 5 = 4; 99.8% limits 50 +/- 3.0902 x 4 = 37.64 .. 62.36 (if not overdispersed).
    u = pd.DataFrame({"unit_id": ["A", "B", "C"], "denominator": [25, 25, 25], "mean": [40.0, 50.0, 60.0],
                      "sd": [20.0, 20.0, 20.0]})
    f = stats.funnel_means(u, overdispersion=False)
    assert f.pooled == pytest.approx(50)
    assert f.units["upper_998"].iloc[0] == pytest.approx(50 + sps.norm.ppf(0.999) * 4)
    assert f.units["z"].tolist() == pytest.approx([-2.5, 0, 2.5])


def test_median_odds_ratio_is_one_without_variation_and_grows_with_it():
    same = units([20] * 10, [100] * 10)
    assert stats.median_odds_ratio(same) == pytest.approx(1.0)
    spread = units([5, 10, 20, 30, 40] * 2, [100] * 10)
    assert stats.median_odds_ratio(spread) > 2


def test_consistency_indices():
    c = stats.consistency(units([20, 40, 60, 80] * 5, [200] * 20))
    assert c["units"] == 20 and c["pooled_value"] == pytest.approx(0.25)
    assert c["phi"] == pytest.approx(40 / 3, rel=1e-6) and c["tau2"] > 0
    # Log-odds 10% .. 40% spread about 0.67 (sd): MOR = exp(sqrt(2 sigma^2) x 0.6745) is about 1.7-1.9.
    assert c["p90_p10_ratio"] > 2.5 and 1.5 < c["median_odds_ratio"] < 2.1


# --- The 0%/100% boundary (issue 12): a unit at n/n or 0/n is flagged only when chance cannot explain it ----

def _flags(numerators, denominators, **kw):
    return stats.funnel_proportions(units(numerators, denominators), **kw)


def test_twelve_clinicians_all_at_twelve_of_twelve_are_not_flagged():
    # Pooled 100%: P(R = 12) = 1. The interpolated upper 99.8% limit is r = 12, alpha = (1 - 0.999) / 1,
    # (12 - 0.001) / 12 = 0.999917: below 100%, which used to flag all twelve "high".
    f = _flags([12] * 12, [12] * 12)
    assert f.units["upper_998"].iloc[0] == pytest.approx(1 - 0.001 / 12)
    assert (f.units["flag"] == "within").all()
    # Pooled 0% (none of 12, twelve times): nothing below the lower limit either.
    assert (_flags([0] * 12, [12] * 12).units["flag"] == "within").all()


# Ten units: the boundary unit (n = 12), a 48-case unit and eight of 100, chosen so the pooled rate is exact
# and phi < 1 (exact limits): (12 + 42 + 8 x 90) / 860 = 0.9; (12 + 6 + 8 x 30) / 860 = 0.3;
# (0 + 6 + 8 x 10) / 860 = 0.1; (0 + 42 + 8 x 70) / 860 = 0.7.
@pytest.mark.parametrize("first, second, rest, pooled, chance, flag", [
    (12, 42, 90, 0.9, 0.9 ** 12, "within"),   # P(R = 12) = 0.2824: all twelve is ordinary at 90%
    (12, 6, 30, 0.3, 0.3 ** 12, "high"),      # P(R = 12) = 5.3e-7 < 0.001: chance cannot explain it
    (0, 6, 10, 0.1, 0.9 ** 12, "within"),     # P(R = 0) = 0.2824
    (0, 42, 70, 0.7, 0.3 ** 12, "low"),       # P(R = 0) = 5.3e-7
])
def test_boundary_units_with_exact_limits(first, second, rest, pooled, chance, flag):
    f = _flags([first, second] + [rest] * 8, [12, 48] + [100] * 8)
    assert f.limits == "exact binomial" and f.pooled == pytest.approx(pooled)
    assert stats.extreme_chance(pooled, 12, upper=first == 12) == pytest.approx(chance)
    assert f.units["flag"].iloc[0] == flag
    if pooled == 0.9:
        # The upper limit at n = 12: r = 12, alpha = 0.001 / 0.2824 = 0.00354, (12 - 0.00354) / 12 = 0.999705:
        # the old rule put 12/12 "high" here.
        assert f.units["upper_998"].iloc[0] == pytest.approx((12 - 0.001 / 0.9 ** 12) / 12)


def test_boundary_units_with_overdispersed_limits():
    # Ten units at 20% and ten at 40% of 100 (phi 4.76 > 1: random-effects limits), the boundary unit of 12
    # and a 48-case unit keeping the pooled rate at (200 + 400 + 12 + 6) / 2060 = 0.3.
    f = _flags([20] * 10 + [40] * 10 + [12, 6], [100] * 20 + [12, 48])
    assert f.limits.startswith("additive random effects") and f.pooled == pytest.approx(0.3)
    # Chance of 12/12 allowing for the spread between units: Beta(0.3 s, 0.7 s), s = 0.21 / tau2 - 1;
    # P(R = 12) = prod_{k<12} (a + k) / (a + b + k), far below 0.001; the normal upper limit (0.80) is below 1.
    s = 0.21 / f.tau2 - 1
    a, b = 0.3 * s, 0.7 * s
    by_hand = np.prod([(a + k) / (a + b + k) for k in range(12)])
    assert stats.extreme_chance(0.3, 12, f.tau2) == pytest.approx(by_hand)
    assert by_hand < 0.001 and f.units["upper_998"].iloc[-2] < 1
    assert f.units["flag"].iloc[-2] == "high"
    # The mirror image (rates 1 - p): 0/12 at pooled 70% is low.
    g = _flags([80] * 10 + [60] * 10 + [0, 42], [100] * 20 + [12, 48])
    assert g.limits.startswith("additive") and g.units["flag"].iloc[-2] == "low"
    # At pooled 90% with a wide spread, all twelve of twelve sit on the clipped limit of 100%: within.
    h = _flags([85] * 10 + [95] * 10 + [12, 42], [100] * 20 + [12, 48])
    assert h.limits.startswith("additive") and h.units["upper_998"].iloc[-2] == 1.0
    assert h.units["flag"].iloc[-2] == "within"


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("overdispersion", [False, True])
def test_a_boundary_unit_is_flagged_exactly_when_outside_and_unexplained_by_chance(seed, overdispersion):
    # Random small data sets (the class, not just the examples): every unit at 0/n or n/n is flagged iff it is
    # outside its limit and its chance under the limits' model is below 0.1%.
    rng = np.random.default_rng(seed)
    n = rng.integers(11, 40, 25)
    y = np.where(rng.random(25) < 0.3, n * rng.integers(0, 2, 25), rng.binomial(n, rng.uniform(0.05, 0.95)))
    f = _flags(y.tolist(), n.tolist(), overdispersion=overdispersion)
    t2 = f.tau2 if f.limits.startswith("additive") else 0.0
    u = f.units
    top, bottom = u["numerator"] == u["denominator"], u["numerator"] == 0
    assert (u.loc[top, "flag"] == "high").tolist() == ((u.loc[top, "value"] > u.loc[top, "upper_998"]) & (
        stats.extreme_chance(f.pooled, u.loc[top, "denominator"], t2) < 0.001)).tolist()
    assert (u.loc[bottom, "flag"] == "low").tolist() == ((u.loc[bottom, "value"] < u.loc[bottom, "lower_998"]) & (
        stats.extreme_chance(f.pooled, u.loc[bottom, "denominator"], t2, upper=False) < 0.001)).tolist()


def test_too_few_to_judge_is_its_own_flag_for_proportions_and_means():
    f = _flags([3, 10, 20], [5, 10, 100])
    assert f.units["flag"].tolist()[:2] == ["too_few", "too_few"]      # 5 and 10 cases, under 11
    m = stats.funnel_means(pd.DataFrame({"unit_id": ["A", "B"], "denominator": [4, 30], "mean": [500.0, 50.0],
                                         "sd": [10.0, 10.0]}))
    assert m.units["flag"].tolist()[0] == "too_few"


# --- Shrinkage when the data cannot identify the prior ------------------------------------------------------

def test_prior_with_two_cases_per_unit_is_no_more_u_shaped_than_uniform():
    # 20 units at 0/2 and 20 at 2/2: the unbounded MLE ran to a, b -> e^-20 (shrunken 0% and 100%, intervals
    # [2.2e-308, 2.2e-308]). Bounded, the likelihood rises towards a, b -> 0, so the fit sits at a = b = 1.
    u = units([0] * 20 + [2] * 20, [2] * 40)
    a, b = stats._beta_binomial_prior(u["numerator"].to_numpy(float), u["denominator"].to_numpy(float))
    assert (a, b) == pytest.approx((1.0, 1.0))
    out = stats.shrink_proportions(u).iloc[0]
    # 0/2 -> Beta(1, 3): mean 1/4; 2.5% = 1 - 0.975^(1/3) = 0.00840, 97.5% = 1 - 0.025^(1/3) = 0.7076.
    assert out["shrunk_value"] == pytest.approx(0.25)
    assert out["shrunk_lower"] == pytest.approx(1 - 0.975 ** (1 / 3)) and out["shrunk_upper"] == pytest.approx(
        1 - 0.025 ** (1 / 3))


def test_prior_without_variation_carries_no_more_than_all_the_cases():
    # 40 clinicians with 1 of 5 each (the 4-7 patients): no spread, so the MLE ran to a + b = e^20 and
    # read "21.1% (21.0% to 21.2%)". Capped at the 200 cases: a + b = 200, a near 40 (MLE 40.3), so 1/5 gives
    # Beta(41.3, 163.7): sd sqrt(0.2 x 0.8 / 206) = 0.028, an interval about 0.11 wide, not 0.002.
    u = units([1] * 40, [5] * 40)
    a, b = stats._beta_binomial_prior(u["numerator"].to_numpy(float), u["denominator"].to_numpy(float))
    assert a + b == pytest.approx(200) and a == pytest.approx(40, abs=0.5)
    row = stats.shrink_proportions(u).iloc[0]
    assert 0.10 < row["shrunk_upper"] - row["shrunk_lower"] < 0.12
    # One case each: the likelihood is flat in a + b, so the prior stays at all 40 cases: Beta(20, 20).
    one = units([0, 1] * 20, [1] * 40)
    assert stats._beta_binomial_prior(one["numerator"].to_numpy(float), one["denominator"].to_numpy(float)) == \
        pytest.approx((20, 20))


@pytest.mark.parametrize("per_unit", [1, 2, 3, 6])
@pytest.mark.parametrize("k", [2, 3, 12, 40])
@pytest.mark.parametrize("pattern", ["none", "all", "half", "mixed"])
def test_shrunken_intervals_contain_their_estimate_on_small_cases(per_unit, k, pattern):
    n = np.full(k, per_unit)
    y = {"none": np.zeros(k), "all": n, "half": n * (np.arange(k) % 2),
         "mixed": np.arange(k) % (per_unit + 1)}[pattern]
    out = stats.shrink_proportions(units(y.astype(int).tolist(), n.tolist()))
    assert (out["shrunk_lower"] < out["shrunk_value"]).all() and (out["shrunk_value"] < out["shrunk_upper"]).all()
    assert ((out["shrunk_value"] > 0) & (out["shrunk_value"] < 1)).all()       # never exactly 0% or 100%
    assert (out["shrunk_upper"] - out["shrunk_lower"] > 0.01).all()            # never narrower than the data


def test_shrunken_means_keep_the_pooled_means_uncertainty():
    # Three units of 25, means 50 each, SD 20: tau^2 = 0 so every unit is pulled to 50 (w = 0). Posterior
    # variance (Morris 1983) = Var(pooled) = sum 25^2 x 16 / 75^2 = 5.333 (= 20^2 / 75): 50 +/- 1.96 x 2.309.
    f = stats.funnel_means(pd.DataFrame({"unit_id": list("ABC"), "denominator": [25] * 3, "mean": [50.0] * 3,
                                         "sd": [20.0] * 3}))
    out = stats.shrink_means(f)
    assert f.tau2 == 0 and out["shrunk_value"].tolist() == pytest.approx([50] * 3)
    half = sps.norm.ppf(0.975) * 20 / np.sqrt(75)
    assert out["shrunk_lower"].tolist() == pytest.approx([50 - half] * 3)
    assert out["shrunk_upper"].tolist() == pytest.approx([50 + half] * 3)


def test_limits_for_means_never_go_below_zero():
    # Pooled 20 MME a day, SD 60: at n = 2 the 99.8% limit would be 20 - 3.09 x 60 / sqrt(2) = -111; at
    # n = 400 it is 20 - 3.09 x 60 / 20 = 10.73, left as it is.
    u = pd.DataFrame({"unit_id": list("ABC"), "denominator": [2, 2, 400], "mean": [20.0, 20.0, 20.0],
                      "sd": [60.0, 60.0, 60.0]})
    f = stats.funnel_means(u, overdispersion=False)
    assert f.units["lower_998"].tolist()[:2] == [0.0, 0.0]
    assert f.units["lower_998"].iloc[2] == pytest.approx(20 - sps.norm.ppf(0.999) * 3)
    lines = stats.funnel_lines(f, 400)
    assert (lines[["lower_95", "lower_998"]] >= 0).all().all() and lines["lower_998"].iloc[0] == 0
    assert (stats.shrink_means(f)["shrunk_lower"] >= 0).all()


# --- Variation indices only where they can be estimated -----------------------------------------------------

def test_mor_and_p90_p10_need_five_units_with_eleven_cases():
    spread = [5, 10, 20, 30, 40]
    four = stats.consistency(units(spread[:4] + [1] * 20, [100] * 4 + [2] * 20))
    assert four["judged_units"] == 4 and not four["estimable"]
    assert np.isnan(four["median_odds_ratio"]) and np.isnan(four["p90_p10_ratio"])
    five = stats.consistency(units(spread + [1] * 20, [100] * 5 + [2] * 20))
    assert five["estimable"] and five["median_odds_ratio"] > 2 and 2 < five["p90_p10_ratio"] < 20
    # The real-extract shape, 40 clinicians with 1 or 2 cases: no MOR of 1.00, no P90/P10 of millions.
    tiny = stats.consistency(units([0, 1, 2, 0] * 10, [1, 1, 2, 2] * 10))
    assert np.isnan(tiny["median_odds_ratio"]) and np.isnan(tiny["p90_p10_ratio"]) and tiny["units"] == 40
