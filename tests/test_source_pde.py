"""The CMS Part D event adapter (`rxdash load FOLDER --format pde`, analysis/sources/pde.py).

Fixtures: the CC0 BFD samples committed in tests/data/pde (README there) and files built by code here.
Every test that loads runs on DuckDB and PostgreSQL (the `engine` fixture); figures are worked by hand.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa

from analysis import db, ingest, summary
from analysis.sources import pde
from tests.fixtures import by_source_file, daily_mme, read_rejects

DATA = Path(__file__).resolve().parent / "data" / "pde"
AS_OF = dt.date(2026, 1, 1)
HYDROCODONE_10 = "00406037801"   # HYDROCODONE BITARTRATE-ACETAMINOPHEN 10 mg tablet in the bundled reference
OTHER_DRUG = "50090443201"       # an NDC of another drug (in pde.csv; not in the reference)


def load(engine, source, tmp_path, **kw):
    return ingest.load_source(engine, source, "pde", tmp_path / "rejects.csv", replace=True, as_of=AS_OF, **kw)




def rif_old(pde_id, bene="B1", date="06-MAY-25", ndc=HYDROCODONE_10, qty="120", days="30", prescriber="1750384806",
            qualifier="01", dml="INSERT", compound="1", n_fields=None) -> str:
    """One line of a headerless RIF event file in the older layout (VERSION first, 40 fields)."""
    values = dict.fromkeys(pde.RIF_OLD, "")
    values.update(VERSION="2", DML_IND=dml, PDE_ID=pde_id, BENE_ID=bene, SRVC_DT=date, SRVC_PRVDR_ID_QLFYR_CD="01",
                  SRVC_PRVDR_ID="PH1", PRSCRBR_ID_QLFYR_CD=qualifier, PRSCRBR_ID=prescriber, PROD_SRVC_ID=ndc,
                  CMPND_CD=compound, QTY_DSPNSD_NUM=qty, DAYS_SUPLY_NUM=days, FILL_NUM="0")
    fields = list(values.values())
    return "|".join(fields[:n_fields] if n_fields else fields)


# --- the committed BFD sample ----------------------------------------------------------------------------------

def test_bfd_synthea_sample_loads_its_one_opioid_at_0714_mme(engine, tmp_path):
    report = load(engine, DATA / "bfd-synthea", tmp_path)
    # 18 events: 17 other drugs by NDC, 1 meperidine; 3 beneficiaries; added: the clinic Unassigned and the
    # 3 prescribers (NPIs 9999928309, 9999999499, 9999999979).
    assert by_source_file(report) == {
        "pde.csv": (18, 1, {"other_drug_by_ndc": 17}, {}),
        "beneficiary_2015.csv": (3, 3, {}, {}),
        "(added by rxdash)": (4, 4, {}, {}),
    }
    with engine.connect() as conn:
        rx = conn.exec_driver_sql(
            "select rx_id, patient_id, clinician_id, fill_date, ingredient, strength, strength_unit, quantity, "
            "days_supply, ndc, pharmacy_id, drug_source from prescriptions").all()
        patient = conn.exec_driver_sql("select birth_date, sex, record_end, cancer from patients "
                                       "where patient_id = '-1000018'").one()
        clinician = conn.exec_driver_sql("select clinician_name, clinic_id from clinicians "
                                         "where clinician_id = '9999999979'").one()
    assert rx == [("-100000921", "-1000018", "9999999979", dt.date(2015, 3, 28), "meperidine", 50.0, "MG", 2.0, 14,
                   "00603441521", "220008", "ndc")]
    assert tuple(patient) == (dt.date(1945, 11, 23), "M", None, False)   # 23-Nov-1945, BENE_SEX_IDENT_CD 1
    assert tuple(clinician) == ("NPI 9999999979", "Unassigned")
    # 2 tablets x 50 mg over 14 days x 0.1 (meperidine, CDC) = 0.714 MME a day.
    assert daily_mme(engine, exclude=True)["-100000921"] == pytest.approx(2 * 50 * 0.1 / 14)
    assert daily_mme(engine, exclude=True)["-100000921"] == pytest.approx(0.714, abs=5e-4)
    assert any("Unassigned" in n for n in report.notes) and any("no diagnoses" in n for n in report.notes)


def test_sample_a_trailing_delimiter_reads_and_an_empty_load_changes_nothing(engine, tmp_path):
    load(engine, DATA / "bfd-synthea", tmp_path)
    # sample-a-pde.txt: one event with a trailing '|' (42 fields beside a 41-name header), PROD_SRVC_ID 000000000:
    # not malformed, but another drug: no prescription at all, so the load is refused and nothing changes.
    with pytest.raises(ingest.EmptyRefusal, match=r"no row could be loaded, none of its 1 row \(1 × other_drug_by_ndc\)"):
        load(engine, DATA / "bfd-sample-a", tmp_path)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select rx_id from prescriptions").all() == [("-100000921",)]


# --- a headerless RIF file built by code -----------------------------------------------------------------------

def rif_source(folder: Path) -> tuple[Path, Path]:
    """Headerless older-layout events (BOM, CRLF), a headered beneficiary file (BOM) and a roster."""
    folder.mkdir(parents=True)
    lines = [
        rif_old("H1", date="06-MAY-25"),                                    # 1  120 over 30 days: 40 MME
        rif_old("H2", date="20250605", qty="60", qualifier="12", prescriber="AB1234563"),  # 2  DEA, 20 MME
        rif_old("H3", bene="B2", date="2025-07-05", qty="90"),              # 3  B2 has no beneficiary row: 30 MME
        rif_old("N1", ndc=""),                                              # 4  no NDC: rejected
        rif_old("M1", n_fields=39),                                         # 5  39 fields: malformed
        rif_old("D1", dml="DELETE"),                                        # 6  deleted: not a final action
        rif_old("V1", qty="30", days="10"),                                 # 7  superseded by line 8
        rif_old("V1", qty="40", days="10"),                                 # 8  40 over 10 days: 40 MME
        rif_old("C1", compound="2"),                                        # 9  compound: skipped
        rif_old("P0", prescriber=""),                                       # 10 no prescriber: rejected
        rif_old("X1", date="garbage"),                                      # 11 passed on: bad_fill_date
        rif_old("O1", ndc=OTHER_DRUG),                                      # 12 other drug: skipped by the loader
        rif_old("H4", bene="B3", date="15-Aug-2025", qty="30"),             # 13 10 MME
    ]
    (folder / "pde_2025.txt").write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n\r\n").encode())
    bene = ["DML_IND|BENE_ID|BENE_BIRTH_DT|BENE_SEX_IDENT_CD|DEATH_DT",
            "INSERT|B1|17-JAN-42|1|",          # superseded by the next line (the last row of a BENE_ID wins)
            "UPDATE|B1|17-JAN-42|2|",          # 2042 would be after the first fill (2025-05-06): 1942; female
            "INSERT|B3|03-MAR-20|0|20251231"]  # 2020 is before the first fill (2025-08-15); sex unknown; died
    (folder / "beneficiary.txt").write_bytes(b"\xef\xbb\xbf" + "\n".join(bene).encode() + b"\n")
    roster = folder.parent / "roster.csv"
    roster.write_text('clinician_id,clinic_id,clinic_name,specialty\n1750384806,C1,"North, clinic",Pain medicine\n')
    return folder, roster


def test_headerless_rif_every_row_accounted_for(engine, tmp_path):
    folder, roster = rif_source(tmp_path / "rif")
    report = load(engine, folder, tmp_path, roster=roster)
    assert by_source_file(report) == {
        "pde_2025.txt": (13, 5, {"not_final_action": 1, "superseded_version": 1, "compound_claim": 1,
                                 "other_drug_by_ndc": 1},
                         {"no_ndc": 1, "malformed_row": 1, "no_prescriber": 1, "bad_fill_date": 1}),
        "beneficiary.txt": (3, 3, {}, {}),   # 2 patients loaded + 1 row used (merged into B1's later row)
        "roster.csv": (1, 1, {}, {}),
        # clinics C1 and Unassigned, prescriber DEA:AB1234563 (not in the roster), patient B2
        "(added by rxdash)": (4, 4, {}, {}),
    }
    rejects = [(r["file"], r["line"], r["row_id"], r["reason_code"]) for r in read_rejects(tmp_path / "rejects.csv")]
    assert rejects == [("pde_2025.txt", "4", "N1", "no_ndc"), ("pde_2025.txt", "5", "M1", "malformed_row"),
                       ("pde_2025.txt", "10", "P0", "no_prescriber"), ("pde_2025.txt", "11", "X1", "bad_fill_date")]
    reasons = {r["row_id"]: r["reason"] for r in read_rejects(tmp_path / "rejects.csv")}
    assert reasons["M1"].startswith("row has 39 fields; the file's header (or RIF layout) has 40")
    assert reasons["N1"] == "PROD_SRVC_ID (the NDC) is blank: the drug cannot be identified"
    with engine.connect() as conn:
        rx = dict(conn.exec_driver_sql("select rx_id, fill_date from prescriptions").all())
        clin = {r[0]: tuple(r[1:]) for r in conn.exec_driver_sql(
            "select clinician_id, clinician_name, specialty, clinic_id from clinicians")}
        clinics = dict(conn.exec_driver_sql("select clinic_id, clinic_name from clinics").all())
        pats = {r[0]: tuple(r[1:]) for r in conn.exec_driver_sql(
            "select patient_id, birth_date, sex, record_end from patients")}
        v1 = conn.exec_driver_sql("select quantity from prescriptions where rx_id = 'V1'").scalar_one()
        dea = conn.exec_driver_sql("select clinician_id from prescriptions where rx_id = 'H2'").scalar_one()
    # 06-MAY-25 (20YY: not after today), 20250605, ISO, 15-Aug-2025 (any case)
    assert rx == {"H1": dt.date(2025, 5, 6), "H2": dt.date(2025, 6, 5), "H3": dt.date(2025, 7, 5),
                  "V1": dt.date(2025, 5, 6), "H4": dt.date(2025, 8, 15)}
    assert v1 == 40.0 and dea == "DEA:AB1234563"
    assert clin == {"1750384806": ("NPI 1750384806", "Pain medicine", "C1"),
                    "DEA:AB1234563": ("DEA AB1234563", None, "Unassigned")}
    assert clinics == {"C1": "North, clinic", "Unassigned": "Unassigned"}
    assert pats == {"B1": (dt.date(1942, 1, 17), "F", None), "B2": (None, None, None),
                    "B3": (dt.date(2020, 3, 3), None, dt.date(2025, 12, 31))}
    # Hydrocodone 10 mg (factor 1): 120/30 x 10 = 40; 60/30 x 10 = 20; 90/30 x 10 = 30; 40/10 x 10 = 40; 30/30 x 10 = 10.
    assert daily_mme(engine, exclude=True) == pytest.approx({"H1": 40, "H2": 20, "H3": 30, "V1": 40, "H4": 10})


def test_roster_found_in_the_folder_and_new_layout_without_header(engine, tmp_path):
    folder = tmp_path / "new"
    folder.mkdir()
    fields = dict.fromkeys(pde.RIF_NEW, "")
    fields.update(DML_IND="INSERT", PDE_ID="E1", CLM_GRP_ID="1", FINAL_ACTION="F", BENE_ID="B1", SRVC_DT="01-Mar-15",
                  PRSCRBR_ID_QLFYR_CD="01", PRSCRBR_ID="1750384806", PROD_SRVC_ID=HYDROCODONE_10,
                  QTY_DSPNSD_NUM="120.000", DAYS_SUPLY_NUM="30", CMPND_CD="0")
    final = "|".join(fields.values()) + "|"          # a trailing delimiter
    fields.update(PDE_ID="E0", FINAL_ACTION="N")
    (folder / "events").write_text("|".join(fields.values()) + "\n" + final + "\n")
    (folder / "clinics.csv").write_text("Clinician_ID,Clinic_ID,Clinic_Name\n1750384806,C9,Hill\n")
    (folder / "notes.md").write_text("# not data\n")
    (folder / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")   # not UTF-8, not ours: ignored
    report = load(engine, folder, tmp_path)
    assert by_source_file(report) == {"events": (2, 1, {"not_final_action": 1}, {}), "clinics.csv": (1, 1, {}, {}),
                               "(added by rxdash)": (2, 2, {}, {})}   # clinic C9, patient B1
    assert daily_mme(engine, exclude=True) == pytest.approx({"E1": 40})
    assert any("chart.png, notes.md" in n for n in report.notes) and any("No beneficiary file" in n for n in report.notes)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select clinic_id, fill_date from clinicians, prescriptions").one() == (
            "C9", dt.date(2015, 3, 1))


# --- dates --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, upto, iso", [
    ("06-MAY-15", "2026-01-01", "2015-05-06"),
    ("06-may-99", "2026-01-01", "1999-05-06"),     # 2099 is after the load date: 19YY
    ("1-Mar-2015", "2026-01-01", "2015-03-01"),
    ("20150506", "2026-01-01", "2015-05-06"),
    ("2015-05-06", "2026-01-01", "2015-05-06"),
    ("17-JAN-42", "2025-05-06", "1942-01-17"),     # a birth date: 2042 would be after the first fill
    ("03-MAR-20", "2025-08-15", "2020-03-03"),
    ("03-MAR-20", "2020-03-02", "1920-03-03"),     # one day after the first fill: the century before
    ("31-XYZ-15", "2026-01-01", "31-XYZ-15"),      # not a date: passed on unchanged for the checks to reject
    ("", "2026-01-01", ""),
])
def test_ccw_dates_become_iso(text, upto, iso):
    con = duckdb.connect()
    pde._date_macro(con)
    assert con.execute("select pde_iso_date($s, $u)", {"s": text, "u": upto}).fetchall()[0][0] == iso


# --- unreadable sources, hostile input ---------------------------------------------------------------------

def test_unreadable_sources_refuse_in_one_line(tmp_path):
    engine = db.make_engine(f"duckdb:///{tmp_path / 'x.duckdb'}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("hello\n")
    (tmp_path / "nopr").mkdir()
    (tmp_path / "nopr" / "pde.csv").write_text("PDE_ID|BENE_ID|SRVC_DT|PROD_SRVC_ID|QTY_DSPNSD_NUM|DAYS_SUPLY_NUM\n")
    (tmp_path / "latin").mkdir()
    (tmp_path / "latin" / "pde.csv").write_bytes("PDE_ID|BENE_ID|caf\xe9\n".encode("latin-1"))
    for source, message in ((tmp_path / "missing", "missing: not found"),
                            (tmp_path / "empty", "no Part D event file"),
                            (tmp_path / "nopr", "pde.csv: missing required column PRSCRBR_ID"),
                            (tmp_path / "latin", "pde.csv: not UTF-8 encoded")):
        with pytest.raises(ingest.LoadError, match=message) as e:
            load(engine, source, tmp_path)
        assert "\n" not in str(e.value)
    with pytest.raises(ingest.LoadError, match="roster file not found"):
        load(engine, DATA / "bfd-synthea", tmp_path, roster=tmp_path / "none.csv")


def test_hostile_values_and_names_load_as_plain_text(engine, tmp_path):
    payload = "'); drop table prescriptions; --"
    folder = tmp_path / "it's; drop"
    folder.mkdir()
    header = ["PDE_ID", "BENE_ID", "SRVC_DT", "PRSCRBR_ID", "PROD_SRVC_ID", "QTY_DSPNSD_NUM", "DAYS_SUPLY_NUM",
              "x'); drop table clinics; --"]
    row = [payload, 'b"; --', "2025-01-01", "$path", HYDROCODONE_10, "120", "30", "1"]
    (folder / "pde'); drop table x; --.csv").write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    load(engine, folder, tmp_path)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select rx_id, patient_id, clinician_id from prescriptions").one() == (
            payload, 'b"; --', "$path")
        assert conn.exec_driver_sql("select count(*) from clinics").scalar_one() == 1
    assert daily_mme(engine, exclude=True) == pytest.approx({payload: 40})


# --- the same patients from the contract and from Part D -------------------------------------------------------

def test_contract_and_pde_give_the_same_tables_and_measures(tmp_path):
    from analysis import synthetic
    from benchmarks.load_pde import convert

    synthetic.generate(tmp_path / "synthetic", 60, seed=3, bad_rows=False)
    counts = convert(tmp_path / "synthetic", tmp_path / "contract", tmp_path / "pde")
    assert counts["pde_events.txt"] == counts["prescriptions.csv"] > 500
    extract = dt.date(2025, 12, 31)
    engines = {}
    for fmt in ("contract", "pde"):
        engines[fmt] = db.make_engine(f"duckdb:///{tmp_path / (fmt + '.duckdb')}")
        report = ingest.load_source(engines[fmt], tmp_path / fmt, fmt, tmp_path / f"{fmt}.rejects.csv", replace=True,
                                    as_of=AS_OF, extract_date=extract)
        assert report.rows_rejected == 0 and report.rows_skipped == 0
    queries = {t: f"select * from {t} order by all" for t in
               ("clinics", "clinicians", "patients", "prescriptions", "daily_dose_segments", "stored_tapers",
                "stored_ltot_episodes")}
    frames = {}
    for fmt, eng in engines.items():
        with eng.connect() as conn:
            frames[fmt] = {t: pd.read_sql(sa.text(q), conn) for t, q in queries.items()}
            settings = summary.Settings(dt.date(2024, 1, 1), dt.date(2024, 12, 31), min_cell=0)
            frames[fmt]["measures"] = summary.measure_table(conn, settings)
    for table in frames["contract"]:
        assert len(frames["contract"][table]) > 0, table
        pd.testing.assert_frame_equal(frames["contract"][table], frames["pde"][table], obj=table)
