"""SQL files shipped as package data; `load(name)` returns the text of `queries/<name>.sql`."""
from __future__ import annotations

from importlib import resources


def names() -> list[str]:
    """Every query name shipped with the package (dialect overrides excluded)."""
    files = resources.files(__name__).iterdir()
    return sorted(f.name[:-4] for f in files if f.name.endswith(".sql") and f.name.count(".") == 1)


def load(name: str, dialect: str | None = None) -> str:
    """Text of a query; a `<name>.<dialect>.sql` override wins where one exists."""
    root = resources.files(__name__)
    if dialect and (root / f"{name}.{dialect}.sql").is_file():
        return (root / f"{name}.{dialect}.sql").read_text(encoding="utf-8")
    path = root / f"{name}.sql"
    if not path.is_file():
        raise KeyError(f"unknown query {name!r}; known queries: {', '.join(names())}")
    return path.read_text(encoding="utf-8")


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
