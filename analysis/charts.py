"""Chart builders: frame in, plotly figure out. The app, the exports and the tests share them.

Every string a builder is given (titles, unit labels, clinic names, trace names) is plain text: it passes
through analysis.display.plotly_text here, so a name from the data is drawn as itself, never as plotly's
HTML, and no name is ever written into a hovertemplate (customdata carries it).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from analysis import disclosure, tapering
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
    parts, scalars = [], []

    def walk(v) -> None:
        if isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
        elif np.ndim(v) == 0:
            scalars.append(v)   # converted together below: one conversion per scalar cost seconds a chart
        else:
            parts.append(np.ravel(np.asarray(v, dtype=object)))

    walk(values)
    if scalars:
        parts.append(np.asarray(scalars, dtype=object))
    if not parts:
        return np.array([], dtype=float)
    arr = pd.to_numeric(pd.Series(np.concatenate(parts)), errors="coerce").to_numpy(float)
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


# --- Layout: titles that fit and a top margin that holds them (issue 15) --------------------------------
# A chart is drawn no narrower than the dashboard's main column at a 1280 px screen (about 820 px; the
# exports are 1200 px), so titles are wrapped for that width and never run off the right edge.
FIGURE_WIDTH = 800        # px a title must fit in
CHAR_WIDTH = 0.55         # a character's width as a share of the font size (Inter, Helvetica: about 0.5)
LINE_HEIGHT = 1.3         # a text line's height as a share of the font size
TITLE_SIZE, LEGEND_SIZE, SUBTITLE_SIZE = 18, 14, 16   # px: the template's title and legend, subplot titles
TOP_PAD = 10              # px above the title
LEGEND_ROW = 26           # px a row of a horizontal legend takes
GAP = 8                   # px between the title, the legend, the subplot titles and the plot
SLANT_EXTRA = 40          # px slanted "Sep 2025" tick labels take beyond level ones
TICK_HALF = 8             # px the top tick label (centred on the plot's top edge) stands above the plot
_CHARACTER = re.compile(r"&#?\w+;|.", re.S)   # an entity made by plotly_text is one character on screen


def fits(width_px: float, size: float) -> int:
    """How many characters of a `size` px font fit on a line `width_px` wide."""
    return max(8, int(width_px // (size * CHAR_WIDTH)))


def wrap_text(text: str, width_px: float = FIGURE_WIDTH, size: float = TITLE_SIZE) -> str:
    """Plotly text (already through plotly_text) broken into lines (<br>) that fit `width_px` at `size` px:
    between words, and inside a word only when it is longer than a line (never inside an entity)."""
    limit = fits(width_px, size)
    lines: list[list[str]] = []
    current: list[str] = []
    for word in " ".join(text.split("<br>")).split(" "):
        chars = _CHARACTER.findall(word)
        while len(chars) > limit:                 # a word longer than a line: cut it
            if current:
                lines.append(current)
                current = []
            lines.append(chars[:limit])
            chars = chars[limit:]
        if current and len(current) + 1 + len(chars) > limit:
            lines.append(current)
            current = []
        current = current + [" "] + chars if current else chars
    if current or not lines:
        lines.append(current)
    return "<br>".join("".join(line) for line in lines)


def text_lines(text: str | None) -> list[str]:
    """The lines of a plotly text as drawn (<br> breaks), each with entities counted as one character."""
    return [] if not text else ["".join("x" for _ in _CHARACTER.findall(line)) for line in text.split("<br>")]


def legend_entries(fig: go.Figure) -> list[str]:
    """The names the legend shows: plotly draws a legend when more than one trace asks for one, or when
    the layout forces it; a trace with showlegend=False never appears."""
    def empty(t) -> bool:   # plotly leaves a trace with no points out of the legend
        return all(getattr(t, k, None) is not None and len(getattr(t, k)) == 0 for k in ("x", "y"))

    named = [t.name or f"trace {i}" for i, t in enumerate(fig.data) if t.showlegend is not False and not empty(t)]
    if fig.layout.showlegend is False or (fig.layout.showlegend is None and len(named) < 2):
        return []
    return named


def legend_rows(fig: go.Figure, width_px: float = FIGURE_WIDTH) -> int:
    """Rows a horizontal legend takes across `width_px`: each entry is its symbol (40 px) and its name."""
    entries = legend_entries(fig)
    if not entries:
        return 0
    rows, used = 1, 0.0
    for name in entries:
        w = 40 + len(text_lines(name)[0] if name else "") * LEGEND_SIZE * CHAR_WIDTH
        if used and used + w > width_px:
            rows, used = rows + 1, 0.0
        used += w
    return rows


def top_row_subtitles(fig: go.Figure) -> list:
    """make_subplots' titles over the top row of panels (annotations anchored at the top of the plot)."""
    return [a for a in fig.layout.annotations if a.yref == "paper" and a.yanchor == "bottom"
            and a.y is not None and a.y >= 0.999 and a.showarrow is False]


def fit_layout(fig: go.Figure, width_px: float = FIGURE_WIDTH) -> go.Figure:
    """Title lines, then the legend, then the top row's subplot titles, stacked above the plot: the title
    wrapped to `width_px` with its last line above the legend, the legend moved above any subplot titles,
    and the top margin made tall enough for all three. Idempotent: call again after adding traces (highlight, shade)."""
    title = fig.layout.title.text
    legend_px = legend_rows(fig, width_px) * LEGEND_ROW
    subtitles = top_row_subtitles(fig)
    subtitle_px = max((len(text_lines(a.text)) * SUBTITLE_SIZE * LINE_HEIGHT for a in subtitles), default=0)
    above_plot = (legend_px + GAP if legend_px else 0) + subtitle_px + GAP + TICK_HALF
    if title:
        # Above the legend and the subplot titles. Plotly anchors a title of several lines by its first line
        # and draws the others below it, so the padding holds the lines after the first as well.
        text = wrap_text(title, width_px)
        below_first = (len(text_lines(text)) - 1) * TITLE_SIZE * LINE_HEIGHT
        fig.update_layout(title=dict(text=text, y=1, yref="paper", yanchor="bottom",
                                     pad=dict(b=int(np.ceil(above_plot + below_first)))))
    title_px = len(text_lines(fig.layout.title.text)) * TITLE_SIZE * LINE_HEIGHT
    top = int(np.ceil(TOP_PAD + title_px + above_plot))
    margin = fig.layout.margin
    fig.update_layout(margin=dict(t=max(top, 40)))
    if legend_px:
        # The legend sits on the subplot titles, not over them: its bottom edge that many pixels above the plot.
        height = fig.layout.height or 450
        plot_px = max(100.0, height - top - (margin.b if margin.b is not None else 60))
        fig.update_layout(legend=dict(orientation="h", yanchor="bottom", x=0, xanchor="left",
                                      y=1 + (subtitle_px + 4) / plot_px))
    return fig


def month_axis(fig: go.Figure, months, axis: str = "x") -> go.Figure:
    """A month axis for bars standing on each month's first day: labels "Mar 2025" at the data's months
    (every month while they fit, else every 2nd, 3rd, 6th or 12th), never a time of day, and a range of
    half a month either side, so one month or one week is one labelled bar rather than an axis reading
    "23:59:59.9996 ... 00:00:00.0004"."""
    days = pd.to_datetime(pd.Series(list(months))).dropna().sort_values().drop_duplicates()
    if days.empty:
        return fig
    step = next(k for k in (1, 2, 3, 6, 12, 24, 60) if len(days) / k <= 12)
    ticks = list(days.iloc[::step])
    half = pd.Timedelta(days=16)
    # Up to 6 labels stand level; more are slanted (set here, not left to plotly, so a note under the plot
    # knows how tall they are: _note_below).
    settings = dict(type="date", tickmode="array", tickvals=ticks, ticktext=[f"{d:%b %Y}" for d in ticks],
                    tickformat="%b %Y", dtick="M1", range=[days.iloc[0] - half, days.iloc[-1] + half],
                    autorange=False, tickangle=-45 if len(ticks) > 6 else 0)
    (fig.update_xaxes if axis == "x" else fig.update_yaxes)(**settings)
    return fig


MONTH_BAR_WIDTH = 24 * 24 * 3600 * 1000   # ms: a monthly bar is drawn 24 days wide, whatever the months


def _label(units: pd.DataFrame) -> str:
    """The column naming units on screen: a pseudonym or clinic name when the caller gave one."""
    return "unit_label" if "unit_label" in units.columns else "unit_id"


def _hover(units: pd.DataFrame, label: str, *numbers: str) -> np.ndarray:
    """customdata for a hover: the unit's label as plain text, then the numeric columns."""
    return units[[label, *numbers]].assign(**{label: units[label].map(plotly_text)}).to_numpy()


# --- Charts under the disclosure rule (analysis/disclosure.py): the files a reader takes away --------------
# Every builder that draws a count takes `min_cell` (0, the default, for the screen: exact counts). With
# min_cell 11 it draws the same chart from the data under the rule, so an image or HTML file (whose hover
# data travels with it) holds no count from 1 to 10 and nothing one could be worked out from.

def _withheld_name(min_cell: int) -> str:
    return f"fewer than {min_cell} (not drawn)"


def _disclosed(counts, min_cell: int, total_shown: bool) -> tuple[list, list[bool], list[str]]:
    """Bar heights under the rule: (heights with None where withheld, withheld flags, their "<11" or
    "withheld" texts); with the rule off, the counts as they are."""
    if not disclosure.applies(min_cell):   # the screen: the counts as they are (a numeric array in the JSON)
        return counts, [False] * len(counts), [f"{v:,}" for v in counts]
    parts = disclosure.withhold_parts(list(counts), min_cell, total_shown)
    withheld = parts["shown"].isna().tolist()
    heights = [None if w else v for w, v in zip(withheld, pd.Series(list(counts), dtype=float).tolist())]
    return heights, withheld, parts["text"].tolist()


def _withheld_marks(fig: go.Figure, x, texts, min_cell: int, **where) -> go.Figure:
    """A mark at the foot of each bar not drawn, reading "<11" (or "withheld"), with one legend entry."""
    x, texts = list(x), list(texts)
    if x:
        fig.add_trace(go.Scatter(x=x, y=[0] * len(x), mode="markers+text", text=texts, textposition="top center",
                                 textfont=dict(size=11, color="#52606d"), name=_withheld_name(min_cell),
                                 marker=dict(symbol="line-ew-open", size=16, color="#52606d", line=dict(width=2)),
                                 hoverinfo="skip", cliponaxis=False), **where)
    return fig


def _withheld_units(units: pd.DataFrame, percent: bool, min_cell: int, ratio: bool = False) -> pd.Series:
    """Which units an exported chart does not draw individually (disclosure.withhold_units), as a mask. A ratio
    O/E (allowing for patient mix) is a share's count over its expected count: its numerator is a count."""
    if not disclosure.applies(min_cell) or units.empty:
        return pd.Series(False, index=units.index)
    return disclosure.withhold_units(units["numerator"], units["denominator"], not (percent or ratio),
                                     min_cell)["withheld"]


RATIO_FORMAT = ".2f"
TARGET_NAMES = {False: "pooled", True: "as expected (1)"}


def _note_below(fig: go.Figure, text: str) -> go.Figure:
    """A line of plain text under the plot (what an exported chart does not draw), with room made for it."""
    if text:
        lines = wrap_text(plotly_text(text), FIGURE_WIDTH, 12)
        bottom = (fig.layout.margin.b if fig.layout.margin.b is not None else 60)
        if fig.layout.xaxis.tickangle not in (None, 0):   # slanted month labels stand taller than level ones
            bottom += SLANT_EXTRA
        fig.add_annotation(text=lines, xref="paper", yref="paper", x=0, y=0, yanchor="top",
                           yshift=-(bottom + 2), showarrow=False, xanchor="left", align="left",
                           font=dict(size=12, color="#52606d"))
        extra = int(len(text_lines(lines)) * 12 * LINE_HEIGHT) + 12
        fig.update_layout(margin=dict(b=bottom + extra), height=int((fig.layout.height or 450) + extra))
    return fig


def monthly_fills_chart(monthly: pd.DataFrame, period: str, min_cell: int = 0) -> go.Figure:
    """Patients filling an opioid analgesic each month (bars) from `month`, `patients` columns; with
    `min_cell`, a month of 1 to min_cell - 1 patients is not drawn (a "<11" mark instead)."""
    heights, withheld, texts = _disclosed(monthly["patients"], min_cell, total_shown=False)
    fig = go.Figure(
        go.Bar(x=monthly["month"], y=heights, marker_color=PALETTE[0], name="Patients",
               width=MONTH_BAR_WIDTH, hovertemplate="%{x|%b %Y}: %{y:,} patients<extra></extra>")
    )
    _withheld_marks(fig, monthly["month"][withheld], np.array(texts)[withheld], min_cell)
    fig.update_layout(
        template="rxdash",
        title=plotly_text(f"Patients filling an opioid analgesic, by month ({period})"),
        xaxis_title="Month of fill",
        yaxis_title="Patients (count)",
    )
    month_axis(fig, monthly["month"])
    return fit_layout(count_axis(fig, _top(heights)))


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
        _note_below(fig, why)
    # A month axis (month_axis) has a fixed range: it is widened to hold every shaded stretch.
    if spans and fig.layout.xaxis.range is not None:
        lo, hi = (pd.Timestamp(v) for v in fig.layout.xaxis.range)
        fig.update_xaxes(range=[min([lo, *(pd.Timestamp(x0) for x0, _, _ in spans)]),
                                max([hi, *(pd.Timestamp(x1) for _, x1, _ in spans)])])
    return fit_layout(fig)


def monthly_tapers_chart(monthly: pd.DataFrame, period: str, min_cell: int = 0) -> go.Figure:
    """Tapers and discontinuations by month of start (bars) from `month`, `tapers` columns; with `min_cell`,
    a month of 1 to min_cell - 1 tapers is not drawn (a "<11" mark instead)."""
    heights, withheld, texts = _disclosed(monthly["tapers"], min_cell, total_shown=False)
    fig = go.Figure(
        go.Bar(x=monthly["month"], y=heights, marker_color=PALETTE[0], name="Tapers and discontinuations",
               width=MONTH_BAR_WIDTH, hovertemplate="%{x|%b %Y}: %{y:,} tapers<extra></extra>")
    )
    _withheld_marks(fig, monthly["month"][withheld], np.array(texts)[withheld], min_cell)
    fig.update_layout(template="rxdash", title=plotly_text(f"Tapers and discontinuations, by month of start ({period})"),
                      xaxis_title="Month the taper started", yaxis_title="Tapers (count)")
    month_axis(fig, monthly["month"])
    # Counts: whole-number ticks (a step of at least 1, so no "0.2 tapers"; 0 to 1 when there are none).
    return fit_layout(count_axis(fig, _top(heights)))


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
    return fit_layout(count_axis(fig, _top(reasons["n_rows"]), axis="x"))


MERGE_ABOVE = 300   # units: beyond this, identical points are drawn once (the browser draws each one)


def _merge_identical(units: pd.DataFrame, x: str = "denominator") -> pd.DataFrame:
    """One point per distinct (x, value): with two thousand clinicians most small ones share a
    point (3 of 14, 0 of 12 ...); the marker grows with the count and the hover names a few of them."""
    label = _label(units)
    grouped = units.groupby([x, "value"], sort=False)
    out = grouped.agg(shrunk_value=("shrunk_value", "first"), count=(label, "size"),
                      names=(label, lambda s: list(s)))
    out["unit_label"] = [n[0] if c == 1 else f"{c} {'clinicians' if str(n[0]).startswith('Clinician') else 'units'}"
                         f" (e.g. {', '.join(map(str, n[:3]))})" for n, c in zip(out["names"], out["count"])]
    return out.reset_index()


def funnel_chart(units: pd.DataFrame, lines: pd.DataFrame, title: str, value_label: str, pooled: float,
                 percent: bool, direction: str, min_cell: int = 0, unit: str = "clinician",
                 ratio: bool = False) -> go.Figure:
    """Funnel plot: each unit's value against its denominator, with 95% and 99.8% limits around the pooled value.

    units: unit_id, denominator, value, shrunk_value, flag (as analysis.stats funnels return them);
    lines: n and the four limit columns (analysis.stats.funnel_lines). Units outside the 99.8% limits are
    drawn in a distinct colour and shape, units too few to judge as hollow grey circles with their own legend
    entry; no red/green verdict, and none at all for neutral measures. With `min_cell` (an export), a unit
    whose numerator, denominator or their difference is from 1 to min_cell - 1 is not drawn: its position
    would give the count away; a line under the plot counts them (`unit`: clinician or clinic) and names
    those outside the limits (analysis.disclosure). ratio: the funnel allowing for patient mix, each unit's
    O/E (value) against its expected count (expected), around 1 (stats.funnel_ratios; FunnelPlotR's SR plot).
    """
    fmt = RATIO_FORMAT if ratio else ".1%" if percent else ".1f"
    x = "expected" if ratio else "denominator"
    withheld = _withheld_units(units, percent, min_cell, ratio)
    note = disclosure.unit_note(units, withheld, _label(units), unit, min_cell) if withheld.any() else ""
    units = units[~withheld.to_numpy()]
    fig = go.Figure()
    for col, dash, name in (("998", "solid", "99.8% limits"), ("95", "dash", "95% limits")):
        for side in ("lower", "upper"):
            fig.add_trace(go.Scatter(
                x=lines["n"], y=lines[f"{side}_{col}"], mode="lines", line=dict(color="#7b8794", dash=dash, width=1.3),
                name=name, legendgroup=col, showlegend=side == "upper", hoverinfo="skip"))
    fig.add_hline(y=pooled, line=dict(color="#3e4c59", width=1), annotation_text=TARGET_NAMES[ratio],
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
        part = _merge_identical(units[mask], x) if len(units) > MERGE_ABOVE else units[mask].assign(count=1)
        fig.add_trace(go.Scatter(
            x=part[x], y=part["value"], mode="markers", name=name,
            marker=dict(color=edge if symbol.endswith("open") else colour, symbol=symbol,
                        size=(8 + 2 * np.sqrt(part["count"])).clip(upper=24),
                        line=dict(color=edge, width=1.5 if symbol.endswith("open") else 1)),
            customdata=_hover(part, _label(part), "shrunk_value"),
            hovertemplate=(f"%{{customdata[0]}}<br>{'expected %{x:.1f}' if ratio else 'n = %{x}'}<br>"
                           f"{'observed ÷ expected' if ratio else 'value'} %{{y:{fmt}}}"
                           f"<br>shrunken %{{customdata[1]:{fmt}}}<extra></extra>")))
    fig.update_layout(template="rxdash", title=plotly_text(title), height=520, yaxis_title=plotly_text(value_label),
                      xaxis_title=("Expected count for the patient mix (patients)" if ratio
                                   else "Patients in the denominator (count)"))
    count_axis(fig, max(_top(units[x]), _top(lines["n"])), axis="x")
    if percent:
        share_axis(fig, [units["value"], [pooled], *(lines[c] for c in lines.columns if c != "n")])
    return fit_layout(_note_below(fig, note))


CATEGORY_ORDER = ["gradual", "moderate", "rapid", "abrupt_discontinuation"]
CATEGORY_COLOURS = dict(zip(CATEGORY_ORDER, [PALETTE[0], PALETTE[4], PALETTE[1], PALETTE[5]]))


SPEED_BIN_WIDTHS = (5.0, 10.0, 20.0)   # %/month: the histogram's bar widths, the finest first


def taper_speed_chart(tapers: pd.DataFrame, period: str, gradual_max: float, rapid_min: float,
                      min_cell: int = 0) -> go.Figure:
    """Histogram of taper speeds (% of baseline a month) with the guideline bands marked. With `min_cell`,
    a bar of 1 to min_cell - 1 tapers is not drawn ("<11" at its foot), and since the title gives the total, a
    lone small bar withholds the next smallest too; a small total reads "fewer than 11 tapers"; bars are
    widened (SPEED_BIN_WIDTHS, then the three guideline bands) until at most a quarter of the tapers are in
    bars not drawn."""
    # Binned here (analysis.tapering.speed_counts: [0, 5) ... [95, 100]), not by plotly, whose last bin
    # stops short of 100: an abrupt stop (exactly 100%/month) lands in the last bar, as the title counts it.
    # Under the rule, bars 5%/month wide would hide most tapers of a clinic's year behind "<11"; the bars
    # are widened (10, then 20%/month: edges still on the 10% and 40% guideline marks) until no more than a
    # quarter of the tapers sit in withheld bars.
    # Last of all, the guideline's own bands (gradual, moderate, rapid).
    bands = [0.0, gradual_max, rapid_min, 100.0]
    choices = [(w, None) for w in SPEED_BIN_WIDTHS] + [(None, bands)]
    best = None
    for bin_width, edges in choices if disclosure.applies(min_cell) else choices[:1]:
        bins = tapering.speed_counts(tapers, bin_width, edges)
        heights, withheld, texts = _disclosed(bins["tapers"], min_cell, total_shown=True)
        hidden = bins["tapers"][withheld].sum()
        if best is None or hidden < best[0]:   # else the finest bars that hide the fewest tapers
            best = (hidden, bins, heights, withheld, texts)
        if hidden <= len(tapers) / 4:
            break
    _, bins, heights, withheld, texts = best
    width = bins["pct_to"] - bins["pct_from"]
    fig = go.Figure(go.Bar(x=bins["pct_from"] + width / 2, y=heights, width=width * 0.95, name="tapers",
                           customdata=bins[["pct_from", "pct_to"]].to_numpy(), marker_color=PALETTE[0],
                           hovertemplate="%{customdata[0]:g} to %{customdata[1]:g}%/month: %{y:,} tapers"
                                         "<extra></extra>"))
    fig.add_vrect(x0=0, x1=gradual_max, fillcolor=PALETTE[2], opacity=0.12, line_width=0,
                  annotation_text=f"gradual ≤ {gradual_max:g}%/month (CDC 2022)", annotation_position="top left")
    fig.add_vrect(x0=rapid_min, x1=100, fillcolor=PALETTE[1], opacity=0.12, line_width=0,
                  annotation_text=f"rapid > {rapid_min:g}%/month", annotation_position="top right")
    _withheld_marks(fig, (bins["pct_from"] + width / 2)[withheld], np.array(texts)[withheld], min_cell)
    total = disclosure.count_phrase(len(tapers), "taper", min_cell)
    fig.update_layout(template="rxdash", title=plotly_text(f"How fast doses fell: {total} starting {period}"),
                      xaxis_title="Fastest monthly fall (% of baseline a month)", yaxis_title="Tapers (count)",
                      xaxis_range=[0, 100])
    return fit_layout(count_axis(fig, _top(heights)))


def taper_categories_chart(tapers: pd.DataFrame, period: str, min_cell: int = 0) -> go.Figure:
    """Tapers by category for each clinician (stacked bars), from clinician_id and category columns. With
    `min_cell`, each clinician's categories follow the rule as parts of their total (the stack's height):
    a category of 1 to min_cell - 1 is not drawn, nor the next smallest when it is the only one, and the
    clinician's bar carries a "<11" mark; a clinician with fewer than min_cell tapers in all is not drawn
    (a note under the plot counts them)."""
    counts = tapers.groupby(["clinician_id", "category"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=[c for c in CATEGORY_ORDER if c in counts.columns])
    counts = counts.loc[counts.sum(axis=1).sort_values(ascending=False).index]
    note = ""
    if disclosure.applies(min_cell):
        # A clinician with 1 to 10 tapers in all would be a bar of nothing but "<11": not drawn, counted below.
        few = counts.sum(axis=1) < min_cell
        if few.any():
            note = (f"Not drawn (fewer than {min_cell} tapers each): "
                    f"{counted(int(few.sum()), 'clinician')}.")
        counts = counts[~few]
    names = [plotly_text(c) for c in counts.index]   # clinician labels (names for leaders) on the axis
    drawn = counts.astype(object)
    marked = []
    for clinician, row in counts.iterrows():
        heights, withheld, _ = _disclosed(row.tolist(), min_cell, total_shown=True)
        drawn.loc[clinician] = [None if w else int(v) for w, v in zip(withheld, row)]
        marked.append(any(withheld))
    fig = go.Figure([go.Bar(x=names, y=drawn[c].tolist(), name=c.replace("_", " "),
                            marker_color=CATEGORY_COLOURS[c]) for c in counts.columns])
    _withheld_marks(fig, np.array(names, dtype=object)[marked], [disclosure.band(min_cell)] * sum(marked), min_cell)
    fig.update_layout(template="rxdash", barmode="stack", title=plotly_text(f"Taper categories by clinician, {period}"),
                      xaxis_title="Clinician (attributed at taper start)", yaxis_title="Tapers (count)")
    top = pd.DataFrame(drawn).apply(pd.to_numeric).sum(axis=1) if len(drawn) else pd.Series(dtype=float)
    return fit_layout(_note_below(count_axis(fig, _top(top)), note))


NAMED_RANKS = 25   # up to this many units, a ranked chart names each one on its axis


def caterpillar_chart(units: pd.DataFrame, title: str, value_label: str, pooled: float, percent: bool,
                      min_cell: int = 0, unit: str = "clinician", ratio: bool = False) -> go.Figure:
    """Shrunken values with 95% intervals, ranked (unit_id, shrunk_value, shrunk_lower, shrunk_upper). With
    `min_cell` (an export), units whose counts the rule withholds are not drawn (funnel_chart); ratio: the
    values are O/E allowing for patient mix (funnel_chart)."""
    withheld = _withheld_units(units, percent, min_cell, ratio)
    note = disclosure.unit_note(units, withheld, _label(units), unit, min_cell) if withheld.any() else ""
    ranked = units[~withheld.to_numpy()].dropna(subset=["shrunk_value"]).sort_values("shrunk_value").reset_index(drop=True)
    fmt = RATIO_FORMAT if ratio else ".1%" if percent else ".1f"
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
    fig.add_hline(y=pooled, line=dict(color="#3e4c59", width=1), annotation_text=TARGET_NAMES[ratio])
    fig.update_layout(template="rxdash", title=plotly_text(title), xaxis_title="Rank (lowest to highest shrunken value)",
                      yaxis_title=plotly_text(value_label), showlegend=False)
    if percent:
        share_axis(fig, [ranked["shrunk_lower"], ranked["shrunk_upper"], [pooled]])
    if len(ranked) <= NAMED_RANKS:
        # A few units (a health system's clinics, a small selection): each rank is labelled with its name.
        fig.update_xaxes(tickmode="array", tickvals=list(rank), ticktext=[plotly_text(v) for v in ranked[_label(ranked)]],
                         tickangle=-45 if len(ranked) > 6 else 0, range=[0.5, max(len(ranked), 1) + 0.5],
                         autorange=False, title_text=f"{unit.capitalize()} (lowest to highest shrunken value)")
    else:
        # Ranks are whole numbers: ticks 1, 2, 3 ... (or every 2nd, 5th ...), never "1.5".
        fig.update_xaxes(tickformat=",d", tick0=0, dtick=int(_nice_step(len(ranked))),
                         range=[0.5, len(ranked) + 0.5], autorange=False)
    return fit_layout(_note_below(fig, note))


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
    # Tall enough that the plot holds its y-axis title (about 330 px at 16 px) beside it, shading note and all.
    fig.update_layout(template="rxdash", title=plotly_text(title), xaxis_title="Quarter", showlegend=False,
                      height=520, xaxis=dict(tickmode="array", tickvals=list(x), ticktext=labels),
                      # Both indices are 1 when units do not differ: the axis starts there, with 2-decimal ticks.
                      yaxis=dict(title=plotly_text(TREND_INDEX[index]), range=[1.0, top * 1.1 + 0.05],
                                 tickformat=".2f", rangemode="normal"))
    if len(x.dropna()):   # one quarter is one labelled point, not an axis of milliseconds around it
        fig.update_xaxes(range=[x.min() - pd.Timedelta(days=45), x.max() + pd.Timedelta(days=45)])
    return fit_layout(fig)


def decile_chart(deciles: pd.DataFrame, title: str, value_label: str, percent: bool, own: pd.DataFrame | None = None,
                 own_name: str = "", min_cell: int = 0) -> go.Figure:
    """OpenPrescribing's decile chart: the 10th to 90th centiles of the units' values by quarter (thin dashed
    lines; the median bold), from analysis.trends.deciles (quarter_start, p10 ... p90; NaN where too few units
    are judged), with one unit's own values on top (`own`: quarter_start, value, numerator, denominator; a
    quarter it has too few cases in is a gap). With `min_cell` (an export), an own point whose counts the
    rule withholds is not drawn and a line under the plot says so."""
    fmt = ".1%" if percent else ".1f"
    x = pd.to_datetime(deciles["quarter_start"])
    labels = [quarter_label(q) for q in x]
    fig = go.Figure()
    for c in (10, 20, 30, 40, 60, 70, 80, 90, 50):
        median = c == 50
        fig.add_trace(go.Scatter(
            x=x, y=deciles[f"p{c}"], mode="lines", name="median" if median else "10th to 90th centiles",
            legendgroup="median" if median else "deciles", showlegend=c in (10, 50),
            line=dict(color="#0b4f8a" if median else "#7aa6cf", width=3 if median else 1.2,
                      dash="solid" if median else "dash"),
            customdata=[[q] for q in labels], hovertemplate=f"%{{customdata[0]}}: {c}th centile %{{y:{fmt}}}<extra></extra>"
            if not median else f"%{{customdata[0]}}: median %{{y:{fmt}}}<extra></extra>"))
    note = ""
    if own is not None and len(own):
        own = own.sort_values("quarter_start")
        if disclosure.applies(min_cell):
            withheld = disclosure.withhold_units(own["numerator"], own["denominator"], not percent, min_cell)["withheld"]
            if withheld.any():
                note = (f"{own_name}: {int(withheld.sum())} quarter{'s' if withheld.sum() > 1 else ''} not drawn "
                        f"(a count from 1 to {min_cell - 1}).")
            own = own[~withheld.to_numpy()]
        ox = pd.to_datetime(own["quarter_start"])
        # The name travels in customdata, never in the template (a name is data, not markup).
        fig.add_trace(go.Scatter(x=ox, y=own["value"], mode="lines+markers", name=plotly_text(own_name),
                                 line=dict(color=PALETTE[5], width=2.5), marker=dict(size=8, color=PALETTE[5]),
                                 customdata=[[quarter_label(q), plotly_text(own_name)] for q in ox],
                                 hovertemplate=f"%{{customdata[1]}}, %{{customdata[0]}}: %{{y:{fmt}}}<extra></extra>"))
    fig.update_layout(template="rxdash", title=plotly_text(title), xaxis_title="Quarter", height=480,
                      yaxis_title=plotly_text(value_label),
                      xaxis=dict(tickmode="array", tickvals=list(x), ticktext=labels))
    if len(x):
        fig.update_xaxes(range=[x.min() - pd.Timedelta(days=45), x.max() + pd.Timedelta(days=45)])
    values = [deciles[f"p{c}"] for c in (10, 90)] + ([own["value"]] if own is not None and len(own) else [])
    if percent:
        share_axis(fig, values)
    return fit_layout(_note_below(fig, note))


def highlight(fig: go.Figure, x: float, y: float, name: str, percent: bool) -> go.Figure:
    """Mark one unit (a clinician asked for by name or pseudonym) on a funnel or strip chart."""
    fmt = ".1%" if percent else ".1f"
    shown = plotly_text(name)
    # Near the right edge the name is written to the left of the star, and never clipped by the plot area
    # (it read "Clinician " at the last rank). Category axes (clinic names) keep it centred.
    xs = _finite([t.x for t in fig.data if t.x is not None and len(t.x) and not isinstance(t.x[0], str)])
    right = isinstance(x, (int, float)) and len(xs) and x >= xs.min() + 0.75 * (xs.max() - xs.min())
    fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers+text", name=shown, text=[shown], cliponaxis=False,
                             textposition="top left" if right else "top center",
                             marker=dict(color=PALETTE[7], symbol="star", size=16, line=dict(color="white", width=1)),
                             hovertemplate=f"%{{text}}<br>%{{x}}<br>%{{y:{fmt}}}<extra></extra>"))
    return fit_layout(fig)


def clinic_distribution_chart(units: pd.DataFrame, title: str, value_label: str, pooled: float,
                              percent: bool, min_cell: int = 0, ratio: bool = False) -> go.Figure:
    """Shrunken values of the clinicians in each clinic (box with every point), from clinic_name,
    unit_label and shrunk_value columns: does one clinic differ, or do clinicians differ within all? With
    `min_cell` (an export), clinicians whose counts the rule withholds are not drawn (funnel_chart)."""
    withheld = _withheld_units(units, percent, min_cell, ratio)
    note = disclosure.unit_note(units, withheld, "unit_label", "clinician", min_cell) if withheld.any() else ""
    units = units[~withheld.to_numpy()]
    order = units.groupby("clinic_name")["shrunk_value"].median().sort_values().index
    fmt = RATIO_FORMAT if ratio else ".1%" if percent else ".1f"
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
    fig.add_hline(y=pooled, line=dict(color="#3e4c59", width=1), annotation_text=TARGET_NAMES[ratio])
    fig.update_layout(template="rxdash", title=plotly_text(title), xaxis_title="Clinic", yaxis_title=plotly_text(value_label),
                      showlegend=False)
    if percent:
        share_axis(fig, [units["shrunk_value"], [pooled]])
    return fit_layout(_note_below(fig, note))


def trajectories_chart(segments: pd.DataFrame, panels: pd.DataFrame, title: str, columns: int = 4) -> go.Figure:
    """Daily dose around each taper as small multiples, as % of the baseline, days from the taper start.

    segments: panel, day_from (days from the taper start), day_to, pct_of_baseline (stretches of constant
    dose); panels: panel, caption (e.g. "rapid · 52%/month"), in display order. No dates and no patient
    identifiers: the panels are numbered.
    """
    from plotly.subplots import make_subplots

    rows = max(1, -(-len(panels) // columns))
    across = 0.03   # horizontal spacing, share of the plot's width
    # Captions wrapped to their panel's width ("abrupt discontinuation · 100%/month" on two lines), and
    # each panel a fixed height, the gap between rows tall enough for the captions of the row below: one
    # taper or twelve, the panels keep their shape (the profile's "Your tapers" was squashed to 150 px).
    panel_px = (FIGURE_WIDTH - 90) * (1 - across * (columns - 1)) / columns
    captions = [wrap_text(plotly_text(c), panel_px, SUBTITLE_SIZE) for c in panels["caption"]]
    caption_px = max((len(text_lines(c)) for c in captions), default=1) * SUBTITLE_SIZE * LINE_HEIGHT
    panel_h, gap_h, bottom = 170, caption_px + 14, 90
    plot_h = rows * panel_h + (rows - 1) * gap_h
    fig = make_subplots(rows=rows, cols=columns, shared_xaxes=True, shared_yaxes=True, subplot_titles=captions,
                        vertical_spacing=gap_h / plot_h if rows > 1 else 0.1, horizontal_spacing=across)
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
    fig.update_layout(template="rxdash", title=plotly_text(title), showlegend=False, margin=dict(b=bottom))
    fit_layout(fig)
    fig.update_layout(height=int(fig.layout.margin.t + plot_h + bottom))
    # Under the bottom row's day labels, whatever the number of rows (pixels, not a share of the height).
    fig.add_annotation(text="Days from the start of the taper (dotted line); daily dose as % of the baseline",
                       xref="paper", yref="paper", x=0, y=0, yanchor="top", yshift=-36, showarrow=False,
                       xanchor="left", font=dict(size=13, color="#52606d"))
    return fig


def outcomes_chart(bands: pd.DataFrame, title: str, min_cell: int = 0) -> go.Figure:
    """Share of tapers followed by an event within 30 and 90 days, per speed band (band, tapers, within_30,
    within_90 as shares; events_30, events_90 counts when given, else share x tapers). With `min_cell`, a
    band of 1 to min_cell - 1 tapers reads "(fewer than 11 tapers)" and draws no bar, and a bar whose events,
    or tapers without one, are from 1 to min_cell - 1 is not drawn ("<11" at its foot)."""
    n = pd.to_numeric(bands["tapers"]).fillna(0).astype(int)
    labels = [f"{b}<br>({disclosure.count_phrase(int(k), 'taper', min_cell)})"   # bands: tapering's own words
              for b, k in zip(bands["band"], n)]
    bars, marks = [], []
    for col, name, colour in (("within_30", "within 30 days", PALETTE[4]), ("within_90", "within 90 days", PALETTE[0])):
        events = (pd.to_numeric(bands[f"events_{col[-2:]}"]) if f"events_{col[-2:]}" in bands
                  else (bands[col] * n).round()).fillna(0)
        hide = disclosure.is_small(n, min_cell) | disclosure.is_small(events, min_cell) \
            | disclosure.is_small(n - events, min_cell)
        y = bands[col] if not hide.any() else [None if h else v for h, v in zip(hide, bands[col])]
        bars.append(go.Bar(x=labels, y=y, name=name,
                           marker_color=colour, hovertemplate="%{x}: %{y:.1%}<extra>" + name + "</extra>"))
        marks += [label for label, h, k in zip(labels, hide, n) if h and not disclosure.is_small(k, min_cell)]
    fig = go.Figure(bars)
    _withheld_marks(fig, list(dict.fromkeys(marks)), [disclosure.band(min_cell)] * len(set(marks)), min_cell)
    fig.update_layout(template="rxdash", barmode="group", title=plotly_text(title), xaxis_title="Fastest monthly fall",
                      yaxis_title="Tapers followed by an event (share)")
    shown = [v for b in bars for v in (b.y if b.y is not None else []) if v is not None]
    return fit_layout(share_axis(fig, [shown], from_zero=True))


def peer_strip_chart(rows: pd.DataFrame, title: str, min_cell: int = 0) -> go.Figure:
    """One clinician beside anonymous peers, one small panel per measure.

    rows: measure (title), peers (list of peers' shrunken values), own (shrunken value), median (peers'
    median), percent (bool), and patients (the clinician's own count) when known. Peers are grey dots
    without labels or counts (a box when there are more than 200); the clinician is a blue diamond. With
    `min_cell` (an export), the clinician's own value is not drawn on a measure where their own patients
    are from 1 to min_cell - 1 (the table beside it gives the count's band, and the value would give it back).
    """
    from plotly.subplots import make_subplots

    # Each panel a fixed strip with its (wrapped) measure name above it; the legend goes above the first
    # name (fit_layout), not over it.
    names = [wrap_text(plotly_text(m), FIGURE_WIDTH - 90, SUBTITLE_SIZE) for m in rows["measure"]]
    name_px = max((len(text_lines(n)) for n in names), default=1) * SUBTITLE_SIZE * LINE_HEIGHT
    strip_h, gap_h = 50, name_px + 40   # the gap holds the strip's tick labels and the next measure's name
    plot_h = max(1, len(rows)) * strip_h + max(0, len(rows) - 1) * gap_h
    fig = make_subplots(rows=max(1, len(rows)), cols=1, subplot_titles=names,
                        vertical_spacing=gap_h / plot_h if len(rows) > 1 else 0.1)
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
        own_small = "patients" in rows and disclosure.is_small(getattr(r, "patients"), min_cell)
        if own_small:
            fig.add_annotation(text=plotly_text(f"you: {disclosure.fewer_than('patients', min_cell)} (not drawn)"),
                               xref="x domain" if i == 1 else f"x{i} domain", yref="y domain" if i == 1 else f"y{i} domain",
                               x=1, y=0.5, xanchor="right", showarrow=False, font=dict(size=12, color="#52606d"))
        elif r.own == r.own:  # not NaN
            fig.add_trace(go.Scatter(x=[r.own], y=[0], mode="markers", showlegend=i == 1, name="you",
                                     marker=dict(color=PALETTE[0], symbol="diamond", size=15,
                                                 line=dict(color="white", width=1)),
                                     hovertemplate=f"you: %{{x:{fmt}}}<extra></extra>"), row=i, col=1)
        if r.percent:
            share_axis(fig, [list(r.peers), [r.own, r.median]], axis="x", row=i, col=1)
        fig.update_yaxes(visible=False, range=[-1, 1], row=i, col=1)
    fig.update_layout(template="rxdash", title=plotly_text(title), margin=dict(b=60))
    fig.update_xaxes(zeroline=False)   # a strip starting at 0% had a stray vertical line there
    fit_layout(fig)
    fig.update_layout(height=int(fig.layout.margin.t + plot_h + 60))
    return fit_layout(fig)   # again: the legend's place depends on the height
