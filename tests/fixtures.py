"""Test data built by code: a tiny valid data set, written as contract CSV files, with overrides."""
from __future__ import annotations

import csv
from pathlib import Path

HEADERS = {
    "clinics": ["clinic_id", "clinic_name"],
    "clinicians": ["clinician_id", "clinician_name", "specialty", "clinic_id"],
    "patients": ["patient_id", "birth_date", "sex", "cancer", "hospice_palliative", "sickle_cell",
                 "opioid_use_disorder"],
    "prescriptions": ["rx_id", "patient_id", "clinician_id", "fill_date", "drug_name", "ingredient", "strength",
                      "strength_unit", "dose_form", "quantity", "days_supply", "long_acting"],
    "events": ["patient_id", "event_date", "event_type"],
}

CLINICS = [["C1", "North"], ["C2", "South"]]
CLINICIANS = [["D1", "Ada Byron", "Family medicine", "C1"], ["D2", "Ben Okri", "Pain medicine", "C2"]]
PATIENTS = [["P1", "1960-01-01", "F", "false", "0", "0", "0"],
            ["P2", "1975-06-15", "M", "0", "0", "0", "0"],
            ["P3", "1950-03-03", "F", "1", "", "", ""]]
OXY10 = "oxycodone hydrochloride 10 MG Oral Tablet"
PRESCRIPTIONS = [
    ["R1", "P1", "D1", "2025-01-01", OXY10, "", "", "", "", "60", "30", ""],
    ["R2", "P1", "D1", "2025-01-31", OXY10, "", "", "", "", "60", "30", ""],
    ["R3", "P2", "D2", "2025-02-01", "72 HR Fentanyl 0.025 MG/HR Transdermal System", "", "", "", "", "10", "30", ""],
    ["R4", "P3", "D2", "2025-02-01", "Alprazolam 0.5 MG Oral Tablet", "", "", "", "", "30", "30", ""],
]
EVENTS = [["P1", "2025-03-01", "ed_visit"]]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def write_dataset(folder: Path, headers: dict[str, list[str]] | None = None, **tables: list[list[str]]) -> Path:
    """Write the five files; any table passed as a keyword replaces the default rows, and `headers` the
    default header of a table (for the optional columns)."""
    folder.mkdir(parents=True, exist_ok=True)
    defaults = {"clinics": CLINICS, "clinicians": CLINICIANS, "patients": PATIENTS,
                "prescriptions": PRESCRIPTIONS, "events": EVENTS}
    for name, header in HEADERS.items():
        write_csv(folder / f"{name}.csv", (headers or {}).get(name, header), tables.get(name, defaults[name]))
    return folder


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:   # newline="": a CR inside a value stays a CR
        return list(csv.DictReader(f))


def by_source_file(report) -> dict[str, tuple]:
    """A source-format load's outcome per source file: name -> (read, loaded, skipped by reason, rejected by reason)."""
    return {s.name: (s.rows_read, s.rows_loaded, dict(s.skip_reasons), dict(s.reasons)) for s in report.sources}


def daily_mme(engine, exclude: bool = False) -> dict[str, float]:
    """Each loaded prescription's daily MME under CDC 2022 (queries/rx_daily_mme.sql); NaN when unknown."""
    from analysis import db, dose

    with engine.connect() as conn:
        frame = db.read_frame(conn, "rx_daily_mme", dose.DoseParams("cdc2022", exclude).sql())
    return dict(zip(frame["rx_id"], frame["daily_mme"]))
