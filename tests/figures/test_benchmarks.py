"""Benchmark charts: one line per method in each panel, out-of-memory runs marked."""

from __future__ import annotations

import pytest

from flashviz.core.measurement import OUT_OF_MEMORY, BenchRow, CpuResult
from flashviz.figures.benchmarks import (
    cpu_benchmark_figure,
    gpu_benchmark_figure,
    roofline_figure,
)
from flashviz.figures.style import tick_label
from flashviz.perf.roofline import KNOWN_GPUS, expect


def test_cpu_figure_plots_time_and_memory_of_both_methods():
    results = [
        CpuResult(n, 64, n * 1e-6, n * 2e-6, n * n * 4, n * 512, 1e-7, 1e-7)
        for n in (256, 512, 1024)
    ]
    fig = cpu_benchmark_figure(results)
    names = [t.name for t in fig.data]
    assert names == [
        "naive (NumPy)",
        "naive (NumPy)",
        "flash (NumPy, tiled)",
        "flash (NumPy, tiled)",
    ]
    naive_time, naive_mem, flash_time, _ = fig.data
    assert list(naive_time.x) == [256, 512, 1024]
    assert list(flash_time.y) == [r.flash_s * 1e3 for r in results]
    assert list(naive_mem.y) == [r.naive_peak / 2**20 for r in results]
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis2.type == "log"


def test_gpu_figure_marks_out_of_memory_instead_of_a_point():
    rows = [
        BenchRow("flash (CUDA kernel)", n, 64, 1, False, "ok", n / 1e3, n * 2**10, 5.0, 1e-7)
        for n in (1024, 2048)
    ]
    rows += [
        BenchRow("naive (CuPy)", 1024, 64, 1, False, "ok", 3.0, 2**24, 1.0, 1e-7),
        BenchRow("naive (CuPy)", 2048, 64, 1, False, OUT_OF_MEMORY),
    ]
    fig = gpu_benchmark_figure(rows)
    flash = [t for t in fig.data if t.name == "flash (CUDA kernel)"]
    naive = [t for t in fig.data if t.name == "naive (CuPy)"]
    assert len(flash) == len(naive) == 3  # time, memory, TFLOP/s
    assert list(flash[1].y) == [1.0, 2.0]  # MiB
    assert list(naive[0].x) == [1024]  # no point where it ran out of memory
    marks = [t for t in fig.data if "out of memory" in t.name]
    assert len(marks) == 3  # in every panel, at the height of naive's last point
    assert [list(t.x) for t in marks] == [[2048]] * 3 and list(marks[0].text) == [OUT_OF_MEMORY]
    assert [t.y[0] for t in marks] == [3.0, 16.0, 1.0]
    assert fig.layout.xaxis.type == fig.layout.yaxis3.type == "log"


def test_gpu_figure_with_two_head_dims_has_a_line_per_method_and_d():
    rows = [
        BenchRow(m, n, d, 8, False, "ok", 1.0, 2**20, 1.0, 1e-7)
        for m in ("flash (CUDA kernel)", "naive (CuPy)") for d in (64, 128) for n in (512, 1024)
    ]  # fmt: skip
    rows.append(BenchRow("naive (CuPy)", 2048, 128, 8, False, "error: RuntimeError: cuBLAS"))
    fig = gpu_benchmark_figure(rows)
    names = list(dict.fromkeys(t.name for t in fig.data))
    assert names == ["flash (CUDA kernel), d = 64", "flash (CUDA kernel), d = 128",
                     "naive (CuPy), d = 64", "naive (CuPy), d = 128",
                     "naive (CuPy), d = 128: error"]  # fmt: skip
    dashes = {t.name: t.line.dash for t in fig.data if t.mode == "lines+markers"}
    assert dashes["naive (CuPy), d = 64"] == "solid" and dashes["naive (CuPy), d = 128"] == "dash"


def test_roofline_figure_shows_both_methods_and_the_gpus_limits():
    h100 = next(g for g in KNOWN_GPUS if "H100" in g.name)
    expectations = [expect(n, 64, h100) for n in (1024, 4096, 16384)]
    fig = roofline_figure(expectations, h100)
    names = [t.name for t in fig.data]
    tc = "flash, tensor cores (float16/bfloat16)"
    assert names[:9] == ["naive (memory-bound)"] * 3 + ["flash (compute-bound)"] * 3 + [tc] * 3
    naive_time, _, naive_rate, _, flash_mem, flash_rate, tc_time, _, tc_rate = fig.data[:9]
    memory, peak, tc_peak = fig.data[9:]
    assert list(naive_time.y) == [e.naive_ms for e in expectations]
    assert list(flash_mem.y) == [e.flash_peak_bytes / 2**20 for e in expectations]
    assert list(tc_time.y) == [e.tc_flash_ms for e in expectations]
    assert max(naive_rate.y) <= h100.fp32_tflops + 1e-9
    assert max(flash_rate.y) <= h100.fp32_tflops + 1e-9 < min(tc_rate.y)
    assert max(tc_rate.y) == pytest.approx(h100.tc_tflops, rel=1e-9)  # compute-bound at 16k
    assert (memory.name, list(memory.y)) == ("device memory (80 GiB)", [80 * 2**10] * 2)
    assert (peak.name, list(peak.y)) == ("fp32 peak (67 TFLOP/s)", [67.0] * 2)
    assert (tc_peak.name, list(tc_peak.y)) == ("tensor-core peak (989.5 TFLOP/s)", [989.5] * 2)
    assert (memory.xaxis, peak.xaxis, tc_peak.xaxis) == ("x2", "x3", "x3")
    assert "H100" in fig.layout.title.text


def test_roofline_figure_has_no_tensor_core_line_where_the_kernel_cannot_run():
    t4 = next(g for g in KNOWN_GPUS if "T4" in g.name)
    fig = roofline_figure([expect(n, 64, t4) for n in (1024, 4096)], t4)
    assert not any("tensor" in t.name for t in fig.data)
    assert len(fig.data) == 8  # naive and flash in three panels, memory and fp32 peak


def test_benchmark_axes_label_at_most_four_measured_ns_and_few_log_ticks():
    """16 px labels fit a third of the page: x labels are measured n (512, 2k, 8k), y axes
    set their own log ticks (Plotly's default adds small labels between decades)."""
    h100 = next(g for g in KNOWN_GPUS if "H100" in g.name)
    ns = (512, 1024, 2048, 4096, 8192, 16384)
    expectations = [expect(n, 64, h100) for n in ns]
    fig = roofline_figure(expectations, h100)
    for axis in (fig.layout.xaxis, fig.layout.xaxis2, fig.layout.xaxis3):
        assert list(axis.tickvals) == [512, 2048, 8192]
        assert list(axis.ticktext) == ["512", "2k", "8k"]
    # time: 1e-3 .. 2.6 ms, a label every decade (4); memory: 0.5 MiB .. 80 GiB, every
    # second decade (1, 100, 1e4 MiB); throughput within one decade: 3 labels from naive's
    # lowest rate (n = 512) to the tensor-core peak
    assert (fig.layout.yaxis.dtick, fig.layout.yaxis.tickvals) == (1, None)
    assert (fig.layout.yaxis2.dtick, fig.layout.yaxis2.tickvals) == (2, None)
    low = expectations[0].flops / expectations[0].naive_ms / 1e9  # TFLOP/s
    assert fig.layout.yaxis3.dtick is None
    assert list(fig.layout.yaxis3.tickvals) == pytest.approx([low, (low * 989.5) ** 0.5, 989.5])
    assert fig.layout.yaxis3.ticktext[-1] == "990"  # written out, not Plotly's "9.9e+2"


@pytest.mark.parametrize(
    ("value", "label"),
    [(989.5, "990"), (1234.5, "1234"), (1.53, "1.5"), (0.01234, "0.012"), (3.2e-7, "3.2e-7"),
     (2e5, "2.0e5"), (0.0, "0")],
)  # fmt: skip
def test_tick_labels_are_written_as_a_person_writes_them(value, label):
    assert tick_label(value) == label


def test_gpu_figure_tells_seven_methods_apart():
    """Scalar and tensor-core kernels, naive and three SDPA backends: the colours repeat
    after five, the markers do not."""
    methods = ["flash (CUDA kernel)", "naive (CuPy)", "flash (tensor cores, float16)",
               "flash (tensor cores, bfloat16)", "PyTorch SDPA (MATH)",
               "PyTorch SDPA (EFFICIENT)", "PyTorch SDPA (FLASH)"]  # fmt: skip
    rows = [BenchRow(m, n, 64, 8, False, "ok", 1.0, 2**20, 1.0, 1e-7)
            for m in methods for n in (512, 1024)]  # fmt: skip
    fig = gpu_benchmark_figure(rows)
    looks = {(t.line.color, t.marker.symbol) for t in fig.data if t.xaxis == "x"}
    assert len(looks) == len(methods)


def test_the_roofline_reference_lines_each_have_their_own_swatch() -> None:
    spec = next(g for g in KNOWN_GPUS if g.tc_tflops is not None)
    fig = roofline_figure([expect(n, 64, spec) for n in (512, 1024, 2048)], spec)
    limits = [t for t in fig.data if t.name.startswith(("device memory", "fp32 peak", "tensor"))]
    assert len(limits) == 3
    assert len({(t.line.dash, t.line.color) for t in limits}) == 3  # told apart in the legend
