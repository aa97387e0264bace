"""Comparing units (clinicians or clinics) fairly: funnel limits, overdispersion, shrinkage, consistency.

Pure functions on one row per unit. Sources:
- Spiegelhalter DJ. Funnel plots for comparing institutional performance. Stat Med 2005;24:1185-1202
  (exact binomial limits with interpolation, Appendix A.1.1).
- Spiegelhalter DJ. Handling over-dispersion of performance indicators. Qual Saf Health Care
  2005;14:347-351 (winsorised z-scores, phi, DerSimonian-Laird additive random-effects limits).
  Standardised ratios O/E: exact Poisson limits (A.1.2); overdispersion on the square-root scale, as
  FunnelPlotR's "SR" funnels with sr_method = "CQC".
- Merlo J et al. J Epidemiol Community Health 2006;60:290-297 (median odds ratio).
- Morris CN. Parametric empirical Bayes inference. JASA 1983;78:47-55 (posterior variance of shrunken means).
FunnelPlotR (NHS-R community) is the model for returning numbers, not just a picture.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

LEVELS = {"95": 0.95, "998": 0.998}
WINSOR = 0.10          # winsorise z-scores at the 10th and 90th centiles (Spiegelhalter 2005, QSHC)
MIN_DENOMINATOR = 11   # units with fewer cases are never judged (flag "too_few"): too few to tell from noise
MIN_UNITS = 5          # variation indices (MOR, P90/P10) need at least this many units of MIN_DENOMINATOR cases
FLAG_WORDS = {"high": "above the upper limit", "low": "below the lower limit", "within": "within the limits",
              "too_few": "too few to judge", "suppressed": "suppressed"}


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
    basis: str = "observed"     # observed, or adjusted: value is O/E against the patient mix (funnel_ratios)
    model: object = None        # for adjusted: the patient-mix model's analysis.casemix.Fit


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


def extreme_chance(pooled: float, n: np.ndarray | float, tau2: float = 0.0, upper: bool = True) -> np.ndarray:
    """The chance that a unit of n cases is at the boundary, all n (upper) or none (lower), by chance alone.

    Without overdispersion (tau2 = 0) the binomial: pooled^n or (1 - pooled)^n. With it, the beta-binomial
    whose rates have mean `pooled` and between-unit variance tau2 (the same tau^2 that widens the
    random-effects limits): Beta(p s, (1 - p) s) with s = pooled (1 - pooled) / tau2 - 1, so
    P(R = n) = B(a + n, b) / B(a, b). Shape of n; a probability (0-1).
    """
    n = np.asarray(n, dtype=float)
    p = pooled if upper else 1 - pooled
    spread = pooled * (1 - pooled)
    if tau2 <= 0 or spread <= 0:
        with np.errstate(invalid="ignore"):
            return np.power(p, n)
    s = max(spread / tau2 - 1, 1e-9)   # tau^2 as large as a Bernoulli's variance: all-or-nothing units
    a, b = p * s, (1 - p) * s
    return np.exp(special.betaln(a + n, b) - special.betaln(a, b))


def _flag(units: pd.DataFrame, value: pd.Series, min_denominator: int,
          boundary: tuple[np.ndarray, np.ndarray] | None = None) -> pd.Series:
    """high / low outside the 99.8% limits, within, or too_few (fewer than min_denominator cases).

    boundary: for proportions, the chance of all n (upper) and of none (lower) under the model behind the
    limits (extreme_chance). A unit at n/n or 0/n is flagged only when that chance is below the limit's tail
    (0.1% for 99.8%): the interpolated upper limit (r - alpha) / n is below 100% whenever r = n, so without
    this rule every n/n unit would be "high" even when all n is what the pooled rate makes likely.
    """
    high = (value > units["upper_998"]).to_numpy(copy=True)
    low = (value < units["lower_998"]).to_numpy(copy=True)
    if boundary is not None:
        tail = (1 - LEVELS["998"]) / 2
        y, n = units["numerator"].to_numpy(float), units["denominator"].to_numpy(float)
        chance_all, chance_none = boundary
        high &= (y < n) | (chance_all < tail)
        low &= (y > 0) | (chance_none < tail)
    flag = np.where(high, "high", np.where(low, "low", "within"))
    return pd.Series(np.where(units["denominator"] < min_denominator, "too_few", flag), index=units.index)


def funnel_proportions(units: pd.DataFrame, overdispersion: bool = True,
                       min_denominator: int = MIN_DENOMINATOR) -> Funnel:
    """Funnel limits for proportions from `numerator`, `denominator` columns (one row per unit).

    Limits are exact binomial around the pooled rate; when the winsorised phi exceeds 1 and tau^2 > 0,
    additive random-effects limits (pooled +/- z sqrt(s_i^2 + tau^2)) replace them. Flags: `high` above
    the upper 99.8% limit, `low` below the lower one, else `within`; `too_few` for units with fewer than
    `min_denominator` cases (never judged). A unit at 0/n or n/n is flagged only when chance cannot explain
    it (see _flag and extreme_chance), with either kind of limit.
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
    tau2_used = tau2 if adjusted else 0.0
    boundary = (extreme_chance(pooled, n, tau2_used, upper=True), extreme_chance(pooled, n, tau2_used, upper=False))
    out["flag"] = _flag(out, out["value"], min_denominator, boundary)
    limits = "additive random effects (DerSimonian-Laird)" if adjusted else "exact binomial"
    return Funnel(out, pooled, phi, tau2, limits)


def funnel_means(units: pd.DataFrame, overdispersion: bool = True,
                 min_denominator: int = MIN_DENOMINATOR) -> Funnel:
    """Funnel limits for means from `denominator` (patients), `mean` and `sd` columns (one row per unit).

    Target = the patient-weighted pooled mean; a unit's standard error = pooled within-unit SD / sqrt(n);
    normal limits, widened by tau^2 as for proportions when overdispersed, and never below zero: the means
    compared here are doses (MME a day), which cannot be negative.
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
        out[f"lower_{label}"] = np.clip(pooled - half, 0, None)
        out[f"upper_{label}"] = pooled + half
    out["flag"] = _flag(out, out["value"], min_denominator)
    limits = "additive random effects (DerSimonian-Laird)" if adjusted else "normal"
    return Funnel(out, pooled, phi, tau2, limits, pooled_sd)


def poisson_limit(expected: np.ndarray | float, prob: float) -> np.ndarray:
    """The `prob` quantile of a standardised ratio O/E when O ~ Poisson(E), interpolated as binomial_limit
    (Spiegelhalter 2005, Stat Med, A.1.2): r = the smallest count with P(O <= r) >= prob, alpha = (P(O <= r) -
    prob) / P(O = r), limit = (r - alpha) / E. Shape of `expected`; a ratio (1 = as expected)."""
    e = np.asarray(expected, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = stats.poisson.ppf(prob, e)
        at_r = stats.poisson.cdf(r, e)
        below = stats.poisson.cdf(r - 1, e)
        alpha = np.where(at_r > below, (at_r - prob) / (at_r - below), 0.0)
        return np.clip((r - alpha) / e, 0.0, None)


def _ratio_limits(expected: np.ndarray, tau2: float, adjusted: bool) -> dict[str, np.ndarray]:
    """lower/upper at each level around O/E = 1: exact Poisson, or with overdispersion the additive
    random-effects limits on the square-root scale, (1 -/+ z sqrt(1 / 4E + tau^2))^2 (Spiegelhalter 2005, QSHC)."""
    out = {}
    for label, level in LEVELS.items():
        if adjusted:
            half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(1 / (4 * expected) + tau2)
            out[f"lower_{label}"] = np.clip(1 - half, 0, None) ** 2
            out[f"upper_{label}"] = (1 + half) ** 2
        else:
            out[f"lower_{label}"] = poisson_limit(expected, (1 - level) / 2)
            out[f"upper_{label}"] = poisson_limit(expected, 0.5 + level / 2)
    return out


def funnel_ratios(units: pd.DataFrame, overdispersion: bool = True,
                  min_denominator: int = MIN_DENOMINATOR) -> Funnel:
    """Funnel limits for standardised ratios O/E (analysis.casemix) from `numerator` (O, a count),
    `expected` (E, the sum of the patients' expected probabilities), `denominator` (patients) and, for the
    boundary rule, `chance_all` / `chance_none` (the model's chance that every / no patient is in the
    numerator: the product of p or of 1 - p over the unit's patients).

    Target 1 (as expected for the patient mix; the fitted expected counts sum to the observed ones). Limits:
    exact Poisson around E; when the winsorised phi of z = 2 (sqrt(O) - sqrt(E)) exceeds 1 and tau^2 > 0
    (square-root scale, s^2 = 1 / 4E), additive random-effects limits. Flags as funnel_proportions: too_few
    under `min_denominator` patients, and a unit at 0/n or n/n flagged only when its chance under the model is
    below the 99.8% limit's tail. value = O/E; adjusted_share = O/E x the pooled share (the share the unit
    would have with the average patient mix), for reading beside the observed share.
    """
    out = units.copy()
    o = out["numerator"].to_numpy(float)
    e = out["expected"].to_numpy(float)
    has = e > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        out["value"] = np.where(has, o / np.where(has, e, 1), np.nan)
        variance = np.where(has, 1 / (4 * np.where(has, e, 1)), np.nan)
    total = out.loc[has, "denominator"].sum()
    pooled_share = float(out.loc[has, "numerator"].sum() / total) if total else float("nan")
    out["pooled_value"] = 1.0
    out["adjusted_share"] = out["value"] * pooled_share
    out["se"] = np.sqrt(variance)
    out["z"] = 2 * (np.sqrt(o) - np.sqrt(e))
    valid = has & np.isfinite(out["z"].to_numpy())
    phi, tau2 = _dispersion(out.loc[valid, "z"].to_numpy(), variance[valid])
    adjusted = overdispersion and phi > 1 and tau2 > 0
    for column, limit in _ratio_limits(np.where(has, e, np.nan), tau2, adjusted).items():
        out[column] = limit
    boundary = (out["chance_all"].to_numpy(float), out["chance_none"].to_numpy(float))
    out["flag"] = _flag(out, out["value"], min_denominator, boundary)
    limits = ("additive random effects (DerSimonian-Laird, square-root scale)" if adjusted else "exact Poisson")
    return Funnel(shrink_ratios(out), 1.0, phi, tau2, limits, basis="adjusted")


def shrink_ratios(units: pd.DataFrame) -> pd.DataFrame:
    """Empirical-Bayes (Poisson-gamma) ratios: shrunk_value, shrunk_lower, shrunk_upper (95% interval).

    O ~ Poisson(E theta), theta ~ Gamma(alpha, alpha) (mean 1), alpha fitted to all units by maximum
    likelihood of the negative binomial margin; the posterior is Gamma(alpha + O, alpha + E). alpha is kept in
    [1, total O] for the reasons _beta_binomial_prior gives (no prior more diffuse than an exponential, none
    carrying more information than all the cases it was fitted from).
    """
    out = units.copy()
    keep = (out["expected"] > 0).to_numpy()
    o = out.loc[keep, "numerator"].to_numpy(float)
    e = out.loc[keep, "expected"].to_numpy(float)
    if keep.sum() < 2 or o.sum() == 0:
        out["shrunk_value"] = out["shrunk_lower"] = out["shrunk_upper"] = np.nan
        return out
    top = max(float(o.sum()), 1.0)

    def nll(log_alpha: float) -> float:
        a = np.exp(log_alpha)
        return -float(np.sum(special.gammaln(o + a) - special.gammaln(a) + a * np.log(a / (a + e))
                             + o * np.log(e / (a + e))))

    fit = optimize.minimize_scalar(nll, bounds=(0.0, np.log(top)), method="bounded", options={"xatol": 1e-10})
    alpha = float(np.exp(fit.x)) if top > 1 else 1.0
    post_a, post_b = alpha + o, alpha + e
    out.loc[keep, "shrunk_value"] = post_a / post_b
    out.loc[keep, "shrunk_lower"] = stats.gamma.ppf(0.025, post_a, scale=1 / post_b)
    out.loc[keep, "shrunk_upper"] = stats.gamma.ppf(0.975, post_a, scale=1 / post_b)
    return out


def funnel_lines(funnel: Funnel, n_max: float, points: int = 200) -> pd.DataFrame:
    """The funnel's limit lines on a grid of denominators 1..n_max: n, lower/upper at 95% and 99.8%
    (proportions 0-1; means in their unit, never below zero; for an adjusted funnel, n is the expected
    count from 0.5 to n_max and the limits are ratios O/E)."""
    adjusted = funnel.limits.startswith("additive")
    if funnel.basis == "adjusted":   # n is the expected count E, and the lines are ratios around 1
        e = np.geomspace(0.5, max(n_max, 2) * 1.05, points)
        return pd.DataFrame({"n": e, **_ratio_limits(e, funnel.tau2, adjusted)})
    n = np.unique(np.round(np.geomspace(1, max(n_max, 2) * 1.05, points)))
    out = pd.DataFrame({"n": n})
    for label, level in LEVELS.items():
        z = stats.norm.ppf(0.5 + level / 2)
        if funnel.scale is not None:
            half = z * np.sqrt(funnel.scale ** 2 / n + (funnel.tau2 if adjusted else 0))
            out[f"lower_{label}"] = np.clip(funnel.pooled - half, 0, None)
            out[f"upper_{label}"] = funnel.pooled + half
        elif adjusted:
            half = z * np.sqrt(funnel.pooled * (1 - funnel.pooled) / n + funnel.tau2)
            out[f"lower_{label}"] = np.clip(funnel.pooled - half, 0, 1)
            out[f"upper_{label}"] = np.clip(funnel.pooled + half, 0, 1)
        else:
            out[f"lower_{label}"] = binomial_limit(funnel.pooled, n, (1 - level) / 2)
            out[f"upper_{label}"] = binomial_limit(funnel.pooled, n, 0.5 + level / 2)
    return out


def _beta_binomial_prior(y: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood Beta(a, b) prior for unit rates (beta-binomial), kept sane where the data cannot
    identify it: a >= 1, b >= 1 and a + b <= the total number of cases.

    Why the bounds: with one or two cases per unit the likelihood is flat in a + b or runs to a, b -> 0 (a
    U-shaped prior that shrinks every 0/1 and 1/1 to exactly 0% and 100%, with intervals of zero width
    that do not contain the estimate); with no variation between units it runs to a + b -> infinity,
    giving intervals far narrower than the data. a, b >= 1 keeps the prior no more U-shaped than uniform
    (and every posterior log-concave, so its mean lies inside its central 95% interval); a + b <= N keeps
    the prior from carrying more information than all the N cases it was fitted from. A J-shaped prior
    (a = 1) is still allowed for rare events.

    Parametrised as a = 1 + c q, b = 1 + c (1 - q), c = e^v - 1 in [0, N - 2], q = expit(t), so the bounds
    are box bounds. Units with the same (y, n) share one term, weighted by their count; the gradient is
    analytic (digamma), so a health system's thousands of clinicians fit in milliseconds.
    """
    total = float(n.sum())
    pooled = y.sum() / total
    pairs, weight = np.unique(np.column_stack([y, n]), axis=0, return_counts=True)
    y, n = pairs[:, 0], pairs[:, 1]
    c_max = max(total - 2.0, 0.0)

    def prior(params: np.ndarray) -> tuple[float, float, float, float]:
        c, q = np.expm1(params[0]), special.expit(params[1])
        return 1 + c * q, 1 + c * (1 - q), c, q

    def nll(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b, c, q = prior(params)
        value = -float(np.sum(weight * (special.betaln(y + a, n - y + b) - special.betaln(a, b))))
        common = special.digamma(n + a + b) - special.digamma(a + b)
        grad_a = -np.sum(weight * (special.digamma(y + a) - special.digamma(a) - common))
        grad_b = -np.sum(weight * (special.digamma(n - y + b) - special.digamma(b) - common))
        grad_v = (grad_a * q + grad_b * (1 - q)) * (c + 1)      # dc/dv = e^v = c + 1
        grad_t = (grad_a - grad_b) * c * q * (1 - q)            # dq/dt = q (1 - q)
        return value, np.array([grad_v, grad_t])

    # Two starts, the better fit kept: a prior worth 10 cases, and the largest prior (all N cases). Where the
    # data say nothing about the spread between units (one case each: the likelihood is flat in a + b), the
    # tie goes to the largest, so every unit stays pulled all the way to the pooled rate with the pooled
    # rate's own uncertainty; real variation moves the fit down from either start.
    fits = []
    for c0 in (c_max, min(8.0, c_max)):
        q0 = float(np.clip((pooled * (2 + c0) - 1) / c0, 1e-6, 1 - 1e-6)) if c0 > 0 else 0.5
        fits.append(optimize.minimize(nll, np.array([np.log1p(c0), special.logit(q0)]), jac=True,
                                      method="L-BFGS-B", bounds=[(0.0, float(np.log1p(c_max))), (-30.0, 30.0)],
                                      options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 500}))
    fit = min(fits, key=lambda f: f.fun - 1e-9 * abs(f.fun) * (f is fits[0]))
    a, b, _, _ = prior(fit.x)
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
    """Normal-normal empirical-Bayes means: each unit pulled to the pooled mean by w = tau^2 / (tau^2 + se^2).

    Posterior variance w se^2 + (1 - w)^2 Var(pooled) (Morris 1983, JASA 78:47): the pooled mean is itself
    estimated, so a unit pulled all the way to it (tau^2 = 0) still has the pooled mean's uncertainty, not
    a zero-width interval. Var(pooled) of the patient-weighted mean = sum n_i^2 (se_i^2 + tau^2) / (sum n_i)^2.
    Intervals (95%) never go below zero (doses). Adds shrunk_value, shrunk_lower, shrunk_upper.
    """
    out = funnel.units.copy()
    variance = out["se"] ** 2
    weight = funnel.tau2 / (funnel.tau2 + variance)
    n = out["denominator"].astype(float)
    has = (n > 0) & np.isfinite(variance)
    var_pooled = float((n[has] ** 2 * (variance[has] + funnel.tau2)).sum() / n[has].sum() ** 2) \
        if has.any() else float("nan")
    post_mean = funnel.pooled + weight * (out["value"] - funnel.pooled)
    post_sd = np.sqrt(weight * variance + (1 - weight) ** 2 * var_pooled)
    z = stats.norm.ppf(0.975)
    out["shrunk_value"] = post_mean
    out["shrunk_lower"] = np.clip(post_mean - z * post_sd, 0, None)
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


def estimable(units: pd.DataFrame, min_denominator: int = MIN_DENOMINATOR, min_units: int = MIN_UNITS) -> bool:
    """Whether variation between units can be estimated: at least `min_units` units with at least
    `min_denominator` cases each (fewer, and the median odds ratio and P90/P10 are "too few to estimate")."""
    return int((units["denominator"] >= min_denominator).sum()) >= min_units


def indices(result: Funnel, kind: str = "proportion") -> dict[str, float]:
    """The variation indices of a funnel whose units carry shrunken values (see consistency).

    pooled_value, units (with cases), judged_units (with at least MIN_DENOMINATOR cases), phi, tau2,
    estimable, median_odds_ratio (proportions) and p90_p10_ratio. The last two are computed over the judged
    units and only when at least MIN_UNITS of them exist (P90/P10 also needs a 10th centile above zero);
    otherwise NaN, shown as "too few to estimate": with one or two cases a unit's log-odds are the
    continuity correction, not data, and a ratio of near-zero centiles runs to millions.
    """
    units = result.units
    judged = units[units["denominator"] >= MIN_DENOMINATOR]
    ok = estimable(units)
    values = judged["shrunk_value"].dropna() if "shrunk_value" in judged else pd.Series(dtype=float)
    p10, p90 = (np.quantile(values, [0.1, 0.9]) if ok and len(values) else (np.nan, np.nan))
    return {
        "pooled_value": result.pooled,
        "units": int((units["denominator"] > 0).sum()),
        "judged_units": int(len(judged)),
        "phi": result.phi,
        "tau2": result.tau2,
        "estimable": ok,
        "median_odds_ratio": median_odds_ratio(judged) if ok and kind == "proportion" else float("nan"),
        "p90_p10_ratio": float(p90 / p10) if ok and p10 > 0 else float("nan"),
    }
