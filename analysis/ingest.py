"""Validated loading of the CSV data contract (DESIGN.md) into DuckDB or PostgreSQL.

Stage, check, insert: DuckDB's CSV reader stages every file as text (malformed rows are caught with
their line numbers), `queries/checked_<table>.sql` types and checks every staged row inside the target
database, and the rows that pass are inserted, all in one transaction. Python never loops over rows:
it streams Arrow batches and resolves each *distinct* drug description once (analysis.drugs).
Every row read is loaded, skipped (a prescription of another drug, by its code: counted, not an
error) or written to the rejects file with a reason; a load that fails
leaves the database exactly as it was.
"""
from __future__ import annotations

import csv
import datetime as dt
import heapq
import importlib
import io
import os
import re
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
from analysis.display import counted, spreadsheet_safe
from analysis.errors import LoadError
from analysis.dose import FACTOR_SETS, LtotParams, TaperParams
from analysis import contract_parquet, ndc, rxcui, sources
from analysis.drugs import identify_drug

BATCH_ROWS = 500_000
MAX_LINE_BYTES = 2 * 1024 * 1024   # the longest line (header or row) the reader accepts
MAX_FILL_DAYS = 30   # the longest fill a prescribing order is split into (rxdash load --max-fill-days)
# Python's csv module refuses fields over 128 KiB by default; a header is read whole up to the line limit.
csv.field_size_limit(MAX_LINE_BYTES + 1)

Progress = Callable[[str, int, int], None]



class StrictRefusal(LoadError):
    """--strict refused a load that had rejected rows; the rejects file is still written."""


class EmptyRefusal(StrictRefusal):
    """A required file loaded no row at all; nothing is loaded, the rejects file is still written."""


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
                           "sickle_cell", "opioid_use_disorder"), ("record_start", "record_end")),
    TableSpec("prescriptions", ("rx_id", "patient_id", "clinician_id", "fill_date", "drug_name",
                                "ingredient", "strength", "strength_unit", "dose_form", "quantity",
                                "days_supply", "long_acting"), ("ndc", "rxcui", "pharmacy_id", "units_per_day",
                                                                "end_date")),
    TableSpec("events", ("patient_id", "event_date", "event_type"), file_required=False),
)

# Columns of the loaded tables, in the order checked_<table>.sql returns them after its 4 leading ones.
LOADED_COLUMNS: dict[str, tuple[str, ...]] = {
    "clinics": ("clinic_id", "clinic_name"),
    "clinicians": ("clinician_id", "clinician_name", "specialty", "clinic_id"),
    "patients": ("patient_id", "birth_date", "sex", "cancer", "hospice_palliative", "sickle_cell",
                 "opioid_use_disorder", "record_start", "record_end"),
    "prescriptions": ("rx_id", "patient_id", "clinician_id", "fill_date", "drug_name", "ingredient",
                      "strength", "strength_unit", "dose_form", "quantity", "days_supply", "long_acting",
                      "drug_class", "drug_parsed", "ndc", "rxcui", "pharmacy_id", "form_group", "drug_source",
                      "quantity_source"),
    "events": ("patient_id", "event_date", "event_type"),
}

DRUG_KEY = ("drug_name", "ingredient", "strength", "strength_unit", "dose_form", "long_acting", "ndc", "rxcui")

# prescriptions.quantity_source: how a row's quantity and days supply were obtained (README "Prescribing
# orders"; queries/checked_prescriptions.sql). Only "given" is measured; the others are inferred from an
# order's sig (units_per_day, the dose units a day) and its days; days_only and end_only have no quantity.
QUANTITY_SOURCES = {
    "given": "quantity and days_supply given (a dispensing)",
    "sig_days": "quantity = units_per_day × the days_supply given",
    "sig_end": "days from fill_date to end_date; quantity = units_per_day × days",
    "sig_open": "open order: days from fill_date to the extract date; quantity = units_per_day × days",
    "qty_end": "quantity given; days from fill_date to end_date",
    "qty_sig": "quantity given; days = quantity ÷ units_per_day, rounded up",
    "days_only": "days_supply given, no quantity: supply counted, dose unknown",
    "end_only": "days from fill_date to end_date, no quantity: supply counted, dose unknown",
}

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
    """What happened to one file: rows read, loaded, skipped (other drugs, by reason), rejected (by reason)
    and columns ignored. rows_read = rows_loaded + rows_skipped + rows_rejected."""

    table: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    rows_skipped: int = 0
    skip_reasons: Counter = field(default_factory=Counter)
    ignored_columns: tuple[str, ...] = ()
    # Rows stored in the table: rows_loaded, plus the extra fills of the orders split into several
    # (prescriptions only; orders_split counts those input rows).
    fills_loaded: int = 0
    orders_split: int = 0
    # For a source format: {file number: (rows loaded, rows skipped by reason, rows rejected by reason)}.
    by_source: dict[int, tuple[int, Counter, Counter]] = field(default_factory=dict)
    # The contract file the rows came from ("prescriptions.csv", "prescriptions.parquet"); "" for a source format.
    file: str = ""


@dataclass
class SourceReport:
    """What happened to one file of a source format (an OMOP table, a FHIR file, a Part D event file):
    rows read = rows_loaded + rows_skipped + rows_rejected. rows_loaded counts the rows that became a
    loaded contract row and the rows used without one (analysis.sources.SourceFile.rows_used)."""

    name: str
    feeds: str = ""
    rows_read: int = 0
    rows_loaded: int = 0
    rows_skipped: int = 0
    rows_rejected: int = 0
    skip_reasons: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)


@dataclass
class LoadReport:
    """The outcome of one load. `sources` is empty for the CSV contract and holds one SourceReport per
    source file for the other formats (analysis.sources)."""

    run_id: str
    tables: list[TableReport]
    rejects_path: Path | None
    extract_date: dt.date | None = None   # the end of the data after this load (given or the last fill)
    sources: list[SourceReport] = field(default_factory=list)
    format: str = "contract"
    notes: list[str] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        return sum(t.rows_rejected for t in self.tables)

    @property
    def rows_skipped(self) -> int:
        return sum(t.rows_skipped for t in self.tables)


@dataclass(frozen=True)
class Header:
    """A file's header row: column names (lower-cased, trimmed) and how the file's lines end.

    `newline` is the character that ends a line: "\\r" for a file with CR-only line ends (old Mac
    format), else "\\n" (LF or CRLF). `lines` is how many physical lines the header takes (more than 1
    only when a quoted name holds a line break)."""

    names: tuple[str, ...]
    newline: str = "\n"
    lines: int = 1

    def position(self, column: str) -> int | None:
        """0-based position of a contract column in the file, or None when the file lacks it."""
        return self.names.index(column) if column in self.names else None


@dataclass
class _Malformed:
    record: int      # DuckDB's rejects `line`: the record's number, the header being record 1
    row_id: str
    reason: str
    breaks: int      # line breaks inside the record's quoted fields
    line: int = 0    # the physical line the record starts on (set while staging)


@dataclass
class _StagedFile:
    spec: TableSpec
    path: Path
    header: Header
    good_rows: int
    breaks: int                  # line breaks inside quoted fields of the good rows, in all
    malformed: list[_Malformed]

    @property
    def ignored(self) -> tuple[str, ...]:
        return tuple(shown_name(c) if c else f"(column {i + 1} has no name)"
                     for i, c in enumerate(self.header.names) if c not in self.spec.columns)

    @property
    def label(self) -> str:
        return self.path.name

    def locate(self, line: int) -> tuple[str, int]:
        return self.path.name, line


@dataclass
class _StagedRelation:
    """A contract table's rows as a source adapter left them in the reader (analysis.sources): the table
    `table` (line_no, the contract columns as text). line_no names the source file and line (locate)."""

    spec: TableSpec
    table: str
    good_rows: int
    adapted: sources.Adapted
    malformed: list[_Malformed] = field(default_factory=list)
    ignored: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.spec.name} (from {self.adapted.format})"

    def locate(self, line: int) -> tuple[str, int]:
        return self.adapted.locate(line)


def shown_name(text: str, limit: int = 60) -> str:
    """A name taken from an input file, fit for one line of a message: control characters (line breaks,
    terminal escapes) become spaces and long names are cut, so a hostile header cannot rewrite the
    terminal or flood the output."""
    clean = "".join(ch if ch.isprintable() else " " for ch in text)
    return clean if len(clean) <= limit else clean[:limit - 1] + "…"


def _header_lines(path: Path) -> tuple[list[bytes], bool]:
    """The file's first lines as bytes (line ends kept), and whether the read stopped at the line limit."""
    with path.open("rb") as f:
        chunk = f.read(MAX_LINE_BYTES + 1)
    return chunk.splitlines(keepends=True), len(chunk) > MAX_LINE_BYTES


def read_header(path: Path, spec: TableSpec) -> Header:
    """The header row of a CSV file: refuses empty files, other encodings, delimiters, duplicated and
    missing columns, and headers over the line limit, each in one plain line.

    The header is read with Python's csv module (quoted names may hold commas, quotes and line breaks);
    the names are matched against the contract here and never reach SQL: the reader addresses columns
    by position (see _columns)."""
    lines, truncated = _header_lines(path)
    if not b"".join(lines).strip():
        raise LoadError(f"{path.name}: the file is empty; expected a header row with {', '.join(spec.required)}")
    used = 0

    def decoded() -> Iterator[str]:
        nonlocal used
        for raw in lines:
            used += 1
            try:
                yield raw.decode("utf-8-sig" if used == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise LoadError(f"{path.name}: not UTF-8 encoded (byte 0x{raw[e.start]:02x} in the header row); "
                                "save the file as UTF-8 and load again") from None

    try:
        record = next(csv.reader(decoded()), None)
    except csv.Error as e:
        raise LoadError(f"{path.name}: the header row cannot be read as CSV ({e})") from None
    if record is None or (truncated and used >= len(lines)):
        raise LoadError(f"{path.name}: the header row is longer than {MAX_LINE_BYTES // (1024 * 1024)} MB "
                        "(or a quote in it is never closed); check the file's first line")
    first = lines[0]
    newline = "\r" if first.endswith(b"\r") and not first.endswith(b"\r\n") else "\n"
    header = [c.strip().lower() for c in record]
    text = first.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    duplicated = sorted({c for c in header if c and header.count(c) > 1})
    if duplicated:
        raise LoadError(f"{path.name}: column {', '.join(map(shown_name, duplicated))} appears more than once "
                        "in the header")
    missing = [c for c in spec.required if c not in header]
    if missing:
        for delim, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")):
            try:
                split = [c.strip().lower() for c in next(csv.reader([text], delimiter=delim))]
            except (csv.Error, StopIteration):
                continue
            if len(split) > 1 and (len(header) == 1 or not [c for c in spec.required if c not in split]):
                raise LoadError(f"{path.name}: columns are separated by {label}; the data contract uses commas")
        has = ", ".join(shown_name(c, 40) for c in header[:30]) + (", …" if len(header) > 30 else "")
        raise LoadError(f"{path.name}: missing required column{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(missing)} (header has: {shown_name(has, 400)})")
    return Header(tuple(header), newline, used)


def _columns(header: Header) -> dict[str, str]:
    """The reader's column list: our own positional names c0, c1, ... (the header's names never enter SQL)."""
    return {f"c{i}": "VARCHAR" for i in range(len(header.names))}


def _read_csv_sql(header: Header) -> str:
    # A CR-only file must be told so: the reader otherwise reads it as one long line.
    new_line = ", new_line = '\\r'" if header.newline == "\r" else ""
    return ("from read_csv($path, header = true, auto_detect = false, columns = $columns, delim = ',', "
            "quote = '\"', escape = '\"', encoding = 'utf-8', strict_mode = true, null_padding = false, "
            "store_rejects = true, rejects_table = 'rx_rejects', rejects_scan = 'rx_reject_scans', "
            f"max_line_size = {MAX_LINE_BYTES}{new_line})")


def _breaks_sql(header: Header) -> str:
    """SQL for the line breaks inside one row's fields (the reader's positional names only)."""
    nl = "chr(13)" if header.newline == "\r" else "chr(10)"
    return " + ".join(f"(strlen(coalesce(c{i}, '')) - strlen(replace(coalesce(c{i}, ''), {nl}, '')))"
                      for i in range(len(header.names)))


def _scan(reader: duckdb.DuckDBPyConnection, spec: TableSpec, path: Path, header: Header) -> _StagedFile:
    """First pass: count good rows (and the line breaks inside their fields), and collect malformed rows."""
    params = {"path": str(path), "columns": _columns(header)}
    try:
        # Measuring every field makes the reader parse (and check the encoding of) every one.
        # fetchall, not fetchone: the reader writes its rejects table only once the scan is consumed.
        good, breaks = reader.execute(
            f"select count(*), coalesce(sum({_breaks_sql(header)}), 0) {_read_csv_sql(header)}", params).fetchall()[0]
        has_rejects = reader.execute(
            "select count(*) from duckdb_tables() where table_name = 'rx_rejects'").fetchone()[0]
        errors = reader.execute(
            "select line, error_type, csv_line from rx_rejects order by line").fetchall() if has_rejects else []
        reader.execute("drop table if exists rx_rejects; drop table if exists rx_reject_scans")
    except duckdb.Error as e:
        stray = _stray_carriage_return(path) if header.newline == "\n" else None
        if stray:
            raise LoadError(f"{path.name}: line {stray} holds a carriage return (CR) outside quotes, or the file mixes "
                            "line ends; quote that field or save the file with one kind of line end") from None
        raise LoadError(f"{path.name}: the file cannot be read as CSV ({shown_name(str(e).splitlines()[0], 200)})"
                        ) from None
    malformed, seen = [], set()
    for line, error_type, csv_line in errors:
        if error_type == "INVALID ENCODING":
            raise LoadError(f"{path.name}: not UTF-8 encoded (first invalid byte on line "
                            f"{_physical_line(path, int(line))}); save the file as UTF-8 and load again")
        if line in seen:  # a row can break more than one rule; report it once
            continue
        seen.add(line)
        text = (csv_line or "").lstrip("\r\n")  # the reader may keep the end of the line before
        try:
            first_field = next(csv.reader(io.StringIO(text, newline="")), [""])
        except csv.Error:
            first_field = [""]
        reason = MALFORMED.get(error_type, f"the row cannot be read as CSV ({error_type.lower()})")
        malformed.append(_Malformed(int(line), first_field[0] if first_field else "",
                                    f"{reason} ({len(header.names)} columns)", text.count(header.newline)))
    return _StagedFile(spec, path, header, int(good), int(breaks), malformed)


def _stray_carriage_return(path: Path, chunk_bytes: int = 1 << 24) -> int | None:
    """The line of the first CR not followed by LF in a file whose lines end in LF (or CRLF), else None.
    Read in chunks, on a refusal only: the reader cannot say where it lost its way."""
    line, previous = 1, b""
    with path.open("rb") as f:
        while chunk := f.read(chunk_bytes):
            data = previous + chunk
            # Keep a trailing CR for the next chunk: its LF may start it.
            body, previous = (data[:-1], data[-1:]) if data.endswith(b"\r") else (data, b"")
            at = next((i for i in (m.start() for m in re.finditer(rb"\r(?!\n)", body))), None)
            if at is not None:
                return line + body.count(b"\n", 0, at)
            line += body.count(b"\n")
    return line if previous else None


def _physical_line(path: Path, record: int) -> int:
    """The physical line a record starts on (the header is record 1), counted by reading the file.
    Used only to name the line of a refusal, so a Python loop over rows is affordable here."""
    start = 1
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(f)
        try:
            for number, _ in enumerate(reader, start=1):
                if number == record:
                    return start
                start = reader.line_num + 1
        except csv.Error:
            pass
    return record


def _line_numbers(ordinals: np.ndarray, malformed_records: np.ndarray) -> np.ndarray:
    """Record number of each good row from its 1-based ordinal among good rows (the header is record 1).

    Data row r is record r + 1. A malformed record j (1-based, ascending) numbered R_j has R_j - 1 - j
    good rows before it, so it precedes good row g when R_j - 1 - j < g.
    """
    before = malformed_records - 1 - np.arange(1, len(malformed_records) + 1)
    return ordinals + np.searchsorted(before, ordinals, side="left") + 1


def _batches(reader: duckdb.DuckDBPyConnection, staged: _StagedFile) -> Iterator[pa.RecordBatch]:
    """Second pass: the good rows as text, every contract column present (blank if absent), with line_no:
    the physical line each row starts on, counting the line breaks inside quoted fields of every record
    before it (good or malformed) and of the header. Sets each malformed record's physical line too."""
    header = staged.header
    params = {"path": str(staged.path), "columns": _columns(header)}
    select = ", ".join(
        f"coalesce(c{header.position(c)}, '') as {c}" if header.position(c) is not None else f"'' as {c}"
        for c in staged.spec.columns)
    breaks = _breaks_sql(header) if staged.breaks else "0"
    result = reader.sql(f"select ordinality, {breaks}, {select} {_read_csv_sql(header)} with ordinality",
                        params=params)
    bad = staged.malformed
    records = np.array([m.record for m in bad], dtype=np.int64)
    # Good rows before each malformed record, and the line breaks inside the malformed records before it.
    good_before = records - 1 - np.arange(1, len(bad) + 1)
    bad_breaks = np.concatenate([[0], np.cumsum([m.breaks for m in bad], dtype=np.int64)])
    good_breaks_at = np.zeros(len(bad), dtype=np.int64)   # line breaks in the good rows before each
    carried = 0                                           # line breaks in the good rows of earlier batches
    last_ordinal = 0
    for batch in result.to_arrow_reader(BATCH_ROWS):
        ordinals = batch.column(0).to_numpy().astype(np.int64)
        row_breaks = batch.column(1).to_numpy(zero_copy_only=False).astype(np.int64)
        before_row = carried + np.cumsum(row_breaks) - row_breaks
        record = _line_numbers(ordinals, records)
        line = (record + (header.lines - 1) + before_row
                + bad_breaks[np.searchsorted(records, record, side="left")])
        inside = (good_before >= ordinals[0]) & (good_before <= ordinals[-1]) if len(ordinals) else good_before < 0
        good_breaks_at[inside] = (before_row + row_breaks)[good_before[inside] - ordinals[0]]
        carried += int(row_breaks.sum())
        last_ordinal = int(ordinals[-1]) if len(ordinals) else last_ordinal
        yield pa.RecordBatch.from_arrays([pa.array(line, type=pa.int64()), *batch.columns[2:]],
                                         names=["line_no", *staged.spec.columns])
    good_breaks_at[good_before > last_ordinal] = carried
    for j, m in enumerate(bad):
        m.line = int(m.record + (header.lines - 1) + good_breaks_at[j] + bad_breaks[j])


def _relation_batches(reader: duckdb.DuckDBPyConnection, staged: _StagedRelation) -> Iterator[pa.RecordBatch]:
    """An adapter's rows for one contract table, every contract column as text (NULL read as blank), in
    line_no order. The table and column names are the adapter's and the contract's own, never input."""
    select = ", ".join(f"coalesce(cast({c} as varchar), '') as {c}" for c in staged.spec.columns)
    result = reader.sql(f"select line_no, {select} from {staged.table} order by line_no")
    for batch in result.to_arrow_reader(BATCH_ROWS):
        yield pa.RecordBatch.from_arrays(batch.columns, names=["line_no", *staged.spec.columns])


SPARK_BATCH_ROWS = 500_000


def bulk_insert(conn: sa.Connection, table: str, columns: tuple[str, ...],
                batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> None:
    """Insert Arrow batches: DuckDB scans them in place, PostgreSQL receives them through COPY, Spark receives
    them as Arrow data frames of up to SPARK_BATCH_ROWS rows (Spark Connect's messages are bounded)."""
    column_list = ", ".join(columns)
    raw = conn.connection.driver_connection
    if conn.dialect.name == "spark":
        raw.insert_arrow(table, columns, batches, schema, SPARK_BATCH_ROWS)
        return
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
    """Replace ref_drug_classes and ref_mme_factors with the CSVs shipped in analysis/reference, and ref_ndc
    with the bundled NDC reference unless a user loaded one (`rxdash reference ndc`; analysis.ndc)."""
    root = resources.files("analysis").joinpath("reference")
    for table, file in (("ref_drug_classes", "drug_classes.csv"), ("ref_mme_factors", "mme_factors.csv")):
        data = pacsv.read_csv(io.BytesIO(root.joinpath(file).read_bytes()))
        conn.exec_driver_sql(f"delete from {table}")
        bulk_insert(conn, table, tuple(data.column_names), iter(data.to_batches()), data.schema)
    ndc.refresh_bundled(conn)


def _stage(conn: sa.Connection, reader: duckdb.DuckDBPyConnection, staged: _StagedFile,
           progress: Progress | None) -> None:
    name = staged.spec.name
    columns = ("line_no", *staged.spec.columns)
    conn.exec_driver_sql(f"drop table if exists stg_{name}")
    conn.exec_driver_sql(
        f"create temporary table stg_{name} (line_no bigint, "
        + ", ".join(f"{c} varchar" for c in staged.spec.columns) + ")")
    schema = pa.schema([("line_no", pa.int64())] + [(c, pa.string()) for c in staged.spec.columns])

    if isinstance(staged, contract_parquet.LakeTable):   # Spark reads the lake's files itself
        contract_parquet.stage_lake(staged, f"stg_{name}")
        return

    def counted() -> Iterator[pa.RecordBatch]:
        done = 0
        if isinstance(staged, _StagedRelation):
            source = _relation_batches(reader, staged)
        elif isinstance(staged, contract_parquet.ParquetTable):
            source = contract_parquet.batches(reader, staged, BATCH_ROWS)
        else:
            source = _batches(reader, staged)
        for batch in source:
            done += batch.num_rows
            yield batch
            if progress:
                progress(f"staging {name}", done, staged.good_rows)

    bulk_insert(conn, f"stg_{name}", columns, counted(), schema)


def _resolve_drugs(conn: sa.Connection) -> None:
    """Identify each distinct drug description (name, fields and codes) once into stg_drugs, with the NDC
    reference in force (ref_ndc) and the bundled RxCUI reference (analysis.drugs.identify_drug)."""
    key = ", ".join(f"trim({c})" for c in DRUG_KEY)
    rows = conn.exec_driver_sql(f"select distinct {key} from stg_prescriptions").fetchall()
    ndc_products, rxcui_products = ndc.products(conn), rxcui.products()
    out: dict[str, list] = {f"raw_{c}": [] for c in DRUG_KEY}
    for col in ("ingredient", "strength", "strength_unit", "dose_form", "long_acting", "drug_class",
                "drug_parsed", "error", "form_group", "drug_source", "skip_reason"):
        out[col] = []
    for row in rows:
        drug = identify_drug(*row, ndc_products=ndc_products, rxcui_products=rxcui_products)
        for c, v in zip(DRUG_KEY, row):
            out[f"raw_{c}"].append(v)
        for col in ("ingredient", "strength", "strength_unit", "dose_form", "long_acting", "drug_class",
                    "error", "form_group"):
            out[col].append(getattr(drug, col))
        out["drug_parsed"].append(drug.parsed)
        out["drug_source"].append(drug.source)
        out["skip_reason"].append(drug.skip)
    types = {"strength": pa.float64(), "long_acting": pa.bool_(), "drug_parsed": pa.bool_()}
    schema = pa.schema([(c, types.get(c, pa.string())) for c in out])
    table = pa.table(out, schema=schema)
    conn.exec_driver_sql("drop table if exists stg_drugs")
    conn.exec_driver_sql(
        "create temporary table stg_drugs ("
        + ", ".join(f"{c} {'double precision' if t == pa.float64() else 'boolean' if t == pa.bool_() else 'varchar'}"
                    for c, t in zip(schema.names, schema.types)) + ")")
    bulk_insert(conn, "stg_drugs", tuple(schema.names), iter(table.to_batches()), schema)


def _extract_date(conn: sa.Connection, given: dt.date | None, as_of: dt.date, replace: bool) -> dt.date | None:
    """The extract date in force after this load: the one given, else the last fill date (of the staged
    rows that can be read and are not in the future; on an append, of the data already loaded too, and
    never before the extract date already in force). None when there is no fill date at all."""
    if given is not None:
        return given
    staged = conn.execute(sa.text(queries.load("staged_last_fill")), {"as_of": as_of}).scalar()
    dates = [staged]
    if not replace:
        dates.append(conn.execute(sa.text(queries.load("data_bounds"))).one().data_end)
    dates = [d for d in dates if d is not None]
    return max(dates) if dates else None


def _set_extract_date(conn: sa.Connection, extract: dt.date | None, given: bool) -> None:
    """Keep the extract date in force in data_extract (one row): queries/data_bounds.sql reads it."""
    conn.exec_driver_sql("delete from data_extract")
    if extract is not None:
        conn.execute(sa.text("insert into data_extract (extract_date, given) values (:d, :given)"),
                     {"d": extract, "given": given})


def _refuse_empty(conn: sa.Connection, reports: list[TableReport], staged_files: list[_StagedFile],
                  rejects_path: Path, out) -> None:
    """A required table left empty by the load (its file loaded no row, and nothing was there before)
    refuses the whole load (nothing is loaded; the rejects file is still written), with one line saying
    why: a load that 'succeeds' with no prescriptions is never what was meant. An append whose rows were
    all loaded before is not refused."""
    for report, staged in zip(reports, staged_files):
        if not staged.spec.file_required or report.rows_loaded:
            continue
        # The table name is the contract's own constant, never input.
        if conn.exec_driver_sql(f"select count(*) from {staged.spec.name}").scalar_one():
            continue
        if not report.rows_read:
            why = "it has a header and no rows"
        else:
            counts = report.reasons + getattr(report, "skip_reasons", Counter())
            top = ", ".join(f"{n:,} × {code}" for code, n in counts.most_common(3))
            see = f"; see {rejects_path.name}" if report.rows_rejected else ""
            why = f"none of its {counted(report.rows_read, 'row')} ({top}{see})"
        out.flush()
        where = staged.spec.file_name if isinstance(staged, _StagedFile) else staged.label
        raise EmptyRefusal(f"{where}: no row could be loaded, {why}; nothing was loaded")


def _check_and_insert(conn: sa.Connection, staged: _StagedFile, as_of: dt.date, extract: dt.date | None,
                      rejects: csv.writer, max_fill_days: int = MAX_FILL_DAYS) -> TableReport:
    name = staged.spec.name
    sql = queries.load(f"checked_{name}")
    conn.exec_driver_sql(f"drop table if exists chk_{name}")
    statement = sa.text(f"create temporary table chk_{name} as {sql}")
    # DuckDB refuses a parameter the statement does not use; each checked_<table>.sql uses what it needs.
    conn.execute(statement, {k: v for k, v in {"as_of": as_of, "extract_date": extract,
                                               "max_fill_days": max_fill_days}.items()
                             if k in statement._bindparams})
    cols = ", ".join(LOADED_COLUMNS[name])
    # A checked file may skip rows (prescriptions of other drugs: skip_reason); they are neither loaded
    # nor rejected, only counted. The column list is the checked SQL's own, never input.
    skips = "skip_reason" in conn.exec_driver_sql(f"select * from chk_{name} where 1 = 0").keys()
    loaded = "reason_code is null" + (" and skip_reason is null" if skips else "")
    report = TableReport(name, ignored_columns=staged.ignored,
                         file="" if isinstance(staged, _StagedRelation) else staged.label)
    if name == "prescriptions":
        # An order longer than max_fill_days becomes consecutive fills (queries/prescription_fills.sql);
        # the other columns are the checked line's. One checked line is still one row loaded.
        split = ("rx_id", "fill_date", "days_supply", "quantity")
        select = ", ".join(f"f.{c}" if c in split else f"c.{c}" for c in LOADED_COLUMNS[name])
        fills = (f"from (select * from chk_{name} where {loaded}) as c "
                 f"inner join ({queries.load('prescription_fills')}\n) as f on f.line_no = c.line_no")
        params = {"max_fill_days": max_fill_days, "extract_date": extract}
        before = conn.exec_driver_sql(f"select count(*) from {name}").scalar_one()
        conn.execute(sa.text(f"insert into {name} ({cols}) select {select} {fills}"), params)
        report.fills_loaded = conn.exec_driver_sql(f"select count(*) from {name}").scalar_one() - before
        report.orders_split = conn.exec_driver_sql(
            f"select count(case when fills > 1 then 1 end) from chk_{name} where {loaded}").scalar_one()
    else:
        conn.exec_driver_sql(f"insert into {name} ({cols}) select {cols} from chk_{name} where {loaded}")
    report.rows_loaded = conn.exec_driver_sql(f"select count(*) from chk_{name} where {loaded}").scalar_one()
    if name != "prescriptions":
        report.fills_loaded = report.rows_loaded
    for code, n in conn.exec_driver_sql(
            f"select reason_code, count(*) from chk_{name} where reason_code is not null group by reason_code"):
        report.reasons[code] += n
    if skips:
        for code, n in conn.exec_driver_sql(f"select skip_reason, count(*) from chk_{name} "
                                            "where skip_reason is not null group by skip_reason"):
            report.skip_reasons[code] += n
    if staged.malformed:
        report.reasons["malformed_row"] += len(staged.malformed)
    report.rows_rejected = sum(report.reasons.values())
    report.rows_skipped = sum(report.skip_reasons.values())
    report.rows_read = staged.good_rows + len(staged.malformed)
    checked = conn.exec_driver_sql(f"select count(*) from chk_{name}").scalar_one()
    if (checked != staged.good_rows
            or report.rows_loaded + report.rows_skipped + report.rows_rejected != report.rows_read):
        raise LoadError(f"{staged.label}: internal reconciliation failed (read {report.rows_read}, "
                        f"loaded {report.rows_loaded}, skipped {report.rows_skipped}, rejected "
                        f"{report.rows_rejected}); nothing was loaded")
    if isinstance(staged, _StagedRelation):
        skip_column = "skip_reason" if skips else "cast(null as varchar)"
        span = sources.LINE_SPAN
        for file_no, code, skipped, n in conn.exec_driver_sql(
                f"select cast(floor(line_no / {span}) as bigint), reason_code, {skip_column}, count(*) "
                f"from chk_{name} group by 1, 2, 3"):
            loaded_n, skipped_c, rejected_c = report.by_source.setdefault(int(file_no), (0, Counter(), Counter()))
            if code is not None:
                rejected_c[code] += n
            elif skipped is not None:
                skipped_c[skipped] += n
            else:
                report.by_source[int(file_no)] = (loaded_n + n, skipped_c, rejected_c)
    value_rejects = conn.exec_driver_sql(
        f"select line_no, row_id, reason_code, reason from chk_{name} where reason_code is not null order by line_no",
        execution_options={"yield_per": 10_000})
    malformed = ((m.line, m.row_id, "malformed_row", m.reason) for m in staged.malformed)
    for line, row_id, code, reason in heapq.merge(malformed, value_rejects, key=lambda r: r[0]):
        # Ids and reasons quote input text: neutralised so a spreadsheet shows "=HYPERLINK(...)" as text.
        file_name, file_line = staged.locate(line)
        rejects.writerow((file_name, file_line, spreadsheet_safe(row_id or ""), code, spreadsheet_safe(reason)))
    # chk_patients stays until the load ends: a prescription of a rejected patient says so.
    for table in (f"stg_{name}", *((f"chk_{name}",) if name != "patients" else ())):
        conn.exec_driver_sql(f"drop table if exists {table}")
    return report


def open_reader() -> duckdb.DuckDBPyConnection:
    """The in-memory DuckDB connection that reads the CSV files (whatever the target database is)."""
    reader = duckdb.connect()
    reader.execute("set enable_progress_bar = false")
    reader.execute("set memory_limit = '1GB'")  # the reader only streams; spill rather than grow
    return reader


def rebuild_derived(conn: sa.Connection, progress: Progress | None = None) -> None:
    """Rebuild the stored derivations: each patient's record window (patients.window_start, window_end,
    clipped to the first fill and the extract date), then for every factor set daily_dose_segments (every
    patient's daily series), then stored_tapers (every taper, measured from that series with the default parameters), and
    stored_ltot_episodes (episodes of supply; no factor set needed). Queries read these instead of
    recomputing them: the dashboard's pages then answer in a second on a million prescriptions."""
    if progress:
        progress("deriving daily doses", 0, len(FACTOR_SETS))
    conn.exec_driver_sql("delete from daily_dose_segments")
    conn.exec_driver_sql("delete from stored_tapers")
    conn.exec_driver_sql("delete from stored_ltot_episodes")
    segments_sql = queries.load("build_dose_segments", conn.dialect.name)
    tapers_sql = queries.load("build_tapers", conn.dialect.name)
    segment_columns = "factor_set, patient_id, seg_start, seg_end, daily_mme, supplied, dose_known"
    taper_columns = ("factor_set, patient_id, taper_start, baseline_mme, min_window_mme, end_mme, "
                     "max_monthly_reduction_pct, discontinued, stop_day, stop_mme")
    bounds = conn.execute(sa.text(queries.load("data_bounds"))).one()
    conn.execute(sa.text(queries.load("build_record_windows")),
                 {"data_start": bounds.data_start, "data_end": bounds.data_end})
    episode_columns = "patient_id, episode_no, episode_start, episode_end, duration_days, fills, days_supply, is_ltot"
    conn.execute(sa.text(f"insert into stored_ltot_episodes ({episode_columns}) "
                         f"{queries.load('build_ltot_episodes', conn.dialect.name)}"),
                 {"exclude": False, **LtotParams().sql()})
    for i, factor_set in enumerate(FACTOR_SETS):
        if progress and i:
            progress("deriving daily doses", i, len(FACTOR_SETS))
        conn.execute(sa.text(f"insert into daily_dose_segments ({segment_columns}) {segments_sql}"),
                     {"factor_set": factor_set, "exclude": False})
        if bounds.data_start is not None:
            conn.execute(sa.text(f"insert into stored_tapers ({taper_columns}) {tapers_sql}"),
                         {"factor_set": factor_set, "exclude": False,
                          **TaperParams().sql(bounds.data_start, bounds.data_end)})
    if progress:
        progress("deriving daily doses", len(FACTOR_SETS), len(FACTOR_SETS))


def _record(conn: sa.Connection, run_id: str, source: str, replace: bool, strict: bool,
            reports: list[TableReport], extract: dt.date | None, format: str = "contract",
            source_reports: list[SourceReport] | None = None, notes: list[str] | None = None) -> None:
    conn.execute(sa.text("insert into load_runs (run_id, loaded_at, source_dir, replaced, strict_mode, extract_date, "
                         "source_format) values (:run_id, :loaded_at, :source_dir, :replaced, :strict, :extract, "
                         ":format)"),
                 {"run_id": run_id, "loaded_at": dt.datetime.now().replace(microsecond=0),
                  "source_dir": source, "replaced": replace, "strict": strict, "extract": extract,
                  "format": format})
    if source_reports:
        conn.execute(sa.text("insert into load_source_files (run_id, file_no, file_name, feeds, rows_read, "
                             "rows_loaded, rows_skipped, rows_rejected) values (:run_id, :no, :name, :feeds, "
                             ":read, :loaded, :skipped, :rejected)"),
                     [{"run_id": run_id, "no": i, "name": r.name, "feeds": r.feeds, "read": r.rows_read,
                       "loaded": r.rows_loaded, "skipped": r.rows_skipped, "rejected": r.rows_rejected}
                      for i, r in enumerate(source_reports)])
    if notes:
        conn.execute(sa.text("insert into load_notes (run_id, note_no, note) values (:run_id, :no, :note)"),
                     [{"run_id": run_id, "no": i, "note": n} for i, n in enumerate(notes)])
    conn.execute(sa.text("insert into load_counts (run_id, table_name, rows_read, rows_loaded, rows_rejected, "
                         "ignored_columns, rows_skipped) values (:run_id, :table, :read, :loaded, :rejected, "
                         ":ignored, :skipped)"),
                 [{"run_id": run_id, "table": r.table, "read": r.rows_read, "loaded": r.rows_loaded,
                   "rejected": r.rows_rejected, "ignored": ", ".join(r.ignored_columns) or None,
                   "skipped": r.rows_skipped} for r in reports])
    skipped = [{"run_id": run_id, "table": r.table, "code": code, "n": n}
               for r in reports for code, n in sorted(r.skip_reasons.items())]
    if skipped:
        conn.execute(sa.text("insert into load_skip_reasons (run_id, table_name, reason_code, n_rows) "
                             "values (:run_id, :table, :code, :n)"), skipped)
    reasons = [{"run_id": run_id, "table": r.table, "code": code, "n": n}
               for r in reports for code, n in sorted(r.reasons.items())]
    if reasons:
        conn.execute(sa.text("insert into load_reject_reasons (run_id, table_name, reason_code, n_rows) "
                             "values (:run_id, :table, :code, :n)"), reasons)


def load_directory(engine: sa.Engine, directory: Path | str, rejects_path: Path | str = "rejects.csv",
                   replace: bool = False, strict: bool = False, as_of: dt.date | None = None,
                   progress: Progress | None = None, extract_date: dt.date | None = None,
                   max_fill_days: int = MAX_FILL_DAYS) -> LoadReport:
    """Load DIR/{clinics,clinicians,patients,prescriptions,events}.csv; all or nothing on failure.

    as_of: the load date (default today): a fill or birth after it is in the future. extract_date: the day
    the data were extracted, the end of every patient's record unless the patient's own record_end is
    earlier (default: the last fill date, on a --replace load or a first load; on an append, the later of
    that and the extract date already in force). A fill after it is rejected. Raises LoadError (nothing
    loaded) for a file that cannot be read, an extract date after the load date, and a required file of
    which no row could be loaded. max_fill_days: a prescribing order (quantity or days_supply derived
    from units_per_day and end_date, README "Prescribing orders") longer than this becomes consecutive
    fills of at most this many days."""
    return load_source(engine, directory, "contract", rejects_path, replace=replace, strict=strict, as_of=as_of,
                       progress=progress, extract_date=extract_date, max_fill_days=max_fill_days)


def _check_options(as_of: dt.date, extract_date: dt.date | None, max_fill_days: int) -> None:
    if extract_date is not None and extract_date > as_of:
        raise LoadError(f"the extract date {extract_date} is after the load date {as_of}")
    if isinstance(max_fill_days, bool) or not isinstance(max_fill_days, int) or not 1 <= max_fill_days <= 365:
        raise LoadError(f"the longest fill (--max-fill-days) must be a whole number of days from 1 to 365, "
                        f"not {max_fill_days!r}")


def _contract_files(reader: duckdb.DuckDBPyConnection, directory: Path) -> list:
    """Each contract table's file in the folder, checked and counted: `<table>.csv` (_StagedFile) or
    `<table>.parquet` (a file or a folder of part files: analysis.contract_parquet.ParquetTable)."""
    if not directory.is_dir():
        raise LoadError(f"{directory}: not a folder")
    found = []
    for spec in TABLES:
        path, parquet = directory / spec.file_name, contract_parquet.path_for(directory, spec)
        if parquet is not None and path.exists():
            raise LoadError(f"{directory}: holds both {spec.file_name} and {parquet.name}; keep the one to load")
        if parquet is not None:
            found.append((spec, parquet, None))
        elif path.is_file():
            found.append((spec, path, read_header(path, spec)))
        elif spec.file_required:
            raise LoadError(f"{spec.file_name} (or {spec.name}{contract_parquet.SUFFIX}): not found in {directory}")
    return [contract_parquet.read(reader, spec, path) if header is None else _scan(reader, spec, path, header)
            for spec, path, header in found]


def _lake_tables(engine: sa.Engine, uri: str) -> list[contract_parquet.LakeTable]:
    """Each contract table as `<uri>/<table>.parquet`, read by the Spark database itself (a lake the cluster
    reads: s3a://, abfss://, hdfs://, file:/ ...); refused for the other databases, which cannot read it."""
    if engine.dialect.name != "spark":
        raise LoadError(f"{shown_name(uri, 200)}: a folder given as a URI is read by Spark itself; load it into a "
                        "Spark database (--db sc://HOST:PORT or spark://local), or give a local folder")
    with engine.connect() as conn:
        session = conn.connection.driver_connection.session
        tables = []
        for spec in TABLES:
            table = contract_parquet.read_lake(session, spec, uri)
            if table is None and spec.file_required:
                raise LoadError(f"{spec.name}{contract_parquet.SUFFIX}: not found in {shown_name(uri, 200)}")
            if table is not None:
                tables.append(table)
    return tables


def _adapted_relations(reader: duckdb.DuckDBPyConnection, adapted: sources.Adapted) -> list[_StagedRelation]:
    staged = []
    for spec in TABLES:
        table = adapted.tables.get(spec.name)
        if table is None:
            if spec.file_required:
                raise LoadError(f"the {adapted.format} source gives no {spec.name}")
            continue
        rows = reader.execute(f"select count(*) from {table}").fetchall()[0][0]
        staged.append(_StagedRelation(spec, table, int(rows), adapted))
    return staged


def _source_reports(adapted: sources.Adapted, reports: list[TableReport]) -> list[SourceReport]:
    """Each source file's outcome: the adapter's own counts plus its rows' outcomes in the contract checks.
    Refuses the load if any file's rows do not add up (read = loaded + skipped + rejected)."""
    out = []
    for number, f in enumerate(adapted.files):
        r = SourceReport(f.name, f.feeds, f.rows_read, f.rows_used, skip_reasons=Counter(f.skipped),
                         reasons=Counter(f.rejected))
        for table in reports:
            loaded, skipped, rejected = table.by_source.get(number, (0, Counter(), Counter()))
            r.rows_loaded += loaded
            r.skip_reasons.update(skipped)
            r.reasons.update(rejected)
        r.rows_skipped = sum(r.skip_reasons.values())
        r.rows_rejected = sum(r.reasons.values())
        if r.rows_loaded + r.rows_skipped + r.rows_rejected != r.rows_read:
            raise LoadError(f"{f.name}: internal reconciliation failed (read {r.rows_read}, loaded {r.rows_loaded}, "
                            f"skipped {r.rows_skipped}, rejected {r.rows_rejected}); nothing was loaded")
        out.append(r)
    return out


def _write_source_rejects(reader: duckdb.DuckDBPyConnection, adapted: sources.Adapted, writer) -> None:
    """The rows an adapter rejected itself (reader table src_rejects), into the rejects file."""
    exists = reader.execute("select count(*) from duckdb_tables() where table_name = ?",
                            [sources.REJECT_TABLE]).fetchall()[0][0]
    if not exists:
        return
    result = reader.execute(f"select line_no, row_id, reason_code, reason from {sources.REJECT_TABLE} "
                            "order by line_no")
    while rows := result.fetchmany(10_000):
        for line, row_id, code, reason in rows:
            file_name, file_line = adapted.locate(line)
            writer.writerow((file_name, file_line, spreadsheet_safe(row_id or ""), code, spreadsheet_safe(reason or "")))


def _source_read_error(format: str, message: str) -> str:
    """DuckDB's CSV error, said as one line naming the file (DuckDB puts it on a "file = " line) and, for text
    that is not UTF-8, what to do."""
    lines = message.splitlines()
    path = next((x.split("=", 1)[1].strip() for x in lines if x.strip().startswith("file =")), "")
    where = f"{shown_name(Path(path).name)}: " if path else f"the {format} source: "
    line = re.search(r"CSV Error on Line: (\d+)", message)
    at = f" (line {line.group(1)})" if line else ""
    if "not utf-8 encoded" in message.lower() or "invalid unicode" in message.lower():
        return f"{where}not UTF-8 encoded{at}; save the file as UTF-8 and load again"
    return f"{where}cannot be read{at} ({shown_name(lines[0] if lines else message, 200)})"


def load_source(engine: sa.Engine, source: Path | str, format: str = "contract",
                rejects_path: Path | str = "rejects.csv", replace: bool = False, strict: bool = False,
                as_of: dt.date | None = None, progress: Progress | None = None,
                extract_date: dt.date | None = None, max_fill_days: int = MAX_FILL_DAYS,
                schema: str | None = None, roster: Path | str | None = None) -> LoadReport:
    """Load a source of any format (analysis.sources.FORMATS) into the database; all or nothing on failure.

    format "contract": a folder of the data contract's CSV files (load_directory). "omop", "fhir", "pde":
    the adapter in analysis/sources/<format>.py maps the source onto the contract's tables, which are then
    checked and loaded exactly as contract files are; LoadReport.sources gives each source file's rows
    read, loaded, skipped and rejected. schema: the database schema of an OMOP source given as a URL.
    roster: a CSV of clinician_id, clinic_id, clinic_name, specialty assigning the clinicians of a Part D
    source to clinics. The other arguments are load_directory's. Raises LoadError (nothing loaded)."""
    as_of = as_of or dt.date.today()
    _check_options(as_of, extract_date, max_fill_days)
    if format not in sources.FORMATS:
        raise LoadError(f"unknown format {shown_name(str(format))!r}; choose one of {', '.join(sources.FORMATS)}")
    rejects_path = Path(rejects_path)
    reader = open_reader()
    adapted: sources.Adapted | None = None
    try:
        if format == "contract" and contract_parquet.is_lake_uri(str(source)):
            staged_files: list = _lake_tables(engine, str(source))
        elif format == "contract":
            staged_files = _contract_files(reader, Path(source))
        else:
            adapter = importlib.import_module(f"analysis.sources.{format}")
            sources.create_reject_table(reader)
            try:
                adapted = adapter.adapt(source, reader, schema=schema, roster=roster, progress=progress)
            except duckdb.Error as e:
                raise LoadError(_source_read_error(format, str(e))) from None
            except (OSError, EOFError) as e:   # e.g. a .gz file that is not gzip, a file that vanished
                raise LoadError(f"the {format} source cannot be read ({shown_name(str(e), 200)})") from None
            adapted.format = format
            staged_files = _adapted_relations(reader, adapted)
        return _load(engine, reader, staged_files, adapted, str(source), rejects_path, replace, strict, as_of,
                     progress, extract_date, max_fill_days)
    finally:
        reader.close()


def _rebuilt_tables(replace: bool) -> set[str]:
    """The tables a load makes again from nothing: the derived ones, the shipped references and, with
    --replace, the contract's tables (analysis.db.all_or_nothing need not copy them first)."""
    return {*db.DERIVED_TABLES, "ref_drug_classes", "ref_mme_factors",
            *((spec.name for spec in TABLES) if replace else ())}


def _load(engine: sa.Engine, reader: duckdb.DuckDBPyConnection, staged_files: list,
          adapted: sources.Adapted | None, source_label: str, rejects_path: Path, replace: bool, strict: bool,
          as_of: dt.date, progress: Progress | None, extract_date: dt.date | None,
          max_fill_days: int) -> LoadReport:
    run_id = uuid.uuid4().hex[:12]
    rejects_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".rejects-", suffix=".csv", dir=rejects_path.parent)
    reports: list[TableReport] = []
    source_reports: list[SourceReport] = []
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as out:
            # CRLF (RFC 4180) ends the lines: the writer then quotes any CR or LF inside a value.
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(REJECT_COLUMNS)
            try:
                with engine.begin() as conn, db.all_or_nothing(conn, _rebuilt_tables(replace)):
                    db.init_schema(conn)
                    if replace:
                        for spec in reversed(TABLES):
                            conn.exec_driver_sql(f"delete from {spec.name}")
                    _reference_tables(conn)
                    # Every file is staged before any is checked: a patient's checks read the staged
                    # prescriptions (a birth date after the first fill), and the extract date is known.
                    for staged in staged_files:
                        _stage(conn, reader, staged, progress)
                    _resolve_drugs(conn)
                    extract = _extract_date(conn, extract_date, as_of, replace)
                    if adapted is not None:
                        _write_source_rejects(reader, adapted, writer)
                    for i, staged in enumerate(staged_files):
                        if progress:
                            progress("checking tables", i, len(staged_files))
                        reports.append(_check_and_insert(conn, staged, as_of, extract, writer, max_fill_days))
                    if progress:
                        progress("checking tables", len(staged_files), len(staged_files))
                    for table in ["stg_drugs", *(f"{p}_{f.spec.name}" for f in staged_files for p in ("chk", "stg"))]:
                        conn.exec_driver_sql(f"drop table if exists {table}")
                    if adapted is not None:
                        source_reports = _source_reports(adapted, reports)
                    _refuse_empty(conn, reports, staged_files, rejects_path, out)
                    rejected = (sum(r.rows_rejected for r in source_reports) if adapted is not None
                                else sum(r.rows_rejected for r in reports))
                    if strict and rejected:
                        out.flush()
                        raise StrictRefusal(f"--strict: {rejected} row{'s' if rejected != 1 else ''} rejected "
                                        f"(see {rejects_path}); nothing was loaded")
                    _set_extract_date(conn, extract, given=extract_date is not None)
                    rebuild_derived(conn, progress)
                    from analysis import precomputed   # (imports the statistics: only once a load gets here)

                    precomputed.rebuild(conn, progress)
                    _record(conn, run_id, source_label, replace, strict, reports, extract,
                            adapted.format if adapted else "contract", source_reports,
                            adapted.notes if adapted else [])
            except sa.exc.DBAPIError as e:
                raise LoadError(f"database error, nothing was loaded: {str(e.orig).splitlines()[0]}") from e
        os.replace(tmp_name, rejects_path)
    except StrictRefusal:
        os.replace(tmp_name, rejects_path)
        raise
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return LoadReport(run_id, reports, rejects_path, extract, source_reports,
                      adapted.format if adapted else "contract", list(adapted.notes) if adapted else [])
