"""Every file rxdash writes for a user appears whole or not at all (`replacing`).

A document, a zip of letters or a folder of CSV files is written under a temporary name beside its target (the
same folder, so the final rename is atomic), flushed to the disk (fsync) and checked: a PDF starts with `%PDF-` and
ends with its `%%EOF` end marker, a zip opens and every entry tests clean. Only then does it take the target's
name (os.replace). Why: a full disk used to leave a truncated PDF that was reported as written, and a half
folder of CSV files that looked like a summary. Now a full disk (ENOSPC), a used-up quota (EDQUOT) or a
file-size limit (EFBIG) is one OutputError in plain words naming the folder; the temporary file is removed, and
a target that existed before is left as it was.
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

# errno -> what it means for the user: every way a write can run out of room.
NO_SPACE = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
            errno.EFBIG: "the file-size limit was reached"}
NOTHING_WRITTEN = "nothing was written"
PDF_HEAD, PDF_END = b"%PDF-", b"%%EOF"
TAIL = 1024   # bytes read from a PDF's end: the end marker is the last line, after at most a few blanks


class OutputError(ValueError):
    """An output that could not be written whole, said in plain words; nothing of it was left behind. A
    ValueError, so every command reports it as it reports a refusal: one line, exit 1."""


def no_space(error: BaseException, folder: Path, then: str = NOTHING_WRITTEN) -> OutputError | None:
    """The one-line OutputError for an OSError that ran out of room ("no space left on FOLDER (the disk is
    full; nothing was written)"), else None. The folder is the one the failing file was in when the error
    names it, else `folder`."""
    if not isinstance(error, OSError) or error.errno not in NO_SPACE:
        return None
    where = Path(error.filename).parent if isinstance(error.filename, str) else folder
    return OutputError(f"no space left on {where} ({NO_SPACE[error.errno]}{'; ' + then if then else ''})")


def check(path: Path, name: str | None = None) -> None:
    """Raise OutputError unless the file (or each file in the folder) at `path` is complete and on the disk:
    fsynced, and a PDF or zip whole by its own structure (what a truncated write would break). `name` is the
    name it will have (a temporary file's own name does not say what it is)."""
    name = name or path.name
    if path.is_dir():
        for part in sorted(path.iterdir()):
            check(part)
        _fsync(path)
        return
    _fsync(path)
    kind = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if kind == "pdf":
        with path.open("rb") as f:
            head = f.read(len(PDF_HEAD))
            f.seek(max(0, path.stat().st_size - TAIL))
            tail = f.read()
        if head != PDF_HEAD or not tail.rstrip().endswith(PDF_END):
            raise OutputError(f"{name} came out incomplete (no {'%PDF- start' if head != PDF_HEAD else '%%EOF end'} "
                              f"marker); {NOTHING_WRITTEN}")
    elif kind == "zip":
        try:
            with zipfile.ZipFile(path) as z:
                damaged = _first_damaged(z)
        except (zipfile.BadZipFile, EOFError) as e:
            raise OutputError(f"{name} came out incomplete ({e}); {NOTHING_WRITTEN}") from None
        if damaged is not None:
            raise OutputError(f"{name} came out damaged ({damaged} does not test clean); {NOTHING_WRITTEN}")


def _first_damaged(z: zipfile.ZipFile) -> str | None:
    """The first entry that does not read back whole: zipfile.testzip (each entry read, its CRC compared), and
    also one whose deflate stream zlib refuses, which testzip lets out as an error instead of naming."""
    try:
        return z.testzip()
    except (zlib.error, EOFError):
        pass
    for info in z.infolist():
        try:
            with z.open(info) as f:
                while f.read(1 << 20):
                    pass
        except (zipfile.BadZipFile, zlib.error, EOFError):
            return info.filename
    return None


def check_pdf(pdf: bytes, what: str) -> bytes:
    """The PDF bytes as they are, or OutputError when they do not start with %PDF- and end with %%EOF (a
    printer that stopped short): checked before they are written anywhere."""
    if not pdf.startswith(PDF_HEAD) or not pdf[-TAIL:].rstrip().endswith(PDF_END):
        raise OutputError(f"{what} is not a whole PDF (no {'%PDF- start' if not pdf.startswith(PDF_HEAD) else '%%EOF end'} "
                          "marker); nothing was written")
    return pdf


@contextlib.contextmanager
def replacing(target: Path, *, folder: bool = False,
              on_written: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Write `target` whole or not at all: yields a temporary path beside it (a file, or with folder=True a
    folder) for the body to write; then fsyncs and checks it (`check`), calls `on_written(temporary path)`
    (the command line audits there: the output is complete, and still has no name a user could open), and
    renames it to `target`. Any failure, an interruption included, removes the temporary path and any parent
    folder made for it, leaves an existing target as it was, and re-raises; running out of room anywhere in
    the block is an OutputError naming the folder (`no_space`).

    A folder replaces a folder that does not exist, or is empty, in one rename. Into a folder that holds
    files already (an earlier summary, a note of the user's), each file written replaces its namesake, one
    rename each, after all were written and checked; files rxdash does not write are kept."""
    target = Path(os.path.abspath(target))
    parent = target.parent
    if folder and target.exists() and not target.is_dir():
        raise OutputError(f"{target} is a file; --out names the folder to write into")
    if not folder and target.is_dir():
        raise OutputError(f"{target} is a folder; --out names the file to write")
    made: list[Path] = []
    temporary: Path | None = None
    try:
        try:
            _make_folders(parent, made)
            temporary = _create(parent, target.name, folder)
        except OSError as e:   # a folder that cannot be written in is the user's to fix, not a fault
            if e.errno in NO_SPACE:
                raise
            raise OutputError(f"cannot write in {parent} ({e.strerror})") from None
        mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
        yield temporary
        try:
            check(temporary, target.name)
        except OutputError as e:
            raise _if_full(parent, e) or e from None
        if mode is not None:
            os.chmod(temporary, mode)   # a replaced file keeps who may read it
        if on_written is not None:
            on_written(temporary)
        _publish(temporary, target, folder)
        temporary, made = None, []   # published: nothing more to remove
        _fsync(parent)   # the rename itself reaches the disk
    except OSError as e:
        full = no_space(e, parent)
        if full is None:
            raise
        raise full from None
    finally:
        if temporary is not None:
            _remove(temporary)
        for made_folder in reversed(made):
            with contextlib.suppress(OSError):
                made_folder.rmdir()   # only if still empty


def _if_full(folder: Path, e: OutputError) -> OutputError | None:
    """A failed check on a disk with (almost) no room left: the short write came from a full disk (a writer that
    did not pass the error on), so say that."""
    try:
        room = os.statvfs(folder)
    except OSError:
        return None
    if room.f_bavail * room.f_frsize >= 1 << 20:
        return None
    return OutputError(f"no space left on {folder} ({NO_SPACE[errno.ENOSPC]}: {str(e).split('; ')[0]}; "
                       f"{NOTHING_WRITTEN})")


def _make_folders(folder: Path, made: list[Path]) -> None:
    """Make `folder` and its missing parents, outermost first, each added to `made` as it is made (removed
    again on failure)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:   # made meanwhile by someone else: theirs, not ours to remove
            continue
        made.append(path)


def _create(parent: Path, name: str, folder: bool) -> Path:
    """A new hidden file or folder named after the target in `parent` (O_EXCL: never someone else's), with the
    permissions a plain open would give it (the umask applies)."""
    for _ in range(100):
        path = parent / f".{name}.{secrets.token_hex(4)}.part"
        try:
            if folder:
                path.mkdir()
            else:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:
            continue
    raise OutputError(f"could not make a temporary file in {parent}")


def _publish(temporary: Path, target: Path, folder: bool) -> None:
    """Give the checked output its name: os.replace for a file; for a folder, one rename, or file by file into a
    folder that holds files already."""
    if not folder:
        os.replace(temporary, target)
        return
    try:
        os.rename(temporary, target)   # absent or empty: the whole folder appears at once
        return
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    for part in sorted(temporary.iterdir()):
        os.replace(part, target / part.name)
    temporary.rmdir()
    _fsync(target)


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk: a full disk can show here, after every write
    said it worked."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
