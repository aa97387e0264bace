"""Chart builders: frame in, plotly figure out. The app, the exports and the tests share them.

Every string a builder is given (titles, unit labels, clinic names, trace names) is plain text: it passes
through analysis.display.plotly_text here, so a name from the data is drawn as itself, never as plotly's
HTML, and no name is ever written into a hovertemplate (customdata carries it).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from analysis import tapering
from analysis.display import counted, plotly_text

# Okabe-Ito: distinguishable with the common colour-vision deficiencies; no red/green verdicts.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]

TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font=dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=14, color="#1f2933"),
        title=dict(font=dict(size=18), x=0, xanchor="left"),
        colorway=PALETTE,
        paper_bgcolor="white",
        plot_bgcolor="white",
        xaxis=dict(showgrid=False, linecolor="#9aa5b1", ticks="outside", automargin=True),
        yaxis=dict(gridcolor="#e4e7eb", zeroline=False, automargin=True),
        margin=dict(l=60, r=30, t=70, b=60),
        hoverlabel=dict(font_size=13),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
)
pio.templates["rxdash"] = TEMPLATE


def _nice_step(span: float, target: int = 5, smallest: float = 1.0) -> float:
    """A tick step from the 1-2-5 series giving about `target` ticks over `span`, never below `smallest`."""
    if not np.isfinite(span) or span <= 0:
        return smallest
    raw = span / target
    magnitude = 10 ** np.floor(np.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    return float(max(smallest, round(step, 12)))


def _finite(values) -> np.ndarray:
    """The finite numbers in `values`: a number, a column, or a list of either (nested lists flattened)."""
    if isinstance(values, (list, tuple)):
        parts = [_finite(v) for v in values]
        return np.concatenate(parts) if parts else np.array([], dtype=float)
    arr = pd.to_numeric(pd.Series(np.ravel(np.asarray(values, dtype=object))), errors="coerce").to_numpy(float)
    return arr[np.isfinite(arr)]


def _top(values) -> float:
    """The largest finite value (0 when there is none): the top of a count axis."""
    arr = _finite(values)
    return float(arr.max()) if len(arr) else 0.0


def count_axis(fig: go.Figure, top: float, axis: str = "y", **where) -> go.Figure:
    """A count axis: whole-number ticks (a step of at least 1, so never "0.5 patients"), from zero; 0 to 1
    when there is nothing to count. `top` is the largest count drawn; `where` picks a subplot (row, col)."""
    top = max(0.0, float(top)) if np.isfinite(top) else 0.0
    settings = dict(tickformat=",d", tick0=0, dtick=int(_nice_step(top)), rangemode="tozero")
    if top == 0:
        settings["range"] = [0, 1]
    (fig.update_xaxes if axis == "x" else fig.update_yaxes)(**settings, **where)
    return fig


SHARE_SPAN = 0.02   # a share axis shows at least 2 percentage points (all values equal: 0% to 2%, 98% to 100%)


def share_axis(fig: go.Figure, values, axis: str = "y", from_zero: bool = False, **where) -> go.Figure:
    """A share axis: its range inside 0% to 100% (never -100%), covering `values` (every share drawn), with a
    tick step and label precision that keep every label distinct (".0%" for wide ranges, ".1%" or ".2%"
    for narrow ones). `from_zero` starts it at 0% (bars)."""
    arr = np.clip(_finite(values), 0, 1)
    lo, hi = (float(arr.min()), float(arr.max())) if len(arr) else (0.0, 1.0)
    if from_zero:
        lo = 0.0
    pad = (hi - lo) * 0.06
    lo, hi = max(0.0, lo - (0 if from_zero else pad)), min(1.0, hi + pad)
    if hi - lo < SHARE_SPAN:   # widen around the middle, kept inside 0..1
        mid = (lo + hi) / 2
        lo, hi = mid - SHARE_SPAN / 2, mid + SHARE_SPAN / 2
        if from_zero or lo < 0:
            lo, hi = 0.0, SHARE_SPAN
        elif hi > 1:
            lo, hi = 1 - SHARE_SPAN, 1.0
    step = _nice_step(hi - lo, smallest=0.0001)
    decimals = max(0, int(np.ceil(-np.log10(round(step * 100, 9)) - 1e-9)))
    settings = dict(range=[lo, hi], tickformat=f".{decimals}%", tick0=0, dtick=step, autorange=False)
    (fig.update_xaxes if axis == "x" else fig.update_yaxes)(**settings, **where)
    # Markers on the edge (a share of exactly 0% or 100%) are drawn whole, not cut by the axis.
    fig.update_traces(cliponaxis=False, selector=dict(type="scatter"))
    return fig


def _label(units: pd.DataFrame) -> str:
    """The column naming units on screen: a pseudonym or clinic name when the caller gave one."""
    return "unit_label" if "unit_label" in units.columns else "unit_id"


def _hover(units: pd.DataFrame, label: str, *numbers: str) -> np.ndarray:
    """customdata for a hover: the unit's label as plain text, then the numeric columns."""
    return units[[label, *numbers]].assign(**{label: units[label].map(plotly_text)}).to_numpy()


def monthly_fills_chart(monthly: pd.DataFrame, period: str) -> go.Figure:
    """Patients filling an opioid analgesic each month (bars) from `month`, `patients` columns."""
    fig = go.Figure(
        go.Bar(x=monthly["month"], y=monthly["patients"], marker_color=PALETTE[0],
               hovertemplate="%{x|%b %Y}: %{y:,} patients<extra></extra>")
    )
    fig.update_layout(
        template="rxdash",
        title=plotly_text(f"Patients filling an opioid analgesic, by month ({period})"),
        xaxis_title="Month of fill",
        yaxis_title="Patients (count)",
    )
    return count_axis(fig, _top(monthly["patients"]))


SHADE = {"provisional": "rgba(230, 159, 0, 0.16)", "not measurable yet": "rgba(82, 96, 109, 0.16)",
         "too short": "rgba(82, 96, 109, 0.16)"}


def shade_incomplete(fig: go.Figure, spans: list[tuple[object, object, str]], why: str = "") -> go.Figure:
    """Shade the stretches of the x axis whose measurement is incomplete: spans of (x0, x1, state) with the
    states of analysis.coverage ("provisional", "not measurable yet"); each state gets a legend entry (a
    square of its colour) and `why` (plain text) is written under the plot."""
    shown = set()
    for x0, x1, state in spans:
        fig.add_vrect(x0=x0, x1=x1, fillcolor=SHADE.get(state, SHADE["provisional"]), line_width=0, layer="below")
        shown.add(state)
    for state in sorted(shown):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=plotly_text(f"Shaded: {state}"),
                                 marker=dict(symbol="square", size=14, color=SHADE.get(state)),
                                 hoverinfo="skip"))
    if why and shown:
        fig.add_annotation(text=plotly_text(why), xref="paper", yref="paper", x=0, y=-0.5, showarrow=False,
                           xanchor="left", align="left", font=dict(size=12, color="#52606d"))
        fig.update_layout(margin=dict(b=150))
    return fig


def monthly_tapers_chart(monthly: pd.DataFrame, period: str) -> go.Figure:
    """Tapers and discontinuations by month of start (bars) from `month`, `tapers` columns."""
    fig = go.Figure(
        go.Bar(x=monthly["month"], y=monthly["tapers"], marker_color=PALETTE[0], name="Tapers and discontinuations",
               hovertemplate="%{x|%b %Y}: %{y:,} tapers<extra></extra>")
    )
    fig.update_layout(template="rxdash", title=plotly_text(f"Tapers and discontinuations, by month of start ({period})"),
                      xaxis_title="Month the taper started", yaxis_title="Tapers (count)",
                      xaxis=dict(dtick="M1", tickformat="%b %Y"))
    # Counts: whole-number ticks (a step of at least 1, so no "0.2 tapers"; 0 to 1 when there are none).
    return count_axis(fig, _top(monthly["tapers"]))


def rejects_chart(reasons: pd.DataFrame) -> go.Figure:
    """Rows rejected by the latest load, by reason, from `table_name`, `reason_code`, `n_rows`."""
    labels = (reasons["table_name"] + ": " + reasons["reason_code"].str.replace("_", " ")).map(plotly_text)
    fig = go.Figure(
        go.Bar(x=reasons["n_rows"], y=labels, orientation="h", marker_color=PALETTE[1],
               hovertemplate="%{y}: %{x:,} rows<extra></extra>")
    )
    fig.update_layout(template="rxdash", title="Rows rejected by the latest load, by reason",
                      xaxis_title="Rows (count)", yaxis=dict(autorange="reversed"),
                      height=max(300, 40 * len(reasons) + 120))
    return count_axis(fig, _top(reasons["n_rows"]), axis="x")


MERGE_ABOVE = 300   # units: beyond this, identical points are drawn once (the browser draws each one)


def _merge_identical(units: pd.DataFrame) -> pd.DataFrame:
    """One point per distinct (denominator, value): with two thousand clinicians most small ones share a
    point (3 of 14, 0 of 12 ...); the marker grows with the count and the hover names a few of them."""
    label = _label(units)
    grouped = units.groupby(["denominator", "value"], sort=False)
    out = grouped.agg(shrunk_value=("shrunk_value", "first"), count=(label, "size"),
                      names=(label, lambda s: list(s)))
    out["unit_label"] = [n[0] if c == 1 else f"{c} {'clinicians' if str(n[0]).startswith('Clinician') else 'units'}"
                         f" (e.g. {', '.join(map(str, n[:3]))})" for n, c in zip(out["names"], out["count"])]
    return out.reset_index()


def funnel_chart(units: pd.DataFrame, lines: pd.DataFrame, title: str, value_label: str, pooled: float,
                 percent: bool, direction: str) -> go.Figure:
    """Funnel plot: each unit's value against its denominator, with 95% and 99.8% limits around the pooled value.

    units: unit_id, denominator, value, shrunk_value, flag (as analysis.stats funnels return them);
    lines: n and the four limit columns (analysis.stats.funnel_lines). Units outside the 99.8% limits are
    drawn in a distinct colour and shape, units too few to judge as hollow grey circles with their own legend
    entry; no red/green verdict, and none at all for neutral measures.
    """
    fmt = ".1%" if percent else ".1f"
    fig = go.Figure()
    for col, dash, name in (("998", "solid", "99.8% limits"), ("95", "dash", "95% limits")):
        for side in ("lower", "upper"):
            fig.add_trace(go.Scatter(
                x=lines["n"], y=lines[f"{side}_{col}"], mode="lines", line=dict(color="#7b8794", dash=dash, width=1.3),
                name=name, legendgroup=col, showlegend=side == "upper", hoverinfo="skip"))
    fig.add_hline(y=pooled, line=dict(color="#3e4c59", width=1), annotation_text="pooled",
                  annotation_position="top left")
    outside = units["flag"].isin(["high", "low"])
    too_few = units["flag"] == "too_few"
    # Too few to judge: hollow markers, their own legend entry (they are not "within" anything).
    styles = ((~outside & ~too_few, "Within limits", PALETTE[0], "circle", "white"),
              (outside, "Outside 99.8% limits" if direction != "neutral" else "Outside 99.8% limits (no verdict)",
               PALETTE[1], "diamond", "white"),
              (too_few, "Too few to judge", "rgba(0,0,0,0)", "circle-open", "#7b8794"))
    for mask, name, colour, symbol, edge in styles:
        if name == "Too few to judge" and not mask.any():
            continue
        part = _merge_identical(units[mask]) if len(units) > MERGE_ABOVE else units[mask].assign(count=1)
        fig.add_trace(go.Scatter(
            x=part["denominator"], y=part["value"], mode="markers", name=name,
            marker=dict(color=edge if symbol.endswith("open") else colour, symbol=symbol,
                        size=(8 + 2 * np.sqrt(part["count"])).clip(upper=24),
                        line=dict(color=edge, width=1.5 if symbol.endswith("open") else 1)),
            customdata=_hover(part, _label(part), "shrunk_value"),
            hovertemplate=(f"%{{customdata[0]}}<br>n = %{{x}}<br>value %{{y:{fmt}}}"
                           f"<br>shrunken %{{customdata[1]:{fmt}}}<extra></extra>")))
    fig.update_layout(template="rxdash", title=plotly_text(title), xaxis_title="Patients in the denominator (count)",
                      yaxis_title=plotly_text(value_label), height=520)
    count_axis(fig, max(_top(units["denominator"]), _top(lines["n"])), axis="x")
    if percent:
        share_axis(fig, [units["value"], [pooled], *(lines[c] for c in lines.columns if c != "n")])
    return fig


CATEGORY_ORDER = ["gradual", "moderate", "rapid", "abrupt_discontinuation"]
CATEGORY_COLOURS = dict(zip(CATEGORY_ORDER, [PALETTE[0], PALETTE[4], PALETTE[1], PALETTE[5]]))


def taper_speed_chart(tapers: pd.DataFrame, period: str, gradual_max: float, rapid_min: float) -> go.Figure:
    """Histogram of taper speeds (% of baseline a month) with the guideline bands marked."""
    # Binned here (analysis.tapering.speed_counts: [0, 5) ... [95, 100]), not by plotly, whose last bin
    # stops short of 100: an abrupt stop (exactly 100%/month) lands in the last bar, as the title counts it.
    bins = tapering.speed_counts(tapers)
    width = bins["pct_to"] - bins["pct_from"]
    fig = go.Figure(go.Bar(x=bins["pct_from"] + width / 2, y=bins["tapers"], width=width * 0.95,
                           customdata=bins[["pct_from", "pct_to"]].to_numpy(), marker_color=PALETTE[0],
                           hovertemplate="%{customdata[0]:g} to %{customdata[1]:g}%/month: %{y:,} tapers"
                                         "<extra></extra>"))
    fig.add_vrect(x0=0, x1=gradual_max, fillcolor=PALETTE[2], opacity=0.12, line_width=0,
                  annotation_text=f"gradual ≤ {gradual_max:g}%/month (CDC 2022)", annotation_position="top left")
    fig.add_vrect(x0=rapid_min, x1=100, fillcolor=PALETTE[1], opacity=0.12, line_width=0,
                  annotation_text=f"rapid > {rapid_min:g}%/month", annotation_position="top right")
    fig.update_layout(template="rxdash", title=plotly_text(f"How fast doses fell: {counted(len(tapers), 'taper')} starting {period}"),
                      xaxis_title="Fastest monthly fall (% of baseline a month)", yaxis_title="Tapers (count)",
                      xaxis_range=[0, 100])
    return count_axis(fig, _top(bins["tapers"]))


def taper_categories_chart(tapers: pd.DataFrame, period: str) -> go.Figure:
    """Tapers by category for each clinician (stacked bars), from clinician_id and category columns."""
    counts = tapers.groupby(["clinician_id", "category"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=[c for c in CATEGORY_ORDER if c in counts.columns])
    counts = counts.loc[counts.sum(axis=1).sort_values(ascending=False).index]
    names = [plotly_text(c) for c in counts.index]   # clinician labels (names for leaders) on the axis
    fig = go.Figure([go.Bar(x=names, y=counts[c], name=c.replace("_", " "),
                            marker_color=CATEGORY_COLOURS[c]) for c in counts.columns])
    fig.update_layout(template="rxdash", barmode="stack", title=plotly_text(f"Taper categories by clinician, {period}"),
                      xaxis_title="Clinician (attributed at taper start)", yaxis_title="Tapers (count)")
    return count_axis(fig, _top(counts.sum(axis=1)))


def caterpillar_chart(units: pd.DataFrame, title: str, value_label: str, pooled: float, percent: bool) -> go.Figure:
    """Shrunken values with 95% intervals, ranked (unit_id, shrunk_value, shrunk_lower, shrunk_upper)."""
    ranked = units.dropna(subset=["shrunk_value"]).sort_values("shrunk_value").reset_index(drop=True)
    fmt = ".1%" if percent else ".1f"
    rank = ranked.index + 1
    # The intervals are one line with breaks (one SVG path), not one error bar per unit: a health system's
    # two thousand clinicians draw in a fraction of the time.
    xs = np.repeat(rank.to_numpy(float), 3)
    ys = np.column_stack([ranked["shrunk_lower"], ranked["shrunk_upper"], np.full(len(ranked), np.nan)]).ravel()
    xs[2::3] = np.nan
    # Many units: the values as one line through the ranks (one SVG path) rather than a marker each.
    many = len(ranked) > MERGE_ABOVE
    fig = go.Figure([
        go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#9aa5b1", width=1.2), hoverinfo="skip",
                   connectgaps=False, name="95% interval"),
        go.Scatter(x=rank, y=ranked["shrunk_value"], mode="lines" if many else "markers",
                   line=dict(color=PALETTE[0], width=3), marker=dict(color=PALETTE[0], size=7),
                   name="shrunken value", customdata=_hover(ranked, _label(ranked), "shrunk_lower", "shrunk_upper"),
                   hovertemplate=(f"%{{customdata[0]}}: %{{y:{fmt}}} (95%: %{{customdata[1]:{fmt}}} to "
                                  f"%{{customdata[2]:{fmt}}})<extra></extra>")),
    ])
    fig.add_hline(y=pooled, line=dict(color="#3e4c59", width=1), annotation_text="pooled")
    fig.update_layout(template="rxdash", title=plotly_text(title), xaxis_title="Rank (lowest to highest shrunken value)",
                      yaxis_title=plotly_text(value_label), showlegend=False)
    if percent:
        share_axis(fig, [ranked["shrunk_lower"], ranked["shrunk_upper"], [pooled]])
    return fig


# The variation index each kind of measure is ranked by (the Overview's "where clinicians differ most").
TREND_INDEX = {"median_odds_ratio": "Median odds ratio (1 = no difference)",
               "p90_p10_ratio": "Ratio of 90th to 10th centile (1 = no difference)"}


def quarter_label(day) -> str:
    """'Q1 2025' for any day of the quarter."""
    day = pd.Timestamp(day)
    return f"Q{(day.month - 1) // 3 + 1} {day.year}"


def consistency_trend_chart(trend: pd.DataFrame, title: str, index: str = "median_odds_ratio") -> go.Figure:
    """Variation between units by quarter, on one axis: `index` (median_odds_ratio for shares, p90_p10_ratio for
    means: the statistic the Overview ranks by), one point a quarter (quarter_start), labelled 'Q1 2025' on the
    quarter's first day; lower means more consistent. A quarter with too few units to estimate is a gap."""
    x = pd.to_datetime(trend["quarter_start"])
    y = trend[index] if index in trend else pd.Series([float("nan")] * len(trend))
    labels = [quarter_label(q) for q in x]
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines+markers", name=plotly_text(TREND_INDEX[index]),
                               line=dict(color=PALETTE[0]), customdata=[[q] for q in labels],
                               hovertemplate="%{customdata[0]}: %{y:.2f}<extra></extra>"))
    finite = y.dropna()
    top = max(float(finite.max()) if len(finite) else 1.0, 1.0)
    fig.update_layout(template="rxdash", title=plotly_text(title), xaxis_title="Quarter", showlegend=False,
                      xaxis=dict(tickmode="array", tickvals=list(x), ticktext=labels),
                      # Both indices are 1 when units do not differ: the axis starts there, with 2-decimal ticks.
                      yaxis=dict(title=plotly_text(TREND_INDEX[index]), range=[1.0, top * 1.1 + 0.05],
                                 tickformat=".2f", rangemode="normal"))
    return fig


def highlight(fig: go.Figure, x: float, y: float, name: str, percent: bool) -> go.Figure:
    """Mark one unit (a clinician asked for by name or pseudonym) on a funnel or strip chart."""
    fmt = ".1%" if percent else ".1f"
    shown = plotly_text(name)
    fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers+text", name=shown, text=[shown], textposition="top center",
                             marker=dict(color=PALETTE[7], symbol="star", size=16, line=dict(color="white", width=1)),
                             hovertemplate=f"%{{text}}<br>%{{x}}<br>%{{y:{fmt}}}<extra></extra>"))
    return fig


def clinic_distribution_chart(units: pd.DataFrame, title: str, value_label: str, pooled: float,
                              percent: bool) -> go.Figure:
    """Shrunken values of the clinicians in each clinic (box with every point), from clinic_name,
    unit_label and shrunk_value columns: does one clinic differ, or do clinicians differ within all?"""
    order = units.groupby("clinic_name")["shrunk_value"].median().sort_values().index
    fmt = ".1%" if percent else ".1f"
    # Every clinician as a point while they can be told apart; beyond a few hundred, the box and its outliers.
    points = "all" if len(units) <= 300 else "outliers"
    # Clinic names are the axis's categories: plain text, and in customdata (not the template) for the hover.
    fig = go.Figure([go.Box(y=units.loc[units["clinic_name"] == c, "shrunk_value"], name=plotly_text(c),
                            boxpoints=points, jitter=0.4, pointpos=0, marker=dict(color=PALETTE[0], size=6, opacity=0.7),
                            line=dict(color="#52606d"), fillcolor="rgba(0,114,178,0.08)",
                            customdata=_hover(units.loc[units["clinic_name"] == c].assign(clinic=plotly_text(c)),
                                              "unit_label", "clinic"),
                            hovertemplate=f"%{{customdata[0]}}: %{{y:{fmt}}}<extra>%{{customdata[1]}}</extra>")
                     for c in order])
    fig.add_hline(y=pooled, line=dict(color="#3e4c59", width=1), annotation_text="pooled")
    fig.update_layout(template="rxdash", title=plotly_text(title), xaxis_title="Clinic", yaxis_title=plotly_text(value_label),
                      showlegend=False)
    if percent:
        share_axis(fig, [units["shrunk_value"], [pooled]])
    return fig


def trajectories_chart(segments: pd.DataFrame, panels: pd.DataFrame, title: str, columns: int = 4) -> go.Figure:
    """Daily dose around each taper as small multiples, as % of the baseline, days from the taper start.

    segments: panel, day_from (days from the taper start), day_to, pct_of_baseline (stretches of constant
    dose); panels: panel, caption (e.g. "rapid · 52%/month"), in display order. No dates and no patient
    identifiers: the panels are numbered.
    """
    from plotly.subplots import make_subplots

    rows = max(1, -(-len(panels) // columns))
    fig = make_subplots(rows=rows, cols=columns, shared_xaxes=True, shared_yaxes=True,
                        subplot_titles=[plotly_text(c) for c in panels["caption"]], vertical_spacing=0.12 / rows * 2,
                        horizontal_spacing=0.03)
    for i, panel in enumerate(panels["panel"]):
        part = segments[segments["panel"] == panel].sort_values("day_from")
        # Steps: each stretch drawn from its first to its last day.
        xs, ys = [], []
        for row in part.itertuples():
            xs += [row.day_from, row.day_to, None]
            ys += [row.pct_of_baseline, row.pct_of_baseline, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=PALETTE[0], width=2), showlegend=False,
                                 hovertemplate="day %{x}: %{y:.0f}% of baseline<extra></extra>"),
                      row=i // columns + 1, col=i % columns + 1)
    fig.add_vline(x=0, line=dict(color="#9aa5b1", width=1, dash="dot"))
    fig.update_yaxes(range=[0, 160], ticksuffix="%")
    fig.update_xaxes(range=[-180, 210])
    fig.update_layout(template="rxdash", title=plotly_text(title), height=max(320, 230 * rows + 90),
                      margin=dict(t=110))
    fig.add_annotation(text="Days from the start of the taper (dotted line); daily dose as % of the baseline",
                       xref="paper", yref="paper", x=0, y=-0.08 if rows > 1 else -0.2, showarrow=False,
                       xanchor="left", font=dict(size=13, color="#52606d"))
    return fig


def outcomes_chart(bands: pd.DataFrame, title: str) -> go.Figure:
    """Share of tapers followed by an event within 30 and 90 days, per speed band (band, tapers, within_30,
    within_90 as shares)."""
    labels = [f"{b}<br>({counted(int(n), 'taper')})" for b, n in zip(bands["band"], bands["tapers"])]
    fig = go.Figure([go.Bar(x=labels, y=bands[col], name=name, marker_color=colour,
                            hovertemplate="%{x}: %{y:.1%}<extra>" + name + "</extra>")
                     for col, name, colour in (("within_30", "within 30 days", PALETTE[4]),
                                               ("within_90", "within 90 days", PALETTE[0]))])
    fig.update_layout(template="rxdash", barmode="group", title=plotly_text(title), xaxis_title="Fastest monthly fall",
                      yaxis_title="Tapers followed by an event (share)")
    return share_axis(fig, [bands["within_30"], bands["within_90"]], from_zero=True)


def peer_strip_chart(rows: pd.DataFrame, title: str) -> go.Figure:
    """One clinician beside anonymous peers, one small panel per measure.

    rows: measure (title), peers (list of peers' shrunken values), own (shrunken value), median (peers'
    median), percent (bool). Peers are grey dots without labels (a box when there are more than 200); the
    clinician is a blue diamond.
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=len(rows), cols=1, subplot_titles=[plotly_text(m) for m in rows["measure"]],
                        vertical_spacing=0.6 / max(1, len(rows)))
    for i, r in enumerate(rows.itertuples(), start=1):
        fmt = ".1%" if r.percent else ".1f"
        if len(r.peers) <= 200:
            fig.add_trace(go.Scatter(x=r.peers, y=[0] * len(r.peers), mode="markers", showlegend=i == 1, name="peers",
                                     marker=dict(color="#9aa5b1", size=7, opacity=0.6),
                                     hovertemplate=f"a peer: %{{x:{fmt}}}<extra></extra>"), row=i, col=1)
        else:   # many peers: their spread as a box (quartiles, whiskers), not thousands of dots
            fig.add_trace(go.Box(x=r.peers, y0=0, orientation="h", showlegend=i == 1, name="peers", boxpoints=False,
                                 marker_color="#9aa5b1", line=dict(color="#7b8794"), hoverinfo="x"), row=i, col=1)
        fig.add_trace(go.Scatter(x=[r.median], y=[0], mode="markers", showlegend=i == 1, name="peer median",
                                 marker=dict(color=PALETTE[1], symbol="line-ns-open", size=22, line=dict(width=3)),
                                 hovertemplate=f"peer median: %{{x:{fmt}}}<extra></extra>"), row=i, col=1)
        if r.own == r.own:  # not NaN
            fig.add_trace(go.Scatter(x=[r.own], y=[0], mode="markers", showlegend=i == 1, name="you",
                                     marker=dict(color=PALETTE[0], symbol="diamond", size=15,
                                                 line=dict(color="white", width=1)),
                                     hovertemplate=f"you: %{{x:{fmt}}}<extra></extra>"), row=i, col=1)
        if r.percent:
            share_axis(fig, [list(r.peers), [r.own, r.median]], axis="x", row=i, col=1)
        fig.update_yaxes(visible=False, range=[-1, 1], row=i, col=1)
    fig.update_layout(template="rxdash", title=plotly_text(title), height=120 * len(rows) + 120)
    return fig
