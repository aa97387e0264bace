"""Clinician pseudonyms (analysis.privacy): stable, unique, keyed."""
from __future__ import annotations

import re
import stat

from analysis import privacy


def test_pseudonyms_are_stable_keyed_and_unique():
    ids = [f"D{i:04d}" for i in range(2000)]
    first = privacy.pseudonyms(ids, b"secret-1")
    assert first == privacy.pseudonyms(list(reversed(ids)), b"secret-1")          # same secret, same labels
    assert all(re.fullmatch(r"Clinician [A-Z2-7]{5}", v) for v in first.values())
    assert len(set(first.values())) == len(ids)
    other = privacy.pseudonyms(ids, b"secret-2")
    assert sum(first[i] == other[i] for i in ids) == 0                             # another deployment
    # Adding clinicians does not change anyone else's label.
    assert {k: v for k, v in privacy.pseudonyms(ids + ["D9999"], b"secret-1").items() if k != "D9999"} == first


def test_colliding_codes_are_lengthened_and_the_others_kept(monkeypatch):
    monkeypatch.setattr(privacy, "LABEL_CHARS", 1)   # 32 codes for 100 ids: collisions are certain
    ids = [f"D{i}" for i in range(100)]
    labels = privacy.pseudonyms(ids, b"k")
    assert len(set(labels.values())) == 100
    lengths = {len(v.split()[1]) for v in labels.values()}
    assert lengths <= {1, 16} and 16 in lengths


def test_the_secret_comes_from_the_environment_then_secrets_then_a_private_key_file(monkeypatch, tmp_path):
    monkeypatch.setenv(privacy.SECRET_ENV, "from-env")
    assert privacy.pseudonym_secret() == b"from-env"
    monkeypatch.delenv(privacy.SECRET_ENV)
    toml = tmp_path / "secrets.toml"
    toml.write_text('[rxdash]\npseudonym_secret = "from-secrets"\n')
    assert privacy.pseudonym_secret(search=(toml,)) == b"from-secrets"
    key = tmp_path / "k" / "pseudonym.key"
    made = privacy.pseudonym_secret(search=(tmp_path / "none.toml",), key_file=key)
    assert len(made) == 64 and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert privacy.pseudonym_secret(search=(tmp_path / "none.toml",), key_file=key) == made   # kept
