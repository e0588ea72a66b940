"""Running statistics of the current Q block: m_i and l_i after every tile, and alpha now.

One heatmap row per query row; columns are the K/V tiles of this block (blank: not yet).
m shares the score colour scale of the tile map. Rows whose max just rose (so alpha < 1
rescales their state) are circled in m and drawn in vermillion in the alpha panel.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from flashviz.figures.context import FigureContext
from flashviz.figures.grid import figure, row_layout
from flashviz.figures.style import (
    ALPHA,
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
from flashviz.trace import LoadStep, TileStep

UNCHANGED = "#999999"


def history(ctx: FigureContext, step_index: int) -> tuple[np.ndarray, np.ndarray]:
    """(m, l), each (rows in block, tiles of block): the value after each tile so far, else NaN."""
    step = ctx.trace.steps[step_index]
    shape = (len(step.rows), ctx.kv_count(step.i))
    m, l = np.full(shape, np.nan), np.full(shape, np.nan)
    for t in ctx.tiles_so_far(step_index):
        m[:, t.j], l[:, t.j] = finite_or_nan(t.m), t.l
    return m, l


def changed_rows(step: TileStep) -> np.ndarray:
    """Rows whose max rose from a finite value: their old state is really rescaled."""
    return step.max_changed & np.isfinite(step.m_prev)


def _alpha_traces(step: TileStep, rows: np.ndarray) -> list[dict]:
    changed = changed_rows(step)
    circles = {
        "type": "scatter",
        "xaxis": "x",
        "yaxis": "y",
        "x": np.full(int(changed.sum()), step.j),
        "y": rows[changed],
        "mode": "markers",
        "name": "max rose at this tile",
        "marker": {"symbol": "circle-open", "size": 22, "color": CHANGED, "line": {"width": 3}},
    }
    bars = {
        "type": "bar",
        "xaxis": "x3",
        "yaxis": "y3",
        "x": step.alpha,
        "y": rows,
        "orientation": "h",
        "name": ALPHA,
        "marker": {"color": np.where(changed, CHANGED, UNCHANGED).tolist()},
        "text": [f"{a:.3f}" for a in step.alpha],
        "textposition": "auto",
        "hovertemplate": "row %{y}: " + ALPHA + " = %{x:.4f}<extra></extra>",
        "showlegend": False,
    }
    return [circles, bars]


def stats_figure(
    ctx: FigureContext, step_index: int, height: int = 420, width: int = HALF_WIDTH
) -> go.Figure:
    """Heatmaps of m and l after each tile so far, and a bar of alpha for this step."""
    step = ctx.trace.steps[step_index]
    rows = np.arange(step.rows.start, step.rows.stop)
    m, l = history(ctx, step_index)
    tiles = np.arange(m.shape[1])
    layout = row_layout(
        [
            "running max m<sub>i</sub>",
            f"running sum {ELL}<sub>i</sub>",
            f"{ALPHA} = exp(m<sub>prev</sub><br>{MINUS} m)",
        ],
        widths=[0.38, 0.38, 0.24],
        gap=0.06,
        share_y=True,
    )
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
        data += _alpha_traces(step, rows)
    if isinstance(step, LoadStep):  # no tile yet: say what the state starts at
        starts = (("x", f"m<sub>i</sub> = {MINUS}\u221e"), ("x2", f"{ELL}<sub>i</sub> = 0"))
        for x_ref, text in starts:
            layout["annotations"].append(
                {"text": f"initial state:<br>{text}", "xref": f"{x_ref} domain",
                 "yref": "y domain", "x": 0.5, "y": 0.5, "showarrow": False,
                 "font": {"size": FONT_SIZE + 2}}
            )  # fmt: skip
    for axis in ("xaxis", "xaxis2"):
        layout[axis].update(title={"text": "tile j"}, dtick=1)
    layout["xaxis3"].update(title={"text": ALPHA}, range=[0, 1.05])
    for axis in ("yaxis", "yaxis2", "yaxis3"):
        layout[axis].update(autorange="reversed", dtick=1 if len(rows) <= 32 else None)
    layout["yaxis"]["title"] = {"text": "query r"}
    layout["legend"] = {"orientation": "h", "y": -0.32, "x": 0, "yanchor": "top"}
    title = f"Running statistics of Q block {step.i}"
    layout = base_layout(layout, title=title, height=height, margin={"t": 110, "b": 110})
    fit_numbers(data, layout, width)
    return figure(data, layout)
