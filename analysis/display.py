"""The one place where text from the data enters display: pages, charts, documents, files.

Clinic, clinician, specialty and drug names, ids, folder names and any other free text from input files
are shown as literal text, never as markup: a clinic named `![c](http://host/x.png)` must not make a
leader's browser fetch an image, and `<a href=...>` in a name must not become a link. Each renderer has
its own markup, so each has its own function here, applied where data text meets it:

- `md`: Streamlit Markdown (st.markdown, st.caption, st.info, st.warning, st.error, st.write);
- `plotly_text`: plotly strings (titles, tick labels, legends, hover text, annotations);
- `html_text`: the HTML report pack and letters;
- `spreadsheet_safe`: CSV cells a spreadsheet would run as a formula (OWASP "CSV injection");
- `file_part`: pieces of file and zip entry names built from data.
Nothing here imports Streamlit.
"""
from __future__ import annotations

import hashlib
import html
import re
from typing import TypeVar

import pandas as pd

# Every ASCII punctuation character: CommonMark lets a backslash escape any of them (spec 2.4).
_MD_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# GFM autolinks (`www.x`, `http://x`, `a@b.c`) are found in the parsed text, after escapes are read, so
# an invisible WORD JOINER (U+2060) is put where each needs two characters side by side.
WORD_JOINER = "\u2060"
_AUTOLINK_JOINS = re.compile(r"(?i)(?<=www)(?=\.)|(?<=:)(?=/)|(?<=@)")

# What makes a spreadsheet read a cell as a formula (OWASP CSV injection), with the full-width forms
# some locales' spreadsheets also accept.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")

T = TypeVar("T")


def md(text: object) -> str:
    """Data text made literal inside Streamlit Markdown, for every st.markdown/caption/info/warning/error
    that carries a name, a scope or a path.

    Every ASCII punctuation character is backslash-escaped, so no Markdown construct can start: images
    and links (`![x](url)`, `[x](url)`), raw HTML, emphasis, code, headings and lists; Streamlit's own
    `:red[...]` directives and `$...$` LaTeX (both parsed as syntax, which honours escapes); `&amp;`-style
    entities. Bare URLs and e-mail addresses (`http://x`, `www.x`, `a@b.c`) are linked by GFM in the
    parsed text, where escapes no longer count, so an invisible word joiner (U+2060) goes after `www`,
    between `:` and `/` and after `@`. Streamlit loads its emoji plugin only when the source holds an
    unescaped `:name:`, which an escaped string never does (so a string must not add a shortcode of its
    own around it). Line breaks, tabs and other control characters become single spaces (a browser shows
    runs of spaces as one anyway), so data cannot start a new Markdown block such as an indented code block.
    """
    flat = " ".join(_CONTROL.sub(" ", str(text)).split())
    return _MD_PUNCTUATION.sub(r"\\\1", _AUTOLINK_JOINS.sub(WORD_JOINER, flat))


def plotly_text(text: object) -> str:
    """Data text made literal in a plotly string (chart builders in analysis/charts.py, export footers in
    analysis/exports.py): titles, tick labels, trace names, hover customdata, annotations.

    Plotly renders a subset of HTML (`<a href>`, `<b>`, `<br>`, `<span style>` ...) and decodes entities
    once after reading the tags, so `&`, `<` and `>` as entities show as themselves. `$` becomes `&#36;`
    because plotly typesets any string holding `$...$` as LaTeX when MathJax is loaded (kaleido's image
    export loads it), which would replace the name with a formula. Data must still never be put inside a
    hovertemplate itself (`%{...}` would be substituted): put it in customdata or text and refer to that.
    """
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("$", "&#36;"))


def html_text(text: object) -> str:
    """Data text (and any other text) made literal in the HTML report pack (analysis/report.py) and the
    letters (analysis/feedback.py): `& < > " '` as entities, so a name cannot open a tag or an attribute."""
    return html.escape(str(text), quote=True)


def _safe_cell(value: T) -> T | str:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def spreadsheet_safe(frame_or_value):
    """Cells a spreadsheet would execute, neutralised with a leading single quote: text starting with
    = + - @, a tab, CR or LF (OWASP CSV injection). Applied to every CSV that leaves (the dashboard's
    "Data behind this chart", `rxdash summarize`, the loader's rejects file).

    A DataFrame gives a copy with its text cells (and text column names) neutralised; any other value is
    returned neutralised when it is text. Numbers are never touched, nor text that is a plain number
    ("-2.5" is a number to a spreadsheet, not a formula).
    """
    if not isinstance(frame_or_value, pd.DataFrame):
        return _safe_cell(frame_or_value)
    out = frame_or_value.copy()
    for i, column in enumerate(out.columns):
        values = out.iloc[:, i]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            out.isetitem(i, values.map(_safe_cell))
    if not isinstance(out.columns, pd.MultiIndex):
        out.columns = [_safe_cell(c) for c in out.columns]
    return out


def file_part(text: object, limit: int = 60) -> str:
    """A piece of a file or zip entry name built from data (a clinician id in `letter_<id>.pdf`): letters,
    digits, `_` and `-` only, so no `/`, `..`, drive letter or control character reaches a path. When
    anything had to change, a short hash of the original is added, so two different ids never share a
    file name (`D/1` and `D_1` would otherwise both be `D_1`)."""
    raw = str(text)
    safe = _FILE_UNSAFE.sub("_", raw).strip("_")[:limit]
    if safe == raw:
        return safe
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8]
    return f"{safe}-{digest}" if safe else digest


# Nouns whose plural is not the singular + "s".
_PLURALS = {"taper or discontinuation": "tapers or discontinuations", "patient's": "patients'"}


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 taper', '2 tapers', '1,200 patients': a count with its noun in the right number (shared by charts,
    pages, the report pack and letters, so no screen reads '1 tapers')."""
    word = noun if n == 1 else (plural or _PLURALS.get(noun, noun + "s"))
    return f"{n:,} {word}"
