"""Every file the command line writes is in the audit log, as every dashboard download is: who (the
operating-system user), what (the command and the file) and the filters in force; one entry per command, written
only once the file was written whole, and none for a command that wrote nothing."""
from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path

import pandas as pd

from analysis import exports, privacy
from tests.conftest import SAMPLE
from tests.test_cli import run

PERIOD = ("--start", "2025-01-01", "--end", "2025-12-31")


def entries(log: Path) -> list[dict]:
    """The log's entries without their time, after checking each has one (seconds, ISO 8601)."""
    out = []
    for line in log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        assert dt.datetime.fromisoformat(entry.pop("at")) <= dt.datetime.now()
        out.append(entry)
    return out


def test_every_command_line_export_is_audited_with_who_what_and_the_filters(tmp_path, sample_duckdb):
    log = tmp_path / "audit.jsonl"
    env = {exports.AUDIT_ENV: str(log)}
    commands = [
        ("summarize", "--db", sample_duckdb, "--start", "2025-01-01", "--end", "2025-03-31", "--out", "summary"),
        ("report", "--db", sample_duckdb, *PERIOD, "--clinic", "C01", "--clinic", "C02", "--out", "pack.html"),
        ("digest", "--db", sample_duckdb, "--quarter", "2025Q2", "--factor-set", "cdc2016", "--out", "digest.html"),
        ("feedback", "--db", sample_duckdb, *PERIOD, "--clinician", "D0002", "--min-cell", "0", "--out", "letter.html"),
        ("feedback", "--db", sample_duckdb, *PERIOD, "--all", "--no-exclusions", "--out", "letters.zip"),
    ]
    for args in commands:
        result = run(*args, cwd=tmp_path, env=env)
        assert result.returncode == 0, (args, result.stderr)
    # Refused or failed: no file, so no entry.
    assert run("feedback", "--db", sample_duckdb, *PERIOD, "--clinician", "D9999", "--out", "x.html", cwd=tmp_path,
               env=env).returncode == 1
    assert run("digest", "--db", sample_duckdb, "--quarter", "2025Q2", "--out", "x.txt", cwd=tmp_path,
               env=env).returncode == 1

    ids = pd.read_csv(SAMPLE / "clinicians.csv")["clinician_id"]
    code = privacy.pseudonyms(ids, privacy.pseudonym_secret())["D0002"].split(" ", 1)[1]   # never the id or name
    who = {"event": "export", "user": getpass.getuser(), "role": "command line"}
    year = {"start": "2025-01-01", "end": "2025-12-31"}
    assert entries(log) == [
        {**who, "what": f"rxdash summarize: {tmp_path / 'summary'} (clinician_measures.csv, tapers.csv, "
                        "consistency.csv, README.txt)",
         "filters": {"start": "2025-01-01", "end": "2025-03-31", "factors": "cdc2022", "exclusions": "on",
                     "min_cell": 11, "database": sample_duckdb}},
        {**who, "what": f"rxdash report: {tmp_path / 'pack.html'}",
         "filters": {**year, "clinic": ["C01", "C02"], "factors": "cdc2022", "exclusions": "on", "min_cell": 11,
                     "database": sample_duckdb}},
        {**who, "what": f"rxdash digest: {tmp_path / 'digest.html'}",
         "filters": {"start": "2025-04-01", "end": "2025-06-30", "factors": "cdc2016", "exclusions": "on",
                     "min_cell": 11, "quarter": "2025Q2", "database": sample_duckdb}},
        {**who, "what": f"rxdash feedback: {tmp_path / 'letter.html'}",
         "filters": {**year, "factors": "cdc2022", "exclusions": "on", "min_cell": 0, "clinician": code,
                     "database": sample_duckdb}},
        {**who, "what": f"rxdash feedback --all: {tmp_path / 'letters.zip'} (40 letters)",
         "filters": {**year, "factors": "cdc2022", "exclusions": "off", "min_cell": 11, "database": sample_duckdb}},
    ]
    assert "D0002" not in log.read_text() and "Jordan Novak" not in log.read_text()


def test_an_output_whose_audit_entry_cannot_be_written_is_not_written_either(tmp_path, sample_duckdb):
    (tmp_path / "not-a-folder").write_text("")
    log = tmp_path / "not-a-folder" / "audit.jsonl"
    result = run("digest", "--db", sample_duckdb, "--quarter", "2025Q2", "--out", "digest.html", cwd=tmp_path,
                 env={exports.AUDIT_ENV: str(log)})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"rxdash digest: error: the audit log {log} could not be written (File "
                                          "exists), so nothing was written"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]
