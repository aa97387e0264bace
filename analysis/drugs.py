"""Drug identification: given fields, NDC and RxCUI codes (through the code references) and RxNorm-style
drug names parsed into ingredient, strength, unit and dose form.

Pure functions. The loader calls `identify_drug` once per *distinct* drug description in a file (a few
thousand at most), never once per prescription row.
"""
from __future__ import annotations

import csv
import dataclasses
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from analysis import codes, vocabulary
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
# RxNorm's quantity prefix on packaged drugs ("1 ML Naloxone ... Injection", "0.4 ML ... Auto-Injector").
_QUANTITY = re.compile(r"^\s*(?:\d+(?:\.\d+)?|\.\d+)\s*(?:ML|ACTUAT)\s+(?=[A-Za-z])", re.IGNORECASE)


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
    source: str = "name"        # how the drug was identified (DRUG_SOURCES)
    skip: str | None = None     # why the row is skipped as another drug (SKIP_REASONS), else None


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
    text = _QUANTITY.sub("", _BRAND.sub(" ", drug_name or "")).strip()
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


# How a prescription's drug was identified (prescriptions.drug_source): its own ingredient, strength and
# unit fields; its NDC or RxCUI in a code reference (analysis.ndc, analysis.rxcui); or its drug name.
DRUG_SOURCES = ("given", "ndc", "rxcui", "name")
# Why a row is skipped rather than loaded: its code is not in the references (which hold only opioids,
# benzodiazepines, buprenorphine and naloxone) and nothing else in the row names one of those drugs.
SKIP_REASONS = {
    "other_drug_by_ndc": "NDC not in the NDC reference, and no drug of ours is named",
    "other_drug_by_rxcui": "RxCUI not in the RxCUI reference, and no drug of ours is named",
}


@dataclass(frozen=True)
class Product:
    """One coded product of a reference (an NDC or an RxCUI): what it holds, in our vocabulary.

    strength is per unit of strength_unit (analysis.vocabulary.UNITS: MG, MCG/HR for patches, MG/ML,
    MCG/ACTUAT ...); for combinations the strength of the ingredient that decides the class."""

    code: str
    name: str
    ingredient: str
    strength: float
    strength_unit: str
    dose_form: str
    long_acting: bool
    drug_class: str | None


def mentions_known_ingredient(*texts: str) -> bool:
    """True when any word of the texts is an ingredient of reference/drug_classes.csv ('OXYCODONE HCL')."""
    known = drug_classes()
    return any(w in known for t in texts for w in re.split(r"[^a-z]+", (t or "").lower()) if w)


def _from_product(product: Product, source: str, fields: tuple[str, str, str, str, str]) -> Drug:
    """The product's drug, with any field the row gives winning (strength and unit only as a pair)."""
    ingredient, strength, strength_unit, dose_form, long_acting = (f.strip() for f in fields)
    if not (strength or strength_unit):
        strength, strength_unit = repr(product.strength), product.strength_unit
    drug = resolve_drug("", ingredient or product.ingredient, strength, strength_unit,
                        dose_form or product.dose_form, long_acting or ("true" if product.long_acting else "false"))
    return drug if drug.error else dataclasses.replace(drug, source=source)


def _code_error(status: dict[str, str], ndc: str, rxcui: str) -> str | None:
    """A reason quoting the row's codes when they, not the name, are why its drug is unknown."""
    if status["ndc"] == "ambiguous":
        return (f"ndc '{ndc}' (10 digits or fewer, no hyphens) reads as several products of the NDC reference; "
                "write it with hyphens (4-4-2, 5-3-2 or 5-4-1) or as 11 digits")
    if status["ndc"] == "unreadable" and status["rxcui"] != "unknown":
        return f"ndc '{ndc}' is not an NDC (11 digits, or 10 with hyphens), and drug_name is blank"
    if status["rxcui"] == "unreadable" and status["ndc"] in ("blank", "unreadable"):
        return f"rxcui '{rxcui}' is not an RxNorm code (a whole number), and drug_name is blank"
    return None


def identify_drug(drug_name: str, ingredient: str, strength: str, strength_unit: str, dose_form: str,
                  long_acting: str, ndc: str, rxcui: str, ndc_products: dict[str, Product],
                  rxcui_products: dict[str, Product]) -> Drug:
    """The drug of one prescription row from its fields, its codes and its name, in that order.

    Given ingredient, strength and unit win (source 'given'); else the NDC's product (source 'ndc'), else
    the RxCUI's ('rxcui'), with any field the row gives still winning; else the name is parsed ('name').
    NDC comes before RxCUI: it names the package dispensed, an RxCUI often only the drug ordered.
    A row whose codes are readable but in neither reference is *skipped* (Drug.skip, SKIP_REASONS) when
    nothing else in it names one of our drugs: no name, or one that reads as an ingredient outside
    reference/drug_classes.csv. A name that mentions one of ours but cannot be read is still rejected.
    """
    fields = (ingredient, strength, strength_unit, dose_form, long_acting)
    status = {"ndc": "blank", "rxcui": "blank"}
    product, source = None, "name"
    status["ndc"], ndc11 = codes.match_ndc(ndc, ndc_products)
    status["rxcui"], cui = codes.match_rxcui(rxcui, rxcui_products)
    if ndc11:
        product, source = ndc_products[ndc11], "ndc"
    elif cui:
        product, source = rxcui_products[cui], "rxcui"
    if all(f.strip() for f in fields[:3]):
        drug = dataclasses.replace(resolve_drug(drug_name, *fields), source="given")
    elif product is not None:
        return _from_product(product, source, fields)
    else:
        drug = resolve_drug(drug_name, *fields)
    if product is not None:
        return drug
    unknown = [k for k in ("ndc", "rxcui") if status[k] == "unknown"]
    if unknown and (drug.error and not mentions_known_ingredient(drug_name, ingredient)
                    or not drug.error and drug.drug_class is None):
        return Drug(skip=f"other_drug_by_{unknown[0]}")
    if drug.error and not drug_name.strip() and not any(f.strip() for f in fields[:3]):
        return Drug(error=_code_error(status, ndc, rxcui) or drug.error)
    return drug
