"""The current tile: S_ij and P~_ij side by side, with their numbers while they fit."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from flashviz.core.trace import TileStep
from flashviz.figures.context import FigureContext
from flashviz.figures.grid import figure, panel_axes, row_layout
from flashviz.figures.style import (
    CHAR_WIDTH,
    FONT_SIZE,
    HALF_WIDTH,
    MINUS,
    P_TILDE,
    PROB_SCALE,
    SCORE_SCALE,
    TAU,
    base_layout,
    finite_or_nan,
    fit_numbers,
    index_ticks,
)


def tile_heatmap(panel: int, z: np.ndarray, rows: range, cols: range, name: str, **style) -> dict:
    """Heatmap trace of one tile's ``z`` (rows x cols) in panel ``panel``, its numbers
    printed where they fit (``fit_numbers``)."""
    x, y = panel_axes(panel)
    return {
        "type": "heatmap",
        "xaxis": x,
        "yaxis": y,
        "z": z,
        "x": np.arange(cols.start, cols.stop),
        "y": np.arange(rows.start, rows.stop),
        "name": name,
        "hovertemplate": f"query %{{y}}, key %{{x}}: {name} = %{{z:.4f}}<extra></extra>",
        "numbers": (".2f", ".1f"),
        **style,
    }


def score_range(ctx: FigureContext, s: np.ndarray, tile_scale: bool) -> tuple[float, float]:
    """(zmin, zmax) of the S heatmap: the tile map's symmetric scale, or with ``tile_scale``
    the tile's own finite min and max (a tile of small scores in a map with large ones
    looks blank on the map's scale); the map's when the tile has no spread."""
    finite = s[np.isfinite(s)]
    if tile_scale and finite.size and finite.max() > finite.min():
        return float(finite.min()), float(finite.max())
    return -ctx.score_max, ctx.score_max


def tile_figure(
    ctx: FigureContext,
    step_index: int,
    height: int = 420,
    width: int = HALF_WIDTH,
    tile_scale: bool = False,
    margin: dict | None = None,
) -> go.Figure:
    """Heatmaps of the scaled, masked scores S_ij (blank = masked) and P~_ij = exp(S_ij - m).

    S is coloured on the tile map's scale, or with ``tile_scale`` on this tile's own range;
    ``margin`` overrides the default margins (numbers are fitted to the cells they leave)."""
    step = ctx.trace.steps[step_index]
    if not isinstance(step, TileStep):
        raise ValueError(f"step {step_index} is a {step.kind!r} step, not a tile")
    ij = f"{step.i}{step.j}"
    layout = row_layout(
        [
            f"S<sub>{ij}</sub> = {TAU} Q<sub>{step.i}</sub> K<sub>{step.j}</sub><sup>T</sup>",
            f"{P_TILDE}<sub>{ij}</sub> = exp(S<sub>{ij}</sub> {MINUS} m<sub>new</sub>)",
        ],
        gap=0.12,
    )
    keys, queries = step.s.shape[1], step.s.shape[0]
    margins = {"t": 100, "b": 150, **(margin or {})}
    # as many whole-index labels as fit a panel: a key label is its digits wide, plus a gap
    x0, x1 = layout["xaxis"]["domain"]
    panel_w = (width - margins.get("l", 60) - margins.get("r", 20)) * (x1 - x0)
    label_w = len(str(step.cols.stop - 1)) * CHAR_WIDTH * FONT_SIZE + 14
    panel_h = height - margins["t"] - margins["b"]
    below = -78 / max(panel_h, 1)  # the colour bars' top: 78 px under the plot, past "key c"
    for k in (1, 2):
        suffix = "" if k == 1 else "2"
        layout[f"xaxis{suffix}"].update(
            title={"text": "key c"}, showgrid=False,
            **index_ticks(keys, min(8, max(2, int(panel_w // label_w)))),
        )  # fmt: skip
        layout[f"yaxis{suffix}"].update(
            autorange="reversed", showgrid=False,
            **index_ticks(queries, min(8, max(2, int(panel_h // (1.5 * FONT_SIZE))))),
        )  # fmt: skip
    layout["yaxis"]["title"] = {"text": "query r"}
    zmin, zmax = score_range(ctx, step.s, tile_scale)
    own = (zmin, zmax) != (-ctx.score_max, ctx.score_max)
    data = [
        tile_heatmap(
            0,
            finite_or_nan(step.s),
            step.rows,
            step.cols,
            "S",
            colorscale=SCORE_SCALE,
            zmin=zmin,
            zmax=zmax,
            colorbar=colorbar_below(
                "score (this tile)" if own else "score", layout["xaxis"]["domain"], below
            ),
        ),
        tile_heatmap(
            1,
            step.p,
            step.rows,
            step.cols,
            P_TILDE,
            colorscale=PROB_SCALE,
            zmin=0,
            zmax=1,
            colorbar=colorbar_below(P_TILDE, layout["xaxis2"]["domain"], below),
        ),
    ]
    masked = "" if step.tile_kind == "full" else "<br>on the causal diagonal: blank = masked"
    title = f"Tile ({step.i}, {step.j}){masked}"
    layout = base_layout(layout, title=title, height=height, margin=margins)
    fit_numbers(data, layout, width)
    return figure(data, layout)


def colorbar_below(title: str, domain: list[float], y: float = -0.5) -> dict:
    """A horizontal colour bar under its own panel (a vertical one beside a panel of a
    narrow figure ran over the next panel), its top at ``y`` (a fraction of the plot's
    height below it: under the axis title)."""
    return {
        "title": {"text": title, "side": "top"},
        "orientation": "h",
        "x": (domain[0] + domain[1]) / 2,
        "xanchor": "center",
        "len": domain[1] - domain[0],
        "y": y,
        "yanchor": "top",
        "thickness": 14,
        "nticks": 4,
    }
