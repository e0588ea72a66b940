"""Top-left vs bottom-right causal masks side by side, and the FLOPs each one executes.

``alignment_map_figure``: one panel per alignment, each cell (r, c) dark when query r sees
key c and light when masked; every tile outlined by its kind (full green, partial orange,
skipped blue and dashed) and the rows that see no key filled in vermillion.
``alignment_flops_figure``: executed and useful FLOPs without a mask and with each mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from flashviz.figures.grid import figure, panel_axes, row_layout
from flashviz.figures.mask_cells import cell_legend, mask_heatmap, tick_step, tile_outlines
from flashviz.figures.style import (
    CHANGED,
    CURRENT,
    DONE,
    base_layout,
)
from flashviz.figures.tile_map import legend_squares
from flashviz.lab.alignment import Alignment

EMPTY_ROW_FILL = "rgba(213, 94, 0, 0.35)"  # CHANGED (vermillion), translucent


def _offset_text(a: Alignment) -> str:
    if a.offset == 0:
        return "c \u2264 r"
    sign = "+" if a.offset > 0 else "\u2212"
    return f"c \u2264 r {sign} {abs(a.offset)}"


def _empty_rows_shape(a: Alignment, x: str, y: str) -> list[dict]:
    """One band over the rows that see no key: they are always rows 0 .. e-1, since the
    number of keys a row sees never decreases with r."""
    if not len(a.empty_rows):
        return []
    return [
        {
            "type": "rect",
            "name": "empty rows",
            "xref": x,
            "yref": y,
            "x0": -0.5,
            "x1": a.n_k - 0.5,
            "y0": int(a.empty_rows[0]) - 0.5,
            "y1": int(a.empty_rows[-1]) + 0.5,
            "fillcolor": EMPTY_ROW_FILL,
            "line": {"color": CHANGED, "width": 2},
        }
    ]


LEGEND: list[tuple[str, dict[str, Any]]] = [
    *cell_legend("partial tile (diagonal)", "skipped tile"),
    ("row that sees no key", {"color": EMPTY_ROW_FILL, "line": {"color": CHANGED}}),
]


def alignment_map_figure(views: Sequence[Alignment], height: int = 620) -> go.Figure:
    """One element-mask panel per alignment, with tile outlines by kind and empty rows."""
    titles = [
        f"{a.label}<br>row r sees key c iff {_offset_text(a)}; "
        f"{len(a.empty_rows)} row(s) see no key"
        for a in views
    ]
    layout = row_layout(titles, gap=0.1)
    data, shapes = [], []
    for k, a in enumerate(views):
        x, y = panel_axes(k)
        data.append(mask_heatmap(a.mask, x, y, a.label))
        shapes += _empty_rows_shape(a, x, y) + tile_outlines(
            a.kinds, (a.block_q, a.block_kv), (a.n_q, a.n_k), x, y
        )
        axis = {"showgrid": False, "zeroline": False}
        layout[f"xaxis{x[1:]}"].update(
            title={"text": "key c"},
            range=[-0.5, a.n_k - 0.5],
            constrain="domain",
            dtick=tick_step(a.n_k),
            **axis,
        )
        layout[f"yaxis{y[1:]}"].update(
            title={"text": "query r"},
            range=[a.n_q - 0.5, -0.5],
            scaleanchor=x,
            constrain="domain",
            dtick=tick_step(a.n_q),
            **axis,
        )
    n_q, n_k = views[0].n_q, views[0].n_k
    layout.update(
        shapes=shapes,
        legend={"orientation": "h", "y": -0.22, "x": 0, "yanchor": "top"},
    )
    title = f"Causal masks for n_q = {n_q} queries, n_k = {n_k} keys"
    return figure(
        [*data, *legend_squares(LEGEND)],
        base_layout(layout, title=title, height=height, margin={"t": 130, "b": 150}),
    )


def alignment_flops_figure(views: Sequence[Alignment], height: int = 380) -> go.Figure:
    """Executed and useful FLOPs: no mask, then each alignment, with % of the unmasked run."""
    unmasked = views[0].flops.unmasked
    names = ["no mask", *(a.label for a in views)]
    executed = [unmasked, *(a.flops.executed for a in views)]
    useful = [unmasked, *(a.flops.useful for a in views)]

    def bars(name: str, values: list[int], colour: str) -> dict:
        return {
            "type": "bar",
            "name": name,
            "x": names,
            "y": values,
            "marker": {"color": colour},
            "text": [f"{v / unmasked:.0%}" for v in values],
            "textposition": "outside",
            "hovertemplate": "%{x}: %{y:,} FLOPs<extra>" + name + "</extra>",
        }

    layout = {
        "barmode": "group",
        "yaxis": {"title": {"text": "FLOPs"}, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": -0.2, "x": 0, "yanchor": "top"},
    }
    title = "FLOPs of the forward: executed by the tiles vs useful (4 d per visible pair)"
    return figure(
        [
            bars("executed (whole tiles)", executed, CURRENT),
            bars("useful (visible pairs)", useful, DONE),
        ],
        base_layout(layout, title=title, height=height, margin={"b": 90}),
    )
