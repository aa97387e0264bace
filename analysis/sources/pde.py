"""CMS Part D event (PDE) files -> the data contract (`rxdash load FOLDER --format pde [--roster FILE]`).

SOURCE is a folder (or one file) holding Part D event files and, optionally, a beneficiary summary file and a
roster. Every file is told apart by its first line (see `_classify`):
- Part D event files: pipe-delimited RIF (CCW / BFD `PartDEvent`, apps/bfd-model PartDEvent.yaml) with a
  header naming PDE_ID, or headerless in one of the two RIF column orders `RIF_OLD` (VERSION, DML_IND, PDE_ID,
  BENE_ID, SRVC_DT, ...: 40 columns) and `RIF_NEW` (DML_IND, PDE_ID, CLM_GRP_ID, FINAL_ACTION, BENE_ID, ...:
  41 columns); or a comma-separated CSV with the same columns by name. Several files are allowed (one a year).
- the beneficiary summary file: a header naming BENE_ID and BENE_BIRTH_DT (BENE_SEX_IDENT_CD, DEATH_DT).
- a roster (CSV with a header naming clinician_id and clinic_id; clinic_name, specialty, clinician_name
  optional), in the folder or given as `roster`.

Mapping (CCW data dictionary names; README.md "CMS Part D event files" has the table and every rule chosen where the source is silent):
PDE_ID -> rx_id, BENE_ID -> patient_id, PRSCRBR_ID (with PRSCRBR_ID_QLFYR_CD) -> clinician_id, SRVC_DT ->
fill_date, PROD_SRVC_ID -> ndc (the loader finds the drug in the NDC reference; other drugs are skipped
there), QTY_DSPNSD_NUM -> quantity, DAYS_SUPLY_NUM -> days_supply, SRVC_PRVDR_ID -> pharmacy_id; beneficiary
BENE_BIRTH_DT -> birth_date, BENE_SEX_IDENT_CD (1 male, 2 female, 0 unknown) -> sex (M, F, blank), DEATH_DT ->
record_end.

Lines are read by DuckDB (read_csv, one VARCHAR column a line, the file's path a bound parameter; a UTF-8 BOM
is dropped) and split into fields in SQL (the roster is read as RFC 4180 CSV); Python never loops over rows.
Header names are matched against our own constants and only their integer positions reach SQL. Blank lines
are not rows.

Settled here (per file, SourceFile): rejected `malformed_row` (wrong number of fields), `no_ndc`,
`no_prescriber`, `no_beneficiary` (into reader table src_rejects); skipped `not_final_action` (FINAL_ACTION N,
DML_IND DELETE, ADJSTMT_DLTN_CD D), `superseded_version` (an earlier version of the same PDE_ID), and
`compound_claim` (CMPND_CD 2); beneficiary rows repeated for a BENE_ID are used (the last one wins).
Raises analysis.ingest.LoadError for a source that cannot be read (no folder, no event file, an unreadable
first line, a header lacking a required column).
"""
from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb

from analysis.display import counted
from analysis.errors import LoadError
from analysis.sources import ADDED, UNASSIGNED, Adapted, SourceFile, contract_table, sql_line_no, REJECT_TABLE

MAX_LINE_BYTES = 2 * 1024 * 1024
# A delimiter no line holds, so read_csv returns each line whole (fields are split in SQL).
WHOLE_LINE = "\x00\x01\x02\x03"

# CCW Part D event columns from SRVC_DT on, in RIF order (PartDEvent.yaml, PartDEventColumn).
_COMMON = ("SRVC_DT", "PD_DT", "SRVC_PRVDR_ID_QLFYR_CD", "SRVC_PRVDR_ID", "PRSCRBR_ID_QLFYR_CD", "PRSCRBR_ID",
           "RX_SRVC_RFRNC_NUM", "PROD_SRVC_ID", "PLAN_CNTRCT_REC_ID", "PLAN_PBP_REC_NUM", "CMPND_CD",
           "DAW_PROD_SLCTN_CD", "QTY_DSPNSD_NUM", "DAYS_SUPLY_NUM", "FILL_NUM", "DSPNSNG_STUS_CD",
           "DRUG_CVRG_STUS_CD", "ADJSTMT_DLTN_CD", "NSTD_FRMT_CD", "PRCNG_EXCPTN_CD", "CTSTRPHC_CVRG_CD",
           "GDC_BLW_OOPT_AMT", "GDC_ABV_OOPT_AMT", "PTNT_PAY_AMT", "OTHR_TROOP_AMT", "LICS_AMT", "PLRO_AMT",
           "CVRD_D_PLAN_PD_AMT", "NCVRD_PLAN_PD_AMT", "TOT_RX_CST_AMT", "RX_ORGN_CD", "RPTD_GAP_DSCNT_NUM",
           "BRND_GNRC_CD", "PHRMCY_SRVC_TYPE_CD", "PTNT_RSDNC_CD", "SUBMSN_CLR_CD")
# Older RIF files: no header, VERSION first, no CLM_GRP_ID / FINAL_ACTION (40 columns).
RIF_OLD = ("VERSION", "DML_IND", "PDE_ID", "BENE_ID", *_COMMON)
# BFD's current layout (pde.csv of apps/bfd-model): DML_IND first, CLM_GRP_ID and FINAL_ACTION (41 columns).
RIF_NEW = ("DML_IND", "PDE_ID", "CLM_GRP_ID", "FINAL_ACTION", "BENE_ID", *_COMMON)
DML_VALUES = {"INSERT", "UPDATE", "DELETE"}

# Event columns read: our name -> CCW column. The first group must be present in a headered file.
EVENT_REQUIRED = {"pde_id": "PDE_ID", "bene_id": "BENE_ID", "srvc_dt": "SRVC_DT", "prscrbr_id": "PRSCRBR_ID",
                  "ndc": "PROD_SRVC_ID", "qty": "QTY_DSPNSD_NUM", "days": "DAYS_SUPLY_NUM"}
EVENT_OPTIONAL = {"prscrbr_qual": "PRSCRBR_ID_QLFYR_CD", "pharmacy_qual": "SRVC_PRVDR_ID_QLFYR_CD",
                  "pharmacy_id": "SRVC_PRVDR_ID", "cmpnd_cd": "CMPND_CD", "dml_ind": "DML_IND",
                  "final_action": "FINAL_ACTION", "adj_cd": "ADJSTMT_DLTN_CD"}
BENE_REQUIRED = {"bene_id": "BENE_ID", "birth": "BENE_BIRTH_DT"}
BENE_OPTIONAL = {"sex": "BENE_SEX_IDENT_CD", "death": "DEATH_DT", "death2": "BENE_DEATH_DT"}
ROSTER_REQUIRED = {"clinician_id": "CLINICIAN_ID", "clinic_id": "CLINIC_ID"}
ROSTER_OPTIONAL = {"clinic_name": "CLINIC_NAME", "specialty": "SPECIALTY", "clinician_name": "CLINICIAN_NAME"}

# The contract columns of the reader tables this adapter leaves (analysis.ingest.TABLES).
PRESCRIPTION_COLUMNS = ("rx_id", "patient_id", "clinician_id", "fill_date", "drug_name", "ingredient", "strength",
                        "strength_unit", "dose_form", "quantity", "days_supply", "long_acting", "ndc", "rxcui",
                        "pharmacy_id", "units_per_day", "end_date")
CLINICIAN_COLUMNS = ("clinician_id", "clinician_name", "specialty", "clinic_id")
PATIENT_COLUMNS = ("patient_id", "birth_date", "sex", "cancer", "hospice_palliative", "sickle_cell",
                   "opioid_use_disorder", "record_start", "record_end")


# PRSCRBR_ID_QLFYR_CD / SRVC_PRVDR_ID_QLFYR_CD (CCW data dictionary): 01 NPI; the others prefix the id.
QUALIFIERS = {"06": "UPIN", "07": "NCPDP", "08": "STATE", "11": "TIN", "12": "DEA", "99": "OTHER"}

SKIPS = {"not_final_action", "superseded_version", "compound_claim"}
REJECTS = {
    "malformed_row": None,   # the reason names the field counts
    "no_beneficiary": "BENE_ID is blank: the claim names no beneficiary",
    "no_ndc": "PROD_SRVC_ID (the NDC) is blank: the drug cannot be identified",
    "no_prescriber": "PRSCRBR_ID is blank: the claim names no prescriber",
}


def _shown(text: str) -> str:
    from analysis.ingest import shown_name
    return shown_name(text)


@dataclass
class _File:
    """A classified source file: kind (events | beneficiaries | roster), delimiter, whether line 1 is a
    header, the column names in order (upper case), and the line-end character."""

    path: Path
    kind: str
    delim: str
    header: bool
    names: tuple[str, ...]
    newline: str = "\n"

    def position(self, column: str) -> int | None:
        return self.names.index(column) if column in self.names else None


def _first_line(path: Path) -> tuple[str, str] | None:
    """(first line without its BOM and line end, line-end character), None for an empty file."""
    with path.open("rb") as f:
        chunk = f.read(MAX_LINE_BYTES + 1)
    if not chunk.strip():
        return None
    lines = chunk.splitlines(keepends=True)
    first = lines[0]
    if len(lines) == 1 and len(chunk) > MAX_LINE_BYTES:
        raise LoadError(f"{path.name}: the first line is longer than 2 MB")
    newline = "\r" if first.endswith(b"\r") and not first.endswith(b"\r\n") else "\n"
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        # Not UTF-8: refused only if it is one of ours (a spreadsheet or PDF beside the files is ignored).
        if _classify_text(path, first.decode("utf-8-sig", errors="replace").rstrip("\r\n"), newline):
            raise LoadError(f"{path.name}: not UTF-8 encoded (byte 0x{first[e.start]:02x} on line 1); "
                              "save the file as UTF-8 and load again") from None
        return None
    return text.rstrip("\r\n"), newline


def _classify(path: Path) -> _File | None:
    """What a file is, from its first line; None when it is none of ours (or empty)."""
    first = _first_line(path)
    return None if first is None else _classify_text(path, *first)


def _classify_text(path: Path, text: str, newline: str) -> _File | None:
    """What a file is, from its first line `text` (BOM and line end removed)."""
    delim = "|" if "|" in text else "," if "," in text else None
    if delim is None:
        return None
    cells = next(csv.reader([text])) if delim == "," else text.split(delim)
    names = tuple(n.strip().strip('"').strip().upper() for n in cells)
    if "PDE_ID" in names:
        return _File(path, "events", delim, True, names, newline)
    if "BENE_BIRTH_DT" in names:
        return _File(path, "beneficiaries", delim, True, names, newline)
    if "CLINICIAN_ID" in names and "CLINIC_ID" in names:
        return _File(path, "roster", delim, True, names, newline)
    if delim == "|":
        for layout, dml_at in ((RIF_OLD, 1), (RIF_NEW, 0)):
            fits = len(names) == len(layout) or (len(names) == len(layout) + 1 and names[-1] == "")
            if fits and names[dml_at] in DML_VALUES:
                return _File(path, "events", delim, False, layout, newline)
    return None


def _require(f: _File, required: dict[str, str]) -> None:
    missing = [c for c in required.values() if c not in f.names]
    if missing:
        raise LoadError(f"{f.path.name}: missing required column{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(missing)}")


def _field_sql(f: _File, column: str) -> str:
    """SQL for one field of a split line (list `f`), trimmed; a CSV field loses its enclosing quotes.
    The position is our own integer; NULL when the file lacks the column."""
    pos = f.position(column)
    if pos is None:
        return "cast(null as varchar)"
    value = f"trim(coalesce(f[{pos + 1}], ''))"
    if f.delim == ",":
        value = f"replace(regexp_replace({value}, '^\"(.*)\"$', '\\1'), '\"\"', '\"')"
    return value


def _lines_sql(file_no: int, f: _File, param: str, fields: dict[str, str]) -> str:
    """SELECT of one file's data lines: line_no, n_fields, expected, extra (the field after the last
    expected one) and each of `fields` (our name -> CCW column). Parameter $<param> is the path."""
    new_line = ", new_line = '\\r'" if f.newline == "\r" else ""
    cols = ", ".join(f"{_field_sql(f, column)} as {name}" for name, column in fields.items())
    n = len(f.names)
    return (f"select {sql_line_no(file_no, 'line')} as line_no, len(f) as n_fields, {n} as expected, "
            f"trim(coalesce(f[{n + 1}], '')) as extra, {cols} "
            f"from (select ordinality as line, string_split(line, '{f.delim}') as f "
            f"from read_csv(${param}, columns = {{'line': 'VARCHAR'}}, header = false, auto_detect = false, "
            f"delim = $whole_line, quote = '', escape = '', strict_mode = false, encoding = 'utf-8', "
            f"max_line_size = {MAX_LINE_BYTES}{new_line}) with ordinality "
            f"where line is not null and trim(line) <> ''{' and ordinality > 1' if f.header else ''}) as lines")


OK_SQL = "(n_fields = expected or (n_fields = expected + 1 and extra = ''))"


def _read_files(reader: duckdb.DuckDBPyConnection, table: str, files: list[tuple[int, _File]],
                fields: dict[str, str]) -> None:
    """Create reader table `table` from the lines of `files` ((file number, file) pairs), with `ok`."""
    params = {"whole_line": WHOLE_LINE}
    parts = []
    for i, (file_no, f) in enumerate(files):
        params[f"path{i}"] = str(f.path)
        parts.append(_lines_sql(file_no, f, f"path{i}", fields))
    body = " union all ".join(parts) if parts else (
        "select cast(null as bigint) as line_no, 0 as n_fields, 0 as expected, '' as extra, "
        + ", ".join(f"cast(null as varchar) as {name}" for name in fields) + " where false")
    reader.execute(f"create or replace table {table} as select *, {OK_SQL} as ok from ({body}) as t",
                   params if parts else {})


def _date_macro(reader: duckdb.DuckDBPyConnection) -> None:
    """pde_iso_date(s, upto): a CCW date as ISO text. DD-MON-YY, DD-MON-YYYY (any case), YYYYMMDD and
    YYYY-MM-DD are read; a two-digit year is 20YY when '20YY-MM-DD' <= pivot (ISO text), else 19YY; any other
    text is returned unchanged (the loader's checks reject it with their reason)."""
    months = " ".join(f"when '{m}' then '{i:02d}'" for i, m in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1))
    month = f"(case upper(split_part(s, '-', 2)) {months} end)"
    day = "lpad(split_part(s, '-', 1), 2, '0')"
    year = "split_part(s, '-', 3)"
    reader.execute(f"""
        create or replace macro pde_iso_date(s, upto) as case
            when regexp_full_match(s, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') then s
            when regexp_full_match(s, '[0-9]{{8}}') then substr(s, 1, 4) || '-' || substr(s, 5, 2) || '-' || substr(s, 7, 2)
            when regexp_full_match(s, '[0-9]{{1,2}}-[A-Za-z]{{3}}-([0-9]{{2}}|[0-9]{{4}})') and {month} is not null then
                (case when length({year}) = 4 then {year}
                      when '20' || {year} || '-' || {month} || '-' || {day} <= upto then '20' || {year}
                      else '19' || {year} end) || '-' || {month} || '-' || {day}
            else s end""")


def _read_roster(reader: duckdb.DuckDBPyConnection, file_no: int, f: _File | None) -> None:
    """Reader table pde_roster_lines (line_no, ok, clinician_id, clinic_id, clinic_name, specialty,
    clinician_name) from the roster CSV (RFC 4180 quoting, read by DuckDB; a row with the wrong number of
    fields refuses the load with the reader's message). line_no is the row's ordinal + 1 (the header)."""
    fields = {**ROSTER_REQUIRED, **ROSTER_OPTIONAL}
    if f is None:
        reader.execute("create or replace table pde_roster_lines as select cast(null as bigint) as line_no, "
                       "true as ok, " + ", ".join(f"cast(null as varchar) as {n}" for n in fields) + " where false")
        return
    columns = {f"c{i}": "VARCHAR" for i in range(len(f.names))}
    cols = ", ".join(f"trim(coalesce(c{f.position(c)}, '')) as {n}" if f.position(c) is not None else f"'' as {n}"
                     for n, c in fields.items())
    reader.execute(
        f"create or replace table pde_roster_lines as select {sql_line_no(file_no, 'ordinality + 1')} as line_no, "
        f"true as ok, {cols} from read_csv($path, header = true, auto_detect = false, columns = $columns, "
        "delim = ',', quote = '\"', escape = '\"', encoding = 'utf-8', strict_mode = true, null_padding = false) "
        "with ordinality", {"path": str(f.path), "columns": columns})


def _id_sql(qual: str, value: str) -> str:
    """A prescriber's or pharmacy's id: the id itself for an NPI (qualifier 01, or none), else
    '<kind>:<id>' (DEA:AB1234567) so ids of different kinds never collide; blank stays blank."""
    kinds = " ".join(f"when '{code}' then '{label}'" for code, label in QUALIFIERS.items())
    return (f"(case when coalesce({value}, '') = '' then '' "
            f"when coalesce({qual}, '') in ('', '01', '1') then {value} "
            f"else coalesce(case {qual} {kinds} end, 'Q' || {qual}) || ':' || {value} end)")


def _discover(source: Path, roster: Path | None) -> tuple[list[_File], list[_File], _File | None, list[str]]:
    """Event files, beneficiary files, the roster and the names of files ignored, from the source."""
    if not source.exists():
        raise LoadError(f"{source}: not found")
    paths = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith(".")) \
        if source.is_dir() else [source]
    events, benes, rosters, ignored = [], [], [], []
    for p in paths:
        f = _classify(p)
        if f is None:
            ignored.append(p.name)
        elif f.kind == "events":
            events.append(f)
        elif f.kind == "beneficiaries":
            benes.append(f)
        elif roster is None or p.resolve() != roster.resolve():
            rosters.append(f)
    if roster is not None:
        if not roster.is_file():
            raise LoadError(f"{roster}: roster file not found")
        f = _classify(roster)
        if f is None or f.kind != "roster":
            raise LoadError(f"{roster.name}: not a roster (a CSV with a header naming clinician_id and clinic_id)")
        rosters.append(f)
    if len(rosters) > 1:
        raise LoadError(f"more than one roster: {', '.join(_shown(r.path.name) for r in rosters)}; keep one")
    if not events:
        raise LoadError(f"{source}: no Part D event file (a file whose header names PDE_ID, or a headerless "
                          "pipe-delimited RIF file)")
    for f in events:
        _require(f, EVENT_REQUIRED)
    for f in benes:
        _require(f, BENE_REQUIRED)
    for f in rosters:
        _require(f, ROSTER_REQUIRED)
    return events, benes, (rosters[0] if rosters else None), ignored


def adapt(source: Path | str, reader: duckdb.DuckDBPyConnection, *, schema: str | None = None,
          roster: Path | str | None = None, progress=None) -> Adapted:
    """Map a Part D source onto clinics, clinicians, patients and prescriptions (module docstring).
    `schema` is not used; progress is not called (DuckDB reads the files; the loader's staging shows
    progress). Raises LoadError for a source that cannot be read."""
    events, benes, roster_file, ignored = _discover(Path(source), Path(roster) if roster else None)
    files = [SourceFile(f.path.name, feeds="prescriptions") for f in events]
    files += [SourceFile(f.path.name, feeds="patients") for f in benes]
    if roster_file:
        files.append(SourceFile(roster_file.path.name, feeds="clinicians"))
    files.append(SourceFile(ADDED, feeds="clinics, clinicians, patients not in any file"))
    added_no = len(files) - 1
    today = dt.date.today().isoformat()
    _date_macro(reader)

    # Claims: every data line, its fields, and what becomes of it.
    _read_files(reader, "pde_lines", list(enumerate(events)), {**EVENT_REQUIRED, **EVENT_OPTIONAL})
    final = ("not (upper(coalesce(dml_ind, '')) = 'DELETE' or upper(coalesce(final_action, '')) = 'N' "
             "or upper(coalesce(adj_cd, '')) = 'D')")
    reader.execute(f"""
        create or replace table pde_claims as
        with c as (
            select *, ok and {final} as is_final from pde_lines
        ), ranked as (
            select *, case when is_final and pde_id <> '' then row_number() over (
                partition by is_final and pde_id <> '', pde_id order by line_no desc) end as version_rank
            from c
        )
        select *,
            case
                when not ok then 'malformed_row'
                when not is_final then 'not_final_action'
                when version_rank > 1 then 'superseded_version'
                when cmpnd_cd = '2' then 'compound_claim'
                when bene_id = '' then 'no_beneficiary'
                when ndc = '' then 'no_ndc'
                when prscrbr_id = '' then 'no_prescriber'
            end as outcome,
            pde_iso_date(srvc_dt, $today) as fill_iso,
            {_id_sql('prscrbr_qual', 'prscrbr_id')} as clinician_id
        from ranked""", {"today": today})

    # Beneficiaries: the last row of each BENE_ID wins (the others are used: merged into it).
    bene_files = list(enumerate(benes, start=len(events)))
    _read_files(reader, "pde_bene_lines", bene_files, {**BENE_REQUIRED, **BENE_OPTIONAL})
    reader.execute("""
        create or replace table pde_benes as
        select *, case when not ok then 'malformed_row'
                       when bene_id <> '' and row_number() over (partition by ok and bene_id <> '', bene_id
                                                                order by line_no desc) > 1 then 'used' end as outcome
        from pde_bene_lines""")

    _read_roster(reader, len(events) + len(benes), roster_file)

    _write_rejects(reader)
    _count(reader, files)

    # Contract tables.
    tables = {}
    tables["prescriptions"] = contract_table(reader, "prescriptions", PRESCRIPTION_COLUMNS, f"""
        select line_no, pde_id as rx_id, bene_id as patient_id, clinician_id, fill_iso as fill_date,
            '' as drug_name, '' as ingredient, '' as strength, '' as strength_unit, '' as dose_form,
            qty as quantity, days as days_supply, '' as long_acting, ndc, '' as rxcui,
            {_id_sql('pharmacy_qual', 'pharmacy_id')} as pharmacy_id, '' as units_per_day, '' as end_date
        from pde_claims where outcome is null""")
    added = _added_rows(reader, added_no)
    tables["clinics"] = contract_table(reader, "clinics", ("clinic_id", "clinic_name"), """
        select line_no, clinic_id, clinic_name from pde_added where tbl = 'clinics'""")
    tables["clinicians"] = contract_table(reader, "clinicians", CLINICIAN_COLUMNS, f"""
        select line_no, clinician_id, coalesce(nullif(clinician_name, ''), {_name_sql('clinician_id')}) as clinician_name,
            coalesce(specialty, '') as specialty, clinic_id
        from pde_roster_lines where ok
        union all
        select line_no, clinician_id, clinician_name, '' as specialty, clinic_id from pde_added where tbl = 'clinicians'""")
    tables["patients"] = contract_table(reader, "patients", PATIENT_COLUMNS, """
        with first_fill as (
            select bene_id, min(fill_iso) as first_fill from pde_claims
            where ok and try_cast(fill_iso as date) is not null and regexp_full_match(fill_iso, '[0-9]{4}-[0-9]{2}-[0-9]{2}')
            group by bene_id
        )
        select b.line_no, b.bene_id as patient_id,
            pde_iso_date(b.birth, coalesce(f.first_fill, $today)) as birth_date,
            case b.sex when '1' then 'M' when '2' then 'F' when '0' then '' else coalesce(b.sex, '') end as sex,
            'false' as cancer, 'false' as hospice_palliative, 'false' as sickle_cell, 'false' as opioid_use_disorder,
            '' as record_start, pde_iso_date(coalesce(nullif(b.death, ''), b.death2, ''), $today) as record_end
        from pde_benes as b left join first_fill as f on f.bene_id = b.bene_id
        where b.outcome is null
        union all
        select line_no, patient_id, '', '', 'false', 'false', 'false', 'false', '', '' from pde_added
        where tbl = 'patients'""", {"today": today})
    files[added_no].rows_read = added["total"]

    notes = ["Part D events hold no diagnoses: cancer, sickle cell disease, hospice/palliative care and opioid use "
             "disorder are false for every patient, so the measures' exclusions cannot be applied."]
    if roster_file is None:
        notes.append(f"No roster: every prescriber ({added['clinicians']:,}) is in the clinic {UNASSIGNED}.")
    elif added["clinicians"]:
        n = added["clinicians"]
        notes.append(f"{counted(n, 'prescriber')} {'is' if n == 1 else 'are'} not in the roster "
                     f"{_shown(roster_file.path.name)}: in the clinic {UNASSIGNED}.")
    if not benes:
        notes.append("No beneficiary file: patients have no birth date or sex, and no record end (death date).")
    elif added["patients"]:
        n = added["patients"]
        notes.append(f"{counted(n, 'beneficiary', 'beneficiaries')} in the claims {'is' if n == 1 else 'are'} not "
                     "in the beneficiary file: loaded without birth date or sex.")
    notes.append("Part D events hold no enrolment dates: each patient's record runs from the first fill to the "
                 "extract date, or to the death date (DEATH_DT) when the beneficiary file gives one.")
    other = reader.execute("select count(distinct clinician_id) from pde_claims where outcome is null "
                           "and strpos(clinician_id, ':') > 0").fetchone()[0]
    if other:
        notes.append(f"{counted(other, 'prescriber id')} {'is' if other == 1 else 'are'} not an NPI: stored with "
                     "its kind, e.g. DEA:<id> "
                     "(PRSCRBR_ID_QLFYR_CD).")
    if ignored:
        notes.append(f"Files not read (not Part D events, beneficiaries or a roster): "
                     f"{_shown(', '.join(ignored))}.")
    return Adapted(tables, files, notes)


def _name_sql(id_expr: str) -> str:
    """A prescriber's display name from its id: 'NPI 1750384806', 'DEA AB1234567'."""
    return f"(case when strpos({id_expr}, ':') > 0 then replace({id_expr}, ':', ' ') else 'NPI ' || {id_expr} end)"


def _added_rows(reader: duckdb.DuckDBPyConnection, added_no: int) -> dict[str, int]:
    """Reader table pde_added (tbl, line_no, ids and names): the rows no source row stands for, numbered in
    the file ADDED: the roster's clinics (and Unassigned), prescribers not in the roster, beneficiaries of
    the claims not in a beneficiary file. Returns counts by table and the total."""
    reader.execute(f"""
        create or replace table pde_added as
        with passed as (select * from pde_claims where outcome is null),
        roster_ids as (select distinct clinician_id from pde_roster_lines where ok),
        new_clinicians as (
            select distinct clinician_id from passed
            where clinician_id not in (select clinician_id from roster_ids)
        ),
        clinics as (
            select distinct clinic_id, coalesce(nullif(clinic_name, ''), clinic_id) as clinic_name
            from pde_roster_lines where ok
            union all
            select '{UNASSIGNED}', '{UNASSIGNED}' where exists (select 1 from new_clinicians)
        ),
        new_patients as (
            select distinct bene_id from passed
            where bene_id not in (select bene_id from pde_benes where ok)
        ),
        rows as (
            select 1 as part, 'clinics' as tbl, clinic_id as sort_key, clinic_id, clinic_name,
                cast(null as varchar) as clinician_id, cast(null as varchar) as clinician_name,
                cast(null as varchar) as patient_id
            from clinics
            union all
            select 2, 'clinicians', clinician_id, '{UNASSIGNED}', null, clinician_id, {_name_sql('clinician_id')}, null
            from new_clinicians
            union all
            select 3, 'patients', bene_id, null, null, null, null, bene_id from new_patients
        )
        select {sql_line_no(added_no, 'row_number() over (order by part, sort_key, clinic_name)')} as line_no, *
        from rows""")
    counts = dict(reader.execute("select tbl, count(*) from pde_added group by tbl").fetchall())
    return {"clinics": counts.get("clinics", 0), "clinicians": counts.get("clinicians", 0),
            "patients": counts.get("patients", 0), "total": sum(counts.values())}


def _write_rejects(reader: duckdb.DuckDBPyConnection) -> None:
    """The rows rejected here, into src_rejects (line_no, row_id, reason_code, reason)."""
    malformed = ("'row has ' || n_fields || ' fields; the file''s header (or RIF layout) has ' || expected "
                 "|| ' (one trailing delimiter is allowed)'")
    cases = " ".join(f"when '{code}' then '{text}'" for code, text in REJECTS.items() if text)
    reader.execute(f"""
        insert into {REJECT_TABLE}
        select line_no, coalesce(pde_id, ''), outcome,
            case outcome when 'malformed_row' then {malformed} {cases} end
        from pde_claims where outcome in ({", ".join(f"'{c}'" for c in REJECTS)})
        union all
        select line_no, coalesce(bene_id, ''), outcome, {malformed} from pde_benes where outcome = 'malformed_row'""")


def _count(reader: duckdb.DuckDBPyConnection, files: list[SourceFile]) -> None:
    """Rows read per file, and the rows settled here (used, skipped, rejected by reason)."""
    from analysis.sources import LINE_SPAN
    result = reader.execute(f"""
        select cast(floor(line_no / {LINE_SPAN}) as bigint) as file_no, outcome, count(*) from (
            select line_no, outcome from pde_claims
            union all select line_no, outcome from pde_benes
            union all select line_no, case when not ok then 'malformed_row' end from pde_roster_lines
        ) as t group by 1, 2""").fetchall()
    for file_no, outcome, n in result:
        f = files[file_no]
        f.rows_read += n
        if outcome == "used":
            f.rows_used += n
        elif outcome in SKIPS:
            f.skipped[outcome] += n
        elif outcome is not None:
            f.rejected[outcome] += n
