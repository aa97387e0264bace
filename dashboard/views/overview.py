"""Overview: the period's headline figures against the previous period, and where clinicians differ most."""
from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import streamlit as st

from analysis import charts, exports, measures, report, stats
from analysis.display import md
from dashboard import data, downloads, filters, pages, viewer


def headline(f: filters.Filters, start: dt.date, end: dt.date) -> dict[str, float]:
    """The headline figures for one period among the selected clinicians' patients."""
    def rows(measure_id: str) -> pd.DataFrame:
        m = f.measure(measure_id)
        return f.keep(data.query(m.query, **f.measure_params(m, start, end)))

    opioid = rows("multiple_prescribers")
    ltot = rows("high_dose_90")
    ltot_low = rows("high_dose_50")
    tapers = f.keep(data.query("tapers_attributed", **f.taper_params()))
    tapers = tapers[(tapers["taper_start"] >= start) & (tapers["taper_start"] <= end)]
    share = lambda s: float(s.astype(bool).mean()) if len(s) else math.nan  # noqa: E731
    return {
        "opioid_patients": len(opioid),
        "ltot_patients": len(ltot),
        "share_low": share(ltot_low["in_numerator"]),
        "share_high": share(ltot["in_numerator"]),
        "tapers": len(tapers),
        "share_rapid": share(tapers["max_monthly_reduction_pct"] > f.rapid_min_pct),
        "abrupt": int((tapers["category"] == "abrupt_discontinuation").sum()),
    }


def ranking(f: filters.Filters) -> pd.DataFrame:
    """Measures ranked by how much clinicians differ: median odds ratio (proportions), then the rest."""
    out = []
    for m in f.measures():
        result = data.compared(m, f.measure_params(m), f.clinicians)
        if result is None or len(result.units) < 2:
            continue
        idx = stats.indices(result, m.kind)
        flagged = int(result.units["flag"].isin(["high", "low"]).sum())
        out.append({"measure_id": m.id, "measure": m.title, "unit": m.unit, "units": idx["units"],
                    "pooled": measures.describe_value(idx["pooled_value"], m), "mor": idx["median_odds_ratio"],
                    "p90_p10": idx["p90_p10_ratio"], "phi": idx["phi"], "flagged": flagged})
    table = pd.DataFrame(out)
    if table.empty:
        return table
    return table.sort_values(["mor", "p90_p10"], ascending=False, na_position="last").reset_index(drop=True)


def queries(f: filters.Filters) -> list[tuple[str, dict[str, object]]]:
    """Every query the page runs, so they can run side by side (data.warm) before it reads them."""
    calls = [(m.query, f.measure_params(m)) for m in f.measures()] + [("tapers_attributed", f.taper_params())]
    if previous := f.previous():
        calls += [(f.measure(i).query, f.measure_params(f.measure(i), *previous))
                  for i in ("multiple_prescribers", "high_dose_90", "high_dose_50")]
    return calls


def report_pdf(f: filters.Filters) -> bytes:
    """The report pack (analysis.report) for the sidebar's period, clinics, specialties and thresholds."""
    with data.engine(data.database_url()).connect() as conn:
        page = report.build(conn, f.settings(), f.clinics, f.specialties)
    return exports.pdf_bytes(page)


def _delta(now: float, before: float | None, percent: bool) -> str | None:
    if before is None or now != now or before != before:
        return None
    diff = now - before
    return f"{diff * 100:+.1f} points" if percent else f"{diff:+,.0f}"


def render() -> None:
    viewer.require("overview")
    st.title("Prescribing consistency")
    f = filters.current()
    if f is None:
        return
    head, button = st.columns([4, 1], vertical_alignment="center")
    head.caption(f"How consistently clinicians prescribe opioids for persistent pain, and how fast they taper: "
                 f"{f.period}, {md(f.scope)}.")
    with button:
        downloads.document("Report pack (PDF)", lambda: report_pdf(f), f"report_pack_{f.start}_{f.end}.pdf", f,
                           "One document for a quality committee: the rules in force, these figures, every "
                           "measure's funnel with a plain reading, the taper panels and the methods. Pseudonymous "
                           "clinicians; counts from 1 to 10 suppressed. Takes about half a minute.")
    previous = f.previous()
    try:
        data.warm(queries(f))
        now = headline(f, f.start, f.end)
        before = headline(f, *previous) if previous else {}
        monthly = data.query("monthly_opioid_fills", start=f.start, end=f.end, **f.clinician_params())
        ranked = ranking(f)
    except data.DataUnavailable as e:
        st.error(str(e), icon=":material/error:")
        return
    if now["opioid_patients"] == 0:
        st.info(f"No opioid fills by the selected clinicians {f.span}. Widen the period or the "
                "clinic and specialty filters.", icon=":material/info:")
        return

    # Headline figures; deltas against the previous period of the same length. The colour of a delta says
    # only up or down (Streamlit's default green/red would pass a verdict), so it is switched off.
    cards = (("Patients with an opioid fill", "opioid_patients", False),
             ("On long-term opioid therapy", "ltot_patients", False),
             (f"Long-term at ≥ {f.low_mme:g} MME a day", "share_low", True),
             (f"Long-term at ≥ {f.high_mme:g} MME a day", "share_high", True),
             ("Tapers and discontinuations", "tapers", False),
             (f"Tapers faster than {f.rapid_min_pct:g}%/month", "share_rapid", True),
             ("Abrupt discontinuations", "abrupt", False))
    cols = st.columns(4)
    for i, (label, key, percent) in enumerate(cards):
        value = now[key]
        shown = "–" if value != value else (f"{value:.1%}" if percent else f"{value:,}")
        cols[i % 4].metric(label, shown, _delta(value, before.get(key), percent), delta_color="off")
    st.caption(f"Changes are against the {((f.end - f.start).days + 1):,} days before ({previous[0]:%d %b %Y} to "
               f"{previous[1]:%d %b %Y})." if previous else
               "No change is shown: the data do not cover a previous period of the same length.")

    st.subheader("Where clinicians differ most")
    if ranked.empty:
        st.info("Too few clinicians in this selection to compare. Widen the filters.", icon=":material/info:")
    else:
        st.caption("Measures ranked by the median odds ratio (MOR): the typical ratio between the odds of two "
                   "clinicians picked at random, after chance is allowed for (1 = no difference; Merlo 2006). "
                   "The average dose has no MOR and comes last, with its ratio of the 90th to the 10th centile.")
        header = st.columns([4, 1, 1, 1, 1, 1])
        for col, text in zip(header, ("Measure", "Compared", "Pooled", "MOR", "P90/P10", "Outside limits")):
            col.markdown(f"**{text}**")
        for row in ranked.itertuples():
            cells = st.columns([4, 1, 1, 1, 1, 1])
            cells[0].page_link(pages.page("variation"), label=row.measure, icon=":material/scatter_plot:",
                               query_params={"measure": row.measure_id})
            cells[1].write(f"{row.units:,} {'clinics' if row.unit == 'clinic' else 'clinicians'}")
            cells[2].write(row.pooled)
            cells[3].write("–" if row.mor != row.mor else f"{row.mor:.2f}")
            cells[4].write("–" if row.p90_p10 != row.p90_p10 else f"{row.p90_p10:.2f}")
            cells[5].write(f"{row.flagged:,}")

    if not monthly.empty:
        downloads.show(charts.monthly_fills_chart(monthly, f.period), "opioid_fills_by_month", f,
                       f.context("Patients filling an opioid analgesic, by month"),
                       lambda: exports.suppressed_csv(monthly, counts=["patients", "prescriptions"]))
