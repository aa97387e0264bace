"""Benchmark: the FHIR adapter beside the CSV contract on the same generated data.

    python benchmarks/load_fhir.py [--prescriptions 1000000] [--keep DIR]

analysis.synthetic writes the contract CSV files (seed 1, no deliberately bad rows); they are then written out
as FHIR R4 Bulk Data NDJSON files: Organization (clinics), Practitioner + PractitionerRole (clinicians),
Patient, Condition (one a patient flag, SNOMED CT), MedicationRequest (one a prescription: dispenseRequest
quantity and expectedSupplyDuration in days, requester Practitioner/<id>, medicationCodeableConcept.text the
drug name) and Encounter (ed_visit EMER, hospitalization IMP; other events AMB, skipped) / Condition T40.2X1A
(overdose). Each load runs in a child process into a fresh DuckDB file, which reports its own time and peak
resident memory (resource.getrusage(RUSAGE_SELF).ru_maxrss).
"""
from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAG_CODES = {"cancer": "363346000", "hospice_palliative": "385763009", "sickle_cell": "417357006",
              "opioid_use_disorder": "5602001"}
SNOMED = "http://snomed.info/sct"


def _rows(path: Path):
    with path.open(newline="", encoding="utf-8") as f:
        yield from csv.DictReader(f)


def to_fhir(contract: Path, out: Path) -> int:
    """Write the contract folder `contract` as NDJSON files in `out`; returns the resources written."""
    import orjson

    out.mkdir(parents=True, exist_ok=True)
    n = 0
    files = {name: (out / f"{name}.ndjson").open("wb") for name in
             ("Organization", "Practitioner", "PractitionerRole", "Patient", "Condition", "MedicationRequest",
              "Encounter")}

    def put(kind: str, resource: dict) -> None:
        nonlocal n
        files[kind].write(orjson.dumps({"resourceType": kind, **resource}) + b"\n")
        n += 1

    try:
        for r in _rows(contract / "clinics.csv"):
            put("Organization", {"id": r["clinic_id"], "name": r["clinic_name"]})
        for r in _rows(contract / "clinicians.csv"):
            put("Practitioner", {"id": r["clinician_id"], "name": [{"text": r["clinician_name"]}]})
            put("PractitionerRole", {"id": "role-" + r["clinician_id"],
                                     "practitioner": {"reference": "Practitioner/" + r["clinician_id"]},
                                     "organization": {"reference": "Organization/" + r["clinic_id"]},
                                     "specialty": [{"text": r["specialty"]}]})
        conditions = 0
        for r in _rows(contract / "patients.csv"):
            put("Patient", {"id": r["patient_id"], "birthDate": r["birth_date"],
                            "gender": {"M": "male", "F": "female"}.get(r["sex"], "unknown")})
            for flag, code in FLAG_CODES.items():
                if r[flag].strip().lower() in ("1", "true", "t", "yes"):
                    conditions += 1
                    put("Condition", {"id": f"c{conditions}", "subject": {"reference": "Patient/" + r["patient_id"]},
                                      "code": {"coding": [{"system": SNOMED, "code": code}]}})
        for r in _rows(contract / "prescriptions.csv"):
            put("MedicationRequest", {
                "id": r["rx_id"], "status": "completed", "intent": "order",
                "subject": {"reference": "Patient/" + r["patient_id"]}, "authoredOn": r["fill_date"],
                "requester": {"reference": "Practitioner/" + r["clinician_id"]},
                "medicationCodeableConcept": {"text": r["drug_name"]},
                "dispenseRequest": {"quantity": {"value": float(r["quantity"])},
                                    "expectedSupplyDuration": {"value": int(r["days_supply"]), "unit": "days",
                                                               "system": "http://unitsofmeasure.org", "code": "d"}}})
        for i, r in enumerate(_rows(contract / "events.csv")):
            subject = {"reference": "Patient/" + r["patient_id"]}
            if r["event_type"] == "overdose":
                put("Condition", {"id": f"od{i}", "subject": subject, "onsetDateTime": r["event_date"],
                                  "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                                       "code": "T40.2X1A"}]}})
            else:
                put("Encounter", {"id": f"e{i}", "status": "finished", "subject": subject,
                                  "class": {"code": {"ed_visit": "EMER", "hospitalization": "IMP"}.get(
                                      r["event_type"], "AMB")},
                                  "period": {"start": r["event_date"]}})
    finally:
        for f in files.values():
            f.close()
    return n


def _load_child(source: str, fmt: str, url: str) -> None:
    from analysis import db, ingest

    engine = db.make_engine(url)
    start = time.perf_counter()
    report = ingest.load_source(engine, source, fmt, Path(url.split("///", 1)[1]).parent / f"rejects-{fmt}.csv",
                                replace=True)
    seconds = time.perf_counter() - start
    rx = next(t for t in report.tables if t.table == "prescriptions")
    print(json.dumps({"seconds": seconds, "prescriptions": rx.rows_loaded, "rejected": report.rows_rejected,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _run(source: Path, fmt: str, folder: Path) -> dict:
    url = f"duckdb:///{folder / f'bench-{fmt}.duckdb'}"
    out = subprocess.run([sys.executable, __file__, "--_load", str(source), fmt, url],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prescriptions", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="write the generated files here and keep them")
    parser.add_argument("--_load", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._load:
        _load_child(*args._load)
        return

    from analysis import synthetic

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        contract, fhir_dir = folder / "contract", folder / "fhir"
        patients = max(1, round(args.prescriptions / synthetic.PRESCRIPTIONS_PER_PATIENT))
        start = time.perf_counter()
        counts = synthetic.generate(contract, patients, seed=1, bad_rows=False)
        resources = to_fhir(contract, fhir_dir)
        size_mb = sum(p.stat().st_size for p in fhir_dir.glob("*.ndjson")) / 2**20
        print(f"generated {counts['prescriptions']:,} prescriptions for {patients:,} patients; "
              f"{resources:,} FHIR resources ({size_mb:,.0f} MB of NDJSON) in {time.perf_counter() - start:,.1f} s")
        results = {fmt: _run(src, fmt, folder) for fmt, src in (("contract", contract), ("fhir", fhir_dir))}
        for fmt, r in results.items():
            print(f"{fmt:>8}: {r['seconds']:7,.1f} s, peak memory {r['peak_mb']:6,.0f} MB, "
                  f"{r['prescriptions']:,} prescriptions loaded, {r['rejected']} rejected")
        ratio = results["fhir"]["seconds"] / results["contract"]["seconds"]
        print(f"fhir / contract: {ratio:.2f}x time, "
              f"{results['fhir']['peak_mb'] / results['contract']['peak_mb']:.2f}x peak memory (target within 2x)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
