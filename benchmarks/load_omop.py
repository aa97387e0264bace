"""Benchmark: the same synthetic data loaded from the CSV contract and from an OMOP CDM folder.

    python benchmarks/load_omop.py [--prescriptions 1000000]

analysis.synthetic writes the contract files; DuckDB rewrites them as CDM 5.4 tables (PERSON, PROVIDER,
CARE_SITE, DRUG_EXPOSURE with one CONCEPT row per drug name, VISIT_OCCURRENCE for ED
visits and hospitalizations). Each load runs in its own child process (ingest.load_source into a temporary
DuckDB file) so that its peak resident memory (ru_maxrss) is its own. Target: OMOP within 2x of the contract.
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

TO_OMOP = {
    "PERSON": """select patient_id as person_id, case sex when 'M' then '8507' when 'F' then '8532' else '0' end
                   as gender_concept_id, year(try_cast(birth_date as date)) as year_of_birth,
                   month(try_cast(birth_date as date)) as month_of_birth, day(try_cast(birth_date as date))
                   as day_of_birth, '' as birth_datetime, sex as gender_source_value
                 from read_csv($d || '/patients.csv', all_varchar = true)""",
    "PROVIDER": """select clinician_id as provider_id, clinician_name as provider_name, '0' as specialty_concept_id,
                   clinic_id as care_site_id, specialty as specialty_source_value
                 from read_csv($d || '/clinicians.csv', all_varchar = true)""",
    "CARE_SITE": "select clinic_id as care_site_id, clinic_name as care_site_name "
                 "from read_csv($d || '/clinics.csv', all_varchar = true)",
    "CONCEPT": """select 2000000000 + row_number() over (order by drug_name) as concept_id, drug_name as concept_name,
                   'Synthetic' as vocabulary_id, '' as concept_code
                 from (select distinct drug_name from read_csv($d || '/prescriptions.csv', all_varchar = true))""",
    "DRUG_EXPOSURE": """select rx_id as drug_exposure_id, patient_id as person_id, c.concept_id as drug_concept_id,
                   fill_date as drug_exposure_start_date, '' as drug_exposure_end_date,
                   '38000175' as drug_type_concept_id, quantity, days_supply, clinician_id as provider_id,
                   p.drug_name as drug_source_value
                 from read_csv($d || '/prescriptions.csv', all_varchar = true) p join concept c
                   on c.concept_name = p.drug_name""",
    "VISIT_OCCURRENCE": """select row_number() over () as visit_occurrence_id, patient_id as person_id,
                   case event_type when 'ed_visit' then '9203' else '9201' end as visit_concept_id,
                   event_date as visit_start_date
                 from read_csv($d || '/events.csv', all_varchar = true)
                 where event_type in ('ed_visit', 'hospitalization')""",
}


def write_omop(contract: Path, out: Path) -> None:
    """Rewrite a contract folder as an OMOP CDM folder (benchmark input only)."""
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("create table concept as " + TO_OMOP["CONCEPT"].replace("$d", "?"), [str(contract)])
    for name, sql in TO_OMOP.items():
        query = "select * from concept" if name == "CONCEPT" else sql
        count = query.count("$d")
        con.execute(f"copy ({query.replace('$d', '?')}) to '{out / (name + '.csv')}' (header, delimiter ',')",
                    [str(contract)] * count)
    con.close()


def _child(fmt: str, source: str, url: str) -> None:
    from analysis import db, ingest

    start = time.perf_counter()
    report = ingest.load_source(db.make_engine(url), source, fmt, Path(url[len("duckdb:///"):]).with_suffix(".csv"),
                                replace=True)
    rx = next(t for t in report.tables if t.table == "prescriptions")
    print(json.dumps({"seconds": time.perf_counter() - start, "prescriptions": rx.rows_read,
                      "loaded": rx.rows_loaded,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prescriptions", type=int, default=1_000_000)
    parser.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        _child(*args._child)
        return
    from analysis import synthetic

    with tempfile.TemporaryDirectory() as tmp:
        contract, cdm = Path(tmp) / "contract", Path(tmp) / "omop"
        patients = max(1, round(args.prescriptions / synthetic.PRESCRIPTIONS_PER_PATIENT))
        counts = synthetic.generate(contract, patients, seed=1, bad_rows=False)
        write_omop(contract, cdm)
        print(f"generated {counts['prescriptions']:,} prescriptions for {patients:,} patients")
        results = {}
        for fmt, source in (("contract", contract), ("omop", cdm)):
            out = subprocess.run([sys.executable, __file__, "--_child", fmt, str(source),
                                  f"duckdb:///{Path(tmp) / (fmt + '.duckdb')}"], capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"{fmt} load failed: {out.stderr.strip().splitlines()[-1]}")
            results[fmt] = r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{fmt:>8}: {r['prescriptions']:,} prescription rows read, {r['loaded']:,} loaded, "
                  f"{r['seconds']:,.1f} s, peak memory {r['peak_mb']:,.0f} MB")
        c, o = results["contract"], results["omop"]
        print(f"omop / contract: time {o['seconds'] / c['seconds']:.2f}x, memory {o['peak_mb'] / c['peak_mb']:.2f}x")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
