"""flashviz.core.costs: FLOPs, on-chip bytes, HBM traffic, and the seed implementation's cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz import record_trace
from flashviz.core import costs


def test_flops_without_mask_are_4_n_squared_d():
    assert costs.attention_flops(128, 128, 64) == 4 * 128 * 128 * 64  # the seed's case
    assert costs.attention_flops(7, 13, 5) == 4 * 7 * 13 * 5
    assert costs.executed_flops(7, 13, 5, 4, 4) == 4 * 7 * 13 * 5


@pytest.mark.parametrize(
    ("n_q", "n_k", "align"),
    [(9, 9, "top_left"), (5, 12, "bottom_right"), (12, 5, "bottom_right"), (12, 5, "top_left")],
)
def test_causal_flops_count_visible_pairs_and_executed_tiles(rng, n_q, n_k, align):
    r, c = np.arange(n_q)[:, None], np.arange(n_k)[None, :]
    shift = n_k - n_q if align == "bottom_right" else 0
    assert costs.attention_flops(n_q, n_k, 3, True, align) == 4 * 3 * int((c <= r + shift).sum())
    q, k, v = (
        rng.standard_normal((n_q, 3)),
        rng.standard_normal((n_k, 3)),
        rng.standard_normal((n_k, 3)),
    )
    trace = record_trace(q, k, v, block_q=4, block_kv=3, causal=True, causal_align=align)
    executed = sum(4 * 3 * s.s.size for s in trace.tile_steps())
    assert costs.executed_flops(n_q, n_k, 3, 4, 3, True, align) == executed
    assert executed >= costs.attention_flops(n_q, n_k, 3, True, align)


@given(
    n_q=st.integers(1, 300),
    n_k=st.integers(1, 300),
    block_q=st.integers(1, 64),
    block_kv=st.integers(1, 64),
    causal=st.booleans(),
    align=st.sampled_from(["bottom_right", "top_left"]),
)
def test_tile_sums_are_the_sums_over_the_executed_tiles(n_q, n_k, block_q, block_kv, causal, align):
    tiles = costs.executed_tiles(n_q, n_k, block_q, block_kv, causal, align)
    assert costs.executed_tile_sums(n_q, n_k, block_q, block_kv, causal, align) == costs.TileSums(
        rows=sum(len(rows) for rows, _ in tiles),
        cols=sum(len(cols) for _, cols in tiles),
        entries=sum(len(rows) * len(cols) for rows, cols in tiles),
    )


def test_square_causal_flops_are_half_plus_diagonal():
    assert costs.attention_flops(100, 100, 8, causal=True) == 4 * 8 * 100 * 101 // 2


def test_sram_bytes():
    b = costs.sram_bytes(64, 32, 16)
    assert (b.q_i, b.k_j, b.v_j, b.s_ij, b.o_i, b.m_l) == (4096, 2048, 2048, 8192, 4096, 512)
    assert b.total == 4096 + 2048 + 2048 + 8192 + 4096 + 512
    assert costs.sram_bytes(64, 32, 16, itemsize=2).total == b.total // 2


def test_naive_hbm_counts_s_and_p_round_trips():
    n, d = 1024, 64
    t = costs.naive_hbm(n, n, d)
    assert t.reads == 4 * (3 * n * d + 2 * n * n)  # Q, K, V; S and P read back
    assert t.writes == 4 * (n * d + 2 * n * n)  # S, P, O
    assert t.total == t.reads + t.writes


@pytest.mark.parametrize("causal", [False, True])
def test_trace_steps_add_up_to_fa2_hbm(rng, causal):
    q, k, v = (
        rng.standard_normal((37, 8)),
        rng.standard_normal((50, 8)),
        rng.standard_normal((50, 8)),
    )
    trace = record_trace(q, k, v, block_q=8, block_kv=16, causal=causal)
    steps = [costs.step_hbm(s, 8) for s in trace.steps]
    total = costs.fa2_hbm(37, 50, 8, 8, 16, causal=causal)
    assert sum(s.reads for s in steps) == total.reads
    assert sum(s.writes for s in steps) == total.writes


def test_fa2_exact_counts_and_fa1_moves_more():
    n, d, b = 256, 32, 64
    fa2 = costs.fa2_hbm(n, n, d, b, b)
    assert fa2.reads == 4 * (n * d + (n // b) * 2 * n * d)
    assert fa2.writes == 4 * n * (d + 1)
    fa1 = costs.fa1_hbm(n, n, d, b, b)
    assert fa1.reads == 4 * (2 * n * d + (n // b) * n * (2 * d + 2))
    assert fa1.writes == 4 * (n * (d + 2) + (n // b) * n * (d + 2))
    assert fa1.total > fa2.total
    assert fa2.total < costs.naive_hbm(n, n, d).total


def test_theorem_2_orders():
    d, m = 64, 24 * 1024  # M = 96 KiB of float32
    b_r, b_c = costs.fa1_block_sizes(m, d)
    assert (b_r, b_c) == (64, 96)
    ratios = [
        costs.fa2_hbm(n, n, d, b_r, b_c).total / costs.io_order_flash(n, d, m)
        for n in (2048, 4096, 8192)
    ]
    assert max(ratios) / min(ratios) < 1.1  # FA2's traffic grows as N^2 d^2 / M
    naive = [
        costs.naive_hbm(n, n, d).total / costs.io_order_standard(n, d) for n in (2048, 4096, 8192)
    ]
    assert max(naive) / min(naive) < 1.1  # standard attention as N d + N^2
    assert costs.io_order_flash(4096, d, m) < costs.io_order_standard(4096, d)


def test_memory_saving_seed_cases():
    s2048 = costs.memory_savings(2048, 64)
    assert s2048.reduction_factor > 10
    assert costs.memory_savings(8192, 64).reduction_factor > s2048.reduction_factor
    assert s2048.naive_bytes == 2048 * 2048 * 4
    assert "reduction" in str(s2048)


def test_step_hbm_rejects_non_steps():
    with pytest.raises(TypeError, match="step must be"):
        costs.step_hbm(object(), 8)
