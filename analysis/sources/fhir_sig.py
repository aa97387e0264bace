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
is 1 × 1 ÷ 0.25 = 4 a day. Anything missing, zero or negative gives None, never a guess (the loader then
rejects the row with its no_quantity reason). Choices where the spec is silent:
- frequency absent but a period given: 1 event a period (the usual encoding of "every 6 hours");
- frequencyMax / periodMax: ignored (frequency and period, the lower count over the shorter interval, are the
  order's stated rate; a range is not averaged);
- only the first Dosage of dosageInstruction is read (sequenced taper instructions are not summed);
- doseRange (no single dose) gives None.

Numbers (issue #29): every number read here and by analysis/sources/fhir.py goes through `checked`, so that
what reaches SQL is a finite number that the loader's columns and date arithmetic can hold. FHIR JSON writes
integer and decimal as JSON numbers (R4 json.html, "JSON representation of primitive elements"), so a string
("ten", even "3"), a boolean, an object or an array where a number belongs raises BadNumber, and so does a
number outside its plausible range (the constants SMALLEST to MAX_REPEATS below); the adapter then rejects the
row `bad_number` with BadNumber's text as the reason, and the rest of the source loads. (NaN and Infinity,
which Python's json accepts, are not JSON: orjson refuses the line, which is rejected malformed_json; 1e400
likewise.) Zero and negative values keep their meaning above (no units a day; for a quantity, the loader's
non_positive_quantity).
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


# Plausible ranges of the numbers read, each far beyond any real prescription yet small enough that every
# value the loader forms from them (units a day, days, end dates, fills) is a finite double, a 32-bit count
# of days and a date the loader reads (years 1800-2999, queries/functions.*.sql rx_parse_date); fhir.py
# refuses an order whose repeats x duration pass MAX_DAYS for the same reason:
# - SMALLEST: a positive amount below a millionth of its unit is no real dose, quantity or duration.
# - MAX_AMOUNT: a dose or a supplied quantity of a million units (tablets, mL, mcg).
# - MAX_FREQUENCY: Timing.repeat.frequency is a positiveInt (R4 datatypes.html#positiveInt); 10,000 events a
#   period covers a dose every few seconds of a day.
# - Durations and periods, in days (after UCUM conversion): at least 1 second, the smallest UnitsOfTime unit;
#   at most 3650 days (10 years), the longest order the loader accepts (checked_prescriptions.sql,
#   order_days_over_3650). With these, units a day stay below 10,000 x 10^6 x 86,400 < 10^15, the loader's
#   bound on a number (rx_parse_number).
# - MAX_REPEATS: numberOfRepeatsAllowed is an unsignedInt. US law allows no refill of a Schedule II opioid
#   (21 CFR 1306.12) and at most five of Schedule III-V (21 CFR 1306.22); a pharmacy claim carries the refills
#   authorized in two digits (NCPDP Telecommunication D.0, field 415-DF, 0-99), so 99 covers any drug.
SMALLEST = 1e-6
MAX_AMOUNT = 1_000_000.0
MAX_FREQUENCY = 10_000
MIN_DAYS = 1 / 86400
MAX_DAYS = 3650.0
MAX_REPEATS = 99


class BadNumber(ValueError):
    """A number the loader reads that is not a finite JSON number within its plausible range; str() is the
    one-line reason written to the rejects file (element, value as written, what was expected)."""


def _shown(value: Any) -> str:
    """A value as the reason shows it: numbers as written (10 significant digits), text quoted and cut."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return format(value, ".10g") if isinstance(value, float) else str(value)
    if isinstance(value, str):
        text = "".join(c if c.isprintable() else " " for c in value)
        return "'" + (text if len(text) <= 40 else text[:39] + "…") + "'"
    return "an object" if isinstance(value, dict) else "a list" if isinstance(value, list) else type(value).__name__


def checked(value: Any, element: str, high: float = MAX_AMOUNT, whole: bool = False) -> float | None:
    """`value` as a float, None when absent (None); raises BadNumber when it is not a JSON number, is not
    finite, is not whole (whole=True), or when its size is above `high` or positive but below SMALLEST.
    Zero and negative values within the range are returned: what they mean is the caller's rule."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "the text" if isinstance(value, str) else "the boolean" if isinstance(value, bool) else ""
        raise BadNumber(f"{element} is {kind + ' ' if kind else ''}{_shown(value)}, not a number"
                        + (" (FHIR JSON writes numbers without quotes)" if isinstance(value, str) else ""))
    v = float(value)
    if not math.isfinite(v):
        raise BadNumber(f"{element} is {_shown(v)}, not a finite number")
    if whole and not v.is_integer():
        raise BadNumber(f"{element} {_shown(value)} is not a whole number")
    if abs(v) > high:
        raise BadNumber(f"{element} {_shown(value)} is {'over ' if v > 0 else 'below -'}{_shown(float(high))}, "
                        "beyond any real prescription")
    if 0 < abs(v) < SMALLEST and not whole:
        raise BadNumber(f"{element} {_shown(value)} is below {SMALLEST:g}, less than any real amount")
    return v


def _positive(value: Any, element: str, high: float = MAX_AMOUNT, whole: bool = False) -> float | None:
    """A checked number when above zero; None when absent, zero or negative (no value, never a guess)."""
    v = checked(value, element, high, whole)
    return v if v is not None and v > 0 else None


def unit_days(unit: Any) -> float | None:
    """Days in one `unit` (a UnitsOfTime code or a common spelling), or None when unknown."""
    if not isinstance(unit, str):
        return None
    key = unit.strip()
    return DAYS_PER_UNIT.get(key, DAYS_PER_UNIT.get(key.lower()))


def _days_in_range(days: float, element: str, value: float, unit: str) -> float:
    """`days` when from 1 second to MAX_DAYS, else BadNumber naming the element, its value and unit."""
    if not MIN_DAYS <= days <= MAX_DAYS:
        said = f"{element} {_shown(value)} {unit}"
        raise BadNumber(f"{said} is over {MAX_DAYS:g} days (10 years)" if days > MAX_DAYS
                        else f"{said} is under 1 second")
    return days


def duration_days(duration: Any, default_unit: str | None = None, element: str = "Duration") -> float | None:
    """Days of a FHIR Duration / SimpleQuantity {value, unit, code}: value × the days of code (else unit,
    else default_unit). None when the value is absent, zero or negative, or the unit is unknown; BadNumber
    when the value is not a number, or the days are under 1 second or over MAX_DAYS. `element` names the
    Duration in the reason (e.g. "dispenseRequest.expectedSupplyDuration")."""
    if not isinstance(duration, dict):
        return None
    value = _positive(duration.get("value"), f"{element}.value", high=math.inf)
    if value is None:
        return None
    unit = duration.get("code") or duration.get("unit") or default_unit
    days = unit_days(unit) if unit else None
    return _days_in_range(value * days, element, value, unit) if days is not None else None


def dose_units(dosage: dict, where: str = "") -> float | None:
    """Units a dose: doseAndRate[].doseQuantity.value (the first that has one), else doseQuantity. `where`
    prefixes the element's name in a BadNumber reason (e.g. "dosageInstruction[0].")."""
    for i, dr in enumerate(dosage.get("doseAndRate") or ()):
        if isinstance(dr, dict) and isinstance(dr.get("doseQuantity"), dict):
            return _positive(dr["doseQuantity"].get("value"), f"{where}doseAndRate[{i}].doseQuantity.value")
    if isinstance(dosage.get("doseQuantity"), dict):
        return _positive(dosage["doseQuantity"].get("value"), f"{where}doseQuantity.value")
    return None


def events_per_day(timing: Any, where: str = "") -> float | None:
    """Events a day of a FHIR Timing: repeat.frequency ÷ (repeat.period in days of repeat.periodUnit), else
    the Timing.code abbreviation; None when neither gives it. `where` prefixes element names in a BadNumber."""
    if not isinstance(timing, dict):
        return None
    repeat = timing.get("repeat") if isinstance(timing.get("repeat"), dict) else {}
    period = _positive(repeat.get("period"), f"{where}timing.repeat.period", high=math.inf)
    if period is not None:
        frequency = (_positive(repeat.get("frequency"), f"{where}timing.repeat.frequency", MAX_FREQUENCY,
                               whole=True) if "frequency" in repeat else 1.0)
        unit = repeat.get("periodUnit")
        days = unit_days(unit)
        if frequency is None or days is None:
            return None
        return frequency / _days_in_range(period * days, f"{where}timing.repeat.period", period, unit)
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
    per_day = events_per_day(dosage.get("timing"), "dosageInstruction[0].")
    dose = dose_units(dosage, "dosageInstruction[0].")
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
    return end[:10], duration_days(repeat.get("boundsDuration"),
                                  element="dosageInstruction[0].timing.repeat.boundsDuration")


def number(value: float | None) -> str:
    """A number as contract text: '4' for 4.0, '0.5', '' for None (10 significant digits)."""
    if value is None:
        return ""
    return format(value, ".10g")
