"""Every output appears whole or not at all (analysis/outputs.py): a full disk is one line and exit 1, and leaves
nothing behind; a truncated PDF or zip is caught by its check. Real processes, real DuckDB, real chromium."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from analysis import exports, outputs

RXDASH = [sys.executable, "-m", "dashboard.cli"]
LIMIT = 16 * 1024   # bytes: below every output of these runs (the smallest, the digest PDF, is about 55 KB)
NO_SPACE = "no space left on {folder} (the file-size limit was reached; nothing was written)"


def chromium_without_the_limit(tmp_path: Path) -> Path:
    """A launcher that runs the real chromium with the file-size limit lifted. Chromium cannot run under a
    limit this small at all (its shared-memory regions are files too: it aborts on start, and kaleido then
    waits for it forever), and it writes no output of ours: every file is written by rxdash's own process
    (exports.print_pdfs hands the PDF over the DevTools protocol), which keeps the limit."""
    launcher = tmp_path / "chromium"
    real = os.environ.get(exports.BROWSER_ENV, exports.DEFAULT_BROWSER)
    launcher.write_text(f'#!/bin/sh\nulimit -S -f unlimited\nexec "{real}" "$@"\n')
    launcher.chmod(0o755)
    return launcher


def run_on_a_full_disk(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m dashboard.cli ARGS` as if its disk were full: any file written past LIMIT bytes fails with
    EFBIG (SIGXFSZ ignored, so the write fails instead of the process being killed)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    env = {k: v for k, v in os.environ.items() if k != "RXDASH_DB_URL"}
    env.update({exports.AUDIT_ENV: str(tmp_path / "audit.jsonl"),
                exports.BROWSER_ENV: str(chromium_without_the_limit(tmp_path))})
    return subprocess.run([*RXDASH, *args], cwd=tmp_path, env=env, preexec_fn=limit, capture_output=True,
                          text=True, timeout=300)


YEAR = ("--start", "2025-01-01", "--end", "2025-12-31")
COMMANDS = {
    "summarize": ("summary", ("summarize", "--start", "2025-01-01", "--end", "2025-03-31")),
    "report-html": ("pack.html", ("report", *YEAR)),
    "report-pdf": ("pack.pdf", ("report", *YEAR)),
    "feedback-all": ("letters.zip", ("feedback", *YEAR, "--all")),
    "digest": ("digest.pdf", ("digest", "--quarter", "2025Q2")),
}


@pytest.mark.parametrize("case", list(COMMANDS))
def test_a_full_disk_is_one_line_exit_1_and_leaves_nothing(tmp_path, sample_duckdb, case):
    name, args = COMMANDS[case]
    folder = tmp_path / "out"
    folder.mkdir()
    result = run_on_a_full_disk(tmp_path, *args, "--db", sample_duckdb, "--out", str(folder / name))
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [f"rxdash {args[0]}: error: {NO_SPACE.format(folder=folder)}"]
    assert result.stdout == ""                                  # no "Wrote ..."
    assert list(folder.iterdir()) == []                         # no temporary file, no half target
    assert not (tmp_path / "audit.jsonl").exists()              # nothing left, so nothing audited


def test_a_full_disk_leaves_the_earlier_report_and_summary_as_they_were(tmp_path, sample_duckdb):
    folder = tmp_path / "out"
    (folder / "summary").mkdir(parents=True)
    earlier = {"pack.pdf": b"%PDF-1.4 the earlier pack\n%%EOF\n",
               "summary/README.txt": b"the earlier summary\n", "summary/notes.txt": b"a note of the user's\n"}
    for path, content in earlier.items():
        (folder / path).write_bytes(content)
    result = run_on_a_full_disk(tmp_path, "report", *YEAR, "--db", sample_duckdb, "--out", str(folder / "pack.pdf"))
    assert (result.returncode, result.stderr.splitlines()) == (1, [f"rxdash report: error: {NO_SPACE.format(folder=folder)}"])
    result = run_on_a_full_disk(tmp_path, "summarize", "--start", "2025-01-01", "--end", "2025-03-31",
                                "--db", sample_duckdb, "--out", str(folder / "summary"))
    assert (result.returncode, result.stderr.splitlines()) == (1, [f"rxdash summarize: error: {NO_SPACE.format(folder=folder)}"])
    assert {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == earlier


def test_summarize_into_a_folder_that_holds_files_replaces_its_own_and_keeps_the_others(tmp_path, sample_duckdb):
    folder = tmp_path / "summary"
    folder.mkdir()
    (folder / "README.txt").write_text("the earlier summary\n")
    (folder / "notes.txt").write_text("a note of the user's\n")
    result = subprocess.run([*RXDASH, "summarize", "--db", sample_duckdb, "--start", "2025-01-01", "--end",
                             "2025-03-31", "--out", str(folder)], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, exports.AUDIT_ENV: str(tmp_path / "audit.jsonl")}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["README.txt", "clinician_measures.csv", "consistency.csv",
                                                         "notes.txt", "tapers.csv"]
    assert (folder / "README.txt").read_text().startswith("Prescribing consistency: clinician comparison\n")
    assert (folder / "notes.txt").read_text() == "a note of the user's\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_a_full_disk_under_any_other_command_is_one_line_and_exit_1_not_a_fault(tmp_path):
    # generate streams its CSV files (a synthetic data set, not an export): a full disk is the user's to fix,
    # so one line and exit 1 (main), never "a fault in rxdash" with exit 3.
    result = run_on_a_full_disk(tmp_path, "generate", "--patients", "200", "--out", "gen")
    assert (result.returncode, result.stderr.splitlines()) == (
        1, [f"rxdash generate: error: no space left on {tmp_path / 'gen'} (the file-size limit was reached)"])


@pytest.fixture(scope="module")
def pdf() -> bytes:
    """A real PDF from headless chromium."""
    return exports.pdf_bytes("<html><body><h1>Letter</h1><p>Text of the letter.</p></body></html>")


def test_a_truncated_pdf_is_caught_by_its_check_and_never_takes_the_name(tmp_path, pdf):
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    target = tmp_path / "letter.pdf"
    target.write_bytes(b"the earlier letter")
    # As chromium left it on a full disk when it wrote the file itself: exit code 0, the end missing.
    with pytest.raises(outputs.OutputError, match=r"^letter.pdf came out incomplete \(no %%EOF end marker\); "
                                                  r"nothing was written$"):
        with outputs.replacing(target) as temporary:
            temporary.write_bytes(pdf[: len(pdf) // 2])
    with pytest.raises(outputs.OutputError, match=r"^letter.pdf came out incomplete \(no %PDF- start marker\)"):
        with outputs.replacing(target) as temporary:
            temporary.write_bytes(b"")
    assert [p.name for p in tmp_path.iterdir()] == ["letter.pdf"] and target.read_bytes() == b"the earlier letter"
    with pytest.raises(outputs.OutputError, match=r"^chromium's PDF of page 1 is not a whole PDF \(no %%EOF end "):
        outputs.check_pdf(pdf[:-20], "chromium's PDF of page 1")
    with outputs.replacing(target) as temporary:
        temporary.write_bytes(pdf)
    assert [p.name for p in tmp_path.iterdir()] == ["letter.pdf"] and target.read_bytes() == pdf


def test_a_truncated_or_damaged_zip_is_caught(tmp_path, pdf):
    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("letter_1.pdf", pdf)
        z.writestr("letter_2.pdf", pdf)
    data = whole.read_bytes()
    with pytest.raises(outputs.OutputError, match=r"^letters.zip came out incomplete \(File is not a zip file\); "
                                                  r"nothing was written$"):
        with outputs.replacing(tmp_path / "letters.zip") as temporary:
            temporary.write_bytes(data[: len(data) - 100])   # the central directory cut off
    damaged = bytearray(data)
    start = data.index(b"letter_2.pdf") + len("letter_2.pdf") + 200   # inside the second entry's compressed data
    damaged[start:start + 64] = bytes(64)
    with pytest.raises(outputs.OutputError, match=r"^letters.zip came out damaged \(letter_2.pdf does not test "
                                                  r"clean\); nothing was written$"):
        with outputs.replacing(tmp_path / "letters.zip") as temporary:
            temporary.write_bytes(bytes(damaged))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whole.zip"]


def test_a_failure_midway_removes_the_temporary_file_and_the_folders_made_for_it(tmp_path):
    target = tmp_path / "new" / "deeper" / "pack.html"
    with pytest.raises(KeyboardInterrupt):
        with outputs.replacing(target) as temporary:
            assert temporary.parent == target.parent and temporary.name.startswith(".pack.html.")
            temporary.write_text("<p>half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(outputs.OutputError, match=r"is a folder; --out names the file to write$"):
        with outputs.replacing(tmp_path):
            pass


def test_a_new_folder_appears_whole_in_one_rename(tmp_path):
    target = tmp_path / "summary"
    with outputs.replacing(target, folder=True) as temporary:
        (temporary / "a.csv").write_text("x\r\n1\r\n")
        (temporary / "README.txt").write_text("read me\n")
        assert not target.exists()
    assert sorted(p.name for p in target.iterdir()) == ["README.txt", "a.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary"]


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "pack.html"
    target.write_text("earlier")
    target.chmod(0o640)
    with outputs.replacing(target) as temporary:
        temporary.write_text("<p>new</p>")
    assert (target.read_text(), target.stat().st_mode & 0o777) == ("<p>new</p>", 0o640)
