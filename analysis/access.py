"""Who may see what (DESIGN.md "Privacy and access"): roles, what each allows, and who holds which role.

Roles come from configuration, `[rxdash.roles]` in Streamlit's secrets.toml: each role lists e-mail
addresses (matched only against an e-mail the identity provider has verified, `email_verified` true),
groups ("group:NAME", matched only against the token's groups claim) and subjects ("sub:ID", the
provider's own identifier). A person with several roles gets what any of them allows. The clinician role
is tied to one clinician by `[rxdash.clinicians]` (e-mail or "sub:ID" -> clinician_id). Nothing here
imports Streamlit.

```toml
[rxdash]
groups_claim = "groups"          # the token's claim that lists the person's groups

[rxdash.roles]
leader = ["lead@example.org"]
committee = ["group:quality-committee"]
clinician = ["jordan.novak@example.org"]
admin = ["it@example.org"]

[rxdash.clinicians]
"jordan.novak@example.org" = "D0002"
```
"""
from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ALL_PAGES = frozenset({"overview", "variation", "tapers", "profile", "data-quality", "methods"})
LOCAL_USER = "local (no sign-in configured)"
LOCAL_ROLE = "local demo"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Role:
    """What a role allows."""

    pages: frozenset[str]
    names: bool = False          # clinician names on screen and in exports (otherwise pseudonyms)
    any_profile: bool = False    # may open any clinician's profile (otherwise only their own)
    exports: bool = False        # chart files, data behind charts, report pack, letters
    audit_log: bool = False      # may read the audit log


ROLES: dict[str, Role] = {
    # Clinic leaders see who is who: they hold the conversations that follow.
    "leader": Role(frozenset({"overview", "variation", "tapers", "profile", "methods"}), names=True,
                   any_profile=True, exports=True),
    # Quality committees see every aggregate panel and export it, clinicians pseudonymous.
    "committee": Role(frozenset({"overview", "variation", "tapers", "methods"}), exports=True),
    # A clinician sees their own profile (named) beside anonymous peers, and can download their letter.
    "clinician": Role(frozenset({"profile", "methods"}), exports=True),
    # Administrators look after the data: what is loaded, rejected rows, load history, the audit log.
    "admin": Role(frozenset({"data-quality", "methods"}), audit_log=True),
    # No sign-in configured: a local demo on this machine only, everything but names.
    LOCAL_ROLE: Role(ALL_PAGES, any_profile=True, exports=True, audit_log=True),
}


@dataclass(frozen=True)
class Viewer:
    """The person looking, with the union of what their roles allow."""

    user: str
    roles: tuple[str, ...]
    clinician_id: str | None = None

    def _any(self, attribute: str) -> bool:
        return any(getattr(ROLES[r], attribute) for r in self.roles)

    @property
    def pages(self) -> frozenset[str]:
        return frozenset().union(*(ROLES[r].pages for r in self.roles)) if self.roles else frozenset()

    def may_open(self, page: str) -> bool:
        return page in self.pages

    @property
    def names(self) -> bool:
        return self._any("names")

    @property
    def any_profile(self) -> bool:
        return self._any("any_profile")

    @property
    def exports(self) -> bool:
        return self._any("exports")

    @property
    def audit_log(self) -> bool:
        return self._any("audit_log")

    @property
    def local(self) -> bool:
        return LOCAL_ROLE in self.roles

    @property
    def role(self) -> str:
        """The roles in words, for the audit log and the sidebar."""
        return ", ".join(self.roles) or "none"


@dataclass(frozen=True)
class Identity:
    """What the identity token says about the person, reduced to the claims rxdash trusts.

    email: the e-mail claim, lower-cased, only when the provider vouches for it (`email_verified` true);
    sub: the provider's own subject identifier (always the provider's); groups: the groups claim, as given."""

    email: str | None
    sub: str | None
    groups: frozenset[str]

    @property
    def user(self) -> str:
        """Who this is, for the audit log and the sidebar: the verified e-mail, else the subject."""
        return self.email or (f"sub:{self.sub}" if self.sub else "unknown")


def _verified(value: object) -> bool:
    # OIDC Core 5.1: email_verified is a boolean; some providers (Amazon Cognito) send the text "true".
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def identity_from_claims(claims: Mapping[str, object], config: Mapping[str, object] | None = None) -> Identity:
    """The trusted identity in an OIDC token's claims (Streamlit's st.user).

    The e-mail counts only when `email_verified` is true: an unverified address is whatever the account holder
    typed. Groups come from the claim named by `[rxdash] groups_claim` (default "groups"; Amazon Cognito sends
    "cognito:groups", Auth0 a namespaced claim): a list of names, or one name."""
    settings = config if isinstance(config, Mapping) else {}
    email = claims.get("email")
    email = str(email).strip().lower() if isinstance(email, str) and email.strip() and _verified(
        claims.get("email_verified")) else None
    sub = claims.get("sub")
    sub = str(sub).strip() if isinstance(sub, (str, int)) and str(sub).strip() else None
    raw = claims.get(str(settings.get("groups_claim") or "groups")) or []
    raw = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, (list, tuple)) else []
    return Identity(email, sub, frozenset(str(g) for g in raw if isinstance(g, str) and g))


def _members(entries: object) -> list[str]:
    # A list of members, or one written as a plain string; anything else in the file gives nobody the role.
    entries = [entries] if isinstance(entries, str) else list(entries) if isinstance(entries, list) else []
    return [str(m).strip() for m in entries if isinstance(m, str) and m.strip()]


def holds(member: str, who: Identity) -> bool:
    """Whether one entry of a role's list names this person. Each kind of entry is matched against one claim
    only: "group:NAME" against the groups claim (exactly, as the provider writes group names), "sub:ID" against
    the subject (exactly), anything else as an e-mail address against the verified e-mail (case-insensitively,
    as addresses are compared in practice)."""
    if member.startswith("group:"):
        return member[len("group:"):] in who.groups
    if member.startswith("sub:"):
        return who.sub is not None and member[len("sub:"):] == who.sub
    return who.email is not None and member.lower() == who.email


def roles_for(who: Identity, config: Mapping[str, object]) -> tuple[str, ...]:
    """The roles `[rxdash.roles]` gives this person (Identity: verified e-mail, subject, groups)."""
    table = config.get("roles", {}) if isinstance(config, Mapping) else {}
    table = table if isinstance(table, Mapping) else {}
    found = {role for role, members in table.items()
             if role in ROLES and role != LOCAL_ROLE and any(holds(m, who) for m in _members(members))}
    return tuple(r for r in ROLES if r in found)


def viewer_for(claims: Mapping[str, object], config: Mapping[str, object]) -> Viewer:
    """The signed-in person's viewer from the token's claims: roles from the configuration, and their clinician
    id when `[rxdash.clinicians]` maps their verified e-mail (or "sub:ID") to one."""
    config = config if isinstance(config, Mapping) else {}
    who = identity_from_claims(claims, config)
    table = config.get("clinicians", {})
    clinicians = {str(k).strip(): str(v) for k, v in (table.items() if isinstance(table, Mapping) else ())}
    clinician = next((v for k, v in clinicians.items() if holds(k, who)), None)
    return Viewer(who.user, roles_for(who, config), clinician)


def local_viewer() -> Viewer:
    return Viewer(LOCAL_USER, (LOCAL_ROLE,))


def secrets_files(cwd: Path | None = None) -> tuple[Path, ...]:
    """Where Streamlit reads secrets.toml: the working folder's .streamlit, then the home folder's."""
    return ((cwd or Path.cwd()) / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml")


def auth_configured(files: Iterable[Path] | None = None) -> bool:
    """True when a secrets.toml that Streamlit reads has an [auth] section (sign-in is on)."""
    for path in files or secrets_files():
        if path.is_file():
            with path.open("rb") as f:
                if tomllib.load(f).get("auth"):
                    return True
    return False
