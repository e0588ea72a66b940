"""Running statistics of the current Q block: m_i and l_i after every tile, and alpha now.

One heatmap row per query row; columns are the K/V tiles of this block (blank: not yet).
m shares the score colour scale of the tile map. Rows whose max just rose (so alpha < 1
rescales their state) have their m cell outlined and their alpha drawn in vermillion; rows
whose max rose but was kept stale (FA4's lazy rescaling) have it outlined in blue, dotted.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from flashviz.core.trace import LoadStep, TileStep
from flashviz.figures.context import FigureContext
from flashviz.figures.grid import figure, row_layout
from flashviz.figures.style import (
    ALPHA,
    BLUE,
    CHANGED,
    ELL,
    FONT_SIZE,
    HALF_WIDTH,
    MINUS,
    PROB_SCALE,
    SCORE_SCALE,
    base_layout,
    finite_or_nan,
    fit_numbers,
)

UNCHANGED = "#999999"
MIN_COLUMN_PX = 40  # a tile's column of m or l narrower than this reads as a sliver
ALPHA_ROW_PX = 200  # height added when alpha moves below m and l


def history(ctx: FigureContext, step_index: int) -> tuple[np.ndarray, np.ndarray]:
    """(m, l), each (rows in block, K/V blocks up to the block's last): the value after each
    tile so far, else NaN (tiles to come, and tiles a block mask skips)."""
    step = ctx.trace.steps[step_index]
    shape = (len(step.rows), ctx.kv_span(step.i))
    m, l = np.full(shape, np.nan), np.full(shape, np.nan)
    for t in ctx.tiles_so_far(step_index):
        m[:, t.j], l[:, t.j] = finite_or_nan(t.m), t.l
    return m, l


def changed_rows(step: TileStep) -> np.ndarray:
    """Rows whose max rose from a finite value: their old state is really rescaled."""
    return step.max_changed & np.isfinite(step.m_prev)


def stacked(ctx: FigureContext, height: int, width: int) -> bool:
    """Whether alpha goes below m and l: side by side with it, a tile's column would be
    narrower than MIN_COLUMN_PX at ``width`` (n = 512 in blocks of 64: 8 tiles), and the
    figure is tall enough for a second row (not presentation mode's fixed 285 px)."""
    plot_w = width - 80  # base_layout's left and right margins
    side_by_side = plot_w * 0.38 * (1 - 2 * 0.06) / ctx.trace.grid[1]
    return side_by_side < MIN_COLUMN_PX and height >= 400


def _alpha_traces(
    step: TileStep, rows: np.ndarray, below: bool = False, shown: slice = slice(None)
) -> list[dict]:
    changed = changed_rows(step)[shown]
    alpha = step.alpha[shown]
    circles = _cell_outlines(
        step.j, rows[changed], 0.08, "max rose at this tile", {"color": CHANGED, "width": 3}
    )
    bars = {
        "type": "bar",
        "xaxis": "x3",
        "yaxis": "y3",
        "x": alpha,
        "y": rows,
        "orientation": "h",
        "name": ALPHA,
        "marker": {"color": np.where(changed, CHANGED, UNCHANGED).tolist()},
        "text": [f"{a:.3f}" for a in alpha],
        # beside a short bar (outside: a zero-length bar would hide its number), else inside
        "textposition": ["outside" if a < 0.5 else "inside" for a in alpha],
        "cliponaxis": False,
        "hovertemplate": "row %{y}: " + ALPHA + " = %{x:.4f}<extra></extra>",
        "showlegend": False,
    }
    if below:  # one upright bar per query row, under m and l (too narrow for its number)
        bars.update(x=rows, y=alpha, orientation="v", text=None, textposition="none")
        bars["hovertemplate"] = "row %{x}: " + ALPHA + " = %{y:.4f}<extra></extra>"
    return [circles, *_stale_outlines(step, rows, shown), bars]


def _stale_outlines(step: TileStep, rows: np.ndarray, shown: slice) -> list[dict]:
    """Rows whose max rose but was kept (FA4's lazy rescaling): their m cell outlined
    dashed, in blue; none where no row kept a stale max."""
    stale = step.stale[shown]
    if not stale.any():
        return []
    # inset further than the vermillion outline: the two never overlap
    style = {"color": BLUE, "width": 3, "dash": "dot"}
    return [_cell_outlines(step.j, rows[stale], 0.16, "max rose, kept stale (no rescale)", style)]


def _cell_outlines(j: int, rows: np.ndarray, inset: float, name: str, line: dict) -> dict:
    """One line trace outlining the m cells (column j, each of ``rows``) along their edges,
    ``inset`` cells inside them: the mark never covers the m it marks."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for r in rows:
        x0, x1, y0, y1 = j - 0.5 + inset, j + 0.5 - inset, r - 0.5 + inset, r + 0.5 - inset
        xs += [x0, x1, x1, x0, x0, None]
        ys += [y0, y0, y1, y1, y0, None]
    return {"type": "scatter", "xaxis": "x", "yaxis": "y", "x": xs, "y": ys, "mode": "lines",
            "name": name, "line": line, "hoverinfo": "skip"}  # fmt: skip


def _stacked_layout(titles: list[str]) -> dict:
    """m and l side by side on top (each almost half the width), alpha across below."""
    layout: dict = {"annotations": []}
    top, alpha_top = (0.5, 1.0), 0.24
    for k, (x_domain, title) in enumerate(zip(([0.0, 0.47], [0.53, 1.0]), titles, strict=False)):
        suffix = "" if k == 0 else "2"
        layout[f"xaxis{suffix}"] = {"domain": x_domain, "anchor": f"y{suffix}"}
        layout[f"yaxis{suffix}"] = {"domain": list(top), "anchor": f"x{suffix}"}
        if k:
            layout["yaxis2"].update(matches="y", showticklabels=False)
        layout["annotations"].append(_title(title, sum(x_domain) / 2, top[1]))
    layout["xaxis3"] = {"domain": [0.0, 1.0], "anchor": "y3"}
    layout["yaxis3"] = {"domain": [0.0, alpha_top], "anchor": "x3"}
    layout["annotations"].append(_title(titles[2].replace("<br>", " "), 0.5, alpha_top))
    return layout


def _title(text: str, x: float, y: float) -> dict:
    return {"text": text, "x": x, "y": y, "xref": "paper", "yref": "paper",
            "xanchor": "center", "yanchor": "bottom", "showarrow": False,
            "font": {"size": FONT_SIZE}}  # fmt: skip


def row_ticks(rows: np.ndarray, panel_px: float) -> dict:
    """Whole-row ticks, as many as fit ``panel_px`` with a label's height (16 px text) and a
    gap each: 16 rows in 200 px label every other row instead of overlapping."""
    most = max(2, int(panel_px // (1.5 * FONT_SIZE)))
    return {"tick0": int(rows[0]) if len(rows) else 0, "dtick": max(1, -(-len(rows) // most))}


def focus_rows(count: int, row: int, most: int) -> slice:
    """At most ``most`` of a block's ``count`` rows, from ``row`` on (fewer rows left: the
    last ``most``)."""
    start = max(0, min(row, count - most))
    return slice(start, start + most)


def stats_figure(
    ctx: FigureContext,
    step_index: int,
    height: int = 420,
    width: int = HALF_WIDTH,
    focus: slice = slice(None),
    margin: dict | None = None,
) -> go.Figure:
    """Heatmaps of m and l after each tile so far, and a bar of alpha for this step, for
    the block's rows in ``focus`` (offsets inside the block; all by default); ``margin``
    overrides the default margins (numbers are fitted to the cells they leave).

    With many tiles (``stacked``) alpha moves below m and l, so their columns stay readable;
    the figure is then ALPHA_ROW_PX taller."""
    step = ctx.trace.steps[step_index]
    rows = np.arange(step.rows.start, step.rows.stop)[focus]
    m, l = (a[focus] for a in history(ctx, step_index))
    tiles = np.arange(m.shape[1])
    titles = [
        "running max m<sub>i</sub>",
        f"running sum {ELL}<sub>i</sub>",
        f"{ALPHA} = exp(m<sub>prev</sub><br>{MINUS} m)",
    ]
    below = stacked(ctx, height, width)
    if below:
        layout = _stacked_layout(titles)
        height += ALPHA_ROW_PX
    else:
        layout = row_layout(titles, widths=[0.38, 0.38, 0.24], gap=0.06, share_y=True)
    common = {"type": "heatmap", "x": tiles, "y": rows, "xgap": 1, "ygap": 1}
    finite_l = l[np.isfinite(l)]
    data = [
        {
            **common,
            "z": m,
            "name": "m",
            "colorscale": SCORE_SCALE,
            "zmin": -ctx.score_max,
            "zmax": ctx.score_max,
            "showscale": False,
            "hovertemplate": "row %{y}, after tile %{x}: m = %{z:.4f}<extra></extra>",
            "numbers": (".2f", ".1f"),
        },
        {
            **common,
            "xaxis": "x2",
            "yaxis": "y2",
            "z": l,
            "name": "l",
            "colorscale": PROB_SCALE,
            "zmin": 0,
            "zmax": float(finite_l.max()) if finite_l.size else 1.0,
            "showscale": False,
            "hovertemplate": "row %{y}, after tile %{x}: l = %{z:.4f}<extra></extra>",
            "numbers": (".2f", ".1f"),
        },
    ]
    if isinstance(step, TileStep):
        data += _alpha_traces(step, rows, below, focus)
    if isinstance(step, LoadStep):  # no tile yet: say what the state starts at
        starts = (("x", f"m<sub>i</sub> = {MINUS}\u221e"), ("x2", f"{ELL}<sub>i</sub> = 0"))
        for x_ref, text in starts:
            layout["annotations"].append(
                {"text": f"initial state:<br>{text}", "xref": f"{x_ref} domain",
                 "yref": "y domain", "x": 0.5, "y": 0.5, "showarrow": False,
                 "font": {"size": FONT_SIZE + 2}}
            )  # fmt: skip
    for axis in ("xaxis", "xaxis2"):
        layout[axis].update(title={"text": "tile j"}, dtick=1, zeroline=False)
    row_axes = ("yaxis", "yaxis2") if below else ("yaxis", "yaxis2", "yaxis3")
    margins = {"t": 110, "b": 110, **(margin or {})}
    panel_px = (height - margins["t"] - margins["b"]) * (0.5 if below else 1.0)
    for axis in row_axes:
        layout[axis].update(  # no zero line: it ran across row 0's tiles still to come
            autorange="reversed", zeroline=False, **row_ticks(rows, panel_px)
        )
    layout["yaxis"]["title"] = {"text": "query r"}
    if below:
        layout["xaxis3"].update(title={"text": "query r"}, **row_ticks(rows, width / 2))
        layout["yaxis3"].update(title={"text": ALPHA}, range=[0, 1.05], nticks=3)
        layout["legend"] = {"orientation": "h", "y": -0.25, "x": 0, "yanchor": "top"}
    else:
        layout["xaxis3"].update(title={"text": ALPHA}, range=[0, 1.05])
        # under the axis title, whatever the height: 70 px below the plot
        layout["legend"] = {"orientation": "h", "y": -70 / max(panel_px, 1), "x": 0,
                            "yanchor": "top"}  # fmt: skip
    # a bar too thin for its number at the figures' text size hides it (hover shows it)
    layout["uniformtext"] = {"mode": "hide", "minsize": FONT_SIZE}
    title = f"Running statistics of Q block {step.i}"
    layout = base_layout(layout, title=title, height=height, margin=margins)
    fit_numbers(data, layout, width)
    return figure(data, layout)
