"""flashviz.core.costs, the backward pass: FLOPs and HBM bytes, cross-checked by brute force
(explicit masks, the sum of per-step costs over a recorded backward trace) and by hand."""

from __future__ import annotations

import numpy as np
import pytest

from flashviz import record_backward_trace, record_trace
from flashviz.core import costs
from flashviz.core.backward_trace import BwdStep
from flashviz.core.trace import LoadStep

# (n_q, n_k, block_q, block_kv): uneven sizes, partial last blocks, n_q != n_k both ways
SHAPES = [(37, 50, 8, 16), (50, 37, 16, 8), (13, 7, 4, 3), (7, 13, 5, 4), (9, 9, 4, 4)]
MASKS = [(False, "bottom_right"), (True, "bottom_right"), (True, "top_left")]


def visible_pairs(n_q: int, n_k: int, causal: bool, align: str) -> int:
    """Brute force: (r, c) one pair at a time, with the rule in words (REFERENCE.md section 2):
    bottom-right, row r sees key c iff c <= r + (n_k - n_q); top-left iff c <= r."""
    if not causal:
        return n_q * n_k
    shift = n_k - n_q if align == "bottom_right" else 0
    return sum(1 for r in range(n_q) for c in range(n_k) if c <= r + shift)


def trace_for(rng, n_q, n_k, d, block_q, block_kv, causal, align):
    q, do = rng.standard_normal((n_q, d)), rng.standard_normal((n_q, d))
    k, v = rng.standard_normal((n_k, d)), rng.standard_normal((n_k, d))
    return record_backward_trace(
        q, k, v, do, block_q=block_q, block_kv=block_kv, causal=causal, causal_align=align
    )


@pytest.mark.parametrize(("causal", "align"), MASKS)
@pytest.mark.parametrize(("n_q", "n_k", "block_q", "block_kv"), SHAPES)
def test_useful_flops_count_the_visible_pairs(rng, n_q, n_k, block_q, block_kv, causal, align):
    d = 3
    pairs = visible_pairs(n_q, n_k, causal, align)
    assert costs.backward_flops(n_q, n_k, d, causal, align) == 8 * d * pairs
    # the recorded tiles agree: a visible entry of a recomputed S is finite, a masked one -inf
    trace = trace_for(rng, n_q, n_k, d, block_q, block_kv, causal, align)
    assert sum(int(np.isfinite(t.s).sum()) for t in trace.tile_steps()) == pairs


@pytest.mark.parametrize(("causal", "align"), MASKS)
@pytest.mark.parametrize(("n_q", "n_k", "block_q", "block_kv"), SHAPES)
def test_per_step_costs_add_up_to_the_totals(rng, n_q, n_k, block_q, block_kv, causal, align):
    d = 5
    trace = trace_for(rng, n_q, n_k, d, block_q, block_kv, causal, align)
    steps = [costs.backward_step_hbm(s, n_q, d) for s in trace.steps]
    total = costs.fa2_backward_hbm(n_q, n_k, d, block_q, block_kv, causal, align)
    assert sum(s.reads for s in steps) == total.reads
    assert sum(s.writes for s in steps) == total.writes
    executed = sum(costs.backward_step_flops(s, d) for s in trace.steps)
    assert executed == costs.backward_executed_flops(n_q, n_k, d, block_q, block_kv, causal, align)
    entries = sum(t.s.size for t in trace.tile_steps())
    assert costs.recompute_flops(n_q, n_k, d, block_q, block_kv, causal, align) == 2 * d * entries
    assert executed == 10 * d * entries
    assert executed - costs.recompute_flops(n_q, n_k, d, block_q, block_kv, causal, align) >= (
        costs.backward_flops(n_q, n_k, d, causal, align)
    )  # whole tiles: masked entries of a partial tile are computed too


@pytest.mark.parametrize(("causal", "align"), MASKS)
def test_one_by_one_tiles_execute_exactly_the_useful_flops(causal, align):
    """With 1 x 1 tiles no masked entry is computed: executed = useful + recomputation."""
    n_q, n_k, d = 6, 11, 4
    executed = costs.backward_executed_flops(n_q, n_k, d, 1, 1, causal, align)
    recompute = costs.recompute_flops(n_q, n_k, d, 1, 1, causal, align)
    pairs = visible_pairs(n_q, n_k, causal, align)
    assert recompute == 2 * d * pairs
    assert executed - recompute == costs.backward_flops(n_q, n_k, d, causal, align)


def test_hand_computed_flops():
    assert costs.backward_flops(3, 5, 2) == 8 * 2 * 15 == 240
    # 4 x 4 causal, d = 1: rows see 1, 2, 3, 4 keys
    assert costs.backward_flops(4, 4, 1, causal=True) == 8 * 10
    # 2 queries x 5 keys: bottom-right rows 11110 / 11111 (9 pairs), top-left 10000 / 11000
    assert costs.backward_flops(2, 5, 1, True, "bottom_right") == 8 * 9
    assert costs.backward_flops(2, 5, 1, True, "top_left") == 8 * 3
    # 5 queries x 2 keys, bottom-right: the top three rows see nothing, then 1 and 2 keys
    assert costs.backward_flops(5, 2, 1, True, "bottom_right") == 8 * 3
    # unmasked, whole tiles: executed = 10 d n_q n_k, the paper's 2.5x the forward
    assert costs.backward_executed_flops(6, 10, 4, 4, 4) == 10 * 4 * 60
    assert costs.backward_executed_flops(6, 10, 4, 4, 4) == 2.5 * costs.executed_flops(
        6, 10, 4, 4, 4
    )
    assert costs.recompute_flops(6, 10, 4, 4, 4) == 2 * 4 * 60
    # 4 x 4 causal, blocks of 2: tiles (0,0), (1,0), (1,1) run, (0,1) is skipped
    assert costs.backward_executed_flops(4, 4, 1, 2, 2, causal=True) == 10 * 3 * 4


def test_standard_backward_hbm_follows_fa1_algorithm_3():
    n_q, n_k, d = 3, 5, 2
    nn, qd, kd = n_q * n_k, n_q * d, n_k * d
    lines = [  # (elements read, elements written), one per line of FA1 Algorithm 3
        (nn + qd, kd),  # read P, dO; write dV = P^T dO
        (qd + kd, nn),  # read dO, V; write dP = dO V^T
        (nn + nn, nn),  # read P, dP; write dS
        (nn + kd, qd),  # read dS, K; write dQ = dS K
        (nn + qd, kd),  # read dS, Q; write dK = dS^T Q
    ]
    t = costs.naive_backward_hbm(n_q, n_k, d)
    assert (t.reads, t.writes) == (4 * sum(r for r, _ in lines), 4 * sum(w for _, w in lines))
    assert (t.reads, t.writes) == (4 * (5 * 15 + 3 * 6 + 2 * 10), 4 * (2 * 15 + 6 + 2 * 10))
    assert costs.naive_backward_hbm(n_q, n_k, d, itemsize=2).total == t.total // 2


def test_fa2_backward_hbm_by_hand_without_mask():
    n, d, b = 256, 32, 64  # 4 x 4 tiles of 64 rows
    t = costs.fa2_backward_hbm(n, n, d, b, b)
    tiles = (n // b) ** 2
    # reads: O and dO for D; K and V once; per tile Q_i, dO_i, dQ_i (d each) and L_i, D_i
    assert t.reads == 4 * (2 * n * d + 2 * n * d + tiles * b * (3 * d + 2))
    # writes: D and dQ = 0 once; dK and dV once; per tile dQ_i after its addition
    assert t.writes == 4 * (n + n * d + 2 * n * d + tiles * b * d)
    assert t.total < costs.naive_backward_hbm(n, n, d).total


def test_each_step_kind_by_hand(rng):
    """n_q = 5, n_k = 2, bottom-right: row 3 sees key 0, row 4 keys 0 and 1, rows 0-2 none.
    Query blocks of 2 rows, K/V blocks of 1 key: tiles (1, 0), (2, 0), (2, 1) run; no tile
    visits query block 0, whose dQ rows are the zeros written before the loops."""
    d = 3
    trace = trace_for(rng, 5, 2, d, 2, 1, True, "bottom_right")
    kinds = [s.kind for s in trace.steps]
    assert kinds == ["delta", "load_kv", "tile", "tile", "write_kv",
                     "load_kv", "tile", "write_kv"]  # fmt: skip
    assert [(t.i, t.j) for t in trace.tile_steps()] == [(1, 0), (2, 0), (2, 1)]
    assert (trace.dq[:2] == 0).all()  # rows no tile visits: only the initial zeros
    hbm = [costs.backward_step_hbm(s, 5, d) for s in trace.steps]
    assert (hbm[0].reads, hbm[0].writes) == (4 * 2 * 5 * d, 4 * 5 * (d + 1))  # O, dO; D, dQ
    assert (hbm[1].reads, hbm[1].writes) == (4 * 2 * 1 * d, 0)  # K_0, V_0
    assert (hbm[2].reads, hbm[2].writes) == (4 * 2 * (3 * d + 2), 4 * 2 * d)  # Q_1, dO_1, ...
    assert (hbm[4].reads, hbm[4].writes) == (0, 4 * 2 * 1 * d)  # dK_0, dV_0
    assert trace.steps[-1].kind == "write_kv" and hbm[-1] == hbm[4]
    flops = [costs.backward_step_flops(s, d) for s in trace.steps]
    assert flops == [0, 0, 10 * d * 2, 10 * d, 0, 0, 10 * d, 0]  # query block 2: row 4 only


def test_a_key_block_the_mask_hides_is_still_loaded_and_written(rng):
    """Top-left, 3 queries x 8 keys, blocks of 4 keys: keys 4-7 are seen by no row. Their
    block visits no tile but its dK_j = dV_j = 0 are written, as the totals count."""
    d = 2
    trace = trace_for(rng, 3, 8, d, 2, 4, True, "top_left")
    assert [s.kind for s in trace.steps if s.j == 1] == ["load_kv", "write_kv"]
    assert (trace.dk[4:] == 0).all() and (trace.dv[4:] == 0).all()
    total = costs.fa2_backward_hbm(3, 8, d, 2, 4, True, "top_left")
    tiles = trace.tile_steps()
    assert total.reads == 4 * (
        2 * 3 * d + 2 * 8 * d + sum(len(t.rows) for t in tiles) * (3 * d + 2)
    )


def test_backward_step_hbm_refuses_a_forward_step(rng):
    forward = record_trace(*(rng.standard_normal((4, 2)) for _ in range(3)), block_q=2, block_kv=2)
    assert isinstance(forward.steps[0], LoadStep)
    with pytest.raises(TypeError, match="step must be a step of a backward trace, got LoadStep"):
        costs.backward_step_hbm(forward.steps[0], 4, 2)
    with pytest.raises(TypeError, match="got BwdStep"):
        costs.backward_step_hbm(BwdStep("unknown", 0, range(0)), 4, 2)


def test_memory_saved_is_the_bytes_of_p():
    assert costs.backward_memory_saved(3, 5) == np.empty((3, 5), np.float32).nbytes == 60
    assert costs.backward_memory_saved(4096, 4096, itemsize=2) == 2 * 4096 * 4096
