"""A FlexAttention mask and its block mask: the tiles by kind, and the mask entry by entry.

``block_map_figure``: one cell per tile (Q block i, K/V block j) coloured by its kind (full
green, partial orange, empty light), the Q block the page inspects outlined.
``dense_mask_figure``: each entry (query r, key c) dark when r sees c, every tile outlined
by its kind (``flashviz.figures.mask_cells``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from flashviz.core.block_mask import EMPTY, FULL, PARTIAL, BlockMask
from flashviz.figures.grid import figure
from flashviz.figures.mask_cells import MASKED, cell_legend, mask_heatmap, tick_step, tile_outlines
from flashviz.figures.style import CURRENT, DONE, INK, base_layout
from flashviz.figures.tile_map import legend_squares, outline

KIND_NAMES = {EMPTY: "skipped", PARTIAL: "partial", FULL: "full"}
KIND_COLOURS = {EMPTY: MASKED, PARTIAL: CURRENT, FULL: DONE}
LEGEND: list[tuple[str, dict[str, Any]]] = [
    ("full", {"color": DONE}),
    ("partial", {"color": CURRENT}),
    ("empty", {"color": MASKED, "line": {"color": "#999999", "width": 1}}),
]


def _axes(n_rows: int, n_cols: int, x_title: str, y_title: str) -> dict:
    axis = {"showgrid": False, "zeroline": False}
    return {
        "xaxis": {"title": {"text": x_title}, "range": [-0.5, n_cols - 0.5],
                  "constrain": "domain", "dtick": tick_step(n_cols), **axis},
        "yaxis": {"title": {"text": y_title}, "range": [n_rows - 0.5, -0.5], "scaleanchor": "x",
                  "constrain": "domain", "dtick": tick_step(n_rows), **axis},
    }  # fmt: skip


def block_map_figure(bm: BlockMask, row: int, height: int = 520) -> go.Figure:
    """The tiles of ``bm`` (its first batch and head) by kind; Q block ``row`` outlined."""
    kinds = bm.kinds[0, 0]
    n_rows, n_cols = kinds.shape
    block_q, block_kv = bm.block_size
    scale = [[0.0, MASKED], [1 / 3, MASKED], [1 / 3, CURRENT], [2 / 3, CURRENT],
             [2 / 3, DONE], [1.0, DONE]]  # fmt: skip
    small = kinds.size <= 16 * 16
    data = {
        "type": "heatmap",
        "z": kinds.astype(np.int8),
        "zmin": EMPTY - 0.5,
        "zmax": FULL + 0.5,
        "colorscale": scale,
        "showscale": False,
        "showlegend": False,
        **({"xgap": 2, "ygap": 2} if small else {}),
        "customdata": np.vectorize(KIND_NAMES.get)(kinds),
        "hovertemplate": "Q block i = %{y}, K/V block j = %{x}: %{customdata}<extra></extra>",
        **({"text": np.where(kinds == FULL, "F", np.where(kinds == PARTIAL, "P", "")),
            "texttemplate": "%{text}", "textfont": {"size": 16}} if small else {}),
    }  # fmt: skip
    band = {
        "type": "rect", "name": "the Q block inspected", "xref": "x", "yref": "y",
        "x0": -0.5, "x1": n_cols - 0.5, "y0": row - 0.5, "y1": row + 0.5,
        "line": {"color": INK, "width": 3},
    }  # fmt: skip
    layout = {
        **_axes(n_rows, n_cols, f"K/V block j ({block_kv} keys)", f"Q block i ({block_q} rows)"),
        "shapes": [band],
        "legend": {"orientation": "h", "yref": "container", "y": 0.01, "x": 0, "yanchor": "bottom"},
    }
    title = f"Block map: {bm.sparsity():.0f}% empty"
    entries = [*LEGEND, ("inspected", outline(INK, 3))]
    return figure(
        [data, *legend_squares(entries)],
        base_layout(layout, title=title, height=height, margin={"t": 80, "b": 150}),
    )


def dense_mask_figure(dense: np.ndarray, bm: BlockMask, height: int = 560) -> go.Figure:
    """Every entry of the mask (``dense``, n_q x n_k) with the tiles of ``bm`` outlined."""
    n_q, n_k = dense.shape
    kinds = np.vectorize(KIND_NAMES.get)(bm.kinds[0, 0])
    layout = {
        **_axes(n_q, n_k, "key c", "query r"),
        "shapes": tile_outlines(kinds, bm.block_size, bm.seq_lengths, "x", "y"),
        "legend": {"orientation": "h", "yref": "container", "y": 0.01, "x": 0, "yanchor": "bottom"},
    }
    entries = cell_legend("partial tile", "empty tile")
    title = f"The mask, entry by entry: {int(dense.sum()):,} of {dense.size:,} pairs visible"
    return figure(
        [mask_heatmap(dense, "x", "y", "mask"), *legend_squares(entries)],
        base_layout(layout, title=title, height=height, margin={"t": 80, "b": 150}),
    )
