"""The one disclosure rule for everything that leaves the dashboard: files, chart images and documents.

The rule is the CMS cell-size suppression policy (DESIGN.md "Privacy and access"; CMS, "Cell Size
Suppression Policy", 2020): no count from 1 to 10 (1 to min_cell - 1) is published, nor any value from which
one could be worked out. Three consequences, applied by every export through this module:

- a small count is never published as its number: in a file its cell is blank and the row's `withheld_why`
  says "from 1 to 10" (count columns stay numbers, so a spreadsheet still sums them); on a chart it is drawn
  as "<11"; in prose it reads "fewer than 11";
- a figure derived from a small count (a share, a shrunken rate, a bar's height, a point's position) is not
  drawn or written individually;
- a total shown beside its parts must not give a withheld part back: when exactly one part of a shown total
  is withheld, the next smallest part is withheld too ("withheld" in files).

What cannot identify anyone is kept: a clinician's flag (above, below, within the limits, too few to
judge), the direction, the band and the reason each cell is withheld (`why`).

min_cell <= 1 turns the rule off (`--min-cell 0`, internal use only); the screens of the dashboard, which
only signed-in roles see, draw exact counts and apply the rule only to what is downloaded or printed.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.display import counted

MIN_CELL = 11
WITHHELD = "withheld"


def applies(min_cell: int) -> bool:
    """Whether the rule is on (min_cell 2 or more)."""
    return min_cell > 1


def is_small(values, min_cell: int = MIN_CELL):
    """True where a count is from 1 to min_cell - 1 (a number, or element-wise over a column or array);
    never when the rule is off. NaN and 0 are not small: a zero reveals no one."""
    if not applies(min_cell):
        return False if np.isscalar(values) else np.zeros(len(values), dtype=bool)
    arr = pd.to_numeric(pd.Series(values) if not np.isscalar(values) else pd.Series([values]), errors="coerce")
    small = ((arr >= 1) & (arr < min_cell)).to_numpy()
    return bool(small[0]) if np.isscalar(values) else small


def band(min_cell: int = MIN_CELL) -> str:
    """How a small count is written in a file: "<11"."""
    return f"<{min_cell}"


def fewer_than(noun_plural: str, min_cell: int = MIN_CELL) -> str:
    """How a small count is written in prose: "fewer than 11 tapers"."""
    return f"fewer than {min_cell} {noun_plural}"


def count_phrase(n: int, noun: str, min_cell: int = MIN_CELL, plural: str | None = None) -> str:
    """A count with its noun under the rule: "34 tapers", "1 taper" (rule off) or "fewer than 11 tapers"."""
    if is_small(n, min_cell):
        return fewer_than(plural or f"{noun}s", min_cell)
    return counted(int(n), noun, plural)


def withhold_parts(counts: Sequence[float], min_cell: int = MIN_CELL, total_shown: bool = True) -> pd.DataFrame:
    """The rule over the parts of one total (the bars of a histogram, a clinician's taper categories).

    counts: the parts' counts, in order. Returns one row per part: `shown` (the count, or None when
    withheld), `text` (the count, "<11" or "withheld") and `why` (empty, or why the part is withheld).
    A part from 1 to min_cell - 1 is small; when the total is shown and exactly one part is small, the
    smallest other part above zero is withheld too (complementary suppression), or the total minus the
    shown parts would give the small count back.
    """
    values = pd.to_numeric(pd.Series(list(counts), dtype=float), errors="coerce").fillna(0)
    out = pd.DataFrame({"shown": values.astype(object), "text": [f"{int(v):,}" for v in values], "why": ""})
    if not applies(min_cell) or values.empty:
        return out
    small = pd.Series(is_small(values, min_cell), index=values.index)
    out.loc[small, ["shown", "text", "why"]] = [None, band(min_cell), f"from 1 to {min_cell - 1}"]
    if total_shown and small.sum() == 1:
        others = values[~small & (values > 0)]
        if len(others):
            i = others.idxmin()
            out.loc[i, ["shown", "text", "why"]] = [None, WITHHELD, "withheld too, or the total would give a small count away"]
    return out


def withhold_units(numerator, denominator, is_mean, min_cell: int = MIN_CELL) -> pd.DataFrame:
    """The rule over the units (clinicians, clinics) of one measure: which are withheld and why.

    numerator, denominator: counts per unit (aligned Series); is_mean: bool per unit (a mean measure's
    numerator is a sum of doses, not a count, and is judged on its denominator only). Returns, indexed like
    the inputs: `withheld` (the unit's numerator, value and shrunken value are not published), `small_den`
    (its denominator is small too) and `why`. A proportion's unit is withheld when its numerator, its
    denominator or those not in the numerator (denominator - numerator) are small; when exactly one unit is
    withheld so, the unit with the next smallest numerator is withheld as well, so the pooled rate (shown)
    cannot give the hidden count back.
    """
    num = pd.to_numeric(pd.Series(numerator), errors="coerce")
    den = pd.to_numeric(pd.Series(denominator), errors="coerce")
    mean = pd.Series(is_mean, index=num.index).astype(bool) if not np.isscalar(is_mean) else \
        pd.Series(bool(is_mean), index=num.index)
    out = pd.DataFrame({"withheld": False, "small_den": False, "why": ""}, index=num.index)
    if not applies(min_cell) or num.empty:
        return out
    small_den = pd.Series(is_small(den, min_cell), index=num.index)
    small_num = pd.Series(is_small(num, min_cell), index=num.index) & ~mean
    small_rest = pd.Series(is_small(den - num, min_cell), index=num.index) & ~mean
    k = min_cell
    out["small_den"] = small_den
    out["withheld"] = small_den | small_num | small_rest
    out.loc[small_rest, "why"] = f"fewer than {k} not in the numerator (denominator minus numerator)"
    out.loc[small_num, "why"] = f"numerator fewer than {k}"
    out.loc[small_den, "why"] = f"denominator fewer than {k}"
    proportions = out.index[~mean]
    if out.loc[proportions, "withheld"].sum() == 1 and len(proportions) > 1:
        candidates = num[proportions][~out.loc[proportions, "withheld"]]
        i = candidates.idxmin()
        out.loc[i, ["withheld", "why"]] = [True, "withheld too, or the pooled rate would give a small count away"]
    return out


def table(frame: pd.DataFrame, counts: Sequence[str], derived: Sequence[str] = (), min_cell: int = MIN_CELL,
          total_shown: Sequence[str] = (), parts_of: dict[str, str] | None = None) -> pd.DataFrame:
    """A table under the rule, for a file a reader takes away ("Data behind this chart").

    counts: columns of counts; a count from 1 to min_cell - 1 is blanked, with the row's `derived`
    columns (shares, rates from that count). total_shown: count columns whose total is shown
    beside the table (a chart's title): such a column follows withhold_parts down its rows. parts_of maps a
    count column to the count it is part of ({"events_30": "tapers"}): the part is withheld too when the
    remainder (whole - part, e.g. tapers without an event) is from 1 to min_cell - 1. A `withheld_why`
    column says, for every row that withholds something, what and why; everything else is kept as it is.
    """
    out = frame.copy()
    if not applies(min_cell) or out.empty:
        return out
    why = pd.Series("", index=out.index, dtype=object)
    small_any = pd.Series(False, index=out.index)
    for col in counts:
        values = pd.to_numeric(out[col], errors="coerce")
        if col in total_shown:
            parts = withhold_parts(values.fillna(0).tolist(), min_cell)
            parts.index = out.index
            hidden = parts["shown"].isna() & values.notna()
            reasons = parts["why"]
        else:
            hidden = pd.Series(is_small(values, min_cell), index=out.index)
            reasons = pd.Series(f"from 1 to {min_cell - 1}", index=out.index)
        if parts_of and col in parts_of:
            rest = pd.to_numeric(frame[parts_of[col]], errors="coerce") - values
            small_rest = pd.Series(is_small(rest, min_cell), index=out.index) & ~hidden
            reasons = reasons.where(~small_rest, f"withheld: {parts_of[col]} without it from 1 to {min_cell - 1}")
            hidden = hidden | small_rest
        out[col] = out[col].astype(object)
        out.loc[hidden, col] = None
        small_any |= hidden
        for i in out.index[hidden]:
            why[i] = "; ".join(filter(None, [why[i], f"{col} {reasons[i]}"]))
    for col in derived:
        out[col] = out[col].astype(object).where(~small_any, None)
    if len(derived):
        why[small_any] = why[small_any] + "; " + ", ".join(derived) + " withheld with it"
    out["withheld_why"] = why
    return out


def unit_note(units: pd.DataFrame, withheld: pd.Series, label: str, unit_word: str, min_cell: int) -> str:
    """The line under an exported chart naming what is not drawn: "Not drawn individually (counts under 11):
    34 clinicians; of them outside the 99.8% limits: Clinician AMG34 (high)". Flags are kept: they say
    which way, never how many. Empty when nothing is withheld."""
    hidden = units[withheld.to_numpy()]
    if hidden.empty:
        return ""
    note = f"Not drawn individually (counts under {min_cell}): {counted(len(hidden), unit_word)}"
    flagged = hidden[hidden["flag"].isin(["high", "low"])] if "flag" in hidden else hidden.iloc[:0]
    if len(flagged):
        names = ", ".join(f"{n} ({f})" for n, f in zip(flagged[label], flagged["flag"]))
        note += f"; of them outside the 99.8% limits: {names}"
    return note + "."
