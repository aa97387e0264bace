"""Clinician profile: one clinician's figures beside anonymous peers, written for the clinician to read."""
from __future__ import annotations


import pandas as pd
import streamlit as st

from analysis import charts, exports, feedback, measures, stats
from analysis.display import counted, md
from dashboard import data, downloads, filters, over_time, viewer
from dashboard.views import tapers as taper_view
from dashboard.views import variation

URL_KEY = "clinician"


def peer_rows(f: filters.Filters, clinician_id: str) -> pd.DataFrame:
    """Per clinician-level measure: the clinician's figures beside peers' (analysis.feedback.peer_row), and
    `clinicians`, how many clinicians the selection compares in the measure (the clinician included)."""
    out = []
    for m in f.measures():
        if m.unit != "clinician":
            continue
        result = data.compared(m, f.measure_params(m), f.clinicians)
        if result is not None and (row := feedback.peer_row(result, m, clinician_id,
                                                            adjusted=adjusted(f, m))) is not None:
            out.append({**row, "clinicians": len(result.units)})
    return pd.DataFrame(out)


def adjusted(f: filters.Filters, m: measures.Measure) -> stats.Funnel | None:
    """The measure allowing for patient mix among the selection (None when it is not adjusted)."""
    return data.compared(m, f.measure_params(m), f.clinicians, "adjusted", f.high_mme) if measures.adjustable(m) \
        else None


def letter_pdf(f: filters.Filters, clinician_id: str, name: str) -> bytes:
    """The clinician's one-page feedback letter for the sidebar's selection, as PDF bytes."""
    results = {m.id: (m, r) for m in f.measures() if m.unit == "clinician"
               and (r := data.compared(m, f.measure_params(m), f.clinicians)) is not None}
    peers = feedback.Peers(results, taper_view.period_tapers(f), {clinician_id: name}, f.scope,
                           adjusted={i: a for i, (m, _) in results.items() if (a := adjusted(f, m)) is not None})
    settings = f.settings()
    return exports.pdf_bytes(feedback.page(feedback.letter(peers, clinician_id, settings.min_cell), settings, f.scope,
                                           settings.min_cell))


def _over_time(f: filters.Filters, rows: pd.DataFrame, clinician_id: str, name: str) -> None:
    """One measure by quarter: the peers' 10th to 90th centiles with the clinician's own line on top."""
    st.subheader("Over time")
    ids = list(rows["measure_id"])
    filters.page_choice("trend", ids)
    chosen = st.selectbox("Measure by quarter", ids, format_func=lambda i: f.measure(i).title, key="trend")
    filters.remember("trend", chosen)
    over_time.decile_section(f, f.measure(chosen), clinician_id, name, "profile")


def render() -> None:
    v = viewer.require("profile")
    st.title("Clinician profile")
    f = filters.current()
    if f is None:
        return
    if v.any_profile:
        ids = sorted(f.clinicians if f.clinicians is not None else f.labels)
        codes = {f.codes[i]: i for i in ids}
        filters.page_choice(URL_KEY, list(codes))
        code = st.selectbox("Clinician", sorted(codes, key=lambda c: f.label(codes[c])), index=None, key=URL_KEY,
                            placeholder="Choose a clinician", format_func=lambda c: f.label(codes[c]),
                            help="Clinicians are shown by a stable pseudonym unless your role shows names. Peers "
                                 f"are the other clinicians in the sidebar's selection with at least "
                                 f"{stats.MIN_DENOMINATOR} patients in the measure (filter by specialty to "
                                 "compare like with like).")
        if code is None:
            st.info("Choose a clinician to see their figures beside their peers'.", icon=":material/person_search:")
            return
        filters.remember(URL_KEY, code)
        clinician_id = codes[code]
        name = f.label(clinician_id)
    else:
        # A clinician sees their own profile only, by name; a link to anybody else's is ignored.
        clinician_id = v.clinician_id
        if clinician_id is None or clinician_id not in f.codes:
            st.warning(f"Your account ({v.user}) is not linked to a clinician in these data. Ask the dashboard's "
                       "administrator to add it under [rxdash.clinicians].", icon=":material/link_off:")
            return
        code = f.codes[clinician_id]
        names = data.query("clinician_names")
        name = next((n for i, n in zip(names["clinician_id"], names["clinician_name"]) if i == clinician_id and n),
                    f.label(clinician_id))
    seen = (code, str(f.start), str(f.end))
    if st.session_state.get("_profile_audited") != seen:   # one entry per clinician and period viewed
        st.session_state["_profile_audited"] = seen
        viewer.record("profile view", f"profile {code}", filters.describe(f))

    try:
        rows = peer_rows(f, clinician_id)
        tapers = taper_view.period_tapers(f)
    except data.DataUnavailable as e:
        st.error(str(e), icon=":material/error:")
        return
    st.markdown(
        f"#### {md(name)}: your prescribing beside your peers, {f.period}\n"
        "These figures are for reflection and conversation, not judgement. Your patients are yours: some need "
        "more, some less, and a figure here cannot know why. Each figure is an estimate that allows for chance "
        "(a 'shrunken' value: with few patients it stays near the group's), so a handful of patients cannot make "
        "you look unusual. Peers are anonymous.")
    downloads.document("Feedback letter (PDF)", lambda: letter_pdf(f, clinician_id, name),
                       f"feedback_{code}.pdf", f,
                       "A one-page letter for this clinician: their figures beside anonymous peers, a top-performer "
                       "benchmark and their tapers against the guideline pace. Takes a few seconds.")
    if rows.empty:
        st.info(f"{md(name)} has no patients counted in these measures {f.span}. Try a longer period.",
                icon=":material/info:")
    else:
        # The verdict ("Compared with peers") next to the measure: at 1280 px the last of six columns was
        # off-screen behind a scroll bar.
        table = pd.DataFrame({
            "Measure": rows["measure"],
            "Compared with peers": rows["position"],
            "Your figure (allowing for chance)": [
                f"{measures.describe_value(o, measures.BY_ID[i])} ({measures.describe_value(lo, measures.BY_ID[i])}"
                f" to {measures.describe_value(hi, measures.BY_ID[i])})"
                for i, o, lo, hi in zip(rows["measure_id"], rows["own"], rows["own_lower"], rows["own_upper"])],
            "Peer median": [measures.describe_value(v, measures.BY_ID[i]) for i, v in zip(rows["measure_id"], rows["median"])],
            "Peers with a lower figure": [f"{p:.0f}% of {n:,}" if n else "no peer to compare with"
                                          for p, n in zip(rows["percentile"], rows["n_peers"])],
            "Your patients": rows["patients"],
            "Allowing for patient mix": [a or "shown as observed" for a in rows["adjusted"]],
        })
        # A static table: its cells wrap, so all six columns fit the page at 1280 px (a scrolling grid hid
        # the right-hand ones, and cut the measure names).
        st.table(table.style.hide(axis="index"))
        compared = rows[rows["n_peers"] > 0]
        if compared.empty:
            # Nobody to draw beside the clinician: say why instead of a chart of lone diamonds.
            if rows["clinicians"].max() < variation.MIN_TO_COMPARE:
                st.info(f"**{variation.too_few_to_compare()}** {md(name)} is the only clinician with patients in "
                        f"these measures {f.span} ({md(f.scope)}): the figures above are theirs alone, with no peer "
                        "beside them.", icon=":material/info:")
            else:
                st.info(f"No peer has the {stats.MIN_DENOMINATOR} patients needed to compare with in any of these "
                        f"measures {f.span}, so there is no chart of peers. A longer period or a wider selection "
                        "may give one.", icon=":material/info:")
        else:
            title = f"{name} (diamond) among peers (grey), {f.period}"
            export = table.rename(columns={"Your patients": "patients"})
            def strip(min_cell: int = 0):
                return charts.peer_strip_chart(compared, title, min_cell=min_cell)
            downloads.show(strip(), f"profile_{code}", f, f.context(title, clinicians=int(rows["n_peers"].max()) + 1),
                           lambda: exports.suppressed_csv(export, counts=["patients"],
                                                          derived=["Your figure (allowing for chance)",
                                                                   "Allowing for patient mix"]),
                           export=strip)
            if len(compared) < len(rows):
                st.caption("Not drawn, with no peer to compare with: "
                           + md("; ".join(rows.loc[rows["n_peers"] == 0, "measure"])) + ".")
        _over_time(f, rows, clinician_id, name)
        st.caption("Allowing for patient mix: your count against the count expected for your patients' age band, "
                   "sex and opioid use disorder, and where the measure names them long-term therapy or the dose a "
                   "taper started from (the Methods page lists them for each measure); 1.00 × the count expected = "
                   "as expected for those patients.")
        st.caption("Lower is not always better: the average dose, for one, carries no verdict. A figure outside "
                   "the range chance would explain is a question worth a conversation, not an answer. "
                   f"Peer median: {feedback.PEER_RULE} (the same peers as in the feedback letter). "
                   f"Attribution: {measures.ATTRIBUTION_RULE}")

    own = tapers[tapers["clinician_id"] == clinician_id]
    st.subheader("Your tapers")
    if own.empty:
        st.info(f"No tapers or discontinuations attributed to {md(name)} started {f.span}.",
                icon=":material/info:")
        return
    gradual = (own["max_monthly_reduction_pct"] <= f.gradual_max_pct).sum()
    st.write(f"{counted(len(own), 'taper or discontinuation')} started in the period; {gradual:,} went at the guideline "
             f"pace of {f.gradual_max_pct:g}% of the baseline a month or slower (HHS 2019; CDC 2022).")
    taper_view.trajectories(f, own, f"Daily dose around {name}'s tapers, {f.period}")
