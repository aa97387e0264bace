"""Allowing for patient mix: indirect standardisation of a measure's shares (DESIGN.md "Allowing for patient mix").

A clinician whose patients are older, have opioid use disorder or came already on high doses can differ from
colleagues for reasons that are not their practice. For a share measure, one logistic regression fitted over
every patient in the comparison (all clinicians together, statsmodels' GLM with a binomial family) gives each
patient the probability of the numerator expected from the characteristics the measure declares
(`Measure.adjust_for`). A clinician's expected count E is the sum of their patients' probabilities, O the
observed count, and O/E the standardised ratio (indirect standardisation; Spiegelhalter 2005, Stat Med
24:1185, as FunnelPlotR's "SR" funnels), compared on funnel limits for ratios (analysis.stats.funnel_ratios).

Pure functions on one row per patient (the measure's rows, which are one per patient or taper in the period)
joined to one row per patient of characteristics (queries/patient_mix.sql).
"""
from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps


@dataclass(frozen=True)
class Characteristic:
    """One patient characteristic a share may be adjusted for: its label and its levels, in words."""

    id: str
    label: str
    levels: str


CHARACTERISTICS: dict[str, Characteristic] = {c.id: c for c in (
    Characteristic("age_band", "age band", "under 45, 45 to 64, 65 and over (age on the period's first day), or "
                                           "not recorded"),
    Characteristic("sex", "sex", "female, male, or other and not recorded"),
    Characteristic("opioid_use_disorder", "opioid use disorder", "recorded or not (patients.opioid_use_disorder)"),
    Characteristic("long_term_therapy", "long-term opioid therapy", "on long-term therapy in the period or not "
                                                                   "(an episode of Von Korff 2008 overlaps it)"),
    Characteristic("baseline_dose_band", "baseline dose band", "below 90 MME a day, or 90 or more (the baseline "
                                                               "before the taper or the period; CDC 2022's 90)"),
)}
AGE_BANDS = ((45, "under 45"), (65, "45 to 64"), (200, "65 and over"))
UNKNOWN = "not recorded"
MIN_PATIENTS_TO_FIT = 20   # fewer patients in the comparison: no model (each term would rest on a handful)


def label_list(ids: tuple[str, ...]) -> str:
    """'age band, sex and opioid use disorder': the characteristics in words, for captions and letters."""
    words = [CHARACTERISTICS[i].label for i in ids]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1] if words else "nothing"


def age_band(birth_date: pd.Series, on: dt.date) -> pd.Series:
    """Age band on day `on` from birth dates (NaT: not recorded); bands AGE_BANDS."""
    born = pd.to_datetime(birth_date, errors="coerce")
    day = pd.Timestamp(on)
    age = day.year - born.dt.year - ((born.dt.month > day.month) | ((born.dt.month == day.month)
                                                                    & (born.dt.day > day.day))).astype(int)
    out = pd.Series(UNKNOWN, index=birth_date.index, dtype=object)
    for upper, word in reversed(AGE_BANDS):
        out[age < upper] = word
    return out.where(born.notna(), UNKNOWN)


def characteristics(rows: pd.DataFrame, mix: pd.DataFrame, start: dt.date,
                    high_mme: float = 90.0) -> pd.DataFrame:
    """The measure's rows (patient_id, ..., optional baseline_mme) with every characteristic as a column of
    words: age_band, sex, opioid_use_disorder, long_term_therapy, baseline_dose_band.

    mix: one row per patient (queries/patient_mix.sql: patient_id, birth_date, sex, opioid_use_disorder,
    long_term_therapy). A patient missing from `mix` gets "not recorded" in each. high_mme: the high-dose
    threshold in force (MME a day) that splits baseline doses.
    """
    m = mix.drop_duplicates("patient_id").set_index("patient_id")
    key = rows["patient_id"]
    out = rows.copy()
    out["age_band"] = age_band(key.map(m["birth_date"]) if len(m) else pd.Series(pd.NaT, index=rows.index),
                               start).to_numpy()
    sex = key.map(m["sex"]).astype("string").str.strip().str.upper() if len(m) else pd.Series("", index=rows.index)
    out["sex"] = np.select([sex.isin(["F", "FEMALE"]), sex.isin(["M", "MALE"])], ["female", "male"],
                           "other or not recorded")
    for c in ("opioid_use_disorder", "long_term_therapy"):
        flag = key.map(m[c]) if len(m) else pd.Series(np.nan, index=rows.index)
        out[c] = np.where(flag.isna(), UNKNOWN, np.where(flag.astype(object).eq(True), "yes", "no"))
    if "baseline_mme" in rows:
        dose = pd.to_numeric(rows["baseline_mme"], errors="coerce")
        out["baseline_dose_band"] = np.where(dose.isna(), UNKNOWN,
                                             np.where(dose >= high_mme, f"{high_mme:g} MME or more",
                                                      f"below {high_mme:g} MME"))
    else:
        out["baseline_dose_band"] = UNKNOWN
    return out


@dataclass(frozen=True)
class Fit:
    """How well the patient-mix model fits (Methods page): the terms and the two standard checks.

    terms: term, level, reference, odds_ratio, lower_95, upper_95 (each level against the reference level, the
    first in sorted order).
    c_statistic: discrimination, the area under the ROC curve (0.5 = no better than chance).
    calibration: by tenth of predicted probability (calibration()): group, patients, observed, expected.
    """

    characteristics: tuple[str, ...]
    patients: int
    events: int
    terms: pd.DataFrame
    c_statistic: float
    calibration: pd.DataFrame
    note: str = ""


def c_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve of predictions p for outcomes y (0/1), ties counted half (Mann-Whitney U /
    (n1 n0)); NaN when every outcome is the same."""
    y = np.asarray(y, dtype=bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = sps.rankdata(p)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def calibration(y: np.ndarray, p: np.ndarray, groups: int = 10) -> pd.DataFrame:
    """Observed and expected shares by tenth of predicted probability (Hosmer-Lemeshow grouping): cut at the
    deciles of p, patients with the same prediction always in the same group (else the order of tied rows
    would decide their observed share), so there are fewer groups when many patients share a prediction.
    Columns: group (1 = lowest predictions), patients, observed, expected (shares 0-1)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(p) == 0:
        return pd.DataFrame(columns=["group", "patients", "observed", "expected"])
    edges = np.unique(np.quantile(p, np.linspace(0, 1, groups + 1)))
    codes = np.searchsorted(edges[1:-1], p, side="left") if len(edges) > 2 else np.zeros(len(p), dtype=int)
    frame = pd.DataFrame({"code": codes, "y": y, "p": p}).groupby("code", sort=True)
    out = pd.DataFrame({"patients": frame.size(), "observed": frame["y"].mean(), "expected": frame["p"].mean()})
    out.insert(0, "group", np.arange(1, len(out) + 1))
    return out.reset_index(drop=True)


def fit(rows: pd.DataFrame, adjust_for: tuple[str, ...]) -> tuple[pd.Series, Fit] | None:
    """Each patient's expected probability of the numerator given `adjust_for`, and the model's fit.

    rows: one row per patient (or taper) with in_numerator (bool) and the characteristic columns
    (characteristics()). The model: logistic regression, in_numerator ~ the characteristics as categorical
    terms (first level, in sorted order, the reference), fitted by statsmodels' GLM (binomial family, IRLS)
    on the covariate patterns with their counts, which gives the same estimates as one row per patient.
    A characteristic with one level in the data is dropped (nothing to adjust). Returns None when there is
    nothing to fit: fewer than MIN_PATIENTS_TO_FIT patients, or every patient (or none) in the numerator.
    The expected counts sum to the observed count (a property of the maximum-likelihood fit with an intercept).
    """
    import statsmodels.api as sm   # imported here: a second or so, paid only when a comparison is adjusted

    y = rows["in_numerator"].astype(bool).to_numpy()
    if len(rows) < MIN_PATIENTS_TO_FIT or y.all() or not y.any():
        return None
    used = tuple(c for c in adjust_for if rows[c].nunique() > 1)
    note = ""
    if not used:
        p = np.full(len(rows), y.mean())
        terms = pd.DataFrame(columns=["term", "level", "reference", "odds_ratio", "lower_95", "upper_95"])
        note = "Every patient has the same characteristics: the expected share is the pooled one."
    else:
        cells = rows.assign(_y=y.astype(int)).groupby(list(used), sort=True)["_y"].agg(["sum", "size"]).reset_index()
        parts, labels = [], []
        for c in used:   # one 0/1 column per level but the first (the reference), named by (term, level)
            d = pd.get_dummies(cells[c].astype(str), drop_first=True, dtype=float)
            reference = sorted(cells[c].astype(str).unique())[0]
            labels += [(c, level, reference) for level in d.columns]
            parts.append(d.set_axis([f"{c}={level}" for level in d.columns], axis=1))
        design = pd.concat([pd.Series(1.0, index=cells.index, name="const"), *parts], axis=1)
        endog = np.column_stack([cells["sum"], cells["size"] - cells["sum"]]).astype(float)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = sm.GLM(endog, design, family=sm.families.Binomial()).fit()
        # A group all in (or all out of) the numerator has a coefficient running to infinity (statsmodels
        # warns of separation, or returns a huge standard error): say so, since its expected share is its own.
        if any("separation" in str(w.message).lower() for w in caught) or np.any(np.asarray(result.bse)[1:] > 20):
            note = ("Some groups of patients are all in the numerator or all outside it: their expected share is "
                    "their own observed share, so they cannot make a clinician stand out.")
        cells["_p"] = np.asarray(result.predict(design))
        p = rows[list(used)].merge(cells[list(used) + ["_p"]], on=list(used), how="left")["_p"].to_numpy()
        ci = np.asarray(result.conf_int())[1:]
        with np.errstate(over="ignore"):   # a separated group's interval runs to infinity, shown as such
            terms = pd.DataFrame({"term": [t for t, _, _ in labels], "level": [lv for _, lv, _ in labels],
                                  "reference": [r for _, _, r in labels],
                                  "odds_ratio": np.exp(np.asarray(result.params)[1:]),
                                  "lower_95": np.exp(ci[:, 0]), "upper_95": np.exp(ci[:, 1])})
    expected = pd.Series(np.clip(p, 1e-12, 1 - 1e-12), index=rows.index, name="expected")
    return expected, Fit(used, len(rows), int(y.sum()), terms, c_statistic(y, expected.to_numpy()),
                         calibration(y.astype(float), expected.to_numpy()), note)
