"""The data contract's tables as Parquet files: `<table>.parquet` in the load's folder, in place of
`<table>.csv`. It is one Parquet file, or a folder of part files (`part-*.parquet`, as Spark, Hive,
Databricks and most lake tools write a table; files whose names start with `_` or `.` such as `_SUCCESS`
are not data and are left out).

Parquet columns are typed and the contract's checks read text (queries/checked_<table>.sql), so each
column becomes the text a CSV file would hold (README "Parquet files"):

- text, whole and decimal numbers, booleans (true/false) as they are; a date as YYYY-MM-DD;
- a timestamp as its date (YYYY-MM-DD; a fill or event is dated by its day, as the contract's columns are);
- a NULL as a blank field, which the checks then treat as a CSV's blank field;
- any other type (lists, structs, binary) refuses the load naming the column, as a CSV missing it would.

Column names match the contract's in any case, ignoring surrounding spaces. The names come from the file
and never enter SQL: the reader addresses each column by its position (`#n`). A row is located in the
rejects file by its part file and its row number in that file (1-based): line_no is
`file number × sources.LINE_SPAN + row`, as a source adapter's rows are.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.errors import LoadError
from analysis.sources import LINE_SPAN

if TYPE_CHECKING:  # ingest imports this module
    from analysis.ingest import TableSpec

SUFFIX = ".parquet"
# One part file, its folders' names not read as columns (a hive partition key is not a contract column).
_READ = "from read_parquet($f, hive_partitioning = false)"

# DuckDB's names of the Parquet types a contract column may have, and the SQL (over the positional
# reference {c}) that gives the text a CSV file would hold.
_TEXT = "cast({c} as varchar)"
_AS_TEXT = {
    "VARCHAR": _TEXT, "BOOLEAN": _TEXT, "DATE": _TEXT,
    "TINYINT": _TEXT, "SMALLINT": _TEXT, "INTEGER": _TEXT, "BIGINT": _TEXT, "HUGEINT": _TEXT,
    "UTINYINT": _TEXT, "USMALLINT": _TEXT, "UINTEGER": _TEXT, "UBIGINT": _TEXT,
    "FLOAT": _TEXT, "DOUBLE": _TEXT,
    "TIMESTAMP": "cast(cast({c} as date) as varchar)", "TIMESTAMP_S": "cast(cast({c} as date) as varchar)",
    "TIMESTAMP_MS": "cast(cast({c} as date) as varchar)", "TIMESTAMP_NS": "cast(cast({c} as date) as varchar)",
    "TIMESTAMP WITH TIME ZONE": "cast(cast({c} as date) as varchar)",
    "\"NULL\"": _TEXT,
}


def _as_text(duckdb_type: str) -> str | None:
    if duckdb_type.startswith("DECIMAL("):
        return _TEXT
    return _AS_TEXT.get(duckdb_type)


@dataclass
class ParquetPart:
    """One Parquet file of a table: where the contract's columns are in it (1-based positions; None when
    the file lacks an optional one) and the SQL making each text."""

    path: Path
    rows: int
    positions: dict[str, int | None]
    texts: dict[str, str]
    width: int                       # the file's number of columns


@dataclass
class ParquetTable:
    """A contract table given as Parquet: its part files in order, their rows, and the columns ignored."""

    spec: TableSpec
    path: Path
    parts: list[ParquetPart]
    ignored: tuple[str, ...] = ()
    malformed: list = field(default_factory=list)   # Parquet rows are never malformed: it is typed

    @property
    def good_rows(self) -> int:
        return sum(p.rows for p in self.parts)

    @property
    def label(self) -> str:
        return self.path.name

    def locate(self, line: int) -> tuple[str, int]:
        """(the part file as named under the load's folder, row number within it) of a line_no."""
        number, row = divmod(int(line), LINE_SPAN)
        part = self.parts[number].path
        return (self.path.name if part == self.path else f"{self.path.name}/{part.relative_to(self.path)}"), row


def path_for(directory: Path, spec: TableSpec) -> Path | None:
    """`<table>.parquet` in the folder (a file or a folder of part files), or None."""
    path = directory / f"{spec.name}{SUFFIX}"
    return path if path.exists() else None


def _part_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob(f"*{SUFFIX}")
                   if p.is_file() and not any(x.startswith(("_", ".")) for x in p.relative_to(path).parts))
    if not files:
        raise LoadError(f"{path.name}: a folder with no Parquet part files (*.parquet) in it")
    return files


def _matched(label: str, written: list[str], spec: TableSpec) -> list[str]:
    """A file's column names as matched to the contract's (trimmed, lower case), in the file's order; LoadError
    naming the file for a name that appears twice or a required column that is missing."""
    from analysis.ingest import shown_name

    names = [c.strip().lower() for c in written]
    duplicated = sorted({c for c in names if names.count(c) > 1})
    if duplicated:
        raise LoadError(f"{label}: column {', '.join(map(shown_name, duplicated))} appears more than once "
                        "(names are matched in any case)")
    missing = [c for c in spec.required if c not in names]
    if missing:
        has = ", ".join(shown_name(c, 40) for c in names[:30]) + (", …" if len(names) > 30 else "")
        raise LoadError(f"{label}: missing required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                        f"(columns: {shown_name(has, 400)})")
    return names


def read(reader: duckdb.DuckDBPyConnection, spec: TableSpec, path: Path) -> ParquetTable:
    """The table's part files, each file's columns matched to the contract's, and its row count (from the
    Parquet footer). Raises LoadError (one line naming the file) for a file that is not Parquet, a column
    that appears twice, a required column missing from a file, or a column of a type no CSV field holds."""
    from analysis.ingest import shown_name

    parts, ignored = [], {}
    for file in _part_files(path):
        name = path.name if file == path else f"{path.name}/{file.relative_to(path)}"
        try:
            described = reader.execute(f"describe select * {_READ}", {"f": str(file)}).fetchall()
            rows = reader.execute("select coalesce(sum(num_rows), 0) from parquet_file_metadata($f)",
                                  {"f": str(file)}).fetchall()[0][0]
        except duckdb.Error as e:
            raise LoadError(f"{shown_name(name)}: cannot be read as Parquet "
                            f"({shown_name(str(e).splitlines()[0], 200)})") from None
        try:
            # The names as written: DuckDB renames a second "a" or "A" to "a_1", which would hide the clash.
            written = pq.read_schema(file).names
        except (pa.ArrowException, OSError) as e:
            raise LoadError(f"{shown_name(name)}: cannot be read as Parquet ({shown_name(str(e), 200)})") from None
        names = _matched(shown_name(name), written, spec)
        columns = [(c, str(d[1])) for c, d in zip(names, described, strict=True)]
        positions: dict[str, int | None] = {}
        texts: dict[str, str] = {}
        for column in spec.columns:
            if column not in names:
                positions[column] = None
                continue
            position = names.index(column) + 1
            kind = columns[position - 1][1]
            sql = _as_text(kind)
            if sql is None:
                raise LoadError(f"{shown_name(name)}: column {column} is of Parquet type {shown_name(kind, 60)}; "
                                "the contract's columns are text, numbers, booleans, dates or timestamps")
            positions[column] = position
            texts[column] = sql.format(c=f"#{position}")
        for c in names:
            if c not in spec.columns:
                ignored.setdefault(shown_name(c) if c else "(a column with no name)", None)
        parts.append(ParquetPart(file, int(rows), positions, texts, len(names)))
    return ParquetTable(spec, path, parts, tuple(ignored))


def batches(reader: duckdb.DuckDBPyConnection, table: ParquetTable, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of every part file in order, as the staging table takes them: line_no, then every contract
    column as text (blank for NULL or for a column the file lacks)."""
    names = ["line_no", *table.spec.columns]
    for number, part in enumerate(table.parts):
        # The row's number in the file: DuckDB's ordinality, the column after the file's own.
        line = f"cast({number} as bigint) * {LINE_SPAN} + #{part.width + 1}"
        select = ", ".join(f"coalesce({part.texts[c]}, '')" if part.positions[c] else "''" for c in table.spec.columns)
        result = reader.sql(f"select {line}, {select} {_READ} with ordinality", params={"f": str(part.path)})
        for batch in result.to_arrow_reader(batch_rows):
            yield pa.RecordBatch.from_arrays(batch.columns, names=names)


# --- Parquet in the lake, read by Spark itself -------------------------------------------------------------
# `rxdash load s3a://bucket/extract --db sc://...`: the folder is a URI that the Spark cluster reads (s3a://,
# abfss://, gs://, hdfs://, dbfs:/, file:/); the rows never pass through rxdash. The same rules as above, in
# Spark's terms: the types that become text, NULL as blank, a timestamp as its date (the session is in UTC),
# and each row located by its part file (Spark's _metadata.file_path) and row (_metadata.row_index + 1).

# A scheme of two letters or more: a Windows drive (C:/) is a local folder.
LAKE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")

_SPARK_TEXT = {"string", "boolean", "date", "tinyint", "smallint", "int", "bigint", "float", "double", "void"}
_SPARK_DATED = {"timestamp", "timestamp_ntz"}


def is_lake_uri(source: str) -> bool:
    """True for a folder given as a URI (s3a://..., file:/...), which only Spark reads."""
    return bool(LAKE_URI.match(source))


@dataclass
class LakeTable:
    """A contract table as Parquet at a URI, read by the Spark session: the frame of its rows as text with
    line_no (not yet run), its part files in order, rows and columns ignored."""

    spec: TableSpec
    uri: str
    frame: object                       # a pyspark DataFrame: line_no, then the contract's columns as text
    files: list[str]
    good_rows: int
    ignored: tuple[str, ...] = ()
    malformed: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.spec.name}{SUFFIX}"

    def locate(self, line: int) -> tuple[str, int]:
        number, row = divmod(int(line), LINE_SPAN)
        file = self.files[number]
        root = self.uri.rstrip("/")
        tail = file.split(f"/{self.label}/", 1)[1] if f"/{self.label}/" in file else file.rsplit("/", 1)[-1]
        return f"{self.label}/{tail}" if file.rstrip("/") != root else self.label, row


def read_lake(session, spec: TableSpec, folder: str) -> LakeTable | None:
    """`<folder>/<table>.parquet` as Spark reads it, or None when there is none. Raises LoadError for a
    column that appears twice (in any case), a missing required column or a type no CSV field holds."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    from analysis.ingest import shown_name

    uri = f"{folder.rstrip('/')}/{spec.name}{SUFFIX}"
    try:
        frame = session.read.parquet(uri)
        fields = frame.schema.fields
    except AnalysisException as e:
        if "PATH_NOT_FOUND" in str(e):
            return None
        raise LoadError(f"{spec.name}{SUFFIX}: cannot be read as Parquet by Spark "
                        f"({shown_name(str(e).splitlines()[0], 200)})") from None
    label = f"{spec.name}{SUFFIX}"
    names = _matched(label, [f.name for f in fields], spec)
    # Columns renamed by position (c0, c1, ...) so that no name from the file is ever parsed as an expression.
    positional = frame.toDF(*[f"c{i}" for i in range(len(fields))])
    texts = []
    for column in spec.columns:
        if column not in names:
            texts.append(F.lit("").alias(column))
            continue
        i = names.index(column)
        kind = fields[i].dataType.simpleString()
        value = F.col(f"c{i}")
        if kind in _SPARK_DATED:
            value = value.cast("date")
        elif kind not in _SPARK_TEXT and not kind.startswith("decimal("):
            raise LoadError(f"{label}: column {column} is of Parquet type {shown_name(kind, 60)}; the contract's "
                            "columns are text, numbers, booleans, dates or timestamps")
        texts.append(F.coalesce(value.cast("string"), F.lit("")).alias(column))
    located = positional.select("*", F.col("_metadata.file_path").alias("rx_file"),
                                F.col("_metadata.row_index").alias("rx_row"))
    counts = sorted((r["rx_file"], r["n"]) for r in located.groupBy("rx_file").agg(F.count("*").alias("n")).collect())
    files = [f for f, _ in counts]
    numbers = session.createDataFrame([(f, i) for i, f in enumerate(files)], "rx_file string, rx_file_no bigint")
    line_no = (F.col("rx_file_no") * F.lit(LINE_SPAN) + F.col("rx_row") + F.lit(1)).cast("bigint").alias("line_no")
    staged = located.join(F.broadcast(numbers), "rx_file").select(line_no, *texts)
    ignored = tuple(dict.fromkeys(shown_name(c) if c else "(a column with no name)" for c in names
                                  if c not in spec.columns))
    return LakeTable(spec, uri, staged, files, int(sum(n for _, n in counts)), ignored)


def stage_lake(table: LakeTable, target: str) -> None:
    """Append the table's rows, as text with line_no, to the staging table `target` (our own name) in the
    session's current database: Spark reads the files and writes the rows; none reach rxdash."""
    from analysis.ingest import shown_name

    try:
        table.frame.write.insertInto(target)
    except Exception as e:   # pyspark's errors: one line naming the table, never a JVM stack
        raise LoadError(f"{table.label}: Spark could not read it ({shown_name(str(e).strip().splitlines()[0], 200)})"
                        ) from None
