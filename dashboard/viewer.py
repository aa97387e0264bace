"""Who is looking: Streamlit's sign-in (st.login, OIDC) when `[auth]` is configured, the roles from
`[rxdash.roles]` (analysis/access.py), the checks every page makes, and the audit of sign-ins, profile
views and exports."""
from __future__ import annotations

import streamlit as st

from analysis import access, exports
from analysis.display import md

SIGNED_IN = "_audited_sign_in"


def _secrets() -> dict:
    try:
        return st.secrets.to_dict()
    except Exception:   # no secrets.toml, or one Streamlit cannot read: sign-in stays off
        return {}


def auth_configured() -> bool:
    return bool(_secrets().get("auth"))


def current() -> access.Viewer | None:
    """The viewer of this run: the local demo viewer when sign-in is not configured; None when it is and
    nobody has signed in yet."""
    secrets = _secrets()
    if not secrets.get("auth"):
        return access.local_viewer()
    if not st.user.is_logged_in:
        return None
    # Only claims the provider vouches for give a role (analysis.access.identity_from_claims).
    return access.viewer_for(st.user.to_dict(), secrets.get("rxdash", {}))


def require(page: str) -> access.Viewer:
    """Stop the page, in plain words, unless the viewer's role may open it. Pages a role may not open are
    not registered in the navigation, but a page must not rely on that: it checks for itself."""
    v = current()
    if v is None or not v.may_open(page):
        st.error("This page is not open to your role. Ask the dashboard's administrator if you need it.",
                 icon=":material/lock:")
        st.stop()
    return v


def record(event: str, what: str, filters: dict[str, object] | None = None, v: access.Viewer | None = None) -> None:
    """Append one event (sign-in, profile view, export) to the audit log with the viewer and role (`v`, or
    this run's viewer: a download's file is built outside the script run, where st.user cannot be read)."""
    v = v or current()
    exports.audit(what, user=v.user if v else "not signed in", filters=filters or {},
                  role=v.role if v else "", event=event)


def sign_in_page() -> None:
    st.title("Prescribing consistency")
    st.write("This dashboard compares clinicians' opioid prescribing. Please sign in with your organisation's "
             "account; what you can see depends on your role.")
    auth = _secrets().get("auth", {})
    providers = [k for k, v in auth.items() if isinstance(v, dict)]
    if st.button("Sign in", type="primary", icon=":material/login:"):
        st.login(providers[0] if providers and "client_id" not in auth else None)


def _audit_sign_in(v: access.Viewer, what: str) -> None:
    """One audit entry per person per session, on their first run after signing in."""
    if st.session_state.get(SIGNED_IN) != v.user:
        st.session_state[SIGNED_IN] = v.user
        record("sign-in", what)


def no_role_page() -> None:
    v = current()
    if v is not None:
        _audit_sign_in(v, "dashboard (no role)")
    st.title("No access yet")
    st.warning(f"You are signed in as {md(v.user) if v else 'unknown'}, but no role in this dashboard has been given to "
               "this account. Ask the dashboard's administrator to add it under [rxdash.roles].",
               icon=":material/lock:")
    if st.button("Sign out", icon=":material/logout:"):
        st.logout()


def header(v: access.Viewer) -> None:
    """The local-demo banner, or who is signed in with a sign-out button; a sign-in is audited once."""
    if v.local:
        st.warning("Local demo: no sign-in is configured, so this dashboard only listens on this computer and shows "
                   "every page, with clinicians by pseudonym. See the README (Sign-in and roles) before sharing it.",
                   icon=":material/science:")
        return
    _audit_sign_in(v, "dashboard")
    st.sidebar.caption(f"Signed in as {md(v.user)} ({v.role})")
    if st.sidebar.button("Sign out", icon=":material/logout:"):
        st.logout()
