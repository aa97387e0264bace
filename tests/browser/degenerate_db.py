"""A tiny data set in the contract's CSV format for the browser tests of degenerate states (issue 15,
section 2): one clinic, two clinicians, four patients, so every count on a page is 1 to 4 and the two
clinicians' shares are equal.

Each clinician has the same two patients' pattern, month for month:
- a steady patient on oxycodone 10 mg, 4 tablets a day (60 MME a day) for 18 months, January 2024 to June 2025;
- a tapered patient on the same 60 MME a day from January to June 2024, then 45, 30 and 15 MME a day
  (July to September 2024), then no more fills: one taper each, 25% of the baseline a month.
One tapered patient has an emergency visit after the taper started, so "What followed" has a number.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.fixtures import write_dataset

OXY10 = "oxycodone hydrochloride 10 MG Oral Tablet"   # 15 MME a tablet (CDC 2022 factor 1.5)
CLINICS = [["K1", "Harbour Clinic"]]
CLINICIANS = [["D1", "Ada Byron", "Family medicine", "K1"], ["D2", "Ben Okri", "Family medicine", "K1"]]
PATIENTS = [[f"P{i}", "1960-01-01", "F" if i % 2 else "M", "0", "0", "0", "0"] for i in range(1, 5)]
STEADY_MONTHS = 18                      # January 2024 to June 2025
TAPER_TABLETS = [4] * 6 + [3, 2, 1]     # tablets a day, month by month: 60, then 45, 30, 15 MME a day
FIRST_FILL = dt.date(2024, 1, 1)
EVENTS = [["P2", "2024-08-20", "ed_visit"]]


def _fills(patient: str, clinician: str, tablets: list[int], start: int) -> list[list[str]]:
    """One 30-day fill every 30 days from FIRST_FILL: `tablets` a day each."""
    rows = []
    for k, per_day in enumerate(tablets):
        day = FIRST_FILL + dt.timedelta(days=30 * k)
        rows.append([f"R{start + k:04d}", patient, clinician, day.isoformat(), OXY10, "", "", "", "",
                     str(per_day * 30), "30", ""])
    return rows


def prescriptions() -> list[list[str]]:
    rows: list[list[str]] = []
    for n, (clinician, steady, tapered) in enumerate((("D1", "P1", "P2"), ("D2", "P3", "P4"))):
        rows += _fills(steady, clinician, [4] * STEADY_MONTHS, 1000 * n + 1)
        rows += _fills(tapered, clinician, TAPER_TABLETS, 1000 * n + 500)
    return rows


def write_tiny(folder: Path) -> Path:
    """Write the five contract files of the tiny data set into folder (created); returns folder."""
    return write_dataset(folder, clinics=CLINICS, clinicians=CLINICIANS, patients=PATIENTS,
                         prescriptions=prescriptions(), events=EVENTS)
