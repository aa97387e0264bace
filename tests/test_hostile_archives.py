"""Hostile FHIR files (issue #29, items 5 and 8): what one file can make the reader hold or read is bounded,
and a refusal is one line on the command line (exit 1) with the database exactly as it was.

- Decompression: a 4 MB .ndjson.gz holding one 4 GiB line, one of 1.6 billion blank lines, one that expands
  past 200 times its compressed size, a gzip cut short; the same line and blank-line bounds for plain NDJSON
  (a 4 GiB sparse file: no disk used), and the size bound for a .json Bundle.
- Symbolic links in a FHIR folder that lead outside it, or to nothing: refused, never followed.

The hostile gzip files are built from one compressed member repeated (gzip readers read concatenated members
as one stream, RFC 1952 section 2.2), so a 4 GiB stream is a few MB on disk and built at once. Every test runs
on a real DuckDB file in pytest's tmp_path; the bounds are analysis/sources/fhir.py's own constants, lowered
(monkeypatch) only for the 256 MiB Bundle bound.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
import tracemalloc
from pathlib import Path

import pytest

from analysis import db, ingest
from analysis.sources import create_reject_table, fhir
from dashboard import cli
from tests.test_source_fhir import OXY5, dosage, request, write_fhir

MiB = 1 << 20
RX = "MedicationRequest.ndjson"


def member(data: bytes, times: int = 1) -> bytes:
    """`data` gzipped once, the member repeated `times` times: a stream of len(data) * times bytes."""
    return gzip.compress(data, 9) * times


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every row of every contract table and of the load history ('unchanged' means equal snapshots)."""
    engine = db.make_engine(url)
    with engine.connect() as conn:
        out = {t: sorted(map(tuple, conn.exec_driver_sql(f"select * from {t}").all()), key=repr)
               for t in [*(s.name for s in ingest.TABLES), "load_runs"]}
    engine.dispose()
    return out


def cli_load(folder: Path, url: str, rejects: Path, capsys) -> tuple[int, str]:
    code = cli.main(["load", str(folder), "--format", "fhir", "--db", url, "--rejects", str(rejects),
                     "--extract-date", "2025-06-30", "--replace"])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def loaded_db(tmp_path_factory) -> Path:
    """A DuckDB file holding the code-built FHIR source (tests/test_source_fhir.py), loaded once."""
    folder = tmp_path_factory.mktemp("first")
    path = folder / "x.duckdb"
    engine = db.make_engine(f"duckdb:///{path}")
    ingest.load_source(engine, write_fhir(folder / "fhir", with_bundle=False), "fhir", folder / "rejects.csv",
                       replace=True, as_of=dt.date(2026, 1, 1), extract_date=dt.date(2025, 6, 30))
    engine.dispose()
    return path


@pytest.fixture
def refused(loaded_db, tmp_path, capsys):
    """refused(folder) -> the stderr of `rxdash load folder --format fhir --replace` over a copy of the loaded
    database, after checking: exit 1, one line, database unchanged, no rejects file written."""
    path = tmp_path / "db.duckdb"
    shutil.copyfile(loaded_db, path)
    url = f"duckdb:///{path}"
    before = snapshot(url)
    assert before["prescriptions"] and before["load_runs"]

    def run(folder: Path) -> str:
        code, err = cli_load(folder, url, tmp_path / "hostile-rejects.csv", capsys)
        assert code == cli.EXIT_REFUSED == 1
        assert err.count("\n") == 1 and err.startswith("rxdash load: error: ")
        assert snapshot(url) == before
        assert not (tmp_path / "hostile-rejects.csv").exists()
        return err
    return run


def fhir_folder(tmp_path: Path) -> Path:
    """The code-built FHIR source without its Bundle: a source that loads."""
    return write_fhir(tmp_path / "fhir", with_bundle=False)


# --- 5. Decompression and line bounds ---------------------------------------------------------------------

def test_a_gz_of_one_4_gib_line_is_refused_at_16_mib_with_memory_flat(refused, tmp_path):
    folder = fhir_folder(tmp_path)
    hostile = member(b"0" * (4 * MiB), 1024)                  # 4 GiB of one line
    assert len(hostile) < 5 * MiB
    (folder / RX).unlink()
    (folder / f"{RX}.gz").write_bytes(hostile)
    assert refused(folder) == (
        f"rxdash load: error: {RX}.gz: line 1 is longer than 16 MiB, the longest resource line rxdash reads; "
        "leave files of resources it does not use (e.g. Binary, DocumentReference with attachments) out of "
        "the folder\n")
    # Memory: what Python holds while refusing it stays near one bounded line, never the 4 GiB line.
    reader = ingest.open_reader()
    create_reject_table(reader)
    tracemalloc.start()
    with pytest.raises(ingest.LoadError, match=r"line 1 is longer than 16 MiB"):
        fhir.adapt(folder, reader)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    reader.close()
    assert peak < 3 * fhir.MAX_LINE_BYTES


def test_a_gz_of_1_6_billion_blank_lines_is_refused_after_the_blank_run_cap(refused, tmp_path):
    folder = fhir_folder(tmp_path)
    good = json.dumps(request("G1", "P1", "1049621", OXY5, "2025-01-01", dosageInstruction=dosage(1, 1, "d"))) + "\n"
    hostile = member(good.encode()) + member(b"\n" * MiB, 1600)   # line 1 a resource, then 1.6e9 newlines
    assert len(hostile) < 3 * MiB
    (folder / "Extra.ndjson.gz").write_bytes(hostile)
    assert refused(folder) == (
        "rxdash load: error: Extra.ndjson.gz: more than 10,000 blank lines in a row (from line 2); an NDJSON "
        "file has none, so it is refused as damaged\n")


def test_a_gz_expanding_past_200_to_1_is_refused(refused, tmp_path):
    """Runs of blank lines under the cap, each ended by a short line: no line or blank-run bound is met, and
    the stream expands about 1000:1 (deflate's ceiling) until the ratio bound refuses it."""
    folder = fhir_folder(tmp_path)
    (folder / "Extra.ndjson.gz").write_bytes(member((b"\n" * 9_000 + b"{}\n") * 1_000, 100))   # 900 MB in 1 MB
    assert refused(folder) == (
        "rxdash load: error: Extra.ndjson.gz: decompresses to more than 200 times its compressed size; "
        "refused as a possible decompression bomb\n")


def test_highly_compressible_real_resources_are_read(tmp_path):
    """30,000 Observations identical but for a sequential id compress about 118:1 (real exports about 10:1):
    under the ratio bound, every line is read."""
    folder = tmp_path / "fhir"
    folder.mkdir()
    obs = {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/P1"},
           "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3",
                                "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported"}]},
           "effectiveDateTime": "2025-01-01T10:00:00Z", "valueQuantity": {"value": 4, "unit": "{score}"}}
    text = "".join(json.dumps({**obs, "id": f"obs-{i}"}) + "\n" for i in range(30_000)).encode()
    data = gzip.compress(text, 9)
    assert 100 < len(text) / len(data) < fhir.MAX_GZIP_RATIO
    (folder / "Observation.ndjson.gz").write_bytes(data)
    reader = ingest.open_reader()
    create_reject_table(reader)
    adapted = fhir.adapt(folder, reader)
    reader.close()
    observations = adapted.files[0]
    assert (observations.name, observations.rows_read, dict(observations.skipped)) == (
        "Observation.ndjson.gz", 30_000, {"resource_type_not_used": 30_000})


def test_a_gz_cut_short_is_one_line(refused, tmp_path):
    folder = fhir_folder(tmp_path)
    whole = gzip.compress((folder / RX).read_bytes())
    (folder / RX).unlink()
    (folder / f"{RX}.gz").write_bytes(whole[: len(whole) // 2])
    assert refused(folder) == (
        f"rxdash load: error: {RX}.gz: cannot be read as gzip (Compressed file ended before the end-of-stream "
        "marker was reached)\n")


def test_a_plain_ndjson_of_one_4_gib_line_is_refused(refused, tmp_path):
    folder = fhir_folder(tmp_path)
    with (folder / "Extra.ndjson").open("wb") as f:
        f.truncate(4 << 30)                       # sparse: 4 GiB of NUL bytes, no newline, no disk used
    assert refused(folder) == (
        "rxdash load: error: Extra.ndjson: line 1 is longer than 16 MiB, the longest resource line rxdash "
        "reads; leave files of resources it does not use (e.g. Binary, DocumentReference with attachments) out "
        "of the folder\n")


def test_a_plain_ndjson_with_a_run_of_blank_lines_is_refused(refused, tmp_path):
    folder = fhir_folder(tmp_path)
    with (folder / RX).open("ab") as f:           # its 12 lines, then blank ones
        f.write(b"\r\n" * 10_001)
    assert refused(folder) == (
        f"rxdash load: error: {RX}: more than 10,000 blank lines in a row (from line 13); an NDJSON file has "
        "none, so it is refused as damaged\n")


def test_blank_lines_under_the_cap_are_not_rows(tmp_path):
    folder = fhir_folder(tmp_path)
    with (folder / RX).open("ab") as f:
        f.write(b"\n" * 10_000)
    reader = ingest.open_reader()
    create_reject_table(reader)
    adapted = fhir.adapt(folder, reader)
    reader.close()
    assert next(f.rows_read for f in adapted.files if f.name == RX) == 11   # as without the blank lines


def test_a_json_bundle_over_the_size_bound_is_refused(refused, tmp_path, monkeypatch):
    monkeypatch.setattr(fhir, "MAX_BUNDLE_BYTES", 1 * MiB)   # the real bound is 256 MiB
    folder = fhir_folder(tmp_path)
    with (folder / "bundle.json").open("wb") as f:
        f.truncate(4 << 30)
    assert refused(folder) == (
        "rxdash load: error: bundle.json: larger than 1 MiB, the largest Bundle file rxdash reads whole; export "
        "the data as Bulk Data NDJSON (one resource a line) instead\n")


# --- 8. Symbolic links in a FHIR folder -------------------------------------------------------------------

def outside_request(tmp_path: Path) -> Path:
    """A file outside the FHIR folder holding one MedicationRequest (OUT1) of a patient of the source."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = elsewhere / RX
    path.write_text(json.dumps(request("OUT1", "P1", "1049621", OXY5, "2025-02-01",
                                       dosageInstruction=dosage(2, 1, "d", boundsDuration={"value": 30, "code": "d"})))
                    + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("target", ["file", "folder", "missing"])
def test_a_symlink_leading_outside_the_folder_is_refused(refused, tmp_path, target):
    folder = fhir_folder(tmp_path)
    path = outside_request(tmp_path)
    goal = {"file": path, "folder": path.parent, "missing": path.parent / "gone.ndjson"}[target]
    os.symlink(goal, folder / "Outside.ndjson")
    assert refused(folder) == (
        f"rxdash load: error: Outside.ndjson: a symbolic link leading outside {folder}; rxdash reads only the "
        "files inside the folder it is given (copy the file in, or load it on its own)\n")


def test_the_outside_request_loads_when_given_itself(tmp_path):
    """The same MedicationRequest is a good row: the refusal above is for the link, not the data. A file named
    as SOURCE is read even through a link (the user chose it)."""
    os.symlink(outside_request(tmp_path), tmp_path / "chosen.ndjson")
    reader = ingest.open_reader()
    create_reject_table(reader)
    fhir.adapt(tmp_path / "chosen.ndjson", reader)
    assert reader.execute("select rx_id from fhir_requests").fetchall() == [("OUT1",)]
    reader.close()


def test_a_symlink_inside_the_folder_is_read(tmp_path):
    folder = fhir_folder(tmp_path)
    (folder / "more").mkdir()
    shutil.move(outside_request(tmp_path), folder / "more" / "requests.ndjson")
    os.symlink(Path("more") / "requests.ndjson", folder / "Linked.ndjson")
    dangling = folder / "more" / "Dangling.ndjson"
    os.symlink(folder / "more" / "nothing.ndjson", dangling)   # inside a subfolder: never listed
    reader = ingest.open_reader()
    create_reject_table(reader)
    adapted = fhir.adapt(folder, reader)
    assert ("Linked.ndjson", 1) in [(f.name, f.rows_read) for f in adapted.files]
    assert ("OUT1",) in reader.execute("select rx_id from fhir_requests").fetchall()
    reader.close()


def test_a_dangling_symlink_inside_the_folder_is_refused(refused, tmp_path):
    folder = fhir_folder(tmp_path)
    os.symlink(folder / "Gone.ndjson", folder / "Dangling.ndjson")
    assert refused(folder) == (
        "rxdash load: error: Dangling.ndjson: a symbolic link to nothing; remove it or replace it by the file\n")


def test_a_loop_of_symlinks_is_refused(refused, tmp_path):
    folder = fhir_folder(tmp_path)
    os.symlink("Loop.ndjson", folder / "Loop.ndjson")
    assert refused(folder) == (
        "rxdash load: error: Loop.ndjson: a symbolic link that leads round in a loop; remove it\n")
