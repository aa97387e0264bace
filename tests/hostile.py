"""The hostile input set (issue: hostile input): SQL in headers, markup and formulas in names.

Shared by the loader tests (tests/test_hostile_input.py), the display and export tests
(tests/test_hostile_names.py) and the browser test (tests/browser/test_hostile_pages.py).
Every payload is harmless if it *is* executed here (reads a file the test wrote, writes into a
temporary folder, points at a local port), so a failing test shows the fault without doing damage.
"""
from __future__ import annotations

from pathlib import Path


def header_payloads(secret_file: Path, copy_target: Path) -> list[str]:
    """Column names that would run SQL if a header name ever reached SQL as text."""
    return [
        # The red team's payload: closes the quoted identifier and reads a local file into the error.
        f'clinic_id"), max(cast((select content from read_text(\'{secret_file}\')) as integer)), count("clinic_id',
        f'x"); copy (select 1) to \'{copy_target}\'; --',
        'x" -- a comment',
        "x'; drop table prescriptions; --",
        'x" /* block comment */ "y',
        "semi;colon",
        'quote"inside',
        "back`tick",
        "dollar$1",
        "question?mark",
        ":as_of",
        "$path",
    ]


# Names a clinic, clinician, specialty or drug could carry. BEACON_HOST is replaced by the test's own
# local server; a request reaching it means the name was rendered as markup.
BEACON = "http://BEACON_HOST/beacon.png"
MARKUP_NAMES = [
    f"![c]({BEACON}?clinic)",
    f"[click me]({BEACON}?link)",
    f"<img src='{BEACON}?img' onerror='alert(1)'>",
    "<script>alert('x')</script>",
    "**bold** _it_ `code` # heading",
    ":red[coloured] $x^2$ :smile:",
    f"<a href='{BEACON}?a'>anchor</a>",
]
FORMULA_NAMES = [
    '=HYPERLINK("http://BEACON_HOST/x","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
HOSTILE_NAMES = MARKUP_NAMES + FORMULA_NAMES

# What a spreadsheet would treat as a formula when it starts a cell (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
