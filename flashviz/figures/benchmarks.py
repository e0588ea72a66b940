"""Benchmark charts: time and peak memory against n, one line per method (log-log).

``cpu_benchmark_figure`` takes ``flashviz.bench.CpuResult`` rows; ``gpu_benchmark_figure``
takes ``flashviz.gpu.BenchRow`` rows, where a method that ran out of memory at some n shows
an "out of memory" marker at that n instead of a point (the lesson of naive attention).
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from flashviz.bench import CpuResult
from flashviz.figures.style import BLUE, CHANGED, CURRENT, DONE, PURPLE, base_layout

METHOD_COLOURS = (DONE, CURRENT, BLUE, PURPLE)
MIB = 2**20


def _line(x: Sequence[int], y: Sequence[float], name: str, colour: str, col: int) -> go.Scatter:
    """One method's line in panel ``col``; the legend lists each method once."""
    return go.Scatter(x=x, y=y, name=name, legendgroup=name, showlegend=col == 1,
                      mode="lines+markers", line={"color": colour})  # fmt: skip


def _axes(fig: go.Figure, titles: Sequence[str]) -> None:
    for col, title in enumerate(titles, start=1):
        fig.update_xaxes(type="log", title_text="n (sequence length)", row=1, col=col)
        fig.update_yaxes(type="log", title_text=title, row=1, col=col)


def cpu_benchmark_figure(results: Sequence[CpuResult]) -> go.Figure:
    """Median time (ms) and peak memory (MiB) of naive and tiled NumPy attention vs n."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("time", "peak memory"))
    ns = [r.n for r in results]
    series = {
        "naive (NumPy)": (
            [r.naive_s * 1e3 for r in results],
            [r.naive_peak / MIB for r in results],
        ),
        "flash (NumPy, tiled)": (
            [r.flash_s * 1e3 for r in results],
            [r.flash_peak / MIB for r in results],
        ),
    }
    for colour, (name, (times, peaks)) in zip(METHOD_COLOURS, series.items(), strict=False):
        for col, ys in ((1, times), (2, peaks)):
            fig.add_trace(_line(ns, ys, name, colour, col), row=1, col=col)
    _axes(fig, ("milliseconds", "MiB"))
    fig.update_layout(base_layout({}, title="CPU: naive vs tiled attention", height=420))
    return fig


def gpu_benchmark_figure(rows: Sequence[object]) -> go.Figure:
    """Time (ms), peak device memory (MiB) and TFLOP/s of each GPU method vs n."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("time", "peak memory", "throughput"))
    methods = list(dict.fromkeys(r.method for r in rows))
    for colour, method in zip(METHOD_COLOURS, methods, strict=False):
        mine = [r for r in rows if r.method == method]
        ok = [r for r in mine if r.status == "ok"]
        fields = ([r.time_ms for r in ok], [r.peak_bytes / MIB for r in ok], [r.tflops for r in ok])
        for col, ys in enumerate(fields, start=1):
            fig.add_trace(_line([r.n for r in ok], ys, method, colour, col), row=1, col=col)
        failed = [r for r in mine if r.status != "ok"]
        if failed:
            fig.add_trace(
                go.Scatter(
                    x=[r.n for r in failed],
                    y=[ok[-1].time_ms if ok else 1.0] * len(failed),
                    name=f"{method}: {failed[0].status}",
                    mode="markers+text",
                    marker={"symbol": "x", "size": 14, "color": CHANGED},
                    text=["out of memory" if "memory" in r.status else r.status for r in failed],
                    textposition="top center",
                    legendgroup=method,
                ),
                row=1,
                col=1,
            )
    _axes(fig, ("milliseconds", "MiB", "TFLOP/s"))
    fig.update_layout(base_layout({}, title="GPU: flash kernel vs naive attention", height=420))
    return fig
