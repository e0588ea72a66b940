"""Roofline expectations: the reasoning the GPU page prints next to the sweep."""

from __future__ import annotations

import pytest

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


def test_tensor_core_peaks_per_gpu_and_none_where_the_kernel_cannot_run():
    peaks = {g.name.split()[1]: g.tc_tflops for g in KNOWN_GPUS}
    assert peaks == {"T4": None, "A100": 312.0, "H100": 989.5, "H200": 989.5}
    t4 = next(g for g in KNOWN_GPUS if "T4" in g.name)
    assert expect(4096, 64, t4).tc_flash_ms is None  # sm_75: no mma.sync.m16n8k16


def test_tensor_core_kernel_is_bound_by_the_tensor_core_peak_and_its_compulsory_traffic():
    """Q, K, V read once in 16 bits, O and lse written in float32; FLOPs at the tc peak."""
    for n, bound in ((256, "memory"), (8192, "compute")):
        e = expect(n, 64, H100)
        assert e.tc_flash_bytes == e.tc_flash_peak_bytes == 2 * 3 * n * 64 + 4 * (n * 64 + n)
        compute_ms = 1e3 * e.flops / (H100.tc_tflops * 1e12)
        memory_ms = 1e3 * e.tc_flash_bytes / (H100.bandwidth_gbs * 1e9)
        assert e.tc_flash_ms == {"memory": memory_ms, "compute": compute_ms}[bound]
        assert e.tc_flash_ms == max(compute_ms, memory_ms)
    big = expect(8192, 64, H100)
    ratio = H100.tc_tflops / H100.fp32_tflops  # both compute-bound at n = 8192
    assert big.flash_ms / big.tc_flash_ms == pytest.approx(ratio, rel=1e-12)
    assert expect(8192, 64, H100, batch_heads=8).tc_flash_bytes == 8 * big.tc_flash_bytes
