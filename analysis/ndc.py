"""The NDC reference: opioid, benzodiazepine, buprenorphine and naloxone products by 11-digit NDC.

Bundled with the code: reference/ndc_products.csv, built by `read_cdc_workbook` from the CDC oral MME
conversion file, September 2017 edition (sheets Opioids and Benzos), and reference/ndc_naloxone.csv,
naloxone products the CDC file does not list, each row naming the FDA label it was read from.

Where the reference in force lives: the database table ref_ndc. Every `rxdash load` refreshes it from the
bundled files (origin 'bundled') unless a user loaded one with `rxdash reference ndc FILE` (origin
'loaded': a newer CDC workbook, or a CSV of NDC_COLUMNS); a loaded reference is kept by later loads until
another is loaded. The bundled naloxone rows are added to a loaded reference for the NDCs it lacks (the
CDC files have no naloxone). Prescriptions already loaded keep the identification made when they were
loaded; load again with --replace to identify them with a new reference.
"""
from __future__ import annotations

import csv
import io
import re
from collections import Counter
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa

import queries
from analysis import codes, drugs, vocabulary

NDC_COLUMNS = ("ndc11", "product_name", "ingredient", "strength", "strength_unit", "dose_form", "long_acting",
               "drug_class", "edition")
BUNDLED_FILES = ("ndc_products.csv", "ndc_naloxone.csv")
# Sheets of the CDC workbook read (2016-2018 editions name them so); the others are muscle relaxants,
# stimulants and zolpidem, and an abuse-deterrent tab whose launched products are on the Opioids sheet.
CDC_SHEETS = ("opioids", "benzos", "benzodiazepines")
# CDC column -> our field; the 2018 edition renamed Product_Name and Generic_Drug_Name.
CDC_COLUMNS = {"NDC": "ndc", "PRODUCT_NAME": "product", "PRODNME": "product", "MASTER_FORM": "form",
               "DRUG": "drug", "LONGSHORTACTING": "la", "STRENGTH_PER_UNIT": "strength", "UOM": "unit",
               "MME_CONVERSION_FACTOR": "factor"}
CDC_REQUIRED = ("ndc", "product", "form", "drug", "strength", "unit")
_TRUE = {"true", "1", "t", "yes", "y"}
_FALSE = {"false", "0", "f", "no", "n", ""}


class ReferenceFileError(ValueError):
    """A reference file that cannot be used; the message is one line naming the file and the problem."""


def _shown(text: object, limit: int = 60) -> str:
    """Input text fit for one line of a message (control characters become spaces, long text is cut)."""
    clean = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return clean if len(clean) <= limit else clean[:limit - 1] + "…"


def cdc_dose_form(drug: str, form: str, factor: object) -> str:
    """The CDC file's Master_Form made precise where the MME factor depends on it.

    The file writes fentanyl's transmucosal products as plain 'Tablet', 'Spray' and 'Film', and gives
    them factors by kind (its notes 2-4): tablets are buccal or sublingual (0.13), a spray with 0.16 is
    nasal and with 0.18 sublingual, films are buccal. Butorphanol sprays are nasal. Other forms are kept."""
    drug, form = drug.lower(), (form or "").strip()
    if drug.startswith("fentanyl") and form.lower() == "tablet":
        return "Buccal or Sublingual Tablet"
    if drug.startswith("fentanyl") and form.lower() == "spray":
        return {0.16: "Nasal Spray", 0.18: "Sublingual Spray"}.get(_number(factor), form)
    if drug.startswith("fentanyl") and form.lower() == "film":
        return "Buccal Film"
    if drug.startswith("butorphanol") and form.lower() == "spray":
        return "Nasal Spray"
    return form


def _number(value: object) -> float | None:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) < drugs.MAX_NUMBER else None


def _ndc_cell(value: object) -> str | None:
    """An NDC cell as 11 digits: text as written; a number (the zeros it lost restored) padded to 11."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        if value != int(value) or not 0 < value < 10 ** 11:
            return None
        return str(int(value)).zfill(11)
    readings = codes.ndc11_candidates(str(value))
    return readings[0] if len(readings) == 1 else None


def _product_row(ndc11: str, name: str, ingredient: str, strength: float, unit: str, form: str,
                 long_acting: bool, edition: str) -> dict[str, object] | None:
    """One reference row in our vocabulary, or None when the ingredient has no class of ours."""
    ingredient = drugs.normalise_ingredient(ingredient)
    drug_class = drugs.drug_classes().get(ingredient, (None, False))[0]
    if drug_class is None:
        return None
    strength, unit = vocabulary.normalise_strength(strength, unit)
    return {"ndc11": ndc11, "product_name": name, "ingredient": ingredient, "strength": strength,
            "strength_unit": unit, "dose_form": form, "long_acting": long_acting, "drug_class": drug_class,
            "edition": edition}


def _cdc_edition(workbook, path: Path) -> str:
    """'CDC oral MME file, September 2017' (the month it was made) from the Documentation sheet."""
    text = ""
    for sheet in workbook.worksheets:
        if sheet.title.lower().startswith("doc"):
            text = " ".join(str(r[0]) for r in sheet.iter_rows(max_row=6, values_only=True) if r and r[0])
    year = re.search(r"(\d{4}) version", text)
    month = re.search(r"(January|February|March|April|May|June|July|August|September|October|November|"
                      r"December),? (\d{4})", text)
    if month:
        return f"CDC oral MME file, {month[1]} {month[2]}"
    return f"CDC oral MME file, {year[1]} version" if year else f"CDC oral MME file ({_shown(path.name)})"


def read_cdc_workbook(path: Path) -> tuple[list[dict[str, object]], Counter]:
    """Rows of NDC_COLUMNS from a CDC oral MME conversion workbook (.xlsx), and the rows left out by reason.

    Reads the Opioids and Benzos sheets by column name (NDC, Product_Name or PRODNME, Master_Form, Drug,
    LongShortActing, Strength_Per_Unit, UOM, MME_Conversion_Factor). NDCs are read as text (a cell stored
    as a number gets its leading zeros back). Ingredient: the Drug column without its ' SA'/' LA' suffix
    ('Hydrocodone SA' -> hydrocodone); for combinations the CDC strength is the controlled substance's.
    long_acting: LongShortActing = 'LA' (opioids), else an extended-release or transdermal form.
    Raises ReferenceFileError (one line) when the file is no such workbook."""
    from openpyxl import load_workbook   # only this command reads Excel

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:   # openpyxl raises many kinds for a file that is not a workbook
        raise ReferenceFileError(f"{_shown(path.name)}: not an Excel workbook that can be read "
                                 f"({_shown(type(e).__name__)})") from None
    try:
        edition = _cdc_edition(workbook, path)
        rows, dropped = [], Counter()
        sheets = [s for s in workbook.worksheets if s.title.strip().lower() in CDC_SHEETS]
        if not sheets:
            raise ReferenceFileError(f"{_shown(path.name)}: no Opioids or Benzos sheet (sheets: "
                                     f"{_shown(', '.join(s.title for s in workbook.worksheets), 200)})")
        for sheet in sheets:
            rows += _read_cdc_sheet(sheet, path, edition, dropped)
    finally:
        workbook.close()
    return rows, dropped


def _read_cdc_sheet(sheet, path: Path, edition: str, dropped: Counter) -> list[dict[str, object]]:
    cells = sheet.iter_rows(values_only=True)
    header = [CDC_COLUMNS.get(str(c or "").strip().upper()) for c in next(cells, ())]
    missing = [c for c in CDC_REQUIRED if c not in header]
    if missing:
        raise ReferenceFileError(f"{_shown(path.name)}: sheet {_shown(sheet.title)} lacks the column"
                                 f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} of the CDC file")
    out = []
    for values in cells:
        r = {k: v for k, v in zip(header, values) if k}
        ndc11, strength = _ndc_cell(r.get("ndc")), _number(r.get("strength"))
        drug = str(r.get("drug") or "").strip()
        if ndc11 is None:
            dropped["no readable NDC"] += 1 if any(v is not None for v in values) else 0
            continue
        if strength is None or strength <= 0 or not str(r.get("unit") or "").strip():
            dropped["no strength or unit"] += 1
            continue
        form = cdc_dose_form(drug, str(r.get("form") or ""), r.get("factor"))
        la_text = str(r.get("la") or "").strip().upper()
        unit = str(r["unit"]).strip()
        la = la_text == "LA" if la_text else vocabulary.long_acting_form(form, unit)
        row = _product_row(ndc11, str(r.get("product") or "").strip(), re.sub(r"\s+(SA|LA)$", "", drug),
                           strength, unit, form, la, edition)
        if row is None:
            dropped["ingredient outside our classes"] += 1
        else:
            out.append(row)
    return out


def read_reference_csv(path: Path) -> list[dict[str, object]]:
    """Rows of a reference CSV with the columns NDC_COLUMNS (the bundled files' format). All or nothing:
    ReferenceFileError names the first bad line. drug_class is recomputed from the ingredient (a row whose
    ingredient is outside reference/drug_classes.csv is refused: the reference holds only our drugs)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ReferenceFileError(f"{_shown(path.name)}: not UTF-8 encoded; save it as UTF-8 CSV") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    names = [c.strip().lower() for c in reader.fieldnames or []]
    missing = [c for c in NDC_COLUMNS if c not in names and c != "drug_class"]
    if missing:
        raise ReferenceFileError(f"{_shown(path.name)}: missing column{'s' if len(missing) > 1 else ''} "
                                 f"{', '.join(missing)} (expected {', '.join(NDC_COLUMNS)})")
    rows = []
    for line, raw in enumerate(reader, start=2):
        r = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        rows.append(_csv_row(r, f"{_shown(path.name)}: line {line}"))
    return rows


def _csv_row(r: dict[str, str], where: str) -> dict[str, object]:
    readings = codes.ndc11_candidates(r["ndc11"])
    if len(readings) != 1:
        raise ReferenceFileError(f"{where}: ndc11 '{_shown(r['ndc11'])}' is not an 11-digit (or hyphenated) NDC")
    strength = _number(r["strength"])
    if strength is None or strength <= 0:
        raise ReferenceFileError(f"{where}: strength '{_shown(r['strength'])}' is not a number above zero")
    if not r["strength_unit"] or not r["ingredient"] or not r["edition"]:
        raise ReferenceFileError(f"{where}: ingredient, strength_unit and edition must not be blank")
    la = r["long_acting"].lower()
    if la not in _TRUE | _FALSE:
        raise ReferenceFileError(f"{where}: long_acting '{_shown(r['long_acting'])}' is not true/false")
    row = _product_row(readings[0], r["product_name"], r["ingredient"], strength, r["strength_unit"],
                       r["dose_form"], la in _TRUE, r["edition"])
    if row is None:
        raise ReferenceFileError(f"{where}: ingredient '{_shown(r['ingredient'])}' is not an opioid, "
                                 "benzodiazepine, buprenorphine or naloxone (reference/drug_classes.csv)")
    return row


def read_reference(path: Path | str) -> tuple[list[dict[str, object]], Counter]:
    """Rows of NDC_COLUMNS from FILE.xlsx (a CDC workbook) or FILE.csv, and rows left out by reason;
    ReferenceFileError when the file cannot be used (missing, other format, bad columns, no rows)."""
    path = Path(path)
    if not path.is_file():
        raise ReferenceFileError(f"{_shown(path, 300)}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        rows, dropped = read_cdc_workbook(path)
    elif suffix == ".csv":
        rows, dropped = read_reference_csv(path), Counter()
    else:
        raise ReferenceFileError(f"{_shown(path.name)}: expected a CDC workbook (.xlsx) or a CSV file (.csv)")
    rows, repeated = _first_per_ndc(rows)
    if repeated:
        dropped["NDC listed again (first kept)"] += repeated
    if not rows:
        raise ReferenceFileError(f"{_shown(path.name)}: no usable product rows")
    return rows, dropped


def _first_per_ndc(rows: list[dict[str, object]]) -> tuple[list[dict[str, object]], int]:
    seen: dict[str, dict[str, object]] = {}
    for r in rows:
        seen.setdefault(str(r["ndc11"]), r)
    return list(seen.values()), len(rows) - len(seen)


def write_reference_csv(rows: list[dict[str, object]], path: Path) -> None:
    """Write rows as a reference CSV (NDC_COLUMNS; long_acting as true/false)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, NDC_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "long_acting": "true" if r["long_acting"] else "false",
                        "strength": f"{r['strength']:g}"})


@lru_cache(maxsize=1)
def _bundled() -> tuple[dict[str, object], ...]:
    root = resources.files("analysis").joinpath("reference")
    rows = []
    for name in BUNDLED_FILES:
        reader = csv.DictReader(io.StringIO(root.joinpath(name).read_text(encoding="utf-8")))
        rows += [_csv_row({k: (v or "") for k, v in r.items()}, name) for r in reader]
    return tuple(_first_per_ndc(rows)[0])


def bundled_rows() -> list[dict[str, object]]:
    """The bundled reference: ndc_products.csv, then the naloxone rows for NDCs it lacks."""
    return list(_bundled())


def _naloxone_rows() -> list[dict[str, object]]:
    return [r for r in bundled_rows() if r["drug_class"] == "naloxone"]


_ARROW_TYPES = {"strength": pa.float64(), "long_acting": pa.bool_()}


def _replace(conn: sa.Connection, rows: list[dict[str, object]], origin: str) -> None:
    """ref_ndc := rows, sent in bulk (Arrow to DuckDB, COPY to PostgreSQL)."""
    from analysis.ingest import bulk_insert   # the loader's bulk path (ingest imports this module)

    columns = (*NDC_COLUMNS, "origin")
    schema = pa.schema([(c, _ARROW_TYPES.get(c, pa.string())) for c in columns])
    table = pa.table({c: [origin if c == "origin" else r[c] for r in rows] for c in columns}, schema=schema)
    conn.exec_driver_sql("delete from ref_ndc")
    bulk_insert(conn, "ref_ndc", columns, iter(table.to_batches()), schema)


def refresh_bundled(conn: sa.Connection) -> None:
    """Put the bundled reference in ref_ndc unless a user-loaded one is there (which is kept)."""
    if conn.exec_driver_sql("select count(*) from ref_ndc where origin = 'loaded'").scalar_one():
        return
    _replace(conn, bundled_rows(), "bundled")


def load_user_reference(conn: sa.Connection, rows: list[dict[str, object]]) -> int:
    """Replace ref_ndc with a user's reference (origin 'loaded'), plus the bundled naloxone rows for NDCs
    it lacks; returns how many rows ref_ndc then holds."""
    merged, _ = _first_per_ndc(rows + _naloxone_rows())
    _replace(conn, merged, "loaded")
    return len(merged)


def products(conn: sa.Connection) -> dict[str, drugs.Product]:
    """ndc11 -> Product from ref_ndc (the reference in force), for the loader's drug identification."""
    result = conn.execute(sa.text(queries.load("ndc_products")))
    return {r.ndc11: drugs.Product(r.ndc11, r.product_name or "", r.ingredient, float(r.strength),
                                   r.strength_unit, r.dose_form or "", bool(r.long_acting), r.drug_class)
            for r in result}
