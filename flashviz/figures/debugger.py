"""The online-softmax debugger: one row of scores, chunk by chunk, correct vs buggy.

``runs`` maps a variant to its ``debug_row`` steps: ``CORRECT`` for the right update and
bug keys of ``flashviz.lab.bugzoo.BUGS`` for the mistakes, all on the same row and chunks.
Every figure shows the chunks up to ``step`` (the rest is still to come):

- ``scores_figure``: the scores s_j as bars coloured by chunk (done, current, to come),
  masked keys (-inf) as crosses, and the running max m_i after each chunk;
- ``state_figure``: m_i, l_i and alpha per chunk of each variant;
- ``estimate_figure``: the running estimate o_i / l_i (one component) of each variant
  against the exact softmax-weighted sum, and |error| on a log scale with the tolerance
  and, for each bug, the chunk where it first bites.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from flashviz.figures.grid import figure, row_layout
from flashviz.figures.style import (
    ALPHA,
    BLUE,
    CURRENT,
    DONE,
    ELL,
    INK,
    MINUS,
    ORANGE,
    PURPLE,
    SKY_BLUE,
    VERMILLION,
    base_layout,
    finite_or_nan,
)
from flashviz.lab.bugzoo import BUGS, TOL
from flashviz.lab.row_debugger import RowStep, first_bad_chunk

CORRECT = "correct"
CORRECT_COLOUR = DONE
EXACT_COLOUR = INK  # the exact answer: the theme's ink
# Okabe-Ito and Tol colours, one fixed colour and dash per bug (in the order of BUGS)
BUG_COLOURS = [VERMILLION, BLUE, PURPLE, ORANGE, SKY_BLUE, INK, "#882255", "#999933", "#AA4499"]
DASHES = ["dash", "dot", "dashdot", "longdash", "longdashdot", "dash", "dot", "dashdot", "longdash"]
DONE_ALT = "#00785A"  # a darker green: neighbouring done chunks alternate
# greys for chunks still to come, alternating; each >= 3:1 on the light and the dark paper
TO_COME_COLOURS = ("#8A8A8A", "#6F6F6F")
ERROR_FLOOR = 1e-17  # an error of exactly 0 is drawn here on the log axis
MAX_CHUNK_LINES = 64  # draw chunk boundaries up to this many chunks

Runs = Mapping[str, Sequence[RowStep]]


def variant_label(key: str) -> str:
    return "correct" if key == CORRECT else BUGS[key].title


def variant_style(key: str) -> dict:
    """Line colour and dash of a variant: green solid for the correct one."""
    if key == CORRECT:
        return {"color": CORRECT_COLOUR, "width": 3}
    index = list(BUGS).index(key)
    return {"color": BUG_COLOURS[index], "dash": DASHES[index], "width": 2}


def check_runs(runs: Runs, step: int) -> int:
    """Validate ``runs`` (same chunks for every variant) and ``step``; the number of chunks."""
    if not runs:
        raise ValueError("runs must hold at least one variant")
    unknown = [k for k in runs if k != CORRECT and k not in BUGS]
    if unknown:
        raise ValueError(f"runs keys must be {CORRECT!r} or keys of BUGS, got {unknown}")
    chunks = {tuple(s.cols for s in steps) for steps in runs.values()}
    if len(chunks) != 1 or not next(iter(chunks)):
        raise ValueError("runs must be non-empty debug_row results over the same chunks")
    n_steps = len(next(iter(runs.values())))
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or not 0 <= step < n_steps:
        raise ValueError(f"step must be an integer in [0, {n_steps - 1}], got {step!r}")
    return n_steps


def _chunk_colours(n_chunks: int, step: int) -> list[str]:
    """Done chunks in alternating greens, the current one orange, the rest alternating grey."""
    return [
        (DONE, DONE_ALT)[c % 2] if c < step else CURRENT if c == step else TO_COME_COLOURS[c % 2]
        for c in range(n_chunks)
    ]


def _score_range(scores: np.ndarray) -> tuple[float, float]:
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return -1.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    pad = 0.12 * (hi - lo) or max(1.0, 0.05 * abs(hi))
    return lo - pad, hi + pad


def _running_max_line(steps: Sequence[RowStep], step: int) -> dict:
    """m_i after each chunk so far, drawn across that chunk's columns."""
    x, y = [], []
    for st in steps[: step + 1]:
        m = st.m if np.isfinite(st.m) else np.nan
        x += [st.cols.start - 0.5, st.cols.stop - 0.5, None]
        y += [m, m, None]
    return {
        "type": "scatter",
        "x": x,
        "y": y,
        "mode": "lines",
        "name": "running max m<sub>i</sub> after the chunk",
        "line": {"color": INK, "width": 2, "dash": "dash"},
        "hoverinfo": "skip",
    }


def scores_figure(
    scores: np.ndarray, steps: Sequence[RowStep], step: int, *, height: int = 340
) -> go.Figure:
    """Bars of s_j coloured by chunk, crosses for masked keys, the running max m_i."""
    s = np.asarray(scores, dtype=np.float64)
    n_steps = check_runs({CORRECT: steps}, step)
    if s.ndim != 1 or steps[-1].cols.stop != s.size:
        raise ValueError(f"scores must be the row of steps, shape ({steps[-1].cols.stop},)")
    colours = _chunk_colours(n_steps, step)
    chunk_of = np.repeat(np.arange(n_steps), [len(st.cols) for st in steps])  # (n,)
    lo, hi = _score_range(s)
    finite, cols = np.isfinite(s), np.arange(s.size)
    bar_colours = [colours[c] for c in chunk_of]
    data: list[dict[str, Any]] = [
        {
            "type": "bar",
            "x": cols[finite],
            "y": s[finite] - lo,
            "base": lo,  # bars rise from the bottom of the plot, whatever the offset
            "customdata": np.stack([chunk_of[finite], s[finite]], axis=-1),
            "marker": {"color": [c for c, f in zip(bar_colours, finite, strict=True) if f]},
            "name": "score s<sub>j</sub>",
            "hovertemplate": "key %{x} (chunk %{customdata[0]}): s = %{customdata[1]:.6g}"
            "<extra></extra>",
        },
        {
            "type": "scatter",
            "x": cols[~finite],
            "y": np.full(int((~finite).sum()), lo + 0.04 * (hi - lo)),
            "mode": "markers",
            "marker": {
                "symbol": "x",
                "size": 11,
                "color": [c for c, f in zip(bar_colours, finite, strict=True) if not f],
                "line": {"width": 1},
            },
            "name": "masked key (s = " + MINUS + "inf)",
            "customdata": chunk_of[~finite],
            "hovertemplate": "key %{x} (chunk %{customdata}): masked, s = -inf<extra></extra>",
        },
        _running_max_line(steps, step),
    ]
    shapes = []
    if n_steps <= MAX_CHUNK_LINES:
        shapes = [
            {
                "type": "line",
                "x0": st.cols.start - 0.5,
                "x1": st.cols.start - 0.5,
                "y0": 0,
                "y1": 1,
                "yref": "paper",
                "line": {"color": "#888888", "width": 1, "dash": "dot"},
            }
            for st in steps[1:]
        ]
    cur = steps[step].cols
    layout = {
        "xaxis": {"title": {"text": "key j"}, "range": [-0.5, s.size - 0.5]},
        "yaxis": {"title": {"text": "score s<sub>j</sub>"}, "range": [lo, hi]},
        "bargap": 0.1 if s.size <= 200 else 0,
        "shapes": shapes,
        "legend": {"orientation": "h", "y": -0.45, "x": 0, "yanchor": "top"},
        "showlegend": True,
    }
    title = f"The row in chunks: chunk {step} (keys {cur.start}-{cur.stop - 1}) is on chip"
    return figure(data, base_layout(layout, title=title, height=height, margin={"b": 110}))


def _upto(values: Sequence[float], step: int) -> np.ndarray:
    """The values of chunks 0..step (non-finite ones as gaps), NaN for chunks to come."""
    a = np.full(len(values), np.nan)
    a[: step + 1] = finite_or_nan(np.asarray(values[: step + 1], dtype=np.float64))
    return a


def _current_band(axis: str, step: int) -> dict:
    return {
        "type": "rect",
        "xref": axis,
        "yref": "paper",
        "x0": step - 0.5,
        "x1": step + 0.5,
        "y0": 0,
        "y1": 1,
        "fillcolor": CURRENT,
        "opacity": 0.15,
        "line": {"width": 0},
        "layer": "below",
    }


def state_figure(runs: Runs, step: int, *, height: int = 340) -> go.Figure:
    """m_i, l_i (log scale) and alpha after each chunk so far, one line per variant."""
    n_steps = check_runs(runs, step)
    layout = row_layout(
        ["running max m<sub>i</sub>", f"running sum {ELL}<sub>i</sub>", f"rescale {ALPHA}"],
        gap=0.07,
    )
    chunks = np.arange(n_steps)
    data = []
    for key, steps in runs.items():
        for k, field in enumerate(("m", "l", "alpha")):
            axes = ("x", "y") if k == 0 else (f"x{k + 1}", f"y{k + 1}")
            data.append(
                {
                    "type": "scatter",
                    "xaxis": axes[0],
                    "yaxis": axes[1],
                    "x": chunks,
                    "y": _upto([getattr(s, field) for s in steps], step),
                    "mode": "lines+markers",
                    "line": variant_style(key),
                    "name": variant_label(key),
                    "legendgroup": key,
                    "showlegend": k == 0,
                    "hovertemplate": f"{variant_label(key)}, chunk %{{x}}: {field} = %{{y:.6g}}"
                    "<extra></extra>",
                }
            )
    for k in range(3):
        suffix = "" if k == 0 else str(k + 1)
        layout[f"xaxis{suffix}"].update(
            title={"text": "chunk"}, range=[-0.5, n_steps - 0.5], dtick=1 if n_steps <= 24 else None
        )
    layout["yaxis2"].update(type="log", dtick=1)  # decades only: no small minor labels
    layout["shapes"] = [_current_band(f"x{'' if k == 0 else k + 1}", step) for k in range(3)]
    layout["legend"] = {"orientation": "h", "y": -0.5, "x": 0, "yanchor": "top"}
    title = f"State after each chunk: m, {ELL} and {ALPHA} (blank: not finite, or still to come)"
    margin = {"t": 90, "b": 130}
    return figure(data, base_layout(layout, title=title, height=height, margin=margin))


def _not_finite_markers(key: str, steps: Sequence[RowStep], step: int, component: int) -> dict:
    """Crosses at the exact value where a variant's estimate is NaN or inf; the first labelled."""
    idx = [i for i in range(step + 1) if not np.isfinite(steps[i].estimate[component])]
    text = [str(steps[i].estimate[component]) for i in idx]
    return {
        "type": "scatter",
        "x": idx,
        "y": [steps[i].exact[component] for i in idx],
        "mode": "markers+text",
        "text": text[:1] + [""] * (len(idx) - 1),
        "customdata": text,
        "textposition": "bottom center",
        "textfont": {"size": 16, "color": variant_style(key)["color"]},
        "marker": {"symbol": "x-open", "size": 14, "color": variant_style(key)["color"]},
        "name": f"{variant_label(key)}: not finite",
        "legendgroup": key,
        "showlegend": False,
        "hovertemplate": f"{variant_label(key)}, chunk %{{x}}: estimate = %{{customdata}}"
        "<extra></extra>",
    }


def _error_trace(key: str, steps: Sequence[RowStep], step: int, ceiling: float) -> dict:
    err = _upto([s.error for s in steps], step)
    bad = np.array([not np.isfinite(s.error) for s in steps]) & (np.arange(len(steps)) <= step)
    y = np.where(bad, ceiling, np.maximum(err, ERROR_FLOOR))
    return {
        "type": "scatter",
        "xaxis": "x2",
        "yaxis": "y2",
        "x": np.arange(len(steps)),
        "y": y,
        "mode": "lines+markers",
        "marker": {"symbol": np.where(bad, "x", "circle").tolist(), "size": 9},
        "line": variant_style(key),
        "name": variant_label(key),
        "legendgroup": key,
        "showlegend": False,
        "customdata": [f"{s.error:.3g}" for s in steps],
        "hovertemplate": f"{variant_label(key)}, chunk %{{x}}: |error| = %{{customdata}}"
        "<extra></extra>",
    }


def estimate_figure(
    runs: Runs, step: int, *, component: int = 0, tol: float = TOL, height: int = 400
) -> go.Figure:
    """Running estimate vs exact (one component of o), and |error| with the first bites."""
    n_steps = check_runs(runs, step)
    d = next(iter(runs.values()))[0].exact.size
    if isinstance(component, bool) or not isinstance(component, int | np.integer):
        raise ValueError(f"component must be an integer in [0, {d - 1}], got {component!r}")
    if not 0 <= component < d:
        raise ValueError(f"component must be an integer in [0, {d - 1}], got {component}")
    some = next(iter(runs.values()))
    chunks = np.arange(n_steps)
    o = f"o<sub>i</sub>[{component}]"
    layout = row_layout(
        [f"running estimate {o} / {ELL}<sub>i</sub> vs exact", f"|estimate {MINUS} exact|"],
        widths=[0.55, 0.45],
        gap=0.09,
    )
    data: list[dict] = [
        {
            "type": "scatter",
            "x": chunks,
            "y": _upto([s.exact[component] for s in some], step),
            "mode": "lines+markers",
            "line": {"color": EXACT_COLOUR, "width": 8},
            "opacity": 0.35,
            "marker": {"size": 14},
            "name": "exact softmax(s) v over the keys so far",
            "hovertemplate": "exact, chunk %{x}: %{y:.6g}<extra></extra>",
        }
    ]
    finite_errors = [s.error for steps in runs.values() for s in steps[: step + 1]]
    finite_errors = [e for e in finite_errors if np.isfinite(e) and e > 0]
    ceiling = 10 * max([*finite_errors, 1.0])
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for key, steps in runs.items():
        data.append(
            {
                "type": "scatter",
                "x": chunks,
                "y": _upto([s.estimate[component] for s in steps], step),
                "mode": "lines+markers",
                "line": variant_style(key),
                "name": variant_label(key),
                "legendgroup": key,
                "hovertemplate": f"{variant_label(key)}, chunk %{{x}}: %{{y:.6g}}<extra></extra>",
            }
        )
        data.append(_not_finite_markers(key, steps, step, component))
        data.append(_error_trace(key, steps, step, ceiling))
        first = first_bad_chunk(list(steps), tol)
        if key != CORRECT and first is not None and first <= step:
            colour = variant_style(key)["color"]
            for axis in ("x", "x2"):
                shapes.append(
                    {
                        "type": "line",
                        "xref": axis,
                        "yref": "paper",
                        "x0": first,
                        "x1": first,
                        "y0": 0,
                        "y1": 1,
                        "line": {"color": colour, "width": 2, "dash": "dot"},
                    }
                )
            annotations.append(
                {
                    "text": f"{BUGS[key].title}: bites at chunk {first}",
                    "xref": "x2",
                    "yref": "paper",
                    "x": first,
                    "y": 0.97 - 0.08 * len(annotations),
                    "xanchor": "left" if first < n_steps / 2 else "right",
                    "showarrow": False,
                    "font": {"color": colour, "size": 16},
                    "bgcolor": "rgba(255, 255, 255, 0.7)",
                }
            )
    for axis in ("xaxis", "xaxis2"):
        layout[axis].update(
            title={"text": "chunk"}, range=[-0.5, n_steps - 0.5], dtick=1 if n_steps <= 24 else None
        )
    decades = np.log10(ceiling) - np.log10(ERROR_FLOOR) + 1
    layout["yaxis2"].update(
        type="log",
        dtick=max(1, int(np.ceil(decades / 6))),  # at most ~7 labels: 16 px ones fit
        exponentformat="power",
        title={"text": "|error|, log scale"},
        range=[np.log10(ERROR_FLOOR) - 0.5, np.log10(ceiling) + 0.5],
    )
    shapes.append(
        {
            "type": "line",
            "xref": "x2 domain",
            "yref": "y2",
            "x0": 0,
            "x1": 1,
            "y0": tol,
            "y1": tol,
            "line": {"color": "#888888", "dash": "dash", "width": 1},
        }
    )
    annotations.append(
        {
            "text": f"tolerance {tol:g}",
            "xref": "x2 domain",
            "yref": "y2",
            "x": 1,
            "y": np.log10(tol),
            "xanchor": "right",
            "yanchor": "bottom",
            "showarrow": False,
            "font": {"size": 16},
        }
    )
    shapes += [_current_band(axis, step) for axis in ("x", "x2")]
    layout["annotations"] += annotations
    layout["shapes"] = shapes
    layout["legend"] = {"orientation": "h", "y": -0.3, "x": 0, "yanchor": "top"}
    title = f"Estimate vs exact; |error| (0 drawn at {ERROR_FLOOR:g}, NaN / inf as x at the top)"
    margin = {"t": 90, "b": 130}
    return figure(data, base_layout(layout, title=title, height=height, margin=margin))
