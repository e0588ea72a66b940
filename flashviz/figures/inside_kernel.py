"""Figures of the "Inside the kernel" page: pure functions of ``flashviz.lab.inside_kernel``
and ``flashviz.lab.tile_explorer`` data returning ``go.Figure``.

``ownership_figure``: a heatmap of the owner (thread, warp or lane) of every entry of S_ij or
O_i over the tile, hover naming thread, warp, lane and register; ``timeline_figure``: the
kernel body in program order, one row per kind of event (phase markers, shared loads,
barriers, mma, warp shuffles), ticks named by the phases, the K/V loop shaded;
``explorer_figure``: block_q x block_kv -> occupancy where the tiles fit, their shared KiB
in each cell.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import get_colorscale

from flashviz.figures.grid import figure
from flashviz.figures.style import (
    BLUE,
    CELL_FONT_SIZE,
    CURRENT,
    GREEN,
    PURPLE,
    SKY_BLUE,
    VERMILLION,
    base_layout,
)
from flashviz.lab.inside_kernel import EVENT_KINDS, Ownership, Timeline
from flashviz.lab.tile_explorer import Cell

OWNER_SCALE = get_colorscale("Turbo")  # many distinct ids side by side
OCCUPANCY_SCALE = get_colorscale("Viridis")
COLOUR_BY = ("thread", "warp", "lane")
EVENT_STYLE = {  # kind -> (label, symbol, colour)
    "phase": ("phase marker", "square", BLUE),
    "load": ("shared load", "triangle-down", GREEN),
    "barrier": ("__syncthreads()", "line-ns-open", VERMILLION),
    "mma": ("mma.sync", "diamond", PURPLE),
    "shuffle": ("__shfl_xor_sync", "circle", SKY_BLUE),
}


def _grid_lines(own: Ownership, row_step: int, col_step: int) -> list[dict]:
    rows, cols = own.shape
    lines = []
    for r in range(row_step, rows, row_step):
        lines.append({"type": "line", "x0": -0.5, "x1": cols - 0.5, "y0": r - 0.5, "y1": r - 0.5,
                      "line": {"color": "white", "width": 1}})  # fmt: skip
    for c in range(col_step, cols, col_step):
        lines.append({"type": "line", "x0": c - 0.5, "x1": c - 0.5, "y0": -0.5, "y1": rows - 0.5,
                      "line": {"color": "white", "width": 1}})  # fmt: skip
    return lines


def ownership_figure(
    own: Ownership,
    colour_by: str = "thread",
    highlight: int | None = None,
    row_step: int = 16,
    col_step: int = 8,
    height: int = 520,
) -> go.Figure:
    """Owner of each entry of ``own.matrix``, coloured by ``colour_by`` (thread, warp or
    lane); ``highlight``: a thread whose entries are outlined; lines every ``row_step``
    rows and ``col_step`` columns (a warp's rows and an n-tile for the tensor cores)."""
    if colour_by not in COLOUR_BY:
        raise ValueError(f"colour_by must be one of {', '.join(COLOUR_BY)}, got {colour_by!r}")
    z = {"thread": own.thread, "warp": own.warp, "lane": own.lane}[colour_by]
    rows, cols = own.shape
    custom = np.stack([own.thread, own.warp, own.lane, own.register], axis=-1)
    data: list[dict] = [
        {
            "type": "heatmap",
            "z": z.tolist(),
            "customdata": custom.tolist(),
            "colorscale": OWNER_SCALE,
            "colorbar": {"title": {"text": colour_by, "side": "right"}},
            "hovertemplate": (
                f"{own.matrix}[%{{y}}, %{{x}}]<br>thread %{{customdata[0]}} "
                "(warp %{customdata[1]}, lane %{customdata[2]})<br>register "
                "%{customdata[3]}<extra></extra>"
            ),
            "xgap": 0,
            "ygap": 0,
        }
    ]
    if highlight is not None:
        ys, xs = np.nonzero(own.thread == highlight)
        data.append({
            "type": "scatter", "mode": "markers", "x": xs.tolist(), "y": ys.tolist(),
            "marker": {"symbol": "square-open", "size": 9, "color": "black",
                       "line": {"width": 2}},
            "name": f"thread {highlight}", "showlegend": False,
            "customdata": own.register[ys, xs].tolist(),
            "hovertemplate": (f"thread {highlight}: {own.matrix}[%{{y}}, %{{x}}] in "
                              "%{customdata}<extra></extra>"),
        })  # fmt: skip
    title = f"Who owns {own.matrix} ({rows} x {cols})"  # the colour bar says by what
    layout = base_layout(
        {
            "xaxis": {"title": {"text": "column"}, "range": [-0.5, cols - 0.5], "zeroline": False},
            "yaxis": {"title": {"text": "row of the query block"}, "autorange": "reversed",
                      "zeroline": False},
            "shapes": _grid_lines(own, row_step, col_step),
        },
        title=title,
        height=height,
    )  # fmt: skip
    return figure(data, layout)


def timeline_figure(tl: Timeline, height: int = 420) -> go.Figure:
    """The kernel body in program order (x: order of appearance, ticks named by the phase
    markers), one row per kind of event."""
    events = tl.events
    data: list[dict] = []
    for kind in EVENT_KINDS:
        picked = [(i, e) for i, e in enumerate(events) if e.kind == kind]
        if not picked:
            continue
        label, symbol, colour = EVENT_STYLE[kind]
        data.append({
            "type": "scatter",
            "mode": "markers",
            "x": [i for i, _ in picked],
            "y": [label] * len(picked),
            "marker": {"symbol": symbol, "size": 14, "color": colour,
                       "line": {"width": 3, "color": colour}},
            "customdata": [[e.line, e.phase or "(before init)", e.code or e.phase, e.note]
                           for _, e in picked],
            "hovertemplate": ("line %{customdata[0]} (phase %{customdata[1]})<br>"
                              "<b>%{customdata[2]}</b><br>%{customdata[3]}<extra></extra>"),
            "name": label,
            "showlegend": False,
        })  # fmt: skip
    in_loop = [i for i, e in enumerate(events) if e.in_loop]
    shapes = []
    if in_loop:
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": in_loop[0] - 0.5,
                       "x1": in_loop[-1] + 0.5, "y0": 0, "y1": 1,
                       "fillcolor": CURRENT, "opacity": 0.15, "line": {"width": 0}})  # fmt: skip
    for i, e in enumerate(events):
        if e.kind == "barrier":
            shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": i, "x1": i,
                           "y0": 0, "y1": 1,
                           "line": {"color": VERMILLION, "width": 2, "dash": "dot"}})  # fmt: skip
    annotations = []
    if in_loop:
        loop_text = f"for each K/V tile j (lines {tl.loop[0]}-{tl.loop[1]})"
        annotations.append({"x": (in_loop[0] + in_loop[-1]) / 2, "y": 1.0, "xref": "x",
                            "yref": "paper", "yanchor": "bottom", "showarrow": False,
                            "text": loop_text})  # fmt: skip
    kinds = [EVENT_STYLE[k][0] for k in EVENT_KINDS if any(e.kind == k for e in events)]
    phases = [(i, e.phase) for i, e in enumerate(events) if e.kind == "phase"]
    layout = base_layout(
        {  # x: order in the kernel body, ticks at the phase markers, named upright
            "xaxis": {"range": [-1, len(events)], "zeroline": False, "tickmode": "array",
                      "tickvals": [i for i, _ in phases], "ticktext": [p for _, p in phases],
                      "tickangle": -90},
            "yaxis": {"categoryorder": "array", "categoryarray": kinds,
                      "autorange": "reversed", "zeroline": False},
            "shapes": shapes,
            "annotations": annotations,
        },
        title=f"Phases, barriers and warp reductions of the {tl.kind} kernel",
        height=height,
        margin={"l": 170, "t": 100, "b": 130},
    )  # fmt: skip
    return figure(data, layout)


def _registers_note(cell: Cell) -> str:
    if cell.measured:
        return f"{cell.registers} registers a thread (ptxas)"
    return f"≈ {cell.registers} registers a thread (another build's count: an estimate)"


def explorer_figure(
    cells: Sequence[Cell], head_dim: int, arch: str, registers: int, height: int = 480
) -> go.Figure:
    """block_q x block_kv: occupancy where the tiles fit (grey: over 48 KiB), shared KiB
    and resident blocks printed in each cell."""
    qs = sorted({c.block_q for c in cells})
    kvs = sorted({c.block_kv for c in cells})
    at = {(c.block_q, c.block_kv): c for c in cells}
    z = [[at[q, kv].occupancy.fraction if at[q, kv].fits else None for kv in kvs] for q in qs]
    text = [
        [
            f"{at[q, kv].shared_bytes / 1024:.1f} KiB<br>"
            + (
                f"{'' if at[q, kv].measured else '≈'}{at[q, kv].occupancy.blocks} blk"
                if at[q, kv].fits
                else "over 48"
            )
            for kv in kvs
        ]
        for q in qs
    ]
    hover = [
        [
            f"{at[q, kv].threads} threads, {at[q, kv].shared_bytes} bytes shared, "
            + _registers_note(at[q, kv])
            + "<br>"
            + (at[q, kv].occupancy.text() if at[q, kv].fits else "over the 48 KiB static limit")
            for kv in kvs
        ]
        for q in qs
    ]
    data = [
        {
            "type": "heatmap",
            "x": [str(kv) for kv in kvs],
            "y": [str(q) for q in qs],
            "z": z,
            "zmin": 0,
            "zmax": 1,
            "colorscale": OCCUPANCY_SCALE,
            "colorbar": {"title": {"text": "occupancy", "side": "right"}, "tickformat": ".0%"},
            "text": text,
            "texttemplate": "%{text}",
            "textfont": {"size": CELL_FONT_SIZE},
            "customdata": hover,
            "hovertemplate": "block_q %{y}, block_kv %{x}<br>%{customdata}<extra></extra>",
            "xgap": 2,
            "ygap": 2,
        }
    ]
    layout = base_layout(
        {
            "xaxis": {"title": {"text": "block_kv"}, "type": "category"},
            "yaxis": {"title": {"text": "block_q"}, "type": "category"},
        },
        title=f"Tile sizes at head dim {head_dim} on {arch} ({registers} registers a thread)",
        height=height,
    )
    return figure(data, layout)
