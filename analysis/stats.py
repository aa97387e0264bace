"""Comparing units (clinicians or clinics) fairly: funnel limits, overdispersion, shrinkage, consistency.

Pure functions on one row per unit. Sources:
- Spiegelhalter DJ. Funnel plots for comparing institutional performance. Stat Med 2005;24:1185-1202
  (exact binomial limits with interpolation, Appendix A.1.1).
- Spiegelhalter DJ. Handling over-dispersion of performance indicators. Qual Saf Health Care
  2005;14:347-351 (winsorised z-scores, phi, DerSimonian-Laird additive random-effects limits).
- Merlo J et al. J Epidemiol Community Health 2006;60:290-297 (median odds ratio).
FunnelPlotR (NHS-R community) is the model for returning numbers, not just a picture.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

LEVELS = {"95": 0.95, "998": 0.998}
WINSOR = 0.10          # winsorise z-scores at the 10th and 90th centiles (Spiegelhalter 2005, QSHC)
MIN_DENOMINATOR = 11   # units with fewer cases are never flagged: too few to tell from noise


def binomial_limit(target: float, n: np.ndarray | float, prob: float) -> np.ndarray:
    """The `prob` quantile of a proportion out of n under `target`, interpolated (Spiegelhalter 2005, A.1.1).

    r = the smallest count with P(R <= r) >= prob; alpha = (P(R <= r) - prob) / P(R = r);
    limit = (r - alpha) / n. Continuous in n, so funnel lines are smooth.
    """
    n = np.asarray(n, dtype=float)
    r = stats.binom.ppf(prob, n, target)
    at_r = stats.binom.cdf(r, n, target)
    below = stats.binom.cdf(r - 1, n, target)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(at_r > below, (at_r - prob) / (at_r - below), 0.0)
        return np.clip((r - alpha) / n, 0.0, 1.0)


@dataclass(frozen=True)
class Funnel:
    """One measure's comparison: per-unit limits and flags, and the dispersion figures behind them."""

    units: pd.DataFrame   # input + value, pooled_value, se, z, lower_95, upper_95, lower_998, upper_998, flag
    pooled: float
    phi: float            # overdispersion factor from winsorised z-scores (1 = binomial/normal noise)
    tau2: float           # DerSimonian-Laird between-unit variance (0 when there is no excess variation)
    limits: str           # "exact binomial", "normal" or "additive random effects (DerSimonian-Laird)"
    scale: float | None = None  # pooled within-unit SD, for means (None for proportions)


def _dispersion(z: np.ndarray, variance: np.ndarray) -> tuple[float, float]:
    """phi from winsorised z-scores, and the DerSimonian-Laird tau^2 (Spiegelhalter 2005, QSHC)."""
    k = len(z)
    if k < 2:
        return 1.0, 0.0
    lo, hi = np.quantile(z, [WINSOR, 1 - WINSOR])
    zw = np.clip(z, lo, hi)
    phi = float(np.mean(zw ** 2))
    w = 1 / variance
    denominator = w.sum() - (w ** 2).sum() / w.sum()
    tau2 = max(0.0, (k * phi - (k - 1)) / denominator) if denominator > 0 else 0.0
    return phi, float(tau2)


def _flag(units: pd.DataFrame, value: pd.Series, min_denominator: int) -> pd.Series:
    flag = np.where(value > units["upper_998"], "high", np.where(value < units["lower_998"], "low", "within"))
    return pd.Series(np.where(units["denominator"] < min_denominator, "within", flag), index=units.index)


def funnel_proportions(units: pd.DataFrame, overdispersion: bool = True,
                       min_denominator: int = MIN_DENOMINATOR) -> Funnel:
    """Funnel limits for proportions from `numerator`, `denominator` columns (one row per unit).

    Limits are exact binomial around the pooled rate; when the winsorised phi exceeds 1 and tau^2 > 0,
    additive random-effects limits (pooled +/- z sqrt(s_i^2 + tau^2)) replace them. Flags: `high` above
    the upper 99.8% limit, `low` below the lower one, else `within`; units with fewer than
    `min_denominator` cases are never flagged.
    """
    out = units.copy()
    units_with_cases = out[out["denominator"] > 0]
    n = out["denominator"].to_numpy(float)
    pooled = float(units_with_cases["numerator"].sum() / units_with_cases["denominator"].sum()) \
        if len(units_with_cases) else float("nan")
    out["value"] = np.where(n > 0, out["numerator"] / np.where(n > 0, n, 1), np.nan)
    out["pooled_value"] = pooled
    variance = pooled * (1 - pooled) / np.where(n > 0, n, np.nan)
    out["se"] = np.sqrt(variance)
    out["z"] = (out["value"] - pooled) / out["se"]
    valid = (n > 0) & np.isfinite(out["z"].to_numpy())
    phi, tau2 = _dispersion(out.loc[valid, "z"].to_numpy(), variance[valid]) if 0 < pooled < 1 else (1.0, 0.0)
    adjusted = overdispersion and phi > 1 and tau2 > 0
    for label, level in LEVELS.items():
        if adjusted:
            z = stats.norm.ppf(0.5 + level / 2)
            half = z * np.sqrt(variance + tau2)
            out[f"lower_{label}"] = np.clip(pooled - half, 0, 1)
            out[f"upper_{label}"] = np.clip(pooled + half, 0, 1)
        else:
            out[f"lower_{label}"] = binomial_limit(pooled, n, (1 - level) / 2)
            out[f"upper_{label}"] = binomial_limit(pooled, n, 0.5 + level / 2)
    out["flag"] = _flag(out, out["value"], min_denominator)
    limits = "additive random effects (DerSimonian-Laird)" if adjusted else "exact binomial"
    return Funnel(out, pooled, phi, tau2, limits)


def funnel_means(units: pd.DataFrame, overdispersion: bool = True,
                 min_denominator: int = MIN_DENOMINATOR) -> Funnel:
    """Funnel limits for means from `denominator` (patients), `mean` and `sd` columns (one row per unit).

    Target = the patient-weighted pooled mean; a unit's standard error = pooled within-unit SD / sqrt(n);
    normal limits, widened by tau^2 as for proportions when overdispersed.
    """
    out = units.copy()
    n = out["denominator"].to_numpy(float)
    has = n > 0
    pooled = float((out.loc[has, "mean"] * n[has]).sum() / n[has].sum()) if has.any() else float("nan")
    dof = (n[has] - 1).clip(min=0).sum()
    pooled_sd = float(np.sqrt(((out.loc[has, "sd"].fillna(0) ** 2) * (n[has] - 1).clip(min=0)).sum() / dof)) \
        if dof > 0 else float("nan")
    out["value"] = np.where(has, out["mean"], np.nan)
    out["pooled_value"] = pooled
    variance = pooled_sd ** 2 / np.where(has, n, np.nan)
    out["se"] = np.sqrt(variance)
    out["z"] = (out["value"] - pooled) / out["se"]
    valid = has & np.isfinite(out["z"].to_numpy())
    phi, tau2 = _dispersion(out.loc[valid, "z"].to_numpy(), variance[valid])
    adjusted = overdispersion and phi > 1 and tau2 > 0
    for label, level in LEVELS.items():
        z = stats.norm.ppf(0.5 + level / 2)
        half = z * np.sqrt(variance + (tau2 if adjusted else 0.0))
        out[f"lower_{label}"] = pooled - half
        out[f"upper_{label}"] = pooled + half
    out["flag"] = _flag(out, out["value"], min_denominator)
    limits = "additive random effects (DerSimonian-Laird)" if adjusted else "normal"
    return Funnel(out, pooled, phi, tau2, limits, pooled_sd)


def funnel_lines(funnel: Funnel, n_max: float, points: int = 200) -> pd.DataFrame:
    """The funnel's limit lines on a grid of denominators 1..n_max: n, lower/upper at 95% and 99.8%."""
    n = np.unique(np.round(np.geomspace(1, max(n_max, 2) * 1.05, points)))
    out = pd.DataFrame({"n": n})
    adjusted = funnel.limits.startswith("additive")
    for label, level in LEVELS.items():
        z = stats.norm.ppf(0.5 + level / 2)
        if funnel.scale is not None:
            half = z * np.sqrt(funnel.scale ** 2 / n + (funnel.tau2 if adjusted else 0))
            out[f"lower_{label}"], out[f"upper_{label}"] = funnel.pooled - half, funnel.pooled + half
        elif adjusted:
            half = z * np.sqrt(funnel.pooled * (1 - funnel.pooled) / n + funnel.tau2)
            out[f"lower_{label}"] = np.clip(funnel.pooled - half, 0, 1)
            out[f"upper_{label}"] = np.clip(funnel.pooled + half, 0, 1)
        else:
            out[f"lower_{label}"] = binomial_limit(funnel.pooled, n, (1 - level) / 2)
            out[f"upper_{label}"] = binomial_limit(funnel.pooled, n, 0.5 + level / 2)
    return out


def _beta_binomial_prior(y: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood Beta(a, b) prior for unit rates (beta-binomial), on log a, log b.

    Units with the same (y, n) share one term, weighted by their count; the gradient is analytic
    (digamma), so a health system's thousands of clinicians fit in milliseconds.
    """
    pooled = y.sum() / n.sum()
    pairs, weight = np.unique(np.column_stack([y, n]), axis=0, return_counts=True)
    y, n = pairs[:, 0], pairs[:, 1]

    def nll(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = np.exp(params)
        value = -float(np.sum(weight * (special.betaln(y + a, n - y + b) - special.betaln(a, b))))
        common = special.digamma(n + a + b) - special.digamma(a + b)
        grad_a = -np.sum(weight * (special.digamma(y + a) - special.digamma(a) - common)) * a
        grad_b = -np.sum(weight * (special.digamma(n - y + b) - special.digamma(b) - common)) * b
        return value, np.array([grad_a, grad_b])

    # Start from a prior worth 10 cases at the pooled rate; a flat likelihood (no variation between
    # units) drives a + b large, which is the right answer: full shrinkage to the pooled rate.
    start = np.log([max(pooled, 1e-3) * 10, max(1 - pooled, 1e-3) * 10])
    fit = optimize.minimize(nll, start, jac=True, method="L-BFGS-B", bounds=[(-20, 20), (-20, 20)],
                            options={"ftol": 1e-12, "gtol": 1e-8, "maxiter": 500})
    a, b = np.exp(np.clip(fit.x, -20, 20))
    return float(a), float(b)


def shrink_proportions(units: pd.DataFrame) -> pd.DataFrame:
    """Empirical-Bayes (beta-binomial) rates: shrunk_value, shrunk_lower, shrunk_upper (95% interval).

    Each unit's posterior is Beta(a + numerator, b + denominator - numerator), with a, b fitted to all
    units by maximum likelihood; small units move most towards the pooled rate, so rankings and
    caterpillar plots do not reward or punish noise.
    """
    out = units.copy()
    keep = out["denominator"] > 0
    y = out.loc[keep, "numerator"].to_numpy(float)
    n = out.loc[keep, "denominator"].to_numpy(float)
    if keep.sum() < 2 or n.sum() == 0:
        out["shrunk_value"] = out["shrunk_lower"] = out["shrunk_upper"] = np.nan
        return out
    a, b = _beta_binomial_prior(y, n)
    post_a, post_b = a + y, b + n - y
    out.loc[keep, "shrunk_value"] = post_a / (post_a + post_b)
    out.loc[keep, "shrunk_lower"] = stats.beta.ppf(0.025, post_a, post_b)
    out.loc[keep, "shrunk_upper"] = stats.beta.ppf(0.975, post_a, post_b)
    return out


def shrink_means(funnel: Funnel) -> pd.DataFrame:
    """Normal-normal empirical-Bayes means: each unit pulled to the pooled mean by tau^2 / (tau^2 + se^2)."""
    out = funnel.units.copy()
    variance = out["se"] ** 2
    weight = funnel.tau2 / (funnel.tau2 + variance)
    post_mean = funnel.pooled + weight * (out["value"] - funnel.pooled)
    post_sd = np.sqrt(weight * variance)
    z = stats.norm.ppf(0.975)
    out["shrunk_value"] = post_mean
    out["shrunk_lower"] = post_mean - z * post_sd
    out["shrunk_upper"] = post_mean + z * post_sd
    return out


def median_odds_ratio(units: pd.DataFrame) -> float:
    """Median odds ratio from the DerSimonian-Laird between-unit variance of log-odds (Merlo 2006).

    Log-odds use a 0.5 continuity correction: logit((y + 0.5) / (n + 1)), variance 1/(y+0.5) + 1/(n-y+0.5).
    MOR = exp(sqrt(2 sigma^2) x 0.6745): the median odds ratio between two randomly chosen units.
    """
    keep = units["denominator"] > 0
    y = units.loc[keep, "numerator"].to_numpy(float)
    n = units.loc[keep, "denominator"].to_numpy(float)
    if len(y) < 2:
        return float("nan")
    theta = np.log((y + 0.5) / (n - y + 0.5))
    v = 1 / (y + 0.5) + 1 / (n - y + 0.5)
    w = 1 / v
    mean = (w * theta).sum() / w.sum()
    q = (w * (theta - mean) ** 2).sum()
    sigma2 = max(0.0, (q - (len(y) - 1)) / (w.sum() - (w ** 2).sum() / w.sum()))
    return float(np.exp(np.sqrt(2 * sigma2) * stats.norm.ppf(0.75)))


def consistency(units: pd.DataFrame, kind: str = "proportion") -> dict[str, float]:
    """Variation indices for one measure and period: pooled value, units, phi, tau^2, MOR, p90/p10."""
    if kind == "proportion":
        funnel = funnel_proportions(units)
        shrunk = shrink_proportions(funnel.units)
    else:
        funnel = funnel_means(units)
        shrunk = shrink_means(funnel)
    return indices(Funnel(shrunk, funnel.pooled, funnel.phi, funnel.tau2, funnel.limits, funnel.scale), kind)


def indices(result: Funnel, kind: str = "proportion") -> dict[str, float]:
    """The variation indices of a funnel whose units carry shrunken values (see consistency)."""
    units = result.units
    values = units["shrunk_value"].dropna()
    p10, p90 = (np.quantile(values, [0.1, 0.9]) if len(values) else (np.nan, np.nan))
    return {
        "pooled_value": result.pooled,
        "units": int((units["denominator"] > 0).sum()),
        "phi": result.phi,
        "tau2": result.tau2,
        "median_odds_ratio": median_odds_ratio(units) if kind == "proportion" else float("nan"),
        "p90_p10_ratio": float(p90 / p10) if p10 and p10 > 0 else float("nan"),
    }
