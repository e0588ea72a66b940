"""record_backward_trace: the backward's steps, their order and invariants, and the
properties of the tiled backward on any problem (hypothesis)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz import (
    BwdLoadStep,
    BwdTileStep,
    BwdWriteStep,
    attention_backward_reference,
    flash_attention,
    flash_attention_backward,
    record_backward_trace,
)
from flashviz.core.backward import softmax_ds
from flashviz.core.masking import block_range
from tests.core.backward_support import assert_gradients_match
from tests.support import assert_equal_to_rounding


def _problem(rng, n_q, n_k, d, dtype=np.float64):
    q, do = (rng.standard_normal((n_q, d)).astype(dtype) for _ in range(2))
    k, v = (rng.standard_normal((n_k, d)).astype(dtype) for _ in range(2))
    return q, k, v, do


@pytest.mark.parametrize(
    ("n_q", "n_k", "bq", "bkv", "causal", "align"),
    [
        (37, 23, 5, 7, False, "bottom_right"),
        (37, 23, 5, 7, True, "bottom_right"),  # rows 0-13 see no key
        (37, 23, 5, 7, True, "top_left"),
        (20, 45, 8, 6, True, "bottom_right"),
        (20, 45, 8, 6, True, "top_left"),
        (9, 9, 16, 16, True, "bottom_right"),  # one tile, larger than the problem
    ],
)
def test_steps_order_and_invariants(rng, n_q, n_k, bq, bkv, causal, align):
    q, k, v, do = _problem(rng, n_q, n_k, 8)
    mask = dict(causal=causal, causal_align=align)
    trace = record_backward_trace(q, k, v, do, block_q=bq, block_kv=bkv, **mask)
    dq_ref, dk_ref, dv_ref = attention_backward_reference(q, k, v, do, **mask)
    kinds = trace.tile_kinds()
    expected = [(i, j) for j in range(kinds.shape[1]) for i in range(kinds.shape[0])]
    expected = [(i, j) for i, j in expected if kinds[i, j] != "skipped"]  # K/V blocks outside
    assert [(s.i, s.j) for s in trace.tile_steps()] == expected  # no step for a hidden tile
    assert trace.steps[0].kind == "delta"
    p, dp, _ = softmax_ds(q, k, v, do, scale=trace.scale, offset=trace.offset, dtype=np.float64)
    # D_i = rowsum(dO_i * O_i) is rowsum(dP_i * P_i), which the backward never forms whole
    np.testing.assert_allclose(trace.delta, (dp * p).sum(axis=-1), atol=1e-12)
    adds = np.zeros(kinds.shape[0], dtype=int)
    j = dk_j = dv_j = None
    for step in trace.steps[1:]:
        if isinstance(step, BwdLoadStep):
            j = step.j
            assert step.cols == block_range(j, bkv, n_k)
            dk_j, dv_j = np.zeros_like(step.k_j), np.zeros_like(step.v_j)
        elif isinstance(step, BwdTileStep):
            assert step.j == j and step.tile_kind == kinds[step.i, step.j]
            assert step.s.shape == step.p.shape == step.ds.shape == (len(step.rows), len(step.cols))
            adds[step.i] += 1
            assert step.dq_adds == adds[step.i]
            r, c = slice(step.rows.start, step.rows.stop), slice(step.cols.start, step.cols.stop)
            # each tile starts from the previous tile's dK_j, dV_j (0 after the load), exactly
            np.testing.assert_array_equal(step.dk_prev, dk_j)
            np.testing.assert_array_equal(step.dv_prev, dv_j)
            # and adds scale dS^T Q_i and P^T dO_i; computed again here, a BLAS may sum the
            # block_q products in another order: block_q roundings of the terms, one for the
            # scale (dK only), one for the addition
            q_i, do_i, n = trace.q[r], trace.do[r], len(step.rows)
            assert_equal_to_rounding(
                step.dk,
                step.dk_prev + (step.ds.T @ q_i) * trace.scale,
                roundings=n + 2,
                scale=np.abs(step.dk_prev) + abs(trace.scale) * (np.abs(step.ds).T @ np.abs(q_i)),
            )
            assert_equal_to_rounding(
                step.dv,
                step.dv_prev + step.p.T @ do_i,
                roundings=n + 1,
                scale=np.abs(step.dv_prev) + step.p.T @ np.abs(do_i),
            )
            dk_j, dv_j = step.dk, step.dv
            # P is recomputed from L: the tile's entries of the whole softmax
            np.testing.assert_allclose(step.p, p[r, c], atol=1e-12)
        else:
            assert isinstance(step, BwdWriteStep) and step.j == j
            # after the inner loop of block j: dK_j and dV_j are the reference's rows
            c = slice(step.cols.start, step.cols.stop)
            np.testing.assert_allclose(step.dk, dk_ref[c], atol=1e-12)
            np.testing.assert_allclose(step.dv, dv_ref[c], atol=1e-12)
    np.testing.assert_array_equal(adds, (kinds != "skipped").sum(axis=1))
    np.testing.assert_allclose(trace.dq, dq_ref, atol=1e-12)  # at the end dQ is the reference's
    empty = np.isneginf(trace.lse)
    assert (trace.dq[empty] == 0).all()
    if causal and align == "bottom_right" and n_q > n_k:
        assert empty.sum() == n_q - n_k


def test_the_trace_is_the_tiled_backward(rng):
    q, k, v, do = _problem(rng, 30, 19, 6, np.float32)
    mask = dict(block_q=7, block_kv=4, causal=True, causal_align="top_left")
    o, lse = flash_attention(q, k, v, **mask)
    trace = record_backward_trace(q, k, v, do, **mask)
    np.testing.assert_array_equal(trace.o, o)
    grads = flash_attention_backward(q, k, v, o, lse, do, **mask)
    for got, want in zip((trace.dq, trace.dk, trace.dv), grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        assert got.dtype == np.float32


def test_saved_outputs_must_come_in_pairs(rng):
    q, k, v, do = _problem(rng, 4, 4, 2)
    o, _ = flash_attention(q, k, v, block_q=2, block_kv=2)
    with pytest.raises(ValueError, match="pass both o and lse"):
        record_backward_trace(q, k, v, do, block_q=2, block_kv=2, o=o)
    with pytest.raises(ValueError, match=r"q must have shape \(n, d\)"):
        record_backward_trace(q[None], k[None], v[None], do[None], block_q=2, block_kv=2)


def test_n512_d64_blocks_of_64_trace_well_under_a_second(rng):
    q, k, v, do = _problem(rng, 512, 512, 64)
    start = time.process_time()  # CPU time: a parallel test worker's load does not count
    trace = record_backward_trace(q, k, v, do, block_q=64, block_kv=64, causal=True)
    elapsed = time.process_time() - start
    print(f"{len(trace.steps)} steps in {elapsed:.3f} s")
    assert elapsed < 1.0
    biggest = max(
        a.size for s in trace.steps for a in vars(s).values() if isinstance(a, np.ndarray)
    )
    assert biggest <= 64 * 64  # tile-sized arrays only


@st.composite
def problems(draw):
    n_q, n_k = draw(st.integers(1, 60)), draw(st.integers(1, 60))
    d = draw(st.sampled_from([1, 3, 8, 17]))
    logits = 10.0 ** draw(st.floats(-2, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.one_of(st.none(), st.floats(-2, 2).filter(lambda s: abs(s) > 1e-3)))
    eff_scale = 1 / np.sqrt(d) if scale is None else abs(scale)
    mag = np.sqrt(logits / eff_scale / np.sqrt(d))
    q, k = (rng.standard_normal((n, d)) * mag for n in (n_q, n_k))
    v, do = rng.standard_normal((n_k, d)), rng.standard_normal((n_q, d))
    return dict(
        arrays=tuple(x.astype(dtype) for x in (q, k, v, do)),
        mask=dict(
            scale=scale,
            causal=draw(st.booleans()),
            causal_align=draw(st.sampled_from(["bottom_right", "top_left"])),
        ),
        blocks=dict(block_q=draw(st.integers(1, 40)), block_kv=draw(st.integers(1, 40))),
    )


@given(problems())
def test_tiled_backward_matches_the_reference_on_any_problem(p):
    q, k, v, do = p["arrays"]
    o, lse = flash_attention(q, k, v, **p["blocks"], **p["mask"])
    grads = flash_attention_backward(q, k, v, o, lse, do, **p["blocks"], **p["mask"])
    assert_gradients_match(grads, q, k, v, do, **p["mask"])


@given(problems())
def test_the_trace_equals_the_tiled_backward_on_any_problem(p):
    q, k, v, do = p["arrays"]
    trace = record_backward_trace(q, k, v, do, **p["blocks"], **p["mask"])
    o, lse = flash_attention(q, k, v, **p["blocks"], **p["mask"])
    grads = flash_attention_backward(q, k, v, o, lse, do, **p["blocks"], **p["mask"])
    for got, want in zip((trace.dq, trace.dk, trace.dv), grads, strict=True):
        tol = 8 * np.finfo(q.dtype).eps * max(1.0, float(np.abs(want).max(initial=0.0)))
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)
