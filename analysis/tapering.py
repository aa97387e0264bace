"""Pure summaries of tapers for the panels: which trajectories to draw, and events after tapers by speed.

Inputs are the frames the taper queries return (queries/tapers_attributed.sql, taper_outcomes.sql,
taper_trajectories.sql); nothing here touches a database or Streamlit.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

WINDOW = (-180, 210)   # days around the taper start drawn: the baseline and the seven-month follow-up


def pick(tapers: pd.DataFrame, n: int = 12) -> pd.DataFrame:
    """Up to n tapers spread evenly over the range of speeds (slowest to fastest), so the panels show the
    whole distribution rather than only its extremes. Adds `panel` (1..n) and `caption`."""
    ranked = tapers.sort_values(["max_monthly_reduction_pct", "taper_start", "patient_id"]).reset_index(drop=True)
    if len(ranked) > n:
        ranked = ranked.iloc[np.unique(np.linspace(0, len(ranked) - 1, n).round().astype(int))].reset_index(drop=True)
    ranked["panel"] = np.arange(1, len(ranked) + 1)
    ranked["caption"] = [f"{c.replace('_', ' ')} · {p:.0f}%/month" for c, p in
                         zip(ranked["category"], ranked["max_monthly_reduction_pct"])]
    return ranked


def relative_segments(segments: pd.DataFrame, picked: pd.DataFrame, data_end) -> pd.DataFrame:
    """Stretches of constant dose as days from each taper's start and % of its baseline (panel, day_from,
    day_to, pct_of_baseline), clipped to WINDOW and to the data's end, or to the patient's own record end
    when `picked` has window_end and it is earlier (unknown days are not drawn)."""
    own = ["window_end"] if "window_end" in picked else []
    merged = segments.merge(picked[["patient_id", "taper_start", "baseline_mme", "panel", *own]], on="patient_id")
    if merged.empty:
        return pd.DataFrame(columns=["panel", "day_from", "day_to", "pct_of_baseline"])
    start = pd.to_datetime(merged["taper_start"])
    end = pd.Series(pd.Timestamp(data_end), index=merged.index)
    if own:
        end = np.minimum(end, pd.to_datetime(merged["window_end"]).fillna(pd.Timestamp(data_end)))
    seg_end = pd.to_datetime(merged["seg_end"]).fillna(end)
    out = pd.DataFrame({
        "panel": merged["panel"],
        "day_from": (pd.to_datetime(merged["seg_start"]) - start).dt.days.clip(lower=WINDOW[0]),
        "day_to": (seg_end - start).dt.days.clip(upper=min(WINDOW[1], 10**9)),
        "pct_of_baseline": 100 * merged["daily_mme"] / merged["baseline_mme"],
    })
    last_known = (end - start).dt.days
    out["day_to"] = np.minimum(out["day_to"], last_known)
    return out[out["day_from"] <= out["day_to"]].reset_index(drop=True)


def bands(pct: pd.Series, gradual_max: float, rapid_min: float) -> pd.Series:
    """Speed band of each taper: the guideline pace, in between, or rapid (HHS 2019; CDC 2022)."""
    labels = [f"≤ {gradual_max:g}%/month", f"{gradual_max:g}–{rapid_min:g}%/month", f"> {rapid_min:g}%/month"]
    out = np.where(pct <= gradual_max, labels[0], np.where(pct > rapid_min, labels[2], labels[1]))
    return pd.Series(pd.Categorical(out, categories=labels, ordered=True), index=pct.index)


def outcomes_by_band(tapers: pd.DataFrame, outcomes: pd.DataFrame, gradual_max: float,
                     rapid_min: float) -> pd.DataFrame:
    """Per speed band: tapers, and the share followed by any event within 30 and within 90 days.

    tapers: patient_id, taper_start, max_monthly_reduction_pct; outcomes: patient_id, taper_start,
    days_to_first_event (one row per taper and event type). A taper counts once however many events.
    """
    first = (outcomes.groupby(["patient_id", "taper_start"])["days_to_first_event"].min().rename("first_event")
             if not outcomes.empty else pd.Series(name="first_event", dtype=float))
    t = tapers.join(first, on=["patient_id", "taper_start"]) if not outcomes.empty else tapers.assign(first_event=np.nan)
    t = t.assign(band=bands(t["max_monthly_reduction_pct"], gradual_max, rapid_min))
    grouped = t.groupby("band", observed=False)
    out = pd.DataFrame({
        "tapers": grouped.size(),
        "events_30": grouped["first_event"].apply(lambda d: int((d <= 30).sum())),
        "events_90": grouped["first_event"].apply(lambda d: int((d <= 90).sum())),
    }).reset_index()
    out["within_30"] = out["events_30"] / out["tapers"].where(out["tapers"] > 0)
    out["within_90"] = out["events_90"] / out["tapers"].where(out["tapers"] > 0)
    out["band"] = out["band"].astype(str)
    return out


def speed_counts(tapers: pd.DataFrame, width: float = 5.0, edges=None) -> pd.DataFrame:
    """Tapers per band of speed (pct_from, pct_to, tapers; %/month of baseline), the histogram's bins:
    [0, 5), [5, 10), ... [95, 100] for `width` 5, or the bins between `edges` (ascending, 0 to 100)."""
    edges = np.arange(0, 100 + width, width) if edges is None else np.asarray(edges, dtype=float)
    binned = pd.cut(tapers["max_monthly_reduction_pct"].clip(0, 100), edges, right=False, include_lowest=True)
    counts = binned.value_counts(sort=False)
    # 100%/month (an abrupt stop) belongs in the last bin, as in the chart.
    counts.iloc[-1] += int((tapers["max_monthly_reduction_pct"] >= 100).sum())
    return pd.DataFrame({"pct_from": edges[:-1], "pct_to": edges[1:], "tapers": counts.to_numpy()})


MAX_BARS = 40   # a bar per clinician stays readable (and quick to draw) up to a few dozen


def busiest(tapers: pd.DataFrame, n: int = MAX_BARS) -> pd.DataFrame:
    """The tapers of the n clinicians with the most tapers (all of them when there are fewer)."""
    top = tapers["clinician_id"].value_counts().index[:n]
    return tapers[tapers["clinician_id"].isin(top)]
