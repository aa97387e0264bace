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
    assert flags["TINY"] == "within"          # 4 of 4: extreme rate, but four patients prove nothing
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
