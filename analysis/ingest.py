"""Validated loading of the CSV data contract (DESIGN.md) into DuckDB or PostgreSQL.

Stage, check, insert: DuckDB's CSV reader stages every file as text (malformed rows are caught with
their line numbers), `queries/checked_<table>.sql` types and checks every staged row inside the target
database, and the rows that pass are inserted, all in one transaction. Python never loops over rows:
it streams Arrow batches and resolves each *distinct* drug description once (analysis.drugs).
Every row read is either loaded or written to the rejects file with a reason; a load that fails
leaves the database exactly as it was.
"""
from __future__ import annotations

import csv
import datetime as dt
import heapq
import io
import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

import queries
from analysis import db
from analysis.dose import FACTOR_SETS, LtotParams, TaperParams
from analysis.drugs import resolve_drug

BATCH_ROWS = 500_000

Progress = Callable[[str, int, int], None]


class LoadError(Exception):
    """A load that cannot go ahead; the message names the file and what is wrong."""


class StrictRefusal(LoadError):
    """--strict refused a load that had rejected rows; the rejects file is still written."""


@dataclass(frozen=True)
class TableSpec:
    """One CSV file of the data contract: its table, required and optional columns."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    file_required: bool = True

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


# Load order matters: each table is checked against the ones loaded before it.
TABLES: tuple[TableSpec, ...] = (
    TableSpec("clinics", ("clinic_id", "clinic_name")),
    TableSpec("clinicians", ("clinician_id", "clinician_name", "specialty", "clinic_id")),
    TableSpec("patients", ("patient_id", "birth_date", "sex", "cancer", "hospice_palliative",
                           "sickle_cell", "opioid_use_disorder")),
    TableSpec("prescriptions", ("rx_id", "patient_id", "clinician_id", "fill_date", "drug_name",
                                "ingredient", "strength", "strength_unit", "dose_form", "quantity",
                                "days_supply", "long_acting"), ("ndc", "rxcui", "pharmacy_id")),
    TableSpec("events", ("patient_id", "event_date", "event_type"), file_required=False),
)

# Columns of the loaded tables, in the order checked_<table>.sql returns them after its 4 leading ones.
LOADED_COLUMNS: dict[str, tuple[str, ...]] = {
    "clinics": ("clinic_id", "clinic_name"),
    "clinicians": ("clinician_id", "clinician_name", "specialty", "clinic_id"),
    "patients": ("patient_id", "birth_date", "sex", "cancer", "hospice_palliative", "sickle_cell",
                 "opioid_use_disorder"),
    "prescriptions": ("rx_id", "patient_id", "clinician_id", "fill_date", "drug_name", "ingredient",
                      "strength", "strength_unit", "dose_form", "quantity", "days_supply", "long_acting",
                      "drug_class", "drug_parsed", "ndc", "rxcui", "pharmacy_id"),
    "events": ("patient_id", "event_date", "event_type"),
}

DRUG_KEY = ("drug_name", "ingredient", "strength", "strength_unit", "dose_form", "long_acting")

# DuckDB's CSV reader error types, said the way a person fixing the file would want to read them.
MALFORMED = {
    "MISSING COLUMNS": "row has fewer fields than the header",
    "TOO MANY COLUMNS": "row has more fields than the header",
    "UNQUOTED VALUE": "a quote inside a field is not escaped (write \"\" for a literal quote)",
    "LINE SIZE OVER MAXIMUM": "line is longer than the reader accepts (2 MB)",
    "INVALID STATE": "the row cannot be read as CSV",
}

REJECT_COLUMNS = ("file", "line", "row_id", "reason_code", "reason")


@dataclass
class TableReport:
    """What happened to one file: rows read, loaded, rejected (by reason) and columns ignored."""

    table: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    ignored_columns: tuple[str, ...] = ()


@dataclass
class LoadReport:
    """The outcome of one load."""

    run_id: str
    tables: list[TableReport]
    rejects_path: Path | None

    @property
    def rows_rejected(self) -> int:
        return sum(t.rows_rejected for t in self.tables)


@dataclass
class _StagedFile:
    spec: TableSpec
    path: Path
    header: list[str]
    good_rows: int
    malformed: list[tuple[int, str, str]]  # (line, row_id, reason)

    @property
    def ignored(self) -> tuple[str, ...]:
        return tuple(c for c in self.header if c not in self.spec.columns)


def read_header(path: Path, spec: TableSpec) -> list[str]:
    """Column names of a CSV file, lower-cased; refuses encodings, delimiters and missing columns."""
    with path.open("rb") as f:
        first = f.readline(1 << 20)
    if not first.strip():
        raise LoadError(f"{path.name}: the file is empty; expected a header row with {', '.join(spec.required)}")
    try:
        text = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise LoadError(f"{path.name}: not UTF-8 encoded (byte 0x{first[e.start]:02x} in the header row); "
                        "save the file as UTF-8 and load again") from None
    header = [c.strip().lower() for c in next(csv.reader([text]))]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise LoadError(f"{path.name}: column {', '.join(duplicated)} appears more than once in the header")
    missing = [c for c in spec.required if c not in header]
    if missing:
        for delim, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")):
            split = [c.strip().lower() for c in next(csv.reader([text], delimiter=delim))]
            if len(split) > 1 and (len(header) == 1 or not [c for c in spec.required if c not in split]):
                raise LoadError(f"{path.name}: columns are separated by {label}; the data contract uses commas")
        raise LoadError(f"{path.name}: missing required column{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(missing)} (header has: {', '.join(header)})")
    return header


def _read_csv_sql() -> str:
    return ("from read_csv($path, header = true, auto_detect = false, columns = $columns, delim = ',', "
            "quote = '\"', escape = '\"', encoding = 'utf-8', strict_mode = true, null_padding = false, "
            "store_rejects = true, rejects_table = 'rx_rejects', rejects_scan = 'rx_reject_scans', "
            "max_line_size = 2097152)")


def _scan(reader: duckdb.DuckDBPyConnection, spec: TableSpec, path: Path, header: list[str]) -> _StagedFile:
    """First pass: count good rows and collect malformed ones with their line numbers."""
    params = {"path": str(path), "columns": {c: "VARCHAR" for c in header}}
    # Counting every column makes the reader parse (and check the encoding of) every field.
    every = ", ".join(f'count("{c}")' for c in header)
    good = reader.execute(f"select count(*), {every} {_read_csv_sql()}", params).fetchall()[0][0]
    has_rejects = reader.execute(
        "select count(*) from duckdb_tables() where table_name = 'rx_rejects'").fetchone()[0]
    errors = reader.execute(
        "select line, error_type, csv_line from rx_rejects order by line").fetchall() if has_rejects else []
    reader.execute("drop table if exists rx_rejects; drop table if exists rx_reject_scans")
    malformed, seen = [], set()
    for line, error_type, csv_line in errors:
        if error_type == "INVALID ENCODING":
            raise LoadError(f"{path.name}: not UTF-8 encoded (first invalid byte on line {line}); "
                            "save the file as UTF-8 and load again")
        if line in seen:  # a row can break more than one rule; report it once
            continue
        seen.add(line)
        first_field = next(csv.reader([csv_line or ""]), [""])
        row_id = first_field[0] if first_field else ""
        reason = MALFORMED.get(error_type, f"the row cannot be read as CSV ({error_type.lower()})")
        malformed.append((int(line), row_id, f"{reason} ({len(header)} columns)"))
    return _StagedFile(spec, path, header, int(good), malformed)


def _line_numbers(ordinals: np.ndarray, malformed_lines: np.ndarray) -> np.ndarray:
    """File line of each good row from its 1-based ordinal among good rows.

    Data row r sits on line r + 1 (the header is line 1). A malformed row j (1-based, ascending) on
    line L_j has L_j - 1 - j good rows before it, so it precedes good row g when L_j - 1 - j < g.
    """
    before = malformed_lines - 1 - np.arange(1, len(malformed_lines) + 1)
    return ordinals + np.searchsorted(before, ordinals, side="left") + 1


def _batches(reader: duckdb.DuckDBPyConnection, staged: _StagedFile) -> Iterator[pa.RecordBatch]:
    """Second pass: the good rows as text, with line_no, every contract column present (blank if absent)."""
    params = {"path": str(staged.path), "columns": {c: "VARCHAR" for c in staged.header}}
    select = ", ".join(
        f'coalesce("{c}", \'\') as "{c}"' if c in staged.header else f"'' as \"{c}\""
        for c in staged.spec.columns)
    result = reader.sql(f"select ordinality, {select} {_read_csv_sql()} with ordinality", params=params)
    bad_lines = np.array([m[0] for m in staged.malformed], dtype=np.int64)
    for batch in result.to_arrow_reader(BATCH_ROWS):
        ordinals = batch.column(0).to_numpy().astype(np.int64)
        line_no = pa.array(_line_numbers(ordinals, bad_lines), type=pa.int64())
        yield pa.RecordBatch.from_arrays([line_no, *batch.columns[1:]],
                                         names=["line_no", *staged.spec.columns])


def bulk_insert(conn: sa.Connection, table: str, columns: tuple[str, ...],
                batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> None:
    """Insert Arrow batches: DuckDB scans them in place, PostgreSQL receives them through COPY."""
    column_list = ", ".join(columns)
    raw = conn.connection.driver_connection
    if conn.dialect.name == "duckdb":
        source = pa.RecordBatchReader.from_batches(schema, batches)
        raw.register("rx_bulk_source", source)
        try:
            conn.exec_driver_sql(f"insert into {table} ({column_list}) select {column_list} from rx_bulk_source")
        finally:
            raw.unregister("rx_bulk_source")
        return
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    with raw.cursor() as cur, cur.copy(f"copy {table} ({column_list}) from stdin (format csv)") as copy:
        for batch in batches:
            buf = io.BytesIO()
            pacsv.write_csv(batch, buf, options)
            copy.write(buf.getvalue())


def _reference_tables(conn: sa.Connection) -> None:
    """Replace ref_drug_classes and ref_mme_factors with the CSVs shipped in analysis/reference."""
    root = resources.files("analysis").joinpath("reference")
    for table, file in (("ref_drug_classes", "drug_classes.csv"), ("ref_mme_factors", "mme_factors.csv")):
        data = pacsv.read_csv(io.BytesIO(root.joinpath(file).read_bytes()))
        conn.exec_driver_sql(f"delete from {table}")
        bulk_insert(conn, table, tuple(data.column_names), iter(data.to_batches()), data.schema)


def _stage(conn: sa.Connection, reader: duckdb.DuckDBPyConnection, staged: _StagedFile,
           progress: Progress | None) -> None:
    name = staged.spec.name
    columns = ("line_no", *staged.spec.columns)
    conn.exec_driver_sql(f"drop table if exists stg_{name}")
    conn.exec_driver_sql(
        f"create temporary table stg_{name} (line_no bigint, "
        + ", ".join(f"{c} varchar" for c in staged.spec.columns) + ")")
    schema = pa.schema([("line_no", pa.int64())] + [(c, pa.string()) for c in staged.spec.columns])

    def counted() -> Iterator[pa.RecordBatch]:
        done = 0
        for batch in _batches(reader, staged):
            done += batch.num_rows
            yield batch
            if progress:
                progress(name, done, staged.good_rows)

    bulk_insert(conn, f"stg_{name}", columns, counted(), schema)


def _resolve_drugs(conn: sa.Connection) -> None:
    """Resolve each distinct drug description once (a few thousand at most) into stg_drugs."""
    key = ", ".join(f"trim({c})" for c in DRUG_KEY)
    rows = conn.exec_driver_sql(f"select distinct {key} from stg_prescriptions").fetchall()
    out: dict[str, list] = {f"raw_{c}": [] for c in DRUG_KEY}
    for col in ("ingredient", "strength", "strength_unit", "dose_form", "long_acting", "drug_class",
                "drug_parsed", "error"):
        out[col] = []
    for row in rows:
        drug = resolve_drug(*row)
        for c, v in zip(DRUG_KEY, row):
            out[f"raw_{c}"].append(v)
        for col in ("ingredient", "strength", "strength_unit", "dose_form", "long_acting", "drug_class",
                    "error"):
            out[col].append(getattr(drug, col))
        out["drug_parsed"].append(drug.parsed)
    types = {"strength": pa.float64(), "long_acting": pa.bool_(), "drug_parsed": pa.bool_()}
    schema = pa.schema([(c, types.get(c, pa.string())) for c in out])
    table = pa.table(out, schema=schema)
    conn.exec_driver_sql("drop table if exists stg_drugs")
    conn.exec_driver_sql(
        "create temporary table stg_drugs ("
        + ", ".join(f"{c} {'double precision' if t == pa.float64() else 'boolean' if t == pa.bool_() else 'varchar'}"
                    for c, t in zip(schema.names, schema.types)) + ")")
    bulk_insert(conn, "stg_drugs", tuple(schema.names), iter(table.to_batches()), schema)


def _check_and_insert(conn: sa.Connection, staged: _StagedFile, as_of: dt.date,
                      rejects: csv.writer) -> TableReport:
    name = staged.spec.name
    sql = queries.load(f"checked_{name}")
    conn.exec_driver_sql(f"drop table if exists chk_{name}")
    conn.execute(sa.text(f"create temporary table chk_{name} as {sql}"), {"as_of": as_of})
    cols = ", ".join(LOADED_COLUMNS[name])
    conn.exec_driver_sql(f"insert into {name} ({cols}) select {cols} from chk_{name} where reason_code is null")
    report = TableReport(name, ignored_columns=staged.ignored)
    report.rows_loaded = conn.exec_driver_sql(
        f"select count(*) from chk_{name} where reason_code is null").scalar_one()
    for code, n in conn.exec_driver_sql(
            f"select reason_code, count(*) from chk_{name} where reason_code is not null group by reason_code"):
        report.reasons[code] += n
    if staged.malformed:
        report.reasons["malformed_row"] += len(staged.malformed)
    report.rows_rejected = sum(report.reasons.values())
    report.rows_read = staged.good_rows + len(staged.malformed)
    checked = conn.exec_driver_sql(f"select count(*) from chk_{name}").scalar_one()
    if checked != staged.good_rows or report.rows_loaded + report.rows_rejected != report.rows_read:
        raise LoadError(f"{staged.path.name}: internal reconciliation failed (read {report.rows_read}, "
                        f"loaded {report.rows_loaded}, rejected {report.rows_rejected}); nothing was loaded")
    value_rejects = conn.exec_driver_sql(
        f"select line_no, row_id, reason_code, reason from chk_{name} where reason_code is not null order by line_no",
        execution_options={"yield_per": 10_000})
    malformed = ((line, row_id, "malformed_row", reason) for line, row_id, reason in staged.malformed)
    for line, row_id, code, reason in heapq.merge(malformed, value_rejects, key=lambda r: r[0]):
        rejects.writerow((staged.path.name, line, row_id or "", code, reason))
    for table in (f"chk_{name}", f"stg_{name}"):
        conn.exec_driver_sql(f"drop table if exists {table}")
    return report


def rebuild_derived(conn: sa.Connection) -> None:
    """Rebuild the stored derivations for every factor set: daily_dose_segments (every patient's daily
    series), then stored_tapers (every taper, measured from that series with the default parameters), and
    stored_ltot_episodes (episodes of supply; no factor set needed). Queries read these instead of
    recomputing them: the dashboard's pages then answer in a second on a million prescriptions."""
    conn.exec_driver_sql("delete from daily_dose_segments")
    conn.exec_driver_sql("delete from stored_tapers")
    conn.exec_driver_sql("delete from stored_ltot_episodes")
    segments_sql = queries.load("build_dose_segments", conn.dialect.name)
    tapers_sql = queries.load("build_tapers", conn.dialect.name)
    segment_columns = "factor_set, patient_id, seg_start, seg_end, daily_mme, supplied"
    taper_columns = ("factor_set, patient_id, taper_start, baseline_mme, min_window_mme, end_mme, "
                     "max_monthly_reduction_pct, discontinued, stop_day, stop_mme")
    bounds = conn.execute(sa.text(queries.load("data_bounds"))).one()
    episode_columns = "patient_id, episode_no, episode_start, episode_end, duration_days, fills, days_supply, is_ltot"
    conn.execute(sa.text(f"insert into stored_ltot_episodes ({episode_columns}) "
                         f"{queries.load('build_ltot_episodes', conn.dialect.name)}"),
                 {"exclude": False, **LtotParams().sql()})
    for factor_set in FACTOR_SETS:
        conn.execute(sa.text(f"insert into daily_dose_segments ({segment_columns}) {segments_sql}"),
                     {"factor_set": factor_set, "exclude": False})
        if bounds.data_end is not None:
            conn.execute(sa.text(f"insert into stored_tapers ({taper_columns}) {tapers_sql}"),
                         {"factor_set": factor_set, "exclude": False,
                          **TaperParams().sql(bounds.data_start, bounds.data_end)})


def _record(conn: sa.Connection, run_id: str, directory: Path, replace: bool, strict: bool,
            reports: list[TableReport]) -> None:
    conn.execute(sa.text("insert into load_runs (run_id, loaded_at, source_dir, replaced, strict_mode) "
                         "values (:run_id, :loaded_at, :source_dir, :replaced, :strict)"),
                 {"run_id": run_id, "loaded_at": dt.datetime.now().replace(microsecond=0),
                  "source_dir": str(directory), "replaced": replace, "strict": strict})
    conn.execute(sa.text("insert into load_counts (run_id, table_name, rows_read, rows_loaded, rows_rejected, "
                         "ignored_columns) values (:run_id, :table, :read, :loaded, :rejected, :ignored)"),
                 [{"run_id": run_id, "table": r.table, "read": r.rows_read, "loaded": r.rows_loaded,
                   "rejected": r.rows_rejected, "ignored": ", ".join(r.ignored_columns) or None}
                  for r in reports])
    reasons = [{"run_id": run_id, "table": r.table, "code": code, "n": n}
               for r in reports for code, n in sorted(r.reasons.items())]
    if reasons:
        conn.execute(sa.text("insert into load_reject_reasons (run_id, table_name, reason_code, n_rows) "
                             "values (:run_id, :table, :code, :n)"), reasons)


def load_directory(engine: sa.Engine, directory: Path | str, rejects_path: Path | str = "rejects.csv",
                   replace: bool = False, strict: bool = False, as_of: dt.date | None = None,
                   progress: Progress | None = None) -> LoadReport:
    """Load DIR/{clinics,clinicians,patients,prescriptions,events}.csv; all or nothing on failure."""
    directory = Path(directory)
    rejects_path = Path(rejects_path)
    as_of = as_of or dt.date.today()
    if not directory.is_dir():
        raise LoadError(f"{directory}: not a folder")
    files = []
    for spec in TABLES:
        path = directory / spec.file_name
        if not path.is_file():
            if spec.file_required:
                raise LoadError(f"{spec.file_name}: not found in {directory}")
            continue
        files.append((spec, path, read_header(path, spec)))

    run_id = uuid.uuid4().hex[:12]
    reader = duckdb.connect()
    reader.execute("set enable_progress_bar = false")
    reader.execute("set memory_limit = '1GB'")  # the reader only streams; spill rather than grow
    staged_files = [_scan(reader, spec, path, header) for spec, path, header in files]

    rejects_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".rejects-", suffix=".csv", dir=rejects_path.parent)
    reports: list[TableReport] = []
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(REJECT_COLUMNS)
            try:
                with engine.begin() as conn:
                    db.init_schema(conn)
                    if replace:
                        for spec in reversed(TABLES):
                            conn.exec_driver_sql(f"delete from {spec.name}")
                    _reference_tables(conn)
                    for staged in staged_files:
                        _stage(conn, reader, staged, progress)
                        if staged.spec.name == "prescriptions":
                            _resolve_drugs(conn)
                        reports.append(_check_and_insert(conn, staged, as_of, writer))
                    conn.exec_driver_sql("drop table if exists stg_drugs")
                    rejected = sum(r.rows_rejected for r in reports)
                    if strict and rejected:
                        out.flush()
                        raise StrictRefusal(f"--strict: {rejected} row{'s' if rejected != 1 else ''} rejected "
                                        f"(see {rejects_path}); nothing was loaded")
                    rebuild_derived(conn)
                    _record(conn, run_id, directory, replace, strict, reports)
            except sa.exc.DBAPIError as e:
                raise LoadError(f"database error, nothing was loaded: {str(e.orig).splitlines()[0]}") from e
        os.replace(tmp_name, rejects_path)
    except StrictRefusal:
        os.replace(tmp_name, rejects_path)
        raise
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    finally:
        reader.close()
    return LoadReport(run_id, reports, rejects_path)
