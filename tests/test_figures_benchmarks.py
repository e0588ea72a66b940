"""Benchmark charts: one line per method in each panel, out-of-memory runs marked."""

from __future__ import annotations

from flashviz.bench import CpuResult
from flashviz.figures.benchmarks import cpu_benchmark_figure, gpu_benchmark_figure
from flashviz.gpu import BenchRow, out_of_memory_row


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
        out_of_memory_row(BenchRow("naive (CuPy)", 2048, 64, 1, False, "not run")),
    ]
    fig = gpu_benchmark_figure(rows)
    flash = [t for t in fig.data if t.name == "flash (CUDA kernel)"]
    naive = [t for t in fig.data if t.name == "naive (CuPy)"]
    assert len(flash) == len(naive) == 3  # time, memory, TFLOP/s
    assert list(flash[1].y) == [1.0, 2.0]  # MiB
    assert list(naive[0].x) == [1024]  # no point where it ran out of memory
    (oom,) = [t for t in fig.data if "out of memory" in t.name]
    assert list(oom.x) == [2048] and list(oom.text) == ["out of memory"]
