"""The clinician comparison for a period, as the tables `rxdash summarize` writes.

`measure_table`, `consistency_table` and `taper_table` fetch and compute; `suppress` and `patient_key`
are pure and carry the privacy rules (DESIGN.md "Privacy and access"): counts from 1 to min_cell - 1 are
suppressed with complementary suppression, and patients appear only as a keyed hash.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from analysis import coverage, db, disclosure, dose, exports, measures, outputs, redact, stats

MEASURE_COLUMNS = ["measure_id", "unit", "clinician_id", "clinic_id", "numerator", "denominator", "value",
                   "pooled_value", "lower_95", "upper_95", "lower_998", "upper_998", "flag", "shrunk_value",
                   "shrunk_lower", "shrunk_upper", "limits", "phi", "tau2"]
# Allowing for patient mix (analysis.casemix; blank for a measure shown only as observed): expected count E,
# the standardised ratio O/E with its limits and flag, the share at the average patient mix, and what the
# patient-level model adjusted for.
ADJUSTED_COLUMNS = ["adjusted_for", "expected", "ratio", "ratio_lower_95", "ratio_upper_95", "ratio_lower_998",
                    "ratio_upper_998", "adjusted_flag", "adjusted_share"]
# Whether the period can be fully measured (analysis.coverage): complete, provisional (with the days that
# can be), or a word instead of any figure (not measurable yet; needs a period of at least N days).
MEASUREMENT_COLUMNS = ["measurement", "measurable_from", "measurable_to", "measurement_note"]
# Columns that give away a suppressed count (value x denominator = numerator; shrunk values likewise).
DERIVED = ["numerator", "value", "shrunk_value", "shrunk_lower", "shrunk_upper", "ratio", "adjusted_share"]
SALT_ENV = "RXDASH_PATIENT_KEY_SECRET"


@dataclass(frozen=True)
class Settings:
    """Everything that changes the numbers, so it can be written beside them."""

    start: dt.date
    end: dt.date
    dosing: dose.DoseParams = dose.DoseParams()
    ltot: dose.LtotParams = dose.LtotParams()
    tapers: dose.TaperParams = dose.TaperParams()
    other: measures.MeasureParams = measures.MeasureParams()
    min_cell: int = 11
    low_mme: float = measures.THRESHOLDS["low"]     # high-dose and naloxone thresholds, MME a day
    high_mme: float = measures.THRESHOLDS["high"]
    selected: tuple[str, ...] = field(default_factory=lambda: tuple(m.id for m in measures.MEASURES))


def measure_params(m: measures.Measure, s: Settings, start: dt.date, end: dt.date, bounds: pd.Series) -> dict:
    return measures.sql_params(m, start, end, bounds["data_start"], bounds["data_end"], s.dosing, s.ltot,
                               s.tapers, s.other)


def measurability(m: measures.Measure, s: Settings, start: dt.date, end: dt.date,
                  bounds: pd.Series) -> coverage.Measurability:
    """Whether measure m can be measured over start..end with the data's bounds (analysis.coverage)."""
    return measures.measurability(m, start, end, bounds["data_start"], bounds["data_end"], s.ltot, s.tapers,
                                  s.other)


def measurement_cells(state: coverage.Measurability) -> dict[str, object]:
    """The MEASUREMENT_COLUMNS of one measure and period."""
    return {"measurement": state.word or coverage.COMPLETE, "measurable_from": state.first,
            "measurable_to": state.last, "measurement_note": state.sentence()}


def data_bounds(conn: sa.Connection) -> pd.Series:
    return db.read_frame(conn, "data_bounds").iloc[0]


def measure_table(conn: sa.Connection, s: Settings) -> pd.DataFrame:
    """One row per measure and unit (clinician, or clinic for clinic-level measures), unsuppressed, with
    the period's measurement (MEASUREMENT_COLUMNS); a measure that cannot be measured in the period gets one
    row with no unit and no figures, saying why."""
    bounds = data_bounds(conn)
    frames = []
    columns = MEASURE_COLUMNS + ADJUSTED_COLUMNS + MEASUREMENT_COLUMNS
    mix = None
    for m in measures.configured(s.low_mme, s.high_mme):
        if m.id not in s.selected:
            continue
        state = measurability(m, s, s.start, s.end, bounds)
        if not state.has_figure:
            frames.append(pd.DataFrame([{"measure_id": m.id, "unit": m.unit, **measurement_cells(state)}],
                                       columns=columns))
            continue
        rows = db.read_frame(conn, m.query, measure_params(m, s, s.start, s.end, bounds))
        units = measures.unit_rows(rows, m)
        if units.empty:
            continue
        result = measures.compare(units, m)
        t = result.units.copy()
        t["measure_id"], t["unit"] = m.id, m.unit
        t["clinician_id"] = t["unit_id"] if m.unit == "clinician" else ""
        if m.unit == "clinic":
            t["clinic_id"] = t["unit_id"]
        t["limits"], t["phi"], t["tau2"] = result.limits, result.phi, result.tau2
        if measures.adjustable(m):
            mix = patient_mix(conn, s) if mix is None else mix
            t = t.merge(adjusted_cells(measures.compare_adjusted(rows, mix, m, s.start, s.high_mme)), on="unit_id",
                        how="left")
        frames.append(t.reindex(columns=columns[:-len(MEASUREMENT_COLUMNS)]).assign(**measurement_cells(state)))
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def patient_mix(conn: sa.Connection, s: Settings) -> pd.DataFrame:
    """queries/patient_mix.sql for the period: one row per patient of the characteristics (analysis.casemix)."""
    return db.read_frame(conn, "patient_mix", {"start": s.start, "end": s.end, "exclude": s.dosing.exclude})


def adjusted_cells(result: stats.Funnel | None) -> pd.DataFrame:
    """ADJUSTED_COLUMNS per unit_id from an adjusted funnel (none when the model had nothing to fit)."""
    if result is None:
        return pd.DataFrame(columns=["unit_id"] + ADJUSTED_COLUMNS)
    u = result.units
    return pd.DataFrame({
        "unit_id": u["unit_id"], "adjusted_for": " ".join(result.model.characteristics), "expected": u["expected"],
        "ratio": u["value"], "ratio_lower_95": u["lower_95"], "ratio_upper_95": u["upper_95"],
        "ratio_lower_998": u["lower_998"], "ratio_upper_998": u["upper_998"], "adjusted_flag": u["flag"],
        "adjusted_share": u["adjusted_share"]})


def quarter_results(conn: sa.Connection, s: Settings, clinicians: frozenset[str] | None = None):
    """Each selected measure in each calendar quarter of the period, compared among `clinicians` (None: all):
    yields (measure, quarter_start, quarter_end, measurability, funnel or None). The funnel is None when the
    quarter cannot be measured or nobody counts; "are we converging?" and "what changed" (analysis.trends)
    both read it."""
    bounds = data_bounds(conn)
    for q_start, q_end in measures.quarters(s.start, s.end):
        for m in measures.configured(s.low_mme, s.high_mme):
            if m.id not in s.selected:
                continue
            state = measurability(m, s, q_start, q_end, bounds)
            if not state.has_figure:
                yield m, q_start, q_end, state, None
                continue
            units = measures.unit_rows(keep(db.read_frame(conn, m.query, measure_params(m, s, q_start, q_end, bounds)),
                                            clinicians), m)
            yield m, q_start, q_end, state, (measures.compare(units, m) if not units.empty else None)


def consistency_table(conn: sa.Connection, s: Settings) -> pd.DataFrame:
    """Variation indices per measure and calendar quarter of the period ("are we converging?")."""
    out = []
    for m, q_start, q_end, state, result in quarter_results(conn, s):
        base = {"measure_id": m.id, "quarter_start": q_start, "quarter_end": q_end,
                "measurement": state.word or coverage.COMPLETE}
        if result is None:
            out.append({**base, "units": 0, "judged_units": 0, "estimable": False})
            continue
        out.append({**base, **stats.indices(result, m.kind)})
    return pd.DataFrame(out)


def patient_key(patient_id: str, secret: bytes) -> str:
    """A keyed hash (HMAC-SHA256, first 16 hex digits) standing for a patient; never the id itself."""
    return hmac.new(secret, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def key_secret() -> tuple[bytes, bool]:
    """The deployment's secret for patient keys ($RXDASH_PATIENT_KEY_SECRET), or a one-off random one."""
    value = os.environ.get(SALT_ENV)
    if value:
        return value.encode("utf-8"), True
    return secrets.token_bytes(32), False


def chosen_clinicians(directory: pd.DataFrame, clinics: tuple[str, ...] = (),
                      specialties: tuple[str, ...] = ()) -> frozenset[str] | None:
    """The clinicians of these clinics and specialties (clinician_directory rows); None when neither is
    given (everyone). An unknown clinic is refused in plain words."""
    unknown = set(clinics) - set(directory["clinic_id"])
    if unknown:
        raise ValueError(f"unknown clinic {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(set(directory['clinic_id'])))}")
    if not clinics and not specialties:
        return None
    chosen = directory
    if clinics:
        chosen = chosen[chosen["clinic_id"].isin(clinics)]
    if specialties:
        chosen = chosen[chosen["specialty"].isin(specialties)]
    return frozenset(chosen["clinician_id"])


def keep(rows: pd.DataFrame, clinicians: frozenset[str] | None) -> pd.DataFrame:
    """Rows (with clinician_id) of the chosen clinicians; all rows when `clinicians` is None."""
    return rows if clinicians is None else rows[rows["clinician_id"].isin(clinicians)]


def period_tapers(conn: sa.Connection, s: Settings, bounds: pd.Series) -> pd.DataFrame:
    """Tapers and discontinuations starting in the period (queries/tapers_attributed.sql), one row each."""
    t = db.read_frame(conn, "tapers_attributed", {**s.dosing.sql(),
                                                  **s.tapers.sql(bounds["data_start"], bounds["data_end"])})
    return t[(t["taper_start"] >= s.start) & (t["taper_start"] <= s.end)]


def taper_table(conn: sa.Connection, s: Settings, secret: bytes) -> pd.DataFrame:
    """Tapers and discontinuations starting in the period, one row each, patients as keyed hashes;
    `follow_up` is provisional when the patient's record window (the data's end, or the patient's own
    earlier record_end) ends before the taper's follow-up does (its speed, category and any stop may still
    change as data arrive), else complete."""
    bounds = data_bounds(conn)
    t = period_tapers(conn, s, bounds).copy()
    t["patient_key"] = [patient_key(p, secret) for p in t["patient_id"]]
    needs = measures.needs(measures.BY_ID["taper_rapid"], s.ltot, s.tapers, s.other)
    # A taper found before its follow-up is over is provisional (its own day is not measurable in full).
    t["follow_up"] = [coverage.COMPLETE if coverage.measurable(needs, d, d, bounds["data_start"],
                                                                min(bounds["data_end"], w)).complete
                      else coverage.PROVISIONAL for d, w in zip(t["taper_start"], t["window_end"])]
    return t[["clinician_id", "clinic_id", "patient_key", "baseline_mme", "taper_start", "end_mme",
              "max_monthly_reduction_pct", "category", "follow_up"]].reset_index(drop=True)


TAPER_COUNT_COLUMNS = ("tapers", "gradual", "moderate", "rapid", "abrupt_discontinuation", "provisional")


def taper_counts(tapers: pd.DataFrame, min_cell: int = 11) -> pd.DataFrame:
    """tapers.csv at default settings: one row per clinician (clinician_id, clinic_id) with counts of tapers and
    discontinuations starting in the period, by category, and how many are provisional (follow-up not over).

    Disclosure rule (analysis.disclosure, the one every export follows): a count from 1 to min_cell - 1 is left
    blank; if a row then withholds exactly one category while its total is shown, the next smallest category is
    blank too (total minus the others would give the small count back); a small total withholds every category. `withheld_why` says why each row withholds what it does.
    Patient-level rows (taper_table) leave only with min_cell 0 or 1 (`rxdash summarize --min-cell 0`)."""
    categories = list(TAPER_COUNT_COLUMNS[1:5])
    t = tapers.assign(provisional=tapers["follow_up"].eq(coverage.PROVISIONAL))
    wide = (pd.crosstab([t["clinician_id"], t["clinic_id"]], t["category"])
            .reindex(columns=categories, fill_value=0) if len(t) else
            pd.DataFrame(columns=categories, index=pd.MultiIndex.from_arrays([[], []],
                                                                             names=["clinician_id", "clinic_id"])))
    wide.insert(0, "tapers", wide[categories].sum(axis=1))
    wide["provisional"] = t.groupby(["clinician_id", "clinic_id"])["provisional"].sum().reindex(wide.index).fillna(0)
    out = wide.reset_index().astype({c: "int64" for c in TAPER_COUNT_COLUMNS})
    out = out.astype({c: object for c in TAPER_COUNT_COLUMNS})
    out["withheld_why"] = ""
    if min_cell <= 1:
        return out
    for i, row in out.iterrows():
        counts = {c: int(row[c]) for c in TAPER_COUNT_COLUMNS}
        if disclosure.is_small(counts["tapers"], min_cell):
            for c in TAPER_COUNT_COLUMNS:
                out.at[i, c] = None
            out.at[i, "withheld_why"] = f"fewer than {min_cell} tapers in all: every count withheld"
            continue
        why = []
        parts = disclosure.withhold_parts([counts[c] for c in categories], min_cell, total_shown=True)
        for c, (_, part) in zip(categories, parts.iterrows()):
            if pd.isna(part["shown"]):
                out.at[i, c] = None
                why.append(f"{c} {part['why']}")
        why.sort(key=lambda w: "withheld too" in w)   # the small counts first, then what they withhold
        if disclosure.is_small(counts["provisional"], min_cell):
            out.at[i, "provisional"] = None
            why.append(f"provisional from 1 to {min_cell - 1}")
        out.at[i, "withheld_why"] = "; ".join(why)
    return out


def suppress(table: pd.DataFrame, min_cell: int = 11) -> pd.DataFrame:
    """clinician_measures.csv (and every measure's "Data behind this chart") under the disclosure rule
    (analysis.disclosure.withhold_units, per measure): a withheld unit's numerator, value and shrunken rate
    are blank, and its denominator when that is the small count (count columns stay numbers, so a spreadsheet
    can still sum them). Its flag is kept (high, low, within, too_few: a direction, never a count), and
    `withheld_why` says what is withheld and why. min_cell 0 turns it off (and adds an empty withheld_why)."""
    out = table.copy()
    out["withheld_why"] = ""
    if min_cell <= 1 or out.empty:
        return out
    out["numerator"] = out["numerator"].astype("object")
    out["denominator"] = out["denominator"].astype("object")
    is_mean = out["measure_id"].map(lambda i: measures.BY_ID[i].kind == "mean")
    num = pd.to_numeric(out["numerator"])
    den = pd.to_numeric(out["denominator"])
    rule = pd.concat([disclosure.withhold_units(num[rows.index], den[rows.index], is_mean[rows.index], min_cell)
                      for _, rows in out.groupby("measure_id", sort=False)]).reindex(out.index)
    hide, small_den = rule["withheld"].astype(bool), rule["small_den"].astype(bool)
    out.loc[hide, [c for c in DERIVED if c in out]] = np.nan
    out.loc[hide, "numerator"] = None
    out.loc[small_den, "denominator"] = None
    out.loc[hide, "withheld_why"] = rule.loc[hide, "why"] + ": numerator, value and shrunken value withheld"
    return out


def parameter_lines(s: Settings) -> list[str]:
    """Every rule in force, one line each (README.txt beside a summary, the report pack's cover)."""
    t = s.tapers
    return [
        f"MME factor set: {s.dosing.factor_set} ({dose.FACTOR_SETS[s.dosing.factor_set]})",
        f"Exclusions: {'on: ' + measures.EXCLUSIONS if s.dosing.exclude else 'off'}",
        f"Long-term therapy: episodes with gaps <= {s.ltot.gap_days} days lasting > {s.ltot.min_days} days "
        f"with >= {s.ltot.min_fills} fills or >= {s.ltot.min_supply} days' supply (Von Korff 2008)",
        f"Tapers: baseline {t.baseline_days} days >= {t.baseline_min_mme:g} MME; >= {t.min_fall:.0%} fall in a "
        f"{30 * t.window_months}-day window within {30 * t.followup_months} days; gradual <= {t.gradual_max_pct:g}%/month,"
        f" rapid > {t.rapid_min_pct:g}%/month; discontinuation {t.stop_days} days without supply, abrupt when the last"
        f" 30 days were >= {t.abrupt_fraction:.0%} of baseline",
        f"Thresholds: high dose {s.high_mme:g} and {s.low_mme:g} MME a day; naloxone at {s.low_mme:g} MME; new start = no opioid"
        f" in {s.other.new_start_lookback} days; long first supply > {s.other.new_start_max_days} days;"
        f" multiple prescribers >= {s.other.prescriber_min} in {s.other.prescriber_window} days",
        f"Attribution: {measures.ATTRIBUTION_RULE}",
        "Funnel limits: exact binomial (interpolated) at 95% and 99.8% around the pooled rate; normal limits"
        " for means; when winsorised phi > 1, additive random-effects limits (DerSimonian-Laird tau2).",
        ("Suppression: counts from 1 to {0} are suppressed, with complementary suppression.".format(s.min_cell - 1)
         if s.min_cell > 1 else "Suppression: OFF (internal use only: small counts are shown)."),
    ]


MEASUREMENT_RULE = ("A figure that needs days of data before (a baseline, a look-back) or after (a follow-up, "
                    "days without supply) the days it measures is 'provisional' when some of those days lie outside "
                    "the data, 'not measurable yet' (no figure) when none of the period can be measured, and 'needs a "
                    "period of at least N days' (no figure) when its own window is longer than the period.")


def data_line(bounds: pd.Series) -> str:
    """What the data cover, for every output: the first fill and the extract date, and where it came from."""
    how = "given when loaded" if bounds.get("extract_given") else "the last fill date"
    return (f"Data: first fill {bounds['data_start']:%d %b %Y}; extract date {bounds['data_end']:%d %b %Y} ({how}). "
            "Each patient's record ends there unless the patient's own record ends earlier.")


def measurement_lines(s: Settings, bounds: pd.Series) -> list[str]:
    """The measurement rule and each selected measure's state for the period, one line each."""
    lines = [f"{data_line(bounds)} {MEASUREMENT_RULE}"]
    for m in measures.configured(s.low_mme, s.high_mme):
        if m.id in s.selected:
            state = measurability(m, s, s.start, s.end, bounds)
            lines.append(f"{m.id}: {state.word or coverage.COMPLETE}" + (f" ({state.reason()})" if state.reason() else ""))
    return lines


def readme(s: Settings, url: str, secret_is_stable: bool, written: dt.datetime,
           measurement: list[str] | tuple[str, ...] = ()) -> str:
    """README.txt: what the files hold, every parameter in force and each measure's measurement."""
    lines = [
        "Prescribing consistency: clinician comparison",
        f"Period: {s.start} to {s.end}",
        f"Made: {written:%Y-%m-%d %H:%M} from {url}",
        "",
        "Files",
        "  clinician_measures.csv  one row per measure and clinician (clinic for clinic-level measures):",
        "                          funnel limits around the pooled value, flag (high/low above/below the 99.8%",
        "                          limit after any overdispersion adjustment, within, or too_few: under 11",
        "                          cases, never judged; a unit at 0% or 100% is high/low only when chance under",
        "                          the pooled rate is below 0.1%), empirical-Bayes shrunken value with a 95% interval.",
        "                          Allowing for patient mix (blank where a measure is not adjusted): adjusted_for",
        "                          (the characteristics of the patient-level logistic regression), expected (E),",
        "                          ratio (O/E) with its limits, adjusted_flag, adjusted_share (O/E x pooled share).",
        ("  tapers.csv              one row per taper or discontinuation starting in the period (patient keys:"
         if s.min_cell <= 1 else
         "  tapers.csv              one row per clinician: tapers and discontinuations starting in the period,"),
        ("                          suppression is off)." if s.min_cell <= 1 else
         f"                          by category, and how many are provisional; counts 1-{s.min_cell - 1} written <{s.min_cell}"),
        *(() if s.min_cell <= 1 else (
          "                          (withheld_why says why; patient-level rows only with --min-cell 0).",)),
        "  consistency.csv         variation between clinicians per measure and quarter: pooled value, units,",
        "                          phi, tau2, median odds ratio, ratio of 90th to 10th centile of shrunken values;",
        "                          judged_units (with >= 11 cases); estimable false (and both ratios blank) when",
        "                          fewer than 5 units have 11 cases: too few to estimate.",
        "  Columns measurement, measurable_from, measurable_to, measurement_note (clinician_measures.csv),",
        "  measurement (consistency.csv) and follow_up (tapers.csv) say whether the data cover the days each",
        "  figure needs; see Measurement below.",
        "",
        "Parameters",
        *("  " + line for line in parameter_lines(s)),
        ("  Patient keys: keyed hash with this deployment's secret ($RXDASH_PATIENT_KEY_SECRET): stable across runs."
         if secret_is_stable else
         "  Patient keys: keyed hash with a one-off random secret: they do not match keys in other runs."),
        "",
        "Measurement",
        *("  " + line for line in measurement),
    ]
    return "\n".join(lines) + "\n"


SUMMARY_FILES = ("clinician_measures.csv", "tapers.csv", "consistency.csv", "README.txt")


def write_summary(engine: sa.Engine, s: Settings, out: Path,
                  on_written: Callable[[Path], None] | None = None) -> dict[str, int]:
    """Write clinician_measures.csv, tapers.csv, consistency.csv (analysis.exports.csv_bytes: text cells
    that would start a spreadsheet formula neutralised) and README.txt into the folder `out`, all four or none:
    they are written into a temporary folder beside it, fsynced, and then renamed into place
    (outputs.replacing; `on_written` runs once all four are complete, before the rename). A folder that
    exists keeps the files rxdash does not write; each of the four is replaced whole."""
    if out.exists() and not out.is_dir():   # said before the minutes of work, not after
        raise outputs.OutputError(f"{out} is a file; --out names the folder to write into")
    secret, stable = key_secret()
    with engine.connect() as conn:
        table = suppress(measure_table(conn, s), s.min_cell)
        tapers = taper_table(conn, s, secret)
        # Patient-level taper rows leave only when suppression is off (--min-cell 0); else counts by clinician.
        tapers = tapers if s.min_cell <= 1 else taper_counts(tapers, s.min_cell)
        consistency = consistency_table(conn, s)
        measurement = measurement_lines(s, data_bounds(conn))
    url = redact.shown_url(engine.url.render_as_string(hide_password=False))
    with outputs.replacing(out, folder=True, on_written=on_written) as folder:
        # Ids come from the data: written as every exported CSV is, formula cells neutralised.
        for frame, name in ((table, "clinician_measures"), (tapers, "tapers"), (consistency, "consistency")):
            (folder / f"{name}.csv").write_bytes(exports.csv_bytes(frame))
        (folder / "README.txt").write_text(readme(s, url, stable, dt.datetime.now(), measurement), encoding="utf-8")
    return {"clinician_measures": len(table), "tapers": len(tapers), "consistency": len(consistency)}
