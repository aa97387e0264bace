"""Identifying drugs by NDC and RxCUI: code shapes, precedence, skipped other drugs, and the NDC reference
command. Database tests run on DuckDB and PostgreSQL (the `engine` fixture); files are written in tmp_path.

Hand-worked values from the CDC oral MME conversion file, September 2017 (the bundled NDC reference):
00406037801 hydrocodone bitartrate/acetaminophen tablet, 10 mg hydrocodone: 120 tablets over 30 days =
10 x 120 / 30 x 1 = 40 MME a day; 00034051410 MS Contin 15 mg ER tablet: 15 x 60 / 30 x 1 = 30;
00093690145 fentanyl 50 mcg/hr patch: 50 x 10 patches x 3 days a patch / 30 x 2.4 = 120 (CDC 2022).
"""
from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from analysis import codes, db, dose, ingest, ndc, rxcui
from analysis.drugs import Product, identify_drug
from tests.fixtures import HEADERS, read_rejects, write_dataset

AS_OF = dt.date(2026, 1, 1)
HEADER = HEADERS["prescriptions"] + ["ndc", "rxcui"]


def rx(rx_id, ndc="", rxcui="", drug="", quantity="120", days="30", patient="P1", ingredient="", strength="",
       unit="", form=""):
    return [rx_id, patient, "D1", "2025-03-01", drug, ingredient, strength, unit, form, quantity, days, "", ndc, rxcui]


def load(engine, tmp_path, rows):
    folder = write_dataset(tmp_path / "d", headers={"prescriptions": HEADER}, prescriptions=rows)
    return ingest.load_directory(engine, folder, tmp_path / "rejects.csv", as_of=AS_OF)


def daily_mme(engine, factor_set="cdc2022") -> dict[str, float]:
    with engine.connect() as conn:
        frame = db.read_frame(conn, "rx_daily_mme", dose.DoseParams(factor_set, False).sql())
    return dict(zip(frame["rx_id"], frame["daily_mme"]))


def prescriptions(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        return {r[0]: tuple(r[1:]) for r in conn.exec_driver_sql(
            "select rx_id, ingredient, strength, strength_unit, dose_form, long_acting, drug_class, drug_source "
            "from prescriptions")}


# --- NDC shapes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, readings", [
    ("00406037801", ("00406037801",)),                 # 11 digits, 5-4-2
    ("00406-0378-01", ("00406037801",)),               # 11 digits with hyphens
    ("0406-0378-01", ("00406037801",)),                # 4-4-2: pad the labeler
    ("12345-678-90", ("12345067890",)),                # 5-3-2: pad the product
    ("12345-6789-1", ("12345678901",)),                # 5-4-1: pad the package
    ("0406 0378 01", ("00406037801",)),                # spaces separate like hyphens
    ("406037801", ("00406037801", "04060037801", "04060378001")),   # lost its leading zeros
    ("406037801.0", ("00406037801", "04060037801", "04060378001")),  # went through a float
    ("4.06037801E+08", ("00406037801", "04060037801", "04060378001")),
    ("1234567890", ("01234567890", "12345067890", "12345678900")),  # 10 digits: all three shapes
    ("123-4567-89", ()), ("12345-67890-1", ()), ("abc", ()), ("123456789012", ()), ("12345", ()), ("", ()),
    ("٠٤٠٦٠٣٧٨٠١", ()),                                # non-ASCII digits are no NDC
])
def test_ndc_readings(text, readings):
    assert codes.ndc11_candidates(text) == readings


def test_an_ambiguous_ndc_matches_only_when_one_reading_is_known():
    assert codes.match_ndc("406037801", {"00406037801"}) == ("matched", "00406037801")
    assert codes.match_ndc("1234567890", {"01234567890", "12345678900"}) == ("ambiguous", None)
    assert codes.match_ndc("1234567890", set()) == ("unknown", None)
    assert codes.match_ndc("x-y-z", {"00406037801"}) == ("unreadable", None)
    assert codes.match_ndc("  ", {"00406037801"}) == ("blank", None)


def test_rxcui_normalisation():
    assert codes.normalise_rxcui(" 1049621 ") == "1049621"
    assert codes.normalise_rxcui("1049621.0") == "1049621"
    assert [codes.normalise_rxcui(t) for t in ("", "abc", "0", "123456789", "1.5")] == [None] * 5


# --- precedence (pure) ---------------------------------------------------------------------------------

HYDROCODONE = Product("00406037801", "HYDROCODONE-APAP", "hydrocodone", 10.0, "MG", "Tablet", False, "opioid_analgesic")
OXY_RXCUI = Product("1049621", "oxycodone hydrochloride 5 MG Oral Tablet", "oxycodone", 5.0, "MG", "Oral Tablet",
                    False, "opioid_analgesic")
NDCS, RXCUIS = {HYDROCODONE.code: HYDROCODONE}, {OXY_RXCUI.code: OXY_RXCUI}


def identify(drug_name="", ingredient="", strength="", unit="", form="", la="", ndc_code="", rxcui_code=""):
    return identify_drug(drug_name, ingredient, strength, unit, form, la, ndc_code, rxcui_code, NDCS, RXCUIS)


def test_given_fields_win_over_codes_and_codes_over_the_name():
    given = identify("Morphine 30 MG Oral Tablet", "oxycodone", "5", "mg", ndc_code="00406037801")
    assert (given.ingredient, given.strength, given.source) == ("oxycodone", 5.0, "given")
    by_ndc = identify("Morphine 30 MG Oral Tablet", ndc_code="0406-0378-01", rxcui_code="1049621")
    assert (by_ndc.ingredient, by_ndc.strength, by_ndc.source, by_ndc.parsed) == ("hydrocodone", 10.0, "ndc", False)
    by_rxcui = identify("Morphine 30 MG Oral Tablet", ndc_code="99999999999", rxcui_code="1049621")
    assert (by_rxcui.ingredient, by_rxcui.source) == ("oxycodone", "rxcui")
    # A field the row gives still wins over the code's product, field by field.
    assert identify(la="true", ndc_code="00406037801").long_acting is True
    assert identify(form="Oral Capsule", ndc_code="00406037801").dose_form == "Oral Capsule"
    by_name = identify("Morphine Sulfate 30 MG Oral Tablet")
    assert (by_name.ingredient, by_name.source) == ("morphine", "name")


def test_unknown_codes_skip_only_rows_that_name_no_drug_of_ours():
    assert identify(ndc_code="12345678901").skip == "other_drug_by_ndc"
    assert identify("Lisinopril 10 MG Oral Tablet", ndc_code="12345678901").skip == "other_drug_by_ndc"
    assert identify("LISINOPRIL", ndc_code="12345678901").skip == "other_drug_by_ndc"
    assert identify(rxcui_code="314076").skip == "other_drug_by_rxcui"
    # A name or fields of our drugs load (or are rejected) as before, whatever the code says.
    named = identify("Oxycodone Hydrochloride 5 MG Oral Tablet", ndc_code="12345678901")
    assert (named.skip, named.ingredient, named.source) == (None, "oxycodone", "name")
    assert identify("", "oxycodone", "5", "mg", ndc_code="12345678901").skip is None
    unreadable = identify("OXYCODONE HCL", ndc_code="12345678901")
    assert unreadable.skip is None and "cannot read" in unreadable.error
    # Without a code, an unmapped drug loads as before (shown as unmapped on the Data quality page).
    assert identify("Ibuprofen 200 MG Oral Tablet").skip is None


def test_codes_that_cannot_be_read_are_named_in_the_reason():
    assert "ndc 'abc' is not an NDC" in identify(ndc_code="abc").error
    assert "rxcui 'x1' is not an RxNorm code" in identify(rxcui_code="x1").error
    both = identify_drug("", "", "", "", "", "", "1234567890", "", {"01234567890": HYDROCODONE,
                                                                       "12345678900": HYDROCODONE}, {})
    assert "reads as several products" in both.error


def test_bundled_references_hold_the_hand_worked_products_and_synthea_codes():
    rows = {r["ndc11"]: r for r in ndc.bundled_rows()}
    assert (rows["00406037801"]["ingredient"], rows["00406037801"]["strength"]) == ("hydrocodone", 10.0)
    assert rows["00093690145"]["strength_unit"] == "MCG/HR" and rows["00034051410"]["long_acting"] is True
    assert {r["drug_class"] for r in rows.values()} == {"opioid_analgesic", "benzodiazepine", "buprenorphine",
                                                         "naloxone"}
    products = rxcui.products()
    # Synthea's opioid module codes, and naloxone and buprenorphine/naloxone products.
    for code, ingredient in (("1049621", "oxycodone"), ("856987", "hydrocodone"), ("1049221", "oxycodone"),
                             ("197696", "fentanyl"), ("1860491", "hydrocodone"), ("1010600", "buprenorphine"),
                             ("1725064", "naloxone"), ("1659929", "naloxone"), ("197591", "diazepam")):
        assert products[code].ingredient == ingredient, code


# --- loading (DuckDB and PostgreSQL) ------------------------------------------------------------------

@pytest.mark.parametrize("shapes", [("00406037801", "00034051410", "00093690145"),
                                    ("0406-0378-01", "0034-0514-10", "0093-6901-45"),
                                    ("406037801", "34051410", "93690145")])
def test_ndc_with_a_blank_drug_name_loads_with_the_right_mme(engine, tmp_path, shapes):
    hydrocodone, morphine, fentanyl = shapes
    report = load(engine, tmp_path, [rx("H", hydrocodone, quantity="120"), rx("M", morphine, quantity="60"),
                                     rx("F", fentanyl, quantity="10", patient="P2")])
    assert {t.table: t.rows_loaded for t in report.tables}["prescriptions"] == 3
    assert daily_mme(engine) == {"H": pytest.approx(40), "M": pytest.approx(30), "F": pytest.approx(120)}
    rows = prescriptions(engine)
    assert rows["M"] == ("morphine", 15.0, "MG", "Tablet, Extended Release", True, "opioid_analgesic", "ndc")
    assert rows["F"][:3] == ("fentanyl", 50.0, "MCG/HR") and rows["H"][-1] == "ndc"


def test_other_drugs_are_skipped_and_counted_not_rejected(engine, tmp_path):
    rows = [rx("H", "00406037801"),
            rx("X1", "12345678901"),                                      # unknown NDC, no name
            rx("X2", "12345-6789-2", drug="Lisinopril 10 MG Oral Tablet"),  # unknown NDC, another drug's name
            rx("X3", rxcui="314076"),                                     # unknown RxCUI, no name
            rx("X4", "12345678903", patient="NOBODY"),                    # skipped before any other check
            rx("O", "12345678904", drug="Oxycodone Hydrochloride 5 MG Oral Tablet"),   # ours by name: loads
            rx("B", "12345678905", drug="OXYCODONE HCL"),                 # ours, unreadable: rejected
            rx("Q", "abc")]                                                # no NDC, no name: rejected
    report = load(engine, tmp_path, rows)
    t = {r.table: r for r in report.tables}["prescriptions"]
    assert (t.rows_read, t.rows_loaded, t.rows_skipped, t.rows_rejected) == (8, 2, 4, 2)
    assert t.rows_loaded + t.rows_skipped + t.rows_rejected == t.rows_read
    assert t.skip_reasons == {"other_drug_by_ndc": 3, "other_drug_by_rxcui": 1}
    rejects = read_rejects(tmp_path / "rejects.csv")
    assert sorted(r["row_id"] for r in rejects) == ["B", "Q"]   # skipped rows are not errors
    assert "ndc 'abc' is not an NDC" in next(r["reason"] for r in rejects if r["row_id"] == "Q")
    assert prescriptions(engine)["O"][-1] == "name"
    with engine.connect() as conn:
        logged = conn.exec_driver_sql("select rows_read, rows_loaded, rows_skipped, rows_rejected from load_counts "
                                      "where table_name = 'prescriptions'").one()
        reasons = dict(conn.exec_driver_sql("select reason_code, n_rows from load_skip_reasons").all())
        sources = dict(db.read_frame(conn, "drug_sources").itertuples(index=False))
        skips = db.read_frame(conn, "skip_reasons")
    assert tuple(logged) == (8, 2, 4, 2)
    assert reasons == {"other_drug_by_ndc": 3, "other_drug_by_rxcui": 1}
    assert sources == {"ndc": 1, "name": 1}
    assert skips["n_rows"].sum() == 4


def test_an_rxcui_only_row_resolves(engine, tmp_path):
    load(engine, tmp_path, [rx("S", rxcui="1049621", quantity="120"),        # oxycodone 5 mg (Synthea)
                            rx("N", rxcui="1725064", quantity="2")])          # Narcan nasal spray
    rows = prescriptions(engine)
    assert rows["S"] == ("oxycodone", 5.0, "MG", "Oral Tablet", False, "opioid_analgesic", "rxcui")
    assert rows["N"][5:] == ("naloxone", "rxcui")
    assert daily_mme(engine)["S"] == pytest.approx(5 * 120 / 30 * 1.5)


def test_given_fields_win_over_the_ndc_in_the_database(engine, tmp_path):
    load(engine, tmp_path, [rx("G", "00406037801", ingredient="oxycodone", strength="5", unit="MG",
                               form="Oral Tablet", quantity="60")])
    assert prescriptions(engine)["G"][:3] + prescriptions(engine)["G"][-1:] == ("oxycodone", 5.0, "MG", "given")
    assert daily_mme(engine)["G"] == pytest.approx(5 * 60 / 30 * 1.5)


def test_naloxone_ndcs_are_identified(engine, tmp_path):
    load(engine, tmp_path, [rx("N", "0480-3478-68", quantity="2")])
    assert prescriptions(engine)["N"][5:] == ("naloxone", "ndc")


# --- rxdash reference ndc --------------------------------------------------------------------------------

def _workbook(path, rows, sheet="Opioids", header=None):
    from openpyxl import Workbook

    wb = Workbook()
    doc = wb.active
    doc.title = "Documentation"
    doc.append(["CDC compilation of ... opioid analgesics with oral morphine milligram equivalent conversion "
                "factors, 2099 version"])
    doc.append(["1. This document was created by the CDC National Center for Injury Prevention and Control, "
                "March 2099."])
    ws = wb.create_sheet(sheet)
    ws.append(header or ["NDC", "NDC_Numeric", "PRODNME", "GENNME", "Master_Form", "Class", "Drug",
                         "LongShortActing", "DEAClassCode", "Strength_Per_Unit", "UOM", "MME_Conversion_Factor"])
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "dashboard", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_reference_ndc_command_loads_a_newer_cdc_file_that_later_loads_keep(tmp_path):
    url = f"duckdb:///{tmp_path / 'ref.duckdb'}"
    book = _workbook(tmp_path / "cdc2099.xlsx", [
        ["99999000101", 99999000101, "NEWCODONE", "Oxycodone Hydrochloride", "Tablet", "Opioid", "Oxycodone SA",
         "SA", "2", 20, "MG", 1.5],
        [77777000101, 77777000101, "NEWPATCH", "Fentanyl", "Patch, Extended Release", "Opioid", "Fentanyl LA",
         "LA", "2", 25, "MCG/HR", 7.2],     # an NDC stored as a number: its zeros are not lost (11 digits)
        ["00012000101", 12000101, "ODD", "Probuphine", "Implant", "Opioid", "Buprenorphine", "LA", "3", 74.2, None,
         None]])                            # no unit: left out, and said so
    result = cli("reference", "ndc", str(book), "--db", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "CDC oral MME file, March 2099" in result.stdout and "2 products" in result.stdout
    assert "1 no strength or unit left out" in result.stdout
    engine = db.make_engine(url)
    folder = write_dataset(tmp_path / "d", headers={"prescriptions": HEADER},
                           prescriptions=[rx("NEW", "99999-0001-01", quantity="60"), rx("OLD", "00406037801")])
    report = ingest.load_directory(engine, folder, tmp_path / "rejects.csv", as_of=AS_OF)
    t = {r.table: r for r in report.tables}["prescriptions"]
    # The loaded reference is kept by the load: its product loads, the bundled one's NDC is another drug now.
    assert (t.rows_loaded, t.skip_reasons) == (1, {"other_drug_by_ndc": 1})
    assert daily_mme(engine)["NEW"] == pytest.approx(20 * 60 / 30 * 1.5)
    with engine.connect() as conn:
        editions = db.read_frame(conn, "ndc_reference")
    engine.dispose()
    # The bundled naloxone products are kept beside a loaded CDC file (which has none).
    assert dict(zip(editions["edition"], editions["origin"]))["CDC oral MME file, March 2099"] == "loaded"
    assert set(editions["origin"]) == {"loaded"} and len(editions) == 2


def test_reference_ndc_csv_in_the_bundled_format(tmp_path):
    url = f"duckdb:///{tmp_path / 'ref.duckdb'}"
    path = tmp_path / "mine.csv"
    path.write_text(",".join(ndc.NDC_COLUMNS) + "\n"
                    "55555-0001-01,MY MORPHINE,Morphine Sulfate,30,mg,Tablet,false,,Local formulary 2025\n",
                    encoding="utf-8")
    result = cli("reference", "ndc", str(path), "--db", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    engine = db.make_engine(url)
    with engine.connect() as conn:
        row = conn.exec_driver_sql("select ingredient, strength, strength_unit, drug_class, origin from ref_ndc "
                                   "where ndc11 = '55555000101'").one()
    engine.dispose()
    assert tuple(row) == ("morphine", 30.0, "MG", "opioid_analgesic", "loaded")


@pytest.mark.parametrize("name, content, message", [
    ("missing.xlsx", None, "missing.xlsx: no such file"),
    ("notes.txt", "hello", "expected a CDC workbook (.xlsx) or a CSV file (.csv)"),
    ("broken.xlsx", "not a zip", "not an Excel workbook that can be read"),
    ("cols.csv", "ndc,name\n1,x\n", "missing columns"),
    ("value.csv", ",".join(ndc.NDC_COLUMNS) + "\n00406037801,X,oxycodone,ten,MG,Tablet,false,,E\n",
     "line 2: strength 'ten' is not a number above zero"),
    ("other.csv", ",".join(ndc.NDC_COLUMNS) + "\n00406037801,X,lisinopril,10,MG,Tablet,false,,E\n",
     "ingredient 'lisinopril' is not an opioid"),
    ("empty.csv", ",".join(ndc.NDC_COLUMNS) + "\n", "no usable product rows"),
])
def test_a_bad_reference_file_gives_one_readable_line(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = cli("reference", "ndc", str(path), "--db", f"duckdb:///{tmp_path / 'x.duckdb'}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("rxdash reference: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_workbook_without_the_cdc_sheets_or_columns_is_refused(tmp_path):
    wrong_sheet = _workbook(tmp_path / "a.xlsx", [], sheet="Stimulants")
    no_unit = _workbook(tmp_path / "b.xlsx", [], header=["NDC", "PRODNME", "Master_Form", "Drug", "Strength_Per_Unit"])
    with pytest.raises(ndc.ReferenceFileError, match="no Opioids or Benzos sheet"):
        ndc.read_reference(wrong_sheet)
    with pytest.raises(ndc.ReferenceFileError, match="lacks the column unit"):
        ndc.read_reference(no_unit)


def test_a_loaded_reference_survives_a_replace_load_and_the_bundled_one_comes_back_otherwise(engine, tmp_path):
    with engine.begin() as conn:
        db.init_schema(conn)
        ndc.load_user_reference(conn, [ndc._product_row("99999000101", "X", "oxycodone", 20.0, "MG", "Tablet",
                                                        False, "Mine")])
    folder = write_dataset(tmp_path / "d", headers={"prescriptions": HEADER},
                           prescriptions=[rx("NEW", "99999000101", quantity="60")])
    ingest.load_directory(engine, folder, tmp_path / "rejects.csv", as_of=AS_OF, replace=True)
    with engine.connect() as conn:
        origins = set(conn.exec_driver_sql("select distinct origin from ref_ndc").scalars())
        assert conn.exec_driver_sql("select count(*) from prescriptions").scalar_one() == 1
    assert origins == {"loaded"}
    with engine.begin() as conn:
        conn.exec_driver_sql("delete from ref_ndc")
        ndc.refresh_bundled(conn)
        n = conn.exec_driver_sql("select count(*) from ref_ndc where origin = 'bundled'").scalar_one()
    assert n == len(ndc.bundled_rows())
