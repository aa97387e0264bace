"""Measures compared between clinicians, each declared once (DESIGN.md "Measures compared between clinicians").

The dashboard, the exports and the Methods page all read these declarations. A measure's SQL
(`queries/<query>.sql`) returns one row per patient (or taper) in its denominator, with the
attributed clinician and clinic, `in_numerator` and `value`; `unit_rows` sums them per unit and
`compare` adds funnel limits, flags and shrunken rates (analysis.stats).
Adding a measure = adding a declaration here and a SQL file.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from analysis import casemix, coverage, dose, stats

ATTRIBUTION_RULE = ("Each patient belongs, for a period, to the clinician who supplied the most opioid "
                    "analgesic days in it (ties: the latest fill). New starts belong to the prescriber of the "
                    "index fill; tapers to the clinician who supplied the most opioid days in the baseline "
                    "before the taper started.")
EXCLUSIONS = "patients with cancer, hospice or palliative care, or sickle cell disease"
REVIEW = {"authored_by": "Prescribing consistency team", "checked_by": "Clinical lead (pending)",
          "reviewed_on": "2026-11-26", "next_review": "2027-11-26"}


@dataclass(frozen=True)
class Measure:
    """One measure: what it counts, why it matters, its direction and where its SQL lives."""

    id: str
    title: str
    why: str
    numerator: str
    denominator: str
    direction: str                 # lower | higher | neutral: which way is better, if any
    query: str                     # queries/<query>.sql
    kind: str = "proportion"       # proportion (value 0-1) or mean (value in `value_unit`)
    unit: str = "clinician"        # clinician or clinic: what is compared
    value_unit: str = "share of patients"
    params: dict = field(default_factory=dict)
    threshold: str = ""            # low | high: follows the configurable 50 / 90 MME threshold
    # Days of data the measure needs around each day it measures (analysis.coverage; days from `needs`):
    before: str = ""               # "" | lookback (new start) | baseline (taper) | ltot (episode judged)
    after: str = ""                # "" | followup (taper) | ltot (episode judged)
    min_period: str = ""           # "" | benzo_overlap: the shortest period the numerator can be met in
    # Allowing for patient mix (analysis.casemix): the characteristics the share is adjusted for, and why;
    # () for a measure shown only as observed (adjust_why says why).
    adjust_for: tuple[str, ...] = ()
    adjust_why: str = ""
    authored_by: str = REVIEW["authored_by"]
    checked_by: str = REVIEW["checked_by"]
    reviewed_on: str = REVIEW["reviewed_on"]
    next_review: str = REVIEW["next_review"]


# What each share is adjusted for (analysis.casemix.CHARACTERISTICS): characteristics of the patient, present
# before the clinician's decision, that the data contract holds (patients, stored_ltot_episodes, the taper's
# baseline). Never what the clinician prescribes in the period itself: adjusting for it would hide the
# practice being compared.
AGE_SEX_OUD = ("age_band", "sex", "opioid_use_disorder")
DOSE_WHY = ("Older patients and patients with opioid use disorder (for whom buprenorphine and methadone doses run "
            "high) are on higher doses for reasons that are not the prescriber's; dose also differs by sex.")
NEW_START_WHY = ("Age changes what is prescribed for acute pain (older patients receive shorter, weaker first "
                 "prescriptions) and opioid use disorder changes the risk of a first prescription becoming long-term.")
TAPER_WHY = ("How fast a taper can go depends on the dose it starts from (HHS 2019 advises slower tapers for "
             "patients on higher doses for longer), and on age and opioid use disorder, which guidelines ask "
             "clinicians to weigh.")

MEASURES: tuple[Measure, ...] = (
    Measure("high_dose_90", "Long-term patients at 90 MME a day or more",
            "Overdose risk rises with dose; CDC 2022 (recommendation 4) asks clinicians to avoid increasing "
            "to 90 MME or more without careful justification, and to weigh benefits and risks carefully from "
            "50. Differences between colleagues on this share suggest different thresholds in practice.",
            "long-term patients whose average daily MME (on days with supply) in the period is 90 or more",
            "patients on long-term opioid therapy in the period (Von Korff 2008)", "lower",
            "measure_ltot_dose", params={"threshold_mme": 90}, threshold="high", before="ltot", after="ltot",
            adjust_for=AGE_SEX_OUD, adjust_why=DOSE_WHY),
    Measure("high_dose_50", "Long-term patients at 50 MME a day or more",
            "50 MME a day is the level at which CDC 2022 asks for a careful reassessment of benefits and risks "
            "and for naloxone to be offered.",
            "long-term patients whose average daily MME in the period is 50 or more",
            "patients on long-term opioid therapy in the period", "lower",
            "measure_ltot_dose", params={"threshold_mme": 50}, threshold="low", before="ltot", after="ltot",
            adjust_for=AGE_SEX_OUD, adjust_why=DOSE_WHY),
    Measure("mean_daily_mme", "Average daily dose of long-term patients",
            "The typical dose a clinician's long-term patients take. Neither high nor low is good in itself "
            "(patients differ), so this is shown without a verdict; wide differences between colleagues with "
            "similar patients are worth a conversation.",
            "sum over long-term patients of their average daily MME", "patients on long-term opioid therapy",
            "neutral", "measure_ltot_dose", kind="mean", value_unit="MME a day", params={"threshold_mme": 90},
            before="ltot", after="ltot",
            adjust_why="An average dose is compared as observed only: it carries no verdict, and patient mix is "
                       "allowed for in the share measures that do."),
    Measure("benzo_overlap", "Opioids with benzodiazepines",
            "Taking benzodiazepines with opioids multiplies the risk of fatal overdose; CDC 2022 recommendation 11 "
            "asks clinicians to avoid it where possible (PQA measure COB).",
            "patients with 2 or more benzodiazepine fills and 30 or more days of overlapping supply",
            "patients with 2 or more opioid fills and 15 or more days' supply in the period", "lower",
            "measure_benzo_overlap", min_period="benzo_overlap", adjust_for=AGE_SEX_OUD + ("long_term_therapy",),
            adjust_why="Benzodiazepines are prescribed more to older patients and to women, and patients on long-term "
                       "opioid therapy have more fills in which an overlap can occur; a clinician cannot choose these. "
                       "Opioid use disorder changes what is safe to co-prescribe."),
    Measure("naloxone_at_50", "Naloxone for patients at 50 MME a day or more",
            "CDC 2022 recommendation 8: offer naloxone when the overdose risk is higher, including at 50 MME "
            "a day or more.",
            "those patients with a naloxone fill in the period",
            "patients whose average daily MME in the period is 50 or more", "higher", "measure_naloxone_at_50",
            params={"naloxone_mme": 50}, threshold="low", adjust_for=AGE_SEX_OUD + ("long_term_therapy",),
            adjust_why="Patients with opioid use disorder are offered naloxone more often (a recognised indication), "
                       "and long-term patients are seen more often; age and sex differ between practices."),
    Measure("new_start_over_7d", "New starts given more than 7 days",
            "For acute pain CDC 2022 (recommendation 6) advises no more than needed, often 3 days or fewer and "
            "rarely more than 7; long first prescriptions raise the chance of long-term use.",
            "new starts whose first supply is longer than 7 days",
            "new starts (no opioid supply in the 90 days before)", "lower", "measure_new_start_over_7d",
            before="lookback", adjust_for=AGE_SEX_OUD, adjust_why=NEW_START_WHY),
    Measure("new_start_long_acting", "New starts on a long-acting opioid",
            "CDC 2022 recommendation 3: start with immediate-release opioids, not extended-release or "
            "long-acting ones (PQA IOP-LA).",
            "new starts whose index fill is extended-release or long-acting", "new starts", "lower",
            "measure_new_start_long_acting", before="lookback", adjust_for=AGE_SEX_OUD, adjust_why=NEW_START_WHY),
    Measure("new_start_to_ltot", "New starts that become long-term",
            "Most long-term use begins as a short course; how often new starts become long-term differs "
            "between prescribers (Von Korff 2008 episode definition).",
            "new starts whose episode becomes long-term opioid therapy", "new starts", "lower",
            "measure_new_start_to_ltot", before="lookback", after="ltot", adjust_for=AGE_SEX_OUD,
            adjust_why=NEW_START_WHY),
    Measure("taper_rapid", "Tapers faster than 40% a month",
            "Rapid tapers are followed by more overdoses and mental-health crises (Agnoli 2021); HHS 2019 and "
            "CDC 2022 advise about 10% a month, individually and with the patient.",
            "tapers whose fastest monthly fall exceeds 40% of baseline",
            "tapers and discontinuations from a baseline of 50 MME a day or more", "lower", "measure_taper_rapid",
            before="baseline", after="followup", adjust_for=AGE_SEX_OUD + ("baseline_dose_band",), adjust_why=TAPER_WHY),
    Measure("abrupt_discontinuation", "Abrupt discontinuations",
            "Stopping opioids abruptly at a high dose is associated with overdose and suicide (Agnoli 2021; "
            "Neprash 2021 definition: 60 days without supply while the last 30 days were still at half the "
            "baseline or more).",
            "patients whose opioids stopped abruptly in the period",
            "patients with an eligible baseline (50 MME a day or more) in the period", "lower",
            "measure_abrupt_discontinuation", before="baseline", after="followup",
            adjust_for=AGE_SEX_OUD + ("baseline_dose_band",), adjust_why=TAPER_WHY),
    Measure("multiple_prescribers", "Patients with 4 or more opioid prescribers",
            "Many prescribers in a short time make care hard to coordinate and are a recognised risk marker "
            "(PQA OMP, HEDIS UOP). Compared between clinics, since no single clinician controls it.",
            "patients with opioid fills from 4 or more prescribers within 180 days",
            "patients with an opioid fill in the period", "lower", "measure_multiple_prescribers", unit="clinic",
            adjust_for=AGE_SEX_OUD + ("long_term_therapy",),
            adjust_why="Older patients and long-term patients see more clinicians for reasons of their health; "
                       "patients with opioid use disorder may be in treatment elsewhere."),
)
BY_ID = {m.id: m for m in MEASURES}
THRESHOLDS = {"low": 50.0, "high": 90.0}   # MME a day (CDC 2022 recommendation 4)


def configured(low: float = THRESHOLDS["low"], high: float = THRESHOLDS["high"]) -> tuple[Measure, ...]:
    """The measures with the dose thresholds the user chose: the bound parameter and the wording follow.

    Ids stay the same (high_dose_90 is still high_dose_90 at 80 MME) so links and exports keep working;
    titles and numerator text name the threshold in force.
    """
    chosen = {"low": low, "high": high}
    out = []
    for m in MEASURES:
        if not m.threshold:
            out.append(m)
            continue
        old, new = THRESHOLDS[m.threshold], chosen[m.threshold]
        key = next(iter(m.params))
        words = {f: getattr(m, f).replace(f"{old:g} MME", f"{new:g} MME").replace(f"is {old:g} or", f"is {new:g} or")
                 for f in ("title", "numerator", "denominator")}
        out.append(replace(m, params={**m.params, key: new}, **words))
    return tuple(out)


@dataclass(frozen=True)
class MeasureParams:
    """Thresholds of the measures that are not in DoseParams, LtotParams or TaperParams."""

    new_start_lookback: int = 90
    new_start_max_days: int = 7
    opioid_min_fills: int = 2
    opioid_min_days: int = 15
    benzo_min_fills: int = 2
    benzo_min_overlap: int = 30
    prescriber_window: int = 180
    prescriber_min: int = 4

    def sql(self) -> dict[str, object]:
        return dict(self.__dict__)


def needs(measure: Measure, ltot: dose.LtotParams = dose.LtotParams(), tapers: dose.TaperParams = dose.TaperParams(),
          other: MeasureParams = MeasureParams()) -> coverage.Needs:
    """The days of data a measure needs (its declaration's before/after/min_period, in days from the
    parameters in force), for analysis.coverage.measurable."""
    before = {"": (0, ""),
              "lookback": (other.new_start_lookback, f"{other.new_start_lookback} days of history (a new start has "
                                                     "no opioid supply in them)"),
              "baseline": (tapers.days_before, f"a {tapers.days_before}-day baseline"),
              "ltot": (ltot.judged_days, f"{ltot.judged_days} days to judge a long-term episode")}[measure.before]
    after = {"": (0, ""),
             "followup": (tapers.days_after, f"a {tapers.days_after}-day follow-up (the 60-day windows, the speed "
                                             f"and {tapers.stop_days} days without supply)"),
             "ltot": (ltot.judged_days, f"{ltot.judged_days} days to judge a long-term episode")}[measure.after]
    period = {"": (1, ""),
              "benzo_overlap": (other.benzo_min_overlap, f"{other.benzo_min_overlap} days of overlapping opioid and "
                                                         "benzodiazepine supply")}[measure.min_period]
    return coverage.Needs(before[0], after[0], period[0], before[1], after[1], period[1])


# The Overview's headline figures are computed from these measures' rows, so they need the same days.
HEADLINE_MEASURE = {"opioid_patients": "multiple_prescribers", "ltot_patients": "high_dose_90",
                    "share_low": "high_dose_50", "share_high": "high_dose_90", "tapers": "taper_rapid",
                    "share_rapid": "taper_rapid", "abrupt": "taper_rapid"}


def measurability(measure: Measure, start: dt.date, end: dt.date, data_start: dt.date, data_end: dt.date,
                  ltot: dose.LtotParams = dose.LtotParams(), tapers: dose.TaperParams = dose.TaperParams(),
                  other: MeasureParams = MeasureParams()) -> coverage.Measurability:
    """Whether a measure can be measured over start..end with data from data_start to data_end."""
    return coverage.measurable(needs(measure, ltot, tapers, other), start, end, data_start, data_end)


def sql_params(measure: Measure, start: dt.date, end: dt.date, data_start: dt.date, data_end: dt.date,
               dose_params: dose.DoseParams = dose.DoseParams(), ltot: dose.LtotParams = dose.LtotParams(),
               tapers: dose.TaperParams = dose.TaperParams(),
               other: MeasureParams = MeasureParams()) -> dict[str, object]:
    """Every bound parameter a measure's SQL may use, for one period (extra ones are ignored).
    need_before / need_after: the measure's days of data (needs), applied per patient to the patient's own
    record window (queries/_measurable_patients.sql)."""
    n = needs(measure, ltot, tapers, other)
    return {**dose_params.sql(), **ltot.sql(), **tapers.sql(data_start, data_end), **other.sql(),
            **dose.period_grid(start, end, "all"), "start": start, "end": end, **measure.params,
            "need_before": n.before, "need_after": n.after}


def unit_rows(rows: pd.DataFrame, measure: Measure) -> pd.DataFrame:
    """Per unit: unit_id, clinic_id, numerator, denominator, mean, sd (of `value`) from per-patient rows.
    When the rows carry `expected` (each patient's probability under the patient-mix model, analysis.casemix),
    also expected (E, its sum), chance_all and chance_none (the model's chance of every / no patient in the
    numerator: products of p and 1 - p, summed on the log scale)."""
    key = "clinician_id" if measure.unit == "clinician" else "clinic_id"
    if rows.empty:
        return pd.DataFrame(columns=["unit_id", "clinic_id", "numerator", "denominator", "mean", "sd"]
                            + (["expected", "chance_all", "chance_none"] if "expected" in rows else []))
    grouped = rows.assign(in_numerator=rows["in_numerator"].astype(bool)).groupby(key)
    out = pd.DataFrame({
        "clinic_id": grouped["clinic_id"].first(),
        # A mean's numerator is the sum of its patients' values (declared as such), not a count.
        "numerator": grouped["in_numerator"].sum().astype(int) if measure.kind == "proportion"
        else grouped["value"].sum(),
        "denominator": grouped.size().astype(int),
        "mean": grouped["value"].mean(),
        "sd": grouped["value"].std(ddof=1),
    })
    if "expected" in rows:
        p = rows["expected"].astype(float)
        chances = rows.assign(_log_all=np.log(p), _log_none=np.log1p(-p)).groupby(key)
        out["expected"] = chances["expected"].sum()
        out["chance_all"] = np.exp(chances["_log_all"].sum())
        out["chance_none"] = np.exp(chances["_log_none"].sum())
    out.index.name = "unit_id"
    return out.reset_index()


BASES = {"observed": "As observed", "adjusted": "Allowing for patient mix"}


def adjustable(measure: Measure) -> bool:
    """Whether the measure can be shown allowing for patient mix (a share that declares characteristics)."""
    return measure.kind == "proportion" and bool(measure.adjust_for)


def compare(units: pd.DataFrame, measure: Measure, basis: str = "observed", model: object = None) -> stats.Funnel:
    """Funnel limits, flags and shrunken rates for one measure's unit rows: as observed (shares or means),
    or, with basis "adjusted", standardised ratios O/E against the patient mix (units need `expected`,
    unit_rows; `model` is the analysis.casemix.Fit kept with the result)."""
    if basis == "adjusted":
        funnel = stats.funnel_ratios(units)
        return replace(funnel, model=model)
    if measure.kind == "mean":
        funnel = stats.funnel_means(units)
        shrunk = stats.shrink_means(funnel)
    else:
        funnel = stats.funnel_proportions(units)
        shrunk = stats.shrink_proportions(funnel.units)
    return stats.Funnel(shrunk, funnel.pooled, funnel.phi, funnel.tau2, funnel.limits, funnel.scale)


def compare_adjusted(rows: pd.DataFrame, mix: pd.DataFrame, measure: Measure, start: dt.date,
                     high_mme: float = THRESHOLDS["high"]) -> stats.Funnel | None:
    """The measure allowing for patient mix: the patient-level model fitted over all of `rows` (the measure's
    rows of every clinician in the comparison), each unit's O, E and O/E with funnel limits for ratios
    (stats.funnel_ratios). mix: queries/patient_mix.sql for the period starting `start`; high_mme: the high
    dose threshold in force (the taper measures' baseline dose band). None when the measure is not
    adjustable or the model has nothing to fit (analysis.casemix.fit)."""
    if not adjustable(measure) or rows.empty:
        return None
    rows = casemix.characteristics(rows, mix, start, high_mme)
    fitted = casemix.fit(rows, measure.adjust_for)
    if fitted is None:
        return None
    expected, model = fitted
    return compare(unit_rows(rows.assign(expected=expected), measure), measure, "adjusted", model)


def quarters(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Calendar quarters overlapping start..end, clipped to it."""
    grid = dose.period_grid(start, end, "quarter")
    out = []
    for i in range(grid["n_periods"]):
        q_start = dose.add_months(grid["start"], 3 * i)
        q_end = dose.add_months(grid["start"], 3 * (i + 1)) - dt.timedelta(days=1)
        out.append((max(q_start, start), min(q_end, end)))
    return out


def describe_value(value: float, measure: Measure) -> str:
    """A value as people read it: 12.5% for shares, 48.2 MME a day for means."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.1%}" if measure.kind == "proportion" else f"{value:.1f} {measure.value_unit}"
