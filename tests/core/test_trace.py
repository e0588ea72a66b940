"""record_trace: the same algorithm as flash_attention, with checkable invariants."""

from __future__ import annotations

import numpy as np
import pytest

from flashviz import LoadStep, TileStep, WriteStep, flash_attention, record_trace
from flashviz.core.masking import mask_offset, visible
from tests.support import assert_same_attention

CASES = [  # n_q, n_k, block_q, block_kv, causal, align
    (29, 43, 8, 12, False, "bottom_right"),
    (29, 43, 8, 12, True, "bottom_right"),
    (43, 29, 12, 8, True, "bottom_right"),
    (43, 29, 5, 7, True, "top_left"),
    (16, 16, 4, 4, True, "top_left"),
]


@pytest.fixture(params=CASES, ids=lambda c: "-".join(map(str, c)))
def traced(request, make_qkv):
    n_q, n_k, bq, bkv, causal, align = request.param
    q, k, v = make_qkv(n_q, n_k, 6, magnitude=2.0)
    trace = record_trace(q, k, v, block_q=bq, block_kv=bkv, causal=causal, causal_align=align)
    return trace


def test_final_output_equals_flash_attention(traced):
    mask = dict(causal=traced.causal, causal_align=traced.causal_align)
    problem = (traced.q, traced.k, traced.v)
    o, lse = flash_attention(*problem, block_q=traced.block_q, block_kv=traced.block_kv, **mask)
    # the same tiles and steps; flash_attention's matmuls are a stack of one head, which a
    # BLAS may sum in another order than the trace's single ones: equal to rounding
    bound = dict(block_kv=traced.block_kv, scale=traced.scale, **mask)
    assert_same_attention((traced.o, traced.lse), (o, lse), *problem, **bound)


def test_step_order_per_query_block(traced):
    kinds = [(s.kind, s.i) for s in traced.steps]
    n_i, _ = traced.grid
    pos = 0
    for i in range(n_i):
        assert kinds[pos] == ("load_q", i)
        pos += 1
        js = []
        while kinds[pos][0] == "tile":
            assert kinds[pos][1] == i
            js.append(traced.steps[pos].j)
            pos += 1
        assert js == list(range(len(js)))
        assert kinds[pos] == ("write", i)
        pos += 1
    assert pos == len(kinds)


def test_running_output_is_softmax_over_columns_seen_so_far(traced):
    for step in traced.tile_steps():
        o_ref = _masked_prefix(traced, step.rows, range(0, step.cols.stop))
        has_key = step.l > 0
        np.testing.assert_allclose(
            step.o[has_key] / step.l[has_key, None], o_ref[has_key], rtol=0, atol=1e-12
        )
        assert (step.o[~has_key] == 0).all()


def _masked_prefix(trace, rows, seen):
    """Softmax attention over key columns [0, seen.stop) with the trace's mask, in float64."""
    mask = visible(rows, seen, trace.offset)
    q_i, k, v = trace.q[rows.start : rows.stop], trace.k[: seen.stop], trace.v[: seen.stop]
    s = trace.scale * q_i @ k.T
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    m = s.max(axis=1, keepdims=True)
    p = np.exp(s - np.where(np.isneginf(m), 0, m))
    l = p.sum(axis=1, keepdims=True)
    return (p @ v) / np.where(l == 0, 1, l)


def test_state_invariants(traced):
    for step in traced.tile_steps():
        assert (step.m >= step.m_prev).all()  # m never decreases
        assert ((step.alpha >= 0) & (step.alpha <= 1)).all()
        zero = step.alpha == 0
        np.testing.assert_array_equal(zero, np.isneginf(step.m_prev))
        np.testing.assert_array_equal(step.l > 0, np.isfinite(step.m))  # l > 0 once a key seen
        np.testing.assert_allclose(
            step.alpha, np.exp(step.m_prev - np.where(np.isneginf(step.m), 0, step.m)), rtol=1e-15
        )
        assert not np.isnan(step.s).any() and not np.isnan(step.p).any()
        np.testing.assert_allclose(step.o_rescaled + step.pv, step.o, rtol=0, atol=1e-12)
        assert step.s.shape == step.p.shape == (len(step.rows), len(step.cols))
        assert step.o.shape == step.o_prev.shape == (len(step.rows), traced.d)


def test_tiles_executed_are_exactly_those_with_a_visible_entry(traced):
    offset = mask_offset(traced.n_q, traced.n_k, traced.causal, traced.causal_align)
    r = np.arange(traced.n_q)[:, None]
    c = np.arange(traced.n_k)[None, :]
    allowed = np.ones((traced.n_q, traced.n_k), bool) if offset is None else c <= r + offset
    n_i, n_j = traced.grid
    expected = {
        (i, j)
        for i in range(n_i)
        for j in range(n_j)
        if allowed[
            i * traced.block_q : (i + 1) * traced.block_q,
            j * traced.block_kv : (j + 1) * traced.block_kv,
        ].any()
    }
    executed = {(s.i, s.j) for s in traced.tile_steps()}
    assert executed == expected
    kinds = traced.tile_kinds()
    assert all(kinds[i, j] != "skipped" for i, j in executed)
    assert all(
        kinds[i, j] == "skipped" for i in range(n_i) for j in range(n_j) if (i, j) not in executed
    )


def test_state_chains_between_steps(traced):
    prev = None
    for step in traced.steps:
        if isinstance(step, LoadStep):
            assert np.isneginf(step.m).all() and (step.l == 0).all() and (step.o == 0).all()
        elif isinstance(step, TileStep):
            np.testing.assert_array_equal(step.m_prev, prev.m)
            np.testing.assert_array_equal(step.l_prev, prev.l)
            np.testing.assert_array_equal(step.o_prev, prev.o)
        elif isinstance(step, WriteStep):
            np.testing.assert_array_equal(step.o_unnormalized, prev.o)
            np.testing.assert_array_equal(step.o, traced.o[step.rows.start : step.rows.stop])
        prev = step


def test_memory_is_steps_times_tile_size(make_qkv):
    q, k, v = make_qkv(200, 300, 8)
    trace = record_trace(q, k, v, block_q=16, block_kv=32)
    per_step_bound = 8 * (2 * 16 * 32 + 4 * 16 * 8 + 8 * 16)  # s, p; q_i, o's; m, l, alpha
    total = sum(
        x.nbytes for s in trace.steps for x in vars(s).values() if isinstance(x, np.ndarray)
    )
    assert total <= len(trace.steps) * per_step_bound
    assert all(
        max(x.shape, default=0) <= max(16, 32, 8)
        for s in trace.steps
        for x in vars(s).values()
        if isinstance(x, np.ndarray)
    )


def test_rescale_happens_when_the_max_jumps(make_qkv):
    q, k, v = make_qkv(4, 8, 2)
    m_first = (q[0] @ k[:4].T).max() / np.sqrt(2)  # row 0's max over the first tile
    # a late key whose score for row 0 is exactly 10 above it: alpha = exp(-10) for certain
    k[6] = q[0] * (m_first + 10) * np.sqrt(2) / (q[0] @ q[0])
    trace = record_trace(q, k, v, block_q=4, block_kv=4)
    second = trace.tile_steps()[1]
    assert second.max_changed[0] and second.alpha[0] < 1e-2


def test_record_trace_needs_one_head(make_qkv):
    q, k, v = make_qkv(4, 4, 2, lead=(2,))
    with pytest.raises(ValueError, match=r"q must have shape \(n, d\)"):
        record_trace(q, k, v, block_q=2, block_kv=2)
