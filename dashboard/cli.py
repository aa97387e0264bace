"""The `rxdash` command: load, generate, serve, demo."""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from analysis import outputs, redact

REPO_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
APP = Path(__file__).resolve().parent / "app.py"


def _progress_printer(stream=sys.stderr):
    """A one-line text progress bar per step, shown only for large inputs: a step counted in rows or bytes
    (reading a source format, staging each table) from 200,000 on; then, for such a load, every later phase
    counted in steps (deriving daily doses, precomputing answers), so a long load is never silent."""
    large = False
    line_open = False

    def show(table: str, done: int, total: int) -> None:
        nonlocal large, line_open
        if total >= 200_000:
            large = True
        elif not large:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        line_open = done < total
        end = "" if line_open else "\n"
        stream.write(f"\r  {table:<22} [{'#' * filled}{'.' * (width - filled)}] {done:>12,}/{total:,}{end}")
        stream.flush()

    def finish() -> None:
        """End a bar left unfinished (a load refused part-way), so the error that follows has its own line."""
        nonlocal line_open
        if line_open:
            stream.write("\n")
            stream.flush()
            line_open = False

    show.finish = finish
    return show


def cmd_load(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from analysis import db, ingest
    from analysis.drugs import SKIP_REASONS

    for flag, value, fmt in (("--cdm-schema", args.cdm_schema, "omop"), ("--roster", args.roster, "pde")):
        if value is not None and args.format != fmt:
            print(f"rxdash load: error: {flag} goes with --format {fmt}", file=sys.stderr)
            return EXIT_USAGE
    url = db.resolve_url(args.db)
    progress = _progress_printer()
    try:
        engine = db.make_engine(db.check_load_target(url), schema=db.resolve_schema(args.schema))
        report = ingest.load_source(engine, args.directory, args.format, args.rejects, replace=args.replace,
                                    strict=args.strict, progress=progress,
                                    extract_date=args.extract_date, max_fill_days=args.max_fill_days,
                                    schema=args.cdm_schema, roster=args.roster)
    except (ingest.LoadError, ValueError) as e:
        progress.finish()
        in_use = database_in_use(e)
        print(f"rxdash load: error: {in_use + '; nothing was loaded' if in_use else e}", file=sys.stderr)
        return EXIT_REFUSED
    except (OSError, sa.exc.SQLAlchemyError) as e:
        progress.finish()
        why = database_in_use(e) or str(getattr(e, 'orig', None) or e).strip().splitlines()[0]
        print(f"rxdash load: error: {why}; nothing was loaded", file=sys.stderr)
        return EXIT_REFUSED
    shown = ingest.shown_name(str(args.directory), 200)
    print(f"Loaded {shown}{'' if args.format == 'contract' else f' ({args.format})'} into "
          f"{_target(engine, args.schema)} (run {report.run_id})")
    if report.sources:
        _print_sources(report)
        print("Contract tables, after the checks:")
    files = report.format == "contract"
    print(f"{'file' if files else 'table':<22}{'read':>12}{'loaded':>12}{'skipped':>12}{'rejected':>12}")
    for t in report.tables:
        print(f"{(t.file if files else t.table):<22}{t.rows_read:>12,}{t.rows_loaded:>12,}{t.rows_skipped:>12,}{t.rows_rejected:>12,}")
        if t.ignored_columns:
            print(f"  extra columns ignored: {', '.join(t.ignored_columns)}")
        for code, n in t.skip_reasons.most_common():
            print(f"  skipped {n:,} × {code} (other drugs: {SKIP_REASONS.get(code, code)})")
        for code, n in t.reasons.most_common():
            print(f"  rejected {n:,} × {code}")
        if t.orders_split:
            print(f"  {t.orders_split:,} order{'s' if t.orders_split != 1 else ''} longer than {args.max_fill_days} "
                  f"days stored as consecutive fills: {t.fills_loaded:,} fills for {t.rows_loaded:,} rows loaded")
    if report.rows_rejected:
        print(f"Rejected rows and reasons: {report.rejects_path}")
    if report.extract_date:
        how = "given" if args.extract_date else "the last fill date; set it with --extract-date"
        print(f"Extract date: {report.extract_date:%Y-%m-%d} ({how}); every patient's record ends there "
              "unless the patient's record_end is earlier")
    return 0


def _print_sources(report) -> None:
    """Each source file's rows read = loaded + skipped + rejected, with the reasons."""
    from analysis.ingest import shown_name

    width = max([24, *(len(shown_name(r.name, 40)) + 2 for r in report.sources)])
    print(f"{'source file':<{width}}{'read':>12}{'loaded':>12}{'skipped':>12}{'rejected':>12}  gives")
    for r in report.sources:
        print(f"{shown_name(r.name, 40):<{width}}{r.rows_read:>12,}{r.rows_loaded:>12,}{r.rows_skipped:>12,}"
              f"{r.rows_rejected:>12,}  {r.feeds}")
        for code, n in r.skip_reasons.most_common():
            print(f"  skipped {n:,} × {code}")
        for code, n in r.reasons.most_common():
            print(f"  rejected {n:,} × {code}")
    for note in report.notes:
        print(f"Note: {note}")


def cmd_reference(args: argparse.Namespace) -> int:
    """`rxdash reference ndc FILE`: load an NDC reference (a CDC MME workbook or a CSV) into the database,
    where later loads keep it (analysis/ndc.py)."""
    import sqlalchemy as sa

    from analysis import db, ndc

    try:
        rows, dropped = ndc.read_reference(args.file)
        engine = db.make_engine(db.resolve_url(args.db), schema=db.resolve_schema(args.schema))
        with engine.begin() as conn:
            db.init_schema(conn)
            # All or nothing on Spark too (no transactions there): ref_ndc is written in a staging database and
            # swapped in whole, and it alone: the reference changes no other table.
            with db.all_or_nothing(conn, set(), only={"ref_ndc"}):
                total = ndc.load_user_reference(conn, rows)
    except (ndc.ReferenceFileError, ValueError) as e:
        print(f"rxdash reference: error: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except (OSError, sa.exc.SQLAlchemyError) as e:
        print(f"rxdash reference: error: {str(getattr(e, 'orig', None) or e).strip().splitlines()[0]}; "
              "nothing was changed", file=sys.stderr)
        return EXIT_REFUSED
    editions = sorted({str(r["edition"]) for r in rows})
    left_out = "; ".join(f"{n:,} {why}" for why, n in dropped.most_common())
    print(f"Loaded the NDC reference {'; '.join(editions)}: {len(rows):,} products from {args.file.name}"
          + (f" ({left_out} left out)" if left_out else "")
          + f"; {total:,} with the bundled naloxone products. Later loads use it; load again with --replace "
          "to identify the prescriptions already loaded with it.")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from analysis import synthetic

    counts = synthetic.generate(args.out, args.patients, seed=args.seed, bad_rows=not args.no_bad_rows)
    print(f"Wrote {args.out}: " + ", ".join(f"{n:,} {t}" for t, n in counts.items()))
    return 0


def _date(text: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date in YYYY-MM-DD form") from None


def _fill_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= 365:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of days from 1 to 365")
    return days


def _period_command(args: argparse.Namespace, command: str, work, **extra: object) -> int:
    """What `summarize`, `report` and `feedback` share: settings from the period arguments, a read-only
    engine, and errors as one plain line. `work(engine, settings)` returns what to print."""
    import sqlalchemy as sa

    from analysis import db

    settings = _period_settings(args, command, **extra)
    if settings is None:
        return 2
    try:
        print(work(db.make_engine(db.resolve_url(args.db), read_only=True, schema=db.resolve_schema(args.schema)),
                   settings))
    except (ValueError, sa.exc.DBAPIError) as e:
        print(f"rxdash {command}: error: {str(getattr(e, 'orig', e)).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1024:,.0f} KB"


AUDIT_ROLE = "command line"


def _who() -> str:
    """The operating-system user running the command: who took the file out, for the audit log."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):   # no login name and no passwd entry (a bare container): the number, then
        return f"uid {os.getuid()}"


def _audited(command: str, out: Path, engine, settings, clinics: tuple[str, ...] = (),
             what: Callable[[Path], str] | None = None, **more: object) -> Callable[[Path], None]:
    """The audit entry of one command's output, as the writer's `on_written`: who (the operating-system user,
    role "command line"), what (the command and the file written, `what(temporary)` adding what is in it) and
    the filters in force (the period, clinics, factor set, exclusions, min cell, database; `more`), the same
    keys as a dashboard download's where they mean the same (dashboard/filters.describe)."""
    from analysis import exports

    filters: dict[str, object] = {"start": settings.start, "end": settings.end}
    if clinics:
        filters["clinic"] = list(clinics)
    filters.update(factors=settings.dosing.factor_set, exclusions="on" if settings.dosing.exclude else "off",
                   min_cell=settings.min_cell, **more,
                   database=redact.shown_url(engine.url.render_as_string(hide_password=False)))
    shown = os.path.abspath(out)

    def on_written(temporary: Path) -> None:
        # Written only once the file was written successfully: complete on disk (written, fsynced, checked by
        # outputs.replacing), just before the rename that gives it its name and cannot run out of room. So no
        # file appears without its entry, and a file that failed (a full disk) leaves no entry. Should the
        # entry itself fail, the file is not published either.
        log = exports.audit_path()
        try:
            exports.audit(f"rxdash {command}: {shown}" + (f" ({what(temporary)})" if what else ""), user=_who(),
                          filters=filters, role=AUDIT_ROLE, event="export")
        except OSError as e:
            then = f"the audit log could not be written, so {outputs.NOTHING_WRITTEN}"
            raise (outputs.no_space(e, log.parent, then)
                   or outputs.OutputError(f"the audit log {log} could not be written ({e.strerror}), so "
                                          f"{outputs.NOTHING_WRITTEN}")) from None
    return on_written


def cmd_summarize(args: argparse.Namespace) -> int:
    from analysis import summary

    def work(engine, settings) -> str:
        files = ", ".join(summary.SUMMARY_FILES)
        counts = summary.write_summary(engine, settings, args.out,
                                       _audited("summarize", args.out, engine, settings, what=lambda _: files))
        return (f"Wrote {args.out}: " + ", ".join(f"{n:,} rows in {name}.csv" for name, n in counts.items())
                + " and README.txt")
    return _period_command(args, "summarize", work, min_cell=args.min_cell)


def cmd_report(args: argparse.Namespace) -> int:
    from analysis import report

    def work(engine, settings) -> str:
        clinics = tuple(args.clinic or ())
        out = report.write(engine, settings, args.out, clinics, _audited("report", args.out, engine, settings, clinics))
        return f"Wrote {out} ({_size(out)})"
    return _period_command(args, "report", work)


def _letters(zip_path: Path) -> str:
    """How many letters the checked zip holds, for the audit entry of `feedback --all`."""
    import zipfile

    with zipfile.ZipFile(zip_path) as z:
        n = len(z.namelist())
    return f"{n:,} letter{'s' if n != 1 else ''}"


def cmd_feedback(args: argparse.Namespace) -> int:
    from analysis import feedback

    def work(engine, settings) -> str:
        clinics = tuple(args.clinic or ())
        if args.all:
            n = feedback.write_all(engine, settings, args.out, clinics,
                                   _audited("feedback --all", args.out, engine, settings, clinics, what=_letters))
            return f"Wrote {args.out}: {n:,} letters ({_size(args.out)})"
        # The clinician by pseudonym code in the audit log (analysis/privacy.py), never by id or name.
        audit = _audited("feedback", args.out, engine, settings, clinics,
                         clinician=feedback.pseudonym_code(engine, args.clinician))
        out = feedback.write_one(engine, settings, args.clinician, args.out, clinics, audit)
        return f"Wrote {out} ({_size(out)})"
    return _period_command(args, "feedback", work, min_cell=args.min_cell)


def _port_in_use(host: str, port: int) -> bool:
    """Whether another program listens on host:port (Streamlit would say so, then abort in C++ code)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False   # an unknown host: let the server say so
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as the server binds: TIME_WAIT is no obstacle
        try:
            s.bind(address)
        except OSError:
            return True
    return False


_LOCKED = re.compile(r'Could not set lock on file "(?P<path>[^"]+)": Conflicting lock is held in .*?\(PID (?P<pid>\d+)\)')


def database_in_use(error: BaseException) -> str | None:
    """One plain line for a DuckDB file that another process holds open for writing, else None."""
    match = _LOCKED.search(str(getattr(error, "orig", None) or error))
    if not match:
        return None
    return (f"the database {match['path']} is open in another program (process {match['pid']}), perhaps another "
            "rxdash load, demo or serve; stop it, or choose another database with --db")


def _target(engine, schema_flag: str | None) -> str:
    """The database a command wrote to, for its last line: the URL (no password) and the schema in force."""
    from analysis import db

    schema = db.resolve_schema(schema_flag)
    return redact.shown_url(engine.url.render_as_string(hide_password=False)) + (f" (schema {schema})" if schema else "")


def _serve(url: str, host: str, port: int, schema: str | None = None) -> int:
    if _port_in_use(host, port):
        print(f"rxdash serve: error: port {port} on {host} is in use (another dashboard?); choose another with "
              f"--port N", file=sys.stderr)
        return EXIT_REFUSED
    env = dict(os.environ, RXDASH_DB_URL=url)
    if schema:
        from analysis import db

        try:
            db.check_schema(schema, db.dialect_of(url))
        except ValueError as e:
            print(f"rxdash serve: error: {e}", file=sys.stderr)
            return EXIT_REFUSED
        env[db.SCHEMA_ENV] = schema
    command = [sys.executable, "-m", "dashboard.server", str(APP),
               "--server.address", host, "--server.port", str(port), "--server.headless", "true",
               "--browser.gatherUsageStats", "false", "--theme.base", "light",
               "--theme.primaryColor", "#0072B2",   # Okabe-Ito blue: widgets carry no red "verdict" colour
               "--client.toolbarMode", "minimal", "--client.showErrorDetails", "none",
               # A table's own CSV download would bypass suppression, the audit log and formula
               # neutralising: data leaves only through the export buttons (analysis/exports.py).
               "--client.disableDataExport", "true",
               # Many leaders at once (benchmarks/sessions.py, issue #29): after every page run Streamlit would run
               # a full garbage collection (runner.postScriptGC), holding the interpreter for seconds on a big
               # heap, so twenty first pages froze the server, health check included, for up to a minute; and its
               # file watcher re-scans every imported module's path on each run, for code that never changes in
               # a deployment. Python's own collector still runs; the caches are bounded (dashboard/data.py).
               "--runner.postScriptGC", "false", "--server.fileWatcherType", "none"]
    shown = redact.shown_url(url) + (f", schema {schema}" if schema else "")
    print(f"Serving the dashboard on http://{host}:{port} (database: {shown})", flush=True)
    os.execvpe(command[0], command, env)
    return 0  # not reached


def _refuse_open_demo(args: argparse.Namespace) -> bool:
    """Without sign-in the dashboard is a local demo: it listens on this computer only unless told otherwise."""
    from analysis import access

    if args.host in access.LOCAL_HOSTS or args.allow_remote_without_sign_in or access.auth_configured():
        return False
    print(f"rxdash {args.command}: error: no sign-in is configured ([auth] in .streamlit/secrets.toml), so the "
          f"dashboard would show every page to anyone who reaches {args.host}. Configure sign-in (README: Sign-in "
          "and roles), serve on 127.0.0.1, or pass --allow-remote-without-sign-in.", file=sys.stderr)
    return True


def cmd_serve(args: argparse.Namespace) -> int:
    from analysis import db

    if _refuse_open_demo(args):
        return 2
    return _serve(db.resolve_url(args.db), args.host, args.port, db.resolve_schema(args.schema))


def ensure_sample_database(url: str) -> bool:
    """Load the bundled sample into the database if it holds no prescriptions, or was loaded by an older
    version (a derived table is missing); True when it loaded."""
    import sqlalchemy as sa

    from analysis import db, ingest, synthetic

    engine = db.make_engine(url)
    with engine.connect() as conn:
        if db.is_current(conn) and conn.execute(sa.text("select count(*) from prescriptions")).scalar_one():
            engine.dispose()
            return False
    with tempfile.TemporaryDirectory() as tmp:
        source = REPO_SAMPLE
        if not (source / "prescriptions.csv").is_file():
            # Installed without the repository: rebuild the sample from its recorded seed.
            source = Path(tmp) / "sample"
            synthetic.generate(source, synthetic.SAMPLE_PATIENTS, seed=synthetic.SAMPLE_SEED)
        report = ingest.load_directory(engine, source, Path(tmp) / "rejects.csv", replace=True)
    engine.dispose()
    loaded = sum(t.rows_loaded for t in report.tables)
    print(f"Built the sample database ({loaded:,} rows; {report.rows_rejected} deliberately bad rows rejected)")
    return True


def cmd_demo(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from analysis import db, ingest

    if _refuse_open_demo(args):
        return 2
    url = db.resolve_url(args.db)
    try:
        ensure_sample_database(url)
    except (ingest.LoadError, ValueError) as e:
        print(f"rxdash demo: error: {e}", file=sys.stderr)
        return 1
    except sa.exc.SQLAlchemyError as e:   # a database in use or out of reach is the user's to fix, not a fault
        why = database_in_use(e) or str(getattr(e, 'orig', None) or e).strip().splitlines()[0]
        print(f"rxdash demo: error: {why}", file=sys.stderr)
        return 1
    return _serve(url, args.host, args.port)


def cmd_digest(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from analysis import db, digest, dose, summary

    try:
        q_start, q_end = digest.parse_quarter(args.quarter)
        settings = summary.Settings(q_start, q_end, dose.DoseParams(args.factor_set, not args.no_exclusions))
        engine = db.make_engine(db.resolve_url(args.db), read_only=True, schema=db.resolve_schema(args.schema))
        clinics = tuple(args.clinic or ())
        out = digest.write(engine, args.quarter, args.out, settings, clinics,
                           _audited("digest", args.out, engine, settings, clinics, quarter=args.quarter))
    except (ValueError, sa.exc.DBAPIError) as e:
        print(f"rxdash digest: error: {str(getattr(e, 'orig', e)).splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"Wrote {out} ({_size(out)})")
    return 0


def _period_arguments(p: argparse.ArgumentParser, db_help: str, out_help: str) -> None:
    """The arguments `summarize`, `report` and `feedback` share: database, period, output, factor set, exclusions."""
    from analysis.dose import FACTOR_SETS

    p.add_argument("--db", help=db_help)
    p.add_argument("--schema", help=SCHEMA_HELP)
    p.add_argument("--start", type=_date, required=True, help="first day of the period (YYYY-MM-DD)")
    p.add_argument("--end", type=_date, required=True, help="last day of the period (YYYY-MM-DD)")
    p.add_argument("--out", type=Path, required=True, help=out_help)
    p.add_argument("--factor-set", default="cdc2022", choices=list(FACTOR_SETS))
    p.add_argument("--no-exclusions", action="store_true",
                   help="keep patients with cancer, hospice/palliative care or sickle cell disease")


def _period_settings(args: argparse.Namespace, command: str, **extra: object):
    """Settings for `summarize` and `report` from their shared arguments; None (after saying why) when
    the period ends before it starts."""
    from analysis import dose, summary

    if args.end < args.start:
        print(f"rxdash {command}: error: --end {args.end} is before --start {args.start}", file=sys.stderr)
        return None
    return summary.Settings(args.start, args.end, dose.DoseParams(args.factor_set, not args.no_exclusions), **extra)


SCHEMA_HELP = ("the PostgreSQL schema or Spark database holding rxdash's tables (default: $RXDASH_SCHEMA, else "
               "the URL's own); load and reference create it when missing")


def build_parser() -> argparse.ArgumentParser:
    from analysis.dose import FACTOR_SETS

    parser = argparse.ArgumentParser(prog="rxdash", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    db_help = "SQLAlchemy URL (default: $RXDASH_DB_URL, Streamlit secrets, else duckdb:///rxdash.duckdb)"

    p = sub.add_parser("load", help="validate and load a source: a folder of contract CSV files, an OMOP CDM "
                                    "extract, FHIR R4 files or CMS Part D event files")
    p.add_argument("directory", metavar="SOURCE",
                   help="a folder (every format), or for --format omop a database URL with --cdm-schema")
    p.add_argument("--format", choices=("contract", "omop", "fhir", "pde"), default="contract",
                   help="the shape of SOURCE (default: contract, the CSV files of README 'Data')")
    p.add_argument("--cdm-schema", help="--format omop from a database: the schema holding the CDM tables "
                                        "(OHDSI's cdm_database_schema)")
    p.add_argument("--roster", type=Path, metavar="FILE",
                   help="--format pde: a CSV of clinician_id, clinic_id, clinic_name, specialty assigning "
                        "prescribers to clinics (default: one clinic, Unassigned)")
    p.add_argument("--db", help=db_help)
    p.add_argument("--schema", help=SCHEMA_HELP)
    p.add_argument("--rejects", type=Path, default=Path("rejects.csv"), help="CSV of rejected rows and reasons")
    p.add_argument("--replace", action="store_true", help="replace the data already in the database")
    p.add_argument("--strict", action="store_true", help="load nothing if any row is rejected")
    p.add_argument("--extract-date", type=_date, metavar="YYYY-MM-DD",
                   help="the day the data were extracted: the end of every patient's record (default: the last "
                        "fill date); a later fill is rejected")
    p.add_argument("--max-fill-days", type=_fill_days, default=30, metavar="N",
                   help="the longest fill: a prescribing order (units_per_day with end_date, or open) longer than "
                        "N days is stored as consecutive fills of at most N days (default: 30)")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("reference", help="load a code reference that later loads identify drugs with")
    kinds = p.add_subparsers(dest="kind", required=True)
    q = kinds.add_parser("ndc", help="an NDC reference: a CDC oral MME conversion workbook (.xlsx) or a CSV "
                                     "with the columns of analysis/reference/ndc_products.csv")
    q.add_argument("file", type=Path)
    q.add_argument("--db", help=db_help)
    q.add_argument("--schema", help=SCHEMA_HELP)
    q.set_defaults(func=cmd_reference)

    p = sub.add_parser("generate", help="write a synthetic data set in the contract's format")
    p.add_argument("--patients", type=int, required=True)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-bad-rows", action="store_true", help="leave out the deliberately bad rows")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("summarize", help="compare clinicians for a period and write CSV files")
    _period_arguments(p, db_help, "folder for the CSV files and README.txt")
    p.add_argument("--min-cell", type=int, default=11,
                   help="suppress counts from 1 to N-1 (default 11; 0 turns suppression off for internal use)")
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("report", help="the report pack: one PDF or HTML document for a quality committee")
    _period_arguments(p, db_help, "FILE.pdf or FILE.html")
    p.add_argument("--clinic", action="append", help="only these clinics (repeat for several)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("digest", help="the quarterly digest for a committee: what moved, who crossed the limits, "
                                      "how variation changed")
    p.add_argument("--db", help=db_help)
    p.add_argument("--schema", help=SCHEMA_HELP)
    p.add_argument("--quarter", required=True, help="the quarter, e.g. 2025Q4")
    p.add_argument("--out", type=Path, required=True, help="FILE.pdf or FILE.html")
    p.add_argument("--clinic", action="append", help="only these clinics (repeat for several)")
    p.add_argument("--factor-set", default="cdc2022", choices=list(FACTOR_SETS))
    p.add_argument("--no-exclusions", action="store_true",
                   help="keep patients with cancer, hospice/palliative care or sickle cell disease")
    p.set_defaults(func=cmd_digest)

    p = sub.add_parser("feedback", help="peer-comparison letters: a one-page PDF for a clinician, or a zip for all")
    _period_arguments(p, db_help, "FILE.pdf for one clinician (or FILE.html), FILE.zip with --all")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--clinician", help="the clinician_id the letter is for")
    who.add_argument("--all", action="store_true", help="one letter per clinician with patients in the period")
    p.add_argument("--clinic", action="append", help="peers only from these clinics (repeat for several)")
    p.add_argument("--min-cell", type=int, default=11,
                   help="show counts from 1 to N-1 as 'fewer than N' (default 11; 0 for the clinician's own use)")
    p.set_defaults(func=cmd_feedback)

    for name, func, help_text in (("serve", cmd_serve, "start the dashboard"),
                                  ("demo", cmd_demo, "build the sample database if missing, then serve")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--db", help=db_help)
        if name == "serve":
            p.add_argument("--schema", help=SCHEMA_HELP)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8501)
        p.add_argument("--allow-remote-without-sign-in", action="store_true",
                       help="listen on a non-local address although no sign-in is configured (not advised)")
        p.set_defaults(func=func)
    return parser


# Exit codes (README: "Exit codes"): 0 done; 1 refused, with one line saying why (bad input, a database
# problem; nothing was changed); 2 wrong arguments; 3 an unexpected fault (one line; RXDASH_DEBUG=1 shows
# the traceback); 130 interrupted.
EXIT_REFUSED, EXIT_USAGE, EXIT_FAULT, EXIT_INTERRUPTED = 1, 2, 3, 130
DEBUG_ENV = "RXDASH_DEBUG"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Whatever a command prints (its last line, a driver's error that echoes the connection string), no
    # password or token in the database URL or the environment reaches the terminal (analysis/redact.py).
    redact.install([str(u) for u in (getattr(args, "db", None), getattr(args, "directory", None))
                    if u is not None and "://" in str(u)])
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"rxdash {args.command}: interrupted; nothing more was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:   # never a traceback on the command line
        if os.environ.get(DEBUG_ENV):
            raise
        if in_use := database_in_use(e):
            print(f"rxdash {args.command}: error: {in_use}", file=sys.stderr)
            return EXIT_REFUSED
        # A full disk where a command's own writer does not say so (load's rejects file, generate's CSVs): the
        # user's to fix, not a fault. The documents, letters and summaries say it themselves (analysis/outputs).
        where = Path(os.path.abspath(getattr(args, "out", None) or "."))
        if full := outputs.no_space(e, where if where.is_dir() else where.parent, then=""):
            print(f"rxdash {args.command}: error: {full}", file=sys.stderr)
            return EXIT_REFUSED
        first = (str(getattr(e, "orig", None) or e).strip().splitlines() or [""])[0]
        print(f"rxdash {args.command}: error: {type(e).__name__}: {first} "
              f"(this is a fault in rxdash; {DEBUG_ENV}=1 shows the details)", file=sys.stderr)
        return EXIT_FAULT


if __name__ == "__main__":
    sys.exit(main())
