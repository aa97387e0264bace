"""Dashboard pages in Streamlit's AppTest: each page with the shared sidebar, on a hand-worked data set
(numbers below come from tests/test_measures.py's worked example), on the sample, and on empty databases."""
from __future__ import annotations

import base64
import datetime as dt
import json

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
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


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


def test_variation_says_when_a_measure_has_no_cases(worked):
    at = run("variation", {"start": "2024-06-01", "end": "2024-06-30", "measure": "taper_rapid"})
    assert "No patients count towards this measure" in at.info[0].value


def test_variation_on_the_sample_shows_clinics_and_the_quarterly_trend(sample_env):
    at = run("variation", {"view": "Are we converging?"}, timeout=180)
    specs = charts(at)
    titles = [s["layout"]["title"]["text"] for s in specs]
    assert titles[0] == "Long-term patients at 90 MME a day or more: clinicians compared, 01 Jan 2025 to 31 Dec 2025"
    trend = next(s for s in specs if "are we converging?" in s["layout"]["title"]["text"])
    assert [q[:10] for q in trend["data"][0]["x"]] == ["2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01"]
    at.selectbox(key="measure").set_value("multiple_prescribers").run()
    assert "Patients with 4 or more opioid prescribers: clinics compared" in at.get("plotly_chart")[0].proto.spec
    assert metrics(at)["Clinics"] == "5"


def test_the_factor_set_changes_the_doses(sample_env):
    # Tramadol and tapentadol have no factor in the CDC 2016 set: long-term patients' average dose falls.
    def pooled(factors):
        query = {"measure": "mean_daily_mme", **({"factors": factors} if factors else {})}
        return float(metrics(run("variation", query, timeout=180))["Pooled value"].split()[0])

    assert pooled("cdc2016") < pooled(None)


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
    captions = [a["text"] for a in trajectories["layout"]["annotations"]]
    assert "moderate · 25%/month" in captions and "abrupt discontinuation · 100%/month" in captions
    # T2: 100 MME for the 180 days before, then 75: the line sits at 100% then 75% of baseline.
    t2 = trajectories["data"][0]
    assert [y for y in t2["y"] if y is not None][:2] == [100.0, 100.0] and 75.0 in t2["y"]
    assert "2025-" not in json.dumps(trajectories["data"])          # days from the start, never dates
    events = next(s for s in specs if s["layout"]["title"]["text"].startswith("Tapers followed by an event"))
    within_30 = dict(zip(events["data"][0]["x"], values(events["data"][0]["y"])))
    # T1 (>40%/month) had an ED visit 12 days after the start; T2 (10-40%) had none.
    assert within_30["10–40%/month<br>(1 tapers)"] == 0.0 and within_30["> 40%/month<br>(1 tapers)"] == 1.0
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
    table = at.dataframe[0].value.set_index("Measure")
    # D3's patients T1, T2 in the long-term measures; both peers (D1: L2 0/1, D2: 0/2) have lower shares.
    row = table.loc["Long-term patients at 90 MME a day or more"]
    assert row["Your patients"] == 2 and row["Peers with a lower figure"] == "100% of 2"
    assert "shrunken" in at.markdown[0].value and "not judgement" in at.markdown[0].value
    peers = charts(at)[0]
    assert {tr["name"] for tr in peers["data"]} == {"peers", "peer median", "you"}
    assert "2 tapers or discontinuations started in the period" in " ".join(x.value for x in at.markdown)
    assert any(c["layout"]["title"]["text"].startswith(f"Daily dose around {label('D3')}'s tapers") for c in charts(at))
    assert at.query_params["clinician"] == code


def test_profile_asks_for_a_clinician_and_says_when_there_is_nothing(worked):
    at = run("profile", H1)
    assert "Choose a clinician" in at.info[0].value
    at = run("profile", {**H1, "clinician": label("D4").split()[-1]})
    # D4 has only M1: in the clinic-level measure (not shown here) and in benzo_overlap (0 of 1); no tapers.
    assert list(at.dataframe[0].value["Measure"]) == ["Opioids with benzodiazepines"]
    assert "No tapers" in at.info[0].value
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
    assert labels[0] == "Long-term patients at 80 MME a day or more (high_dose_90)"
    assert len(labels) == len(measures.MEASURES)
    assert len(at.code) == len(measures.MEASURES) and "measure_benzo_overlap" in at.code[3].value
    params = at.dataframe[0].value.set_index("parameter")
    assert params.loc["rapid_min_pct", "value"] == "35.0" and params.loc["baseline_min_mme", "value"] == "50.0"
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
    assert "dl_taper_trajectories_png" in keys and "dl_taper_trajectories_csv" not in keys   # no patient data
