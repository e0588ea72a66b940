"""The output accumulator o_i of the current Q block, as this step changes it.

Tile step: o before, after the rescale diag(alpha) o, and after adding P~ V_j.
Load step: o = 0. Write step: the normalised rows o / l, the reference rows, and |error|.
The value panels share one diverging colour scale. Side by side, unless their cells would
be too narrow for numbers there and not stacked (a few rows, a few dims): then one above
the other, numbers in every cell.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from flashviz.core.trace import LoadStep, TileStep, WriteStep
from flashviz.figures.context import FigureContext
from flashviz.figures.grid import column_layout, figure, panel_axes, row_layout
from flashviz.figures.style import (
    ALPHA,
    CELL_FONT_SIZE,
    CHAR_WIDTH,
    ELL,
    ERROR_SCALE,
    FULL_WIDTH,
    MINUS,
    OUT_SCALE,
    P_TILDE,
    base_layout,
    fit_numbers,
    symmetric_range,
)


def accumulator_panels(ctx: FigureContext, step_index: int) -> list[tuple[str, np.ndarray]]:
    """(title, (rows, d) array) for each panel of this step; at a write, |error| comes last."""
    step = ctx.trace.steps[step_index]
    if isinstance(step, TileStep):  # <br>: two lines where three panels are narrow
        return [
            ("o before<br>this tile", step.o_prev),
            (f"after rescale:<br>diag({ALPHA}) o", step.o_rescaled),
            (f"after<br>+ {P_TILDE} V<sub>{step.j}</sub>", step.o),
        ]
    if isinstance(step, WriteStep):
        ref = ctx.verdict.o_ref[step.rows.start : step.rows.stop]
        return [  # short titles: three panels share a half-width chart in presentation
            (f"written O = o / {ELL}", step.o),
            ("reference O", ref),
            (f"|O {MINUS} reference|", np.abs(step.o - ref)),
        ]
    assert isinstance(step, LoadStep)
    return [("o = 0 (just initialised)", step.o)]


NUMBER_CELL_PX = 4 * CHAR_WIDTH * CELL_FONT_SIZE + 4  # "-0.4" in a cell
STACK_ROWS = 8  # stacked, each panel takes a row of ROW_PX per query row: up to this many
ROW_PX, TITLE_PX, STACK_GAP_PX = 24, 34, 34
WIDE_TITLE_PX = 200  # a panel this wide takes its title on one line


def height_stacked(panels: int, rows: int) -> int:
    """The figure's height with its panels stacked (titles, gaps and margins included)."""
    return panels * (rows * ROW_PX + TITLE_PX) + 130


def stack_panels(panels: int, rows: int, dims: int, width: int, margin: dict) -> bool:
    """Stack the panels when side by side their cells are too narrow for a number but one
    above the other, full width, they are not (a few rows: the figure grows with them)."""
    plot_w = width - margin["l"] - margin["r"]
    side = plot_w * (1 - 0.05 * (panels - 1)) / panels / dims
    return panels > 1 and rows <= STACK_ROWS and side < NUMBER_CELL_PX <= plot_w / dims


def error_verdict(largest: float, tol: float) -> str:
    """Whether the largest |error| of the written rows is rounding (within the tolerance)."""
    return f"max |error| {largest:.1e}, " + (
        "rounding" if largest <= tol else f"beyond rounding ({tol:.0e})"
    )


def _panel_style(is_error: bool, first: bool, vmax: float, tol: float = 0.0) -> dict:
    if is_error:  # up to the tolerance at least: rounding noise stays dark, not bright
        return {
            "colorscale": ERROR_SCALE,
            "zmin": 0,
            "zmax": max(tol, vmax),
            "colorbar": {"title": {"text": "|err|"}, "x": 1.0, "exponentformat": "e"},
        }
    return {
        "colorscale": OUT_SCALE,
        "zmin": -vmax,
        "zmax": vmax,
        "showscale": first,
        "colorbar": {"title": {"text": "o"}, "x": -0.12, "xanchor": "right"},
    }


def accumulator_figure(
    ctx: FigureContext,
    step_index: int,
    height: int = 380,
    width: int = FULL_WIDTH,
    margin: dict | None = None,
    may_stack: bool = True,
) -> go.Figure:
    """One heatmap (rows x head dims) per stage of o at this step, on a shared colour scale;
    at a write step the title says whether the largest error is rounding. ``margin``
    overrides the default margins (numbers are fitted to the cells they leave);
    ``may_stack=False`` keeps the panels side by side (a chart of fixed height)."""
    step = ctx.trace.steps[step_index]
    panels = accumulator_panels(ctx, step_index)
    has_error = isinstance(step, WriteStep)
    vmax = symmetric_range(*(a for _, a in (panels[:-1] if has_error else panels)))
    rows = np.arange(step.rows.start, step.rows.stop)
    margins = {"l": 120, "r": 90, **(margin or {})}
    titles = [t for t, _ in panels]
    side_px = (width - margins["l"] - margins["r"]) / len(panels)
    stacked = may_stack and stack_panels(
        len(panels), len(rows), panels[0][1].shape[1], width, margins
    )
    if stacked or side_px >= WIDE_TITLE_PX:  # each title on one line where it fits
        titles = [t.replace("<br>", " ") for t in titles]
    elif any("<br>" in t for t in titles):
        margins["t"] = max(margins.get("t", 70), 100)  # two lines under the figure's title
    if stacked:
        height = max(height, height_stacked(len(panels), len(rows)))
        layout = column_layout(titles, gap=STACK_GAP_PX / height)
    else:
        layout = row_layout(titles, gap=0.05, share_y=True)
    data = []
    with np.errstate(over="ignore"):  # a buggy run may hold values beyond float32
        panels = [(name, a.astype(np.float32)) for name, a in panels]
    for k, (_, a) in enumerate(panels):
        is_error = has_error and k == len(panels) - 1
        x, y = panel_axes(k)
        data.append(
            {
                "type": "heatmap",
                "xaxis": x,
                "yaxis": y,
                "z": a,
                "x": np.arange(a.shape[1]),
                "y": rows,
                "hovertemplate": "row %{y}, dim %{x}: %{z:.4g}<extra></extra>",
                "numbers": (".0e",) if is_error else (".2f", ".1f"),
                **_panel_style(
                    is_error, k == 0, float(np.nanmax(a)) if is_error else vmax, ctx.verdict.tol
                ),
            }
        )
        if layout[f"xaxis{x[1:]}"].get("showticklabels", True):  # stacked: at the foot
            layout[f"xaxis{x[1:]}"]["title"] = {"text": "dim"}
        layout[f"yaxis{y[1:]}"]["autorange"] = "reversed"
    title = f"Output accumulator o of Q block {step.i}"
    if has_error:
        title = f"Written O of Q block {step.i}: " + error_verdict(
            float(np.nanmax(panels[-1][1])), ctx.verdict.tol
        )
    layout = base_layout(layout, title=title, height=height, margin=margins)
    fit_numbers(data, layout, width)
    return figure(data, layout)
