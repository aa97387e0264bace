"""FHIR R4 source: a folder of Bulk Data NDJSON files and/or Bundle JSON files -> the data contract's tables.

`rxdash load SOURCE --format fhir`. SOURCE is a folder (or one file) of `*.ndjson` / `*.ndjson.gz` files (FHIR
Bulk Data Access: one resource a line) and `*.json` files (a Bundle, as Synthea writes them, or one resource).
Each file is one SourceFile; a row's line is its NDJSON line number (blank lines are not rows) or, in a
Bundle, its entry's 1-based index in Bundle.entry.

Python streams the files (orjson per line / per Bundle) and keeps only ids and the few fields the contract
needs, as text columns flushed in Arrow batches into reader tables (fhir_*); SQL in the reader then joins
them into src_clinics, src_clinicians, src_patients, src_prescriptions and src_events. Element names are
FHIR R4's (https://hl7.org/fhir/R4/): Patient.birthDate/gender/deceasedDateTime; Practitioner.identifier
(system http://hl7.org/fhir/sid/us-npi) and name; PractitionerRole.practitioner/organization/specialty;
Organization.name; Medication.code; MedicationRequest.status/intent/subject/authoredOn/requester/
medication[x]/dosageInstruction/dispenseRequest; MedicationDispense.status/subject/whenHandedOver/quantity/
daysSupply/authorizingPrescription/medication[x]/location; Condition.code/subject/onsetDateTime/recordedDate/
verificationStatus; Encounter.class/subject/period. The sig arithmetic is analysis/sources/fhir_sig.py.
Every rule where FHIR is silent is in README.md, "FHIR R4".

Errors: LoadError (one line) when SOURCE is not a folder or holds no FHIR file, and for the bounds and links
below; the adapter runs before the load opens its transaction, so a refused load leaves the database as it
was. Rejected here (src_rejects): malformed_json (a line or file that is not a JSON object), not_a_resource (no
resourceType), no_subject, no_medication, unknown_medication, unknown_patient (a flag-setting Condition of no
Patient), malformed_resource (an element of a JSON type FHIR does not allow there: text for a CodeableConcept,
a number for a list), bad_number (below).

Bounds (issue #29): a file decides how much the reader holds and how long it reads, so each is bounded and a
file past a bound refuses the load in one line naming the file and the bound (constants below, with their
sources). NDJSON (plain or gzip) is read a line at a time with readline(MAX_LINE_BYTES + 1), never a line
whole: a longer line refuses the load, so memory stays flat. More than MAX_BLANK_RUN blank lines in a row
refuse it (1.6 billion newlines gzip into a few MB). A .ndjson.gz may decompress to no more than MAX_GZIP_RATIO
times the compressed bytes read so far (beyond GZIP_RATIO_FLOOR), the decompression-bomb guard. A .json file is
parsed whole, so it may be no larger than MAX_BUNDLE_BYTES (read with that limit, whatever the file system
says its size is). A .gz file that is not gzip, or is cut short, refuses the load naming the file.

Numbers: every number the rules read (dispenseRequest quantity, expectedSupplyDuration, numberOfRepeatsAllowed;
the first Dosage's doseQuantity, timing.repeat frequency, period and boundsDuration; MedicationDispense
quantity and daysSupply) is checked in Python by fhir_sig.checked before it reaches SQL: not a JSON number
(a string such as "ten" or "3", a boolean), not finite, or outside its plausible range (fhir_sig.SMALLEST to
MAX_REPEATS) makes the row rejected bad_number with the element, its value and the range as the reason; the
rest of the source loads. A request that a MedicationDispense stands for is still used (its numbers are not),
and a request skipped for its status or intent is still skipped. Rates (doseAndRate.rate[x]), frequencyMax and
periodMax are not read, so not checked.

Symbolic links: when SOURCE is a folder, a FHIR-named entry that is a symbolic link is read only if it
resolves to a file inside the folder; one that leads outside it (or to nothing, or round in a loop) refuses
the load in one line naming the link. Refused rather than skipped: a skipped file is data silently missing
from every measure (a folder of git-annex or DataLad links is a common, innocent cause), and a link out of an
export folder that someone else prepared may reach data the person loading should not publish; the message
says what to do. Subfolders are never read, so a linked folder is not followed either. A file named as SOURCE
itself is read even when it is a link: the user chose it. Files are opened without following a link
(O_NOFOLLOW) and must be regular files, so a link or pipe put in place after the folder was listed is refused
too.
"""
from __future__ import annotations

import gzip
import os
import re
import stat
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, NamedTuple
from urllib.parse import unquote

import duckdb
import orjson
import pyarrow as pa

from analysis.display import counted
from analysis.errors import LoadError
from analysis.sources import ADDED, LINE_SPAN, REJECT_TABLE, Adapted, SourceFile, contract_table, value_sets
from analysis.sources import fhir_sig as sig

NPI = "http://hl7.org/fhir/sid/us-npi"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
FLUSH_ROWS = 50_000
# Bounds on what one file may make the reader hold or do (issue #29; module docstring, "Bounds"). Module
# constants, so that a test can lower them.
MiB = 1 << 20
# The longest NDJSON line: a MedicationRequest, even with contained Medications and a long sig, is a few kB;
# the largest resources of an export are attachments (Binary, DocumentReference, Media), which rxdash does
# not read. 16 MiB is thousands of times a real line, and a bounded piece to parse.
MAX_LINE_BYTES = 16 * MiB
# The largest .json file (a Bundle is parsed whole): Synthea writes a patient's lifetime as one Bundle of "up
# to several MB" (synthetichealth/synthea#605), and a MIMIC-IV patient may hold 42,000 resources, tens of MB
# (kind-lab/mimic-fhir#32). 256 MiB holds either with room; parsed, it takes about five times that in Python
# objects (measured with orjson), so a larger source belongs in Bulk Data NDJSON, read a line at a time.
MAX_BUNDLE_BYTES = 256 * MiB
# A .ndjson.gz may decompress to at most MAX_GZIP_RATIO times the compressed bytes read so far, beyond the
# first GZIP_RATIO_FLOOR bytes. Exported FHIR NDJSON compresses about 10:1, and even identical resources
# differing only by a sequential id about 135:1 (measured with gzip -9); deflate's own ceiling is about
# 1032:1 (zlib's technical notes), which a stream of zeros or newlines reaches, so a cap near 1000:1 would
# never trip. Zip-bomb guards use the same kind of cap (Apache POI's ZipSecureFile: 100:1 beyond 100 kB).
MAX_GZIP_RATIO = 200
GZIP_RATIO_FLOOR = 1 * MiB
# Blank lines in a row: NDJSON has none (a writer may end the file with one); thousands mean a damaged or
# hostile file, and each costs a read.
MAX_BLANK_RUN = 10_000
# Patient.gender (AdministrativeGender) -> contract sex (the sample's M / F; other kept as written).
SEX = {"male": "M", "female": "F", "other": "other", "unknown": ""}
# Encounter.class (v3 ActEncounterCode) -> events.event_type.
ENCOUNTER_EVENTS = {"EMER": "ed_visit", "IMP": "hospitalization", "ACUTE": "hospitalization",
                    "NONAC": "hospitalization"}
# MedicationDispense.status of a dispense that was not handed over (R4 MedicationDispense status codes).
DISPENSE_NOT_HANDED = {"preparation", "cancelled", "on-hold", "entered-in-error", "stopped", "declined"}

REJECT_REASONS = {
    "malformed_json": "not a JSON object",
    "not_a_resource": "a JSON object without resourceType",
    "no_subject": "the resource has no subject (patient)",
    "no_medication": "the request has neither medicationCodeableConcept nor medicationReference",
    "malformed_resource": "an element holds a JSON value of a type FHIR R4 does not allow there",
}

# Reader tables the parse fills: name -> columns after line_no (all text).
COLUMNS: dict[str, tuple[str, ...]] = {
    "fhir_patients": ("patient_id", "birth_date", "sex", "record_end"),
    "fhir_practitioners": ("prac_id", "npi", "name"),
    "fhir_roles": ("role_id", "prac_by", "prac_value", "org_by", "org_value", "org_display", "specialty"),
    "fhir_organizations": ("org_id", "ident", "name"),
    "fhir_medications": ("med_id", "rxcui", "ndc", "drug_name"),
    # bad_number: why a number of the row is not one the loader can take (fhir_sig.BadNumber), else ''. The
    # row's numbers are then blank, and SQL rejects it bad_number unless another outcome comes first.
    "fhir_requests": ("rx_id", "patient_id", "status", "intent", "fill_date", "rxcui", "ndc", "drug_name",
                      "med_by", "med_value", "req_type", "req_by", "req_value", "dr_quantity", "dr_days",
                      "repeats", "units_per_day", "bounds_end", "bounds_days", "bad_number"),
    "fhir_dispenses": ("rx_id", "patient_id", "fill_date", "rxcui", "ndc", "drug_name", "med_by", "med_value",
                       "auth_value", "quantity", "days_supply", "pharmacy_id", "bad_number"),
    "fhir_conditions": ("patient_id", "event_date", "system", "code"),
    "fhir_encounters": ("patient_id", "event_date", "class_code"),
    "fhir_outcomes": ("outcome", "reason"),       # rows settled in SQL: used / skip
}

Ref = tuple[str | None, str, str]   # (resource type or None, "id" | "npi" | "ident" | "contained", value)


def parse_ref(ref: Any, urls: dict[str, tuple[str, str]] | None = None) -> Ref | None:
    """A FHIR Reference -> (type, by, value): "Patient/1", ".../Patient/1/_history/2" -> ("Patient", "id",
    "1"); "urn:uuid:X" -> the Bundle entry whose fullUrl it is, else (None, "id", "X"); "#m1" -> contained;
    "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999912345" and a logical reference
    {identifier: {system, value}} -> ("Practitioner", "npi", "9999912345") ("ident" for another system)."""
    if not isinstance(ref, dict):
        return None
    kind = ref.get("type") if isinstance(ref.get("type"), str) else None
    text = ref.get("reference")
    if isinstance(text, str) and text.strip():
        text = text.strip()
        if text.startswith("#"):
            return kind, "contained", text[1:]
        if urls and text in urls:
            return urls[text][0], "id", urls[text][1]
        if text.startswith("urn:"):
            return kind, "id", text.split(":", 2)[-1]
        path, query_mark, query = text.partition("?")
        if query_mark:
            target = path.rstrip("/").rsplit("/", 1)[-1] or kind
            for part in query.split("&"):
                key, _, value = part.partition("=")
                if key == "identifier":
                    system, bar, code = unquote(value).rpartition("|")
                    return target, ("npi" if system == NPI else "ident"), (code if bar else unquote(value))
            return target, "ident", unquote(query)
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 4 and parts[-2] == "_history":
            parts = parts[:-2]
        if len(parts) >= 2:
            return parts[-2], "id", parts[-1]
        return (kind, "id", parts[0]) if parts else None
    ident = ref.get("identifier")
    if isinstance(ident, dict) and ident.get("value") not in (None, ""):
        return kind, ("npi" if ident.get("system") == NPI else "ident"), str(ident["value"])
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None or isinstance(value, (dict, list)) else str(value))


def _date(value: Any) -> str:
    """The date part of a FHIR date / dateTime ('1990-10-22T02:41:04-07:00' -> '1990-10-22'); other text is
    passed on as written for the loader's date check."""
    text = _text(value).strip()
    return text[:10] if len(text) > 10 and text[10] == "T" else text


def medication_codes(concept: Any) -> tuple[str, str, str]:
    """(rxcui, ndc, drug_name) of a CodeableConcept: the RxNorm coding's code and display, the NDC coding's
    code; drug_name is the RxNorm display, else the text, else any coding's display."""
    if not isinstance(concept, dict):
        return "", "", ""
    rxcui = ndc = rx_name = any_name = ""
    for coding in concept.get("coding") or ():
        if not isinstance(coding, dict):
            continue
        system = coding.get("system")
        if system == RXNORM and not rxcui:
            rxcui, rx_name = _text(coding.get("code")), _text(coding.get("display"))
        elif system == NDC and not ndc:
            ndc = _text(coding.get("code"))
        any_name = any_name or _text(coding.get("display"))
    return rxcui, ndc, rx_name or _text(concept.get("text")) or any_name


def _practitioner_name(resource: dict) -> str:
    for name in resource.get("name") or ():
        if isinstance(name, dict):
            if isinstance(name.get("text"), str) and name["text"].strip():
                return name["text"].strip()
            parts = [*(name.get("prefix") or ()), *(name.get("given") or ()), name.get("family") or ""]
            text = " ".join(p for p in parts if isinstance(p, str) and p)
            if text:
                return text
    return ""


def _concept_text(concepts: Any) -> str:
    for concept in concepts or ():
        if isinstance(concept, dict):
            if isinstance(concept.get("text"), str) and concept["text"]:
                return concept["text"]
            for coding in concept.get("coding") or ():
                if isinstance(coding, dict) and coding.get("display"):
                    return _text(coding["display"])
    return ""


def _order_numbers(r: dict) -> tuple[str, str, str, str, str, str]:
    """The numbers of a MedicationRequest the order rules use, as contract text: (dispenseRequest quantity,
    expectedSupplyDuration in days, numberOfRepeatsAllowed, the sig's units a day, boundsPeriod.end,
    boundsDuration in days). Each is checked by fhir_sig (a finite JSON number in its plausible range);
    raises fhir_sig.BadNumber otherwise, and when the repeats times the duration pass fhir_sig.MAX_DAYS."""
    supply = r.get("dispenseRequest") if isinstance(r.get("dispenseRequest"), dict) else {}
    quantity = supply.get("quantity") if isinstance(supply.get("quantity"), dict) else {}
    amount = sig.checked(quantity.get("value"), "dispenseRequest.quantity.value")
    days = sig.duration_days(supply.get("expectedSupplyDuration"),
                             element="dispenseRequest.expectedSupplyDuration")
    element = "dispenseRequest.numberOfRepeatsAllowed"
    repeats = sig.checked(supply.get("numberOfRepeatsAllowed"), element, sig.MAX_REPEATS, whole=True)
    if repeats is not None and repeats < 0:
        raise sig.BadNumber(f"{element} {int(repeats)} is below 0")
    if days is not None and repeats and days * (repeats + 1) > sig.MAX_DAYS:
        raise sig.BadNumber(f"{element} {int(repeats)} with expectedSupplyDuration {sig.number(days)} days: "
                            f"{int(repeats) + 1} supplies last over {sig.MAX_DAYS:g} days (10 years)")
    dosage = r.get("dosageInstruction")
    per_day = sig.units_per_day(dosage)
    bounds_end, bounds_days = sig.bounds(dosage)
    return (sig.number(amount), sig.number(days), "" if repeats is None else str(int(repeats)),
            sig.number(per_day), bounds_end, sig.number(bounds_days))


class _Table:
    """Rows of one reader table, kept as text columns and flushed to the reader in Arrow batches."""

    def __init__(self, reader: duckdb.DuckDBPyConnection, name: str, columns: tuple[str, ...]):
        self.reader, self.name, self.columns = reader, name, columns
        self.lines: list[int] = []
        self.data: list[list[str]] = [[] for _ in columns]
        cols = ", ".join(f"{c} varchar" for c in columns)
        reader.execute(f"create or replace table {name} (line_no bigint, {cols})")

    def add(self, line: int, *values: str) -> None:
        self.lines.append(line)
        for column, value in zip(self.data, values):
            column.append(value)
        if len(self.lines) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.lines:
            return
        batch = pa.table({"line_no": pa.array(self.lines, pa.int64()),
                          **{c: pa.array(v, pa.string()) for c, v in zip(self.columns, self.data)}})
        self.reader.register("fhir_batch", batch)
        self.reader.execute(f"insert into {self.name} select * from fhir_batch")
        self.reader.unregister("fhir_batch")
        self.lines = []
        self.data = [[] for _ in self.columns]


class _Parser:
    """Maps each resource to one row of a fhir_* table, or counts it skipped / rejected in its SourceFile."""

    def __init__(self, reader: duckdb.DuckDBPyConnection):
        self.tables = {name: _Table(reader, name, cols) for name, cols in COLUMNS.items()}
        self.rejects = _Table(reader, "fhir_rejects", ("row_id", "reason_code", "reason"))
        self.handlers: dict[str, Callable[[int, dict, dict | None], str | None]] = {
            "Patient": self.patient, "Practitioner": self.practitioner, "PractitionerRole": self.role,
            "Organization": self.organization, "Medication": self.medication,
            "MedicationRequest": self.request, "MedicationDispense": self.dispense,
            "Condition": self.condition, "Encounter": self.encounter,
        }
        self.file: SourceFile = SourceFile("")

    def reject(self, line: int, row_id: str, code: str, reason: str | None = None) -> None:
        self.rejects.add(line, row_id, code, reason or REJECT_REASONS[code])
        self.file.rejected[code] += 1

    def resource(self, line: int, resource: Any, urls: dict | None) -> None:
        """One resource (one row read)."""
        self.file.rows_read += 1
        if not isinstance(resource, dict):
            self.reject(line, "", "malformed_json")
            return
        kind = resource.get("resourceType")
        if not isinstance(kind, str):
            self.reject(line, _text(resource.get("id")), "not_a_resource")
            return
        handler = self.handlers.get(kind)
        if handler is None:
            self.file.skipped["resource_type_not_used"] += 1
            return
        try:
            skip = handler(line, resource, urls)
        except (AttributeError, TypeError, KeyError, IndexError) as e:
            # An element of the wrong JSON type (text where FHIR has a CodeableConcept, a number where it has a
            # list, an object where it has a code): the rules read only well-formed elements, so such a
            # resource is one rejected row with its reason, never a failed load (issue #29). Handlers add
            # their row last, so a rejected resource leaves nothing behind in the reader tables.
            self.reject(line, _text(resource.get("id")), "malformed_resource",
                        f"{kind}: {REJECT_REASONS['malformed_resource']} ({str(e)[:120]})")
            return
        if skip:
            self.file.skipped[skip] += 1

    def _subject(self, line: int, resource: dict, urls: dict | None, element: str = "subject") -> str | None:
        ref = parse_ref(resource.get(element), urls) or parse_ref(resource.get("patient"), urls)
        if ref is None:
            self.reject(line, _text(resource.get("id")), "no_subject")
            return None
        return ref[2]

    def patient(self, line: int, r: dict, urls: dict | None) -> None:
        gender = _text(r.get("gender"))
        self.tables["fhir_patients"].add(line, _text(r.get("id")), _date(r.get("birthDate")),
                                         SEX.get(gender, gender), _date(r.get("deceasedDateTime")))

    def practitioner(self, line: int, r: dict, urls: dict | None) -> None:
        npi = next((_text(i.get("value")) for i in r.get("identifier") or ()
                    if isinstance(i, dict) and i.get("system") == NPI and i.get("value")), "")
        self.tables["fhir_practitioners"].add(line, _text(r.get("id")), npi, _practitioner_name(r))

    def role(self, line: int, r: dict, urls: dict | None) -> str | None:
        prac = parse_ref(r.get("practitioner"), urls)
        if prac is None:
            return "role_without_practitioner"
        org = parse_ref(r.get("organization"), urls) or (None, "", "")
        organization = r.get("organization") if isinstance(r.get("organization"), dict) else {}
        org_display = _text(organization.get("display"))
        self.tables["fhir_roles"].add(line, _text(r.get("id")), prac[1], prac[2], org[1], org[2], org_display,
                                      _concept_text(r.get("specialty")))
        return None

    def organization(self, line: int, r: dict, urls: dict | None) -> None:
        idents = [_text(i.get("value")) for i in r.get("identifier") or () if isinstance(i, dict) and i.get("value")]
        self.tables["fhir_organizations"].add(line, _text(r.get("id")), idents[0] if idents else "",
                                              _text(r.get("name")))

    def medication(self, line: int, r: dict, urls: dict | None) -> None:
        self.tables["fhir_medications"].add(line, _text(r.get("id")), *medication_codes(r.get("code")))

    def _drug(self, r: dict, urls: dict | None) -> tuple[str, str, str, str, str] | None:
        """(rxcui, ndc, drug_name, med_by, med_value) of medication[x]; a contained Medication is read here,
        one elsewhere is joined in SQL (med_by 'id'). None when there is no medication[x]."""
        if isinstance(r.get("medicationCodeableConcept"), dict):
            return (*medication_codes(r["medicationCodeableConcept"]), "", "")
        ref = parse_ref(r.get("medicationReference"), urls)
        if ref is None:
            return None
        if ref[1] == "contained":
            for c in r.get("contained") or ():
                if isinstance(c, dict) and c.get("resourceType") == "Medication" and c.get("id") == ref[2]:
                    return (*medication_codes(c.get("code")), "", "")
        return "", "", _text((r.get("medicationReference") or {}).get("display")), ref[1], ref[2]

    def request(self, line: int, r: dict, urls: dict | None) -> None:
        rx_id = _text(r.get("id"))
        patient = self._subject(line, r, urls)
        if patient is None:
            return
        drug = self._drug(r, urls)
        if drug is None:
            self.reject(line, rx_id, "no_medication")
            return
        requester = parse_ref(r.get("requester"), urls) or (None, "", "")
        try:
            numbers, bad = _order_numbers(r), ""
        except sig.BadNumber as e:
            numbers, bad = ("",) * 6, f"MedicationRequest.{e}"
        self.tables["fhir_requests"].add(
            line, rx_id, patient, _text(r.get("status")), _text(r.get("intent")), _date(r.get("authoredOn")),
            *drug, requester[0] or "", requester[1], requester[2], *numbers, bad)

    def dispense(self, line: int, r: dict, urls: dict | None) -> str | None:
        rx_id = _text(r.get("id"))
        if _text(r.get("status")) in DISPENSE_NOT_HANDED:
            return "dispense_not_handed_over"
        patient = self._subject(line, r, urls)
        if patient is None:
            return None
        drug = self._drug(r, urls) or ("", "", "", "", "")
        auth = next((parse_ref(a, urls) for a in r.get("authorizingPrescription") or ()
                     if parse_ref(a, urls)), None)
        location = parse_ref(r.get("location"), urls)
        quantity = r.get("quantity") if isinstance(r.get("quantity"), dict) else {}
        try:
            numbers = (sig.number(sig.checked(quantity.get("value"), "quantity.value")),
                       sig.number(sig.duration_days(r.get("daysSupply"), "d", element="daysSupply")))
            bad = ""
        except sig.BadNumber as e:
            numbers, bad = ("", ""), f"MedicationDispense.{e}"
        self.tables["fhir_dispenses"].add(
            line, rx_id, patient, _date(r.get("whenHandedOver")), *drug, auth[2] if auth else "", *numbers,
            location[2] if location else "", bad)
        return None

    def condition(self, line: int, r: dict, urls: dict | None) -> str | None:
        verification = r.get("verificationStatus")
        if isinstance(verification, dict) and any(
                isinstance(c, dict) and c.get("code") in ("refuted", "entered-in-error")
                for c in verification.get("coding") or ()):
            return "refuted_or_entered_in_error"
        patient = self._subject(line, r, urls)
        if patient is None:
            return None
        when = _date(r.get("onsetDateTime")) or _date(r.get("recordedDate"))
        codes = [c for c in ((r.get("code") or {}).get("coding") or ()) if isinstance(c, dict)
                 and c.get("system") in value_sets.FHIR_SYSTEMS and c.get("code")]
        if not codes:
            return "not_a_measured_condition"
        for c in codes:   # one row per coding; SQL settles the condition once (by line_no)
            self.tables["fhir_conditions"].add(line, patient, when, value_sets.FHIR_SYSTEMS[c["system"]],
                                               _text(c["code"]))
        return None

    def encounter(self, line: int, r: dict, urls: dict | None) -> str | None:
        classes = r.get("class")
        codes = [classes] if isinstance(classes, dict) else []
        if isinstance(classes, list):   # R5: a list of CodeableConcept
            codes = [c for cc in classes if isinstance(cc, dict) for c in cc.get("coding") or ()]
        event = next((ENCOUNTER_EVENTS[c["code"]] for c in codes if isinstance(c, dict)
                      and c.get("code") in ENCOUNTER_EVENTS), None)
        if event is None:
            return "not_emergency_or_inpatient"
        patient = self._subject(line, r, urls)
        if patient is None:
            return None
        period = r.get("period") if isinstance(r.get("period"), dict) else {}
        self.tables["fhir_encounters"].add(line, patient, _date(period.get("start")), event)
        return None

    def flush(self) -> None:
        for table in (*self.tables.values(), self.rejects):
            table.flush()


FHIR_FILE = re.compile(r"\.(ndjson|ndjson\.gz|json)$", re.IGNORECASE)


class _Input(NamedTuple):
    """One FHIR file to read: its name as the user knows it, the path opened, and whether opening it may
    follow a symbolic link (only for a file the user named as SOURCE)."""

    name: str
    path: Path
    follow: bool = False


def _files(source: Path) -> list[_Input]:
    """The FHIR files of SOURCE, by name. A file named as SOURCE is read even when it is a symbolic link (the
    user chose it). In a folder, a FHIR-named symbolic link that resolves outside the folder (or to nothing)
    refuses the load: see the module docstring, "Symbolic links"."""
    if source.is_file():
        return [_Input(source.name, source, follow=True)]
    if not source.is_dir():
        raise LoadError(f"{source}: not a folder of FHIR files")
    root = source.resolve()
    found = []
    for p in sorted(source.iterdir()):
        if p.name.startswith(".") or not FHIR_FILE.search(p.name):
            continue
        if p.is_symlink():
            try:
                target = p.resolve()
            except (OSError, RuntimeError):   # a loop of links (RuntimeError before Python 3.13)
                raise LoadError(f"{p.name}: a symbolic link that leads round in a loop; remove it") from None
            if not target.is_relative_to(root):
                raise LoadError(f"{p.name}: a symbolic link leading outside {source}; rxdash reads only the "
                                "files inside the folder it is given (copy the file in, or load it on its own)")
            if not target.is_file():
                raise LoadError(f"{p.name}: a symbolic link to {'nothing' if not target.exists() else 'a folder'};"
                                " remove it or replace it by the file")
            found.append(_Input(p.name, target))
        elif p.is_file():
            found.append(_Input(p.name, p))
    if not found:
        raise LoadError(f"{source}: no FHIR files (*.ndjson, *.ndjson.gz or *.json Bundles) in it")
    return found


def _open(item: _Input) -> BinaryIO:
    """The file opened for reading, refused (LoadError) unless it is a regular file. A folder's file is opened
    without following a symbolic link (O_NOFOLLOW), so a link put in its place after the folder was listed is
    not followed; O_NONBLOCK keeps a named pipe put there from blocking the open."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    if not item.follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(item.path, flags)
    except OSError as e:
        raise LoadError(f"{item.name}: cannot be opened ({e.strerror}); was the folder changed while "
                        "loading?") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LoadError(f"{item.name}: not a regular file")
    return os.fdopen(fd, "rb")


def _ndjson_lines(f: BinaryIO, name: str, compressed: BinaryIO | None = None) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of each non-blank line of an NDJSON stream, read in bounded pieces (readline with
    a limit) so that memory stays flat whatever the file holds. `compressed`, for a .gz file, is the
    compressed file underneath: its position bounds how much the stream may have decompressed. Raises
    LoadError naming the file when a line is longer than MAX_LINE_BYTES, when more than MAX_BLANK_RUN blank
    lines follow one another, when the decompressed bytes pass MAX_GZIP_RATIO times the compressed bytes read
    (beyond GZIP_RATIO_FLOOR), or when the lines pass what line_no can number (LINE_SPAN)."""
    limit = MAX_LINE_BYTES + 1
    number = blank_run = decompressed = 0
    allowed = GZIP_RATIO_FLOOR
    while raw := f.readline(limit):
        number += 1
        if len(raw) == limit and not raw.endswith(b"\n"):
            raise LoadError(f"{name}: line {number:,} is longer than {_size(MAX_LINE_BYTES)}, the longest resource "
                            "line rxdash reads; leave files of resources it does not use (e.g. Binary, "
                            "DocumentReference with attachments) out of the folder")
        if compressed is not None:
            decompressed += len(raw)
            if decompressed > allowed:   # the compressed position is asked only when the last bound is passed
                allowed = max(GZIP_RATIO_FLOOR, MAX_GZIP_RATIO * compressed.tell())
                if decompressed > allowed:
                    raise LoadError(f"{name}: decompresses to more than {MAX_GZIP_RATIO} times its compressed "
                                    "size; refused as a possible decompression bomb")
        if number >= LINE_SPAN:
            raise LoadError(f"{name}: more than {LINE_SPAN - 1:,} lines, more than rxdash can number")
        if raw.isspace():
            blank_run += 1
            if blank_run > MAX_BLANK_RUN:
                raise LoadError(f"{name}: more than {MAX_BLANK_RUN:,} blank lines in a row (from line "
                                f"{number - blank_run + 1:,}); an NDJSON file has none, so it is refused as "
                                "damaged")
            continue
        blank_run = 0
        yield number, raw


def _size(n: int) -> str:
    """Bytes as the messages say them: '16 MiB', '3.2 MiB', '900 bytes'."""
    if n >= 1 << 20:
        return f"{n / (1 << 20):,.{0 if n % (1 << 20) == 0 else 1}f} MiB"
    return f"{n:,} bytes"


def _read_bundle(parser: _Parser, f: BinaryIO, name: str, base: int) -> None:
    """A .json file: a Bundle (each entry one row) or one resource (one row). Read whole, so no larger than
    MAX_BUNDLE_BYTES (LoadError naming the file)."""
    data = f.read(MAX_BUNDLE_BYTES + 1)
    if len(data) > MAX_BUNDLE_BYTES:
        raise LoadError(f"{name}: larger than {_size(MAX_BUNDLE_BYTES)}, the largest Bundle file rxdash reads "
                        "whole; export the data as Bulk Data NDJSON (one resource a line) instead")
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        parser.resource(base + 1, None, None)
        return
    del data
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        entries = document.get("entry") if isinstance(document.get("entry"), list) else []
        urls = {e["fullUrl"]: (e["resource"].get("resourceType"), _text(e["resource"].get("id")))
                for e in entries if isinstance(e, dict) and isinstance(e.get("fullUrl"), str)
                and isinstance(e.get("resource"), dict)}
        for index, entry in enumerate(entries, start=1):
            if isinstance(entry, dict) and "resource" not in entry:
                parser.file.rows_read += 1
                parser.file.skipped["entry_without_resource"] += 1
                continue
            parser.resource(base + index, entry.get("resource") if isinstance(entry, dict) else None, urls)
    else:
        parser.resource(base + 1, document, None)


def _read_file(parser: _Parser, item: _Input, file_no: int) -> None:
    base = file_no * LINE_SPAN
    lower = item.name.lower()
    with _open(item) as f:
        if lower.endswith(".json"):
            _read_bundle(parser, f, item.name, base)
            return
        gz = lower.endswith(".gz")
        # Closing the GzipFile leaves f open (the outer with closes it); closing f twice is harmless.
        with gzip.GzipFile(fileobj=f, mode="rb") if gz else f as stream:
            try:
                for number, raw in _ndjson_lines(stream, item.name, compressed=f if gz else None):
                    try:
                        resource = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        resource = None
                    parser.resource(base + number, resource, None)
            except (EOFError, zlib.error, gzip.BadGzipFile) as e:
                raise LoadError(f"{item.name}: cannot be read as gzip ({e})") from None


def adapt(source: Path | str, reader: duckdb.DuckDBPyConnection, *, schema: str | None = None,
          roster: Path | str | None = None, progress: Callable[[str, int, int], None] | None = None) -> Adapted:
    """Read the FHIR files of `source` and leave src_<table> reader tables for the contract tables
    (analysis.sources). schema and roster are not used by this format. progress(label, bytes read, bytes in
    all) is called after each file. Raises LoadError for a source that is not a folder or file of FHIR JSON."""
    inputs = _files(Path(source))
    parser = _Parser(reader)
    files: list[SourceFile] = []
    total, done = sum(i.path.stat().st_size for i in inputs), 0
    for file_no, item in enumerate(inputs):
        parser.file = SourceFile(item.name)
        files.append(parser.file)
        _read_file(parser, item, file_no)
        done += item.path.stat().st_size
        if progress:
            progress("reading FHIR (bytes)", done, total)
    parser.flush()
    added = SourceFile(ADDED, feeds="clinics, clinicians (referenced, not in the source)")
    notes = _map(reader, len(files))
    feeds = _feeds(reader)
    for file_no, f in enumerate(files):
        f.feeds = feeds.get(file_no, "")
    files.append(added)
    _settle(reader, files)
    # fetchall, not fetchone: a result left unfinished on the reader would block the loader's next scan.
    added.rows_read = reader.execute("select count(*) from fhir_added").fetchall()[0][0]
    tables = {name: f"src_{name}" for name in ("clinics", "clinicians", "patients", "prescriptions", "events")}
    return Adapted(tables, files, notes + _rule_notes(reader, files))


# ---- SQL in the reader (DuckDB only). Table names are our own constants; values never reach SQL text. ----

_RESOLVE = """
create or replace table fhir_prac_keys as
    select key_by, key_value, min(clinician_id) as clinician_id, min(name) as name from (
        select 'id' as key_by, prac_id as key_value, coalesce(nullif(npi, ''), prac_id) as clinician_id, name
        from fhir_practitioners where prac_id <> ''
        union all
        select 'npi', npi, npi, name from fhir_practitioners where npi <> ''
    ) group by key_by, key_value;
create or replace table fhir_role_resolved as
    select r.*, coalesce(k.clinician_id, r.prac_value) as clinician_id, k.clinician_id is not null as known,
           case when r.prac_by = 'npi' then 'NPI ' else 'Practitioner ' end || r.prac_value as added_name,
           coalesce(o1.org_id, o2.org_id) as org_id
    from fhir_roles as r
    left join fhir_prac_keys as k on k.key_by = (case when r.prac_by = 'ident' then 'npi' else r.prac_by end)
        and k.key_value = r.prac_value
    left join (select distinct org_id from fhir_organizations where org_id <> '') as o1
        on r.org_by = 'id' and o1.org_id = r.org_value
    left join (select ident, min(org_id) as org_id from fhir_organizations where ident <> '' group by ident) as o2
        on r.org_by in ('ident', 'npi') and o2.ident = r.org_value;
create or replace table fhir_role_keys as
    select role_id, min(clinician_id) as clinician_id, min(added_name) as added_name,
           bool_or(known) as known from fhir_role_resolved where role_id <> '' group by role_id;
create or replace table fhir_dispensed as
    select distinct auth_value as rx_id from fhir_dispenses where auth_value <> '';
create or replace table fhir_req as
    select q.*,
        coalesce(nullif(q.rxcui, ''), m.rxcui, '') as rxcui_v, coalesce(nullif(q.ndc, ''), m.ndc, '') as ndc_v,
        coalesce(nullif(q.drug_name, ''), m.drug_name, '') as drug_name_v,
        q.med_by <> '' and m.med_id is null as med_missing,
        case when q.req_type = 'PractitionerRole' then coalesce(rk.clinician_id, q.req_value)
             when q.req_by = '' then ''
             else coalesce(pk.clinician_id, q.req_value) end as clinician_id,
        case when q.req_type = 'PractitionerRole' then coalesce(rk.known, false)
             else pk.clinician_id is not null end as clinician_known,
        case when q.req_type = 'PractitionerRole' then coalesce(rk.added_name, 'PractitionerRole ' || q.req_value)
             when q.req_by = 'npi' then 'NPI ' || q.req_value
             else coalesce(q.req_type, 'Practitioner') || ' ' || q.req_value end as added_name,
        d.rx_id is not null as dispensed,
        case when d.rx_id is not null then null
             when q.status in ('entered-in-error', 'cancelled', 'draft') then replace(q.status, '-', '_')
             when q.intent in ('proposal', 'plan', 'option') then 'not_an_order' end as skip_reason
    from fhir_requests as q
    left join (select med_id, min(rxcui) as rxcui, min(ndc) as ndc, min(drug_name) as drug_name
               from fhir_medications group by med_id) as m on q.med_by = 'id' and m.med_id = q.med_value
    left join fhir_role_keys as rk on q.req_type = 'PractitionerRole' and rk.role_id = q.req_value
    left join fhir_prac_keys as pk on q.req_type is distinct from 'PractitionerRole'
        and pk.key_by = (case when q.req_by = 'ident' then 'npi' else q.req_by end) and pk.key_value = q.req_value
    left join fhir_dispensed as d on d.rx_id = q.rx_id;
"""

_ORDERS = """
create or replace table fhir_orders as
with live as (
    select *, case when rxcui_v <> '' then 'rxcui:' || rxcui_v when ndc_v <> '' then 'ndc:' || ndc_v
                   else 'name:' || lower(drug_name_v) end as drug_key,
           try_cast(fill_date as date) as fill_d,
           try_cast(nullif(dr_quantity, '') as double) as q, try_cast(nullif(dr_days, '') as double) as dd,
           coalesce(try_cast(nullif(repeats, '') as integer), 0) + 1 as supplies
    -- A request rejected bad_number is no order (its numbers are blank); one a dispense stands for still is.
    from fhir_req where not med_missing and skip_reason is null and (bad_number = '' or dispensed)
),
dates as (
    select patient_id, drug_key, fill_d, lead(fill_d) over (partition by patient_id, drug_key order by fill_d) as next_d
    from (select distinct patient_id, drug_key, fill_d from live where fill_d is not null)
),
ruled as (
    select l.*, n.next_d, d.death_d,
        case when l.q is not null and l.dd is not null and l.supplies = 1 then 'dispense_request'
             when l.q is not null and l.dd is not null then 'dispense_request_repeats'
             when l.q is not null then 'dispense_request_quantity_sig'
             when l.dd is not null then 'dispense_request_duration_sig'
             -- The span is known without a sig: passed with end_date and no quantity, it loads as supply
             -- of unknown dose (quantity_source end_only), never a rejected row leaving a false gap.
             when l.bounds_end <> '' then 'bounds_period'
             when l.bounds_days <> '' then 'bounds_duration'
             when n.next_d is not null then 'next_request'
             when l.units_per_day = '' then 'no_sig'
             when l.status in ('active', 'on-hold') and d.death_d >= l.fill_d then 'open_until_death'
             when l.status in ('active', 'on-hold') then 'open_' || replace(l.status, '-', '_')
             else 'no_end' end as rule
    from live as l left join dates as n on n.patient_id = l.patient_id and n.drug_key = l.drug_key
        and n.fill_d = l.fill_d
    left join (select patient_id, min(try_cast(record_end as date)) as death_d from fhir_patients
               where record_end <> '' group by patient_id) as d on d.patient_id = l.patient_id
)
select line_no, rx_id, patient_id, clinician_id, fill_date, drug_name_v as drug_name, rxcui_v as rxcui, ndc_v as ndc,
    rule, dispensed,
    case rule when 'dispense_request' then dr_quantity
              when 'dispense_request_quantity_sig' then cast(q * supplies as varchar) else '' end as quantity,
    case rule when 'dispense_request' then cast(round(dd) as bigint) else null end as days_supply,
    -- Repeats: every supply's quantity kept whole (issue #29's hostile pass: 90 tablets per 1.5 days with one
    -- repeat was stored as 240 over 4 days, a rate from the exact duration over a span of rounded ones). The
    -- supplies run back to back for round(duration x supplies) days, at least one, at the rate that spends
    -- exactly quantity x supplies over them.
    case rule when 'dispense_request_repeats' then cast(q * supplies / greatest(round(dd * supplies), 1) as varchar)
              when 'no_end' then '' else units_per_day end as units_per_day,
    case when rule in ('dispense_request_repeats', 'dispense_request_duration_sig')
                  then cast(fill_d + cast(greatest(round(dd * supplies), 1) as integer) - 1 as varchar)
              when rule = 'bounds_period' then bounds_end
              when rule = 'bounds_duration'
                  then cast(fill_d + cast(ceil(cast(bounds_days as double)) as integer) - 1 as varchar)
              when rule = 'next_request' then cast(next_d - 1 as varchar)
              when rule = 'open_until_death' then cast(death_d as varchar) else '' end as end_date
from ruled where not dispensed
"""

_DISPENSES = """
create or replace table fhir_disp as
select d.line_no, d.rx_id, d.patient_id, coalesce(q.clinician_id, '') as clinician_id, d.fill_date,
    coalesce(nullif(d.drug_name, ''), nullif(m.drug_name, ''), q.drug_name_v, '') as drug_name,
    coalesce(nullif(d.rxcui, ''), nullif(m.rxcui, ''), q.rxcui_v, '') as rxcui,
    coalesce(nullif(d.ndc, ''), nullif(m.ndc, ''), q.ndc_v, '') as ndc,
    d.quantity, d.days_supply, d.pharmacy_id, d.bad_number,
    q.clinician_known, q.added_name,
    d.med_by <> '' and m.med_id is null and d.rxcui = '' and d.ndc = '' and d.drug_name = ''
        and q.rx_id is null as med_missing
from fhir_dispenses as d
left join (select med_id, min(rxcui) as rxcui, min(ndc) as ndc, min(drug_name) as drug_name
           from fhir_medications group by med_id) as m on d.med_by = 'id' and m.med_id = d.med_value
left join (select rx_id, min(clinician_id) as clinician_id, bool_and(clinician_known) as clinician_known,
                  min(added_name) as added_name, min(drug_name_v) as drug_name_v, min(rxcui_v) as rxcui_v,
                  min(ndc_v) as ndc_v
           from fhir_req group by rx_id) as q on q.rx_id = d.auth_value and d.auth_value <> ''
"""

_CLINICIANS = """
-- Referenced clinicians with no Practitioner resource, each once.
create or replace table fhir_added_clinicians as
    select clinician_id, min(added_name) as name from (
        select clinician_id, added_name from fhir_req where clinician_id <> '' and not clinician_known
        union all
        select clinician_id, added_name from fhir_role_resolved where not known
            and clinician_id in (select clinician_id from fhir_req where not clinician_known)
    ) where clinician_id not in (select clinician_id from fhir_prac_keys) group by clinician_id;
-- Each clinician's first role (lowest line_no) decides clinic and specialty.
create or replace table fhir_first_roles as
    select * from (select *, row_number() over (partition by clinician_id order by line_no) as n
                   from fhir_role_resolved) where n = 1
        and (known or clinician_id in (select clinician_id from fhir_added_clinicians));
create or replace table fhir_clinic_rows as
    select line_no, org_id as clinic_id, name as clinic_name, false as added from (
        select *, row_number() over (partition by org_id order by line_no) as n from fhir_organizations
    ) where n = 1 and org_id in (select org_id from fhir_first_roles);
create or replace table fhir_added_clinics as
    select org_value as clinic_id, coalesce(nullif(min(org_display), ''), org_value) as clinic_name
    from fhir_first_roles where org_id is null and org_value <> '' group by org_value;
create or replace table fhir_clinician_rows as
    select p.line_no, coalesce(nullif(p.npi, ''), p.prac_id) as clinician_id, p.name as clinician_name,
           coalesce(r.specialty, '') as specialty,
           coalesce(r.org_id, nullif(r.org_value, ''), 'Unassigned') as clinic_id
    from fhir_practitioners as p
    left join fhir_first_roles as r on r.clinician_id = coalesce(nullif(p.npi, ''), p.prac_id);
create or replace table fhir_added as
    select row_number() over (order by kind, id) as line, kind, id, name, specialty, clinic_id from (
        select 'clinic' as kind, clinic_id as id, clinic_name as name, '' as specialty, '' as clinic_id
        from fhir_added_clinics
        union all
        select 'clinician', a.clinician_id, a.name, coalesce(r.specialty, ''),
               coalesce(r.org_id, nullif(r.org_value, ''), 'Unassigned')
        from fhir_added_clinicians as a left join fhir_first_roles as r on r.clinician_id = a.clinician_id
    );
insert into fhir_added
    select (select count(*) from fhir_added) + 1, 'clinic', 'Unassigned', 'Unassigned', '', ''
    where exists (select 1 from fhir_added where kind = 'clinician' and clinic_id = 'Unassigned')
       or exists (select 1 from fhir_clinician_rows where clinic_id = 'Unassigned');
"""

_CONDITIONS = """
create or replace table fhir_condition_hits as
    select c.line_no, min(c.patient_id) as patient_id, min(c.event_date) as event_date,
           coalesce(list_distinct(list(vs.flag) filter (where vs.flag is not null)), []) as flags
    from fhir_conditions as c left join ref_condition_codes as vs on {match}
    group by c.line_no;
create or replace table fhir_flags as
    select patient_id, bool_or(list_contains(flags, 'cancer')) as cancer,
           bool_or(list_contains(flags, 'hospice_palliative')) as hospice_palliative,
           bool_or(list_contains(flags, 'sickle_cell')) as sickle_cell,
           bool_or(list_contains(flags, 'opioid_use_disorder')) as opioid_use_disorder
    from fhir_condition_hits where len(flags) > 0 group by patient_id;
"""


def _map(reader: duckdb.DuckDBPyConnection, added_no: int) -> list[str]:
    """Build the src_* contract tables, the outcomes of rows settled in SQL and the extra rejects."""
    value_sets.register(reader)
    for sql in (_RESOLVE, _ORDERS, _DISPENSES, _CLINICIANS,
                _CONDITIONS.format(match=value_sets.match_sql("c.system", "c.code"))):
        reader.execute(sql)
    added_line = f"(cast({int(added_no)} as bigint) * {LINE_SPAN} + line)"
    contract_table(reader, "clinics", ("clinic_id", "clinic_name"),
                   "select line_no, clinic_id, clinic_name from fhir_clinic_rows union all "
                   f"select {added_line}, id, name from fhir_added where kind = 'clinic'")
    contract_table(reader, "clinicians", ("clinician_id", "clinician_name", "specialty", "clinic_id"),
                   "select line_no, clinician_id, clinician_name, specialty, clinic_id from fhir_clinician_rows "
                   f"union all select {added_line}, id, name, specialty, clinic_id from fhir_added "
                   "where kind = 'clinician'")
    contract_table(reader, "patients", ("patient_id", "birth_date", "sex", "cancer", "hospice_palliative",
                                        "sickle_cell", "opioid_use_disorder", "record_start", "record_end"),
                   "select p.line_no, p.patient_id, p.birth_date, p.sex, coalesce(f.cancer, false) as cancer, "
                   "coalesce(f.hospice_palliative, false) as hospice_palliative, "
                   "coalesce(f.sickle_cell, false) as sickle_cell, "
                   "coalesce(f.opioid_use_disorder, false) as opioid_use_disorder, '' as record_start, p.record_end "
                   "from fhir_patients as p left join fhir_flags as f on f.patient_id = p.patient_id")
    rx_columns = ("rx_id", "patient_id", "clinician_id", "fill_date", "drug_name", "ingredient", "strength",
                  "strength_unit", "dose_form", "quantity", "days_supply", "long_acting", "ndc", "rxcui",
                  "pharmacy_id", "units_per_day", "end_date")
    contract_table(reader, "prescriptions", rx_columns,
                   "select line_no, rx_id, patient_id, clinician_id, fill_date, drug_name, '' as ingredient, "
                   "'' as strength, "
                   "'' as strength_unit, '' as dose_form, quantity, days_supply, '' as long_acting, ndc, rxcui, "
                   "'' as pharmacy_id, units_per_day, end_date from fhir_orders "
                   "union all select line_no, rx_id, patient_id, clinician_id, fill_date, drug_name, '', '', '', '', "
                   "quantity, days_supply, '', ndc, rxcui, pharmacy_id, '', '' from fhir_disp "
                   "where not med_missing and bad_number = ''")
    contract_table(reader, "events", ("patient_id", "event_date", "event_type"),
                   "select line_no, patient_id, event_date, class_code as event_type from fhir_encounters union all "
                   "select line_no, patient_id, event_date, 'overdose' from fhir_condition_hits "
                   "where list_contains(flags, 'overdose')")
    # Rows settled here: used (merged into another row) or skipped; and the rejects SQL finds.
    reader.execute("""
        insert into fhir_outcomes
        select line_no, 'used', '' from fhir_req where dispensed and not med_missing
        union all select line_no, 'skip', skip_reason from fhir_req where skip_reason is not null and not med_missing
        union all select line_no, 'used', '' from fhir_first_roles
        union all select line_no, 'skip', case when known then 'not_first_role_of_clinician'
                                               else 'role_of_unknown_practitioner' end from fhir_role_resolved
            where line_no not in (select line_no from fhir_first_roles)
        union all select line_no, 'skip', 'organization_without_clinicians' from fhir_organizations
            where line_no not in (select line_no from fhir_clinic_rows)
        union all select line_no, 'used', '' from fhir_medications
            where med_id in (select med_value from fhir_requests where med_by = 'id'
                             union select med_value from fhir_dispenses where med_by = 'id')
        union all select line_no, 'skip', 'medication_not_referenced' from fhir_medications
            where med_id not in (select med_value from fhir_requests where med_by = 'id'
                                 union select med_value from fhir_dispenses where med_by = 'id')
        union all select line_no, 'used', '' from fhir_condition_hits
            where len(flags) > 0 and not list_contains(flags, 'overdose')
              and patient_id in (select patient_id from fhir_patients)
        union all select line_no, 'skip', 'not_a_measured_condition' from fhir_condition_hits where len(flags) = 0
    """)
    reader.execute("""
        insert into fhir_rejects
        select line_no, rx_id, 'unknown_medication', 'medicationReference ' || med_value
               || ' is neither contained nor a Medication of the source'
        from fhir_req where med_missing
        union all select line_no, rx_id, 'unknown_medication', 'medicationReference is neither contained nor a '
               || 'Medication of the source, and no authorizing request gives the drug'
        from fhir_disp where med_missing
        union all select line_no, rx_id, 'bad_number', bad_number from fhir_req
            where bad_number <> '' and not dispensed and skip_reason is null and not med_missing
        union all select line_no, rx_id, 'bad_number', bad_number from fhir_disp
            where bad_number <> '' and not med_missing
        union all select line_no, patient_id, 'unknown_patient', 'the Condition sets a flag of patient '
               || patient_id || ', who is not a Patient of the source'
        from fhir_condition_hits where len(flags) > 0 and not list_contains(flags, 'overdose')
              and patient_id not in (select patient_id from fhir_patients)
    """)
    reader.execute(f"insert into {REJECT_TABLE} select line_no, row_id, reason_code, reason from fhir_rejects")
    notes = []
    n_added = reader.execute("select count(*) from fhir_added where kind = 'clinician'").fetchall()[0][0]
    if n_added:
        notes.append(f"{counted(n_added, 'clinician')} referenced by requests {'has' if n_added == 1 else 'have'} "
                     "no Practitioner resource: added, "
                     "named by their reference (e.g. 'NPI 9999912345')")
    n_unassigned = reader.execute("select (select count(*) from fhir_clinician_rows where clinic_id = 'Unassigned')"
                                  " + (select count(*) from fhir_added where kind = 'clinician' and "
                                  "clinic_id = 'Unassigned')").fetchall()[0][0]
    n_clinics = reader.execute("select count(*) from fhir_added where kind = 'clinic'").fetchall()[0][0]
    if n_clinics:
        notes.append(f"{counted(n_clinics, 'clinic')} named by PractitionerRole.organization (or Unassigned) "
                     f"{'has' if n_clinics == 1 else 'have'} no Organization resource: added")
    if n_unassigned:
        notes.append(f"{counted(n_unassigned, 'clinician')} {'has' if n_unassigned == 1 else 'have'} no "
                     "PractitionerRole with an organization: "
                     "in the clinic Unassigned")
    return notes


def _feeds(reader: duckdb.DuckDBPyConnection) -> dict[int, str]:
    """File number -> what its rows give ("patients, prescriptions (orders)"), from the tables they went to."""
    labels = {"fhir_patients": "patients", "fhir_practitioners": "clinicians", "fhir_organizations": "clinics",
              "fhir_roles": "clinicians (clinic, specialty)", "fhir_requests": "prescriptions (orders)",
              "fhir_dispenses": "prescriptions (dispenses)", "fhir_conditions": "patients (flags), events",
              "fhir_encounters": "events", "fhir_medications": "prescriptions (drugs)"}
    union = " union all ".join(f"select distinct cast(floor(line_no / {LINE_SPAN}) as bigint) as f, {i} as k "
                               f"from {table}" for i, table in enumerate(labels))
    found: dict[int, list[str]] = {}
    names = list(labels.values())
    for file_no, k in reader.execute(f"select f, k from ({union}) order by f, k").fetchall():
        found.setdefault(int(file_no), []).append(names[k])
    return {f: ", ".join(dict.fromkeys(", ".join(v).split(", "))) for f, v in found.items()}


def _settle(reader: duckdb.DuckDBPyConnection, files: list[SourceFile]) -> None:
    """Add the outcomes decided in SQL (used, skipped, rejected in SQL) to each file's counts."""
    for file_no, outcome, reason, n in reader.execute(
            f"select cast(floor(line_no / {LINE_SPAN}) as bigint), outcome, reason, count(*) from fhir_outcomes "
            "group by all").fetchall():
        if outcome == "used":
            files[file_no].rows_used += n
        else:
            files[file_no].skipped[reason] += n
    for file_no, code, n in reader.execute(
            f"select cast(floor(line_no / {LINE_SPAN}) as bigint), reason_code, count(*) from fhir_rejects "
            "where reason_code in ('unknown_medication', 'unknown_patient', 'bad_number') group by all").fetchall():
        files[file_no].rejected[code] += n


def _rule_notes(reader: duckdb.DuckDBPyConnection, files: list[SourceFile]) -> list[str]:
    """One note counting how the orders' supply was found (README.md "How long an order runs")."""
    rules = dict(reader.execute("select rule, count(*) from fhir_orders group by rule").fetchall())
    if not rules:
        return []
    words = {"dispense_request": "from dispenseRequest quantity and duration",
             "dispense_request_repeats": "from dispenseRequest with repeats (one supply per repeat)",
             "dispense_request_quantity_sig": "from dispenseRequest quantity and the sig",
             "dispense_request_duration_sig": "from dispenseRequest duration and the sig",
             "bounds_period": "ended at the sig's boundsPeriod.end",
             "bounds_duration": "ran the sig's boundsDuration",
             "next_request": "ended the day before the next request for the same drug",
             "open_active": "open (active), run to the extract date",
             "open_on_hold": "open (on-hold), run to the extract date",
             "open_until_death": "open (active / on-hold) of a deceased patient, ended at Patient.deceasedDateTime",
             "no_end": "stopped/completed with no end, duration or later request (passed without a sig: "
                       "rejected no_quantity unless another drug)",
             "no_sig": "with no end and no sig the arithmetic can read (rejected no_quantity unless another drug)"}
    used = dict(reader.execute("select 'dispensed', count(*) from fhir_req where dispensed").fetchall())
    parts = [f"{n:,} {words.get(rule, rule)}" for rule, n in sorted(rules.items(), key=lambda kv: -kv[1])]
    line = "MedicationRequest orders: " + "; ".join(parts)
    if used.get("dispensed"):
        line += f"; {used['dispensed']:,} requests stood for by a MedicationDispense (used, not loaded twice)"
    return [line]
