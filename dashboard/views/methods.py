"""Methods: every measure's declaration and SQL, the MME factors with sources, the parameters in force."""
from __future__ import annotations

import csv
import dataclasses
from importlib import resources

import pandas as pd
import streamlit as st

import queries
from analysis import casemix, dose, feedback, measures, stats, trends
from analysis.display import md
from dashboard import data, filters, viewer


# The factor table's columns in words (analysis/reference/mme_factors.csv keeps the engineers' names).
FACTOR_COLUMNS = {"factor_set_label": "Factor set", "ingredient": "Ingredient", "form_group": "Dose form",
                  "strength_unit": "Unit", "mme_factor": st.column_config.NumberColumn("MME per unit", format="%.2f"),
                  "quantity_multiplier": "Quantity multiplier", "methadone_tier": "Methadone tier (mg a day)",
                  "source": "Source", "factor_set": "Name for --factor-set"}
# Short names, so that the table fits 1280 px (the sidebar's choice spells them out: dose.FACTOR_SETS).
FACTOR_SET_SHORT = {"cdc2022": "CDC 2022", "cdc2016": "CDC 2016", "cdc_file_2018": "CDC data file 2018"}
FORM_GROUPS = {"any": "any form", "transdermal": "patch", "transmucosal_tablet": "buccal or sublingual tablet, lozenge",
               "transmucosal_film": "buccal film", "oral_spray": "oral spray", "nasal_spray": "nasal spray", "other": "other"}


def _factor_table() -> pd.DataFrame:
    """analysis/reference/mme_factors.csv as shown: plain set and form names, one methadone tier column, the factor
    as a number (2 decimals on screen), the set's name for `--factor-set` last."""
    text = resources.files("analysis").joinpath("reference/mme_factors.csv").read_text(encoding="utf-8")
    f = pd.DataFrame(list(csv.DictReader(text.splitlines())))

    def tier(above: str, up_to: str) -> str:
        if not above and not up_to:
            return ""
        return f"above {above}" if not up_to else f"{above or 0} to {up_to}"

    return pd.DataFrame({
        "factor_set_label": f["factor_set"].map(lambda s: FACTOR_SET_SHORT.get(s, s)),
        "ingredient": f["ingredient"], "form_group": f["form_group"].map(lambda g: FORM_GROUPS.get(g, g)),
        "strength_unit": f["strength_unit"], "mme_factor": f["mme_factor"].astype(float),
        "quantity_multiplier": f["quantity_multiplier"].astype(int),
        "methadone_tier": [tier(a, b) for a, b in zip(f["daily_mg_above"], f["daily_mg_up_to"])],
        "source": f["source"], "factor_set": f["factor_set"]})


# analysis/reference/condition_codes.csv in words: what each value set sets, and its code systems.
CONDITION_USES = {
    "cancer": "Cancer: excluded",
    "sickle_cell": "Sickle cell disease: excluded",
    "hospice_palliative": "Hospice or palliative care: excluded",
    "opioid_use_disorder": "Opioid use disorder: recorded, used by no measure",
    "overdose": "Opioid overdose: an event",
}
CODE_SYSTEMS = {"ICD10CM": "ICD-10-CM", "SNOMED": "SNOMED CT"}


def _condition_codes() -> pd.DataFrame:
    """The diagnosis value sets (analysis/reference/condition_codes.csv), one row per code: what it sets,
    the code system, the code (an ICD-10-CM prefix ends in "…": every code starting so), description, source."""
    text = resources.files("analysis").joinpath("reference/condition_codes.csv").read_text(encoding="utf-8")
    c = pd.DataFrame(list(csv.DictReader(text.splitlines())))
    return pd.DataFrame({
        "use": c["flag"].map(lambda f: CONDITION_USES.get(f, f)), "system": c["system"].map(lambda s: CODE_SYSTEMS.get(s, s)),
        "code": [f"{code}…" if match == "prefix" else code for code, match in zip(c["code"], c["match"])],
        "description": c["description"], "source": c["source"]})


def _ndc_reference() -> str:
    """Which NDC reference identifies drugs by code: the edition(s) in the database's ref_ndc, in one line."""
    try:
        editions = data.query("ndc_reference")
    except data.DataUnavailable:
        editions = pd.DataFrame()
    if editions.empty:
        return ("No NDC reference is in the database yet: the first `rxdash load` puts the bundled one there "
                "(CDC oral MME file, September 2017, with naloxone products from FDA labels).")
    origin = {"bundled": "bundled with rxdash", "loaded": "loaded with `rxdash reference ndc`"}
    return "NDC reference in force: " + "; ".join(
        f"**{md(r.edition)}** ({origin.get(r.origin, md(r.origin))}, {r.products:,} products: "
        f"{md(str(r.drug_classes).replace('_', ' '))})"   # opioid_analgesic reads as opioid analgesic
        for r in editions.itertuples()) + "."


def _days(v) -> str:
    return f"{v:g} day" + ("" if v == 1 else "s")


def _pct(v) -> str:
    """A fraction (0.15) as a share of the baseline ("15%")."""
    return f"{v * 100:g}%"


# Every parameter in force, in words (README "Methods: the dose engine"): (what it sets, its value in words).
# The code's names (analysis/dose.py, analysis/measures.py) are shown after, for engineers.
PARAMETER_WORDS = {
    "factor_set": ("MME conversion factors", lambda v: dose.FACTOR_SETS.get(v, str(v))),
    "exclude": ("Exclusions", lambda v: "on (cancer, hospice or palliative care, sickle cell disease)" if v
                else "off: every patient counted"),
    "gap_days": ("Longest gap in supply inside one episode", _days),
    "min_days": ("An episode is long-term when it lasts more than", _days),
    "min_fills": ("… and has at least (fills)", lambda v: f"{v:g} fills"),
    "min_supply": ("… or at least (days' supply)", lambda v: f"{v:g} days' supply"),
    "baseline_days": ("Baseline: the average daily dose over the days before a taper", _days),
    "baseline_min_mme": ("Lowest baseline for a taper", lambda v: f"{v:g} MME a day"),
    "min_fall": ("A taper is a fall of at least", lambda v: f"{_pct(v)} of the baseline"),
    "window_months": ("… in the average of a window of", lambda v: f"{30 * v:g} days"),
    "followup_months": ("… starting within (the follow-up)", lambda v: f"{v:g} months of 30 days ({30 * v:g} days)"),
    "min_level_days": ("A lower dose must last at least, to start a taper", _days),
    "stop_days": ("Days without supply that make a discontinuation", _days),
    "abrupt_fraction": ("A discontinuation is abrupt when the last 30 days' dose was still at least",
                        lambda v: f"{_pct(v)} of the baseline"),
    "gradual_max_pct": ("Gradual taper: fastest monthly fall at most", lambda v: f"{v:g}% of the baseline a month"),
    "rapid_min_pct": ("Rapid taper: fastest monthly fall more than", lambda v: f"{v:g}% of the baseline a month"),
    "new_start_lookback": ("A new start has no opioid supply in the days before", _days),
    "new_start_max_days": ("A new start's first supply is long when it is over", _days),
    "opioid_min_fills": ("Opioids with benzodiazepines: opioid fills at least", lambda v: f"{v:g} fills"),
    "opioid_min_days": ("… and opioid supply at least", _days),
    "benzo_min_fills": ("… benzodiazepine fills at least", lambda v: f"{v:g} fills"),
    "benzo_min_overlap": ("… overlapping supply at least", _days),
    "prescriber_window": ("Multiple prescribers: counted within", _days),
    "prescriber_min": ("… at least (prescribers)", lambda v: f"{v:g} prescribers"),
}
# A measure's own parameter (Measure.params), in words.
MEASURE_PARAMETER_WORDS = {"threshold_mme": "dose threshold {:g} MME a day",
                           "naloxone_mme": "naloxone expected from {:g} MME a day"}


def _parameters(obj: object, part: str) -> pd.DataFrame:
    """One row per field of a parameter dataclass: setting (words), value (words and units), part, parameter
    (the field's name in the code)."""
    rows = []
    for f in dataclasses.fields(obj):
        words, value = PARAMETER_WORDS[f.name]   # a parameter without words fails here, and in the tests
        rows.append({"setting": words, "value": value(getattr(obj, f.name)), "set in": part, "parameter": f.name})
    return pd.DataFrame(rows)


def _measure_parameters(params: dict) -> str:
    """A measure's parameters in words, each with its name in the SQL after it ("dose threshold 90 MME a day
    (`threshold_mme`)")."""
    return "; ".join(MEASURE_PARAMETER_WORDS.get(k, k + " {}").format(v) + f" (`{k}`)" for k, v in params.items())


def _patient_mix(f) -> None:
    """How the comparison allows for patient mix, what each measure is adjusted for and why, and the model's fit
    for the sidebar's period and selection (discrimination and calibration by tenth of predicted risk)."""
    st.subheader("Allowing for patient mix")
    st.markdown(
        "Clinicians whose patients are older, have opioid use disorder or came to them already on high doses can "
        "differ from colleagues for reasons that are not their practice. *Allowing for patient mix* (Clinician "
        "variation, the profile, the report pack and the letters) compares each clinician's **observed** count O "
        "with the count **expected** E for their own patients: one logistic regression (statsmodels, binomial "
        "GLM) over every patient of all the clinicians compared gives each patient a probability from the "
        "characteristics the measure names; E is the sum over the clinician's patients, and O/E the standardised "
        "ratio (indirect standardisation). 1 means as expected for those patients. Funnel limits for ratios "
        "(Spiegelhalter 2005, as FunnelPlotR's standardised-ratio funnels): exact Poisson around E; with "
        "overdispersion, z = 2(√O − √E) winsorised at 10% gives φ, and additive random-effects limits "
        "(1 ∓ z√(1/4E + τ²))² replace them. The small-number rules stay: fewer than "
        f"{stats.MIN_DENOMINATOR} patients are too few to judge, and a clinician at 0% or 100% is flagged only "
        "when the model's chance of all (or none) of their patients is below 0.1%. Ranked ratios are shrunk "
        "with a Poisson-gamma empirical-Bayes prior. Characteristics are only those present before the "
        "clinician's decision; what the clinician prescribes in the period is never adjusted for, since that is "
        "the practice being compared. The model is refitted for each period and selection, with at least "
        f"{casemix.MIN_PATIENTS_TO_FIT} patients, some in the numerator and some not.")
    st.table(pd.DataFrame({c.label.capitalize(): [c.levels] for c in casemix.CHARACTERISTICS.values()}).T
             .rename(columns={0: "Levels"}))
    for m in (f.measures() if f else measures.MEASURES):
        if m.unit == "clinician" or measures.adjustable(m):
            with st.expander(f"{m.title}: " + (f"adjusted for {casemix.label_list(m.adjust_for)}"
                                               if measures.adjustable(m) else "shown as observed")):
                st.markdown(f"**Why.** {m.adjust_why}")
                if not (f and measures.adjustable(m)):
                    continue
                try:
                    fitted = data.compared(m, f.measure_params(m), f.clinicians, "adjusted", f.high_mme)
                except data.DataUnavailable as e:
                    st.error(str(e), icon=":material/error:")
                    continue
                if fitted is None:
                    st.caption(f"No model {f.span}: fewer than {casemix.MIN_PATIENTS_TO_FIT} patients, or every one "
                               "(or none) in the numerator.")
                    continue
                fit = fitted.model
                st.markdown(f"**Model fit {f.span}** ({fit.patients:,} patients, {fit.events:,} in the numerator): "
                            f"discrimination (c-statistic, the area under the ROC curve) **{fit.c_statistic:.2f}** "
                            "(0.5: the characteristics tell nothing about who is in the numerator; 1: everything). "
                            "A modest figure is expected and is no fault: it says patient mix explains little of the "
                            "difference, so the adjusted and observed comparisons will agree." + (
                                f" {md(fit.note)}" if fit.note else ""))
                cal = fit.calibration.assign(observed=fit.calibration["observed"] * 100,
                                             expected=fit.calibration["expected"] * 100)
                st.dataframe(cal, hide_index=True, column_config={
                    "group": st.column_config.NumberColumn("Group (lowest risk first)", format="%d"),
                    "patients": "Patients",
                    "observed": st.column_config.NumberColumn("Observed share", format="%.1f%%"),
                    "expected": st.column_config.NumberColumn("Expected share", format="%.1f%%")})
                st.caption("Calibration: patients in up to ten groups cut at the tenths of predicted probability, "
                           "lowest first (patients with the same prediction stay in one group, so there are fewer "
                           "groups when many share one); a well-calibrated model's expected share is close to the "
                           "observed in each.")
                if len(fit.terms):
                    st.dataframe(fit.terms.assign(term=fit.terms["term"].map(lambda t: casemix.CHARACTERISTICS[t].label)),
                                 hide_index=True, column_config={
                                     "term": "Characteristic", "level": "Level", "reference": "Against",
                                     "odds_ratio": st.column_config.NumberColumn("Odds ratio", format="%.2f"),
                                     "lower_95": st.column_config.NumberColumn("95% from", format="%.2f"),
                                     "upper_95": st.column_config.NumberColumn("95% to", format="%.2f")})


def _over_time() -> None:
    """How the pages and the digest follow clinicians over time (analysis.trends)."""
    st.subheader("Over time")
    st.markdown(
        "**Decile charts** (Clinician variation, *Over time*; the profile): for each quarter, the 10th to 90th "
        f"centiles of the clinicians' values, over those with at least {stats.MIN_DENOMINATOR} cases that quarter "
        f"and only when at least {stats.MIN_UNITS} have them (the median bold), as OpenPrescribing draws them; one "
        f"clinician's own line on top, in quarters with at least {stats.MIN_DENOMINATOR} cases. Only quarters "
        "measured in full are drawn.\n\n"
        "**What moved** (the Overview, the *Over time* tab, `rxdash digest`): each quarter, a clinician's figure "
        "is set against the pooled figure of all clinicians compared, in standard errors, z = (value − pooled) / "
        "√(se² + τ²): observed minus expected, allowing for the ordinary differences between colleagues (τ², as "
        "the funnel's limits do), so a movement of everyone together is not a clinician's change. A two-sided "
        f"CUSUM (Page 1954; Montgomery's tabular form) follows z against the clinician's own level (the mean z of "
        f"their first {trends.REFERENCE} quarters): S⁺ = max(0, S⁺ + d − k), S⁻ = max(0, S⁻ − d − k), with "
        f"d = z − level counted at most ±h, k = {trends.K} and h = {trends.H} standard errors. A sustained shift is "
        f"reported when a sum crosses h after at least {trends.MIN_QUARTERS} quarters that pushed it up: one "
        "unusual quarter, however large, never is. It is dated from the quarter the sum last left zero, and the "
        "clinician's level then becomes the new one, so each shift is reported once. The judgement looks back over "
        f"the {trends.HISTORY} quarters up to the quarter judged (from the data's first). A quarter with fewer "
        f"than {stats.MIN_DENOMINATOR} cases, or not measured in full, does not enter. `rxdash digest --quarter "
        "2025Q4` writes, for a committee, what moved, who went outside or came inside the limits since the "
        "quarter before, and how the variation between clinicians changed.")


def render() -> None:
    viewer.require("methods")
    st.title("Methods")
    st.markdown("Every number on these pages comes from a declared measure, its SQL and the parameters "
                "below. Definitions follow the CDC 2022 guideline, the HHS 2019 guide on dose reduction, "
                "Von Korff 2008 (long-term therapy), Fenton 2019 and Agnoli 2021 (tapers), Neprash 2021 "
                "(abrupt discontinuation) and Spiegelhalter 2005 (funnel plots and overdispersion).")
    st.subheader("Attribution")
    st.write(measures.ATTRIBUTION_RULE)
    f = st.session_state.get(filters.STATE)   # the sidebar's choices, when there are data
    excluded = (f.dose() if f else dose.DoseParams()).exclude
    st.write(f"Exclusions: {'on' if excluded else 'off (as chosen in the sidebar)'}. With exclusions on (the default), "
             f"{measures.EXCLUSIONS} are left out of every measure; the diagnosis codes that mark them are listed "
             "under \"Diagnoses behind the flags and events\" below.")
    st.subheader("Measures")
    for m in (f.measures() if f else measures.MEASURES):
        with st.expander(f"{m.title} ({m.id})"):
            st.markdown(f"**Why it matters.** {m.why}")
            st.markdown(f"**Numerator:** {m.numerator}.  \n**Denominator:** {m.denominator}.  \n"
                        f"**Better when:** {m.direction}.  \n**Compared between:** {m.unit}s.  \n"
                        f"**Authored by** {m.authored_by}; **checked by** {m.checked_by}; "
                        f"**reviewed** {m.reviewed_on}; **next review** {m.next_review}.")
            if m.params:
                st.markdown("**Measure parameters:** " + _measure_parameters(m.params) + ".")
            st.markdown(f"**SQL** (`queries/{m.query}.sql`, shared steps included):")
            st.code(queries.load(m.query), language="sql")

    st.subheader("Comparing fairly")
    st.markdown(
        "Funnel limits at 95% and 99.8% around the pooled value: exact binomial with interpolation for "
        "shares, normal for means. Overdispersion: z-scores winsorised at 10% at each end give φ; when φ > 1 "
        "and the DerSimonian–Laird τ² is above zero, additive random-effects limits are used. A unit outside "
        f"the 99.8% limits is flagged, except that units with fewer than {stats.MIN_DENOMINATOR} patients are "
        "never flagged. Rankings use empirical-Bayes shrunken values with 95% intervals.")
    st.markdown(
        f"- **Too few to judge.** A clinician (or clinic) with fewer than {stats.MIN_DENOMINATOR} patients, tapers "
        "or new starts in a measure is *too few to judge*: drawn as a hollow marker, listed as such in tables and "
        "files, never counted as within or outside the limits. When nobody reaches the minimum, pages say so "
        f"(\"No clinician has the {stats.MIN_DENOMINATOR} tapers needed to be judged\").\n"
        "- **0% and 100%.** The interpolated upper limit is just below 100% whenever all n is a likely count, so "
        "a unit at n/n (or 0/n) is flagged only when chance cannot explain it: the chance of all (or none) of its "
        "n cases under the pooled rate is below 0.1% (binomial with exact limits; beta-binomial with the same τ² "
        "when random-effects limits are used). Twelve clinicians each at 12 of 12 (pooled 100%) are all within.\n"
        "- **Shrinkage that stays sane.** The beta prior is fitted by maximum likelihood with a ≥ 1, b ≥ 1 (no more "
        "U-shaped than uniform, so with one or two cases each no figure is shrunk to exactly 0% or 100% and every "
        "interval contains its estimate) and a + b at most the total number of cases (a prior cannot carry more "
        "information than all the data it came from, so intervals are never narrower than the data). Shrunken "
        "means carry the uncertainty of the pooled mean too (Morris 1983); limits and intervals for doses never go "
        "below zero.\n"
        f"- **Too few to estimate.** The median odds ratio and the 90th/10th centile ratio are computed over units "
        f"with at least {stats.MIN_DENOMINATOR} cases, only when at least {stats.MIN_UNITS} such units exist (the "
        "ratio also needs a 10th centile above zero); otherwise they read *too few to estimate*. The Overview, the "
        "Clinician variation page and the report pack quote the same period figure (`stats.indices`); the report's "
        "quarterly trend uses only the quarters where it can be estimated.\n"
        f"- **Peers** (profile page and letters alike): {feedback.PEER_RULE}. The sidebar's minimum only "
        "decides who is drawn.\n"
        "- **One population per page.** The Overview's monthly chart counts the headline's patients: exclusions "
        "applied, each patient counted for the clinician the period attributes them to.")

    _patient_mix(f)
    _over_time()

    st.subheader("Parameters in force" if f else "Parameters in force (defaults)")
    if f:
        st.caption(f"Period {f.period}; {md(f.scope)}; high-dose thresholds {f.low_mme:g} and {f.high_mme:g} MME a day "
                   "(as chosen in the sidebar).")
    st.dataframe(pd.concat([_parameters(f.dose() if f else dose.DoseParams(), "dose"),
                            _parameters(dose.LtotParams(), "long-term therapy"),
                            _parameters(f.tapers() if f else dose.TaperParams(), "tapers"),
                            _parameters(measures.MeasureParams(), "measures")], ignore_index=True),
                 hide_index=True, width="stretch",
                 column_config={"setting": st.column_config.TextColumn("Setting", width=280),
                                "value": st.column_config.TextColumn("Value", width=300),
                                "set in": st.column_config.TextColumn("Part", width=100),
                                "parameter": st.column_config.TextColumn(
                                    "Name in the code", help="analysis/dose.py and analysis/measures.py", width=130)})

    st.subheader("The data's start and end")
    st.markdown(
        "Some figures need days of data before the day they measure (a taper's baseline, a new start's "
        "look-back) or from it on (a taper's follow-up and its days without supply, the time it takes to call an "
        "episode long-term), and some need a period of a certain length. Each measure declares those days once, "
        "and one rule applies everywhere: **day d can be measured when d − before is on or after the data's first "
        "fill date and d + after − 1 is on or before the extract date** (given when the data were loaded, else the last "
        "fill date). A period is *complete* (the figure is shown), "
        "*provisional* (some days cannot be measured: the figure is shown marked, never compared), *not "
        "measurable yet* (no day can: the words replace the figure) or *needs a period of at least N days* (the "
        "measure's own window does not fit: the words replace the figure). Cards, tables, charts (shaded months), "
        "exports, the report pack and the letters all use it.")
    st.markdown(
        "**Each patient's own record.** A patient's data may end before the extract date (an observation period "
        "closes, enrolment ends, the patient dies): patients.csv may give each patient's record start and end dates (`record_start`, `record_end`). The "
        "same rule then applies per patient, inside that window: supply that stops within 60 days of a record's "
        "end is not a discontinuation (a record that ends is not a stop), baselines, follow-ups and look-backs "
        "use only days inside it, and a patient whose window holds no measurable day of the period is left out "
        "of the measure rather than counted as 0.")
    if f:
        st.caption(f"The data run from the first fill on {f.data_start:%d %b %Y} to the extract date, {f.data_end:%d %b %Y}; the period is {f.period}.")
    rows = []
    for m in (f.measures() if f else measures.MEASURES):
        n = measures.needs(m, tapers=f.tapers() if f else dose.TaperParams())
        row = {"measure": m.title, "days before": n.before or "–", "days from the day on": n.after or "–",
               "shortest period (days)": n.min_period if n.min_period > 1 else "–",
               # dict.fromkeys: a reason shared by the days before and after is said once
               "why": "; ".join(dict.fromkeys(x for x in (n.before_why, n.after_why, n.period_why) if x))
                      or "nothing outside the period"}
        if f:
            state = f.measurability(m)
            row["this period"] = state.word or "complete"
            row["measurable part"] = (f"{state.first:%d %b %Y} to {state.last:%d %b %Y}" if state.first else "none")
        rows.append(row)
    st.dataframe(pd.DataFrame(rows).astype(str), hide_index=True, width="stretch")

    st.subheader("Choices behind the pages")
    st.markdown(
        "- **Filters.** Choosing clinics or specialties keeps the patients attributed to those clinicians; "
        "the pooled value and the limits are then those of the selection. Clinicians under the sidebar's "
        "minimum number of patients still count in the pooled value and limits; they are only not drawn.\n"
        "- **Stored at load.** Long-term episodes and tapers are measured when data are loaded, with the "
        "parameters above; the taper speed bands and the abrupt fraction apply when they are read, so the "
        "sidebar can change them. Changing any other taper parameter needs a new load.\n"
        "- **Previous period.** Calendar-aligned: whole calendar months are compared with the same number of "
        "months just before (2025 with 2024, a quarter with the previous quarter, a month with the previous "
        "month); any other period with the same number of days just before. A figure shows a change only when "
        "both periods are complete for it.\n"
        "- **Default period.** The latest twelve whole calendar months of data (the calendar year when the data "
        "end on 31 December); with less, the last 365 days. Figures near the data's end are marked provisional "
        "rather than the period moved back to an older, complete one.\n"
        "- **Roles.** Leaders see clinicians' names; committees see pseudonyms; a clinician sees their own "
        "profile, named, beside anonymous peers; admins see the data pages and the audit log. Small counts are "
        "suppressed in every exported file whatever the role.\n"
        "- **Pseudonyms.** Clinicians are shown as a keyed hash of their id (stable within a deployment); "
        "patients never appear, and taper trajectories show days from the start, not dates.\n"
        "- **Events after tapers** are described by speed band, not attributed to the taper: who was tapered, "
        "and why, differs between bands.\n"
        "- **Where clinicians differ most** ranks measures by the median odds ratio (Merlo 2006); the average "
        "dose, which has none, by the ratio of the 90th to the 10th centile of shrunken values.\n"
        "- **The report pack's reading** counts the judged units outside the 99.8% limits, quotes the period's "
        "variation index (the Overview's figure) and compares the first and last quarter where it can be "
        "estimated: a change of more than 5% is 'narrowed' or 'widened'.\n"
        "- **Feedback letters' top-performer benchmark** is the Achievable Benchmark of Care (Kiefe 2001): "
        "clinicians ranked by (x + 1) / (n + 2), best first, until they hold 10% of the patients; their pooled "
        "rate, for measures with a better direction only. A letter shows no figure for a measure with fewer than "
        "11 of the clinician's patients, and its peers are the profile page's (see Peers above).")

    st.subheader("Identifying drugs by code")
    st.markdown(
        "- **Precedence.** A prescription's own ingredient, strength and unit fields win; else its NDC's product "
        "in the NDC reference, else its RxCUI's in the RxCUI reference (the NDC first: it names the package "
        "dispensed), any field the row gives still winning; else its drug name is read. The Data quality page "
        "counts prescriptions by how they were identified.\n"
        "- **NDC shapes.** 11 digits (5-4-2) and the FDA's 10-digit shapes with hyphens (4-4-2, 5-3-2, 5-4-1: the "
        "short segment gets a leading zero, the CMS 11-digit rule) match the same product. A number that lost its "
        "leading zeros in a spreadsheet (406037801) is read every way it could be, and matches only when exactly "
        "one reading is in the reference.\n"
        "- **Other drugs.** A row whose NDC or RxCUI is in neither reference, and whose name and fields name no "
        "opioid, benzodiazepine, buprenorphine or naloxone product, is skipped and counted (not an error; read = "
        "loaded + skipped + rejected). A row whose code is unknown but whose name reads as one of ours loads as "
        "before.\n"
        "- **References.** NDC: the CDC oral MME conversion file (Opioids and Benzos sheets) plus naloxone "
        "products read from FDA labels (the CDC file lists none); a newer CDC file can be loaded with "
        "`rxdash reference ndc FILE`. RxCUI: OMTK (opioids, Apache-2.0) and the CDC opioid CDS value sets for "
        "benzodiazepines, naloxone and buprenorphine (CC0); RxNorm content is from the U.S. National Library "
        "of Medicine. Sources and editions: analysis/reference/README.md.")
    st.markdown(_ndc_reference())

    st.subheader("Prescribing orders")
    st.markdown(
        "- **Supply from an order.** Where prescriptions.csv holds orders (an EHR's start, end and sig) rather than "
        "dispensings, the quantity and the days' supply (`quantity`, `days_supply`) may be blank: the days come from "
        "the order's last day (`end_date`, inclusive), or the quantity ÷ the units a day (`units_per_day`, rounded "
        "up), or, for an open order, run to the extract date; the quantity is the units a day × the days. Given "
        "values win.\n"
        "- **Days but no quantity.** Supply whose quantity nothing gives (no quantity and no units a day, but the "
        "days known from the days' supply or the end date: an OMOP extract with quantity 0 everywhere, a FHIR order "
        "with no sig) is loaded with its quantity unknown: its days count as supply, and its dose is unknown "
        "(see \"Dose unknown\" below).\n"
        "- **Nothing is assumed.** A row that nothing gives days to is rejected with its reason: no quantity, units "
        "a day, days' supply or end date (`no_quantity`); a quantity of 0 and no units a day "
        "(`non_positive_quantity`); days' supply blank or 0 with neither an end date nor units a day "
        "(`missing_days_supply`, `non_positive_days_supply`).\n"
        "- **Consecutive fills.** An order longer than the longest fill (30 days unless `rxdash load "
        "--max-fill-days` says otherwise) is stored as fills of that many days, the last taking the days left, "
        "each at the order's daily dose; the first keeps the prescription's id (`rx_id`), the others are "
        "`<rx_id>~fill2`, `~fill3`, ....\n"
        "- **Cut at the extract date.** What an order plans beyond the extract date had not happened when the data "
        "were extracted: its fills stop there (the one spanning it ends on it, its quantity in proportion). Load "
        "order data with `rxdash load --extract-date`.\n"
        "- **Measured or inferred.** Each prescription records where its quantity and days came from "
        "(`quantity_source`): both given, a dispensing, measured (`given`); worked out from an order's sig and "
        "days (`sig_days`, `sig_end`, `sig_open`, `qty_end`, `qty_sig`); or days given, or days to the end date, "
        "with no quantity, dose unknown (`days_only`, `end_only`). The Data quality page shows the split. A dose "
        "from an order is what was prescribed, not what was dispensed.")

    st.subheader("Diagnoses behind the flags and events")
    st.markdown(
        "Contract files give each patient's flags directly (patients.csv: cancer, hospice or palliative care, "
        "sickle cell disease, opioid use disorder; true or false, blank meaning false). An OMOP or FHIR source "
        "(`rxdash load --format omop` or `fhir`) gives diagnoses instead: a flag is true when any diagnosis of "
        "the patient, at any date, is in the flag's value set below (the flags carry no dates), and a diagnosis "
        "in the overdose set is an overdose event on its date. ICD-10-CM codes match by prefix (every code "
        "starting with it, the dot ignored: T40.2X1A is in T402…), SNOMED CT codes exactly (a concept's "
        "descendants are not added). CMS Part D event files carry no diagnoses: their flags are false, and the "
        "load notes that the exclusions cannot be applied. The codes and their sources are in "
        "analysis/reference/condition_codes.csv.")
    st.dataframe(_condition_codes(), hide_index=True, width="stretch",
                 column_config={"use": "Used for", "system": "Code system", "code": "Code",
                                "description": "Description", "source": "Source"})

    st.subheader("MME conversion factors")
    st.markdown(
        "- **Drug spellings.** Units and dose forms are read in one place (`analysis/vocabulary.py`), for drug "
        "names and given fields alike: mcg, ug and µg are micrograms; MCG/HR, mcg/h and MCG/1HR are a patch's "
        "mcg per hour (any strength per hour is a patch); MG/5ML is 1 mg per mL; MG/ACTUAT and 'mcg per spray' "
        "are per spray, with the quantity counting sprays. Dose forms in RxNorm, FDA and CDC spellings "
        "('Transdermal System', 'PATCH, EXTENDED RELEASE'; 'Buccal Tablet', 'TABLET; BUCCAL', 'Lozenge'; "
        "'Buccal Film'; 'Sublingual Spray'; 'Nasal Spray', 'SPRAY; NASAL') pick the factor's form group.\n"
        "- **Transmucosal fentanyl** has factors only in the CDC MME data file (tablets and lozenges 0.13 per "
        "mcg, films and oral sprays 0.18, nasal spray 0.16). The CDC 2022 and 2016 tables list fentanyl only "
        "as transdermal, so under them its dose is unknown.\n"
        "- **Dose unknown, never 0 MME.** A prescription's dose is unknown when its drug has no factor in the "
        "chosen set (tramadol and tapentadol under CDC 2016, transmucosal fentanyl under CDC 2022 and CDC 2016, a "
        "unit outside the vocabulary), or when its quantity is unknown, under every set: supply with days but no "
        "quantity (`quantity_source` `days_only` or `end_only`, dose status `no_quantity`; see Prescribing orders). "
        "Such a prescription still counts as days with supply (long-term therapy, new starts, overlaps, multiple "
        "prescribers, and no false gap that would look like a stop), but a patient with one in supply on any day "
        "of the period is left out "
        "of the dose-based measures (high dose at 50 and 90, average dose, naloxone at 50, tapers and abrupt "
        "discontinuations, whose baseline and follow-up must have a known dose), because the known part "
        "alone would understate the dose. The pages say how many are left out, and the Overview warns when "
        "more than 1% of the period's opioid prescriptions have no dose under the chosen set.")
    st.dataframe(_factor_table(), hide_index=True, width="stretch", column_config=FACTOR_COLUMNS)
    st.caption("A patch's quantity multiplier is the 3 days it is worn (CDC 2022 and 2016: 2.4 per mcg/hr worn; the "
               "CDC data file's 7.2 already holds the 3 days); "
               "methadone's CDC 2016 tiers apply to the patient's total methadone mg on each day.")
