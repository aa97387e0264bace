"""The FHIR R4 adapter (analysis/sources/fhir.py, fhir_sig.py): a code-built source (Bulk Data NDJSON files and a
transaction Bundle) that validates against the R4(B) models of fhir.resources, hand-worked values on DuckDB and
PostgreSQL, the sig arithmetic, contract-vs-FHIR equivalence, bad and hostile input.

Hand-worked values (MME factors CDC 2022: hydrocodone 1, oxycodone 1.5):
- R1 acetaminophen 325 MG / hydrocodone bitartrate 10 MG Oral Tablet (RxNorm 856999), 1 tablet every 6 h
  (frequency 1, period 6 h) = 4 a day, boundsDuration 30 d: 120 tablets over 30 days, 4 × 10 = 40 MME a day.
- R2 the same drug, frequency 4 a period of 1 d, boundsPeriod 2025-03-01..2025-03-30: the same 120 / 30 / 40.
- D1 MedicationDispense of oxycodone hydrochloride 5 MG Oral Tablet (1049621), quantity 60, daysSupply 30:
  2 a day × 5 mg × 1.5 = 15 MME a day; its request R4 is used, not loaded as an order of its own.
- R5 oxycodone 10 MG (1049683) 1 tablet twice a day from 2025-04-01, next request for the drug R6 on 2025-04-21:
  ends 2025-04-20, 20 days, 40 tablets, 2 × 10 × 1.5 = 30 MME a day. R6 active (open), its patient died on
  2025-06-15 (deceasedDateTime): 2025-04-21..06-15 = 56 days split 30 + 26 (60, 52 tablets), 30 MME a day.
- R11 (in the Bundle) hydrocodone 10 MG via a Medication entry, dispenseRequest 90 tablets / 30 days: 30 MME a day;
  its requester is a conditional NPI reference with no Practitioner resource: added as clinician 9999900001.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from analysis import db, ingest
from analysis.sources import create_reject_table, fhir, fhir_sig
from tests.fixtures import by_source_file, daily_mme, read_rejects, write_csv

AS_OF = dt.date(2026, 1, 1)
EXTRACT_DATE = dt.date(2025, 6, 30)
NPI = "http://hl7.org/fhir/sid/us-npi"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
HYDROCODONE_10 = "Acetaminophen 325 MG / Hydrocodone Bitartrate 10 MG Oral Tablet"
OXY5 = "oxycodone hydrochloride 5 MG Oral Tablet"
OXY10 = "oxycodone hydrochloride 10 MG Oral Tablet"
NPI_REF = f"Practitioner?identifier={NPI}|9999912345"


def med(code: str, display: str) -> dict:
    return {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": display}


def dosage(frequency: float | None = None, period: float | None = None, unit: str | None = None, dose: float = 1,
           **bounds) -> list[dict]:
    repeat = {k: v for k, v in (("frequency", frequency), ("period", period), ("periodUnit", unit)) if v is not None}
    repeat.update(bounds)
    return [{"sequence": 1, "timing": {"repeat": repeat},
             "doseAndRate": [{"doseQuantity": {"value": dose}}]}]


def request(rx_id: str, patient: str | None, code: str | None, display: str, authored: str, status: str = "completed",
            requester: str = NPI_REF, **extra) -> dict:
    r = {"resourceType": "MedicationRequest", "id": rx_id, "status": status, "intent": "order",
         "authoredOn": f"{authored}T09:30:00-05:00", "requester": {"reference": requester}}
    if patient:
        r["subject"] = {"reference": f"Patient/{patient}"}
    if code:
        r["medicationCodeableConcept"] = med(code, display)
    r.update(extra)
    return r


def condition(cid: str, patient: str | None, system: str, code: str, onset: str) -> dict:
    r = {"resourceType": "Condition", "id": cid, "code": {"coding": [{"system": system, "code": code}]},
         "onsetDateTime": onset}
    if patient:
        r["subject"] = {"reference": f"Patient/{patient}"}
    return r


def encounter(eid: str, patient: str, klass: str, start: str) -> dict:
    return {"resourceType": "Encounter", "id": eid, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": klass},
            "subject": {"reference": f"Patient/{patient}"}, "period": {"start": f"{start}T10:00:00Z"}}


def resources() -> dict[str, list]:
    """The NDJSON files' resources (file name -> rows; a str row is written as it is)."""
    return {
        "Patient.ndjson": [
            {"resourceType": "Patient", "id": "P1", "gender": "female", "birthDate": "1960-01-01"},
            {"resourceType": "Patient", "id": "P2", "gender": "male", "birthDate": "1975-06-15",
             "deceasedDateTime": "2025-06-15T08:00:00Z"}],
        "Practitioner.ndjson": [
            {"resourceType": "Practitioner", "id": "prac-1", "identifier": [{"system": NPI, "value": "9999912345"}],
             "name": [{"family": "Byron", "given": ["Ada"]}]}],
        "PractitionerRole.ndjson": [
            {"resourceType": "PractitionerRole", "id": "role-1", "practitioner": {"reference": "Practitioner/prac-1"},
             "organization": {"reference": "Organization/org-1"},
             "specialty": [{"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": "208VP0014X",
                                        "display": "Pain Medicine"}], "text": "Pain medicine"}]}],
        "Organization.ndjson": [{"resourceType": "Organization", "id": "org-1", "name": "North Clinic"}],
        "MedicationRequest.ndjson": [
            request("R1", "P1", "856999", HYDROCODONE_10, "2025-01-10",
                    dosageInstruction=dosage(1, 6, "h", boundsDuration={"value": 30, "unit": "days",
                                                                        "system": "http://unitsofmeasure.org",
                                                                        "code": "d"})),
            request("R2", "P2", "856999", HYDROCODONE_10, "2025-03-01", requester="Practitioner/prac-1",
                    dosageInstruction=dosage(4, 1, "d", boundsPeriod={"start": "2025-03-01",
                                                                      "end": "2025-03-30"})),
            request("R3", "P1", "314076", "lisinopril 10 MG Oral Tablet", "2025-01-10",
                    dosageInstruction=dosage(1, 1, "d")),
            request("R4", "P1", "1049621", OXY5, "2025-01-31", requester="PractitionerRole/role-1",
                    dosageInstruction=dosage(2, 1, "d")),
            request("R5", "P2", "1049683", OXY10, "2025-04-01", status="stopped", dosageInstruction=dosage(2, 1, "d")),
            request("R6", "P2", "1049683", OXY10, "2025-04-21", status="active", dosageInstruction=dosage(2, 1, "d")),
            request("R7", None, "1049683", OXY10, "2025-04-21", dosageInstruction=dosage(2, 1, "d")),   # no subject
            request("R8", "NOPE", "1049683", OXY10, "2025-04-21", dosageInstruction=dosage(2, 1, "d")),
            request("R9", "P1", None, "", "2025-04-21"),                                               # no drug
            "",                                                                    # a blank line: not a row
            '{"resourceType": "MedicationRequest", "id": "R99", ',                 # malformed (line 11)
            request("R10", "P1", "1049621", OXY5, "2025-05-01",                     # as needed, no frequency
                    dosageInstruction=[{"asNeededBoolean": True, "doseAndRate": [{"doseQuantity": {"value": 1}}]}]),
        ],
        "MedicationDispense.ndjson": [
            {"resourceType": "MedicationDispense", "id": "D1", "status": "completed",
             "medicationCodeableConcept": med("1049621", OXY5), "subject": {"reference": "Patient/P1"},
             "authorizingPrescription": [{"reference": "MedicationRequest/R4"}],
             "quantity": {"value": 60}, "daysSupply": {"value": 30, "unit": "day", "code": "d"},
             "whenHandedOver": "2025-02-01T15:00:00Z"}],
        "Condition.ndjson": [
            condition("C1", "P1", "http://snomed.info/sct", "363346000", "2024-11-02"),     # cancer: a flag
            condition("C2", "P2", "http://hl7.org/fhir/sid/icd-10-cm", "T40.2X1A", "2025-05-20"),  # overdose
            condition("C3", "P1", "http://snomed.info/sct", "38341003", "2020-01-01"),      # hypertension
            condition("C4", None, "http://snomed.info/sct", "363346000", "2024-11-02"),     # no subject
            condition("C5", "NOPE", "http://snomed.info/sct", "363346000", "2024-11-02")],  # unknown patient
        "Encounter.ndjson": [encounter("E1", "P1", "EMER", "2025-03-01"), encounter("E2", "P2", "IMP", "2025-05-20"),
                             encounter("E3", "P1", "AMB", "2025-03-02")],
        "Observation.ndjson": [{"resourceType": "Observation", "id": "O1", "status": "final",
                                "code": {"text": "Pain severity"}, "subject": {"reference": "Patient/P1"}}],
    }


P3_URL = "urn:uuid:7d5c1a3e-0000-4000-8000-000000000003"
MED_URL = "urn:uuid:7d5c1a3e-0000-4000-8000-0000000000aa"


def bundle() -> dict:
    """A transaction Bundle as Synthea writes one: references are the entries' fullUrl (urn:uuid)."""
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": P3_URL, "resource": {"resourceType": "Patient", "id": "P3", "gender": "female",
                                         "birthDate": "1950-03-03"},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": MED_URL, "resource": {"resourceType": "Medication", "id": "med-1",
                                          "code": med("856999", HYDROCODONE_10)},
         "request": {"method": "POST", "url": "Medication"}},
        {"fullUrl": "urn:uuid:7d5c1a3e-0000-4000-8000-0000000000b1", "resource": {
            "resourceType": "MedicationRequest", "id": "R11", "status": "completed", "intent": "order",
            "subject": {"reference": P3_URL}, "medicationReference": {"reference": MED_URL},
            "authoredOn": "2025-02-15", "requester": {"reference": f"Practitioner?identifier={NPI}|9999900001"},
            "dispenseRequest": {"quantity": {"value": 90},
                                "expectedSupplyDuration": {"value": 30, "unit": "days",
                                                           "system": "http://unitsofmeasure.org", "code": "d"}}},
         "request": {"method": "POST", "url": "MedicationRequest"}}]}


def write_fhir(folder: Path, files: dict[str, list] | None = None, with_bundle: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (files or resources()).items():
        (folder / name).write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows),
                                   encoding="utf-8")
    if with_bundle:
        (folder / "bundle.json").write_text(json.dumps(bundle()), encoding="utf-8")
    return folder


def load(engine, source, tmp_path, **kw):
    return ingest.load_source(engine, source, "fhir", tmp_path / "rejects.csv", replace=True, as_of=AS_OF,
                              extract_date=EXTRACT_DATE, **kw)




def test_fixtures_validate_against_the_r4_models():
    from fhir.resources.R4B import get_fhir_model_class

    checked = 0
    for rows in resources().values():
        for r in rows:
            if isinstance(r, dict) and r["id"] not in ("R7", "R9", "C4"):   # the bad rows lack required parts
                get_fhir_model_class(r["resourceType"]).model_validate(r)
                checked += 1
    get_fhir_model_class("Bundle").model_validate(bundle())
    assert checked == 22
    with pytest.raises(ValueError):   # the validation is real: a wrong type fails
        get_fhir_model_class("MedicationRequest").model_validate(request("X", "P1", "1", "x", "2025-01-01",
                                                                         dispenseRequest={"quantity": "sixty"}))


@pytest.mark.parametrize(("instruction", "per_day"), [
    (dosage(1, 6, "h"), 4.0),              # 1 tablet every 6 h; read as days it would be 1/6
    (dosage(4, 1, "d"), 4.0),
    (dosage(2, 1, "d", dose=2), 4.0),      # 2 tablets twice a day
    (dosage(None, 4, "h"), 6.0),           # every 4 h, no frequency: one event a period
    (dosage(1, 1, "wk", dose=7), 1.0),
    (dosage(3, 1, "mo", dose=1), 3 / 30.4375),   # UCUM mo = 30.4375 d
    (dosage(1, 30, "min"), 48.0),
    ([{"timing": {"code": {"coding": [{"code": "QID"}]}}, "doseAndRate": [{"doseQuantity": {"value": 1}}]}], 4.0),
    ([{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}, "doseQuantity": {"value": 2}}], 2.0),
    ([{"asNeededBoolean": True, "doseAndRate": [{"doseQuantity": {"value": 1}}]}], None),
    (dosage(1, 6, "fortnight"), None),     # an unknown unit is not guessed
    (dosage(1, 0, "h"), None),
    ([], None),
])
def test_units_per_day(instruction, per_day):
    assert fhir_sig.units_per_day(instruction) == (pytest.approx(per_day) if per_day is not None else None)


def test_durations_and_references():
    assert fhir_sig.duration_days({"value": 2, "code": "wk"}) == 14
    assert fhir_sig.duration_days({"value": 1, "unit": "a"}) == 365.25
    assert fhir_sig.duration_days({"value": 30}, "d") == 30
    assert fhir_sig.duration_days({"value": 30}) is None
    assert fhir.parse_ref({"reference": NPI_REF}) == ("Practitioner", "npi", "9999912345")
    assert fhir.parse_ref({"reference": "https://x.org/fhir/Patient/7/_history/2"}) == ("Patient", "id", "7")
    assert fhir.parse_ref({"reference": "urn:uuid:abc"}, {"urn:uuid:abc": ("Patient", "p9")}) == ("Patient", "id", "p9")
    assert fhir.parse_ref({"identifier": {"system": NPI, "value": "1"}, "type": "Practitioner"}) == (
        "Practitioner", "npi", "1")
    assert fhir.parse_ref({"display": "nobody"}) is None


def test_code_built_source(engine, tmp_path):
    report = load(engine, write_fhir(tmp_path / "fhir"), tmp_path)
    assert by_source_file(report) == {
        "Condition.ndjson": (5, 2, {"not_a_measured_condition": 1}, {"no_subject": 1, "unknown_patient": 1}),
        "Encounter.ndjson": (3, 2, {"not_emergency_or_inpatient": 1}, {}),
        "MedicationDispense.ndjson": (1, 1, {}, {}),
        "MedicationRequest.ndjson": (11, 5, {"other_drug_by_rxcui": 1},
                                     {"no_subject": 1, "no_medication": 1, "malformed_json": 1,
                                      "unknown_patient": 1, "no_quantity": 1}),
        "Observation.ndjson": (1, 0, {"resource_type_not_used": 1}, {}),
        "Organization.ndjson": (1, 1, {}, {}),
        "Patient.ndjson": (2, 2, {}, {}),
        "Practitioner.ndjson": (1, 1, {}, {}),
        "PractitionerRole.ndjson": (1, 1, {}, {}),
        "bundle.json": (3, 3, {}, {}),
        "(added by rxdash)": (2, 2, {}, {}),
    }
    for s in report.sources:   # the books balance for every file
        assert s.rows_read == s.rows_loaded + s.rows_skipped + s.rows_rejected
    assert any(n.startswith("MedicationRequest orders:") and "1 ended the day before the next request" in n
               and "1 open (active / on-hold) of a deceased patient" in n and "1 ran the sig's boundsDuration" in n
               for n in report.notes)
    with engine.connect() as conn:
        fills = [(r[0], r[1], float(r[2]), int(r[3]), r[4]) for r in conn.exec_driver_sql(
            "select rx_id, fill_date, quantity, days_supply, clinician_id from prescriptions order by rx_id")]
        patients = conn.exec_driver_sql("select patient_id, birth_date, sex, cancer, record_end from patients "
                                        "order by 1").fetchall()
        clinicians = conn.exec_driver_sql("select clinician_id, clinician_name, specialty, clinic_id from clinicians "
                                          "order by 1").fetchall()
        clinics = conn.exec_driver_sql("select clinic_id, clinic_name from clinics order by 1").fetchall()
        events = conn.exec_driver_sql("select patient_id, event_date, event_type from events order by 1, 3").fetchall()
    d = dt.date
    assert fills == [
        ("D1", d(2025, 2, 1), 60.0, 30, "9999912345"),     # the dispense's prescriber: R4's PractitionerRole
        ("R1", d(2025, 1, 10), 120.0, 30, "9999912345"),   # the conditional NPI reference
        ("R11", d(2025, 2, 15), 90.0, 30, "9999900001"),
        ("R2", d(2025, 3, 1), 120.0, 30, "9999912345"),    # Practitioner/prac-1 -> its NPI
        ("R5", d(2025, 4, 1), 40.0, 20, "9999912345"),
        ("R6", d(2025, 4, 21), 60.0, 30, "9999912345"),
        ("R6~fill2", d(2025, 5, 21), 52.0, 26, "9999912345")]
    assert daily_mme(engine) == {"R1": pytest.approx(40), "R2": pytest.approx(40), "D1": pytest.approx(15),
                                 "R11": pytest.approx(30), "R5": pytest.approx(30), "R6": pytest.approx(30),
                                 "R6~fill2": pytest.approx(30)}
    assert patients == [("P1", d(1960, 1, 1), "F", True, None), ("P2", d(1975, 6, 15), "M", False, d(2025, 6, 15)),
                        ("P3", d(1950, 3, 3), "F", False, None)]
    assert clinicians == [("9999900001", "NPI 9999900001", None, "Unassigned"),
                          ("9999912345", "Ada Byron", "Pain medicine", "org-1")]
    assert clinics == [("Unassigned", "Unassigned"), ("org-1", "North Clinic")]
    assert events == [("P1", d(2025, 3, 1), "ed_visit"), ("P2", d(2025, 5, 20), "hospitalization"),
                      ("P2", d(2025, 5, 20), "overdose")]
    rejects = {(r["file"], r["line"], r["reason_code"]) for r in read_rejects(tmp_path / "rejects.csv")}
    assert rejects == {("MedicationRequest.ndjson", "7", "no_subject"),
                       ("MedicationRequest.ndjson", "8", "unknown_patient"),
                       ("MedicationRequest.ndjson", "9", "no_medication"),
                       ("MedicationRequest.ndjson", "11", "malformed_json"),
                       ("MedicationRequest.ndjson", "12", "no_quantity"),
                       ("Condition.ndjson", "4", "no_subject"), ("Condition.ndjson", "5", "unknown_patient")}


def test_contract_and_fhir_give_the_same_measures(tmp_path):
    """The same patients written as contract CSV files (each FHIR rule written out as the contract's own
    units_per_day / end_date) and as FHIR load the same typed rows and the same daily MME."""
    contract = tmp_path / "contract"
    contract.mkdir()
    write_csv(contract / "clinics.csv", ["clinic_id", "clinic_name"], [["org-1", "North Clinic"],
                                                                       ["Unassigned", "Unassigned"]])
    write_csv(contract / "clinicians.csv", ["clinician_id", "clinician_name", "specialty", "clinic_id"],
              [["9999912345", "Ada Byron", "Pain medicine", "org-1"],
               ["9999900001", "NPI 9999900001", "", "Unassigned"]])
    write_csv(contract / "patients.csv", ["patient_id", "birth_date", "sex", "cancer", "hospice_palliative",
                                          "sickle_cell", "opioid_use_disorder", "record_start", "record_end"],
              [["P1", "1960-01-01", "F", "true", "false", "false", "false", "", ""],
               ["P2", "1975-06-15", "M", "false", "false", "false", "false", "", "2025-06-15"],
               ["P3", "1950-03-03", "F", "false", "false", "false", "false", "", ""]])
    header = ["rx_id", "patient_id", "clinician_id", "fill_date", "drug_name", "ingredient", "strength",
              "strength_unit", "dose_form", "quantity", "days_supply", "long_acting", "ndc", "rxcui", "pharmacy_id",
              "units_per_day", "end_date"]
    blank4 = ["", "", "", ""]
    write_csv(contract / "prescriptions.csv", header, [
        ["R1", "P1", "9999912345", "2025-01-10", HYDROCODONE_10, *blank4, "", "", "", "", "856999", "", "4",
         "2025-02-08"],
        ["R2", "P2", "9999912345", "2025-03-01", HYDROCODONE_10, *blank4, "", "", "", "", "856999", "", "4",
         "2025-03-30"],
        ["D1", "P1", "9999912345", "2025-02-01", OXY5, *blank4, "60", "30", "", "", "1049621", "", "", ""],
        ["R5", "P2", "9999912345", "2025-04-01", OXY10, *blank4, "", "", "", "", "1049683", "", "2", "2025-04-20"],
        ["R6", "P2", "9999912345", "2025-04-21", OXY10, *blank4, "", "", "", "", "1049683", "", "2", "2025-06-15"],
        ["R11", "P3", "9999900001", "2025-02-15", HYDROCODONE_10, *blank4, "90", "30", "", "", "856999", "", "",
         ""]])
    write_csv(contract / "events.csv", ["patient_id", "event_date", "event_type"],
              [["P1", "2025-03-01", "ed_visit"], ["P2", "2025-05-20", "hospitalization"],
               ["P2", "2025-05-20", "overdose"]])
    a, b = (db.make_engine(f"duckdb:///{tmp_path / n}") for n in ("a.duckdb", "b.duckdb"))
    ingest.load_source(a, contract, "contract", tmp_path / "ra.csv", replace=True, as_of=AS_OF,
                       extract_date=EXTRACT_DATE)
    load(b, write_fhir(tmp_path / "fhir"), tmp_path)
    query = ("select p.*, w.window_start, w.window_end from prescriptions p join patients w using (patient_id) "
             "order by rx_id")
    with a.connect() as ca, b.connect() as cb:
        left = [tuple(r) for r in ca.exec_driver_sql(query)]
        right = [tuple(r) for r in cb.exec_driver_sql(query)]
        assert len(left) == 7 and left == right
        for q in ("select * from events order by 1, 2, 3",
                  "select patient_id, birth_date, sex, cancer, record_end from patients order by 1",
                  "select * from clinicians order by 1", "select * from clinics order by 1"):
            assert ca.exec_driver_sql(q).fetchall() == cb.exec_driver_sql(q).fetchall()
    assert daily_mme(a) == daily_mme(b)
    a.dispose()
    b.dispose()


def test_dispense_request_repeats_and_status_rules(tmp_path):
    """numberOfRepeatsAllowed 2: three supplies of 30 tablets / 30 days = 1 a day for 90 days (split into three
    fills, 7.5 MME a day); an active order (1 a day, no end) runs open to the extract date 2025-06-30: 2025-06-01
    .. 06-30 = 30 days, 30 tablets; a cancelled and an entered-in-error request and a plan are skipped."""
    files = resources()
    files["MedicationRequest.ndjson"] = [
        request("R1", "P1", "1049621", OXY5, "2025-01-01",
                dispenseRequest={"numberOfRepeatsAllowed": 2, "quantity": {"value": 30},
                                 "expectedSupplyDuration": {"value": 30, "unit": "days", "code": "d"}}),
        request("R2", "P1", "1049621", OXY5, "2025-01-01", status="cancelled", dosageInstruction=dosage(1, 1, "d")),
        request("R3", "P1", "1049621", OXY5, "2025-01-01", status="entered-in-error"),
        {**request("R4", "P1", "1049621", OXY5, "2025-01-01", dosageInstruction=dosage(1, 1, "d")), "intent": "plan"},
        request("R5", "P1", "1049683", OXY10, "2025-06-01", status="active", dosageInstruction=dosage(1, 1, "d")),
    ]
    del files["MedicationDispense.ndjson"]
    engine = db.make_engine(f"duckdb:///{tmp_path / 'x.duckdb'}")
    report = load(engine, write_fhir(tmp_path / "fhir", files, with_bundle=False), tmp_path)
    assert by_source_file(report)["MedicationRequest.ndjson"] == (
        5, 2, {"cancelled": 1, "entered_in_error": 1, "not_an_order": 1}, {})
    with engine.connect() as conn:
        fills = [(r[0], r[1], float(r[2]), int(r[3])) for r in conn.exec_driver_sql(
            "select rx_id, fill_date, quantity, days_supply from prescriptions order by fill_date")]
    assert fills == [("R1", dt.date(2025, 1, 1), 30.0, 30), ("R1~fill2", dt.date(2025, 1, 31), 30.0, 30),
                     ("R1~fill3", dt.date(2025, 3, 2), 30.0, 30), ("R5", dt.date(2025, 6, 1), 30.0, 30)]
    assert daily_mme(engine) == {"R1": pytest.approx(7.5), "R1~fill2": pytest.approx(7.5),
                                 "R1~fill3": pytest.approx(7.5), "R5": pytest.approx(15)}
    assert any("1 open (active), run to the extract date" in n for n in report.notes)
    engine.dispose()


@pytest.mark.parametrize("quantity, duration, repeats, days", [
    (90, {"value": 1.5, "unit": "days", "code": "d"}, 1, 3),     # was stored as 240 tablets over 4 days
    (90, {"value": 30, "unit": "hours", "code": "h"}, 1, 3),     # 2 x 1.25 days = 2.5, rounded half up: 3 days
    (60, {"value": 14.4, "unit": "days", "code": "d"}, 2, 43),   # 3 x 14.4 = 43.2 days; was 175 tablets
    (30, {"value": 30, "unit": "days", "code": "d"}, 2, 90),     # whole days: as before
])
def test_repeats_keep_every_supply_whole_whatever_the_duration(tmp_path, quantity, duration, repeats, days):
    # The total supplied is quantity x (repeats + 1), over round(duration x (repeats + 1)) days, however the
    # span is split into fills.
    files = resources()
    files["MedicationRequest.ndjson"] = [request("R1", "P1", "1049621", OXY5, "2025-01-01", dispenseRequest={
        "numberOfRepeatsAllowed": repeats, "quantity": {"value": quantity}, "expectedSupplyDuration": duration})]
    del files["MedicationDispense.ndjson"]
    engine = db.make_engine(f"duckdb:///{tmp_path / 'x.duckdb'}")
    load(engine, write_fhir(tmp_path / "fhir", files, with_bundle=False), tmp_path)
    with engine.connect() as conn:
        total, span = conn.exec_driver_sql("select sum(quantity), sum(days_supply) from prescriptions").one()
    engine.dispose()
    assert float(total) == pytest.approx(quantity * (repeats + 1)) and int(span) == days


def test_an_order_with_no_sig_but_a_known_span_is_supply_of_unknown_dose(tmp_path):
    """N1 has no dosageInstruction; the next request for the same drug (N2, 2025-03-03) ends it on 03-02:
    2025-02-01 .. 03-02 is 28 + 2 = 30 days of supply whose quantity nothing gives (end_only: quantity NULL,
    dose unknown), not a rejected row leaving a gap. N2 (2 a day for 30 days) is 60 tablets, 15 MME a day."""
    files = resources()
    files["MedicationRequest.ndjson"] = [
        request("N1", "P1", "1049621", OXY5, "2025-02-01", status="stopped"),
        request("N2", "P1", "1049621", OXY5, "2025-03-03",
                dosageInstruction=dosage(2, 1, "d", boundsDuration={"value": 30, "unit": "days", "code": "d"})),
    ]
    del files["MedicationDispense.ndjson"]
    engine = db.make_engine(f"duckdb:///{tmp_path / 'x.duckdb'}")
    report = load(engine, write_fhir(tmp_path / "fhir", files, with_bundle=False), tmp_path)
    assert by_source_file(report)["MedicationRequest.ndjson"] == (2, 2, {}, {})
    with engine.connect() as conn:
        fills = conn.exec_driver_sql("select rx_id, fill_date, quantity, days_supply, quantity_source "
                                     "from prescriptions order by fill_date").fetchall()
    assert [tuple(f) for f in fills] == [("N1", dt.date(2025, 2, 1), None, 30, "end_only"),
                                         ("N2", dt.date(2025, 3, 3), 60.0, 30, "sig_end")]
    mme = daily_mme(engine)
    assert mme["N1"] != mme["N1"] and mme["N2"] == pytest.approx(15)     # N1: no dose (NaN)
    engine.dispose()


def test_adapter_tables_and_rejects_without_a_database(tmp_path):
    reader = ingest.open_reader()
    create_reject_table(reader)
    adapted = fhir.adapt(write_fhir(tmp_path / "fhir"), reader)
    assert reader.execute("select rx_id, units_per_day, end_date from src_prescriptions where rx_id in "
                          "('R1', 'R2', 'R5', 'R6') order by rx_id").fetchall() == [
        ("R1", "4", "2025-02-08"), ("R2", "4", "2025-03-30"), ("R5", "2", "2025-04-20"), ("R6", "2", "2025-06-15")]
    assert reader.execute("select reason_code, count(*) from src_rejects group by 1 order by 1").fetchall() == [
        ("malformed_json", 1), ("no_medication", 1), ("no_subject", 2), ("unknown_patient", 1)]
    assert adapted.locate(3 * fhir.LINE_SPAN + 11) == ("MedicationRequest.ndjson", 11)
    reader.close()


def test_hostile_ids_load_as_text(engine, tmp_path):
    hostile = "x'); drop table patients; --"
    files = resources()
    files["Patient.ndjson"][0]["id"] = hostile
    files["MedicationRequest.ndjson"] = [request("R1'; drop table prescriptions; --", hostile, "856999",
                                                 HYDROCODONE_10, "2025-01-10",
                                                 dosageInstruction=dosage(1, 6, "h", boundsDuration={
                                                     "value": 30, "code": "d"}))]
    files["Condition.ndjson"] = [condition("C1", hostile, "http://snomed.info/sct", "363346000", "2024-11-02")]
    load(engine, write_fhir(tmp_path / "fhir", files, with_bundle=False), tmp_path)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select patient_id, cancer from patients order by 1").fetchall() == [
            ("P2", False), (hostile, True)]
        assert conn.exec_driver_sql("select rx_id, patient_id, quantity from prescriptions").fetchall() == [
            ("R1'; drop table prescriptions; --", hostile, 120.0)]


def test_unreadable_sources_are_one_line(tmp_path):
    with pytest.raises(ingest.LoadError, match=r"not a folder of FHIR files$"):
        load(db.make_engine(f"duckdb:///{tmp_path / 'x.duckdb'}"), tmp_path / "missing", tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ingest.LoadError, match=r"no FHIR files"):
        load(db.make_engine(f"duckdb:///{tmp_path / 'y.duckdb'}"), tmp_path / "empty", tmp_path)


def test_a_bundle_that_is_not_json_is_one_rejected_row(tmp_path):
    folder = write_fhir(tmp_path / "fhir")
    (folder / "broken.json").write_text('{"resourceType": "Bundle", "entry": [', encoding="utf-8")
    report = load(db.make_engine(f"duckdb:///{tmp_path / 'x.duckdb'}"), folder, tmp_path)
    assert by_source_file(report)["broken.json"] == (1, 0, {}, {"malformed_json": 1})


# --- Numbers (issue #29, item 6): each numeric element the rules read, checked before it reaches SQL -------

def _order(rx_id: str, status: str = "completed", **extra) -> dict:
    return request(rx_id, "P1", "1049621", OXY5, "2025-01-01", status=status, **extra)


def _supply(**fields) -> dict:
    return {"dispenseRequest": fields}


def _sig(frequency=1, period=1, unit="d", dose=1, **bounds) -> dict:
    return {"dosageInstruction": dosage(frequency, period, unit, dose, **bounds)}


DAYS_30 = {"value": 30, "unit": "days", "code": "d"}
REQ = "MedicationRequest.dispenseRequest."
SIG = "MedicationRequest.dosageInstruction[0]."
TEXT = ", not a number (FHIR JSON writes numbers without quotes)"
# (request id, its dispenseRequest / dosageInstruction, the reason it is rejected bad_number)
BAD_ORDERS = [
    ("B1", _supply(numberOfRepeatsAllowed=1_000_000_000, quantity={"value": 30}, expectedSupplyDuration=DAYS_30),
     f"{REQ}numberOfRepeatsAllowed 1000000000 is over 99, beyond any real prescription"),
    ("B2", _supply(numberOfRepeatsAllowed="3", quantity={"value": 30}, expectedSupplyDuration=DAYS_30),
     f"{REQ}numberOfRepeatsAllowed is the text '3'{TEXT}"),
    ("B3", _supply(numberOfRepeatsAllowed=True, quantity={"value": 30}, expectedSupplyDuration=DAYS_30),
     f"{REQ}numberOfRepeatsAllowed is the boolean true, not a number"),
    ("B4", _supply(numberOfRepeatsAllowed=2.5, quantity={"value": 30}, expectedSupplyDuration=DAYS_30),
     f"{REQ}numberOfRepeatsAllowed 2.5 is not a whole number"),
    ("B5", _supply(numberOfRepeatsAllowed=-1, quantity={"value": 30}, expectedSupplyDuration=DAYS_30),
     f"{REQ}numberOfRepeatsAllowed -1 is below 0"),
    ("B6", _supply(quantity={"value": 30}, expectedSupplyDuration={"value": 1e300, "unit": "years", "code": "a"}),
     f"{REQ}expectedSupplyDuration 1e+300 a is over 3650 days (10 years)"),
    ("B7", _supply(quantity={"value": 30}, expectedSupplyDuration={"value": "30", "code": "d"}),
     f"{REQ}expectedSupplyDuration.value is the text '30'{TEXT}"),
    ("B8", _supply(quantity={"value": "ten"}, expectedSupplyDuration=DAYS_30),
     f"{REQ}quantity.value is the text 'ten'{TEXT}"),
    ("B9", _supply(quantity={"value": 1e300}, expectedSupplyDuration=DAYS_30),
     f"{REQ}quantity.value 1e+300 is over 1000000, beyond any real prescription"),
    ("B10", _sig(dose=1e300), f"{SIG}doseAndRate[0].doseQuantity.value 1e+300 is over 1000000, beyond any real "
                              "prescription"),
    ("B11", _sig(dose=1e-300), f"{SIG}doseAndRate[0].doseQuantity.value 1e-300 is below 1e-06, less than any "
                               "real amount"),
    ("B12", _sig(frequency=1e300), f"{SIG}timing.repeat.frequency 1e+300 is over 10000, beyond any real "
                                   "prescription"),
    ("B13", _sig(frequency={"value": 2}), f"{SIG}timing.repeat.frequency is an object, not a number"),
    ("B14", _sig(period=0.5, unit="s"), f"{SIG}timing.repeat.period 0.5 s is under 1 second"),
    ("B15", _sig(period=1e-300, unit="h"), f"{SIG}timing.repeat.period 1e-300 is below 1e-06, less than any real "
                                           "amount"),
    ("B16", _sig(boundsDuration={"value": 1e300, "code": "a"}),
     f"{SIG}timing.repeat.boundsDuration 1e+300 a is over 3650 days (10 years)"),
    ("B17", _supply(numberOfRepeatsAllowed=99, quantity={"value": 90},
                    expectedSupplyDuration={"value": 90, "code": "d"}),
     f"{REQ}numberOfRepeatsAllowed 99 with expectedSupplyDuration 90 days: 100 supplies last over 3650 days "
     "(10 years)"),
]
# (dispense id, its quantity / daysSupply, the reason)
BAD_DISPENSES = [
    ("DB1", {"quantity": {"value": "60"}, "daysSupply": DAYS_30},
     f"MedicationDispense.quantity.value is the text '60'{TEXT}"),
    ("DB2", {"quantity": {"value": 60}, "daysSupply": {"value": 1e300}},
     "MedicationDispense.daysSupply 1e+300 d is over 3650 days (10 years)"),
    ("DB3", {"quantity": {"value": False}, "daysSupply": DAYS_30},
     "MedicationDispense.quantity.value is the boolean false, not a number"),
    ("DB4", {"quantity": {"value": 60}, "daysSupply": {"value": [30], "code": "d"}},
     "MedicationDispense.daysSupply.value is a list, not a number"),
]


def _dispense(d_id: str, authorizing: str | None = None, **numbers) -> dict:
    d = {"resourceType": "MedicationDispense", "id": d_id, "status": "completed",
         "medicationCodeableConcept": med("1049621", OXY5), "subject": {"reference": "Patient/P1"},
         "whenHandedOver": "2025-02-01T15:00:00Z", **numbers}
    if authorizing:
        d["authorizingPrescription"] = [{"reference": f"MedicationRequest/{authorizing}"}]
    return d


def test_a_number_out_of_range_or_not_a_number_rejects_its_row_only(tmp_path):
    """Each numeric element the rules read, given a value no column or rule can take (1e9 repeats, 1e300
    years, text, booleans, objects): that row is rejected bad_number with its element and value, and the rest
    of the source loads. A request a dispense stands for is used whatever its numbers; a cancelled one is
    still skipped. NaN and Infinity (Python's json accepts them) are not JSON: the line is malformed_json."""
    files = resources()
    good = _order("G1", **_sig(2, 1, "d", boundsDuration=DAYS_30))
    files["MedicationRequest.ndjson"] = [
        good,
        *(_order(rx_id, **extra) for rx_id, extra, _ in BAD_ORDERS),
        _order("U1", **BAD_ORDERS[0][1]),                        # stood for by dispense DU: used
        _order("S1", status="cancelled", **BAD_ORDERS[5][1]),    # cancelled: skipped
        json.dumps(_order("N1", **_supply(quantity={"value": 30}))).replace('"value": 30', '"value": NaN'),
        json.dumps(_order("N2", **_supply(quantity={"value": 30}))).replace('"value": 30', '"value": Infinity'),
    ]
    files["MedicationDispense.ndjson"] = [
        _dispense("DU", "U1", quantity={"value": 60}, daysSupply=DAYS_30),
        *(_dispense(d_id, **numbers) for d_id, numbers, _ in BAD_DISPENSES),
    ]
    engine = db.make_engine(f"duckdb:///{tmp_path / 'x.duckdb'}")
    report = load(engine, write_fhir(tmp_path / "fhir", files, with_bundle=False), tmp_path)
    outcome = by_source_file(report)
    assert outcome["MedicationRequest.ndjson"] == (22, 2, {"cancelled": 1},
                                                   {"bad_number": 17, "malformed_json": 2})
    assert outcome["MedicationDispense.ndjson"] == (5, 1, {}, {"bad_number": 4})
    for s in report.sources:
        assert s.rows_read == s.rows_loaded + s.rows_skipped + s.rows_rejected
    rejects = [(r["file"], r["line"], r["row_id"], r["reason_code"], r["reason"])
               for r in read_rejects(tmp_path / "rejects.csv") if r["reason_code"] == "bad_number"]
    assert rejects == [   # in file order (MedicationDispense.ndjson first), then line order
        *(("MedicationDispense.ndjson", str(i), d_id, "bad_number", reason)
          for i, (d_id, _, reason) in enumerate(BAD_DISPENSES, start=2)),
        *(("MedicationRequest.ndjson", str(i), rx_id, "bad_number", reason)
          for i, (rx_id, _, reason) in enumerate(BAD_ORDERS, start=2))]
    assert {(r["line"], r["reason_code"]) for r in read_rejects(tmp_path / "rejects.csv")
            if r["file"] == "MedicationRequest.ndjson" and r["reason_code"] != "bad_number"} == {
        ("21", "malformed_json"), ("22", "malformed_json")}
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("select rx_id, quantity, days_supply from prescriptions order by 1").fetchall()
    assert [tuple(r) for r in rows] == [("DU", 60.0, 30), ("G1", 60.0, 30)]
    engine.dispose()


@pytest.mark.parametrize(("row_id", "kind", "numbers", "reason"),
                         [(i, "order", n, r) for i, n, r in BAD_ORDERS]
                         + [(i, "dispense", n, r) for i, n, r in BAD_DISPENSES],
                         ids=[r[0] for r in BAD_ORDERS + BAD_DISPENSES])
def test_each_numeric_element_is_checked(tmp_path, row_id, kind, numbers, reason):
    """One field at a time, through the adapter alone: the bad row is rejected with its reason, never passed on
    to the contract tables, and the good row beside it is."""
    files = {"Patient.ndjson": resources()["Patient.ndjson"]}
    bad = _order(row_id, **numbers) if kind == "order" else _dispense(row_id, **numbers)
    files["Rows.ndjson"] = [_order("G1", **_sig(2, 1, "d", boundsDuration=DAYS_30)), bad]
    reader = ingest.open_reader()
    create_reject_table(reader)
    adapted = fhir.adapt(write_fhir(tmp_path / "fhir", files, with_bundle=False), reader)
    rows = next(f for f in adapted.files if f.name == "Rows.ndjson")
    assert (rows.rows_read, dict(rows.rejected)) == (2, {"bad_number": 1})
    assert reader.execute("select line_no % 10000000000, row_id, reason_code, reason from src_rejects").fetchall() == [
        (2, row_id, "bad_number", reason)]
    assert reader.execute("select rx_id from src_prescriptions").fetchall() == [("G1",)]
    reader.close()


@pytest.mark.parametrize(("call", "reason"), [
    (lambda: fhir_sig.duration_days({"value": 4000, "code": "d"}, element="daysSupply"),
     "daysSupply 4000 d is over 3650 days (10 years)"),
    (lambda: fhir_sig.duration_days({"value": float("nan"), "code": "d"}, element="daysSupply"),
     "daysSupply.value is nan, not a finite number"),
    (lambda: fhir_sig.units_per_day(dosage(float("inf"), 1, "d")),
     "dosageInstruction[0].timing.repeat.frequency is inf, not a finite number"),
    (lambda: fhir_sig.units_per_day(dosage(1.5, 1, "d")),
     "dosageInstruction[0].timing.repeat.frequency 1.5 is not a whole number"),
    (lambda: fhir_sig.checked("1e3", "x"), "x is the text '1e3', not a number (FHIR JSON writes numbers without "
                                          "quotes)"),
])
def test_sig_numbers_outside_their_range_raise(call, reason):
    with pytest.raises(fhir_sig.BadNumber) as e:
        call()
    assert str(e.value) == reason


def test_sig_numbers_at_their_bounds_are_read():
    assert fhir_sig.duration_days({"value": 3650, "code": "d"}) == 3650
    assert fhir_sig.duration_days({"value": 1, "code": "s"}) == pytest.approx(1 / 86400)
    assert fhir_sig.units_per_day(dosage(10_000, 1, "d", dose=1_000_000)) == 1e10
    assert fhir_sig.units_per_day(dosage(1, 0, "h")) is None          # zero: no units a day, as before
    assert fhir_sig.units_per_day(dosage(1, 1, "d", dose=-2)) is None
    assert fhir_sig.checked(None, "x") is None


# --- Elements of the wrong JSON type (issue #29): one rejected row each, never a failed load ---------------

def _with(resource: dict, path: str, value) -> dict:
    """`resource` with the element at `path` (dot-separated keys, digits index lists) set to `value`."""
    r = json.loads(json.dumps(resource))
    *parents, last = path.split(".")
    node = r
    for step in parents:
        node = node[int(step)] if step.isdigit() else node[step]
    node[int(last) if last.isdigit() else last] = value
    return r


_COND = condition("C9", "P1", "http://snomed.info/sct", "55680006", "2025-01-10T00:00:00Z")
_ENC = encounter("E9", "P1", "EMER", "2025-01-10")
_REQ = request("R9", "P1", "1049621", OXY5, "2025-01-01", dosageInstruction=dosage(4, 1, "d"))
_DISP = {"resourceType": "MedicationDispense", "id": "D9", "status": "completed",
         "subject": {"reference": "Patient/P1"}, "medicationCodeableConcept": med("1049621", OXY5),
         "whenHandedOver": "2025-02-01", "quantity": {"value": 30}, "daysSupply": {"value": 10, "unit": "d"}}
_ROLE = {"resourceType": "PractitionerRole", "id": "PR9", "practitioner": {"reference": "Practitioner/X9"},
         "specialty": [{"coding": [{"code": "208D00000X"}]}]}
WRONG_TYPES = [
    *[_with(_COND, "code", v) for v in (5, "x", 1.5, True, [None])],
    _with(_COND, "code.coding", 5), _with(_COND, "code.coding.0.system", {}), _with(_COND, "code.coding.0.system", []),
    {**_COND, "verificationStatus": {"coding": 5}},
    _with(_ENC, "class.code", {}), _with(_ENC, "class.code", []), _with(_ENC, "class", [{"coding": 5}]),
    {"resourceType": "Medication", "id": "m9", "code": {"coding": 5}},
    _with(_REQ, "medicationCodeableConcept", {"coding": 5}),
    {**{k: v for k, v in _REQ.items() if k != "medicationCodeableConcept"}, "contained": 5,
     "medicationReference": {"reference": "#m1"}},
    _with(_REQ, "dosageInstruction.0.doseAndRate", 5), _with(_REQ, "dosageInstruction.0.timing", {"code": {"coding": 5}}),
    _with(_DISP, "medicationCodeableConcept", {"coding": 5}), {**_DISP, "authorizingPrescription": 5},
    {"resourceType": "Practitioner", "id": "X8", "name": 5}, {"resourceType": "Practitioner", "id": "X7",
                                                              "name": [{"given": 5}]},
    {"resourceType": "Practitioner", "id": "X6", "identifier": 5}, {"resourceType": "Organization", "id": "O9",
                                                                     "identifier": 5},
    {**_ROLE, "specialty": 5}, {**_ROLE, "specialty": [{"coding": 5}]},
]


@pytest.mark.parametrize("resource", WRONG_TYPES, ids=lambda r: r["resourceType"])
def test_an_element_of_the_wrong_json_type_is_one_rejected_row(tmp_path, resource):
    # Each of these stopped the load with "AttributeError ... this is a fault in rxdash" (exit 3).
    folder = write_fhir(tmp_path / "fhir", with_bundle=False)
    (folder / "junk.ndjson").write_text(json.dumps(resource) + "\n", encoding="utf-8")
    report = load(db.make_engine(f"duckdb:///{tmp_path / 'x.duckdb'}"), folder, tmp_path)
    assert by_source_file(report)["junk.ndjson"] == (1, 0, {}, {"malformed_resource": 1})
    reason = next(line for line in (tmp_path / "rejects.csv").read_text(encoding="utf-8").splitlines()
                  if "malformed_resource" in line)
    assert f"{resource['resourceType']}: an element holds a JSON value of a type FHIR R4 does not allow there" in reason
