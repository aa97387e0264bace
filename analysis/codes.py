"""Drug codes as extracts write them: NDCs in every common shape, and RxNorm concept ids (RxCUI).

Pure functions, no I/O. The loader (analysis.drugs.identify_drug) reads each distinct code once.
"""
from __future__ import annotations

import re
from collections.abc import Container
from decimal import Decimal, InvalidOperation

# 10-digit NDC shapes (labeler-product-package) and the segment each pads to reach 5-4-2 (11 digits).
NDC_SHAPES = ((4, 4, 2), (5, 3, 2), (5, 4, 1), (5, 4, 2))
_SEPARATORS = re.compile(r"[-\s]+")
_FLOAT_TAIL = re.compile(r"\.0*$")                       # 406037801.0 (a number that went through a float)
_SCIENTIFIC = re.compile(r"^\d(\.\d+)?[eE]\+?\d{1,2}$")  # 4.06037801E+08 (a spreadsheet's display)
MIN_PLAIN_DIGITS = 6   # shorter plain numbers are not NDCs even with every leading zero restored


def _plain_digits(text: str) -> str | None:
    """Digits of a code written as one number (float tails and scientific notation undone), else None."""
    text = _FLOAT_TAIL.sub("", text) if "." in text and not _SCIENTIFIC.match(text) else text
    if _SCIENTIFIC.match(text):
        try:
            value = Decimal(text)
        except InvalidOperation:
            return None
        if value != value.to_integral_value():
            return None
        text = str(int(value))
    return text if text.isascii() and text.isdigit() else None


def ndc11_candidates(text: str) -> tuple[str, ...]:
    """The 11-digit (5-4-2) NDCs a written code can stand for, most likely first; () when it is no NDC.

    Rule (FDA's 10-digit NDC and the 11-digit HIPAA / CMS billing format; CMS "NDC 11-digit conversion":
    pad the short segment with a leading zero): 4-4-2 pads the labeler (0406-0378-01 -> 00406037801),
    5-3-2 pads the product (12345-678-90 -> 12345067890), 5-4-1 pads the package (12345-6789-1 ->
    12345678901); 5-4-2 and 11 plain digits are already 11 digits. Hyphens or spaces separate segments.

    A code written without hyphens in fewer than 11 digits is ambiguous: it may be an 11-digit code whose
    leading zeros a spreadsheet dropped (406037801 -> 00406037801, the same as the 4-4-2 reading of a
    10-digit code) or a 10-digit code in any of the three shapes. All readings are returned; the caller
    keeps the one its reference holds (`match_ndc`: exactly one, else none). A trailing ".0" and
    scientific notation (4.06037801E+08) are undone first. Anything else (letters, 12+ digits, other
    hyphen shapes, fewer than 6 digits) is no NDC.
    """
    text = (text or "").strip()
    if not text:
        return ()
    parts = [p for p in _SEPARATORS.split(text) if p]
    if len(parts) == 3:
        if not all(p.isascii() and p.isdigit() for p in parts):
            return ()
        if tuple(len(p) for p in parts) not in NDC_SHAPES:
            return ()
        return (parts[0].zfill(5) + parts[1].zfill(4) + parts[2].zfill(2),)
    if len(parts) != 1:
        return ()
    digits = _plain_digits(parts[0])
    if digits is None or not MIN_PLAIN_DIGITS <= len(digits) <= 11:
        return ()
    if len(digits) == 11:
        return (digits,)
    ten = digits.zfill(10)
    readings = (digits.zfill(11), ten[:5] + "0" + ten[5:], ten[:9] + "0" + ten[9:])
    return tuple(dict.fromkeys(readings))


def match_ndc(text: str, known: Container[str]) -> tuple[str, str | None]:
    """(status, ndc11) of a written code against a reference's 11-digit NDCs.

    status: 'blank'; 'unreadable' (no NDC shape); 'matched' (one reading is in the reference: ndc11);
    'ambiguous' (several readings are); 'unknown' (a readable NDC that is not in the reference)."""
    if not (text or "").strip():
        return "blank", None
    readings = ndc11_candidates(text)
    if not readings:
        return "unreadable", None
    found = [r for r in readings if r in known]
    if len(found) == 1:
        return "matched", found[0]
    return ("ambiguous", None) if found else ("unknown", None)


def normalise_rxcui(text: str) -> str | None:
    """An RxNorm concept id (RXCUI) as plain digits ('1049621', also '1049621.0' from a spreadsheet);
    None when it is not a whole number of 1 to 8 digits. Leading zeros are dropped (RXCUIs have none)."""
    digits = _plain_digits((text or "").strip())
    if digits is None or not 1 <= len(digits.lstrip("0") or "0") <= 8 or not digits.strip("0"):
        return None
    return digits.lstrip("0")


def match_rxcui(text: str, known: Container[str]) -> tuple[str, str | None]:
    """(status, rxcui) as match_ndc: blank, unreadable, matched or unknown."""
    if not (text or "").strip():
        return "blank", None
    code = normalise_rxcui(text)
    if code is None:
        return "unreadable", None
    return ("matched", code) if code in known else ("unknown", None)
