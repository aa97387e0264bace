"""Methods and Data quality read in plain words (issue 15, section 4): no raw parameter or column name and no
Python repr outside the code spans and columns meant for engineers, one number format per table column, and a
Methods page that states its diagnosis value sets and every cause of an unknown dose (AppTest, on the sample)."""
from __future__ import annotations

import csv
import dataclasses
import json
import re
from importlib import resources

import pandas as pd
import pytest

from analysis import dose, measures
from analysis.ingest import QUANTITY_SOURCES
from tests.test_app import run

# Where a code name is meant for an engineer, and so allowed on screen. Everything else a reader sees must be
# plain words: markdown and captions outside `code spans`, labels, metric values, column headings and cells.
ENGINEER_COLUMNS = {
    "methods": {"parameter",        # the parameters' names in analysis/dose.py and analysis/measures.py
                "factor_set"},      # the factor set's name for `rxdash summarize --factor-set`
    "data-quality": {"quantity_source",   # prescriptions.quantity_source, the contract's code
                     "what", "filters"},  # the audit log as recorded (export names, filter keys)
}
# A measure's expander is titled "Title (measure_id)": the id is what links and exports use.
MEASURE_ID_SUFFIX = re.compile(r" \((" + "|".join(m.id for m in measures.MEASURES) + r")\)$")

_CODE_SPAN = re.compile(r"(?<!\\)`[^`]*`")
_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_SNAKE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+")
_REPR = re.compile(r"\b(True|False|None|nan|NaN)\b")


def raw_names(text: str) -> set[str]:
    """The snake_case tokens and Python reprs (True, False, None, nan) in text as a reader sees it: code spans
    removed, Markdown escapes read, path-like words (data/sample, MG/HR) left alone."""
    plain = _MD_ESCAPE.sub(r"\1", _CODE_SPAN.sub(" ", text)).replace("\u2060", "")
    words = [w.strip(".,;:()[]\"'*") for w in plain.split() if "/" not in w]
    return {w for w in words if _SNAKE.fullmatch(w)} | set(_REPR.findall(plain))


def shown_text(at, page: str) -> list[tuple[str, str]]:
    """(where, text) for every piece of text the page's main area shows a reader, engineer columns left out."""
    main = at.main
    out = [(kind, el.value) for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning",
                                          "success", "error") for el in main.get(kind)]
    out += [("metric", f"{m.label}: {m.value}") for m in main.metric]
    out += [("expander", MEASURE_ID_SUFFIX.sub("", e.label)) for e in main.expander]
    out += [("selectbox", f"{s.label}: {'; '.join(map(str, s.options))}") for s in main.selectbox]
    for i, df in enumerate(main.dataframe):
        config = json.loads(df.proto.columns or "{}")
        for column in df.value.columns:
            if column in ENGINEER_COLUMNS[page]:
                continue
            out.append((f"table {i} heading", str(config.get(column, {}).get("label", column))))
            cells = df.value[column]
            out += [(f"table {i} {column}", "None") for _ in range(int(cells.isna().sum()))]  # shown as None
            out += [(f"table {i} {column}", v) for v in cells.dropna().map(str).unique()]
    return out


def assert_plain(at, page: str) -> None:
    found = {(where, text[:120]): sorted(raw_names(text)) for where, text in shown_text(at, page) if raw_names(text)}
    assert not found, found


def _page_on_sample(page: str, sample_duckdb: str):
    """The page run once over the sample database (module-scoped fixtures cannot use monkeypatch)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RXDASH_DB_URL", sample_duckdb)
    try:
        return run(page, timeout=300)
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def methods_page(sample_duckdb):
    return _page_on_sample("methods", sample_duckdb)


@pytest.fixture(scope="module")
def quality_page(sample_duckdb):
    return _page_on_sample("data-quality", sample_duckdb)


def table(at, column: str) -> tuple[pd.DataFrame, dict]:
    """The first table of the page holding `column`, with its column_config."""
    df = next(d for d in at.main.dataframe if column in d.value.columns)
    return df.value, json.loads(df.proto.columns or "{}")


def number_format(config: dict, column: str) -> str:
    """A column's number format in the dataframe's column_config ("" when it has none)."""
    return config.get(column, {}).get("type_config", {}).get("format", "")


# --- The scanner itself ------------------------------------------------------------------------------

def test_raw_names_finds_the_issues_examples_and_spares_code_spans_and_paths():
    assert raw_names("min_fall 0.15, exclude True") == {"min_fall", "True"}
    assert raw_names("Unit (strength_unit)") == {"strength_unit"}
    assert raw_names("the days' supply (`days_supply`) from data/sample, 25 MCG/HR") == set()
    assert raw_names(r"loaded from data\/sample \(a\_b\)") == {"a_b"}   # an escaped name is still a name
    assert raw_names("Ignored columns: None") == {"None"}


# --- Plain words -------------------------------------------------------------------------------------

@pytest.mark.parametrize("page", ["methods", "data-quality"])
def test_pages_show_no_raw_names_outside_code_spans_and_engineer_columns(page, methods_page, quality_page):
    assert_plain(methods_page if page == "methods" else quality_page, page)


def test_every_parameter_has_words_and_fractions_read_as_percentages(methods_page):
    from dashboard.views import methods

    fields = {f.name for cls in (dose.DoseParams, dose.LtotParams, dose.TaperParams, measures.MeasureParams)
              for f in dataclasses.fields(cls)}
    assert fields == set(methods.PARAMETER_WORDS)   # a new parameter needs its words on the Methods page
    params, config = table(methods_page, "parameter")
    value = params.set_index("parameter")["value"]
    # TaperParams: min_fall 0.15 and abrupt_fraction 0.5 are fractions of the baseline.
    assert value["min_fall"] == "15% of the baseline" and value["abrupt_fraction"] == "50% of the baseline"
    assert value["exclude"] == "on (cancer, hospice or palliative care, sickle cell disease)"
    assert value["window_months"] == "60 days" and value["followup_months"] == "7 months of 30 days (210 days)"
    assert value["rapid_min_pct"] == "40% of the baseline a month" and value["baseline_min_mme"] == "50 MME a day"
    assert config["parameter"]["label"].startswith("Name in the code")   # the code's name comes last, labelled
    assert list(params.columns)[-1] == "parameter"


def test_parameters_follow_the_sidebar(monkeypatch, sample_duckdb):
    monkeypatch.setenv("RXDASH_DB_URL", sample_duckdb)
    at = run("methods", {"rapid": "35", "exclusions": "off"}, timeout=300)
    value = table(at, "parameter")[0].set_index("parameter")["value"]
    assert value["rapid_min_pct"] == "35% of the baseline a month"
    assert value["exclude"] == "off: every patient counted"
    assert any(m.value.startswith("Exclusions: off") for m in at.main.markdown)


def test_measure_parameters_are_words_with_the_sql_name_after(methods_page):
    lines = [m.value for m in methods_page.main.markdown if m.value.startswith("**Measure parameters:**")]
    assert "**Measure parameters:** dose threshold 90 MME a day (`threshold_mme`)." in lines
    assert "**Measure parameters:** naloxone expected from 50 MME a day (`naloxone_mme`)." in lines


def test_quantity_sources_and_drug_classes_have_words(quality_page):
    from dashboard.views import data_quality

    assert set(QUANTITY_SOURCES) <= set(data_quality.QUANTITY_SOURCE_LABELS)
    classes = {r["drug_class"] for r in csv.DictReader(
        resources.files("analysis").joinpath("reference/drug_classes.csv").read_text(encoding="utf-8").splitlines())}
    assert classes | {"unmapped"} <= set(data_quality.DRUG_CLASS_LABELS)
    supply, config = table(quality_page, "quantity_source")
    # The sample is all dispensings: 21,881 fills, quantity and days given.
    assert supply.to_dict("records") == [{
        "how": "quantity and days' supply both given (a dispensing): measured", "prescriptions": 21881,
        "opioid_prescriptions": 18305, "opioid_days_supply": 524700, "quantity_source": "given"}]
    assert list(supply.columns)[-1] == "quantity_source" and "quantity_source" in config["quantity_source"]["label"]
    assert number_format(config, "opioid_days_supply") == "localized"   # 524,700, as the metrics write counts
    drugs, _ = table(quality_page, "drug_class")
    assert set(drugs["drug_class"]) == {"opioid analgesic", "benzodiazepine", "buprenorphine", "naloxone"}
    assert set(drugs["long_acting"]) == {"yes", "no"}


# --- One number format per column --------------------------------------------------------------------

@pytest.mark.parametrize("page", ["methods", "data-quality"])
def test_every_number_column_has_one_format(page, methods_page, quality_page):
    at = methods_page if page == "methods" else quality_page
    loose = []
    for i, df in enumerate(at.main.dataframe):
        config = json.loads(df.proto.columns or "{}")
        for column, values in df.value.items():
            if pd.api.types.is_integer_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
                continue                                     # whole numbers and dates read alike
            if pd.api.types.is_float_dtype(values):
                fmt = number_format(config, column)
                if not re.fullmatch(r"%\.\d+f(%%)?", fmt):   # 15.0 beside 0.5 needs one decimals count (a share: "%")
                    loose.append((i, column, fmt))
            elif any(not isinstance(v, str) for v in values.dropna()):
                loose.append((i, column, "mixed objects"))   # decimals from SQL sums show their own digits
    assert not loose, loose


def test_strength_and_factors_show_fixed_decimals(methods_page, quality_page):
    # Sample strengths 15, 50, 5, 10, 1, 0.5 (alprazolam), 25 ... need one decimal; factors 0.13 .. 12 need two.
    assert number_format(table(quality_page, "drug_class")[1], "strength") == "%.1f"
    factors, config = table(methods_page, "mme_factor")
    assert number_format(config, "mme_factor") == "%.2f"
    patch = factors[(factors["factor_set"] == "cdc2022") & (factors["ingredient"] == "fentanyl")].iloc[0]
    assert (patch["mme_factor"], patch["quantity_multiplier"], patch["form_group"]) == (2.4, 3, "patch")
    assert patch["factor_set_label"] == "CDC 2022"
    tiers = factors.loc[(factors["factor_set"] == "cdc2016") & (factors["ingredient"] == "methadone"), "methadone_tier"]
    assert list(tiers) == ["0 to 20", "20 to 40", "40 to 60", "above 60"]


# --- Methods stands on its own -----------------------------------------------------------------------

def test_methods_lists_the_diagnosis_value_sets_from_the_reference_file(methods_page):
    codes, config = table(methods_page, "description")
    # analysis/reference/condition_codes.csv: 29 codes; cancer C (ICD-10-CM prefix) + 11 SNOMED; overdose
    # T40.0-T40.4 and T40.6 (6 prefixes) + 2 SNOMED; sickle cell D57 + 2; palliative Z515 + 2; OUD F11 + 2.
    assert len(codes) == 29
    assert codes["use"].value_counts().to_dict() == {
        "Cancer: excluded": 12, "Opioid overdose: an event": 8, "Sickle cell disease: excluded": 3,
        "Hospice or palliative care: excluded": 3, "Opioid use disorder: recorded, used by no measure": 3}
    overdose = codes[codes["use"] == "Opioid overdose: an event"]
    assert set(overdose["code"]) == {"T400…", "T401…", "T402…", "T403…", "T404…", "T406…", "55680006", "297199000"}
    assert set(codes["system"]) == {"ICD-10-CM", "SNOMED CT"}
    assert codes.loc[codes["code"] == "Z515", "use"].item() == "Hospice or palliative care: excluded"   # exact
    assert config["use"]["label"] == "Used for"
    text = " ".join(m.value for m in methods_page.main.markdown)
    assert "ICD-10-CM codes match by prefix" in text and "SNOMED CT codes exactly" in text
    assert "CMS Part D event files carry no diagnoses" in text


def test_methods_states_every_cause_of_an_unknown_dose(methods_page):
    text = " ".join(m.value for m in methods_page.main.markdown)
    unknown = next(line for line in text.split("\n") if line.startswith("- **Dose unknown, never 0 MME.**"))
    for cause in ("no factor in the chosen set", "tramadol and tapentadol under CDC 2016",
                  "transmucosal fentanyl under CDC 2022 and CDC 2016", "a unit outside the vocabulary",
                  "supply with days but no quantity", "`days_only` or `end_only`", "`no_quantity`"):
        assert cause in unknown, cause
    assert "(`no_quantity`)" in text   # the rejection: a row that nothing gives days to
    assert "- **Days but no quantity.**" in text
