"""Who may see what (DESIGN.md "Privacy and access"): roles, what each allows, and who holds which role.

Roles come from configuration, `[rxdash.roles]` in Streamlit's secrets.toml: each role lists e-mail
addresses and groups ("group:NAME", matched against the identity token's groups claim). A person with
several roles gets what any of them allows. The clinician role is tied to one clinician by
`[rxdash.clinicians]` (e-mail -> clinician_id). Nothing here imports Streamlit.

```toml
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


def roles_for(email: str, groups: Iterable[str], config: Mapping[str, object]) -> tuple[str, ...]:
    """The roles `[rxdash.roles]` gives this e-mail address (case-insensitive) or any of these groups."""
    email = (email or "").strip().lower()
    groups = {f"group:{g}".lower() for g in groups}
    table = config.get("roles", {}) if isinstance(config, Mapping) else {}
    found = []
    for role, members in table.items():
        if role not in ROLES or role == LOCAL_ROLE:
            continue
        # A list of members, or one written as a plain string; anything else in the file gives nobody the role.
        members = [members] if isinstance(members, str) else list(members) if isinstance(members, list) else []
        if any(str(m).strip().lower() in ({email} if email else set()) | groups for m in members):
            found.append(role)
    return tuple(r for r in ROLES if r in found)


def viewer_for(email: str, groups: Iterable[str], config: Mapping[str, object]) -> Viewer:
    """The signed-in person's viewer: roles from the configuration, and their clinician id if mapped."""
    table = config.get("clinicians", {})
    clinicians = {str(k).strip().lower(): str(v) for k, v in (table.items() if isinstance(table, Mapping) else ())}
    return Viewer(email, roles_for(email, groups, config), clinicians.get((email or "").strip().lower()))


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
