"""Rebuild the bundled code references in analysis/reference/ from their public sources.

Usage:
    python scripts/build_references.py ndc CDC_Oral_Morphine_Milligram_Equivalents_Sept_2017.xlsx
    python scripts/build_references.py rxcui OPIOID_MME_R4_CHECKOUT OPIOID_CDS_CHECKOUT

`ndc` writes analysis/reference/ndc_products.csv from the CDC oral MME conversion workbook (sheets Opioids
and Benzos; analysis.ndc.read_cdc_workbook). `rxcui` writes analysis/reference/rxcui_products.csv from
cqframework/opioid-mme-r4 (input/cql/OMTKData.cql) and cqframework/opioid-cds
(input/vocabulary/valueset/valueset-{benzodiazepine,naloxone,buprenorphine-and-methadone}-medications.json)
checked out in the two folders (analysis.rxcui.build). See analysis/reference/README.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis import ndc, rxcui  # noqa: E402

REFERENCE = ROOT / "analysis" / "reference"
VALUE_SETS = ("benzodiazepine-medications", "naloxone-medications", "buprenorphine-and-methadone-medications")


def build_ndc(workbook: Path) -> str:
    rows, dropped = ndc.read_reference(workbook)
    ndc.write_reference_csv(rows, REFERENCE / "ndc_products.csv")
    return f"ndc_products.csv: {len(rows):,} products; left out: {dict(dropped) or 'none'}"


def build_rxcui(mme_r4: Path, opioid_cds: Path) -> str:
    cql = (mme_r4 / "input" / "cql" / "OMTKData.cql").read_text(encoding="utf-8")
    sets = [((opioid_cds / "input" / "vocabulary" / "valueset" / f"valueset-{name}.json").read_text(encoding="utf-8"),
             f"CDC opioid CDS value set {name} (cqframework/opioid-cds, CC0-1.0)") for name in VALUE_SETS]
    rows = rxcui.build(cql, sets, "OMTK 2020-10-20 (cqframework/opioid-mme-r4 OMTKData.cql, Apache-2.0)")
    with (REFERENCE / "rxcui_products.csv").open("w", newline="", encoding="utf-8") as f:
        rxcui.write_csv(rows, f)
    return f"rxcui_products.csv: {len(rows):,} RxCUIs"


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["ndc"] and len(args) == 2:
        print(build_ndc(Path(args[1])))
    elif args[:1] == ["rxcui"] and len(args) == 3:
        print(build_rxcui(Path(args[1]), Path(args[2])))
    else:
        sys.exit(__doc__)
