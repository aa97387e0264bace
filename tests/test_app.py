"""Dashboard pages in Streamlit's AppTest, on the sample database and on an empty one."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest


def _overview():
    from dashboard.views import overview

    overview.render()


def _data_quality():
    from dashboard.views import data_quality

    data_quality.render()


@pytest.fixture
def sample_env(monkeypatch, sample_duckdb):
    monkeypatch.setenv("RXDASH_DB_URL", sample_duckdb)


def test_overview_shows_the_sample_counts_and_monthly_chart(sample_env):
    at = AppTest.from_function(_overview, default_timeout=60).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Clinics"] == "5" and metrics["Clinicians"] == "40"
    chart = at.get("plotly_chart")[0].proto.spec
    assert "Patients filling an opioid analgesic, by month (01 Jan 2023 to 31 Dec 2025)" in chart


def test_overview_period_filter_changes_the_chart(sample_env):
    import datetime as dt

    at = AppTest.from_function(_overview, default_timeout=60).run()
    at.date_input(key="period").set_value((dt.date(2024, 1, 1), dt.date(2024, 3, 31))).run()
    assert not at.exception
    spec = at.get("plotly_chart")[0].proto.spec
    assert "(01 Jan 2024 to 31 Mar 2024)" in spec
    assert "2023-" not in spec.split('"x"')[1][:400]


def test_data_quality_lists_rejections_and_drug_descriptions(sample_env):
    at = AppTest.from_function(_data_quality, default_timeout=60).run()
    assert not at.exception
    frames = [df.value for df in at.dataframe]
    latest = frames[0].set_index("table_name")
    assert latest.loc["prescriptions", "rows_rejected"] == 13
    assert "Rows rejected by the latest load" in at.get("plotly_chart")[0].proto.spec


def test_dose_coverage_follows_the_factor_set(sample_env):
    # Tramadol and tapentadol have no factor in the CDC 2016 set: their prescriptions are listed.
    at = AppTest.from_function(_data_quality, default_timeout=60).run()
    assert not any("no MME factor" in w.value for w in at.warning)  # every sample drug has a 2022 factor
    at.selectbox(key="coverage_factor_set").set_value("cdc2016").run()
    assert not at.exception
    assert any("no MME factor" in w.value for w in at.warning)
    missing = next(df.value for df in at.dataframe if list(df.value.columns) == ["ingredient", "strength_unit", "prescriptions"])
    assert set(missing["ingredient"]) == {"tramadol", "tapentadol"}


def test_pages_explain_an_empty_database(monkeypatch, tmp_path):
    from analysis import db

    url = f"duckdb:///{tmp_path / 'empty.duckdb'}"
    engine = db.make_engine(url)
    with engine.begin() as conn:
        db.init_schema(conn)
    engine.dispose()
    monkeypatch.setenv("RXDASH_DB_URL", url)
    for page in (_overview, _data_quality):
        at = AppTest.from_function(page, default_timeout=60).run()
        assert not at.exception
        assert "rxdash load" in at.info[0].value


def test_pages_explain_a_missing_database(monkeypatch, tmp_path):
    monkeypatch.setenv("RXDASH_DB_URL", f"duckdb:///{tmp_path / 'nowhere.duckdb'}")
    at = AppTest.from_function(_overview, default_timeout=60).run()
    assert not at.exception
    assert "rxdash demo" in at.info[0].value or "rxdash load" in at.info[0].value


def _variation():
    from dashboard.views import variation

    variation.render()


def test_variation_page_draws_the_funnel_for_the_chosen_measure(sample_env):
    at = AppTest.from_function(_variation, default_timeout=120).run()
    assert not at.exception
    spec = at.get("plotly_chart")[0].proto.spec
    # Default: the first declared measure over the last 365 days of data (2025-01-01 .. 2025-12-31).
    assert "Long-term patients at 90 MME a day or more: clinicians compared, 01 Jan 2025 to 31 Dec 2025" in spec
    assert {m.label for m in at.metric} >= {"Pooled value", "Clinicians", "Outside the 99.8% limits"}
    at.selectbox(key="measure").set_value("multiple_prescribers").run()   # compared between clinics
    assert not at.exception
    assert "Patients with 4 or more opioid prescribers: clinics compared" in at.get("plotly_chart")[0].proto.spec
    assert at.metric[1].label == "Clinics" and at.metric[1].value == "5"


def test_variation_page_says_when_a_period_has_no_cases(sample_env):
    import datetime as dt

    at = AppTest.from_function(_variation, default_timeout=120).run()
    at.selectbox(key="measure").set_value("taper_rapid").run()
    at.date_input(key="variation_period").set_value((dt.date(2023, 1, 1), dt.date(2023, 1, 2))).run()
    assert not at.exception
    assert "No patients count towards this measure" in at.info[0].value


def _methods():
    from dashboard.views import methods

    methods.render()


def test_methods_page_shows_every_declaration_its_sql_and_the_factors():
    from analysis import measures

    at = AppTest.from_function(_methods, default_timeout=60).run()
    assert not at.exception
    labels = [e.label for e in at.expander]
    assert labels == [f"{m.title} ({m.id})" for m in measures.MEASURES]
    assert len(at.code) == len(measures.MEASURES) and "measure_benzo_overlap" in at.code[3].value
    assert "with\n" in at.code[0].value and "period_ltot" in at.code[0].value
    factors = at.dataframe[-1].value
    assert {"cdc2022", "cdc2016", "cdc_file_2018"} <= set(factors["factor_set"])
    params = at.dataframe[0].value
    assert params.set_index("parameter").loc["baseline_min_mme", "value"] == "50.0"


def _tapers():
    from dashboard.views import tapers

    tapers.render()


def test_tapers_page_shows_speeds_against_the_guideline_bands(sample_env):
    import datetime as dt

    at = AppTest.from_function(_tapers, default_timeout=120).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    n_default = int(metrics["Tapers and discontinuations"].replace(",", ""))
    assert n_default > 0
    import json

    speed = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    assert speed["title"]["text"].startswith(f"How fast doses fell: {n_default} tapers starting")
    notes = [a["text"] for a in speed["annotations"]]
    assert "gradual ≤ 10%/month (CDC 2022)" in notes and "rapid > 40%/month" in notes
    assert "Taper categories by clinician" in at.get("plotly_chart")[1].proto.spec
    # The default is the whole data range; a single year holds fewer tapers.
    at.date_input(key="taper_period").set_value((dt.date(2025, 1, 1), dt.date(2025, 12, 31))).run()
    one_year = int({m.label: m.value for m in at.metric}["Tapers and discontinuations"].replace(",", ""))
    assert 0 < one_year < n_default


def test_variation_page_ranks_shrunken_values_and_shows_the_quarterly_trend(sample_env):
    import json

    at = AppTest.from_function(_variation, default_timeout=180).run()
    assert not at.exception
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [s["layout"]["title"]["text"] for s in specs]
    assert titles[1].startswith("Shrunken values with 95% intervals")
    assert titles[2] == "Are we converging? Variation by quarter"
    # The default period (2025) has four quarters; every clinician has a ranked point.
    assert [q[:10] for q in specs[2]["data"][0]["x"]] == ["2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01"]
    assert len(specs[1]["data"][0]["customdata"]) == 40
