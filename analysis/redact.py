"""Secrets never leave the process: a database URL as it may be shown, and any text with the secrets it may carry
blanked out.

A URL can carry a secret in its password, in any query parameter (PostgreSQL's `?password=`, `sslpassword=`, a
token added by a proxy) or, for Spark Connect, in the `;token=...` parameters that ride in its path
(`sc://HOST:PORT/;token=...;use_ssl=true`). Secrets can also arrive in environment variables (PGPASSWORD, a
Spark Connect token). Parameters are shown only when they are on a short list of settings known to hold no
secret (`SHOWN_PARAMETERS`); every other value is written `***`, whatever its name, because a name that looks
harmless today may not be tomorrow. `scrub` is the last line of defence for text that came from elsewhere (a
driver's error message that echoes the connection string, a log line): every secret known to the process is
replaced wherever it appears, as written or percent-encoded.
"""
from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote

HIDDEN = "***"
# Connection settings that hold no secret: shown as given. Everything else in a URL is hidden.
SHOWN_PARAMETERS = frozenset({
    "database", "warehouse", "sslmode", "use_ssl", "application_name", "connect_timeout", "target_session_attrs",
    "options", "user_id", "user_agent", "session_id", "driver", "read_only"})
# Environment variables whose values are secrets wherever they appear (PostgreSQL's own, Spark Connect's, and
# any whose name says so).
SECRET_ENV = re.compile(r"PASSWORD|PASSWD|PGPASS|TOKEN|SECRET|CREDENTIAL|(^|_)KEY($|_)", re.IGNORECASE)
URL_ENV = ("RXDASH_DB_URL", "SPARK_REMOTE")
MIN_SECRET = 3   # shorter values ("1", "on") would blank ordinary text; no real secret is that short


def _spark_connect_parts(path: str) -> list[tuple[str, str]]:
    """Spark Connect's `;key=value` parameters from a URL's path (`/;token=abc;use_ssl=true`)."""
    parts = []
    for item in unquote(path).lstrip("/").split(";"):
        if "=" in item:
            key, value = item.split("=", 1)
            parts.append((key.strip(), value))
    return parts


def url_secrets(url: str) -> set[str]:
    """The secret values a database URL carries: its password and every parameter not in SHOWN_PARAMETERS."""
    import sqlalchemy as sa

    found: set[str] = set()
    try:
        parsed = sa.make_url(url)
    except Exception:   # not a URL SQLAlchemy reads: hide what follows a scheme's '//' user:password@ part
        match = re.search(r"//[^:/@]*:([^@/]+)@", url)
        return {match.group(1)} if match else set()
    if parsed.password:
        found.add(str(parsed.password))
    for key, value in parsed.query.items():
        if key.lower() not in SHOWN_PARAMETERS:
            found.update(str(v) for v in (value if isinstance(value, tuple) else (value,)))
    if parsed.database and ";" in unquote(parsed.database):
        found.update(v for k, v in _spark_connect_parts(parsed.database) if k.lower() not in SHOWN_PARAMETERS)
    return {s for s in found if len(s) >= MIN_SECRET}


def shown_url(url: str) -> str:
    """The URL as it may be printed, logged, written or put on a page: password and every parameter not in
    SHOWN_PARAMETERS written `***` (Spark Connect's `;token=` parameters included)."""
    import sqlalchemy as sa

    try:
        parsed = sa.make_url(url)
    except Exception:
        return scrub(url, [url])
    query = {k: (v if k.lower() in SHOWN_PARAMETERS else HIDDEN) for k, v in parsed.query.items()}
    spark_path = parsed.database if parsed.database and ";" in unquote(parsed.database) else None
    shown = parsed.set(query=query)
    if spark_path:
        shown = shown._replace(database=None)   # URL.set ignores None; the path is written below, parameter by parameter
    text = shown.render_as_string(hide_password=True)
    text = text.replace("%2A%2A%2A", HIDDEN)
    if spark_path:
        params = ";".join(f"{k}={v if k.lower() in SHOWN_PARAMETERS else HIDDEN}"
                          for k, v in _spark_connect_parts(spark_path))
        text = text.rstrip("/") + "/;" + params
    return text


def known_secrets(urls: Iterable[str] = (), environ: dict[str, str] | None = None) -> set[str]:
    """Every secret this process knows of: those in `urls`, in the URLs the environment gives
    ($RXDASH_DB_URL, $SPARK_REMOTE) and the values of environment variables whose names say they are secret."""
    environ = os.environ if environ is None else environ
    found: set[str] = set()
    for url in [*urls, *(environ.get(name) for name in URL_ENV)]:
        if url:
            found |= url_secrets(str(url))
    for name, value in environ.items():
        if SECRET_ENV.search(name) and value and len(value) >= MIN_SECRET and not value.isdigit():
            found.add(value)
    return found


def _variants(urls: Iterable[str], environ: dict[str, str] | None) -> list[str]:
    """The known secrets as they may be written (as given, percent-encoded), longest first."""
    variants: set[str] = set()
    for secret in known_secrets(urls, environ):
        variants |= {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    return sorted((v for v in variants if v), key=len, reverse=True)


def _blank(text: str, variants: list[str]) -> str:
    for secret in variants:
        if secret in text:
            text = text.replace(secret, HIDDEN)
    return text


def scrub(text: str, urls: Iterable[str] = (), environ: dict[str, str] | None = None) -> str:
    """`text` with every known secret (known_secrets) written `***`, as given or percent-encoded."""
    return _blank(text, _variants(urls, environ)) if text else text


class ScrubbedStream(io.TextIOBase):
    """A text stream that scrubs what is written before passing it on (the command line's stdout and stderr,
    the server's log): no secret reaches a terminal or a log file, whichever line printed it."""

    def __init__(self, stream, urls: Iterable[str] = ()) -> None:
        self._stream = stream
        self._urls = tuple(urls)
        self._variants = _variants(self._urls, None)   # the environment as it is when the stream is made

    def add_url(self, url: str) -> None:
        self._urls = (*self._urls, url)
        self._variants = _variants(self._urls, None)

    def write(self, text: str) -> int:
        self._stream.write(_blank(text, self._variants))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self):   # noqa: D401 - the wrapped stream's
        return getattr(self._stream, "encoding", "utf-8")

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def install(urls: Iterable[str] = ()) -> None:
    """Scrub this process's stdout and stderr from now on (idempotent)."""
    import sys

    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, ScrubbedStream):
            for url in urls:
                stream.add_url(url)
        elif stream is not None:
            setattr(sys, name, ScrubbedStream(stream, urls))
