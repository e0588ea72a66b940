"""The whole run as a Plotly animation: m, l and the output rows after every step.

Frames play in the browser (play/pause and a slider, no server round-trips), so the
figure works offline, e.g. saved with ``fig.write_html(..., include_plotlyjs=True)``.
Rows of blocks not started yet are blank; the current block shows its running estimate
o / l; written blocks show their final rows.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from flashviz.divergence import step_estimate
from flashviz.figures.context import FigureContext
from flashviz.figures.grid import figure, row_layout
from flashviz.figures.style import ELL, OUT_SCALE, base_layout, symmetric_range
from flashviz.trace import LoadStep, TileStep, Trace

MAX_FRAMES = 150
MAX_ROWS = 64
MAX_DIMS = 32


def run_states(trace: Trace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m (steps, n_q), l (steps, n_q), o (steps, n_q, d) after each step; NaN = not started."""
    n, d, s = trace.n_q, trace.d, len(trace.steps)
    m, l, o = np.full((s, n), np.nan), np.full((s, n), np.nan), np.full((s, n, d), np.nan)
    cur_m, cur_l, cur_o = np.full(n, np.nan), np.full(n, np.nan), np.full((n, d), np.nan)
    for k, step in enumerate(trace.steps):
        r = slice(step.rows.start, step.rows.stop)
        if isinstance(step, LoadStep):
            cur_m[r], cur_l[r], cur_o[r] = np.nan, step.l, 0.0
        elif isinstance(step, TileStep):
            cur_m[r], cur_l[r] = np.where(np.isfinite(step.m), step.m, np.nan), step.l
            cur_o[r] = step_estimate(trace, step)
        else:
            cur_m[r] = np.where(np.isfinite(step.m), step.m, np.nan)
            cur_l[r], cur_o[r] = step.l, step.o
        m[k], l[k], o[k] = cur_m, cur_l, cur_o
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
    play = {"frame": {"duration": 400, "redraw": True}, "fromcurrent": True, "mode": "immediate"}
    pause = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}
    return {
        "updatemenus": [
            {
                "type": "buttons",
                "direction": "left",
                "x": 0,
                "y": -0.12,
                "xanchor": "left",
                "yanchor": "top",
                "buttons": [
                    {"label": "Play", "method": "animate", "args": [None, play]},
                    {"label": "Pause", "method": "animate", "args": [[None], pause]},
                ],
            }
        ],
        "sliders": [
            {
                "x": 0.15,
                "y": -0.08,
                "len": 0.85,
                "currentvalue": {"prefix": "after step "},
                "steps": [
                    {"label": label, "method": "animate", "args": [[name], pause]}
                    for name, label in zip(names, labels, strict=True)
                ],
            }
        ],
    }


def whole_run_figure(ctx: FigureContext, height: int = 560) -> go.Figure:
    """Animated m_i, l_i and output rows of every query row, one frame per (sampled) step."""
    trace = ctx.trace
    m, l, o = run_states(trace)
    row_stride = -(-trace.n_q // MAX_ROWS)
    rows = np.arange(0, trace.n_q, row_stride)
    m, l, o = m[:, rows], l[:, rows], o[:, rows, :MAX_DIMS]
    picks = frame_steps(len(trace.steps))
    names = [str(k) for k in picks]
    labels = [f"{k}: {trace.steps[k].kind} (block {trace.steps[k].i})" for k in picks]
    frames = [
        {"name": name, "data": _frame_data(m[k], l[k], o[k], rows), "traces": [0, 1, 2]}
        for name, k in zip(names, picks, strict=True)
    ]
    first = _frame_data(m[picks[0]], l[picks[0]], o[picks[0]], rows)
    first[0].update(mode="lines+markers", name="m", xaxis="x", yaxis="y")
    first[1].update(mode="lines+markers", name=ELL, xaxis="x2", yaxis="y2")
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
    layout.update(_controls(names, labels), showlegend=False)
    sampled = "" if row_stride == 1 else f", every {row_stride}th row"
    title = f"The whole run, {len(picks)} frames{sampled}: press Play"
    fig = figure(first, base_layout(layout, title=title, height=height, margin={"b": 140}))
    fig.frames = [go.Frame(f, _validate=False) for f in frames]
    return fig
