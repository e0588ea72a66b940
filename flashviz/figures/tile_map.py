"""The tile map: the whole score matrix as a grid of tiles, with where the run stands.

Drawn for teaching: the real kernel never materialises the n_q x n_k matrix. Tiles already
processed are outlined in green, the current tile in orange, tiles still to come are veiled
in grey and tiles the mask skips (causal, or a block mask's empty ones) are outlined in
blue, dashed. Bars beside the map
mark the Q block (right) and the K/V block (top) that are on chip. In a run with FA4's
rescale threshold, a blue ringed dot marks each tile done where a row kept a stale max.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import plotly.graph_objects as go

from flashviz.core.trace import LoadStep, TileStep
from flashviz.figures.context import FigureContext
from flashviz.figures.grid import figure
from flashviz.figures.style import (
    BLUE,
    CURRENT,
    DONE,
    PURPLE,
    SCORE_SCALE,
    SKIPPED,
    TO_COME,
    base_layout,
)


class RowState(NamedTuple):
    """Where one query block's row of tiles stands: the K/V blocks processed, the current
    one (or None), those still to come, and those the mask skips (after the visited ones
    under a causal mask; anywhere under a block mask)."""

    done: tuple[int, ...]
    current: int | None
    coming: tuple[int, ...]
    skipped: tuple[int, ...]


def row_states(ctx: FigureContext, step_index: int) -> list[RowState]:
    step = ctx.trace.steps[step_index]
    n_j = ctx.trace.grid[1]
    states = []
    for i in range(ctx.trace.grid[0]):
        visited = ctx.kv_blocks[i]
        skipped = tuple(j for j in range(n_j) if j not in visited)
        if isinstance(step, TileStep) and i == step.i:
            at = visited.index(step.j)
            states.append(RowState(visited[:at], step.j, visited[at + 1 :], skipped))
        elif i < step.i or (i == step.i and not isinstance(step, LoadStep)):
            states.append(RowState(visited, None, (), skipped))  # done, or written back
        else:
            states.append(RowState((), None, visited, skipped))
    return states


def _runs(blocks: Sequence[int]) -> list[tuple[int, int]]:
    """[j0, j1) of each run of consecutive blocks, in order."""
    runs: list[tuple[int, int]] = []
    for j in blocks:
        if runs and runs[-1][1] == j:
            runs[-1] = (runs[-1][0], j + 1)
        else:
            runs.append((j, j + 1))
    return runs


def _span(index0: int, index1: int, block: int, n: int) -> tuple[float, float]:
    """Data coordinates of blocks [index0, index1) along an axis of length n."""
    return index0 * block - 0.5, min(index1 * block, n) - 0.5


def _tile_rect(ctx: FigureContext, i: int, j0: int, j1: int, name: str, **style) -> dict:
    t = ctx.trace
    x0, x1 = _span(j0, j1, t.block_kv, t.n_k)
    y0, y1 = _span(i, i + 1, t.block_q, t.n_q)
    return {"type": "rect", "name": name, "x0": x0, "x1": x1, "y0": y0, "y1": y1, **style}


def _status_shapes(ctx: FigureContext, step_index: int) -> list[dict]:
    shapes = []
    styles: tuple[tuple[str, dict[str, Any]], ...] = (
        ("processed", {"line": {"color": DONE, "width": 2}}),
        ("to come", {"fillcolor": TO_COME, "line": {"width": 0}}),
        ("skipped", {"line": {"color": SKIPPED, "width": 2, "dash": "dash"}}),
    )
    for i, st in enumerate(row_states(ctx, step_index)):
        for (name, style), blocks in zip(styles, (st.done, st.coming, st.skipped), strict=True):
            shapes += [_tile_rect(ctx, i, j0, j1, name, **style) for j0, j1 in _runs(blocks)]
    step = ctx.trace.steps[step_index]
    if isinstance(step, TileStep):
        shapes.append(
            _tile_rect(
                ctx, step.i, step.j, step.j + 1, "current", line={"color": CURRENT, "width": 5}
            )
        )
    return shapes


def _grid_lines(ctx: FigureContext) -> list[dict]:
    t = ctx.trace
    line = {"color": "rgba(128,128,128,0.6)", "width": 1}
    v = [
        {"type": "line", "x0": c - 0.5, "x1": c - 0.5, "y0": -0.5, "y1": t.n_q - 0.5, "line": line}
        for c in range(t.block_kv, t.n_k, t.block_kv)
    ]
    h = [
        {"type": "line", "y0": r - 0.5, "y1": r - 0.5, "x0": -0.5, "x1": t.n_k - 0.5, "line": line}
        for r in range(t.block_q, t.n_q, t.block_q)
    ]
    return v + h


def _on_chip_bars(ctx: FigureContext, step_index: int) -> tuple[list[dict], list[dict]]:
    """Bars for the Q block (right of the map) and the K/V block (above it) on chip."""
    t, step = ctx.trace, ctx.trace.steps[step_index]
    y0, y1 = _span(step.i, step.i + 1, t.block_q, t.n_q)
    bar = {"type": "rect", "fillcolor": CURRENT, "line": {"width": 0}}
    shapes = [
        {**bar, "name": "Q block", "xref": "x domain", "x0": 1.01, "x1": 1.04, "y0": y0, "y1": y1}
    ]
    notes = [
        {
            "text": f"Q<sub>{step.i}</sub>",
            "xref": "x domain",
            "x": 1.05,
            "xanchor": "left",
            "y": (y0 + y1) / 2,
            "showarrow": False,
        }
    ]
    if isinstance(step, TileStep):
        x0, x1 = _span(step.j, step.j + 1, t.block_kv, t.n_k)
        shapes.append(
            {
                **bar,
                "name": "K/V block",
                "yref": "y domain",
                "x0": x0,
                "x1": x1,
                "y0": 1.01,
                "y1": 1.04,
            }
        )
        notes.append(
            {
                "text": f"K<sub>{step.j}</sub>, V<sub>{step.j}</sub>",
                "yref": "y domain",
                "y": 1.05,
                "yanchor": "bottom",
                "x": (x0 + x1) / 2,
                "showarrow": False,
            }
        )
    return shapes, notes


CLEAR = "rgba(0,0,0,0)"


def outline(color: str, width: float) -> dict:
    """Marker style of a legend square drawn as an outline only."""
    return {"color": CLEAR, "line": {"color": color, "width": width}}


def legend_squares(entries: Sequence[tuple[str, dict]]) -> list[dict]:
    """Legend-only traces (they plot nothing): one square per (name, marker style)."""
    return [
        {
            "type": "scatter",
            "x": [None],
            "y": [None],
            "mode": "markers",
            "name": name,
            "marker": {"symbol": "square", "size": 16, **marker},
        }
        for name, marker in entries
    ]


PARTIAL_STYLE = {"color": PURPLE, "width": 2, "dash": "dot"}
LEGEND = [
    ("current", outline(CURRENT, 4)),  # short: two a row fit a half column at 1280 px
    ("done", outline(DONE, 3)),
    ("to come", {"color": TO_COME}),
    ("skipped", outline(SKIPPED, 3)),
    ("partial", {"color": CLEAR, "line": {"color": PURPLE, "width": 2}}),
]


def _partial_shapes(ctx: FigureContext) -> list[dict]:
    """A dotted outline inside every partial tile: the mask is applied entry by entry there
    (the full tiles need none; the skipped ones are never computed)."""
    t, inset = ctx.trace, 0.2
    shapes = []
    for i, j in ctx.partial_tiles:
        x0, x1 = _span(j, j + 1, t.block_kv, t.n_k)
        y0, y1 = _span(i, i + 1, t.block_q, t.n_q)
        shapes.append({"type": "rect", "name": "partial", "x0": x0 + inset, "x1": x1 - inset,
                       "y0": y0 + inset, "y1": y1 - inset, "line": PARTIAL_STYLE})  # fmt: skip
    return shapes


STALE_MARK = {"symbol": "circle-open-dot", "size": 14, "color": BLUE, "line": {"width": 2.5}}


def stale_marks(ctx: FigureContext, step_index: int) -> list[dict]:
    """A mark at the centre of every tile done so far where a row kept a stale max (FA4's
    lazy rescaling skipped its rescale); none in a run without a rescale threshold."""
    t = ctx.trace
    if not t.hooks.rescale_threshold:
        return []
    tiles = [s for s in t.steps[: step_index + 1] if isinstance(s, TileStep) and s.stale.any()]
    centre = [(sum(_span(s.j, s.j + 1, t.block_kv, t.n_k)) / 2,
               sum(_span(s.i, s.i + 1, t.block_q, t.n_q)) / 2) for s in tiles]  # fmt: skip
    counts = [int(s.stale.sum()) for s in tiles]
    return [{
        "type": "scatter", "mode": "markers", "name": "rescale skipped",
        "x": [c[0] for c in centre] or [None], "y": [c[1] for c in centre] or [None],
        "marker": STALE_MARK, "customdata": counts,
        "hovertemplate": "%{customdata} row(s) kept a stale max: no rescale<extra></extra>",
    }]  # fmt: skip


def tile_map_title(ctx: FigureContext) -> str:
    t, f = ctx.trace, ctx.pool
    note = "" if f == 1 else f"<br>downsampled: a cell is the max of {f} x {f}"
    return f"Tile map: all {t.n_q} x {t.n_k} scores s<sub>rc</sub>{note}"


def tile_map_figure(ctx: FigureContext, step_index: int, height: int = 560) -> go.Figure:
    """The score matrix with the tile grid, each tile's state and the blocks on chip."""
    t, f = ctx.trace, ctx.pool
    heat = {
        "type": "heatmap",
        "z": ctx.score_map,
        "x0": (f - 1) / 2,
        "dx": f,
        "y0": (f - 1) / 2,
        "dy": f,
        "colorscale": SCORE_SCALE,
        "zmin": -ctx.score_max,
        "zmax": ctx.score_max,
        "colorbar": {"title": {"text": "score"}, "x": 1.12},
        "hovertemplate": "query %{y}, key %{x}: s = %{z:.3f}<extra></extra>",
        "name": "scores",
        "showlegend": False,
    }
    bars, notes = _on_chip_bars(ctx, step_index)
    axis = {"showgrid": False, "zeroline": False}
    layout = {
        "shapes": _grid_lines(ctx) + _partial_shapes(ctx) + _status_shapes(ctx, step_index) + bars,
        "annotations": notes,
        # at the figure's foot: with square cells the plot's height depends on the width,
        # and a legend at a fraction of it ran into "key c" at some widths
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": 0,
            "yref": "container",
            "yanchor": "bottom",
            "entrywidth": 0.5,
            "entrywidthmode": "fraction",
        },  # two a row, always
        "xaxis": {
            "title": {"text": "key c"},
            "range": [-0.5, t.n_k - 0.5],
            "constrain": "domain",  # a tall map shrinks its width, not past its labels
            **axis,
        },
        "yaxis": {
            "title": {"text": "query r"},
            "range": [t.n_q - 0.5, -0.5],
            "scaleanchor": "x",
            "constrain": "domain",
            **axis,
        },
    }
    layout = base_layout(
        layout, title=tile_map_title(ctx), height=height, margin={"t": 110, "r": 40, "b": 150}
    )
    return figure([heat, *legend_squares(LEGEND), *stale_marks(ctx, step_index)], layout)
