"""Roofline expectations: the reasoning the GPU page prints next to the sweep."""

from __future__ import annotations

from flashviz.core import costs
from flashviz.perf.roofline import KNOWN_GPUS, expect, naive_out_of_memory_n

H100 = next(g for g in KNOWN_GPUS if "H100" in g.name)


def floats_of_io(n: int, d: int) -> int:
    return 4 * n * d + n  # q, k, v, o (n x d each) and lse (n)


def test_same_flops_naive_moves_n_squared_bytes_flash_linear_memory():
    """float32: naive streams S and P through HBM in 8 passes of n x n floats and holds two
    at its peak; flash moves what fa2_hbm counts and holds only the inputs and outputs."""
    for n in (4096, 8192):
        e = expect(n, 64, H100)
        assert e.flops == costs.attention_flops(n, n, 64) == 4 * n * n * 64
        assert e.naive_bytes == 4 * (floats_of_io(n, 64) + 8 * n * n)
        assert e.naive_peak_bytes == 4 * (floats_of_io(n, 64) + 2 * n * n)
        assert e.flash_bytes == costs.fa2_hbm(n, n, 64, 64, 64).total
        assert e.flash_peak_bytes == 4 * floats_of_io(n, 64)
    assert (
        expect(4096, 64, H100, batch_heads=8).naive_bytes == 8 * expect(4096, 64, H100).naive_bytes
    )


def test_times_are_roofline_lower_bounds():
    e = expect(8192, 64, H100)
    compute_ms = 1e3 * e.flops / (H100.fp32_tflops * 1e12)
    naive_memory_ms = 1e3 * e.naive_bytes / (H100.bandwidth_gbs * 1e9)
    flash_memory_ms = 1e3 * e.flash_bytes / (H100.bandwidth_gbs * 1e9)
    assert naive_memory_ms > compute_ms > flash_memory_ms
    assert e.naive_ms == naive_memory_ms  # memory-bound naive ...
    assert e.flash_ms == compute_ms  # ... compute-bound flash


def test_naive_runs_out_of_memory_where_two_n_by_n_matrices_no_longer_fit():
    n = naive_out_of_memory_n(64, H100)
    assert n == 131072  # 2 x 131072^2 float32 = 128 GiB > 80 GiB; at 65536, 32 GiB fit
    assert expect(n, 64, H100).naive_peak_bytes > H100.memory_gib * 2**30
    assert expect(n // 2, 64, H100).naive_peak_bytes <= H100.memory_gib * 2**30
    assert expect(n, 64, H100).flash_peak_bytes < 2**30  # flash needs well under 1 GiB there
