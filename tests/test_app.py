"""Dashboard pages in Streamlit's AppTest: each page with the shared sidebar, on a hand-worked data set
(numbers below come from tests/test_measures.py's worked example), on the sample, and on empty databases."""
from __future__ import annotations

import base64
import datetime as dt
import json
import re

import numpy as np

import pytest
from streamlit.testing.v1 import AppTest

from analysis import ingest, privacy
from tests.fixtures import write_dataset
from tests.test_measures import CLINICIANS, CLINICS, dataset

D = dt.date
PAGES = ("overview", "variation", "tapers", "profile", "data-quality", "methods")
H1 = {"start": "2025-01-01", "end": "2025-06-30"}   # the worked example's period


def _page(name):
    """One page as the app runs it: navigation registered, the shared sidebar, then the page."""
    import streamlit as st

    from dashboard import filters, pages

    st.navigation(pages.all_pages(), position="hidden")
    filters.sidebar()
    pages.view(name)()


def run(name: str, query: dict[str, str | list[str]] | None = None, timeout: float = 120) -> AppTest:
    at = AppTest.from_function(_page, args=(name,), default_timeout=timeout)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def label(clinician_id: str) -> str:
    return privacy.pseudonyms(["D1", "D2", "D3", "D4"], privacy.pseudonym_secret())[clinician_id]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def charts(at: AppTest) -> list[dict]:
    """The page's figures as plotly JSON, each title read as text (the line breaks analysis.charts.fit_layout
    puts in a long title to fit the width read as spaces)."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    for spec in specs:
        title = spec.get("layout", {}).get("title", {})
        if isinstance(title.get("text"), str):
            title["text"] = title["text"].replace("<br>", " ")
    return specs


def values(v):
    """A figure's array as a list: plotly writes numeric arrays as base64 ("bdata") in its JSON."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return v


@pytest.fixture(scope="module")
def worked_db(tmp_path_factory):
    """The measures' worked example in a DuckDB file, with L1 given cancer (left out by default) and an
    emergency visit 12 days after T1's abrupt stop."""
    from analysis import db

    tmp = tmp_path_factory.mktemp("worked")
    patients, rows = dataset()
    patients = [[p[0], p[1], p[2], "1" if p[0] == "L1" else "0", "0", "0", "0"] for p in patients]
    folder = write_dataset(tmp / "d", clinics=CLINICS, clinicians=CLINICIANS, patients=patients, prescriptions=rows,
                           events=[["T1", "2025-03-10", "ed_visit"]])
    url = f"duckdb:///{tmp / 'worked.duckdb'}"
    engine = db.make_engine(url)
    ingest.load_directory(engine, folder, tmp / "rejects.csv", as_of=D(2026, 11, 1))
    engine.dispose()
    return url


@pytest.fixture
def worked(monkeypatch, worked_db):
    monkeypatch.setenv("RXDASH_DB_URL", worked_db)


@pytest.fixture
def sample_env(monkeypatch, sample_duckdb):
    monkeypatch.setenv("RXDASH_DB_URL", sample_duckdb)


# --- Every page --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders_on_the_sample_without_an_error(sample_env, name):
    at = run(name, timeout=180)
    assert not at.error
    assert at.sidebar.date_input(key="f_period").value == (D(2025, 1, 1), D(2025, 12, 31))  # the last year


# --- Overview ----------------------------------------------------------------------------------------

def test_overview_headline_figures_are_the_worked_numbers(worked):
    at = run("overview", H1)
    m = metrics(at)
    # Opioid patients: 10 in the period less L1 (cancer) = 9. Long-term: L2 L3 N1 T1 T2 = 5; at >= 50:
    # L2 60, T1 100, T2 82.9 = 3/5; at >= 90: T1 = 1/5. Tapers: T1 (100%/month, abrupt) and T2 (25%).
    assert m["Patients with an opioid fill"] == "9"
    assert m["On long-term opioid therapy"] == "5"
    assert m["Long-term at ≥ 50 MME a day"] == "60.0%"
    assert m["Long-term at ≥ 90 MME a day"] == "20.0%"
    assert m["Tapers and discontinuations"] == "2"
    assert m["Tapers faster than 40%/month"] == "50.0%"
    assert m["Abrupt discontinuations"] == "1"
    # Previous 181 days (2024-07-03 .. 2024-12-31): L2 L3 T1 T2 A3 M1 filled opioids (L1 left out): 6.
    deltas = {x.label: x.proto.delta for x in at.metric}
    assert deltas["Patients with an opioid fill"] == "+3"


def test_overview_filters_change_the_headline(worked):
    # Exclusions off: L1 (100 MME, long-term) counts again: 6 long-term, 4/6 at >= 50, 2/6 at >= 90.
    m = metrics(run("overview", {**H1, "exclusions": "off"}))
    assert (m["Patients with an opioid fill"], m["On long-term opioid therapy"]) == ("10", "6")
    assert (m["Long-term at ≥ 50 MME a day"], m["Long-term at ≥ 90 MME a day"]) == ("66.7%", "33.3%")
    # Clinic North (D1, D3): L2, A2, T1, T2; long-term L2 T1 T2, of whom T1 >= 90.
    m = metrics(run("overview", {**H1, "clinic": "C1"}))
    assert (m["Patients with an opioid fill"], m["On long-term opioid therapy"]) == ("4", "3")
    assert m["Long-term at ≥ 90 MME a day"] == "33.3%"
    # Specialty Pain (D3 only): T1 and T2.
    m = metrics(run("overview", {**H1, "specialty": "Pain"}))
    assert (m["Patients with an opioid fill"], m["Tapers and discontinuations"]) == ("2", "2")
    # A 70 MME threshold: T1 100 and T2 82.9 of the five = 40%; rapid above 20%/month: T1 and T2.
    m = metrics(run("overview", {**H1, "low": "70", "rapid": "20"}))
    assert m["Long-term at ≥ 70 MME a day"] == "40.0%"
    assert m["Tapers faster than 20%/month"] == "100.0%"


def test_overview_ranks_measures_and_links_to_their_panels(worked):
    at = run("overview", H1)
    links = [x for x in at.get("page_link")]
    assert len(links) >= 5
    first = links[0].proto
    assert first.page == "variation" and "measure=" in json.dumps(str(first))


def test_overview_says_when_no_clinician_matches(worked):
    at = run("overview", {**H1, "clinic": "C2", "specialty": "Pain"})   # Pain is only in C1
    assert "No opioid fills by the selected clinicians" in at.info[0].value


def test_filters_are_written_to_the_url(worked):
    at = run("overview", H1)
    at.sidebar.multiselect(key="f_clinics").set_value(["C1"]).run()
    at.sidebar.toggle(key="f_exclusions").set_value(False).run()
    print(dict(at.query_params))
    assert at.query_params["start"] == "2025-01-01" and at.query_params["end"] == "2025-06-30"
    assert at.query_params["clinic"] == "C1" and at.query_params["exclusions"] == "off"
    assert "low" not in at.query_params   # defaults stay out of the link


def test_url_values_outside_the_allow_lists_are_ignored(worked):
    at = run("overview", {**H1, "clinic": "C9' or 1=1 --", "factors": "drop table", "low": "-5"})
    assert at.sidebar.multiselect(key="f_clinics").value == []
    assert at.sidebar.selectbox(key="f_factors").value == "cdc2022"
    assert at.sidebar.number_input(key="f_low").value == 50
    assert metrics(at)["Patients with an opioid fill"] == "9"


def test_contradictory_thresholds_are_refused_not_used(worked):
    # A dose threshold above the high-dose one, and a gradual pace above the rapid one, from a shared link.
    at = run("tapers", {**H1, "low": "120", "high": "90", "gradual": "50", "rapid": "40"})
    errors = [e.value for e in at.sidebar.error]
    assert any("dose threshold (120 MME) must be below the high-dose threshold (90 MME)" in e
               and "still using 50 and 90" in e for e in errors), errors
    assert any("gradual pace (50%/month) must be below the rapid pace (40%/month)" in e
               and "still using 10 and 40" in e for e in errors), errors
    # The pages use the pair in force: T2 at 25%/month is moderate under 10/40, as with no thresholds given.
    assert metrics(at)["Within 10%/month"] == metrics(run("tapers", H1))["Within 10%/month"]
    assert "low" not in at.query_params and "gradual" not in at.query_params
    # Thresholds show as whole numbers.
    assert at.sidebar.number_input(key="f_low").value == 120 and isinstance(at.sidebar.number_input(key="f_low").value, int)


# --- Clinician variation -----------------------------------------------------------------------------

def test_variation_funnel_shows_the_worked_clinicians(worked):
    at = run("variation", {**H1, "measure": "high_dose_50"})
    funnel = charts(at)[0]
    assert funnel["layout"]["title"]["text"] == ("Long-term patients at 50 MME a day or more: clinicians compared, "
                                                 "01 Jan 2025 to 30 Jun 2025")
    points = {c[0]: (x, y) for tr in funnel["data"] if tr.get("mode") == "markers"
              for c, x, y in zip(tr["customdata"], values(tr["x"]), values(tr["y"]))}
    # D1: L2 (1/1); D2: L3, N1 (0/2); D3: T1, T2 (2/2). Pseudonyms only: no clinician id on screen.
    assert points == {label("D1"): (1, 1.0), label("D2"): (2, 0.0), label("D3"): (2, 1.0)}
    assert "D1" not in json.dumps(funnel["data"])
    # The threshold follows the sidebar: at 70 MME, T1 and T2 stay in, L2 (60) drops out.
    at = run("variation", {**H1, "measure": "high_dose_50", "low": "70"})
    funnel = charts(at)[0]
    assert funnel["layout"]["title"]["text"].startswith("Long-term patients at 70 MME a day or more")
    ys = {c[0]: y for tr in funnel["data"] if tr.get("mode") == "markers"
          for c, y in zip(tr["customdata"], values(tr["y"]))}
    assert ys[label("D1")] == 0.0 and ys[label("D3")] == 1.0


def test_variation_minimum_patients_and_highlight(worked):
    at = run("variation", {**H1, "measure": "high_dose_50", "min_patients": "2"})
    funnel = charts(at)[0]
    drawn = {c[0] for tr in funnel["data"] if tr.get("mode") == "markers" for c in tr["customdata"]}
    assert drawn == {label("D2"), label("D3")}                 # D1 has one patient
    assert "1 with fewer than 2 patients are counted but not drawn" in " ".join(c.value for c in at.caption)
    at.selectbox(key="highlight").set_value(label("D3")).run()
    names = [tr.get("name") for tr in charts(at)[0]["data"]]
    assert label("D3") in names


def test_variation_tabs_draw_only_when_opened_and_come_from_the_link(worked):
    at = run("variation", {**H1, "measure": "high_dose_50"})
    titles = [c["layout"]["title"]["text"] for c in charts(at)]
    assert len(titles) == 2 and "shrunken values with 95% intervals" in titles[1]   # funnel and the first tab
    at = run("variation", {**H1, "measure": "high_dose_50", "view": "By clinic"})
    titles = [c["layout"]["title"]["text"] for c in charts(at)]
    assert titles[1].startswith("Long-term patients at 50 MME a day or more: clinicians' shrunken values by clinic")
    assert at.query_params["view"] == "By clinic"
    at = run("variation", {**H1, "measure": "high_dose_50", "view": "The numbers"})
    table = at.dataframe[0].value
    assert sorted(table["denominator"]) == [1, 2, 2] and set(table["clinic_name"]) == {"North", "South"}


def test_variation_allowing_for_patient_mix_needs_enough_patients_and_says_so(worked):
    # The worked example has a handful of patients: fewer than the 20 a patient-mix model needs, so the page
    # says why and shows the observed comparison; the link keeps the choice.
    at = run("variation", {**H1, "measure": "high_dose_50", "basis": "adjusted"})
    assert not at.exception
    assert at.radio(key="basis").value == "adjusted"
    assert at.info[0].value.startswith("**Shown as observed.** Patient mix cannot be allowed for here: the model "
                                       "needs at least 20 patients")
    assert [c["layout"]["title"]["text"] for c in charts(at)][0].startswith(
        "Long-term patients at 50 MME a day or more: clinicians compared, 01 Jan")
    # The average dose is never adjusted: no choice, and the reason in a caption.
    at = run("variation", {**H1, "measure": "mean_daily_mme", "basis": "adjusted"})
    assert not at.radio and any(c.value.startswith("Shown as observed. An average dose") for c in at.caption)


def test_variation_says_when_a_measure_has_no_cases(worked):
    # December 2024 can be measured (baseline from 2024-06-04, the data's start being 2024-06-01; follow-up to
    # 2025-07-28, before the data end 2025-12-23) and no taper starts in it (T1 and T2 start 2025-02-26).
    at = run("variation", {"start": "2024-12-01", "end": "2024-12-31", "measure": "taper_rapid"})
    assert "No patients count towards this measure" in at.info[0].value
    # June 2024, the data's first month, has no 180-day baseline at all: not measurable, rather than "no cases".
    at = run("variation", {"start": "2024-06-01", "end": "2024-06-30", "measure": "taper_rapid"})
    assert "not measurable yet" in at.info[0].value


def test_variation_on_the_sample_shows_clinics_and_the_quarterly_trend(sample_env):
    at = run("variation", {"view": "Are we converging?"}, timeout=180)
    specs = charts(at)
    titles = [s["layout"]["title"]["text"] for s in specs]
    assert titles[0] == "Long-term patients at 90 MME a day or more: clinicians compared, 01 Jan 2025 to 31 Dec 2025"
    trend = next(s for s in specs if "are we converging?" in s["layout"]["title"]["text"])
    # The sample ends 31 Dec 2025 and a long-term episode needs 120 days after a day (analysis.coverage):
    # days to 03 Sep 2025 can be measured, so Q3 is provisional and Q4 not measurable yet: no patient's
    # record can measure Q4 (queries/_measurable_patients.sql), so it has no value. Both are shaded
    # (centred on the quarter's point, 45 days either side) with a legend entry each.
    assert [q[:10] for q in trend["data"][0]["x"]] == ["2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01"]
    shades = [(r["x0"][:10], r["x1"][:10]) for r in trend["layout"]["shapes"] if r["type"] == "rect"]
    assert shades == [("2025-05-17", "2025-08-15"), ("2025-08-17", "2025-11-15")]
    assert {d["name"] for d in trend["data"]} >= {"Shaded: provisional", "Shaded: not measurable yet"}
    at.selectbox(key="measure").set_value("multiple_prescribers").run()
    assert "Patients with 4 or more opioid prescribers: clinics compared" in at.get("plotly_chart")[0].proto.spec
    assert metrics(at)["Clinics"] == "5"


def test_the_factor_set_changes_the_doses(sample_env):
    # Tramadol and tapentadol have no factor in the CDC 2016 set. Their long-term patients are left out of
    # the average dose and the page says how many (93 of the sample's 557 long-term patients in 2025: the
    # patients of measure_ltot_dose with dose_unknown true), instead of averaging them in at 0 MME (which
    # once made the CDC 2016 average fall from 65.1 to 56.2 MME a day without a word).
    def page(factors):
        query = {"measure": "mean_daily_mme", **({"factors": factors} if factors else {})}
        return run("variation", query, timeout=180)

    at16, at22 = page("cdc2016"), page(None)
    assert any(w.value.startswith("93 patients left out: dose unknown") for w in at16.warning)
    assert not any("left out: dose unknown" in w.value for w in at22.warning)
    assert metrics(at16)["Pooled value"] != metrics(at22)["Pooled value"]


# --- Tapers ------------------------------------------------------------------------------------------

def test_tapers_page_speeds_trajectories_and_events(worked):
    at = run("tapers", H1)
    m = metrics(at)
    assert m["Tapers and discontinuations"] == "2" and m["Abrupt discontinuations"] == "1"
    specs = charts(at)
    assert specs[1]["layout"]["title"]["text"].startswith("Taper categories by clinician")   # the first tab
    specs = charts(run("tapers", {**H1, "panel": "Daily dose around tapers"})) + \
        charts(run("tapers", {**H1, "panel": "What followed"}))
    speed = specs[0]
    assert speed["layout"]["title"]["text"] == "How fast doses fell: 2 tapers starting 01 Jan 2025 to 30 Jun 2025"
    notes = [a["text"] for a in speed["layout"]["annotations"]]
    assert "gradual ≤ 10%/month (CDC 2022)" in notes and "rapid > 40%/month" in notes
    trajectories = next(s for s in specs if s["layout"]["title"]["text"].startswith("Daily dose around"))
    captions = [a["text"].replace("<br>", " ") for a in trajectories["layout"]["annotations"]]   # wrapped to fit
    assert "moderate · 25%/month" in captions and "abrupt discontinuation · 100%/month" in captions
    # T2: 100 MME for the 180 days before, then 75: the line sits at 100% then 75% of baseline.
    t2 = trajectories["data"][0]
    assert [y for y in t2["y"] if y is not None][:2] == [100.0, 100.0] and 75.0 in t2["y"]
    assert "2025-" not in json.dumps(trajectories["data"])          # days from the start, never dates
    events = next(s for s in specs if s["layout"]["title"]["text"].startswith("Tapers followed by an event"))
    within_30 = dict(zip(events["data"][0]["x"], values(events["data"][0]["y"])))
    # T1 (>40%/month) had an ED visit 12 days after the start; T2 (10-40%) had none.
    assert within_30["10–40%/month<br>(1 taper)"] == 0.0 and within_30["> 40%/month<br>(1 taper)"] == 1.0
    assert np.isnan(within_30["≤ 10%/month<br>(0 tapers)"])           # no taper in the band: no share


def test_tapers_page_follows_the_speed_bands(worked):
    at = run("tapers", {**H1, "gradual": "30"})
    assert metrics(at)["Within 30%/month"] == "50%"                  # T2 at 25%/month is now gradual
    at = run("tapers", {**H1, "clinic": "C2"})
    assert "No tapers or discontinuations" in at.info[0].value      # T1 and T2 belong to D3 (North)


# --- Clinician profile -------------------------------------------------------------------------------

def test_profile_shows_one_clinician_beside_anonymous_peers(worked):
    code = label("D3").split()[-1]
    at = run("profile", {**H1, "clinician": code})
    assert at.selectbox(key="clinician").value == code
    table = at.table[0].value.set_index("Measure")
    # D3's patients T1, T2 in the long-term measures. Its colleagues (D1: L2 0/1, D2: 0/2) used to be counted as
    # peers ("100% of 2"); peers are now the clinicians with at least 11 patients (issue 12: one peer group,
    # the letter's), and nobody here has them.
    row = table.loc["Long-term patients at 90 MME a day or more"]
    assert row["Your patients"] == 2 and row["Peers with a lower figure"] == "no peer to compare with"
    assert row["Compared with peers"] == "no clinician has the 11 patients needed to be judged"
    assert "shrunken" in at.markdown[0].value and "not judgement" in at.markdown[0].value
    # Peers are there (D1, D2) but none can be judged: no strip of lone diamonds, and the reason instead.
    assert "No peer has the 11 patients needed to compare with in any of these measures" in at.info[0].value
    assert not any("among peers" in c["layout"]["title"]["text"] for c in charts(at))
    assert "2 tapers or discontinuations started in the period" in " ".join(x.value for x in at.markdown)
    assert any(c["layout"]["title"]["text"].startswith(f"Daily dose around {label('D3')}'s tapers") for c in charts(at))
    assert at.query_params["clinician"] == code


def test_profile_asks_for_a_clinician_and_says_when_there_is_nothing(worked):
    at = run("profile", H1)
    assert "Choose a clinician" in at.info[0].value
    at = run("profile", {**H1, "clinician": label("D4").split()[-1]})
    # D4 has only M1: in the clinic-level measure (not shown here) and in benzo_overlap (0 of 1); no tapers.
    assert list(at.table[0].value["Measure"]) == ["Opioids with benzodiazepines"]
    assert "No peer has the 11 patients needed" in at.info[0].value      # no strip chart of a lone diamond
    # Over time: one clinician with one patient gives no quarter a spread of peers, said in words.
    assert at.info[1].value == ("No quarter in the 8 up to the period's end has the 5 clinicians with 11 patients each "
                                "that a spread needs.")
    assert "No tapers" in at.info[2].value
    at = run("profile", {"start": "2024-06-01", "end": "2024-06-30", "clinician": label("D4").split()[-1]})
    assert "has no patients counted" in at.info[0].value


# --- Data quality and Methods ------------------------------------------------------------------------

def test_data_quality_lists_rejections_and_drug_descriptions(sample_env):
    at = run("data-quality")
    m = metrics(at)
    assert (m["Clinics"], m["Clinicians"], m["Prescriptions"]) == ("5", "40", "21,881")
    assert "Fills from 01 Jan 2023 to 31 Dec 2025" in " ".join(c.value for c in at.caption)
    latest = at.dataframe[0].value.set_index("table_name")
    assert latest.loc["prescriptions", "rows_rejected"] == 13
    assert "Rows rejected by the latest load" in at.get("plotly_chart")[0].proto.spec


def test_dose_coverage_follows_the_factor_set(sample_env):
    # Tramadol and tapentadol have no factor in the CDC 2016 set: their prescriptions are listed.
    at = run("data-quality")
    assert not any("no MME factor" in w.value for w in at.warning)  # every sample drug has a 2022 factor
    at.selectbox(key="coverage_factor_set").set_value("cdc2016").run()
    assert not at.exception
    assert any("no MME factor" in w.value for w in at.warning)
    missing = next(df.value for df in at.dataframe if list(df.value.columns) == ["ingredient", "strength_unit", "prescriptions"])
    assert set(missing["ingredient"]) == {"tramadol", "tapentadol"}


def test_methods_page_shows_declarations_sql_and_the_parameters_in_force(worked):
    from analysis import measures

    at = run("methods", {**H1, "high": "80", "rapid": "35"})
    labels = [e.label for e in at.main.expander]
    declared = [x for x in labels if x.endswith(")")]
    assert declared[0] == "Long-term patients at 80 MME a day or more (high_dose_90)"
    assert len(declared) == len(measures.MEASURES)
    # Allowing for patient mix: one entry per measure compared between clinicians or adjusted, saying which.
    mix = [x for x in labels if ": adjusted for " in x or x.endswith(": shown as observed")]
    assert "Long-term patients at 80 MME a day or more: adjusted for age band, sex and opioid use disorder" in mix
    assert "Average daily dose of long-term patients: shown as observed" in mix and len(mix) == len(measures.MEASURES)
    assert len(at.code) == len(measures.MEASURES) and "measure_benzo_overlap" in at.code[3].value
    params = next(d.value for d in at.dataframe if "parameter" in d.value.columns).set_index("parameter")
    assert params.loc["rapid_min_pct", "value"] == "35% of the baseline a month"
    assert params.loc["baseline_min_mme", "value"] == "50 MME a day"
    factors = at.dataframe[-1].value
    assert {"cdc2022", "cdc2016", "cdc_file_2018"} <= set(factors["factor_set"])


# --- Empty and unreachable databases -----------------------------------------------------------------

@pytest.mark.parametrize("name", PAGES[:4])
def test_pages_explain_an_empty_database(monkeypatch, tmp_path, name):
    from analysis import db

    url = f"duckdb:///{tmp_path / 'empty.duckdb'}"
    engine = db.make_engine(url)
    with engine.begin() as conn:
        db.init_schema(conn)
    engine.dispose()
    monkeypatch.setenv("RXDASH_DB_URL", url)
    at = run(name)
    assert "rxdash load" in at.info[0].value


@pytest.mark.parametrize("name", PAGES[:4] + ("data-quality",))
def test_pages_explain_a_missing_database(monkeypatch, tmp_path, name):
    monkeypatch.setenv("RXDASH_DB_URL", f"duckdb:///{tmp_path / 'nowhere.duckdb'}")
    at = run(name)
    assert "rxdash demo" in at.info[0].value


def test_pages_explain_an_unreachable_server(monkeypatch):
    monkeypatch.setenv("RXDASH_DB_URL", "postgresql://nobody@127.0.0.1:1/none")
    at = run("overview")
    # The URL and the server's error are shown literally (analysis.display.md escapes their dots).
    assert "could not be reached" in at.info[0].value and r"127\.0\.0\.1" in at.info[0].value


def test_start_up_warm_up_computes_the_default_view(worked, caplog):
    from dashboard import warmup

    with caplog.at_level("INFO", logger="rxdash.warmup"):
        warmup.default_view()
    assert any("default view computed" in r.getMessage() for r in caplog.records)
    assert not any(r.levelname == "WARNING" for r in caplog.records if r.name == "rxdash.warmup")


def test_charts_offer_downloads_without_building_them(worked):
    at = run("variation", {**H1, "measure": "high_dose_50"})
    keys = {b.key for b in at.get("download_button")}
    assert {"dl_high_dose_50_funnel_png", "dl_high_dose_50_funnel_svg", "dl_high_dose_50_funnel_pdf",
            "dl_high_dose_50_funnel_html", "dl_high_dose_50_funnel_csv"} <= keys
    at = run("tapers", {**H1, "panel": "Daily dose around tapers"})
    keys = {b.key for b in at.get("download_button")}
    # One line per patient: no image and no CSV leave while small counts are suppressed, and the page says so.
    assert not any(k.startswith("dl_taper_trajectories") for k in keys)
    assert any("no image of it leaves the dashboard" in c.value for c in at.caption)


# --- Issue 12: small numbers, one definition per figure -----------------------------------------------------

def _markdown(at: AppTest) -> str:
    return " ".join(x.value for x in at.markdown)


def test_overview_says_when_no_clinician_can_be_judged_and_when_variation_cannot_be_estimated(worked):
    # The worked example's clinicians have 1-2 patients in each measure (H1): nobody has the 11 needed, so
    # no "0" outside the limits and no MOR of 1.00 by default.
    at = run("overview", H1)
    text = _markdown(at)
    assert "No clinician has the 11 patients needed to be judged." in text
    assert "too few to estimate" in text
    assert "1.00" not in text


def test_variation_headline_names_the_clinicians_who_stand_out_with_links_to_their_profiles(sample_env):
    # The sample in 2025 (its default period): 2 of 36 clinicians judged on benzodiazepine overlap are above
    # the range chance explains (the same two the funnel marks outside its 99.8% limits).
    at = run("variation", {"measure": "benzo_overlap"})
    headline = next(x.value for x in at.markdown if "range chance explains" in x.value)
    assert headline.startswith("**2 of 36 clinicians judged are above the range chance explains: [Clinician ")
    assert headline.endswith(" (lower is better).**")
    links = re.findall(r"\[(Clinician \w+)\]\(/profile\?start=2025-01-01&end=2025-12-31&clinician=(\w+)\)", headline)
    assert len(links) == 2 and all(label == f"Clinician {code}" for label, code in links)
    funnel = charts(at)[0]
    outside = {c[0] for tr in funnel["data"] if tr.get("name") == "Outside 99.8% limits" for c in tr["customdata"]}
    assert outside == {label for label, _ in links}
    assert metrics(at)["Stand out"] == "2 of 36" and metrics(at)["Better when"] == "Lower"


def test_variation_cards_and_funnel_show_too_few_to_judge(worked):
    at = run("variation", {**H1, "measure": "high_dose_50"})
    m = metrics(at)
    assert m["Stand out"] == "none judged" and m["Better when"] == "Lower" and m["Clinicians"] == "3"
    assert "No clinician has the 11 patients needed to be judged" in at.info[0].value
    # The headline says it in words; the statistics are in Technical details, each with its gloss.
    assert "**No clinician has the 11 patients needed to be judged.**" in [x.value for x in at.markdown]
    details = "".join(x.value for x in at.expander[0].markdown) if at.expander else ""
    assert "Median odds ratio: too few to estimate" in details and "Overdispersion φ" in details
    funnel = charts(at)[0]
    names = {tr["name"]: len(tr["customdata"]) for tr in funnel["data"] if tr.get("mode") == "markers"}
    # D1 (1 patient), D2 (2), D3 (2): all three hollow "too few to judge", none "within limits".
    assert names == {"Within limits": 0, "Outside 99.8% limits": 0, "Too few to judge": 3}
    at = run("variation", {**H1, "measure": "high_dose_50", "view": "The numbers"})
    assert set(at.dataframe[0].value["flag"]) == {"too few to judge"}


def test_overview_monthly_chart_counts_the_headline_population(worked):
    # With exclusions on, L1 (cancer) is out of the headline (9 patients) and out of the chart; with them off
    # the chart gains L1 in the months L1 filled. Every month's patients are among the headline's.
    def monthly(query):
        at = run("overview", query)
        chart = next(c for c in charts(at) if c["layout"]["title"]["text"].startswith("Patients filling"))
        return dict(zip([x[:7] for x in chart["data"][0]["x"]], values(chart["data"][0]["y"]))), metrics(at)

    on, m_on = monthly(H1)
    off, m_off = monthly({**H1, "exclusions": "off"})
    assert max(on.values()) <= int(m_on["Patients with an opioid fill"]) == 9
    assert sum(off.values()) > sum(on.values()) and all(off[k] - on.get(k, 0) in (0, 1) for k in off)


def test_profile_peer_median_is_the_letters(sample_env, sample_duckdb):
    # One peer group, defined once (feedback.peer_group): the profile page and the letter for the same
    # clinician, period and filters give the same peer median, measure by measure.
    from analysis import db, feedback, summary

    engine = db.make_engine(sample_duckdb, read_only=True)   # as the dashboard opens it
    s = summary.Settings(D(2025, 1, 1), D(2025, 12, 31))
    with engine.connect() as conn:
        peers = feedback.compare_all(conn, s, ("C01",))
        directory = db.read_frame(conn, "clinician_directory")
    engine.dispose()
    ids = list(directory["clinician_id"])
    who = sorted(directory.loc[directory["clinic_id"] == "C01", "clinician_id"])[0]   # a clinician of C01
    letter = feedback.letter(peers, who, s.min_cell).rows.set_index("measure")
    code = privacy.pseudonyms(ids, privacy.pseudonym_secret())[who].split()[-1]
    at = run("profile", {"clinic": "C01", "clinician": code}, timeout=180)
    table = at.table[0].value.set_index("Measure")
    from analysis import measures
    for title, row in letter.iterrows():
        assert table.loc[title, "Peer median"] == measures.describe_value(row["median"], measures.BY_ID[row["measure_id"]])
    assert len(letter) >= 5
    assert "at least 11 cases in the measure" in " ".join(c.value for c in at.caption)


# --- Dose unknown (issue 12, part 4) -------------------------------------------------------------------

@pytest.fixture(scope="module")
def unknown_dose_db(tmp_path_factory):
    """K1, K2, U1, U2, U3: oxycodone 10 mg, 120 tablets every 30 days from 1 Jul 2024 (12 fills, 60 MME a
    day, long-term), all with D1; U1-U3 also fill tramadol 50 mg x 120 for 30 days on 1 Feb 2025 (no factor
    under CDC 2016)."""
    from analysis import db

    tmp = tmp_path_factory.mktemp("unknown")
    oxy, tram = "oxycodone hydrochloride 10 MG Oral Tablet", "Tramadol Hydrochloride 50 MG Oral Tablet"
    pids = ["K1", "K2", "U1", "U2", "U3"]
    rows = [[f"{p}-{i}", p, "D1", (D(2024, 7, 1) + dt.timedelta(days=30 * i)).isoformat(), oxy, "", "", "", "",
             "120", "30", ""] for p in pids for i in range(12)]
    rows += [[f"{p}-T", p, "D1", "2025-02-01", tram, "", "", "", "", "120", "30", ""] for p in pids[2:]]
    folder = write_dataset(tmp / "d", clinics=CLINICS, clinicians=CLINICIANS,
                           patients=[[p, "1960-01-01", "F", "0", "0", "0", "0"] for p in pids],
                           prescriptions=rows, events=[])
    url = f"duckdb:///{tmp / 'unknown.duckdb'}"
    engine = db.make_engine(url)
    ingest.load_directory(engine, folder, tmp / "rejects.csv", as_of=D(2026, 1, 1))
    engine.dispose()
    return url


Q1 = {"start": "2025-01-01", "end": "2025-03-31", "min_patients": "1"}


def test_overview_warns_and_counts_patients_whose_dose_is_unknown(monkeypatch, unknown_dose_db):
    monkeypatch.setenv("RXDASH_DB_URL", unknown_dose_db)
    at = run("overview", {**Q1, "factors": "cdc2016"})
    m = metrics(at)
    # Fills in Q1: oxycodone on 27 Jan, 26 Feb, 28 Mar (1 Jul 2024 + 210, 240, 270 days) x 5 patients = 15,
    # plus 3 tramadol = 18; 3 without a dose under CDC 2016 = 16.7% (> 1%): the headline warns.
    warnings = [w.value for w in at.warning]
    assert any("16.7% of the period's opioid prescriptions (3 of 18) have no dose" in w for w in warnings), warnings
    # All 5 are long-term; U1-U3 are left out of the dose shares (not 0 MME): K1, K2 at 60 = 2/2 at >= 50.
    assert m["On long-term opioid therapy"] == "5"
    assert m["Long-term at ≥ 50 MME a day"] == "100.0%"
    assert m["Long-term at ≥ 90 MME a day"] == "0.0%"
    assert any("3 long-term patients left out: dose unknown" in c.value for c in at.caption)
    # CDC 2022: tramadol has a factor (0.2): no warning, nobody left out; U1-U3 at (90 x 60 + 30 x 40) / 90 = 73.3.
    at = run("overview", {**Q1, "factors": "cdc2022"})
    assert not any("have no dose" in w.value for w in at.warning)
    assert not any("left out: dose unknown" in c.value for c in at.caption)
    assert metrics(at)["Long-term at ≥ 50 MME a day"] == "100.0%"


def test_variation_says_how_many_patients_are_left_out_for_an_unknown_dose(monkeypatch, unknown_dose_db):
    monkeypatch.setenv("RXDASH_DB_URL", unknown_dose_db)
    at = run("variation", {**Q1, "factors": "cdc2016", "measure": "mean_daily_mme"})
    assert any(w.value.startswith("3 patients left out: dose unknown") for w in at.warning), [w.value for w in at.warning]
    # D1 is the only clinician: no funnel, and the one figure in words. K1 and K2 only, never (60 + 60 + 0 x 3) / 5.
    assert "(60.0 MME a day, 2 patients)" in at.info[0].value and "Too few clinicians" in at.info[0].value
    at = run("variation", {**Q1, "factors": "cdc2016", "measure": "benzo_overlap"})   # not dose-based
    assert not any("left out: dose unknown" in w.value for w in at.warning)


# --- The data's start and end (issue 12, section 1; rule in analysis/coverage.py) -------------------------

def _cards(at: AppTest) -> dict:
    return {m.label: m for m in at.metric}


def _count(text: str) -> int:
    return int(text.replace(",", ""))


def test_overview_default_year_marks_tapers_provisional_and_compares_with_2024(sample_env):
    at = run("overview", timeout=300)
    cards = _cards(at)
    # The default is the calendar year 2025 (the data end 31 Dec 2025). A taper needs 210 days from its start,
    # so only starts to 5 Jun 2025 can be followed up: the count (14 + 10 + 7 + 1 = 32 by quarter, issue 12)
    # is provisional and never compared (it read "32, down 44").
    tapers = cards["Tapers and discontinuations"]
    assert (tapers.value, tapers.proto.delta) == ("32", "provisional")
    assert "Only 01 Jan 2025 to 05 Jun 2025 can be measured" in tapers.proto.help
    abrupt = cards["Abrupt discontinuations"]
    assert (abrupt.value, abrupt.proto.delta) == ("5", "provisional")
    # Long-term figures need 120 days after each day: provisional after 3 Sep 2025.
    assert cards["On long-term opioid therapy"].proto.delta == "provisional"
    # Patients with an opioid fill need nothing outside the period: compared with the calendar year 2024.
    text = " ".join(x.value for x in at.markdown)
    assert "Changes are against the previous period, 2024 (01 Jan 2024 to 31 Dec 2024)." in text
    in_2024 = metrics(run("overview", {"start": "2024-01-01", "end": "2024-12-31"}, timeout=300))
    assert in_2024["Tapers and discontinuations"] == "76"    # complete in 2024: 11 + 24 + 21 + 20 (issue 12)
    now = _count(cards["Patients with an opioid fill"].value)
    assert cards["Patients with an opioid fill"].proto.delta == f"{now - _count(in_2024['Patients with an opioid fill']):+,}"
    # The tapers-by-month chart: bars adding up by quarter to 14, 10, 7, 1; June shaded provisional (measurable
    # to the 5th), July to December not measurable: 7 shaded months, both states in the legend.
    fig = next(c for c in charts(at) if "by month of start" in c["layout"]["title"]["text"])
    counts = values(fig["data"][0]["y"])
    assert [sum(counts[i:i + 3]) for i in (0, 3, 6, 9)] == [14, 10, 7, 1]
    assert len(fig["layout"]["shapes"]) == 7
    assert {"Shaded: provisional", "Shaded: not measurable yet"} <= {d.get("name") for d in fig["data"]}


def test_overview_first_half_year_of_2023_says_what_has_no_history(sample_env):
    at = run("overview", {"start": "2023-01-01", "end": "2023-06-30"}, timeout=300)
    tapers = _cards(at)["Tapers and discontinuations"]
    # Only 30 Jun 2023 has a whole 180-day baseline (2023-01-01 + 180 days): 0 tapers, provisional.
    assert (tapers.value, tapers.proto.delta) == ("0", "provisional")
    assert "Only 30 Jun 2023 to 30 Jun 2023 can be measured" in tapers.proto.help
    # New starts need 90 days of history: only 1 Apr - 30 Jun: the 83.2% and 79.8% are provisional.
    cells = [x.value for x in at.markdown]
    assert "83.2%  \n:gray[provisional]" in cells and "79.8%  \n:gray[provisional]" in cells
    assert any(c.startswith("- No change is shown: the data do not reach back to the previous period") for c in cells)
    # The first quarter: no day has its baseline, look-back or 120 days before it: a word instead of a number.
    at = run("overview", {"start": "2023-01-01", "end": "2023-03-31"}, timeout=300)
    cards = _cards(at)
    for name in ("Tapers and discontinuations", "Abrupt discontinuations",
                 "On long-term opioid therapy"):                        # 2023-01-01 + 120 days = 1 May 2023
        assert (cards[name].value, cards[name].proto.delta) == ("–", "not measurable yet"), name
    assert cards["Patients with an opioid fill"].proto.delta != "not measurable yet"
    text = " ".join(x.value for x in at.markdown)
    assert "**New starts given more than 7 days**: not measurable yet: no day of the period can be measured" in text
    fig = next(c for c in charts(at) if "by month of start" in c["layout"]["title"]["text"])
    assert len(fig["layout"]["shapes"]) == 3                            # January, February, March all shaded


def test_overview_on_23_days_says_the_benzodiazepine_measure_needs_30(sample_env):
    at = run("overview", {"start": "2025-03-01", "end": "2025-03-23"}, timeout=300)
    text = " ".join(x.value for x in at.markdown)
    assert "**Opioids with benzodiazepines**: needs a period of at least 30 days" in text
    assert not any("benzo_overlap" in str(x.proto) for x in at.get("page_link"))   # not ranked on 0.0%
    # 23 days are compared with the 23 days before: 6 Feb (28 - 22) to 28 Feb 2025.
    assert "Changes are against the previous period, 06 Feb 2025 to 28 Feb 2025." in text


def test_tapers_and_variation_pages_follow_the_same_rule(sample_env):
    # 2025: tapers measurable to 5 Jun 2025 (210-day follow-up): the Tapers page says provisional.
    at = run("tapers", timeout=300)
    assert any(w.value.startswith("**Provisional.** Only 01 Jan 2025 to 05 Jun 2025 can be measured") for w in at.warning)
    # Q1 2023: no taper has its 180-day baseline: a word, no chart.
    at = run("tapers", {"start": "2023-01-01", "end": "2023-03-31"}, timeout=300)
    assert "not measurable yet" in at.info[0].value and not at.get("plotly_chart")
    # 23 days: the benzodiazepine measure's funnel is not drawn on a figure that cannot be met.
    at = run("variation", {"start": "2025-03-01", "end": "2025-03-23", "measure": "benzo_overlap"}, timeout=300)
    assert "needs a period of at least 30 days" in at.info[0].value and not at.get("plotly_chart")


def test_methods_page_states_the_measurability_rule_and_each_measures_days(sample_env):
    at = run("methods", timeout=300)
    assert any("day d can be measured when d − before" in x.value for x in at.markdown)
    table = next(d.value for d in at.dataframe if "days before" in d.value.columns).set_index("measure")
    row = table.loc["Tapers faster than 40% a month"]
    # 180-day baseline, 30 x 7 = 210 days of follow-up; in 2025 (the default) measurable to 5 Jun 2025.
    assert (row["days before"], row["days from the day on"]) == ("180", "210")
    assert (row["this period"], row["measurable part"]) == ("provisional", "01 Jan 2025 to 05 Jun 2025")
    assert table.loc["Opioids with benzodiazepines", "shortest period (days)"] == "30"


# --- One clinician: nothing to compare (issue 15) ----------------------------------------------------

ONE = {**H1, "specialty": "Pain"}   # Pain is D3 only: one clinician in the selection


@pytest.mark.parametrize("view", ["Ranked, allowing for chance", "By clinic", "The numbers"])
def test_variation_says_too_few_to_compare_for_one_clinician(worked, view):
    from dashboard.views import variation

    at = run("variation", {**ONE, "measure": "high_dose_50", "view": view})
    # D3's T1 (100 MME) and T2 (82.9 MME) are both at 50 MME or more: 2 of 2 = 100.0%.
    assert at.info[0].value == (f"**{variation.too_few_to_compare()}** Only {label('D3')} has patients in this "
                                "measure from 01 Jan 2025 to 30 Jun 2025 (100.0%, 2 patients); a funnel, a ranking "
                                "or a spread by clinic needs at least 2 clinicians.")
    assert charts(at) == [] and not at.dataframe and not at.metric     # no funnel of one point, no ranking
    # Two clinicians (clinic North: D1 and D3) are compared again.
    at = run("variation", {**H1, "clinic": "C1", "measure": "high_dose_50", "view": view})
    assert len(charts(at)) >= 1 and metrics(at)["Clinicians"] == "2"


def test_overview_and_variation_share_the_too_few_wording(worked):
    from dashboard.views import variation

    assert variation.too_few_to_compare() == "Too few clinicians in this selection to compare. Widen the filters."
    assert variation.MIN_TO_COMPARE == 2


def test_profile_of_the_only_clinician_says_too_few_to_compare(worked):
    from dashboard.views import variation

    at = run("profile", {**ONE, "clinician": label("D3").split()[-1]})
    info = [x.value for x in at.info]
    assert info[0].startswith(f"**{variation.too_few_to_compare()}** {label('D3')} is the only clinician")
    titles = [c["layout"]["title"]["text"] for c in charts(at)]
    assert not any("among peers" in t for t in titles)                  # no strip of a lone diamond
    assert any(t.startswith(f"Daily dose around {label('D3')}") for t in titles)   # their tapers still shown
    # The verdict stands second, where a 1280 px screen shows it.
    assert list(at.table[0].value.columns[:2]) == ["Measure", "Compared with peers"]


def test_the_ranked_chart_says_its_intervals_are_not_the_flags(worked):
    at = run("variation", {**H1, "measure": "high_dose_50", "view": "Ranked, allowing for chance"})
    captions = [c.value for c in at.caption]
    said = [c for c in captions if c.startswith("Each line is a 95% interval for one clinician's shrunken value.")]
    # The worked data are overdispersed: random-effects limits, which the caption says allow for colleagues' differences.
    assert len(said) == 1 and "who stands out is judged on the funnel, against its limits (" in said[0]
    assert "DerSimonian" in said[0] and "which also allow for the ordinary differences between colleagues" in said[0]
