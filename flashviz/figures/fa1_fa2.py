"""FA1 vs FA2 figures: the two loop orders on the tile grid, live counters, HBM over n.

- ``loop_orders_figure``: the T_r x T_c grid of tiles twice, FA1 (K/V blocks outside)
  on the left, FA2 (Q blocks outside) on the right, each at its own step: every executed
  tile carries its number in that run's order, the current tile is orange, tiles done
  green, tiles to come grey, tiles the causal mask skips blue; bars mark the blocks on chip.
- ``counters_figure``: HBM bytes read and written and non-matmul FLOPs so far (solid)
  against the whole run (pale), for FA1 and FA2, with naive attention's HBM bytes.
- ``hbm_over_n_figure``: HBM accesses against n for naive, FA1, FA2 (exact counts) and
  the orders of FA1 Theorem 2, N d + N^2 and N^2 d^2 / M (log-log).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from flashviz.core.trace import LoadStep, Step, TileStep, WriteStep
from flashviz.figures.grid import figure, panel_axes, row_layout
from flashviz.figures.style import (
    BLUE,
    CELL_FONT_SIZE,
    CURRENT,
    DONE,
    INK,
    PURPLE,
    SKIPPED,
    TO_COME,
    VERMILLION,
    base_layout,
)
from flashviz.lab.fa1 import Fa1LoadStep, Fa1Step, Fa1TileStep
from flashviz.lab.fa_compare import Comparison, HbmOverN, RunCounts

FA1_COLOUR = BLUE
FA2_COLOUR = VERMILLION
NAIVE_COLOUR = PURPLE
ORDER_COLOUR = INK  # the two orders of growth: ink, told apart by their dashes
MAX_NUMBERED_TILES = 400  # print each tile's order number up to this many tiles

SKIP, COME, DONE_CODE, NOW = 0, 1, 2, 3  # tile state codes of the grid heatmaps
STATE_NAMES = {SKIP: "skipped (causal mask)", COME: "still to come", DONE_CODE: "done",
               NOW: "current tile"}  # fmt: skip
STATE_COLOURS = {SKIP: SKIPPED, COME: TO_COME, DONE_CODE: DONE, NOW: CURRENT}
# z in {0, 1, 2, 3} on [-0.5, 3.5]: one quarter of the colour scale per state
STATE_SCALE = [
    [pos, STATE_COLOURS[code]]
    for code in range(4)
    for pos in (code / 4, (code + 1) / 4)
]  # fmt: skip


def tile_order(steps: Sequence[Step | Fa1Step]) -> list[tuple[int, int]]:
    """(i, j) of each executed tile, in the run's order."""
    return [(s.i, s.j) for s in steps if isinstance(s, (TileStep, Fa1TileStep))]


def tile_states(
    grid: tuple[int, int], order: list[tuple[int, int]], tiles_done: int, at_tile: bool
) -> np.ndarray:
    """(T_r, T_c) state codes after ``tiles_done`` tiles; the last of them is current when
    the step is a tile step."""
    states = np.full(grid, SKIP, dtype=np.int8)
    for n, (i, j) in enumerate(order):
        states[i, j] = DONE_CODE if n < tiles_done else COME
    if at_tile and tiles_done:
        states[order[tiles_done - 1]] = NOW
    return states


def on_chip(step: object) -> tuple[int | None, int | None]:
    """(Q block i, K/V block j) on chip at ``step`` (None where no block of that kind is)."""
    if isinstance(step, (TileStep, Fa1TileStep)):
        return step.i, step.j
    if isinstance(step, (LoadStep, WriteStep)):
        return step.i, None
    if isinstance(step, Fa1LoadStep):
        return None, step.j
    return None, None


def _chip_shapes(panel: int, i: int | None, j: int | None, q_label: str) -> tuple[list, list]:
    x, y = panel_axes(panel)
    bar = {"type": "rect", "fillcolor": CURRENT, "line": {"width": 0}}
    shapes, notes = [], []
    if i is not None:
        shapes.append({**bar, "name": "Q block on chip", "xref": f"{x} domain", "yref": y,
                       "x0": 1.01, "x1": 1.04, "y0": i - 0.5, "y1": i + 0.5})  # fmt: skip
        notes.append({"text": q_label.format(i=i), "xref": f"{x} domain", "yref": y,
                      "x": 1.05, "y": i, "xanchor": "left", "showarrow": False})  # fmt: skip
    if j is not None:
        shapes.append({**bar, "name": "K/V block on chip", "xref": x, "yref": f"{y} domain",
                       "x0": j - 0.5, "x1": j + 0.5, "y0": 1.01, "y1": 1.05})  # fmt: skip
        notes.append({"text": f"K<sub>{j}</sub>V<sub>{j}</sub>", "xref": x,
                      "yref": f"{y} domain", "x": j, "y": 1.06, "yanchor": "bottom",
                      "showarrow": False})  # fmt: skip
    return shapes, notes


def _grid_panel(panel: int, states: np.ndarray, order: list[tuple[int, int]], name: str) -> dict:
    x, y = panel_axes(panel)
    numbers = np.full(states.shape, "", dtype=object)
    for n, ij in enumerate(order, start=1):
        numbers[ij] = str(n)
    trace = {
        "type": "heatmap",
        "xaxis": x,
        "yaxis": y,
        "z": states,
        "zmin": -0.5,
        "zmax": 3.5,
        "colorscale": STATE_SCALE,
        "showscale": False,
        "xgap": 2,
        "ygap": 2,
        "name": name,
        "customdata": numbers,
        "hovertemplate": f"{name}: tile (i=%{{y}}, j=%{{x}}), order %{{customdata}}<extra></extra>",
    }
    if len(order) <= MAX_NUMBERED_TILES:
        trace.update(text=numbers, texttemplate="%{text}", textfont={"size": CELL_FONT_SIZE})
    return trace


# Legends at the foot of the figure (container coordinates): below the axis titles, which
# a legend placed at a fraction of the plot height ran into at 16 px.
BOTTOM_LEGEND = {"orientation": "h", "x": 0, "y": 0, "yref": "container", "yanchor": "bottom"}


def _legend() -> list[dict]:
    return [
        {"type": "scatter", "x": [None], "y": [None], "mode": "markers", "name": label,
         "marker": {"symbol": "square", "size": 16, "color": STATE_COLOURS[code]}}
        for code, label in STATE_NAMES.items()
    ]  # fmt: skip


def loop_orders_figure(cmp: Comparison, k1: int, k2: int, height: int = 480) -> go.Figure:
    """The tile grid twice: FA1 at its step ``k1`` (left), FA2 at its step ``k2`` (right)."""
    grid = cmp.fa2.grid
    runs: list[tuple[str, Sequence[Step | Fa1Step], RunCounts, int, str]] = [
        ("FA1", cmp.fa1.steps, cmp.fa1_counts, k1, "Q<sub>{i}</sub>O<sub>{i}</sub>l,m"),
        ("FA2", cmp.fa2.steps, cmp.fa2_counts, k2, "Q<sub>{i}</sub>"),
    ]
    layout = row_layout(
        ["FA1: K/V blocks outside, Q blocks inside", "FA2: Q blocks outside, K/V blocks inside"],
        gap=0.14,
    )
    data, shapes, notes = [], [], list(layout["annotations"])
    for panel, (name, steps, counts, k, q_label) in enumerate(runs):
        order = tile_order(steps)
        step = steps[k]
        at_tile = isinstance(step, (TileStep, Fa1TileStep))
        data.append(_grid_panel(panel, tile_states(grid, order, int(counts.tiles[k]), at_tile),
                                order, name))  # fmt: skip
        s, a = _chip_shapes(panel, *on_chip(step), q_label)
        shapes += s
        notes += a
        x, y = panel_axes(panel)
        axis = {"showgrid": False, "zeroline": False, "dtick": 1 if max(grid) <= 24 else None}
        layout[f"xaxis{x[1:]}"].update(title={"text": "K/V block j"}, **axis)
        layout[f"yaxis{y[1:]}"].update(title={"text": "Q block i"}, autorange="reversed", **axis)
    for note in notes[:2]:
        note["y"] = 1.12  # panel titles above the K/V bars
    layout.update(shapes=shapes, annotations=notes, legend=BOTTOM_LEGEND)
    title = "The same tiles in two orders (numbers: the order each run computes them)"
    return figure(data + _legend(), base_layout(layout, title=title, height=height + 40,
                                                margin={"t": 130, "r": 90, "b": 110}))  # fmt: skip


def _bar(x: list[str], y: list[float], name: str, colour: str, panel: int, **kw) -> dict:
    xa, ya = panel_axes(panel)
    return {"type": "bar", "x": x, "y": y, "name": name, "xaxis": xa, "yaxis": ya,
            "marker": {"color": colour}, "offsetgroup": name.split()[0],
            "hovertemplate": f"{name}: %{{y:,.1f}}<extra></extra>", **kw}  # fmt: skip


def _run_bars(name: str, counts: RunCounts, k: int, colour: str) -> list[dict]:
    kib = 1 / 1024
    so_far = [counts.reads[k] * kib, counts.writes[k] * kib]
    total = [counts.reads[-1] * kib, counts.writes[-1] * kib]
    pale = {"opacity": 0.3, "showlegend": False}
    hbm = ["HBM reads", "HBM writes"]
    return [
        _bar(hbm, total, f"{name} whole run", colour, 0, **pale),
        _bar(hbm, so_far, f"{name} so far", colour, 0, legendgroup=name),
        _bar(["non-matmul FLOPs"], [float(counts.flops[-1])], f"{name} whole run", colour, 1,
             **pale),
        _bar(["non-matmul FLOPs"], [float(counts.flops[k])], f"{name} so far", colour, 1,
             legendgroup=name, showlegend=False),
    ]  # fmt: skip


def counters_figure(cmp: Comparison, k1: int, k2: int, height: int = 380) -> go.Figure:
    """Counts so far (solid) and for the whole run (pale): FA1 at step ``k1``, FA2 at ``k2``,
    with naive attention's HBM reads and writes."""
    layout = row_layout(["HBM traffic (KiB, float32)", "non-matmul FLOPs"], widths=[2, 1])
    naive = [cmp.naive.reads / 1024, cmp.naive.writes / 1024]
    data = [
        *_run_bars("FA1", cmp.fa1_counts, k1, FA1_COLOUR),
        *_run_bars("FA2", cmp.fa2_counts, k2, FA2_COLOUR),
        _bar(["HBM reads", "HBM writes"], naive, "naive (whole run)", NAIVE_COLOUR, 0,
             marker={"color": NAIVE_COLOUR, "pattern": {"shape": "/"}}),
    ]  # fmt: skip
    layout.update(barmode="group", legend={"orientation": "h", "y": -0.15, "x": 0})
    return figure(data, base_layout(layout, title="Counters", height=height, margin={"t": 90}))


def hbm_over_n_figure(h: HbmOverN, height: int = 460) -> go.Figure:
    """HBM accesses (numbers moved) against n = n_q = n_k, log-log."""
    ns = list(h.ns)
    lines = [
        ("naive (exact)", h.naive, NAIVE_COLOUR, "solid"),
        ("FA1 (exact)", h.fa1, FA1_COLOUR, "solid"),
        ("FA2 (exact)", h.fa2, FA2_COLOUR, "solid"),
        ("FA2, B<sub>r</sub> and B<sub>c</sub> swapped", h.fa2_swapped, FA2_COLOUR, "dashdot"),
        ("N d + N\u00b2 (Theorem 2, standard)", h.order_standard, ORDER_COLOUR, "dash"),
        ("N\u00b2 d\u00b2 / M (Theorem 2, flash)", h.order_flash, ORDER_COLOUR, "dot"),
    ]
    data = [
        {"type": "scatter", "x": ns, "y": list(ys), "name": name, "mode": "lines+markers",
         "line": {"color": colour, "dash": dash},
         "hovertemplate": f"{name}<br>n = %{{x}}: %{{y:.3s}}<extra></extra>"}
        for name, ys, colour, dash in lines
    ]  # fmt: skip
    layout = {
        "xaxis": {"type": "log", "dtick": 1, "title": {"text": "n = n_q = n_k"}},
        "yaxis": {
            "type": "log",
            "dtick": 1,
            "automargin": True,
            "title": {"text": "HBM accesses (numbers moved)", "standoff": 12},
        },
        "legend": BOTTOM_LEGEND,
    }
    title = (f"HBM accesses over n: d = {h.d}, M = {h.sram_elements:,} numbers on chip "
             f"(B<sub>r</sub> = {h.block_q}, B<sub>c</sub> = {h.block_kv})")  # fmt: skip
    return figure(data, base_layout(layout, title=title, height=height + 80,
                                    margin={"t": 80, "b": 150}))  # fmt: skip
