"""Condition value sets shared by the source adapters: which diagnosis codes set a patient's exclusion
flags (cancer, sickle_cell, hospice_palliative), the opioid_use_disorder flag, and which are an opioid
overdose event. The codes and the source of each are in analysis/reference/condition_codes.csv (README
there): ICD-10-CM codes by prefix (the classification's own ranges, as PQA and HEDIS state their
exclusions), SNOMED CT codes exactly (the codes Synthea and common EHR problem lists use; a standard
concept's descendants are not expanded: OMOP CONCEPT_ANCESTOR is often not shipped with an extract).
"""
from __future__ import annotations

import io
from importlib import resources

import duckdb
import pyarrow.csv as pacsv

PATIENT_FLAGS = ("cancer", "sickle_cell", "hospice_palliative", "opioid_use_disorder")
EVENT_FLAGS = {"overdose": "overdose"}   # value set flag -> events.event_type
SYSTEMS = {"ICD10CM", "SNOMED"}   # OMOP vocabulary_id spelling
# FHIR coding systems (CodeableConcept.coding.system) -> our system names.
FHIR_SYSTEMS = {
    "http://snomed.info/sct": "SNOMED",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD10CM",
    "http://hl7.org/fhir/sid/icd-10": "ICD10CM",
}
TABLE = "ref_condition_codes"


def normalise_sql(expr: str) -> str:
    """SQL that puts a code in the value sets' form: trimmed, upper case, without the ICD-10 dot
    ('T40.2X1A' -> 'T402X1A'). expr is the adapter's own SQL, never input."""
    return f"upper(replace(trim(cast({expr} as varchar)), '.', ''))"


def register(reader: duckdb.DuckDBPyConnection) -> str:
    """Create reader table ref_condition_codes (flag, system, code, is_prefix) from the bundled CSV and return
    its name. Join it as: r.system = <system> and (<code> = r.code or (r.is_prefix and starts_with(<code>, r.code)))
    with <code> normalised by normalise_sql."""
    data = pacsv.read_csv(io.BytesIO(resources.files("analysis").joinpath("reference", "condition_codes.csv")
                                     .read_bytes()),
                          convert_options=pacsv.ConvertOptions(column_types={"code": "string"}))
    reader.register("condition_codes_csv", data)
    reader.execute(f"create or replace table {TABLE} as select flag, system, code, match = 'prefix' as is_prefix "
                   "from condition_codes_csv")
    reader.unregister("condition_codes_csv")
    return TABLE


def match_sql(system_expr: str, code_expr: str, alias: str = "vs") -> str:
    """A join condition matching a normalised code against ref_condition_codes aliased `alias`."""
    code = normalise_sql(code_expr)
    return (f"({alias}.system = {system_expr} and ({code} = {alias}.code "
            f"or ({alias}.is_prefix and starts_with({code}, {alias}.code))))")
