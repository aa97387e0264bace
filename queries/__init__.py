"""SQL files shipped as package data; `load(name)` returns the text of `queries/<name>.sql`.

A query may reuse common table expressions kept in a fragment file `queries/_<fragment>.sql` by a line
`-- @include <fragment>`; the line is replaced by the fragment's text (fragments may include others).
This composes SQL text only: values always travel as bound `:parameters`.
"""
from __future__ import annotations

import re
from importlib import resources

_INCLUDE = re.compile(r"^[ \t]*--[ \t]*@include[ \t]+(\w+)[ \t]*$", re.MULTILINE)


def names() -> list[str]:
    """Every query name shipped with the package (fragments and dialect overrides excluded)."""
    files = resources.files(__name__).iterdir()
    return sorted(f.name[:-4] for f in files
                  if f.name.endswith(".sql") and f.name.count(".") == 1 and not f.name.startswith("_"))


def _read(file_name: str) -> str | None:
    path = resources.files(__name__) / file_name
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _expand(text: str, seen: tuple[str, ...]) -> str:
    def replace(match: re.Match) -> str:
        file_name = f"_{match.group(1)}.sql"
        if file_name in seen:
            raise ValueError(f"query fragment {file_name} includes itself ({' -> '.join(seen + (file_name,))})")
        body = _read(file_name)
        if body is None:
            raise KeyError(f"unknown query fragment {match.group(1)!r} (no queries/{file_name})")
        return _expand(body.rstrip("\n"), seen + (file_name,))

    return _INCLUDE.sub(replace, text)


def load(name: str, dialect: str | None = None) -> str:
    """Text of a query with its fragments included; a `<name>.<dialect>.sql` override wins where one exists."""
    text = _read(f"{name}.{dialect}.sql") if dialect else None
    if text is None:
        text = _read(f"{name}.sql")
    if text is None:
        raise KeyError(f"unknown query {name!r}; known queries: {', '.join(names())}")
    return _expand(text, (f"{name}.sql",))


def statements(name: str, dialect: str | None = None) -> list[str]:
    """A script file split into statements (each ends with ';' at the end of a line)."""
    text = load(name, dialect)
    parts, current = [], []
    for line in text.splitlines():
        if line.strip().startswith("--") and not current:
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            parts.append("\n".join(current).strip().rstrip(";"))
            current = []
    if "".join(current).strip():
        parts.append("\n".join(current).strip())
    return parts
