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
