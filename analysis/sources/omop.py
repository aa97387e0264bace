"""OMOP CDM 5.4 source: `rxdash load SOURCE --format omop [--cdm-schema S]`.

SOURCE is a folder of CDM table files (CSV or tab-separated, one file a table, named as the table in any
case: DRUG_EXPOSURE.csv, drug_exposure.tsv, ...) or a SQLAlchemy URL (postgresql+psycopg://..., duckdb:///...)
whose `schema` holds the CDM tables. Either way each table read is staged in the reader as
omop_<table> (line BIGINT: 1-based entry number, +1 for a file's header line; then the columns of
COLUMNS, all VARCHAR, NULL where the source lacks the column), and one set of SQL maps them onto the
contract's tables. Table and column names: OMOP CDM 5.4 (ohdsi.github.io/CommonDataModel/cdm54.html).

Mapping (README.md "OMOP CDM" has the full table and every choice):
- PERSON -> patients: birth date from year/month/day_of_birth (a missing day is the 15th, a missing month
  1 July), else birth_datetime; sex from gender_concept_id (8507 M, 8532 F) else gender_source_value;
  flags from CONDITION_OCCURRENCE (any date); record window = OBSERVATION_PERIOD min start .. max end.
- DRUG_EXPOSURE -> prescriptions: drug_name = CONCEPT.concept_name, rxcui = concept_code (vocabulary
  RxNorm), ndc = drug_source_concept_id's code (vocabulary NDC); DRUG_STRENGTH (our ingredient) gives
  ingredient/strength/unit; quantity and days_supply 0 or blank are blank (the loader derives days from
  end_date; a missing quantity is never invented: the supply loads with its dose unknown); inpatient
  administrations skipped.
- PROVIDER -> clinicians, CARE_SITE -> clinics ("Unassigned" added for providers without a care site).
- VISIT_OCCURRENCE 9203 -> ed_visit, 9201/262 -> hospitalization; an overdose condition -> overdose.
Errors: analysis.ingest.LoadError (one line) for a source that cannot be read at all.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb
import pyarrow as pa
import sqlalchemy as sa

from analysis import drugs
from analysis.errors import LoadError
from analysis.display import counted
from analysis.sources import ADDED, UNASSIGNED, LINE_SPAN, REJECT_TABLE, Adapted, SourceFile, contract_table, sql_line_no, value_sets

# OMOP table -> the columns read (CDM 5.4 names) and, first, how many of them are required.
COLUMNS: dict[str, tuple[int, tuple[str, ...]]] = {
    "person": (1, ("person_id", "gender_concept_id", "year_of_birth", "month_of_birth", "day_of_birth",
                   "birth_datetime", "gender_source_value")),
    "drug_exposure": (4, ("drug_exposure_id", "person_id", "drug_concept_id", "drug_exposure_start_date",
                          "drug_exposure_start_datetime", "drug_exposure_end_date", "drug_exposure_end_datetime",
                          "drug_type_concept_id", "quantity", "days_supply", "provider_id", "drug_source_value",
                          "drug_source_concept_id")),
    "provider": (1, ("provider_id", "provider_name", "specialty_concept_id", "care_site_id",
                     "specialty_source_value")),
    "care_site": (1, ("care_site_id", "care_site_name", "care_site_source_value")),
    "observation_period": (3, ("person_id", "observation_period_start_date", "observation_period_end_date")),
    "condition_occurrence": (2, ("person_id", "condition_start_date", "condition_occurrence_id",
                                 "condition_concept_id", "condition_source_value", "condition_source_concept_id",
                                 "condition_start_datetime")),
    "visit_occurrence": (3, ("person_id", "visit_concept_id", "visit_start_date", "visit_occurrence_id",
                             "visit_start_datetime")),
    "concept": (4, ("concept_id", "concept_name", "vocabulary_id", "concept_code")),
    "drug_strength": (2, ("drug_concept_id", "ingredient_concept_id", "amount_value", "amount_unit_concept_id",
                          "numerator_value", "numerator_unit_concept_id", "denominator_value",
                          "denominator_unit_concept_id")),
}
REQUIRED = ("person", "drug_exposure", "concept")
FEEDS = {"person": "patients", "drug_exposure": "prescriptions", "provider": "clinicians",
         "care_site": "clinics", "observation_period": "patients (record windows)",
         "condition_occurrence": "patients (flags), events (overdose)",
         "visit_occurrence": "events (ED visits, hospitalizations)",
         "concept": "vocabulary (drug names, specialties, condition codes)",
         "drug_strength": "prescriptions (strength)"}
EXTENSIONS = (".csv", ".tsv", ".txt")
MAX_HEADER_BYTES = 2 << 20
CHUNK_ROWS = 100_000

# drug_type_concept_id (OMOP "Type Concept" vocabulary) of drugs given in hospital, not taken home:
# 38000180 Inpatient administration, 32818 EHR administration record, 581373 Physician administered drug
# (identified from EHR order). Skipped 'inpatient_administration'.
INPATIENT_TYPES = ("38000180", "32818", "581373")
# Orders rather than dispensings: 38000177 Prescription written, 32838 EHR prescription. Their days come
# from the end date (so a long order is split into fills by the loader). Everything else (38000175
# Prescription dispensed in pharmacy, 38000176 ... through mail order, 32869 Pharmacy claim, 32825 EHR
# dispensing record, 0) is read as a dispensing.
ORDER_TYPES = ("38000177", "32838")
# visit_concept_id (OMOP Visit vocabulary) -> events.event_type.
VISIT_EVENTS = {"9203": "ed_visit", "9201": "hospitalization", "262": "hospitalization"}
GENDER = {"8507": "M", "8532": "F"}

SKIP_REASONS = {
    "inpatient_administration": "drug_type_concept_id says the drug was given in hospital, not taken home",
    "not_emergency_or_inpatient": "a visit that is neither an emergency nor an inpatient visit",
    "not_a_measured_condition": "a condition no flag or event of the measures uses",
}


def _blank(expr: str) -> str:
    """SQL: the trimmed text, NULL when blank (expr is our own column name)."""
    return f"nullif(trim({expr}), '')"


def _concept_id(expr: str) -> str:
    """SQL: a concept id, NULL when blank or 0 (OMOP's 'No matching concept')."""
    return f"nullif({_blank(expr)}, '0')"


# ---------------------------------------------------------------------------------------------- reading

def _header(path: Path) -> tuple[str, list[str]]:
    """(delimiter, column names lower-cased) from a file's first line: a tab in it means tab-separated."""
    try:
        with path.open("rb") as f:
            first = f.readline(MAX_HEADER_BYTES + 1)
        text = first.decode("utf-8-sig").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        raise LoadError(f"{path.name}: the header cannot be read ({type(e).__name__})") from None
    if len(first) > MAX_HEADER_BYTES or not text.strip():
        raise LoadError(f"{path.name}: no header row")
    delimiter = "\t" if "\t" in text else ","
    names = [n.strip().lower() for n in next(csv.reader(io.StringIO(text), delimiter=delimiter))]
    return delimiter, names


def _positions(label: str, table: str, names: list[str]) -> dict[str, int]:
    """OMOP column -> its position among `names`; a missing required column or a repeat refuses the file."""
    required, columns = COLUMNS[table]
    repeated = sorted({n for n in names if n in columns and names.count(n) > 1})
    if repeated:
        raise LoadError(f"{label}: column {repeated[0]} appears more than once")
    missing = [c for c in columns[:required] if c not in names]
    if missing:
        raise LoadError(f"{label}: not an OMOP {table.upper()} table, it lacks column {', '.join(missing)}")
    return {c: names.index(c) for c in columns if c in names}


def _stage_file(reader: duckdb.DuckDBPyConnection, table: str, path: Path) -> None:
    """Stage one CDM file as omop_<table>; line = the physical line of a row without embedded line breaks."""
    delimiter, names = _header(path)
    at = _positions(path.name, table, names)
    columns = {f"c{i}": "VARCHAR" for i in range(len(names))}
    select = ", ".join(f"c{at[c]} as {c}" if c in at else f"cast(null as varchar) as {c}" for c in COLUMNS[table][1])
    reader.execute(
        f"create or replace table omop_{table} as select cast(row_number() over () + 1 as bigint) as line, {select} "
        "from read_csv($path, header = false, skip = 1, auto_detect = false, columns = $columns, delim = $delim, "
        "quote = '\"', escape = '\"', encoding = 'utf-8', null_padding = true, strict_mode = false, "
        "nullstr = '')", {"path": str(path), "columns": columns, "delim": delimiter})


def _folder_tables(folder: Path) -> dict[str, Path]:
    """OMOP table name -> its file in `folder`, names matched case-insensitively (.csv, .tsv, .txt)."""
    if not folder.is_dir():
        raise LoadError(f"{folder}: not a folder")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        table = path.stem.lower()
        if path.is_file() and path.suffix.lower() in EXTENSIONS and table in COLUMNS:
            if table in found:
                raise LoadError(f"{folder}: both {found[table].name} and {path.name} hold {table.upper()}")
            found[table] = path
    return found


def _stage_database(reader: duckdb.DuckDBPyConnection, url: str, schema: str | None) -> dict[str, str]:
    """Stage the CDM tables of `schema` at `url` (read in chunks through SQLAlchemy); returns table -> label.
    The schema and table names reach SQL only as the dialect quotes them, and only once found to exist."""
    try:
        engine = sa.create_engine(url)
    except Exception as e:   # a URL SQLAlchemy cannot parse, or a driver it lacks
        raise LoadError(f"the database URL cannot be used ({type(e).__name__})") from None
    try:
        inspector = sa.inspect(engine)
        if schema is not None and schema not in inspector.get_schema_names():
            raise LoadError(f"schema {schema!r} not found in the database")
        names = {t.lower(): t for t in inspector.get_table_names(schema=schema)}
        prep = engine.dialect.identifier_preparer
        staged = {}
        with engine.connect() as conn:
            for table in COLUMNS:
                if table not in names:
                    continue
                label = f"{schema}.{names[table]}" if schema else names[table]
                found = [c["name"] for c in inspector.get_columns(names[table], schema=schema)]
                at = _positions(label, table, [c.lower() for c in found])
                wanted = COLUMNS[table][1]
                cols = ", ".join(f"cast({prep.quote(found[at[c]])} as varchar(4000))" if c in at else "null"
                                 for c in wanted)
                where = f"{prep.quote_schema(schema)}." if schema else ""
                result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).exec_driver_sql(
                    f"select {cols} from {where}{prep.quote(names[table])}")
                reader.execute(f"create or replace table omop_{table} (line bigint, "
                               + ", ".join(f"{c} varchar" for c in wanted) + ")")
                line = 0
                for chunk in result.partitions(CHUNK_ROWS):
                    data = list(zip(*chunk)) if chunk else [[] for _ in wanted]
                    batch = pa.table({"line": pa.array(range(line + 1, line + 1 + len(chunk)), pa.int64()),
                                      **{c: pa.array([None if v is None else str(v) for v in data[i]], pa.string())
                                         for i, c in enumerate(wanted)}})
                    reader.register("omop_chunk", batch)
                    reader.execute(f"insert into omop_{table} select * from omop_chunk")
                    reader.unregister("omop_chunk")
                    line += len(chunk)
                staged[table] = label
        return staged
    except sa.exc.SQLAlchemyError as e:
        raise LoadError(f"the database cannot be read ({str(getattr(e, 'orig', e)).splitlines()[0][:200]})") from None
    finally:
        engine.dispose()


def _is_url(source) -> bool:
    return isinstance(source, str) and "://" in source


# ---------------------------------------------------------------------------------------------- mapping

def adapt(source, reader: duckdb.DuckDBPyConnection, *, schema: str | None = None, roster=None,
          progress=None) -> Adapted:
    """Map an OMOP CDM source onto the contract tables in `reader` (see the module docstring). roster is not
    used; progress is not called (DuckDB reads the files in seconds; the loader's staging shows progress)."""
    if _is_url(source):
        labels = _stage_database(reader, source, schema)
    else:
        paths = _folder_tables(Path(source))
        for table in REQUIRED[:2]:
            if table not in paths:
                raise LoadError(f"{source}: no {table.upper()} file (.csv, .tsv or .txt) in the folder")
        labels = {}
        for table, path in paths.items():
            _stage_file(reader, table, path)
            labels[table] = path.name
    for table in REQUIRED[:2]:
        if table not in labels:
            raise LoadError(f"the source has no {table.upper()} table")
    notes: list[str] = []
    if "concept" not in labels:
        notes.append("no CONCEPT table: drugs are named by drug_source_value only, specialties by "
                     "specialty_source_value, conditions by condition_source_value")
    for table, (_, columns) in COLUMNS.items():   # absent optional tables: empty, so one SQL serves all
        if table not in labels:
            reader.execute(f"create or replace table omop_{table} (line bigint, "
                           + ", ".join(f"{c} varchar" for c in columns) + ")")
    order = [t for t in COLUMNS if t in labels]
    number = {t: i for i, t in enumerate(order)}
    files = [SourceFile(labels[t], int(reader.execute(f"select count(*) from omop_{t}").fetchall()[0][0]),
                        feeds=FEEDS[t]) for t in order]
    by_table = dict(zip(order, files))
    added = SourceFile(ADDED, feeds="clinics, clinicians the source does not name")
    added_no = len(files)

    _helpers(reader)
    tables = {}
    # Vocabulary tables are read whole as lookups: every row counts as used.
    for t in ("concept", "drug_strength"):
        if t in by_table:
            by_table[t].rows_used = by_table[t].rows_read

    # CONDITION_OCCURRENCE: one outcome per row (unknown person: rejected; overdose: event; flag: used).
    reader.execute(f"""
        create or replace table omop_conditions as
        select c.line, trim(c.person_id) as person_id,
               coalesce({_blank('c.condition_start_date')}, left(trim(c.condition_start_datetime), 10), '') as day,
               p.person_id is not null as known,
               coalesce(list_distinct(list(vs.flag) filter (where vs.flag is not null)), []) as flags
        from omop_condition_occurrence c
        left join (select distinct trim(person_id) as person_id from omop_person) p on p.person_id = trim(c.person_id)
        left join omop_concept_1 k1 on k1.concept_id = {_concept_id('c.condition_concept_id')}
        left join omop_concept_1 k2 on k2.concept_id = {_concept_id('c.condition_source_concept_id')}
        left join {value_sets.TABLE} vs on
            {value_sets.match_sql('k1.vocabulary_id', 'k1.concept_code')}
            or {value_sets.match_sql('k2.vocabulary_id', 'k2.concept_code')}
            or {value_sets.match_sql("'ICD10CM'", 'c.condition_source_value')}
            or {value_sets.match_sql("'SNOMED'", 'c.condition_source_value')}
        group by all""")
    if "condition_occurrence" in by_table:
        f, no = by_table["condition_occurrence"], number["condition_occurrence"]
        reader.execute(f"""
            insert into {REJECT_TABLE}
            select {sql_line_no(no, 'line')}, person_id, 'unknown_person',
                   'person_id ''' || coalesce(person_id, '') || ''' is not in PERSON'
            from omop_conditions where not known""")
        counts = dict(reader.execute("""
            select case when not known then 'unknown_person' when list_contains(flags, 'overdose') then 'event'
                        when len(flags) > 0 then 'used' else 'not_a_measured_condition' end, count(*)
            from omop_conditions group by 1""").fetchall())
        f.rejected.update({"unknown_person": counts.get("unknown_person", 0)} if counts.get("unknown_person") else {})
        f.rows_used = counts.get("used", 0)
        if counts.get("not_a_measured_condition"):
            f.skipped["not_a_measured_condition"] = counts["not_a_measured_condition"]

    # OBSERVATION_PERIOD: a known person's periods become the record window; others rejected.
    if "observation_period" in by_table:
        f, no = by_table["observation_period"], number["observation_period"]
        reader.execute(f"""
            insert into {REJECT_TABLE}
            select {sql_line_no(no, 'o.line')}, o.person_id, 'unknown_person',
                   'person_id ''' || coalesce(o.person_id, '') || ''' is not in PERSON'
            from omop_observation_period o
            where trim(o.person_id) not in (select trim(person_id) from omop_person where person_id is not null)
               or o.person_id is null""")
        bad = reader.execute(f"select count(*) from {REJECT_TABLE} where line_no // {LINE_SPAN} = ?",
                             [no]).fetchall()[0][0]
        f.rows_used = f.rows_read - bad
        if bad:
            f.rejected["unknown_person"] = bad

    # PERSON -> patients.
    flag_cols = ", ".join(f"coalesce(bool_or(list_contains(c.flags, '{flag}')), false) as {flag}"
                          for flag in value_sets.PATIENT_FLAGS)
    y, m, d = _blank("p.year_of_birth"), _blank("p.month_of_birth"), _blank("p.day_of_birth")
    tables["patients"] = contract_table(reader, "patients", (
        "patient_id", "birth_date", "sex", "cancer", "hospice_palliative", "sickle_cell", "opioid_use_disorder",
        "record_start", "record_end"), f"""
        with flags as (select person_id, {flag_cols} from omop_conditions c where known group by person_id),
        windows as (select trim(person_id) as person_id, min({_blank('observation_period_start_date')}) as s,
                           max({_blank('observation_period_end_date')}) as e
                    from omop_observation_period group by 1)
        select {sql_line_no(number['person'], 'p.line')} as line_no, p.person_id as patient_id,
            case when {y} is not null and {m} is not null and {d} is not null
                     then {y} || '-' || lpad({m}, 2, '0') || '-' || lpad({d}, 2, '0')
                 when {_blank('p.birth_datetime')} is not null then left(trim(p.birth_datetime), 10)
                 when {y} is not null and {m} is not null then {y} || '-' || lpad({m}, 2, '0') || '-15'
                 when {y} is not null then {y} || '-07-01'
                 else '' end as birth_date,
            coalesce(case trim(p.gender_concept_id) {' '.join(f"when '{k}' then '{v}'" for k, v in GENDER.items())}
                     end, p.gender_source_value, '') as sex,
            {', '.join(f"coalesce(f.{flag}, false) as {flag}" for flag in value_sets.PATIENT_FLAGS)},
            coalesce(w.s, '') as record_start, coalesce(w.e, '') as record_end
        from omop_person p
        left join flags f on f.person_id = trim(p.person_id)
        left join windows w on w.person_id = trim(p.person_id)""")

    # DRUG_EXPOSURE -> prescriptions (inpatient administrations skipped here).
    f, no = by_table["drug_exposure"], number["drug_exposure"]
    inpatient = ", ".join(f"'{t}'" for t in INPATIENT_TYPES)
    skipped = reader.execute(f"select count(*) from omop_drug_exposure where trim(drug_type_concept_id) "
                             f"in ({inpatient})").fetchall()[0][0]
    if skipped:
        f.skipped["inpatient_administration"] = skipped
    orders = ", ".join(f"'{t}'" for t in ORDER_TYPES)
    end = f"coalesce({_blank('d.drug_exposure_end_date')}, left({_blank('d.drug_exposure_end_datetime')}, 10))"
    # An exposure with no quantity and more than a year of days_supply (Eunomia's 371-day Synthea records) is
    # no dispensing: its span, start to drug_exposure_end_date, is read as an order (split into fills, dose
    # unknown) rather than rejected as a 371-day dispensing, which would leave a false gap in supply.
    no_quantity = "(coalesce(trim(d.quantity), '') = '' or try_cast(trim(d.quantity) as double) = 0)"
    days = (f"case when trim(d.drug_type_concept_id) in ({orders}) and {end} is not null then '' "
            f"when {no_quantity} and try_cast(trim(d.days_supply) as double) > 365 and {end} is not null then '' "
            f"when try_cast(trim(d.days_supply) as double) = 0 then '' else coalesce(trim(d.days_supply), '') end")
    tables["prescriptions"] = contract_table(reader, "prescriptions", (
        "rx_id", "patient_id", "clinician_id", "fill_date", "drug_name", "ingredient", "strength", "strength_unit",
        "dose_form", "quantity", "days_supply", "long_acting", "ndc", "rxcui", "pharmacy_id", "units_per_day",
        "end_date"), f"""
        select line_no, rx_id, patient_id, clinician_id, fill_date, drug_name, ingredient, strength, strength_unit,
               '' as dose_form, quantity, days_supply, '' as long_acting, ndc, rxcui, '' as pharmacy_id,
               '' as units_per_day, case when days_supply = '' then coalesce(end_date, '') else '' end as end_date
        from (
        select {sql_line_no(no, 'd.line')} as line_no, d.drug_exposure_id as rx_id, d.person_id as patient_id,
            coalesce({_concept_id('d.provider_id')}, '') as clinician_id,
            coalesce({_blank('d.drug_exposure_start_date')}, left(trim(d.drug_exposure_start_datetime), 10), '')
                as fill_date,
            coalesce(nullif(k.concept_name, ''), d.drug_source_value, '') as drug_name,
            coalesce(s.ingredient, '') as ingredient, coalesce(s.strength, '') as strength,
            coalesce(s.strength_unit, '') as strength_unit,
            case when try_cast(trim(d.quantity) as double) = 0 then '' else coalesce(trim(d.quantity), '') end
                as quantity,
            {days} as days_supply,
            case when k2.vocabulary_id = 'NDC' then k2.concept_code else '' end as ndc,
            case when k.vocabulary_id = 'RxNorm' then k.concept_code else '' end as rxcui,
            {end} as end_date
        from omop_drug_exposure d
        left join omop_concept_1 k on k.concept_id = {_concept_id('d.drug_concept_id')}
        left join omop_concept_1 k2 on k2.concept_id = {_concept_id('d.drug_source_concept_id')}
        left join omop_strength s on s.drug_concept_id = {_concept_id('d.drug_concept_id')}
        where coalesce(trim(d.drug_type_concept_id), '') not in ({inpatient})) as mapped_rx""")

    # PROVIDER -> clinicians (without PROVIDER: one added clinician per provider_id prescribing).
    if "provider" in by_table:
        clinicians_sql = f"""
            select {sql_line_no(number['provider'], 'p.line')} as line_no, p.provider_id as clinician_id,
                coalesce(p.provider_name, '') as clinician_name,
                coalesce(nullif(k.concept_name, ''), p.specialty_source_value, '') as specialty,
                coalesce({_concept_id('p.care_site_id')}, '{UNASSIGNED}') as clinic_id
            from omop_provider p
            left join omop_concept_1 k on k.concept_id = {_concept_id('p.specialty_concept_id')}"""
    else:
        clinicians_sql = f"""
            select {sql_line_no(added_no, 'row_number() over (order by clinician_id)')} as line_no, clinician_id,
                'provider ' || clinician_id as clinician_name, '' as specialty, '{UNASSIGNED}' as clinic_id
            from (select distinct clinician_id from src_prescriptions where clinician_id <> '') as ids"""
    tables["clinicians"] = contract_table(reader, "clinicians", ("clinician_id", "clinician_name", "specialty",
                                                                 "clinic_id"), clinicians_sql)
    added.rows_read = 0 if "provider" in by_table else int(
        reader.execute("select count(*) from src_clinicians").fetchall()[0][0])
    if "provider" not in by_table:
        notes.append(f"no PROVIDER table: {counted(added.rows_read, 'clinician')} made from DRUG_EXPOSURE.provider_id "
                     "(named 'provider <id>', no specialty, clinic Unassigned)")

    # CARE_SITE -> clinics, plus "Unassigned" when a clinician has no care site.
    unassigned = reader.execute(f"select count(*) from src_clinicians where clinic_id = '{UNASSIGNED}'"
                                ).fetchall()[0][0]
    has_own = reader.execute(f"select count(*) from omop_care_site where trim(care_site_id) = '{UNASSIGNED}'"
                             ).fetchall()[0][0]
    add_unassigned = bool(unassigned) and not has_own
    tables["clinics"] = contract_table(reader, "clinics", ("clinic_id", "clinic_name"), f"""
        select {sql_line_no(number.get('care_site', 0), 'line')} as line_no, care_site_id as clinic_id,
            coalesce({_blank('care_site_name')}, {_blank('care_site_source_value')}, care_site_id, '') as clinic_name
        from omop_care_site
        union all
        select {sql_line_no(added_no, str(added.rows_read + 1))}, '{UNASSIGNED}', '{UNASSIGNED}'
        where {str(add_unassigned).lower()}""")
    if add_unassigned:
        added.rows_read += 1
        total = reader.execute("select count(*) from src_clinicians").fetchall()[0][0]
        where = "CARE_SITE is empty" if not reader.execute("select count(*) from omop_care_site").fetchall()[0][0] \
            else "they have no care_site_id"
        notes.append(f"{unassigned:,} of {counted(total, 'clinician')} {'is' if unassigned == 1 else 'are'} in the "
                     f"clinic {UNASSIGNED} ({where})")

    # VISIT_OCCURRENCE and overdose conditions -> events.
    visit_types = " ".join(f"when '{k}' then '{v}'" for k, v in VISIT_EVENTS.items())
    visit_ids = ", ".join(f"'{k}'" for k in VISIT_EVENTS)
    if "visit_occurrence" in by_table:
        other = reader.execute(f"select count(*) from omop_visit_occurrence where coalesce(trim(visit_concept_id), '') "
                               f"not in ({visit_ids})").fetchall()[0][0]
        if other:
            by_table["visit_occurrence"].skipped["not_emergency_or_inpatient"] = other
    tables["events"] = contract_table(reader, "events", ("patient_id", "event_date", "event_type"), f"""
        select {sql_line_no(number.get('visit_occurrence', 0), 'line')} as line_no, person_id as patient_id,
            coalesce({_blank('visit_start_date')}, left(trim(visit_start_datetime), 10), '') as event_date,
            case trim(visit_concept_id) {visit_types} end as event_type
        from omop_visit_occurrence where trim(visit_concept_id) in ({visit_ids})
        union all
        select {sql_line_no(number.get('condition_occurrence', 0), 'line')}, person_id, day, 'overdose'
        from omop_conditions where known and list_contains(flags, 'overdose')""")
    if added.rows_read:
        files.append(added)
    if "drug_strength" in by_table and not by_table["drug_strength"].rows_read:
        notes.append("DRUG_STRENGTH is empty: strengths are read from the drug names")
    return Adapted(tables, files, notes, "omop")


def _helpers(reader: duckdb.DuckDBPyConnection) -> None:
    """Reader tables the mapping joins: ref_condition_codes, omop_concept_1 (one row per concept_id),
    omop_strength (drug_concept_id -> ingredient, strength, strength_unit of our ingredient, from DRUG_STRENGTH:
    amount_value and unit, else numerator_value ÷ denominator_value (1 when blank) and their units)."""
    value_sets.register(reader)
    reader.execute("""
        create or replace table omop_concept_1 as
        select trim(concept_id) as concept_id, trim(concept_name) as concept_name, trim(vocabulary_id) as vocabulary_id,
               trim(concept_code) as concept_code
        from omop_concept where nullif(trim(concept_id), '') is not null
        qualify row_number() over (partition by trim(concept_id) order by line) = 1""")
    known = pa.table({"ingredient": pa.array(sorted(drugs.drug_classes()), pa.string())})
    reader.register("omop_known_ingredients", known)
    unit = "upper(coalesce({0}.concept_code, ''))"
    reader.execute(f"""
        create or replace table omop_strength as
        select drug_concept_id, arg_min(ingredient, ingredient) as ingredient,
               arg_min(strength, ingredient) as strength, arg_min(strength_unit, ingredient) as strength_unit
        from (
            select trim(ds.drug_concept_id) as drug_concept_id, lower(ing.concept_name) as ingredient,
                case when {_blank('ds.amount_value')} is not null then trim(ds.amount_value)
                     else cast(try_cast(trim(ds.numerator_value) as double)
                               / coalesce(try_cast({_blank('ds.denominator_value')} as double), 1) as varchar) end
                    as strength,
                case when {_blank('ds.amount_value')} is not null then {unit.format('au')}
                     else {unit.format('nu')} || '/' || case {unit.format('du')} when 'H' then 'HR' else {unit.format('du')} end end as strength_unit
            from omop_drug_strength ds
            join omop_concept_1 ing on ing.concept_id = trim(ds.ingredient_concept_id)
            join omop_known_ingredients ki on ki.ingredient = lower(ing.concept_name)
            left join omop_concept_1 au on au.concept_id = trim(ds.amount_unit_concept_id)
            left join omop_concept_1 nu on nu.concept_id = trim(ds.numerator_unit_concept_id)
            left join omop_concept_1 du on du.concept_id = trim(ds.denominator_unit_concept_id)
        ) as s where strength is not null and strength_unit not in ('', '/')
        group by drug_concept_id""")
    reader.unregister("omop_known_ingredients")
