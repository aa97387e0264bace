"""Source formats: adapters that map a standard data shape onto the data contract's tables.

`rxdash load SOURCE --format contract|omop|fhir|pde`. The contract (a folder of our CSV files) is read by
analysis.ingest itself; every other format has one module here (omop.py, fhir.py, pde.py) with a function

    adapt(source, reader, *, schema=None, roster=None, progress=None) -> Adapted

that reads the source with the loader's in-memory DuckDB connection `reader` and leaves, for each contract
table it can fill, a table in `reader` holding one row per source row meant for that table: `line_no`
(BIGINT, see `line_no`) and the contract table's columns (all VARCHAR, blank or NULL where the source has
nothing). progress(label, done, total), when given, may be called as the source is read (the command
line draws it as a progress bar). The loader then stages, checks and inserts those rows exactly as it does a contract CSV file
(queries/checked_<table>.sql): an adapter maps, it never validates; a value the source holds in the wrong
shape reaches the checks unchanged and is rejected there with its reason.

What an adapter decides itself it counts per source file (SourceFile): rows used without a contract row of
their own (an observation period becomes a patient's record window, a condition a patient's flag), rows
skipped with a reason ("inpatient administration", "not a condition the measures use") and rows rejected
with a reason (a malformed NDJSON line, a resource without a subject), the last also as rows of the table
`src_rejects` in `reader` (line_no, row_id, reason_code, reason) so that they reach the rejects file. For every
source file, rows read = loaded + skipped + rejected, where loaded counts the rows used and the rows of
the contract tables that loaded.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import duckdb

# line_no = file number × LINE_SPAN + the row's line (or entry) within that file, so that one BIGINT names
# both; LINE_SPAN leaves room for ten thousand million lines a file and 900 million files.
LINE_SPAN = 10_000_000_000

FORMATS = ("contract", "omop", "fhir", "pde")

REJECT_TABLE = "src_rejects"

# The source "file" of the rows an adapter adds that no source row stands for, and the clinic of clinicians
# whose source names none (README "Source formats").
ADDED = "(added by rxdash)"
UNASSIGNED = "Unassigned"


def line_no(file_no: int, line: int) -> int:
    """The line_no of row `line` (1-based line or entry number) of source file number `file_no` (0-based)."""
    return file_no * LINE_SPAN + line


def sql_line_no(file_no: int, line_expr: str) -> str:
    """The SQL for line_no of a row whose line within file `file_no` is the SQL expression `line_expr`.
    file_no is our own integer, never input."""
    return f"(cast({int(file_no)} as bigint) * {LINE_SPAN} + cast({line_expr} as bigint))"


@dataclass
class SourceFile:
    """One file (or database table) of a source: its name as the user knows it, rows read, and the rows
    the adapter settled itself (used, skipped by reason, rejected by reason). The rows it passed on to a
    contract table are settled by the load's checks; LoadReport.sources adds them up."""

    name: str
    rows_read: int = 0
    rows_used: int = 0
    skipped: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    # What the file gives, for the load's summary: e.g. "prescriptions", "patients (record windows)".
    feeds: str = ""


@dataclass
class Adapted:
    """What an adapter leaves in the reader: contract table -> the reader table holding its rows, the
    source files in the order their numbers are encoded in line_no, and notes for the load's summary
    (one plain line each, e.g. "no CARE_SITE rows: every clinician is in the clinic Unassigned")."""

    tables: dict[str, str]
    files: list[SourceFile]
    notes: list[str] = field(default_factory=list)
    format: str = ""

    def locate(self, line_no_value: int) -> tuple[str, int]:
        """(source file name, line within it) of a line_no."""
        file_no, line = divmod(int(line_no_value), LINE_SPAN)
        return self.files[file_no].name, line


def create_reject_table(reader: duckdb.DuckDBPyConnection) -> None:
    """The table an adapter writes the rows it rejects itself into."""
    reader.execute(f"create or replace table {REJECT_TABLE} (line_no bigint, row_id varchar, "
                   "reason_code varchar, reason varchar)")


def contract_table(reader: duckdb.DuckDBPyConnection, name: str, columns: tuple[str, ...], select_sql: str,
                   params: dict | None = None) -> str:
    """Create reader table src_<name> (line_no, *columns as VARCHAR) from `select_sql`, which returns line_no
    and those columns in that order. Returns the table's name."""
    table = f"src_{name}"
    casts = ", ".join(f"cast({c} as varchar) as {c}" for c in columns)
    reader.execute(f"create or replace table {table} as select cast(line_no as bigint) as line_no, {casts} "
                   f"from ({select_sql}) as mapped", params or {})
    return table
