"""The pages of the app, declared once: the navigation (dashboard/app.py) and links between pages use them."""
from __future__ import annotations

import importlib

import streamlit as st

from analysis import access

# url path, title, icon, module under dashboard/views
PAGES = (
    ("overview", "Overview", ":material/dashboard:", "overview"),
    ("variation", "Clinician variation", ":material/scatter_plot:", "variation"),
    ("tapers", "Tapers", ":material/trending_down:", "tapers"),
    ("profile", "Clinician profile", ":material/person:", "profile"),
    ("data-quality", "Data quality", ":material/fact_check:", "data_quality"),
    ("methods", "Methods", ":material/menu_book:", "methods"),
)


def page(url_path: str, default: bool | None = None) -> st.Page:
    """The st.Page for a url path (pages are identified by it, so links match the navigation's pages)."""
    path, title, icon, module = next(p for p in PAGES if p[0] == url_path)
    view = importlib.import_module(f"dashboard.views.{module}")
    return st.Page(view.render, title=title, icon=icon, url_path=path,
                   default=path == "overview" if default is None else default)


def all_pages() -> list[st.Page]:
    return [page(p[0]) for p in PAGES]


def allowed(v: access.Viewer) -> list[str]:
    """The url paths of the pages this viewer's roles may open, in the navigation's order."""
    return [p[0] for p in PAGES if v.may_open(p[0])]


def for_viewer(v: access.Viewer) -> list[st.Page]:
    """The pages registered for this viewer: only those their roles allow; the first is the default."""
    paths = allowed(v)
    return [page(p, default=i == 0) for i, p in enumerate(paths)]


def view(url_path: str):
    """The render function of a page (for tests that run one page with the shared sidebar)."""
    module = next(p[3] for p in PAGES if p[0] == url_path)
    return importlib.import_module(f"dashboard.views.{module}").render
