"""Drug identification: RxNorm-style drug names parsed into ingredient, strength, unit and dose form.

Pure functions. The loader calls `resolve_drugs` once per *distinct* drug description in a file (a few
thousand at most), never once per prescription row.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from analysis import vocabulary
from analysis.vocabulary import UNITS, normalise_strength  # noqa: F401 - the one home of units and forms

# Class priority when a combination product names several ingredients: the opioid decides the
# measure (e.g. "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet" is oxycodone 5 mg).
CLASS_PRIORITY = ("opioid_analgesic", "buprenorphine", "benzodiazepine", "naloxone")

# Salt and descriptor words that RxNorm appends to an ingredient name; they do not change the moiety.
SALT_WORDS = frozenset(
    """hydrochloride hcl bitartrate sulfate sulphate citrate phosphate tartrate acetate mesylate
    napsylate bromide maleate polistirex anhydrous besylate succinate fumarate""".split()
)

_COMPONENT = re.compile(
    rf"^(?P<name>[A-Za-z][A-Za-z ,'\-]*?)\s+(?P<num>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>{vocabulary.UNIT_PATTERN})"
    r"(?![A-Za-z])\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
# "72 HR" as a word of its own is a duration; "MCG/1HR" is a unit (a "/" before the number).
_DURATION = re.compile(r"(?<![/\w])(\d+)\s*HR\b", re.IGNORECASE)
_BRAND = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class Drug:
    """A resolved drug description, or the reason it could not be resolved."""

    ingredient: str | None = None
    strength: float | None = None
    strength_unit: str | None = None
    dose_form: str | None = None
    long_acting: bool | None = None
    drug_class: str | None = None
    parsed: bool = False
    error: str | None = None
    form_group: str = "other"   # analysis.vocabulary.form_group: which MME factor row the form takes


@lru_cache(maxsize=1)
def drug_classes() -> dict[str, tuple[str, bool]]:
    """ingredient -> (drug_class, always_long_acting) from reference/drug_classes.csv."""
    text = resources.files(__package__).joinpath("reference/drug_classes.csv").read_text(encoding="utf-8")
    return {
        r["ingredient"]: (r["drug_class"], r["always_long_acting"] == "true")
        for r in csv.DictReader(text.splitlines())
    }


def normalise_ingredient(name: str) -> str:
    """Lower-case moiety name: salts dropped, and a known ingredient picked out of longer names."""
    words = [w for w in re.split(r"[\s,]+", name.lower().strip()) if w and w not in SALT_WORDS]
    known = drug_classes()
    for w in words:
        if w in known:
            return w
    return " ".join(words)


def _parse_component(text: str) -> tuple[str, float, str, str] | None:
    m = _COMPONENT.match(text.strip())
    if not m:
        return None
    return m["name"].strip(), float(m["num"]), m["unit"].upper(), m["rest"].strip()


def parse_drug_name(drug_name: str) -> Drug:
    """Ingredient, strength, unit and dose form from an RxNorm-style clinical drug name."""
    text = _BRAND.sub(" ", drug_name or "").strip()
    if not text:
        return Drug(error="drug_name is blank, and ingredient/strength/unit are not given")
    durations = _DURATION.findall(text)
    text = re.sub(r"\s+", " ", _DURATION.sub(" ", text)).strip()
    parts = [p for p in re.split(r"\s+/\s+", text) if p.strip()]
    components = []
    for i, part in enumerate(parts):
        c = _parse_component(part)
        if c is None:
            return Drug(error=f"cannot read ingredient, strength and unit from drug_name '{drug_name}'")
        if i < len(parts) - 1 and c[3]:
            return Drug(error=f"cannot read ingredient, strength and unit from drug_name '{drug_name}'")
        components.append(c)
    form = components[-1][3]
    if not form:
        return Drug(error=f"drug_name '{drug_name}' has no dose form")
    known = drug_classes()
    rank = {c: i for i, c in enumerate(CLASS_PRIORITY)}

    def priority(c: tuple[str, float, str, str]) -> int:
        cls = known.get(normalise_ingredient(c[0]), (None, False))[0]
        return rank.get(cls, len(rank))

    name, strength, unit, _ = min(components, key=priority)
    ingredient = normalise_ingredient(name)
    strength, unit = normalise_strength(strength, unit)
    drug_class, always_la = known.get(ingredient, (None, False))
    long_acting = bool(durations) or vocabulary.long_acting_form(form, unit) or always_la
    return Drug(ingredient, strength, unit, form, long_acting, drug_class, parsed=True,
                form_group=vocabulary.form_group(form, unit))


_BOOL = {"true": True, "1": True, "t": True, "yes": True, "y": True,
         "false": False, "0": False, "f": False, "no": False, "n": False}
# The same bound as the loader's rx_parse_number (queries/functions.*.sql): 1e999 is infinity as a float.
MAX_NUMBER = 1e15
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?$")


def resolve_drug(drug_name: str, ingredient: str, strength: str, strength_unit: str,
                 dose_form: str, long_acting: str) -> Drug:
    """The drug of one prescription row: given fields win; blank ones are parsed from drug_name."""
    given = [x.strip() for x in (ingredient, strength, strength_unit, dose_form)]
    la_text = long_acting.strip().lower()
    if la_text and la_text not in _BOOL:
        return Drug(error=f"long_acting '{long_acting}' is not true/false/1/0")
    parsed = None
    if not all(given[:3]) or not given[3]:
        parsed = parse_drug_name(drug_name)
        if parsed.error and not all(given[:3]):
            return parsed
    ing_text, strength_text, unit_text, form_text = given
    if strength_text and not (_NUMBER.match(strength_text) and abs(float(strength_text)) < MAX_NUMBER):
        return Drug(error=f"strength '{strength}' is not a number below 10^15")
    ing = normalise_ingredient(ing_text) if ing_text else parsed.ingredient
    if strength_text and unit_text:
        value, unit = normalise_strength(float(strength_text), unit_text)
    elif strength_text or unit_text:
        # One given without the other cannot be trusted to match the name's reading.
        return Drug(error="strength and strength_unit must be given together (or both left blank)")
    else:
        value, unit = parsed.strength, parsed.strength_unit
    if value is None or value <= 0:
        return Drug(error=f"strength '{strength or value}' must be greater than zero")
    if not value < MAX_NUMBER:   # a strength read from a name of 400 digits is infinity as a float
        return Drug(error=f"strength in '{drug_name}' is not a number below 10^15")
    form = form_text or (parsed.dose_form if parsed and not parsed.error else None)
    drug_class, always_la = drug_classes().get(ing, (None, False))
    if la_text:
        la = _BOOL[la_text]
    else:
        la = always_la or vocabulary.long_acting_form(form, unit) or bool(
            parsed and not parsed.error and parsed.long_acting)
    return Drug(ing, value, unit, form, la, drug_class, parsed=parsed is not None and not parsed.error,
                form_group=vocabulary.form_group(form, unit))
