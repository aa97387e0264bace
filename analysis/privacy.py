"""Pseudonyms for clinicians (DESIGN.md "Privacy and access").

A clinician's label is a keyed hash of their id: "Clinician 7KQ2F" means the same person in every
period, page and export of one deployment, and nobody without the deployment's secret can work back
from the label to the id. Names appear only where a role allows it (analysis/access.py); links and the
audit log always use the pseudonym's code.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tomllib
from collections.abc import Iterable
from pathlib import Path

SECRET_ENV = "RXDASH_PSEUDONYM_SECRET"
SECRET_FILE = Path.home() / ".rxdash" / "pseudonym.key"
LABEL_CHARS = 5   # 32^5 = 33.5 million labels; collisions are lengthened, see pseudonyms()


def pseudonym_secret(search: tuple[Path, ...] | None = None, key_file: Path = SECRET_FILE) -> bytes:
    """The deployment's secret: $RXDASH_PSEUDONYM_SECRET, `[rxdash] pseudonym_secret` in secrets.toml,
    else a random one kept in ~/.rxdash/pseudonym.key (created on first use, readable by its owner only)."""
    value = os.environ.get(SECRET_ENV)
    if value:
        return value.encode("utf-8")
    search = search or (Path.cwd() / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml")
    for path in search:
        if path.is_file():
            with path.open("rb") as f:
                found = tomllib.load(f).get("rxdash", {}).get("pseudonym_secret")
            if found:
                return str(found).encode("utf-8")
    if not key_file.is_file():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_hex(32))
    return key_file.read_text().strip().encode("utf-8")


def _code(clinician_id: str, secret: bytes, chars: int) -> str:
    digest = hmac.new(secret, clinician_id.encode("utf-8"), hashlib.sha256).digest()
    # Base32 without padding: upper-case letters and digits 2-7, nothing easily misread as a word.
    return base64.b32encode(digest).decode("ascii")[:chars]


def pseudonyms(clinician_ids: Iterable[str], secret: bytes, prefix: str = "Clinician") -> dict[str, str]:
    """Label per id, e.g. {"D0001": "Clinician 7KQ2F"}. Ids whose short codes collide get longer codes,
    so labels are always unique; the others never change when clinicians are added."""
    ids = sorted(set(clinician_ids))
    codes = {i: _code(i, secret, LABEL_CHARS) for i in ids}
    seen: dict[str, list[str]] = {}
    for i, c in codes.items():
        seen.setdefault(c, []).append(i)
    for clash in (group for group in seen.values() if len(group) > 1):
        for i in clash:
            codes[i] = _code(i, secret, 16)
    return {i: f"{prefix} {c}" for i, c in codes.items()}
