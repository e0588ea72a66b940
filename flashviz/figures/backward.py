"""Figures of the backward pass: pure functions of a backward trace returning ``go.Figure``.

``backward_tile_map_figure``: the grid of tiles in the order the backward visits them (K/V
blocks outside), which are done, current, still to come, skipped by the mask;
``scores_figure`` and ``grads_figure``: the current tile's S and P (recomputed from L),
dP and dS; ``on_chip_figure``: dK_j and dV_j growing on chip; ``dq_figure``: dQ in HBM,
the additions each row has received and the rows that receive one now.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from flashviz.core.backward_trace import BackwardTrace, BwdTileStep
from flashviz.figures.grid import figure, panel_axes, row_layout
from flashviz.figures.style import (
    CELL_FONT_SIZE,
    CURRENT,
    DONE,
    FULL_WIDTH,
    MAX_CELLS_WITH_NUMBERS,
    MINUS,
    OUT_SCALE,
    PROB_SCALE,
    SCORE_SCALE,
    SKIPPED,
    TAU,
    base_layout,
    finite_or_nan,
    fit_numbers,
    symmetric_range,
)
from flashviz.figures.tile import colorbar_below, tile_heatmap
from flashviz.figures.tile_map import legend_squares, outline
from flashviz.lab.backward import TILE_STATES

TO_COME_GREY = "#BBBBBB"  # solid, so Plotly picks dark numbers on it
STATE_COLOURS = (DONE, CURRENT, TO_COME_GREY, "#FFFFFF")  # by code of TILE_STATES
TOTAL_MARKER = {"symbol": "diamond-open", "size": 10, "color": "#555555", "line": {"width": 2}}
TOTAL_MARKER = {"symbol": "diamond-open", "size": 10, "color": "#555555", "line": {"width": 2}}
LEGEND_BELOW = {"orientation": "h", "x": 0, "y": 0, "yref": "container", "yanchor": "bottom"}


def _state_scale() -> list[list[object]]:
    """A colour scale with one flat band per state code 0 .. 3 (zmin -0.5, zmax 3.5)."""
    scale: list[list[object]] = []
    for code, colour in enumerate(STATE_COLOURS):
        scale += [[code / 4, colour], [(code + 1) / 4, colour]]
    return scale


def backward_tile_map_figure(
    trace: BackwardTrace, states: np.ndarray, order: np.ndarray, k: int, height: int = 520
) -> go.Figure:
    """The tile grid (Q blocks down, K/V blocks across) coloured by ``states`` (codes into
    ``TILE_STATES``); each visited tile shows its place in the run (``order``) while the
    grid is small enough; skipped tiles are outlined in blue, dashed."""
    n_i, n_j = states.shape
    text = np.where(order > 0, order.astype(str), "")
    heat = {
        "type": "heatmap",
        "z": states,
        "zmin": -0.5,
        "zmax": 3.5,
        "colorscale": _state_scale(),
        "showscale": False,
        "xgap": 2,
        "ygap": 2,
        "customdata": np.array(TILE_STATES, dtype=object)[states],
        "hovertemplate": "Q block %{y}, K/V block %{x}: %{customdata}<extra></extra>",
        "name": "tiles",
        "showlegend": False,
    }
    if states.size <= MAX_CELLS_WITH_NUMBERS:
        heat.update(text=text, texttemplate="%{text}", textfont={"size": CELL_FONT_SIZE})
    skipped = [
        {"type": "rect", "x0": j - 0.5, "x1": j + 0.5, "y0": i - 0.5, "y1": i + 0.5,
         "line": {"color": SKIPPED, "width": 2, "dash": "dash"}}
        for i, j in zip(*np.nonzero(states == 3), strict=True)
    ]  # fmt: skip
    legend = [
        ("done", {"color": DONE}),
        ("current", {"color": CURRENT}),
        ("to come", {"color": TO_COME_GREY}),
        ("masked", outline(SKIPPED, 3)),
    ]
    step = trace.steps[k]
    where = f": tile ({step.i}, {step.j})" if isinstance(step, BwdTileStep) else ""
    layout = {
        "shapes": skipped,
        "xaxis": {"title": {"text": "K/V block j (outer loop)"}, "range": [-0.5, n_j - 0.5],
                  "showgrid": False, "zeroline": False, "dtick": 1 if n_j <= 16 else None},
        "yaxis": {"title": {"text": "Q block i (inner loop)"}, "range": [n_i - 0.5, -0.5],
                  "showgrid": False, "zeroline": False, "dtick": 1 if n_i <= 16 else None},
        "legend": {**LEGEND_BELOW, "entrywidth": 0.5, "entrywidthmode": "fraction"},  # 2 a row
    }  # fmt: skip
    title = f"Tiles in the backward's order (numbers)<br>step {k}{where}"
    return figure(
        [heat, *legend_squares(legend)],
        base_layout(layout, title=title, height=height, margin={"t": 100, "b": 150}),
    )


def _tile_pair(
    step: BwdTileStep,
    panels: list[tuple[str, str, np.ndarray, dict]],
    title: str,
    height: int,
    width: int,
) -> go.Figure:
    """Two heatmaps of the tile side by side: (panel title, name, values, colour keywords)."""
    layout = row_layout([p[0] for p in panels], gap=0.12)
    data = []
    for n, (_, name, z, colours) in enumerate(panels):
        x_name, y_name = panel_axes(n)
        layout[f"xaxis{x_name[1:]}"].update(title={"text": "key c"}, showgrid=False)
        layout[f"yaxis{y_name[1:]}"].update(autorange="reversed", showgrid=False)
        domain = layout[f"xaxis{x_name[1:]}"]["domain"]
        data.append(
            tile_heatmap(
                n, z, step.rows, step.cols, name, colorbar=colorbar_below(name, domain), **colours
            )
        )
    layout["yaxis"]["title"] = {"text": "query r"}
    masked = "" if step.tile_kind == "full" else "<br>on the causal diagonal: blank = masked"
    layout = base_layout(layout, title=title + masked, height=height, margin={"t": 100, "b": 150})
    fit_numbers(data, layout, width)
    return figure(data, layout)


def _diverging(*arrays: np.ndarray, scale: list = OUT_SCALE) -> dict:
    peak = symmetric_range(*arrays)
    return {"colorscale": scale, "zmin": -peak, "zmax": peak}


def scores_figure(step: BwdTileStep, height: int = 420, width: int = FULL_WIDTH) -> go.Figure:
    """S_ij (recomputed; blank = masked) and P_ij = exp(S_ij - L_i) of the current tile."""
    ij, i, j = f"{step.i}{step.j}", step.i, step.j
    s_title = f"S<sub>{ij}</sub> = {TAU} Q<sub>{i}</sub> K<sub>{j}</sub><sup>T</sup>"
    p_title = f"P<sub>{ij}</sub> = exp(S<sub>{ij}</sub> {MINUS} L<sub>{i}</sub>)"
    probs = {"colorscale": PROB_SCALE, "zmin": 0, "zmax": 1}
    panels = [
        (s_title, "S", finite_or_nan(step.s), _diverging(step.s, scale=SCORE_SCALE)),
        (p_title, "P", step.p, probs),
    ]
    title = f"Tile ({i}, {j}): S recomputed, P from the saved L"
    return _tile_pair(step, panels, title, height, width)


def grads_figure(step: BwdTileStep, height: int = 420, width: int = FULL_WIDTH) -> go.Figure:
    """dP_ij = dO_i V_j^T and dS_ij = P_ij (dP_ij - D_i) of the current tile, on one
    diverging scale each (0 in the middle)."""
    ij, i, j = f"{step.i}{step.j}", step.i, step.j
    dp_title = f"dP<sub>{ij}</sub> = dO<sub>{i}</sub> V<sub>{j}</sub><sup>T</sup>"
    ds_title = f"dS<sub>{ij}</sub> = P<sub>{ij}</sub> (dP<sub>{ij}</sub> {MINUS} D<sub>{i}</sub>)"
    panels = [
        (dp_title, "dP", step.dp, _diverging(step.dp)),
        (ds_title, "dS", step.ds, _diverging(step.ds)),
    ]
    title = f"Tile ({i}, {j}): the gradients of P and S"
    return _tile_pair(step, panels, title, height, width)


def on_chip_figure(
    dk: np.ndarray,
    dv: np.ndarray,
    cols: range,
    j: int,
    k: int,
    height: int = 420,
    width: int = FULL_WIDTH,
) -> go.Figure:
    """dK_j and dV_j (keys ``cols`` x d) on chip after step ``k``."""
    layout = row_layout([f"dK<sub>{j}</sub> (on chip)", f"dV<sub>{j}</sub> (on chip)"], gap=0.12)
    dims = range(dk.shape[1])
    data = []
    for n, (name, z) in enumerate((("dK", dk), ("dV", dv))):
        x_name, y_name = panel_axes(n)
        layout[f"xaxis{x_name[1:]}"].update(title={"text": "dimension"}, showgrid=False)
        layout[f"yaxis{y_name[1:]}"].update(autorange="reversed", showgrid=False)
        domain = layout[f"xaxis{x_name[1:]}"]["domain"]
        trace = tile_heatmap(
            n, z, cols, dims, name, colorbar=colorbar_below(name, domain), **_diverging(z)
        )
        trace["hovertemplate"] = f"key %{{y}}, dim %{{x}}: {name} = %{{z:.4f}}<extra></extra>"
        data.append(trace)
    layout["yaxis"]["title"] = {"text": "key c"}
    title = f"K/V block {j}'s gradients on chip after step {k}"
    layout = base_layout(layout, title=title, height=height, margin={"t": 100, "b": 150})
    fit_numbers(data, layout, width)
    return figure(data, layout)


def dq_figure(
    dq: np.ndarray,
    adds: np.ndarray,
    adds_total: np.ndarray,
    rows_now: range,
    k: int,
    height: int = 460,
) -> go.Figure:
    """dQ in HBM after step ``k`` (right, rows x d) and, per row, the additions it has
    received so far (bars; orange: this step's rows) out of the run's (hollow diamonds)."""
    n_q = dq.shape[0]
    rows = np.arange(n_q)
    now = np.isin(rows, np.arange(rows_now.start, rows_now.stop))
    layout = row_layout(
        ["additions to dQ so far", "dQ in HBM (partial sums)"], widths=[1, 2], share_y=True
    )
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "x": adds,
            "y": rows,
            "name": "additions so far (orange: now)",
            "marker": {"color": np.where(now, CURRENT, DONE).tolist()},
            "hovertemplate": "row %{y}: %{x} additions<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "x": adds_total,
            "y": rows,
            "name": "in the whole run",
            "marker": TOTAL_MARKER,
            "hovertemplate": "row %{y}: %{x} additions in all<extra></extra>",
        },
        {
            "type": "heatmap",
            "z": dq,
            "x": np.arange(dq.shape[1]),
            "y": rows,
            "xaxis": "x2",
            "yaxis": "y2",
            "name": "dQ",
            "colorbar": {"title": {"text": "dQ", "side": "right"}, "thickness": 14, "nticks": 4},
            "hovertemplate": "row %{y}, dim %{x}: dQ = %{z:.4f}<extra></extra>",
            **_diverging(dq),
        },
    ]
    layout["yaxis"].update(title={"text": "query row"}, autorange="reversed")
    layout["xaxis"].update(title={"text": "additions"}, range=[0, max(int(adds_total.max()), 1)])
    layout["xaxis"]["dtick"] = 1 if adds_total.max() <= 8 else None
    layout["xaxis2"].update(title={"text": "dimension"}, showgrid=False)
    layout["legend"] = LEGEND_BELOW
    if len(rows_now):
        layout["shapes"] = [
            {"type": "rect", "xref": "x2 domain", "yref": "y2", "x0": 0, "x1": 1,
             "y0": rows_now.start - 0.5, "y1": rows_now.stop - 0.5,
             "line": {"color": CURRENT, "width": 4}}
        ]  # fmt: skip
    added = (
        f"rows {rows_now.start}-{rows_now.stop - 1} receive an addition"
        if len(rows_now)
        else "no addition"
    )
    return figure(
        data,
        base_layout(layout, title=f"dQ in HBM after step {k}: {added}", height=height,
                    margin={"b": 110}),
    )  # fmt: skip
