"""Hostile input files: a header never becomes SQL, every malformed file ends in loaded + rejected = read
or one plain refusal, and the database is unchanged after any refusal.

The set (tests/hostile.py and below): SQL in header names of every contract file, header shapes (an
empty name, a quote in a name, a header over the line limit, NUL bytes), line ends (LF, CRLF, CR only,
line breaks inside quoted fields), non-finite and oversized numbers, and spreadsheet formulas in ids.
Every load runs on DuckDB and on PostgreSQL (the `engine` fixture).
"""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import sqlalchemy as sa

from analysis import ingest
from dashboard import cli
from tests.fixtures import HEADERS, OXY10, read_rejects, write_dataset
from tests.hostile import FORMULA_NAMES, header_payloads

AS_OF = dt.date(2026, 1, 1)
SECRET = "rxdash-secret-7f3a9"   # what the payloads try to read into an error message or the database

# The fixture's four prescriptions (tests/fixtures.py), as lines of prescriptions.csv.
RX_HEADER = ",".join(HEADERS["prescriptions"])
RX_GOOD = ["R1,P1,D1,2025-01-01," + OXY10 + ",,,,,60,30,",
           "R2,P1,D1,2025-01-31," + OXY10 + ",,,,,60,30,"]


def snapshot(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every row of every contract table and of the load history: 'unchanged' means equal snapshots."""
    with engine.connect() as conn:
        return {t: sorted(map(tuple, conn.exec_driver_sql(f"select * from {t}").all()), key=repr)
                for t in [*(s.name for s in ingest.TABLES), "load_runs", "stored_tapers"]}


def load(engine, folder, tmp_path, **kw):
    return ingest.load_directory(engine, folder, tmp_path / "rejects.csv", as_of=AS_OF, **kw)


def reconciled(report: ingest.LoadReport) -> None:
    for t in report.tables:
        assert t.rows_loaded + t.rows_rejected == t.rows_read, t


def csv_text(header: list[str], rows: list[list[str]], newline: str = "\n") -> str:
    out = io.StringIO()
    # Every field quoted: a CR in a value is then data, not a line end.
    csv.writer(out, lineterminator=newline, quoting=csv.QUOTE_ALL).writerows([header, *rows])
    return out.getvalue()


def refusal(engine, tmp_path, clinics_csv: bytes) -> str:
    """Load a good data set, then one whose clinics.csv is `clinics_csv` with --replace: the refusal's
    message, after checking it is one line and the database is exactly as the first load left it."""
    load(engine, write_dataset(tmp_path / "first"), tmp_path)
    before = snapshot(engine)
    folder = write_dataset(tmp_path / "d")
    (folder / "clinics.csv").write_bytes(clinics_csv)
    with pytest.raises(ingest.LoadError) as err:
        load(engine, folder, tmp_path, replace=True)
    assert snapshot(engine) == before
    message = str(err.value)
    assert "\n" not in message and "\r" not in message and len(message) < 600
    return message


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


# --- 1. A header never becomes SQL ------------------------------------------------------------------

@pytest.mark.parametrize("table", list(HEADERS))
def test_sql_in_header_names_of_every_file_is_only_an_ignored_column(engine, tmp_path, table, secret_file):
    copy_target = tmp_path / "written-by-payload.csv"
    payloads = header_payloads(secret_file, copy_target)
    folder = write_dataset(tmp_path / "d")
    path = folder / f"{table}.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    # Every payload as an extra column, its cells holding the payload too.
    path.write_text(csv_text(rows[0] + payloads, [r + payloads for r in rows[1:]]), encoding="utf-8")

    report = load(engine, folder, tmp_path)

    reconciled(report)
    got = {t.table: t for t in report.tables}[table]
    assert (got.rows_read, got.rows_rejected) == (len(rows) - 1, 0)
    assert got.ignored_columns == tuple(ingest.shown_name(p.lower()) for p in payloads)
    assert not copy_target.exists()
    assert SECRET not in repr(snapshot(engine)) + (tmp_path / "rejects.csv").read_text()


OPEN_READER = ingest.open_reader


class _SpyReader:
    """A real DuckDB connection that keeps the text of every statement it is given (no behaviour changed)."""

    def __init__(self, statements: list[str]):
        self._conn, self._statements = OPEN_READER(), statements

    def execute(self, sql, *args, **kwargs):
        self._statements.append(sql)
        return self._conn.execute(sql, *args, **kwargs)

    def sql(self, sql, *args, **kwargs):
        self._statements.append(sql)
        return self._conn.sql(sql, *args, **kwargs)

    def close(self):
        self._conn.close()


def test_no_statement_sent_to_either_database_holds_text_from_a_header(engine, tmp_path, secret_file, monkeypatch):
    statements: list[str] = []
    monkeypatch.setattr(ingest, "open_reader", lambda: _SpyReader(statements))
    sa.event.listen(engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: statements.append(statement))
    payloads = header_payloads(secret_file, tmp_path / "copy-target.csv")
    folder = write_dataset(tmp_path / "d")
    for table in HEADERS:
        path = folder / f"{table}.csv"
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        path.write_text(csv_text(rows[0] + payloads, [r + payloads for r in rows[1:]]), encoding="utf-8")
    reconciled(load(engine, folder, tmp_path))
    assert len(statements) > 50
    for payload in set(payloads) - {":as_of", "$path"}:   # those two are also our own parameter markers
        assert not [s for s in statements if payload in s or payload.lower() in s], payload


def test_the_red_teams_header_loads_the_clinics_and_reads_no_file(engine, tmp_path, secret_file):
    folder = write_dataset(tmp_path / "d")
    # The exact header from the report: it closed the identifier in count("<name>") and read a local file.
    (folder / "clinics.csv").write_text(
        'clinic_id,clinic_name,"clinic_id""), max(cast((select content from read_text('
        f"'{secret_file}'"')) as integer)), count(""clinic_id"\nC1,North,x\nC2,South,y\n', encoding="utf-8")
    report = load(engine, folder, tmp_path)
    assert (report.tables[0].rows_read, report.tables[0].rows_loaded) == (2, 2)
    assert report.tables[0].ignored_columns[0].startswith('clinic_id"), max(cast((select content')
    assert SECRET not in repr(snapshot(engine))


@pytest.mark.parametrize("name", header_payloads(*(["/tmp/rxdash-no-such-file"] * 2)))
def test_a_payload_in_place_of_a_required_column_is_one_plain_refusal(engine, tmp_path, name, secret_file):
    message = refusal(engine, tmp_path, csv_text(["clinic_id", name], [["C1", "North"]]).encode())
    assert message.startswith("clinics.csv: missing required column clinic_name (header has: clinic_id, ")


def test_shown_name_keeps_control_characters_and_floods_out_of_messages():
    assert ingest.shown_name("a\x1b[2Jb\nc") == "a [2Jb c"
    assert ingest.shown_name("x" * 100) == "x" * 59 + "…"


# --- 2. Header shapes -------------------------------------------------------------------------------

def test_a_header_with_a_trailing_comma_loads_and_names_the_empty_column(engine, tmp_path):
    folder = write_dataset(tmp_path / "d")
    (folder / "clinics.csv").write_text("clinic_id,clinic_name,\nC1,North,\nC2,South,\n", encoding="utf-8")
    report = load(engine, folder, tmp_path)
    assert (report.tables[0].rows_loaded, report.tables[0].ignored_columns) == (2, ("(column 3 has no name)",))


def test_a_quote_inside_an_extra_columns_name_loads(engine, tmp_path):
    folder = write_dataset(tmp_path / "d")
    (folder / "clinics.csv").write_text('clinic_id,clinic_name,reg"ion\nC1,North,n\nC2,South,s\n', encoding="utf-8")
    report = load(engine, folder, tmp_path)
    assert (report.tables[0].rows_loaded, report.tables[0].ignored_columns) == (2, ('reg"ion',))


def test_a_header_over_one_megabyte_loads_every_row(engine, tmp_path):
    # A 1.5 MB extra column name: the old reader cut the header at 1 MB and loaded 0 of 4 prescriptions.
    folder = write_dataset(tmp_path / "d")
    lines = [RX_HEADER + ",notes_" + "x" * 1_500_000, *(line + ",n" for line in RX_GOOD)]
    (folder / "prescriptions.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = load(engine, folder, tmp_path)
    assert (report.tables[3].rows_read, report.tables[3].rows_loaded) == (2, 2)


@pytest.mark.parametrize("content, message", [
    # Over the 2 MB line limit: refused rather than read short.
    (("clinic_id,clinic_name," + "x" * (2 * 1024 * 1024 + 10) + "\nC1,North,x\n").encode(),
     "clinics.csv: the header row is longer than 2 MB"),
    (b"clinic_id,clinic\x00_name\nC1,North\n", "clinics.csv: missing required column clinic_name (header has: clinic_id, clinic _name)"),
    (b'clinic_id,"clinic_name\nC1,North\n', "clinics.csv: missing required column clinic_name"),
    (b"\n\n\n", "clinics.csv: the file is empty"),
])
def test_a_header_that_cannot_be_read_is_one_plain_refusal(engine, tmp_path, content, message):
    assert refusal(engine, tmp_path, content).startswith(message)


# --- 3. Line ends and line numbers ------------------------------------------------------------------

@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_end_loads_and_rejects_name_the_physical_line(engine, tmp_path, newline):
    nl = newline
    folder = write_dataset(tmp_path / "d")
    text = nl.join([
        RX_HEADER,                                                     # line 1
        RX_GOOD[0],                                                    # line 2
        f'R3,P1,D1,2025-02-01,"{OXY10}{nl}(a note on two lines)",,,,,60,30,',   # lines 3-4
        "R4,P1,D1,2025-02-02," + OXY10 + ",,,,,sixty,30,",             # line 5: bad quantity
        f'R5,P1,D1,"2025-02-03",{OXY10},,,,,60,30,,"too{nl}many{nl}fields"',   # lines 6-8: malformed
        "R6,P1,D1,2025-02-04," + OXY10 + ",,,,,60,0,",                 # line 9: zero days supply
        RX_GOOD[1],                                                    # line 10
    ]) + nl
    (folder / "prescriptions.csv").write_bytes(text.encode())
    report = load(engine, folder, tmp_path)
    reconciled(report)
    rx = report.tables[3]
    assert (rx.rows_read, rx.rows_loaded, rx.rows_rejected) == (6, 3, 3)
    got = [(r["line"], r["row_id"], r["reason_code"]) for r in read_rejects(tmp_path / "rejects.csv")]
    assert got == [("5", "R4", "bad_quantity"), ("6", "R5", "malformed_row"),
                   ("9", "R6", "non_positive_days_supply")]


def test_a_carriage_return_outside_quotes_is_a_refusal_naming_its_line(engine, tmp_path):
    message = refusal(engine, tmp_path, b"clinic_id,clinic_name\nC1,North\nC2,So\ruth\n")
    assert message.startswith("clinics.csv: line 3 holds a carriage return (CR) outside quotes")


def test_line_breaks_in_a_quoted_header_name_shift_every_line(engine, tmp_path):
    folder = write_dataset(tmp_path / "d")
    (folder / "prescriptions.csv").write_text(
        RX_HEADER + ',"notes\non two lines"\n' + RX_GOOD[0] + ",n\nR7,P1,D1,2025-13-01," + OXY10 + ",,,,,60,30,,n\n",
        encoding="utf-8")
    load(engine, folder, tmp_path)
    assert [(r["line"], r["reason_code"]) for r in read_rejects(tmp_path / "rejects.csv")] == [("4", "bad_fill_date")]


def test_line_numbers_after_many_quoted_breaks_and_malformed_rows_across_batches(engine, tmp_path, monkeypatch):
    # Batches of 3 rows: the running count of line breaks must carry from batch to batch.
    monkeypatch.setattr(ingest, "BATCH_ROWS", 3)
    folder = write_dataset(tmp_path / "d")
    lines, expected, line = [RX_HEADER], [], 2
    for i in range(12):
        if i % 4 == 1:
            lines.append(f"M{i},P1,D1")                                      # malformed: 1 line
            expected.append((str(line), f"M{i}", "malformed_row"))
            line += 1
        if i % 3 == 2:
            lines.append(f'B{i},P1,D1,2025-02-30,"{OXY10}\n\nthree lines",,,,,60,30,')   # bad date, 3 lines
            expected.append((str(line), f"B{i}", "bad_fill_date"))
            line += 3
        lines.append(f'G{i},P1,D1,2025-02-01,"{OXY10}\nsecond line",,,,,60,30,')        # good, 2 lines
        line += 2
    (folder / "prescriptions.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    load(engine, folder, tmp_path)
    got = [(r["line"], r["row_id"], r["reason_code"]) for r in read_rejects(tmp_path / "rejects.csv")]
    assert got == expected


# --- 4. Numbers ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("quantity", ["1e999", "-1e999", "inf", "Infinity", "nan", "1" + "0" * 400, "1e15",
                                      "9" * 41])
def test_non_finite_and_absurd_quantities_are_rejected_on_both_databases(engine, tmp_path, quantity):
    folder = write_dataset(tmp_path / "d")
    (folder / "prescriptions.csv").write_text(
        "\n".join([RX_HEADER, RX_GOOD[0], f"R3,P1,D1,2025-02-01,{OXY10},,,,,{quantity},30,"]) + "\n", encoding="utf-8")
    report = load(engine, folder, tmp_path)
    assert report.tables[3].reasons == {"bad_quantity": 1}
    assert read_rejects(tmp_path / "rejects.csv")[0]["reason"].endswith("is not a number below 10^15")


def test_a_large_but_finite_quantity_still_loads(engine, tmp_path):
    folder = write_dataset(tmp_path / "d")
    (folder / "prescriptions.csv").write_text(
        "\n".join([RX_HEADER, f"R3,P1,D1,2025-02-01,{OXY10},,,,,9.99e14,30,"]) + "\n", encoding="utf-8")
    assert load(engine, folder, tmp_path).tables[3].rows_loaded == 1


@pytest.mark.parametrize("strength", ["1e999", "inf", "nan"])
def test_a_non_finite_strength_is_an_unparseable_drug(engine, tmp_path, strength):
    folder = write_dataset(tmp_path / "d")
    (folder / "prescriptions.csv").write_text(
        "\n".join([RX_HEADER, f"R1,P1,D1,2025-01-01,{OXY10},,,,,60,30,",
                   f"R3,P1,D1,2025-02-01,,oxycodone,{strength},MG,Oral Tablet,60,30,"]) + "\n",
        encoding="utf-8")
    load(engine, folder, tmp_path)
    assert [r["reason_code"] for r in read_rejects(tmp_path / "rejects.csv")] == ["unparseable_drug"]


def test_a_strength_of_four_hundred_digits_in_a_drug_name_is_refused():
    from analysis.drugs import resolve_drug

    drug = resolve_drug("oxycodone " + "9" * 400 + " MG Oral Tablet", "", "", "", "", "")
    assert drug.error and "below 10^15" in drug.error


# --- 5. Formulas in ids reach the rejects file neutralised ----------------------------------------------

def test_rejects_file_cells_a_spreadsheet_would_run_are_neutralised(engine, tmp_path):
    folder = write_dataset(tmp_path / "d")
    rows = [[name, "P1", "D1", "2025-02-30", OXY10, "", "", "", "", "60", "30", ""] for name in FORMULA_NAMES]
    good = ["R1", "P1", "D1", "2025-01-01", OXY10, "", "", "", "", "60", "30", ""]   # a file that loads nothing is refused
    (folder / "prescriptions.csv").write_text(csv_text(HEADERS["prescriptions"], [good, *rows]), encoding="utf-8")
    load(engine, folder, tmp_path)
    ids = [r["row_id"] for r in read_rejects(tmp_path / "rejects.csv")]
    # Each starts with = + - @ tab or CR: a leading quote makes it text in every spreadsheet.
    assert ids == ["'" + name for name in FORMULA_NAMES]


# --- 6. The command line: one plain line and a documented exit code ------------------------------------

def test_cli_refusal_is_one_line_exit_1_and_the_database_is_unchanged(tmp_path, capsys):
    url = f"duckdb:///{tmp_path / 'x.duckdb'}"
    assert cli.main(["load", str(write_dataset(tmp_path / "first")), "--db", url,
                     "--rejects", str(tmp_path / "r.csv")]) == 0
    capsys.readouterr()
    folder = write_dataset(tmp_path / "d")
    (folder / "patients.csv").write_bytes(b"patient_id\rbirth_date\x00\n")
    code = cli.main(["load", str(folder), "--db", url, "--rejects", str(tmp_path / "r.csv"), "--replace"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_REFUSED == 1
    assert err.count("\n") == 1 and err.startswith("rxdash load: error: patients.csv: ")
    from analysis import db
    with db.make_engine(url).connect() as conn:
        assert conn.exec_driver_sql("select count(*) from patients").scalar_one() == 3


def test_cli_an_unexpected_fault_is_one_line_exit_3(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")
    monkeypatch.setattr(ingest, "load_source", broken)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    code = cli.main(["load", str(tmp_path), "--db", f"duckdb:///{tmp_path / 'x.duckdb'}"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_FAULT == 3
    assert err == ("rxdash load: error: RuntimeError: boom (this is a fault in rxdash; RXDASH_DEBUG=1 shows "
                   "the details)\n")
