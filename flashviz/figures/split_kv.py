"""Figures of split-KV decoding: pure functions of the lesson's data returning ``go.Figure``.

``sm_figure``: the thread blocks of FA2 and of split-KV on the GPU's SMs over time (waves);
``lanes_figure``: each split's running max and sum, tile by tile, side by side;
``merge_figure``: the combine step for one row, split by split; ``utilisation_figure``:
busy SMs / all SMs against the number of splits, FA2 for comparison.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from flashviz.figures.grid import figure, panel_axes, row_layout
from flashviz.figures.style import (
    BLUE,
    CURRENT,
    DONE,
    ELL,
    GREEN,
    INK,
    MINUS,
    ORANGE,
    PURPLE,
    SKY_BLUE,
    VERMILLION,
    base_layout,
)
from flashviz.lab.split_kv import MergeStep, Slot, SplitKvRun, UtilisationCurve

WAVE_COLOURS = (BLUE, ORANGE, GREEN, VERMILLION, SKY_BLUE, PURPLE)  # Okabe-Ito, by wave
MAX_LEGEND = 10  # splits named in a legend; more lanes are drawn without one
LEGEND = {"orientation": "h", "y": -0.32, "x": 0}  # below the x axis title
BOTTOM = {"b": 110}  # room for the legend
SYMBOLS = ("circle", "square", "diamond", "triangle-up")  # lanes: after the colours, symbols


def _bars(slots: Sequence[Slot], splits: int, axes: tuple[str, str]) -> dict:
    """One horizontal bar per thread block that computed something, coloured by wave."""
    ran = [s for s in slots if s.stop > s.start]
    x_name, y_name = axes
    return {
        "type": "bar",
        "orientation": "h",
        "base": [s.start for s in ran],
        "x": [s.stop - s.start for s in ran],
        "y": [s.sm for s in ran],
        "marker": {
            "color": [WAVE_COLOURS[s.wave % len(WAVE_COLOURS)] for s in ran],
            "line": {"color": "white", "width": 1},
        },
        "customdata": [[s.block // splits, s.block % splits, s.wave] for s in ran],
        "hovertemplate": (
            "head %{customdata[0]}, block %{customdata[1]}<br>SM %{y}, wave %{customdata[2]}"
            "<br>tiles %{base} to %{x}<extra></extra>"
        ),
        "showlegend": False,
        "xaxis": x_name,
        "yaxis": y_name,
    }


def sm_figure(
    fa2: Sequence[Slot],
    split_kv: Sequence[Slot],
    *,
    sms: int,
    gpu: str,
    num_splits: int,
    height: int = 460,
) -> go.Figure:
    """FA2's and split-KV's thread blocks on ``sms`` SMs, time in K/V tiles (one bar per
    thread block, colour = its wave on its SM)."""

    def summary(slots: Sequence[Slot]) -> tuple[int, int, float]:
        end = max((s.stop for s in slots), default=0)
        waves = 1 + max((s.wave for s in slots if s.stop > s.start), default=0)
        busy = sum(s.stop - s.start for s in slots) / (sms * end) if end else 0.0
        return end, waves, busy

    (fa2_end, _, fa2_busy), (kv_end, kv_waves, kv_busy) = summary(fa2), summary(split_kv)
    titles = [
        f"FA2: {len(fa2)} thread blocks, {fa2_busy:.0%} busy",
        f"split-KV, {num_splits} splits: {len(split_kv)} blocks, {kv_waves} wave(s), "
        f"{kv_busy:.0%} busy",
    ]
    layout = row_layout(titles, gap=0.06, share_y=True)
    end = max(fa2_end, kv_end, 1)
    for k in range(2):
        x_name, y_name = panel_axes(k)
        layout[f"xaxis{x_name[1:]}"].update(title={"text": "time (K/V tiles)"}, range=[0, end])
        layout[f"yaxis{y_name[1:]}"].update(range=[sms - 0.5, -0.5])
    layout["yaxis"]["title"] = {"text": f"SM (of {sms})"}
    layout["bargap"] = 0.1
    data = [_bars(fa2, 1, panel_axes(0)), _bars(split_kv, num_splits, panel_axes(1))]
    title = f"Thread blocks on the {sms} SMs of the {gpu} (colour: wave)"
    return figure(data, base_layout(layout, title=title, height=height))


def lanes_figure(run: SplitKvRun, row: int, done: int, height: int = 400) -> go.Figure:
    """Each split's running max m and sum l for query ``row`` after its first ``done`` tiles
    (0: before any), all splits side by side (in parallel): lane s is split s's online
    softmax."""
    longest = max(run.work, default=0)
    data = []
    for p in run.partials:
        shown = min(done, len(p.m_steps))
        if not shown:
            continue
        tiles = np.arange(1, shown + 1)
        for k, values in enumerate((p.m_steps[:shown, row], p.l_steps[:shown, row])):
            x_name, y_name = panel_axes(k)
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "x": tiles,
                    "y": np.where(np.isfinite(values), values, np.nan),
                    "name": f"split {p.s}",
                    "legendgroup": f"split {p.s}",
                    "showlegend": k == 0 and len(run.partials) <= MAX_LEGEND,
                    "marker": {
                        "color": WAVE_COLOURS[p.s % len(WAVE_COLOURS)],
                        "symbol": SYMBOLS[p.s // len(WAVE_COLOURS) % len(SYMBOLS)],
                        "size": 8,
                    },
                    "line": {"color": WAVE_COLOURS[p.s % len(WAVE_COLOURS)]},
                    "hovertemplate": f"split {p.s}, tile %{{x}}: %{{y:.4g}}<extra></extra>",
                    "xaxis": x_name,
                    "yaxis": y_name,
                }
            )
    layout = row_layout([f"running max m (row {row})", f"running sum {ELL} (row {row})"])
    for k in range(2):
        x_name, _ = panel_axes(k)
        layout[f"xaxis{x_name[1:]}"].update(
            title={"text": "tile of the split"}, range=[0.5, max(longest, 1) + 0.5]
        )
        if longest <= 20:  # whole tiles only
            layout[f"xaxis{x_name[1:]}"]["dtick"] = 1
    layout["legend"] = LEGEND
    after = f"after tile {min(done, longest)}" if done else "before the first tile"
    title = f"Each split's online softmax, in parallel: {after}"
    return figure(data, base_layout(layout, title=title, height=height, margin=BOTTOM))


def merge_figure(
    steps: Sequence[MergeStep], weights: np.ndarray, upto: int, height: int = 400
) -> go.Figure:
    """The combine step of one row: each split's lse_s (bars) and the merged lse after
    merging splits 0 .. s (line, up to step ``upto``); right, each split's weight
    exp(lse_s - lse) in the final output. The split merged at step ``upto`` is highlighted."""
    s = np.array([st.s for st in steps])
    lse_s = np.array([st.lse_s for st in steps])
    merged = np.array([st.lse for st in steps[: upto + 1]])
    colours = [CURRENT if k == upto else (DONE if k < upto else SKY_BLUE) for k in s]
    data = [
        {
            "type": "bar",
            "x": s,
            "y": np.where(np.isfinite(lse_s), lse_s, np.nan),
            "name": "lse_s of split s",
            "marker": {"color": colours},
            "hovertemplate": "split %{x}: lse_s = %{y:.5g}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": s[: upto + 1],
            "y": np.where(np.isfinite(merged), merged, np.nan),
            "name": "lse of splits 0..s merged",
            "line": {"color": VERMILLION},
            "marker": {"size": 8},
            "hovertemplate": "after split %{x}: lse = %{y:.5g}<extra></extra>",
        },
        {
            "type": "bar",
            "x": s,
            "y": weights,
            "name": f"weight exp(lse_s {MINUS} lse)",
            "marker": {"color": colours},
            "hovertemplate": "split %{x}: weight %{y:.4f}<extra></extra>",
            "xaxis": "x2",
            "yaxis": "y2",
        },
    ]
    layout = row_layout(["lse_s, and the merged lse", "weight of split s in o"])
    for k in range(2):
        x_name, _ = panel_axes(k)
        layout[f"xaxis{x_name[1:]}"]["title"] = {"text": "split s"}
        if len(s) <= 16:  # every split named
            layout[f"xaxis{x_name[1:]}"]["dtick"] = 1
    shown = np.concatenate([lse_s, merged])
    shown = shown[np.isfinite(shown)]
    if shown.size:  # bars from just below the smallest lse_s, so their differences show
        low, top = float(shown.min()), float(shown.max())
        pad = 0.1 * (top - low) + 0.5
        layout["yaxis"]["range"] = [low - pad, top + pad]
    layout["yaxis2"]["range"] = [0, 1]
    layout["legend"] = LEGEND
    title = f"The merge, split by split: step {upto} merges split {steps[upto].s}"
    return figure(data, base_layout(layout, title=title, height=height, margin=BOTTOM))


def utilisation_figure(
    curve: UtilisationCurve, num_splits: int, gpu: str, height: int = 400
) -> go.Figure:
    """Busy SMs / all SMs: split-KV against its number of splits (the curve starts at 1 and
    reaches ``num_splits``), FA2 as a dashed line, the chosen number of splits marked."""
    chosen = float(curve.split_kv[num_splits - 1])
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": curve.splits,
            "y": curve.split_kv,
            "name": "split-KV",
            "line": {"color": BLUE, "width": 3},
            "hovertemplate": "%{x} splits: %{y:.0%}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "x": [curve.splits[0], curve.splits[-1]],
            "y": [curve.fa2, curve.fa2],
            "name": "FA2 (query blocks only)",
            "line": {"color": INK, "width": 3, "dash": "dash"},
            "hovertemplate": "FA2: %{y:.0%}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "x": [num_splits],
            "y": [chosen],
            "name": f"{num_splits} splits (chosen)",
            "marker": {"color": VERMILLION, "size": 14, "symbol": "diamond"},
            "hovertemplate": "%{x} splits: %{y:.0%}<extra></extra>",
        },
    ]
    layout = {
        "xaxis": {"title": {"text": "number of splits"}},
        "yaxis": {"title": {"text": "SM utilisation"}, "range": [0, 1.05], "tickformat": ".0%"},
        "legend": LEGEND,
    }
    title = f"SM utilisation on the {gpu}: FA2 vs split-KV"
    return figure(data, base_layout(layout, title=title, height=height, margin=BOTTOM))
