"""rxdash's SQL (written for DuckDB and PostgreSQL) carried over to Spark SQL with sqlglot.

One set of SQL files serves every engine (README "Apache Spark"). sqlglot (a maintained SQL parser and
transpiler) does the dialect work: types (varchar -> STRING), functions, regular expressions (`~` ->
RLIKE), generate_series. What it cannot know without the tables' column types is date arithmetic, where
Spark differs from both other engines: `date - date` is an interval in Spark (a whole number of days in
DuckDB and PostgreSQL), and `date + n` needs an INT n. So each statement is resolved against the
schema (queries/schema.sql, and for the loader's scratch tables their columns as Spark holds them), its
expressions typed (sqlglot's type annotator), and then:
- date - date        -> DATEDIFF(a, b)                (days, as in DuckDB and PostgreSQL)
- date +/- n         -> DATE_ADD(date, [-]CAST(n AS INT))
- CREATE TEMPORARY TABLE -> CREATE TABLE              (Spark has temporary views only; a view would
                                                       re-run the loader's checks at every read)
- DELETE FROM t (no WHERE) -> TRUNCATE TABLE t        (Parquet tables have no row-level DELETE)
- FROM generate_series(a, b) AS g(i) -> FROM EXPLODE(SEQUENCE(a, b)) AS g(i)
- a common table expression read more than once -> a scratch table made first, read by the statement,
                                   dropped after it. Spark plans such a CTE again at every reference, so
                                   the taper rules (CTEs read by CTEs read 7 or 8 times) took minutes to
                                   plan; DuckDB and PostgreSQL materialise them themselves.
- a = NOT b                      -> a = (NOT b)
- UPDATE t SET c = e [WHERE w]  -> the table rewritten: its rows with the new values into a scratch table,
                                   then INSERT OVERWRITE t from it (Parquet tables have no UPDATE either)
Bound parameters stay `:name` markers (Spark's own); no value is ever written into the text.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Callable

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.annotate_types import TypeAnnotator
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

import queries

READ = "postgres"    # the SQL files run on PostgreSQL as written; sqlglot reads them as PostgreSQL
WRITE = "spark"
# Text that starts with this runs on Spark as written (queries/<name>.spark.sql overrides).
NATIVE = "/* spark sql */"   # (analysis.spark.NATIVE_SQL, which cannot import this module's sqlglot)
# Functions of queries/functions.spark.sql and their result types: the annotator cannot see inside them.
FUNCTION_TYPES = {"rx_parse_date": "DATE", "rx_parse_number": "DOUBLE", "rx_parse_whole": "INT",
                  "rx_parse_bool": "BOOLEAN"}
# Parameters that are dates wherever the SQL files use them (bound from datetime.date values).
DATE_PARAMETERS = {"as_of", "extract_date", "data_start", "data_end", "start", "end", "d"}

# Stands for a per-execution token in scratch table names (analysis.spark.Cursor replaces it).
MARK = "rxmark"
_INTS = exp.DataType.INTEGER_TYPES
_DATE = exp.DType.DATE

TableLookup = Callable[[str], "dict[str, str] | None"]


@functools.lru_cache(maxsize=1)
def base_schema() -> dict[str, dict[str, str]]:
    """Column types of the contract's tables, from queries/schema.sql: {table: {column: type}}."""
    tables: dict[str, dict[str, str]] = {}
    for statement in queries.statements("schema"):
        node = sqlglot.parse_one(statement, read=READ)
        if isinstance(node, exp.Create) and isinstance(node.this, exp.Schema):
            tables[node.this.this.name] = {c.name: c.args["kind"].sql(READ) for c in node.this.expressions
                                           if isinstance(c, exp.ColumnDef)}
        elif isinstance(node, exp.Alter):   # alter table ... add column if not exists
            for action in node.args.get("actions") or []:
                if isinstance(action, exp.ColumnDef):
                    tables.setdefault(node.this.name, {})[action.name] = action.args["kind"].sql(READ)
    return tables


def _binary_coercions() -> dict:
    """The annotator's rules plus date arithmetic as DuckDB and PostgreSQL do it: date - date is a whole
    number of days, date +/- a whole number is a date."""
    rules = dict(TypeAnnotator.BINARY_COERCIONS)
    rules[(_DATE, _DATE)] = lambda l, r: exp.DType.INT
    for t in (*_INTS, exp.DType.UNKNOWN):
        rules[(_DATE, t)] = lambda l, r: _DATE
        rules[(t, _DATE)] = lambda l, r: _DATE
        # n * interval '1 month' is an interval (months), never a number of days
        rules[(t, exp.DType.INTERVAL)] = lambda l, r: exp.DType.INTERVAL
        rules[(exp.DType.INTERVAL, t)] = lambda l, r: exp.DType.INTERVAL
    return rules


_COERCIONS = _binary_coercions()


def _is(node: exp.Expr, dtype: exp.DType) -> bool:
    return node.type is not None and node.type.this == dtype


def _is_interval(node: exp.Expr) -> bool:
    # An interval, or arithmetic on one (i * :months * interval '1 month'): Spark adds it to a date itself.
    return (isinstance(node, exp.Interval) or _is(node, exp.DType.INTERVAL)
            or (isinstance(node, (exp.Mul, exp.Paren, exp.Neg)) and node.find(exp.Interval) is not None))


def _as_int(node: exp.Expr) -> exp.Expr:
    return node if _is(node, exp.DType.INT) else exp.Cast(this=node.copy(), to=exp.DataType.build("INT"))


def _date_arithmetic(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Sub) and _is(node.this, _DATE) and _is(node.expression, _DATE):
        out = exp.Anonymous(this="DATEDIFF", expressions=[node.this.copy(), node.expression.copy()])
        out.type = exp.DType.INT
        return out
    if isinstance(node, (exp.Add, exp.Sub)) and not (_is_interval(node.this) or _is_interval(node.expression)):
        if _is(node.this, _DATE):
            date, days = node.this, node.expression
        elif isinstance(node, exp.Add) and _is(node.expression, _DATE):
            date, days = node.expression, node.this
        else:
            return node
        days = _as_int(days)
        if isinstance(node, exp.Sub):
            days = exp.Neg(this=days)
        out = exp.Anonymous(this="DATE_ADD", expressions=[date.copy(), days])
        out.type = _DATE
        return out
    return node


def _generate_series(node: exp.Expr) -> exp.Expr:
    # FROM generate_series(a, b) AS g(i): sqlglot's Spark output (EXPLODE(..., _u(g))) is not valid Spark.
    if isinstance(node, exp.Table) and isinstance(node.this, exp.ExplodingGenerateSeries):
        series = node.this
        sequence = exp.Anonymous(this="SEQUENCE", expressions=[series.args["start"].copy(), series.args["end"].copy()])
        return exp.Table(this=exp.Anonymous(this="EXPLODE", expressions=[sequence]),
                         alias=node.args.get("alias").copy() if node.args.get("alias") else None)
    return node


def _not_operand(node: exp.Expr) -> exp.Expr:
    # `a = NOT b` reads as NOT a column in Spark: a NOT inside a comparison or arithmetic is parenthesised.
    if isinstance(node, exp.Not) and isinstance(node.parent, exp.Binary) and not isinstance(node.parent, exp.Connector):
        return exp.Paren(this=node.copy())
    return node


def _typed_functions_and_parameters(node: exp.Expr) -> exp.Expr:
    # Give the annotator the types it cannot infer: our parsing functions' results and date parameters.
    if isinstance(node, exp.Anonymous) and node.name.lower() in FUNCTION_TYPES and not isinstance(node.parent, exp.Cast):
        return exp.Cast(this=node.copy(), to=exp.DataType.build(FUNCTION_TYPES[node.name.lower()]))
    if isinstance(node, exp.Placeholder) and node.name in DATE_PARAMETERS and not isinstance(node.parent, exp.Cast):
        return exp.Cast(this=node.copy(), to=exp.DataType.build("DATE"))
    return node


def _tables(node: exp.Expr) -> set[str]:
    ctes = {c.alias_or_name for c in node.find_all(exp.CTE)}
    return {t.name for t in node.find_all(exp.Table) if t.name and t.name not in ctes}


@dataclass(frozen=True)
class Translation:
    """Spark statements for one statement: before (make scratch tables), main (the result), after (drop
    them). Scratch table names hold MARK, for the caller to make unique per execution."""
    before: list[str]
    main: str
    after: list[str]

    def marked(self, token: str) -> Translation:
        return Translation([s.replace(MARK, token) for s in self.before], self.main.replace(MARK, token),
                           [s.replace(MARK, token) for s in self.after])


# Translations by statement text: each distinct statement is typed and transpiled once per process.
_translated: dict[str, Translation] = {}
_translated_lock = threading.Lock()


def to_spark(sql: str, lookup: TableLookup | None = None) -> Translation:
    """One statement as the Spark SQL statements that do it: `main` (whose rows are the result), after
    `before` (scratch tables it reads) and followed by `after` (dropping them, also when main fails).
    lookup(table) gives {column: type} of a table queries/schema.sql does not declare (the loader's stg_
    and chk_ tables), or None. Raises sqlglot.errors.ParseError for text that is not one SQL statement."""
    if sql.lstrip().startswith(NATIVE):
        return Translation([], sql, [])
    with _translated_lock:
        done = _translated.get(sql)
    if done is not None:
        return done
    node = sqlglot.parse_one(sql, read=READ)
    if isinstance(node, exp.Delete) and not node.args.get("where"):
        out = Translation([], f"TRUNCATE TABLE {node.this.sql(WRITE)}", [])
    elif isinstance(node, exp.Update):
        out = _update(node, lookup)
    else:
        if isinstance(node, exp.Create):
            props = node.args.get("properties")
            if props:
                kept = [p for p in props.expressions if not isinstance(p, exp.TemporaryProperty)]
                node.set("properties", exp.Properties(expressions=kept) if kept else None)
        if node.find(exp.Select):
            node = _typed(node, lookup)
        node = node.transform(_generate_series).transform(_not_operand)
        out = _materialised(node)
    with _translated_lock:
        _translated[sql] = out
    return out


def _materialised(node: exp.Expr) -> Translation:
    """The statement, with each CTE it reads more than once made a scratch table first (and dropped
    after). The scratch names carry MARK, replaced per execution (analysis.spark.Cursor) so that two
    sessions running the same query never share one."""
    query = node.expression if isinstance(node, (exp.Insert, exp.Create)) else node
    with_ = query.args.get("with_") if isinstance(query, exp.Query) else None
    if with_ is None or with_.args.get("recursive"):
        return Translation([], node.sql(WRITE), [])
    ctes = list(with_.expressions)
    names = [c.alias_or_name for c in ctes]
    refs = {n: 0 for n in names}
    for table in node.find_all(exp.Table):
        if table.name in refs and not table.args.get("db"):
            refs[table.name] += 1
    shared = [n for n in names if refs[n] > 1]
    if not shared:
        return Translation([], node.sql(WRITE), [])
    scratch = {n: f"rx_cte_{MARK}_{n}" for n in shared}

    def renamed(tree: exp.Expr) -> exp.Expr:
        def swap(t: exp.Expr) -> exp.Expr:
            if isinstance(t, exp.Table) and t.name in scratch and not t.args.get("db"):
                alias = t.args.get("alias") or exp.TableAlias(this=exp.to_identifier(t.name))
                return exp.Table(this=exp.to_identifier(scratch[t.name]), alias=alias.copy())
            return t
        return tree.transform(swap)

    before, after, kept = [], [], []
    for cte in ctes:
        name = cte.alias_or_name
        if name in scratch:
            body = renamed(cte.this.copy())
            if kept and isinstance(body, exp.Query):   # the earlier CTEs it may read
                body.set("with_", exp.With(expressions=[k.copy() for k in kept]))
            before.append(f"DROP TABLE IF EXISTS {scratch[name]}")
            before.append(f"CREATE TABLE {scratch[name]} AS {body.sql(WRITE)}")
            after.append(f"DROP TABLE IF EXISTS {scratch[name]}")
        else:
            kept.append(renamed(cte.copy()))
    if kept:
        query.set("with_", exp.With(expressions=kept))
    else:
        query.set("with_", None)
    node = renamed(node)
    return Translation(before, node.sql(WRITE), after)


def _update(node: exp.Update, lookup: TableLookup | None) -> Translation:
    """UPDATE t SET c = e, ... [WHERE w] as a rewrite of t: Spark cannot overwrite a table it reads in the
    same statement, so the new rows go to a scratch table first."""
    if node.args.get("from_") or node.args.get("from"):
        raise sqlglot.errors.ParseError("UPDATE ... FROM has no Spark form here")
    table = node.this.name
    columns = list((lookup(table) if lookup else None) or base_schema()[table])
    where = node.args.get("where")
    sets = {e.this.name: e.expression for e in node.expressions}
    select = []
    for column in columns:
        if column not in sets:
            select.append(column)
        elif where is not None:
            select.append(f"CASE WHEN {where.this.sql(READ)} THEN {sets[column].sql(READ)} ELSE {column} END AS {column}")
        else:
            select.append(f"{sets[column].sql(READ)} AS {column}")
    scratch = f"rx_update_{MARK}_{table}"
    rows = to_spark(f"select {', '.join(select)} from {table}", lookup).main
    return Translation([f"DROP TABLE IF EXISTS {scratch}", f"CREATE TABLE {scratch} AS {rows}"],
                       f"INSERT OVERWRITE TABLE {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM {scratch}",
                       [f"DROP TABLE IF EXISTS {scratch}"])


def _typed(node: exp.Expr, lookup: TableLookup | None) -> exp.Expr:
    schema_tables = dict(base_schema())
    for name in _tables(node):
        if name not in schema_tables and lookup is not None:
            columns = lookup(name)
            if columns:
                schema_tables[name] = columns
    schema = MappingSchema(schema_tables, dialect=READ)
    node = node.transform(_typed_functions_and_parameters)
    target = node
    # qualify and annotate the query part; an INSERT's or CTAS's target is not a source
    if isinstance(node, (exp.Insert, exp.Create)) and isinstance(node.expression, exp.Query):
        target = node.expression
    try:
        qualified = qualify(target.copy(), schema=schema, dialect=READ, validate_qualify_columns=False,
                            quote_identifiers=False, identify=False)
        TypeAnnotator(schema=schema, binary_coercions=_COERCIONS).annotate(qualified)
    except sqlglot.errors.SqlglotError:
        return node   # left as written: Spark then names any date arithmetic it cannot do
    # Innermost first (a breadth-first list reversed), so an outer expression sees its rewritten parts.
    for arithmetic in reversed(list(qualified.find_all(exp.Add, exp.Sub))):
        rewritten = _date_arithmetic(arithmetic)
        if rewritten is not arithmetic:
            arithmetic.replace(rewritten)
    if target is node:
        return qualified
    node.set("expression", qualified)
    return node
