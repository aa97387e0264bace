"""The RxCUI reference: RxNorm clinical and branded drugs of our classes, by RXCUI.

Bundled as reference/rxcui_products.csv (RXCUI_COLUMNS), built by `build` from two public sources:
- OMTK, the Opioid Management Terminology Knowledgebase (cqframework/opioid-mme-r4, input/cql/OMTKData.cql,
  generated 2020-10-20 from RxNav; Apache-2.0): each opioid drug (buprenorphine included) with its opioid
  ingredient, strength, unit and dose form;
- the CDC opioid CDS value sets (cqframework/opioid-cds, input/vocabulary/valueset/, CC0-1.0):
  benzodiazepine, naloxone, and buprenorphine-and-methadone medications, each RXCUI with its RxNorm name,
  read with analysis.drugs.parse_drug_name.
RxNorm content is from the U.S. National Library of Medicine (NLM). Rebuild: scripts/build_references.py.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

from analysis import codes, drugs, vocabulary

RXCUI_COLUMNS = ("rxcui", "name", "ingredient", "strength", "strength_unit", "dose_form", "long_acting",
                 "drug_class", "source")
_TEXT = r"'((?:[^'\\]|\\.|'')*)'"
_OMTK_ROW = re.compile(
    r"\{\s*drugCode:\s*(\d+),\s*drugName:\s*" + _TEXT + r",\s*doseFormCode:\s*(?:\d+|null),\s*doseFormName:\s*"
    + _TEXT + r",\s*ingredientCode:\s*\d+,\s*ingredientName:\s*" + _TEXT + r",\s*strength:\s*" + _TEXT
    + r",\s*strengthValue:\s*([0-9.eE+-]+),\s*strengthUnit:\s*" + _TEXT + r"\s*\}")


def _unquote(text: str) -> str:
    return text.replace("''", "'").replace("\\'", "'")


def _row(code: str, name: str, ingredient: str, strength: float, unit: str, form: str, long_acting: bool,
         source: str) -> dict[str, object] | None:
    ingredient = drugs.normalise_ingredient(ingredient)
    drug_class = drugs.drug_classes().get(ingredient, (None, False))[0]
    if drug_class is None or not strength > 0:
        return None
    strength, unit = vocabulary.normalise_strength(strength, unit)
    return {"rxcui": code, "name": name, "ingredient": ingredient, "strength": strength, "strength_unit": unit,
            "dose_form": form, "long_acting": long_acting, "drug_class": drug_class, "source": source}


def from_omtk(cql: str, source: str) -> list[dict[str, object]]:
    """Rows from OMTKData.cql's DrugIngredients list: one per drug. A drug listed with two salts of one
    ingredient (oxycodone hydrochloride 4.5 MG / oxycodone terephthalate 0.38 MG) sums them; with several
    ingredients of ours, the class priority of analysis.drugs decides (as for names)."""
    per_drug: dict[str, list[tuple]] = {}
    for m in _OMTK_ROW.finditer(cql):
        code, name, form, ingredient, _, value, unit = m.groups()
        per_drug.setdefault(code, []).append((_unquote(name), _unquote(form), _unquote(ingredient), float(value),
                                              _unquote(unit)))
    rank = {c: i for i, c in enumerate(drugs.CLASS_PRIORITY)}
    rows = []
    for code, parts in per_drug.items():
        name, form = parts[0][0], parts[0][1]
        totals: dict[tuple[str, str], float] = {}
        for _, _, ingredient, value, unit in parts:
            key = (drugs.normalise_ingredient(ingredient), unit)
            totals[key] = totals.get(key, 0.0) + value
        (ingredient, unit), value = min(totals.items(), key=lambda kv: rank.get(
            drugs.drug_classes().get(kv[0][0], (None, False))[0], len(rank)))
        parsed = drugs.parse_drug_name(name)
        always = drugs.drug_classes().get(ingredient, (None, False))[1]
        la = (parsed.long_acting if parsed.parsed else vocabulary.long_acting_form(form, unit)) or always
        row = _row(code, name, ingredient, value, unit, form, bool(la), source)
        if row:
            rows.append(row)
    return rows


def from_value_set(value_set: dict, source: str) -> list[dict[str, object]]:
    """Rows from a FHIR ValueSet's expansion (or compose) of RxNorm codes, each name parsed."""
    concepts = value_set.get("expansion", {}).get("contains") or [
        c for inc in value_set.get("compose", {}).get("include", []) for c in inc.get("concept", [])]
    rows = []
    for c in concepts:
        drug = drugs.parse_drug_name(c.get("display", ""))
        if drug.error or not str(c.get("code", "")).isdigit():
            continue
        row = _row(str(c["code"]), c["display"], drug.ingredient, drug.strength, drug.strength_unit,
                   drug.dose_form, bool(drug.long_acting), source)
        if row:
            rows.append(row)
    return rows


def build(omtk_cql: str, value_sets: Iterable[tuple[str, str]], omtk_source: str) -> list[dict[str, object]]:
    """OMTK rows, then each value set's rows for RXCUIs not yet listed; sorted by RXCUI.
    value_sets: (json text, source) pairs."""
    rows = {r["rxcui"]: r for r in from_omtk(omtk_cql, omtk_source)}
    for text, source in value_sets:
        for r in from_value_set(json.loads(text), source):
            rows.setdefault(r["rxcui"], r)
    return sorted(rows.values(), key=lambda r: int(str(r["rxcui"])))


def write_csv(rows: list[dict[str, object]], out) -> None:
    """Write rows as reference/rxcui_products.csv (RXCUI_COLUMNS)."""
    w = csv.DictWriter(out, RXCUI_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "long_acting": "true" if r["long_acting"] else "false", "strength": f"{r['strength']:g}"})


@lru_cache(maxsize=1)
def products() -> dict[str, drugs.Product]:
    """rxcui -> Product from the bundled reference/rxcui_products.csv."""
    text = resources.files("analysis").joinpath("reference/rxcui_products.csv").read_text(encoding="utf-8")
    out = {}
    for r in csv.DictReader(io.StringIO(text)):
        code = codes.normalise_rxcui(r["rxcui"])
        if code:
            out[code] = drugs.Product(code, r["name"], r["ingredient"], float(r["strength"]), r["strength_unit"],
                                      r["dose_form"], r["long_acting"] == "true", r["drug_class"] or None)
    return out
