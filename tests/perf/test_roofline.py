"""Roofline expectations: the reasoning the GPU page prints next to the sweep."""

from __future__ import annotations

from flashviz.core import costs
from flashviz.perf.roofline import KNOWN_GPUS, expect, naive_out_of_memory_n

H100 = next(g for g in KNOWN_GPUS if "H100" in g.name)


def test_same_flops_naive_moves_n_squared_bytes_flash_linear_memory():
    small, large = expect(4096, 64, H100), expect(8192, 64, H100)
    assert small.flops == costs.attention_flops(4096, 4096, 64)
    assert large.naive_bytes / small.naive_bytes > 3.9  # ~n^2
    assert large.flash_peak_bytes / small.flash_peak_bytes < 2.01  # linear in n
    assert small.flash_bytes == costs.fa2_hbm(4096, 4096, 64, 64, 64).total


def test_times_are_roofline_lower_bounds():
    e = expect(8192, 64, H100)
    compute_ms = 1e3 * e.flops / (H100.fp32_tflops * 1e12)
    assert e.flash_ms >= compute_ms and e.naive_ms >= compute_ms
    assert e.naive_ms == max(compute_ms, 1e3 * e.naive_bytes / (H100.bandwidth_gbs * 1e9))
    assert e.naive_ms > e.flash_ms  # memory-bound naive vs compute-bound flash


def test_naive_runs_out_of_memory_where_two_n_by_n_matrices_no_longer_fit():
    n = naive_out_of_memory_n(64, H100)
    assert expect(n, 64, H100).naive_peak_bytes > H100.memory_gib * 2**30
    assert expect(n // 2, 64, H100).naive_peak_bytes <= H100.memory_gib * 2**30
    assert expect(n, 64, H100).flash_peak_bytes < 2**30  # flash needs well under 1 GiB there
