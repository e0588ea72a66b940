"""The whole run as a Plotly animation: m, l and the output rows after every step.

Frames play in the browser (play/pause and a slider, no server round-trips), so the
figure works offline, e.g. saved with ``fig.write_html(..., include_plotlyjs=True)``.
Rows of blocks not started yet are blank; the current block shows its running estimate
o / l; written blocks show their final rows.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from flashviz.core.trace import LoadStep, TileStep, Trace, WriteStep
from flashviz.figures.context import FigureContext
from flashviz.figures.grid import figure, row_layout
from flashviz.figures.style import (
    BLUE,
    ELL,
    INK,
    OUT_SCALE,
    VERMILLION,
    base_layout,
    symmetric_range,
)
from flashviz.lab.divergence import tile_estimate

MAX_FRAMES = 150
MAX_ROWS = 64
MAX_DIMS = 32


def run_states(
    trace: Trace,
    steps: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    dims: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m (frames, rows), l (frames, rows), o (frames, rows, dims) after the given steps.

    ``steps`` (sorted step indices; default all), ``rows`` (sorted query rows; default all)
    and ``dims`` (the first output dims; default d) pick what is drawn, and only that is
    kept: memory is O(frames x rows x dims), never O(steps x n_q x d). NaN = not started.
    """
    steps = np.arange(len(trace.steps)) if steps is None else np.asarray(steps)
    rows = np.arange(trace.n_q) if rows is None else np.asarray(rows)
    dims = trace.d if dims is None else min(dims, trace.d)
    n, f = len(rows), len(steps)
    m, l, o = np.full((f, n), np.nan), np.full((f, n), np.nan), np.full((f, n, dims), np.nan)
    cur_m, cur_l, cur_o = np.full(n, np.nan), np.full(n, np.nan), np.full((n, dims), np.nan)
    frame = 0
    for k, step in enumerate(trace.steps[: int(steps[-1]) + 1] if f else []):
        lo, hi = np.searchsorted(rows, [step.rows.start, step.rows.stop])
        mine = rows[lo:hi] - step.rows.start  # the drawn rows of this block, block-relative
        if isinstance(step, LoadStep):
            cur_m[lo:hi], cur_l[lo:hi], cur_o[lo:hi] = np.nan, step.l[mine], 0.0
        elif isinstance(step, TileStep):
            cur_m[lo:hi] = np.where(np.isfinite(step.m), step.m, np.nan)[mine]
            cur_l[lo:hi] = step.l[mine]
            cur_o[lo:hi] = tile_estimate(trace, step)[mine, :dims]
        elif isinstance(step, WriteStep):
            cur_m[lo:hi] = np.where(np.isfinite(step.m), step.m, np.nan)[mine]
            cur_l[lo:hi], cur_o[lo:hi] = step.l[mine], step.o[mine, :dims]
        while frame < f and steps[frame] == k:
            m[frame], l[frame], o[frame] = cur_m, cur_l, cur_o
            frame += 1
    return m, l, o


def frame_steps(n_steps: int, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """Which steps become frames: all of them, or an even subset that keeps the last."""
    if n_steps <= max_frames:
        return np.arange(n_steps)
    return np.unique(np.linspace(0, n_steps - 1, max_frames).round().astype(int))


def _frame_data(m: np.ndarray, l: np.ndarray, o: np.ndarray, rows: np.ndarray) -> list[dict]:
    return [
        {"type": "scatter", "x": m, "y": rows},
        {"type": "scatter", "x": l, "y": rows},
        {"type": "heatmap", "z": o.astype(np.float32)},
    ]


def _controls(names: list[str], labels: list[str]) -> dict:
    # redraw: True everywhere: without it Plotly.animate only tweens scatter traces and a
    # heatmap keeps its first frame (or vanishes) until the last one.
    play = {"frame": {"duration": 400, "redraw": True}, "fromcurrent": True, "mode": "immediate",
            "transition": {"duration": 0}}  # fmt: skip
    jump = {"frame": {"duration": 0, "redraw": True}, "mode": "immediate",
            "transition": {"duration": 0}}  # fmt: skip
    pause = {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}
    return {
        "updatemenus": [
            {
                "type": "buttons",  # top right: below, they covered the slider's label
                "direction": "left",
                "x": 1,
                "y": 1.1,
                "xanchor": "right",
                "yanchor": "bottom",
                "font": {"color": INK},  # dark on a light button in either theme
                "bgcolor": "#E8EDF3",
                "bordercolor": "#6B7385",
                "buttons": [
                    {"label": "Play", "method": "animate", "args": [None, play]},
                    {"label": "Pause", "method": "animate", "args": [[None], pause]},
                ],
            }
        ],
        "sliders": [
            {
                "x": 0,
                "y": -0.08,
                "len": 1,
                "currentvalue": {"prefix": "after step "},
                "steps": [
                    {"label": label, "method": "animate", "args": [[name], jump]}
                    for name, label in zip(names, labels, strict=True)
                ],
            }
        ],
    }


def whole_run_figure(ctx: FigureContext, height: int = 560) -> go.Figure:
    """Animated m_i, l_i and output rows of every query row, one frame per (sampled) step."""
    trace = ctx.trace
    row_stride = -(-trace.n_q // MAX_ROWS)
    rows = np.arange(0, trace.n_q, row_stride)
    picks = frame_steps(len(trace.steps))
    m, l, o = run_states(trace, picks, rows, MAX_DIMS)  # only what is drawn
    names = [str(k) for k in picks]
    labels = [f"{k}: {trace.steps[k].kind} (block {trace.steps[k].i})" for k in picks]
    frames = [
        {"name": name, "data": _frame_data(m[f], l[f], o[f], rows), "traces": [0, 1, 2]}
        for f, name in enumerate(names)
    ]
    first = _frame_data(m[0], l[0], o[0], rows)
    first[0].update(mode="lines+markers", name="m", xaxis="x", yaxis="y", line_color=BLUE,
                    marker_color=BLUE)  # fmt: skip
    first[1].update(mode="lines+markers", name=ELL, xaxis="x2", yaxis="y2",
                    line_color=VERMILLION, marker_color=VERMILLION)  # fmt: skip
    vmax = symmetric_range(o[-1])
    first[2].update(
        x=np.arange(o.shape[2]),
        y=rows,
        xaxis="x3",
        yaxis="y3",
        colorscale=OUT_SCALE,
        zmin=-vmax,
        zmax=vmax,
        colorbar={"title": {"text": "o"}},
    )
    dims = "" if trace.d <= MAX_DIMS else f" (dims 0-{MAX_DIMS - 1})"
    layout = row_layout(
        [
            "running max m<sub>r</sub>",
            f"running sum {ELL}<sub>r</sub>",
            f"output rows o / {ELL}{dims}",
        ],
        widths=[0.25, 0.25, 0.5],
        gap=0.06,
        share_y=True,
    )
    finite_m, finite_l = m[np.isfinite(m)], l[np.isfinite(l)]
    pad = 0.05 * (np.ptp(finite_m) if finite_m.size else 1.0) + 1e-9
    if finite_m.size:
        layout["xaxis"]["range"] = [finite_m.min() - pad, finite_m.max() + pad]
    layout["xaxis2"]["range"] = [0, 1.05 * (finite_l.max() if finite_l.size else 1.0)]
    for axis in ("yaxis", "yaxis2", "yaxis3"):
        layout[axis]["range"] = [trace.n_q - 0.5, -0.5]
    layout["yaxis"]["title"] = {"text": "query r"}
    for axis in ("xaxis", "xaxis2"):  # narrow panels: a few 16 px numbers only
        layout[axis]["nticks"] = 4
    layout.update(_controls(names, labels), showlegend=False)
    sampled = "" if row_stride == 1 else f", every {row_stride}th row"
    title = f"The whole run, {len(picks)} frames{sampled}: press Play"
    layout = base_layout(layout, title=title, height=height, margin={"b": 140})
    layout["title"].update(x=0, xref="paper", xanchor="left")  # left: Play / Pause are right
    fig = figure(first, layout)
    fig.frames = [go.Frame(f, _validate=False) for f in frames]
    return fig
