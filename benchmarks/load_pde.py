"""Benchmark: the same synthetic prescriptions loaded as CMS Part D event files (--format pde) and as the CSV
contract, time and peak memory of each.

    python benchmarks/load_pde.py [--prescriptions 1000000] [--keep DIR]

analysis.synthetic generates the contract files; `convert` rewrites them as (1) a contract folder whose
prescriptions carry only an NDC (drug_name blank), flags false and no events, and (2) the same data as Part D
files: a headerless RIF event file in the older layout (VERSION first, SRVC_DT as DD-MON-YY), a headered
beneficiary file (BENE_BIRTH_DT as DD-MON-YYYY, BENE_SEX_IDENT_CD 1/2) and a roster. Both then hold the same
patients, prescribers and fills, so their loads must give the same tables (tests/test_source_pde.py checks
that on a small size). Each load runs in a child process so its peak resident memory (ru_maxrss) is its own.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()


def _ndc_for(drugs_rows: list[tuple]) -> pa.Table:
    """For each distinct drug description of the synthetic prescriptions (drug_name, ingredient, strength,
    strength_unit, dose_form, long_acting), one bundled reference NDC of the same ingredient, strength, unit,
    long-acting flag and form group (analysis.vocabulary.form_group), or None."""
    from analysis import drugs, ndc, rxcui, vocabulary

    by_key: dict[tuple, str] = {}
    for r in ndc.bundled_rows():
        key = (r["ingredient"], float(r["strength"]), r["strength_unit"], bool(r["long_acting"]),
               vocabulary.form_group(str(r["dose_form"]), str(r["strength_unit"])))
        by_key.setdefault(key, str(r["ndc11"]))
    rx_products = rxcui.products()
    out = {"drug_name": [], "ingredient": [], "strength": [], "strength_unit": [], "dose_form": [],
           "long_acting": [], "ndc": []}
    for row in drugs_rows:
        d = drugs.identify_drug(*row, "", "", ndc_products={}, rxcui_products=rx_products)
        code = None
        if d.error is None and d.ingredient:
            code = by_key.get((d.ingredient, float(d.strength), d.strength_unit, bool(d.long_acting), d.form_group))
        for k, v in zip(list(out)[:6], row):
            out[k].append(v)
        out["ndc"].append(code)
    return pa.table(out)


def convert(contract: Path, out_contract: Path, out_pde: Path) -> dict[str, int]:
    """Write `contract` (analysis.synthetic's files) as the NDC-only contract folder `out_contract` and the
    Part D folder `out_pde` (module docstring). Prescriptions whose drug has no NDC in the bundled reference
    are left out of both. Returns rows written per file."""
    out_contract.mkdir(parents=True, exist_ok=True)
    out_pde.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()

    def read(name: str) -> str:
        return f"read_csv('{contract / (name + '.csv')}', header = true, all_varchar = true)"

    key = "drug_name, ingredient, strength, strength_unit, dose_form, long_acting"
    rows = con.execute(f"select distinct {', '.join(f'coalesce({c}, {chr(39)}{chr(39)})' for c in key.split(', '))} "
                       f"from {read('prescriptions')}").fetchall()
    con.register("drug_ndc", _ndc_for(rows))
    con.execute(f"""create table rx as select p.rx_id, p.patient_id, p.clinician_id, cast(p.fill_date as date) as fill,
                        p.quantity, p.days_supply, p.pharmacy_id, m.ndc
                    from {read('prescriptions')} as p inner join drug_ndc as m
                      on m.drug_name = coalesce(p.drug_name, '') and m.ingredient = coalesce(p.ingredient, '')
                     and m.strength = coalesce(p.strength, '') and m.strength_unit = coalesce(p.strength_unit, '')
                     and m.dose_form = coalesce(p.dose_form, '') and m.long_acting = coalesce(p.long_acting, '')
                    where m.ndc is not null""")
    counts = {}

    def copy(select: str, path: Path, header: bool, delim: str) -> None:
        con.execute(f"copy ({select}) to '{path}' (format csv, header {str(header).lower()}, delimiter '{delim}')")
        counts[path.name] = con.execute(f"select count(*) from ({select})").fetchall()[0][0]

    copy("select clinic_id, clinic_name from " + read("clinics"), out_contract / "clinics.csv", True, ",")
    copy("select clinician_id, clinician_name, specialty, clinic_id from " + read("clinicians"),
         out_contract / "clinicians.csv", True, ",")
    copy("select patient_id, birth_date, sex, 'false' as cancer, 'false' as hospice_palliative, 'false' as sickle_cell, "
         "'false' as opioid_use_disorder from " + read("patients"), out_contract / "patients.csv", True, ",")
    copy("select rx_id, patient_id, clinician_id, strftime(fill, '%Y-%m-%d') as fill_date, null as drug_name, "
         "null as ingredient, null as strength, null as strength_unit, null as dose_form, quantity, days_supply, "
         "null as long_acting, ndc, pharmacy_id from rx order by rx_id", out_contract / "prescriptions.csv", True, ",")
    months = "[" + ", ".join(f"'{m}'" for m in MONTHS) + "]"
    from analysis.sources.pde import RIF_OLD
    values = {"VERSION": "'1'", "DML_IND": "'INSERT'", "PDE_ID": "rx_id", "BENE_ID": "patient_id",
              "SRVC_DT": f"strftime(fill, '%d-') || {months}[month(fill)] || strftime(fill, '-%y')",
              "SRVC_PRVDR_ID_QLFYR_CD": "'01'", "SRVC_PRVDR_ID": "pharmacy_id", "PRSCRBR_ID_QLFYR_CD": "'01'",
              "PRSCRBR_ID": "clinician_id", "PROD_SRVC_ID": "ndc", "CMPND_CD": "'1'", "QTY_DSPNSD_NUM": "quantity",
              "DAYS_SUPLY_NUM": "days_supply", "DSPNSNG_STUS_CD": "'P'"}
    rif = ", ".join(f"{values.get(c, 'null')} as c{i}" for i, c in enumerate(RIF_OLD))
    copy(f"select {rif} from rx order by rx_id", out_pde / "pde_events.txt", False, "|")
    copy("select 'INSERT' as DML_IND, patient_id as BENE_ID, "
         f"strftime(cast(birth_date as date), '%d-') || {months}[month(cast(birth_date as date))] "
         "|| strftime(cast(birth_date as date), '-%Y') as BENE_BIRTH_DT, "
         "case sex when 'M' then '1' when 'F' then '2' else '0' end as BENE_SEX_IDENT_CD, null as DEATH_DT "
         "from " + read("patients"), out_pde / "beneficiary.txt", True, "|")
    copy("select d.clinician_id, d.clinic_id, c.clinic_name, d.specialty, d.clinician_name from "
         f"{read('clinicians')} as d left join {read('clinics')} as c on c.clinic_id = d.clinic_id",
         out_pde / "roster.csv", True, ",")
    con.close()
    return counts


def _load_child(folder: str, url: str, format: str) -> None:
    from analysis import db, ingest

    engine = db.make_engine(url)
    start = time.perf_counter()
    report = ingest.load_source(engine, folder, format, Path(url.split("///")[1]).with_suffix(".rejects.csv"),
                                replace=True)
    seconds = time.perf_counter() - start
    rx = next(t for t in report.tables if t.table == "prescriptions")
    print(json.dumps({"seconds": seconds, "prescriptions": rx.rows_read, "loaded": rx.rows_loaded,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prescriptions", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="write the generated files here and keep them")
    parser.add_argument("--_load", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._load:
        _load_child(*args._load)
        return
    from analysis import synthetic

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        patients = max(1, round(args.prescriptions / synthetic.PRESCRIPTIONS_PER_PATIENT))
        start = time.perf_counter()
        synthetic.generate(root / "synthetic", patients, seed=1, bad_rows=False)
        counts = convert(root / "synthetic", root / "contract", root / "pde")
        print(f"generated {counts['pde_events.txt']:,} Part D events for {patients:,} patients in "
              f"{time.perf_counter() - start:,.1f} s")
        results = {}
        for format, folder in (("contract", root / "contract"), ("pde", root / "pde")):
            url = f"duckdb:///{Path(tmp) / (format + '.duckdb')}"
            out = subprocess.run([sys.executable, __file__, "--_load", str(folder), url, format],
                                 capture_output=True, text=True, check=True)
            results[format] = r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{format:>8}: {r['prescriptions']:,} prescriptions read, {r['loaded']:,} loaded in "
                  f"{r['seconds']:,.1f} s ({r['prescriptions'] / r['seconds']:,.0f} rows/s), "
                  f"peak memory {r['peak_mb']:,.0f} MB")
        c, p = results["contract"], results["pde"]
        print(f"pde / contract: time {p['seconds'] / c['seconds']:.2f}x, peak memory {p['peak_mb'] / c['peak_mb']:.2f}x "
              "(target: within 2x)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
