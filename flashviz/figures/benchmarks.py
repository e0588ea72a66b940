"""Benchmark charts: time, peak memory and throughput against n, one line per method.

``cpu_benchmark_figure`` takes ``CpuResult`` rows (``flashviz.perf.cpu_bench``);
``gpu_benchmark_figure`` takes ``BenchRow`` rows (``flashviz.gpu.sweep``), where a method
that ran out of memory at some n shows an "out of memory" marker at that n instead of a
point (the lesson of naive attention); ``roofline_figure`` draws ``flashviz.perf.roofline``'s
expectation the same way. All log-log. The records are ``flashviz.core.measurement``'s.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from flashviz.core.measurement import (
    OK,
    OUT_OF_MEMORY,
    WRONG,
    BenchRow,
    CpuResult,
    Expectation,
    GpuSpec,
)
from flashviz.figures.style import (
    BLUE,
    CHANGED,
    CURRENT,
    DONE,
    INK,
    PURPLE,
    SKY_BLUE,
    base_layout,
    log_ticks,
)

METHOD_COLOURS = (DONE, CURRENT, BLUE, PURPLE, SKY_BLUE)
DASHES = ("solid", "dash", "dot")
LIMIT_DASHES = ("dot", "dash", "dashdot")  # device memory, fp32 peak, tensor-core peak
MIB = 2**20
TC_LINE = "flash, tensor cores (float16/bfloat16)"  # the roofline's tensor-core kernel


def _line(x: Sequence[int], y: Sequence[float], name: str, colour: str, col: int) -> go.Scatter:
    """One method's line in panel ``col``; the legend lists each method once."""
    return go.Scatter(x=x, y=y, name=name, legendgroup=name, showlegend=col == 1,
                      mode="lines+markers", line={"color": colour})  # fmt: skip


def _n_ticks(*xs: Sequence[int]) -> dict:
    """At most 4 of the measured sequence lengths as x labels, written 512, 2k, 16k."""
    ns = sorted({int(n) for x in xs for n in x})
    if not ns:
        return {}
    shown = ns[:: -(-len(ns) // 4)]
    text = [str(n) if n < 1024 or n % 1024 else f"{n // 1024}k" for n in shown]
    return {"tickvals": shown, "ticktext": text}


def _axes(fig: go.Figure, titles: Sequence[str]) -> None:
    """Log-log panels, each with at most ~6 tick labels of the figure's font size (Plotly's
    own log ticks add small, faint labels between decades)."""
    for col, title in enumerate(titles, start=1):
        mine = [t for t in fig.data if t.xaxis == ("x" if col == 1 else f"x{col}")]
        xs, ys = [t.x for t in mine if t.x is not None], [t.y for t in mine if t.y is not None]
        fig.update_xaxes(type="log", title_text="n", **_n_ticks(*xs),
                         row=1, col=col)  # fmt: skip
        fig.update_yaxes(type="log", title_text=title, **log_ticks(*ys), row=1, col=col)


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


def _marker(x: list[int], y: list[float], name: str, text: list[str], col: int) -> go.Scatter:
    """Where a method has no number (out of memory, wrong, error): a cross, labelled."""
    return go.Scatter(x=x, y=y, name=name, legendgroup=name, showlegend=col == 1,
                      mode="markers+text", text=text, textposition="top center",
                      marker={"symbol": "x", "size": 14, "color": CHANGED})  # fmt: skip


def _measured(row: BenchRow) -> tuple[float, float, float]:
    """Time (ms), peak memory (MiB) and TFLOP/s of a row whose status is "ok"."""
    if row.time_ms is None or row.peak_bytes is None or row.tflops is None:
        raise ValueError(f"an {OK!r} row holds its time, peak memory and TFLOP/s, got {row}")
    return row.time_ms, row.peak_bytes / MIB, row.tflops


def _tc_flash_ms(e: Expectation) -> float:
    """The tensor-core kernel's time bound of an expectation for a GPU with that peak."""
    if e.tc_flash_ms is None:
        raise ValueError(f"the expectation at n = {e.n} has no tensor-core time bound")
    return e.tc_flash_ms


def short_status(status: str) -> str:
    return status if status in (OUT_OF_MEMORY, WRONG) else "error"


def gpu_benchmark_figure(rows: Sequence[BenchRow]) -> go.Figure:
    """Time (ms), peak device memory (MiB) and TFLOP/s of each GPU method vs n, log-log.

    One colour per method (square markers once the colours repeat: the scalar and
    tensor-core kernels, naive and three SDPA backends make seven), and one dash per head
    dim when there are several; where a method has no number (out of memory first of all)
    a labelled cross sits at that n in every panel, at the height of the method's last
    measured point.
    """
    fig = make_subplots(rows=1, cols=3, subplot_titles=("time", "peak memory", "throughput"))
    ds = sorted({r.d for r in rows})
    methods = list(dict.fromkeys(r.method for r in rows))
    for i, method in enumerate(methods):
        colour = METHOD_COLOURS[i % len(METHOD_COLOURS)]
        for dash, d in zip(DASHES, ds, strict=False):
            mine = [r for r in rows if r.method == method and r.d == d]
            name = method if len(ds) == 1 else f"{method}, d = {d}"
            ok = [r for r in mine if r.status == OK]
            measured = [_measured(r) for r in ok]  # (ms, MiB, TFLOP/s) of each
            fields = tuple([m[c] for m in measured] for c in range(3))
            failed = [r for r in mine if r.status != OK]
            for col, ys in enumerate(fields, start=1):
                line = _line([r.n for r in ok], ys, name, colour, col)
                line.line.dash = dash
                if i >= len(METHOD_COLOURS):
                    line.marker.symbol = "square"
                fig.add_trace(line, row=1, col=col)
                if failed:
                    height = ys[-1] if ys else 1.0
                    text = [short_status(r.status) for r in failed]
                    marker = _marker([r.n for r in failed], [height] * len(failed),
                                     f"{name}: {text[0]}", text, col)  # fmt: skip
                    fig.add_trace(marker, row=1, col=col)
    _axes(fig, ("milliseconds", "MiB", "TFLOP/s"))
    fig.update_layout(base_layout({}, title="GPU: flash kernel vs naive attention", height=460))
    return fig


def roofline_figure(expectations: Sequence[Expectation], gpu: GpuSpec) -> go.Figure:
    """The roofline expectation of naive and flash attention vs n, as the GPU sweep shows it:
    lower bounds on time, peak memory, and the TFLOP/s those bounds allow. Where the GPU
    has a tensor-core peak, the tensor-core kernel's line (bounded by that peak) and the
    peak itself are drawn too."""
    titles = ("time (lower bound)", "peak memory", "throughput (upper bound)")
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles)
    ns = [e.n for e in expectations]
    series = {
        "naive (memory-bound)": ([e.naive_ms for e in expectations],
                                 [e.naive_peak_bytes / MIB for e in expectations]),
        "flash (compute-bound)": ([e.flash_ms for e in expectations],
                                  [e.flash_peak_bytes / MIB for e in expectations]),
    }  # fmt: skip
    if gpu.tc_tflops is not None:
        series[TC_LINE] = ([_tc_flash_ms(e) for e in expectations],
                           [e.tc_flash_peak_bytes / MIB for e in expectations])  # fmt: skip
    for colour, (name, (times, peaks)) in zip(METHOD_COLOURS, series.items(), strict=False):
        rates = [e.flops / (ms * 1e-3) / 1e12 for e, ms in zip(expectations, times, strict=True)]
        for col, ys in ((1, times), (2, peaks), (3, rates)):
            fig.add_trace(_line(ns, ys, name, colour, col), row=1, col=col)
    limits: tuple[tuple[int, float, str], ...] = (
        (2, gpu.memory_gib * 2**30 / MIB, f"device memory ({gpu.memory_gib:.0f} GiB)"),
        (3, gpu.fp32_tflops, f"fp32 peak ({gpu.fp32_tflops:g} TFLOP/s)"),
    )
    if gpu.tc_tflops is not None:
        limits += ((3, gpu.tc_tflops, f"tensor-core peak ({gpu.tc_tflops:g} TFLOP/s)"),)
    for (col, y, label), dash in zip(limits, LIMIT_DASHES, strict=False):
        # a line of its own dash each (its legend swatch tells it apart), as a trace:
        # shapes misplace on log axes
        line = go.Scatter(x=[ns[0], ns[-1]], y=[y, y], name=label, mode="lines",
                          line={"dash": dash, "color": INK, "width": 2})  # fmt: skip
        fig.add_trace(line, row=1, col=col)
    _axes(fig, ("milliseconds", "MiB", "TFLOP/s"))
    fig.update_layout(base_layout({}, title=f"Expected on the {gpu.name} (roofline)", height=460))
    return fig
