"""The arithmetic of a FHIR R4 sig and of FHIR durations: dose units a day and days, as plain numbers.

Definitions (FHIR R4, https://hl7.org/fhir/R4/):
- Dosage.timing.repeat (Timing.repeat, datatypes.html#Timing): `frequency` events per `period` `periodUnit`;
  periodUnit is a code of the UnitsOfTime value set (s | min | h | d | wk | mo | a), which are UCUM units.
- Dosage.doseAndRate[].doseQuantity (R4; Dosage.doseQuantity directly in DSTU2/STU3): units a dose.
- Timing.code (TimingAbbreviation value set, v3-GTSAbbreviation): BID, TID, QID, QD, QOD, Q4H, ... used only
  when timing.repeat gives no period.
- Day lengths: UCUM (https://ucum.org/ucum, "mo" = mean Julian month mo_j = 30.4375 d; "a" = Julian year
  a_j = 365.25 d; wk = 7 d; h = 1/24 d; min = 1/1440 d; s = 1/86400 d).

units a day = frequency × dose ÷ (period in days); "1 tablet every 6 h" (frequency 1, period 6, periodUnit h)
is 1 × 1 ÷ 0.25 = 4 a day. Anything missing or not a positive number gives None, never a guess (the loader
then rejects the row with its no_quantity reason). Choices where the spec is silent:
- frequency absent but a period given: 1 event a period (the usual encoding of "every 6 hours");
- frequencyMax / periodMax: ignored (frequency and period, the lower count over the shorter interval, are the
  order's stated rate; a range is not averaged);
- only the first Dosage of dosageInstruction is read (sequenced taper instructions are not summed);
- doseRange (no single dose) gives None.
"""
from __future__ import annotations

import math
from typing import Any

# UCUM day lengths of the FHIR UnitsOfTime codes, plus the spellings seen in Duration.unit / Quantity.unit.
DAYS_PER_UNIT: dict[str, float] = {
    "s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.4375, "a": 365.25,
    "sec": 1 / 86400, "second": 1 / 86400, "seconds": 1 / 86400, "minute": 1 / 1440, "minutes": 1 / 1440,
    "hour": 1 / 24, "hours": 1 / 24, "hr": 1 / 24, "day": 1.0, "days": 1.0, "week": 7.0, "weeks": 7.0,
    "month": 30.4375, "months": 30.4375, "year": 365.25, "years": 365.25,
}

# TimingAbbreviation (v3-GTSAbbreviation) codes -> events a day.
TIMING_CODES: dict[str, float] = {
    "QD": 1.0, "AM": 1.0, "PM": 1.0, "BID": 2.0, "TID": 3.0, "QID": 4.0, "QOD": 0.5,
    "Q1H": 24.0, "Q2H": 12.0, "Q3H": 8.0, "Q4H": 6.0, "Q6H": 4.0, "Q8H": 3.0, "Q12H": 2.0,
}


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) and v > 0 else None


def unit_days(unit: Any) -> float | None:
    """Days in one `unit` (a UnitsOfTime code or a common spelling), or None when unknown."""
    if not isinstance(unit, str):
        return None
    key = unit.strip()
    return DAYS_PER_UNIT.get(key, DAYS_PER_UNIT.get(key.lower()))


def duration_days(duration: Any, default_unit: str | None = None) -> float | None:
    """Days of a FHIR Duration / SimpleQuantity {value, unit, code}: value × the days of code (else unit,
    else default_unit). None when the value is not a positive number or the unit is unknown."""
    if not isinstance(duration, dict):
        return None
    value = _positive(duration.get("value"))
    if value is None:
        return None
    unit = duration.get("code") or duration.get("unit") or default_unit
    days = unit_days(unit) if unit else None
    return value * days if days is not None else None


def dose_units(dosage: dict) -> float | None:
    """Units a dose: doseAndRate[].doseQuantity.value (the first that has one), else doseQuantity."""
    for dr in dosage.get("doseAndRate") or ():
        if isinstance(dr, dict) and isinstance(dr.get("doseQuantity"), dict):
            return _positive(dr["doseQuantity"].get("value"))
    if isinstance(dosage.get("doseQuantity"), dict):
        return _positive(dosage["doseQuantity"].get("value"))
    return None


def events_per_day(timing: Any) -> float | None:
    """Events a day of a FHIR Timing: repeat.frequency ÷ (repeat.period in days of repeat.periodUnit), else
    the Timing.code abbreviation; None when neither gives it."""
    if not isinstance(timing, dict):
        return None
    repeat = timing.get("repeat") if isinstance(timing.get("repeat"), dict) else {}
    period = _positive(repeat.get("period"))
    if period is not None:
        frequency = _positive(repeat.get("frequency")) if "frequency" in repeat else 1.0
        days = unit_days(repeat.get("periodUnit"))
        if frequency is None or days is None:
            return None
        return frequency / (period * days)
    code = timing.get("code")
    if isinstance(code, dict):
        for c in code.get("coding") or ():
            if isinstance(c, dict) and str(c.get("code", "")).upper() in TIMING_CODES:
                return TIMING_CODES[str(c["code"]).upper()]
    return None


def _first(dosage_instruction: Any) -> dict | None:
    """The first Dosage of a dosageInstruction list, or None."""
    if isinstance(dosage_instruction, list) and dosage_instruction and isinstance(dosage_instruction[0], dict):
        return dosage_instruction[0]
    return None


def units_per_day(dosage_instruction: Any) -> float | None:
    """Dose units a day of MedicationRequest.dosageInstruction (a list of Dosage; the first is read):
    events a day × units a dose. 1 tablet every 6 h -> 4.0; 2 tablets twice a day (frequency 2, period 1 d)
    -> 4.0; as needed with no frequency or period -> None."""
    dosage = _first(dosage_instruction)
    if dosage is None:
        return None
    per_day = events_per_day(dosage.get("timing"))
    dose = dose_units(dosage)
    if per_day is None or dose is None:
        return None
    return per_day * dose


def bounds(dosage_instruction: Any) -> tuple[str, float | None]:
    """(boundsPeriod.end date part or '', boundsDuration in days or None) of the first Dosage's timing."""
    dosage = _first(dosage_instruction)
    if dosage is None:
        return "", None
    timing = dosage.get("timing")
    repeat = timing.get("repeat") if isinstance(timing, dict) and isinstance(timing.get("repeat"), dict) else {}
    period = repeat.get("boundsPeriod")
    end = period.get("end") if isinstance(period, dict) and isinstance(period.get("end"), str) else ""
    return end[:10], duration_days(repeat.get("boundsDuration"))


def number(value: float | None) -> str:
    """A number as contract text: '4' for 4.0, '0.5', '' for None (10 significant digits)."""
    if value is None:
        return ""
    return format(value, ".10g")
