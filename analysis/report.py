"""The report pack: one document a quality committee can take into a meeting (`rxdash report`).

A cover with the period and every rule in force, the overview figures, each measure's funnel plot with a
plain-language reading, the taper panels and a methods appendix generated from the measure declarations.
Charts are inline SVG (kaleido), so the HTML needs no script and no network; the PDF is that HTML printed
by headless chromium. Clinicians appear by pseudonym, counts from 1 to 10 are suppressed.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from analysis import casemix, charts, coverage, db, disclosure, dose, dose_unknown, exports, measures, privacy, stats, summary, tapering
from analysis.display import counted, html_text

CSS = """
body { font-family: Inter, 'Segoe UI', Helvetica, Arial, sans-serif; color: #1f2933; margin: 0 auto;
       max-width: 1100px; font-size: 13px; line-height: 1.45; }
h1 { font-size: 26px; margin: 40px 0 6px; } h2 { font-size: 19px; margin: 28px 0 6px; page-break-before: always; }
h2.first { page-break-before: auto; } h3 { font-size: 15px; margin: 18px 0 4px; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border-bottom: 1px solid #e4e7eb; padding: 3px 10px;
text-align: left; } .muted { color: #52606d; } .reading { font-size: 14px; margin: 4px 0 2px; }
svg { max-width: 100%; height: auto; } .chart { page-break-inside: avoid; }
"""


def _count(n: int, min_cell: int) -> str:
    """A count in the pack's tables under the disclosure rule: "1,234" or "<11"."""
    return disclosure.band(min_cell) if disclosure.is_small(n, min_cell) else f"{n:,}"


def _share(flags: pd.Series, min_cell: int) -> str:
    """The share of True in `flags`, unless it would give a small count away: shown with its total beside it,
    a share of a small count (or of a small remainder) is that count (analysis.disclosure)."""
    k, n = int(flags.astype(bool).sum()), len(flags)
    if n == 0:
        return "–"
    if disclosure.is_small(n, min_cell) or disclosure.is_small(k, min_cell) or disclosure.is_small(n - k, min_cell):
        return f"withheld (a count under {min_cell})"
    return f"{k / n:.1%}"


def case_word(measure: measures.Measure) -> str:
    """The plural noun of a measure's denominator, read from its declaration: new starts, tapers or patients."""
    return next((w for w in ("new starts", "tapers") if measure.denominator.startswith(w)), "patients")


# With fewer clinicians (or clinics) than this in the selection there is nothing to compare, so no funnel,
# ranking or spread is drawn (one point against itself): the Overview, the Variation page and the profile.
MIN_TO_COMPARE = 2


def too_few_to_compare(unit_word: str = "clinicians") -> str:
    """The sentence for a selection with fewer than MIN_TO_COMPARE units (one wording for every page)."""
    return f"Too few {unit_word} in this selection to compare. Widen the filters."


def too_few_sentence(measure: measures.Measure) -> str:
    """What a comparison says when no unit has enough cases to be judged (stats.MIN_DENOMINATOR)."""
    unit = "clinic" if measure.unit == "clinic" else "clinician"
    return f"No {unit} has the {stats.MIN_DENOMINATOR} {case_word(measure)} needed to be judged"


def standout_sentence(units: pd.DataFrame, measure: measures.Measure,
                      names: Callable[[list[str]], str] = ", ".join) -> str:
    """The funnel's headline in one plain sentence, with the units that stand out named.

    units: one row per unit with `flag` (high | low | within | too_few, stats.compare) and `unit_label`
    (the name shown: pseudonym or clinic name). names(labels) joins the labels (the page makes each a link to
    the profile). "2 of 40 clinicians judged are above the range chance explains: Clinician AMG34, Clinician
    5BDVW (lower is better)."; "No clinician has the 11 patients needed to be judged." when none is judged.
    The range is the 99.8% funnel limits after any overdispersion allowance (Spiegelhalter 2005)."""
    unit = "clinic" if measure.unit == "clinic" else "clinician"
    judged = units[units["flag"] != "too_few"]
    if judged.empty:
        return f"{too_few_sentence(measure)}."
    n = len(judged)
    of = f"of {counted(n, unit)} judged"
    high = sorted(judged.loc[judged["flag"] == "high", "unit_label"])
    low = sorted(judged.loc[judged["flag"] == "low", "unit_label"])
    if not high and not low:
        return (f"None of the {counted(n, unit)} judged is outside the range chance explains." if n > 1 else
                f"The one {unit} judged is inside the range chance explains.")
    verb = lambda k: "is" if k == 1 else "are"  # noqa: E731
    if measure.direction == "neutral":
        both = sorted(high + low)
        return (f"{len(both)} {of} {verb(len(both))} outside the range chance explains: {names(both)} "
                "(neither higher nor lower is better in itself).")
    parts = []
    if high:
        parts.append(f"{len(high)} {of} {verb(len(high))} above the range chance explains: {names(high)}")
    if low and high:
        parts.append(f"{len(low)} {verb(len(low))} below it: {names(low)}")
    elif low:
        parts.append(f"{len(low)} {of} {verb(len(low))} below the range chance explains: {names(low)}")
    return "; ".join(parts) + f" ({measure.direction} is better)."


def adjusted_reading(adjusted: stats.Funnel | None, measure: measures.Measure, labels: dict[str, str]) -> str:
    """The funnel's headline allowing for patient mix: "Allowing for patient mix (age band, sex and opioid use
    disorder): none of the 33 clinicians judged is outside the range chance explains."; or why it is not shown.
    labels: unit_id -> the name shown (pseudonym or clinic name)."""
    if adjusted is None:
        return (f"Allowing for patient mix: not shown (the model needs at least {casemix.MIN_PATIENTS_TO_FIT} "
                f"{case_word(measure)}, some in the numerator and some not).")
    units = adjusted.units.assign(unit_label=adjusted.units["unit_id"].map(labels))
    sentence = standout_sentence(units, measure)
    return (f"Allowing for patient mix ({casemix.label_list(adjusted.model.characteristics)}; observed against "
            f"expected counts): {sentence[0].lower() + sentence[1:]}")


def index_text(value: float, estimable: bool) -> str:
    """A variation index as shown: two decimals, or "too few to estimate" (stats.indices)."""
    return f"{value:.2f}" if value == value else ("too few to estimate" if not estimable else "–")


def reading(result: stats.Funnel, measure: measures.Measure, trend: pd.DataFrame) -> str:
    """The funnel in plain sentences: how many judged units sit outside the limits, the period's variation
    index (stats.indices on the period: the same figure as the Overview's "where clinicians differ most"),
    and whether it narrowed over the quarters where it can be estimated (median odds ratio; ratio of 90th to
    10th centile for means)."""
    unit_word = "clinics" if measure.unit == "clinic" else "clinicians"
    flags = result.units["flag"]
    high, low = int((flags == "high").sum()), int((flags == "low").sum())
    judged = int((flags != "too_few").sum())
    few = len(result.units) - judged
    cases = case_word(measure)
    if judged == 0:
        return (f"{too_few_sentence(measure)} ({few} {unit_word} with fewer); variation between them is too few "
                "to estimate.")
    among = f"{judged} {unit_word} with at least {stats.MIN_DENOMINATOR} {cases}"
    if measure.direction == "neutral":
        outside = f"{high + low} of {among} outside the 99.8% limits (no verdict: neither high nor low is good in itself)"
    else:
        outside = f"{high} of {among} above the upper limit and {low} below the lower limit (99.8%)"
    if few:
        outside += f"; {few} with fewer are too few to judge"
    index = "median_odds_ratio" if measure.kind == "proportion" else "p90_p10_ratio"
    name = "median odds ratio" if index == "median_odds_ratio" else "90th/10th centile ratio"
    period = stats.indices(result, measure.kind)
    text = f"{outside}. The {name} over the period is {index_text(period[index], period['estimable'])}"
    return text + trend_sentence(trend, index, name, period_text=True)


def trend_sentence(trend: pd.DataFrame, index: str, name: str, period_text: bool = False,
                   unit_word: str = "clinicians") -> str:
    """Whether variation narrowed over the quarters where `index` can be estimated: '; by quarter it has
    narrowed since Q1 2025 (1.48 → 1.32).' A change within 5% of the first quarter's value is 'stayed about
    the same'. period_text: the continuation of reading()'s sentence, else a sentence of its own."""
    usable = trend.dropna(subset=[index]) if index in trend else trend.iloc[0:0]
    if len(usable) < 2:
        if not period_text:
            return (f"Too few quarters where the {name} can be estimated to follow it by quarter." if len(trend) >= 2
                    else "")
        return (" (too few quarters where it can be estimated to follow it by quarter)." if len(trend) >= 2
                else ".")
    first, last = usable.iloc[0], usable.iloc[-1]
    change = last[index] / first[index] - 1 if first[index] else 0.0
    when = charts.quarter_label(first["quarter_start"])
    word = "narrowed" if change < -0.05 else "widened" if change > 0.05 else "stayed about the same"
    skipped = len(trend) - len(usable)
    note = f"; {skipped} quarter{'s' if skipped > 1 else ''} with too few to estimate left out" if skipped else ""
    if period_text:
        return f"; by quarter it has {word} since {when} ({first[index]:.2f} → {last[index]:.2f}{note})."
    return (f"Variation between {unit_word} ({name}) has {word} since {when}: {first[index]:.2f} then, "
            f"{last[index]:.2f} in {charts.quarter_label(last['quarter_start'])}{note}.")


def _svg(fig) -> str:
    exports.start_kaleido()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig = fig.update_layout(width=1000)
        text = fig.to_image(format="svg").decode("utf-8")
    return f'<div class="chart">{text}</div>'


def build(conn: sa.Connection, s: summary.Settings, clinics: tuple[str, ...] = (),
          specialties: tuple[str, ...] = ()) -> str:
    """The report pack as one self-contained HTML page, for the clinicians of `clinics` and `specialties`
    (everyone when both are empty)."""
    bounds = summary.data_bounds(conn)
    directory = db.read_frame(conn, "clinician_directory")
    allowed = summary.chosen_clinicians(directory, clinics, specialties)
    labels = privacy.pseudonyms(directory["clinician_id"], privacy.pseudonym_secret())
    clinic_names = dict(zip(directory["clinic_id"], directory["clinic_name"]))
    scope = "; ".join(p for p in (", ".join(clinic_names[c] for c in clinics) or "all clinics",
                                  ", ".join(x.lower() or "no specialty" for x in specialties)) if p)
    period = f"{s.start:%d %b %Y} to {s.end:%d %b %Y}"
    keep = lambda rows: summary.keep(rows, allowed)  # noqa: E731

    parts = [f"<h1>Prescribing consistency: report pack</h1><p class='muted'>{html_text(period)} · "
             f"{html_text(scope)} · generated {dt.datetime.now():%Y-%m-%d %H:%M}</p>",
             "<h3>Rules in force</h3><ul>"]
    parts += [f"<li>{html_text(line)}</li>" for line in summary.parameter_lines(s)]
    parts.append(f"</ul><p class='muted'>{html_text(summary.data_line(bounds))} Clinicians appear by pseudonym; "
                 "patients never appear. "
                 + (f"Counts from 1 to {s.min_cell - 1} are shown as &lt;{s.min_cell}, and nothing from which one "
                    "could be worked out is shown: shares of them are withheld, and charts do not draw them "
                    f"(a clinician with such a count is named under the funnel, not drawn in it).</p>"
                    if disclosure.applies(s.min_cell) else "Small counts are NOT suppressed (internal use).</p>"))

    results, states = {}, {}
    for m in measures.configured(s.low_mme, s.high_mme):
        states[m.id] = summary.measurability(m, s, s.start, s.end, bounds)
        rows = keep(db.read_frame(conn, m.query, summary.measure_params(m, s, s.start, s.end, bounds)))
        units = measures.unit_rows(rows, m)
        results[m.id] = (m, rows, measures.compare(units, m) if len(units) >= 2 else None)

    # Overview figures
    ltot = results["high_dose_90"][1]
    opioid = results["multiple_prescribers"][1]
    tapers = keep(summary.period_tapers(conn, s, bounds))
    share = lambda x: _share(x, s.min_cell)  # noqa: E731
    overview = [("Patients with an opioid fill", _count(len(opioid), s.min_cell)),
                ("On long-term opioid therapy", _count(len(ltot), s.min_cell)),
                (f"Long-term at ≥ {s.low_mme:g} MME a day", share(ltot["value"] >= s.low_mme)),
                (f"Long-term at ≥ {s.high_mme:g} MME a day", share(ltot["in_numerator"])),
                ("Tapers and discontinuations", _count(len(tapers), s.min_cell)),
                (f"Tapers faster than {s.tapers.rapid_min_pct:g}%/month",
                 share(tapers["max_monthly_reduction_pct"] > s.tapers.rapid_min_pct)),
                ("Abrupt discontinuations", _count(int((tapers["category"] == "abrupt_discontinuation").sum()),
                                                   s.min_cell))]
    # Each figure as measurable as the measure it is computed from (analysis.coverage): a word instead of
    # a figure that cannot be measured, "provisional" beside one whose days are partly missing.
    keys = ("opioid_patients", "ltot_patients", "share_low", "share_high", "tapers", "share_rapid", "abrupt")
    figure_states = [states[measures.HEADLINE_MEASURE[k]] for k in keys]
    overview = [(k, v if st.complete else v + " (provisional)" if st.has_figure else st.word)
                for (k, v), st in zip(overview, figure_states)]
    notes = sorted({st.sentence() for st in figure_states if not st.complete})
    # The same warning as the Overview's when the factor set leaves more than 1% of prescriptions without a dose.
    no_dose = keep(db.read_frame(conn, "period_dose_coverage", {"start": s.start, "end": s.end, **s.dosing.sql()}))
    if warning := dose_unknown.warning(no_dose, dose.FACTOR_SETS[s.dosing.factor_set]):
        notes.append(warning)
    parts.append("<h2 class='first'>Overview</h2><table>" + "".join(
        f"<tr><td>{html_text(k)}</td><td><b>{html_text(v)}</b></td></tr>" for k, v in overview) + "</table>"
        + "".join(f"<p class='muted'>{html_text(n)}</p>" for n in notes))

    # Each measure's funnel with its reading, as observed and allowing for patient mix
    parts.append("<h2>Clinician variation, measure by measure</h2>")
    mix = None
    for m, rows, result in results.values():
        parts.append(f"<h3>{html_text(m.title)}</h3>")
        state = states[m.id]
        if not state.has_figure:
            parts.append(f"<p class='reading'><b>{html_text(state.word.capitalize())}.</b> "
                         f"{html_text(state.sentence())}</p>")
            continue
        if not state.complete:
            parts.append(f"<p class='reading'><b>Provisional.</b> {html_text(state.sentence())}</p>")
        if result is None:
            parts.append("<p class='muted'>Too few clinicians with patients in this measure to compare.</p>")
            continue
        trend = pd.DataFrame([{"quarter_start": q0, **stats.consistency(u, m.kind)}
                              for q0, q1 in measures.quarters(s.start, s.end)
                              # only quarters measured in full: a provisional quarter is never compared
                              if summary.measurability(m, s, q0, q1, bounds).complete
                              and len(u := measures.unit_rows(keep(db.read_frame(
                                  conn, m.query, summary.measure_params(m, s, q0, q1, bounds))), m)) >= 2])
        parts.append(f"<p class='reading'>{html_text(reading(result, m, trend))}</p>")
        if measures.adjustable(m):
            mix = summary.patient_mix(conn, s) if mix is None else mix
            fitted = measures.compare_adjusted(rows, mix, m, s.start, s.high_mme)
            names = labels if m.unit == "clinician" else clinic_names
            parts.append(f"<p class='reading'>{html_text(adjusted_reading(fitted, m, names))}</p>")
        if dose_unknown.is_dose_based(m.query):   # patients left out for an unknown dose, counted (suppressed)
            params = {**summary.measure_params(m, s, s.start, s.end, bounds), "dose_unknown": True}
            unknown = len(keep(db.read_frame(conn, m.query, params)))
            if unknown:
                what = "tapers" if m.query in ("measure_taper_rapid",) else "patients"
                parts.append(f"<p class='muted'>{html_text(_count(unknown, s.min_cell))} {what} left out: dose "
                             "unknown (a prescription in supply has no MME factor in this factor set, or no quantity).</p>")
        units = result.units.assign(unit_label=result.units["unit_id"].map(
            labels.get if m.unit == "clinician" else clinic_names.get))
        lines = stats.funnel_lines(result, float(units["denominator"].max()))
        percent = m.kind == "proportion"
        parts.append(_svg(charts.funnel_chart(units, lines, f"{m.title}: {period}",
                                              "Share of patients" if percent else m.value_unit, result.pooled,
                                              percent, m.direction, min_cell=s.min_cell)))
        parts.append(f"<p class='muted'>{html_text(m.why)}</p>")

    # Taper panels
    parts.append("<h2>Tapers</h2>")
    if not states["taper_rapid"].complete:
        parts.append(f"<p class='reading'><b>{html_text(states['taper_rapid'].word.capitalize())}.</b> "
                     f"{html_text(states['taper_rapid'].sentence())}</p>")
    if tapers.empty:
        parts.append("<p class='muted'>No tapers or discontinuations started in the period.</p>")
    else:
        parts.append(_svg(charts.taper_speed_chart(tapers, period, s.tapers.gradual_max_pct, s.tapers.rapid_min_pct,
                                                   min_cell=s.min_cell)))
        named = tapers.assign(clinician_id=tapers["clinician_id"].map(labels.get))
        if disclosure.applies(s.min_cell) and named["clinician_id"].value_counts().max() < s.min_cell:
            # Every bar would be "<11": a sentence says so instead of a chart of nothing.
            parts.append(f"<p class='muted'>Taper categories by clinician are not drawn: no clinician has "
                         f"{s.min_cell} or more tapers in the period, and smaller counts are not shown.</p>")
        else:
            parts.append(_svg(charts.taper_categories_chart(tapering.busiest(named), period, min_cell=s.min_cell)))

    # Methods appendix
    parts.append("<h2>Methods</h2><p>Funnel limits: exact binomial (interpolated) at 95% and 99.8% around the "
                 "pooled value, normal limits for means; when overdispersion is found (winsorised φ > 1), "
                 "additive random-effects limits (DerSimonian–Laird τ²). Units with fewer than "
                 f"{stats.MIN_DENOMINATOR} cases are too few to judge and never flagged; a unit at 0% or 100% is "
                 "flagged only when chance under the pooled rate cannot explain it (below 0.1%). The median odds "
                 f"ratio and the 90th/10th centile ratio need at least {stats.MIN_UNITS} units with "
                 f"{stats.MIN_DENOMINATOR} cases, else they are too few to estimate. Attribution: "
                 f"{html_text(measures.ATTRIBUTION_RULE)}</p>")
    for m, _, _ in results.values():
        parts.append(f"<h3>{html_text(m.title)} <span class='muted'>({m.id})</span></h3><p>"
                     f"{html_text(m.why)}<br><b>Numerator:</b> {html_text(m.numerator)}. <b>Denominator:</b> "
                     f"{html_text(m.denominator)}. <b>Better when:</b> {m.direction}. "
                     + (f"<b>Allowing for patient mix:</b> {html_text(casemix.label_list(m.adjust_for))}: "
                        if measures.adjustable(m) else "<b>Shown as observed only:</b> ")
                     + f"{html_text(m.adjust_why)} <b>SQL:</b> "
                     f"queries/{m.query}.sql. <b>Reviewed</b> {m.reviewed_on}; next review {m.next_review}.</p>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Prescribing consistency report "
            f"{html_text(period)}</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>")


def write(engine: sa.Engine, s: summary.Settings, out: Path, clinics: tuple[str, ...] = (),
          on_written: Callable[[Path], None] | None = None) -> Path:
    """Write the report as .html, or as .pdf printed by headless chromium; whole or not at all
    (exports.write_document; `on_written` runs once the file is complete, before it takes its name)."""
    with engine.connect() as conn:
        page = build(conn, s, clinics)
    return exports.write_document(page, out, on_written)
