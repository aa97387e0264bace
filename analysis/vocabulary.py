"""The one home of the drug vocabulary: strength units and dose forms, in every spelling we meet.

RxNorm (`MG/ML`, `Transdermal System`, `Buccal Tablet`), FDA SPL / CDC MME file (`MCG/HR`, `PATCH, EXTENDED
RELEASE`, `TABLET; BUCCAL`, `SPRAY; NASAL`, `Lozenge/Troche`) and what extracts write by hand (`ug`, `µg`,
`mcg/h`, `MCG/1HR`, `MG/5ML`, `mcg per spray`). Both the name parser and the given fields go through
`normalise_strength` and `form_group` (analysis.drugs), so a drug reads the same however it is spelled.
Pure functions, no I/O.
"""
from __future__ import annotations

import re

# Canonical units stored in prescriptions.strength_unit. Liquids are per mL, patches per hour, sprays per
# actuation (one spray; quantity then counts sprays). Anything else is kept as written (upper case) and
# has no MME factor, so its dose shows as unknown rather than as a wrong number.
UNITS = ("MG", "MCG", "MG/ML", "MCG/ML", "MCG/HR", "MG/ACTUAT", "MCG/ACTUAT")

_MASS = {"MG": "MG", "MILLIGRAM": "MG", "MILLIGRAMS": "MG",
         "MCG": "MCG", "UG": "MCG", "MICROGRAM": "MCG", "MICROGRAMS": "MCG"}
_PER = {"ML": "ML", "MILLILITER": "ML", "MILLILITRE": "ML",
        "HR": "HR", "H": "HR", "HOUR": "HR",
        "ACTUAT": "ACTUAT", "ACTUATION": "ACTUAT", "SPRAY": "ACTUAT", "PUFF": "ACTUAT"}
_UNIT_TEXT = re.compile(
    r"^(?P<mass>MG|MCG|UG|MICROGRAMS?|MILLIGRAMS?)"
    r"(?:(?:/|PER)(?P<amount>\d+(?:\.\d+)?|\.\d+)?(?P<per>ML|MILLILITER|MILLILITRE|HR|H|HOUR|ACTUAT|ACTUATION|SPRAY|PUFF)S?)?$")

# The same vocabulary as a pattern inside a drug name ("... 5 MG/5ML Oral Solution", "... 50 mcg/h Patch").
UNIT_PATTERN = (r"(?:MG|MCG|UG|µG|μG|MICROGRAMS?|MILLIGRAMS?)"
                r"(?:\s*(?:/|\bPER\b)\s*(?:\d+(?:\.\d+)?\s*)?"
                r"(?:ML|MILLILITERS?|MILLILITRES?|HR|HOURS?|H|ACTUATIONS?|ACTUAT|SPRAYS?|PUFFS?))?")


def canonical_unit(unit: str) -> tuple[str, float]:
    """(canonical unit, amount it is per): 'MG/5ML' -> ('MG/ML', 5); 'ug' -> ('MCG', 1); unknown: as written."""
    # The micro sign (U+00B5) and Greek mu (U+03BC) both upper-case to U+039C: all three read as "u".
    text = re.sub(r"\s+", "", (unit or "").upper()).replace("\u039c", "U").replace("\u00b5", "U")
    m = _UNIT_TEXT.match(text)
    if not m:
        return text, 1.0
    mass = _MASS[m["mass"]]
    per = _PER.get(m["per"] or "", "")
    amount = float(m["amount"]) if m["amount"] else 1.0
    return (f"{mass}/{per}" if per else mass), amount


def normalise_strength(strength: float, unit: str) -> tuple[float, str]:
    """Strength in a canonical unit (UNITS): per 5 mL becomes per mL, MG/HR becomes MCG/HR, ug becomes MCG.

    Examples: (5, 'MG/5ML') -> (1.0, 'MG/ML'); (0.025, 'MG/HR') -> (25.0, 'MCG/HR'); (50, 'mcg/h') -> (50,
    'MCG/HR'); (100, 'mcg per spray') -> (100, 'MCG/ACTUAT'). A unit outside the vocabulary is returned upper
    case and unchanged, and gets no MME factor.
    """
    unit, amount = canonical_unit(unit)
    value = strength / amount
    if unit == "MG/HR":     # patches: the MME factors are per mcg/hr (CDC 2022 table)
        value, unit = value * 1000, "MCG/HR"
    return round(value, 9), unit


# Dose-form groups that pick an MME factor (analysis/reference/mme_factors.csv, column form_group).
FORM_GROUPS = ("transdermal", "transmucosal_tablet", "transmucosal_film", "oral_spray", "nasal_spray", "other")


def _words(dose_form: str) -> set[str]:
    return set(re.split(r"[^a-z]+", (dose_form or "").lower())) - {""}


def form_group(dose_form: str | None, unit: str | None = None) -> str:
    """Which factor row a dose form takes: transdermal patches, transmucosal fentanyl by kind, or other.

    RxNorm, FDA SPL and CDC spellings map alike: 'Transdermal System', 'PATCH, EXTENDED RELEASE',
    'FILM, EXTENDED RELEASE' (SPL's name for some transdermal systems) and any strength per hour are
    transdermal; 'Buccal Tablet', 'TABLET; BUCCAL', 'Sublingual Tablet', 'Lozenge', 'Oral Lozenge',
    'Lozenge/Troche' are transmucosal tablets (CDC MME file: fentanyl 0.13 per mcg); 'Buccal Film', 'FILM;
    BUCCAL' are films (0.18); 'Sublingual Spray', 'SPRAY; SUBLINGUAL', 'Mucosal Spray' are oral sprays (0.18);
    'Nasal Spray', 'SPRAY; NASAL', 'SPRAY, METERED; NASAL' are nasal sprays (0.16).
    """
    w = _words(dose_form or "")
    if canonical_unit(unit or "")[0] in ("MCG/HR", "MG/HR"):   # only a patch is dosed per hour
        return "transdermal"
    if "transdermal" in w or "patch" in w or {"film", "extended", "release"} <= w:
        return "transdermal"
    if "spray" in w or "sprays" in w:
        if "nasal" in w or "intranasal" in w:
            return "nasal_spray"
        if w & {"sublingual", "mucosal", "oral", "buccal", "oromucosal"}:
            return "oral_spray"
        return "other"      # a spray of unknown route: no factor rather than a guess (0.16 or 0.18)
    if "film" in w or "films" in w:
        return "transmucosal_film"
    if w & {"lozenge", "lozenges", "troche", "troches"} or (w & {"tablet", "tablets"} and w & {"buccal", "sublingual"}):
        return "transmucosal_tablet"
    return "other"


# Dose forms that release over hours or days are long-acting (CDC 2022 ER/LA definition).
_LONG_ACTING_FORM = re.compile(r"extended[ -]release|transdermal|\bpatch\b|\ber\b|\bxr\b|\bsr\b|\bcr\b",
                               re.IGNORECASE)


def long_acting_form(dose_form: str | None, unit: str | None = None) -> bool:
    """True for extended-release and transdermal forms ('PATCH, EXTENDED RELEASE', 'Transdermal System')."""
    return bool(dose_form and _LONG_ACTING_FORM.search(dose_form)) or form_group(dose_form, unit) == "transdermal"
