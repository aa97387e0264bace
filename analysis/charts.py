"""Chart builders: frame in, plotly figure out. The app, the exports and the tests share them."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

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


def monthly_fills_chart(monthly: pd.DataFrame, period: str) -> go.Figure:
    """Patients filling an opioid analgesic each month (bars) from `month`, `patients` columns."""
    fig = go.Figure(
        go.Bar(x=monthly["month"], y=monthly["patients"], marker_color=PALETTE[0],
               hovertemplate="%{x|%b %Y}: %{y:,} patients<extra></extra>")
    )
    fig.update_layout(
        template="rxdash",
        title=f"Patients filling an opioid analgesic, by month ({period})",
        xaxis_title="Month of fill",
        yaxis_title="Patients (count)",
    )
    return fig


def rejects_chart(reasons: pd.DataFrame) -> go.Figure:
    """Rows rejected by the latest load, by reason, from `table_name`, `reason_code`, `n_rows`."""
    labels = reasons["table_name"] + ": " + reasons["reason_code"].str.replace("_", " ")
    fig = go.Figure(
        go.Bar(x=reasons["n_rows"], y=labels, orientation="h", marker_color=PALETTE[1],
               hovertemplate="%{y}: %{x:,} rows<extra></extra>")
    )
    fig.update_layout(template="rxdash", title="Rows rejected by the latest load, by reason",
                      xaxis_title="Rows (count)", yaxis=dict(autorange="reversed"),
                      height=max(300, 40 * len(reasons) + 120))
    return fig


def funnel_chart(units: pd.DataFrame, lines: pd.DataFrame, title: str, value_label: str, pooled: float,
                 percent: bool, direction: str) -> go.Figure:
    """Funnel plot: each unit's value against its denominator, with 95% and 99.8% limits around the pooled value.

    units: unit_id, denominator, value, shrunk_value, flag (as analysis.stats funnels return them);
    lines: n and the four limit columns (analysis.stats.funnel_lines). Units outside the 99.8% limits are
    drawn in a distinct colour and shape; no red/green verdict, and none at all for neutral measures.
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
    styles = ((~outside, "Within limits", PALETTE[0], "circle"),
              (outside, "Outside 99.8% limits" if direction != "neutral" else "Outside 99.8% limits (no verdict)",
               PALETTE[1], "diamond"))
    for mask, name, colour, symbol in styles:
        part = units[mask]
        fig.add_trace(go.Scatter(
            x=part["denominator"], y=part["value"], mode="markers", name=name,
            marker=dict(color=colour, symbol=symbol, size=10, line=dict(color="white", width=1)),
            customdata=part[["unit_id", "shrunk_value"]].to_numpy(),
            hovertemplate=(f"%{{customdata[0]}}<br>n = %{{x}}<br>value %{{y:{fmt}}}"
                           f"<br>shrunken %{{customdata[1]:{fmt}}}<extra></extra>")))
    fig.update_layout(template="rxdash", title=title, xaxis_title="Patients in the denominator (count)",
                      yaxis_title=value_label, yaxis_tickformat=".0%" if percent else None, height=520)
    return fig


CATEGORY_ORDER = ["gradual", "moderate", "rapid", "abrupt_discontinuation"]
CATEGORY_COLOURS = dict(zip(CATEGORY_ORDER, [PALETTE[0], PALETTE[4], PALETTE[1], PALETTE[5]]))


def taper_speed_chart(tapers: pd.DataFrame, period: str, gradual_max: float, rapid_min: float) -> go.Figure:
    """Histogram of taper speeds (% of baseline a month) with the guideline bands marked."""
    fig = go.Figure(go.Histogram(x=tapers["max_monthly_reduction_pct"], xbins=dict(start=0, end=100, size=5),
                                 marker_color=PALETTE[0], hovertemplate="%{x}%/month: %{y} tapers<extra></extra>"))
    fig.add_vrect(x0=0, x1=gradual_max, fillcolor=PALETTE[2], opacity=0.12, line_width=0,
                  annotation_text=f"gradual ≤ {gradual_max:g}%/month (CDC 2022)", annotation_position="top left")
    fig.add_vrect(x0=rapid_min, x1=100, fillcolor=PALETTE[1], opacity=0.12, line_width=0,
                  annotation_text=f"rapid > {rapid_min:g}%/month", annotation_position="top right")
    fig.update_layout(template="rxdash", title=f"How fast doses fell: {len(tapers):,} tapers starting {period}",
                      xaxis_title="Fastest monthly fall (% of baseline a month)", yaxis_title="Tapers (count)",
                      xaxis_range=[0, 100], bargap=0.05)
    return fig


def taper_categories_chart(tapers: pd.DataFrame, period: str) -> go.Figure:
    """Tapers by category for each clinician (stacked bars), from clinician_id and category columns."""
    counts = tapers.groupby(["clinician_id", "category"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=[c for c in CATEGORY_ORDER if c in counts.columns])
    counts = counts.loc[counts.sum(axis=1).sort_values(ascending=False).index]
    fig = go.Figure([go.Bar(x=counts.index, y=counts[c], name=c.replace("_", " "),
                            marker_color=CATEGORY_COLOURS[c]) for c in counts.columns])
    fig.update_layout(template="rxdash", barmode="stack", title=f"Taper categories by clinician, {period}",
                      xaxis_title="Clinician (attributed at taper start)", yaxis_title="Tapers (count)")
    return fig


def caterpillar_chart(units: pd.DataFrame, title: str, value_label: str, pooled: float, percent: bool) -> go.Figure:
    """Shrunken values with 95% intervals, ranked (unit_id, shrunk_value, shrunk_lower, shrunk_upper)."""
    ranked = units.dropna(subset=["shrunk_value"]).sort_values("shrunk_value").reset_index(drop=True)
    fmt = ".1%" if percent else ".1f"
    fig = go.Figure(go.Scatter(
        x=ranked.index + 1, y=ranked["shrunk_value"], mode="markers", marker=dict(color=PALETTE[0], size=8),
        error_y=dict(type="data", symmetric=False, array=ranked["shrunk_upper"] - ranked["shrunk_value"],
                     arrayminus=ranked["shrunk_value"] - ranked["shrunk_lower"], color="#9aa5b1", thickness=1.2),
        customdata=ranked[["unit_id", "shrunk_lower", "shrunk_upper"]].to_numpy(),
        hovertemplate=(f"%{{customdata[0]}}: %{{y:{fmt}}} (95%: %{{customdata[1]:{fmt}}} to "
                       f"%{{customdata[2]:{fmt}}})<extra></extra>")))
    fig.add_hline(y=pooled, line=dict(color="#3e4c59", width=1), annotation_text="pooled")
    fig.update_layout(template="rxdash", title=title, xaxis_title="Rank (lowest to highest shrunken value)",
                      yaxis_title=value_label, yaxis_tickformat=".0%" if percent else None, showlegend=False)
    return fig


def consistency_trend_chart(trend: pd.DataFrame, title: str) -> go.Figure:
    """Variation between units by quarter (quarter_start, p90_p10_ratio, phi): lower means more consistent."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=trend["quarter_start"], y=trend["p90_p10_ratio"], mode="lines+markers",
                             name="90th / 10th centile of shrunken values", line=dict(color=PALETTE[0])))
    fig.add_trace(go.Scatter(x=trend["quarter_start"], y=trend["phi"], mode="lines+markers", yaxis="y2",
                             name="overdispersion φ", line=dict(color=PALETTE[1], dash="dot")))
    fig.update_layout(template="rxdash", title=title, xaxis_title="Quarter",
                      yaxis=dict(title="Ratio 90th / 10th centile"),
                      yaxis2=dict(title="φ (1 = chance alone)", overlaying="y", side="right", showgrid=False),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0))
    return fig
