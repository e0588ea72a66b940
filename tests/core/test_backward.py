"""The backward pass: the float64 gradient against finite differences, FA2's tiled backward
against it under the tolerance rule, and the input checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flashviz import (
    attention_backward_reference,
    attention_reference,
    flash_attention,
    flash_attention_backward,
    naive_attention_backward,
    record_backward_trace,
)
from flashviz.core.backward import tiled_backward
from flashviz.core.checks import check_tiled_problem
from tests.core.backward_support import assert_gradients_match

ALIGNS = ("bottom_right", "top_left")


def _loss(q, k, v, do, **mask) -> float:
    """L = sum(o * do): its gradient with respect to o is do."""
    return float((attention_reference(q, k, v, **mask)[0] * do).sum())


def _finite_differences(q, k, v, do, h: float = 1e-6, **mask) -> list[np.ndarray]:
    """Central differences of L with respect to every entry of q, k and v."""
    grads = []
    for which in range(3):
        x = [q, k, v]
        g = np.zeros_like(x[which])
        for idx in np.ndindex(g.shape):
            plus, minus = x[which].copy(), x[which].copy()
            plus[idx] += h
            minus[idx] -= h
            xp, xm = list(x), list(x)
            xp[which], xm[which] = plus, minus
            g[idx] = (_loss(*xp, do, **mask) - _loss(*xm, do, **mask)) / (2 * h)
        grads.append(g)
    return grads


@pytest.mark.parametrize(
    ("n_q", "n_k", "causal", "align", "scale"),
    [
        (4, 6, False, "bottom_right", None),
        (5, 3, True, "bottom_right", None),  # rows 0 and 1 see no key
        (5, 3, True, "top_left", None),
        (3, 5, True, "bottom_right", 0.7),
        (3, 5, True, "top_left", -1.3),
        (1, 1, False, "bottom_right", None),
    ],
)
def test_reference_gradient_equals_finite_differences(rng, n_q, n_k, causal, align, scale):
    d = 3
    (
        q,
        k,
        v,
    ) = (rng.standard_normal((2, n, d)) for n in (n_q, n_k, n_k))
    do = rng.standard_normal((2, n_q, d))
    mask = dict(causal=causal, causal_align=align, scale=scale)
    got = attention_backward_reference(q, k, v, do, **mask)
    fd = _finite_differences(q, k, v, do, **mask)
    for name, g, f in zip(("dq", "dk", "dv"), got, fd, strict=True):
        # central differences with h = 1e-6: truncation ~h^2, rounding ~1e-16 / h
        np.testing.assert_allclose(g, f, atol=1e-8, rtol=1e-6, err_msg=name)


def test_rows_that_see_no_key_contribute_nothing(rng):
    q, k, v = (rng.standard_normal((n, 4)) for n in (6, 3, 3))
    do = rng.standard_normal((6, 4))
    mask = dict(causal=True, causal_align="bottom_right")  # rows 0-2 see no key
    dq, dk, dv = attention_backward_reference(q, k, v, do, **mask)
    assert (dq[:3] == 0).all()
    do2 = do.copy()
    do2[:3] = rng.standard_normal((3, 4)) * 100  # what reaches those rows changes nothing
    _, dk2, dv2 = attention_backward_reference(q, k, v, do2, **mask)
    np.testing.assert_array_equal(dk, dk2)
    np.testing.assert_array_equal(dv, dv2)
    o, lse = flash_attention(q, k, v, block_q=2, block_kv=2, **mask)
    fq, fk, fv = flash_attention_backward(q, k, v, o, lse, do2, block_q=2, block_kv=2, **mask)
    assert (fq[:3] == 0).all()
    np.testing.assert_allclose(fk, dk, atol=1e-12)
    np.testing.assert_allclose(fv, dv, atol=1e-12)


CASES = [
    # n_q, n_k, d, block_q, block_kv, lead
    (37, 23, 8, 5, 7, ()),
    (23, 37, 1, 4, 64, (2,)),  # a K/V block larger than n_k
    (64, 64, 64, 16, 32, (1, 2)),
    (50, 77, 96, 128, 9, ()),  # a Q block larger than n_q
    (1, 9, 8, 1, 4, (3,)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("causal_align", [None, *ALIGNS])
@pytest.mark.parametrize(("n_q", "n_k", "d", "block_q", "block_kv", "lead"), CASES)
def test_flash_backward_matches_the_reference(
    make_qkv, rng, dtype, causal_align, n_q, n_k, d, block_q, block_kv, lead
):
    q, k, v = make_qkv(n_q, n_k, d, lead=lead, dtype=dtype)
    do = rng.standard_normal(q.shape).astype(dtype)
    mask = dict(causal=causal_align is not None, causal_align=causal_align or "bottom_right")
    o, lse = flash_attention(q, k, v, block_q=block_q, block_kv=block_kv, **mask)
    grads = flash_attention_backward(
        q, k, v, o, lse, do, block_q=block_q, block_kv=block_kv, **mask
    )
    print(assert_gradients_match(grads, q, k, v, do, **mask))


@pytest.mark.parametrize("logits", [1e1, 1e2, 1e3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_logits_and_a_custom_scale(rng, dtype, logits):
    d, scale = 16, 0.3
    mag = np.sqrt(logits / scale / np.sqrt(d))  # |score| around ``logits``
    q, k = (rng.standard_normal((n, d)) * mag for n in (41, 29))
    v, do = rng.standard_normal((29, d)), rng.standard_normal((41, d))
    q, k, v, do = (x.astype(dtype) for x in (q, k, v, do))
    for causal in (False, True):
        mask = dict(causal=causal, scale=scale)
        o, lse = flash_attention(q, k, v, block_q=8, block_kv=8, **mask)
        grads = flash_attention_backward(q, k, v, o, lse, do, block_q=8, block_kv=8, **mask)
        print(logits, causal, assert_gradients_match(grads, q, k, v, do, **mask))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_key_where_ds_cancels_to_rounding(rng, dtype):
    """One key: P = 1, so dS = dP - D is rounding only, and dq with it; the tiled D_i and dP_ij
    are two different dot products (the naive's cancel exactly). Small q keeps the largest
    score, and the floor it gives, small: the rounding of the dot products must be allowed."""
    q, k = rng.standard_normal((60, 17)) * 0.01, rng.standard_normal((1, 17))
    v, do = rng.standard_normal((1, 17)), rng.standard_normal((60, 17))
    q, k, v, do = (x.astype(dtype) for x in (q, k, v, do))
    o, lse = flash_attention(q, k, v, block_q=2, block_kv=1, scale=1.0)
    grads = flash_attention_backward(q, k, v, o, lse, do, block_q=2, block_kv=1, scale=1.0)
    print(assert_gradients_match(grads, q, k, v, do, scale=1.0))


def test_naive_backward_computes_in_the_inputs_precision(make_qkv, rng):
    q, k, v = make_qkv(9, 7, 4, dtype=np.float32)
    do = rng.standard_normal(q.shape).astype(np.float32)
    grads = naive_attention_backward(q, k, v, do, causal=True)
    assert all(g.dtype == np.float32 for g in grads)
    ref = attention_backward_reference(q, k, v, do, causal=True)
    for g, r in zip(grads, ref, strict=True):
        np.testing.assert_allclose(g, r, atol=1e-5)


def test_the_rule_catches_a_wrong_logsumexp(make_qkv, rng):
    """P recomputed from an L off by 1e-3 scales every weight by exp(-1e-3): caught. (The
    public backward refuses such an L before it starts: the loops run here without it.)"""
    q, k, v = make_qkv(33, 21, 8, dtype=np.float32)
    do = rng.standard_normal(q.shape).astype(np.float32)
    o, lse = flash_attention(q, k, v, block_q=8, block_kv=8)
    prob = check_tiled_problem(
        q, k, v, block_q=8, block_kv=8, causal=False, causal_align="bottom_right", scale=None
    )
    grads = tiled_backward(prob, o, lse + np.float32(1e-3), do)
    with pytest.raises(AssertionError, match="error"):
        assert_gradients_match(grads, q, k, v, do)


def _inputs(rng, n_q=6, n_k=5, d=4, dtype=np.float64):
    q, do = rng.standard_normal((n_q, d)).astype(dtype), rng.standard_normal((n_q, d)).astype(dtype)
    k, v = (rng.standard_normal((n_k, d)).astype(dtype) for _ in range(2))
    o, lse = flash_attention(q, k, v, block_q=2, block_kv=2)
    return q, k, v, o, lse, do


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (dict(do=np.ones((6, 3))), ValueError, r"do must have shape \(6, 4\)"),
        (dict(do=np.ones((6, 4), np.float32)), TypeError, "do must have the dtype of q"),
        (dict(do=np.full((6, 4), np.nan)), ValueError, "do must be finite"),
        (dict(do=np.full((6, 4), 1e307)), ValueError, "gradients may overflow"),
        (dict(o=np.ones((5, 4))), ValueError, r"o must have shape \(6, 4\)"),
        (dict(o=np.full((6, 4), np.inf)), ValueError, "o must be finite"),
        (dict(lse=np.ones(5)), ValueError, r"lse must have shape \(6,\)"),
        (dict(lse=np.full(6, np.nan)), ValueError, "lse must be finite, or -inf"),
        (dict(lse=np.full(6, np.inf)), ValueError, "lse must be finite, or -inf"),
        (dict(do=np.ones((6, 4), dtype=np.int64)), TypeError, "do must be a float32 or float64"),
        (dict(causal="False"), ValueError, "causal must be True or False"),
        (dict(block_q=0), ValueError, "block_q must be a positive integer"),
        (dict(causal_align="middle"), ValueError, "causal_align must be one of"),
        (dict(scale=float("inf")), ValueError, "scale must be a finite real number"),
    ],
)
def test_bad_inputs_get_a_clear_message(rng, change, error, message):
    q, k, v, o, lse, do = _inputs(rng)
    args = dict(q=q, k=k, v=v, o=o, lse=lse, do=do, block_q=2, block_kv=2)
    args.update(change)
    with pytest.raises(error, match=message):
        flash_attention_backward(**args)


def test_the_reference_checks_do_too(rng):
    q, k, v, _, _, do = _inputs(rng)
    with pytest.raises(ValueError, match=r"do must have shape"):
        attention_backward_reference(q, k, v, do[:3])
    with pytest.raises(ValueError, match="causal must be True or False"):
        attention_backward_reference(q, k, v, do, causal="yes")
    with pytest.raises(ValueError, match="overflow"):
        attention_backward_reference(q * 1e200, k * 1e200, v, do)


BACKWARDS = {
    "flash_attention_backward": lambda q, k, v, o, lse, do, **kw: flash_attention_backward(
        q, k, v, o, lse, do, **kw
    ),
    "record_backward_trace": lambda q, k, v, o, lse, do, **kw: record_backward_trace(
        q, k, v, do, o=o, lse=lse, **kw
    ),
}


@pytest.mark.parametrize("backward", BACKWARDS)
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda o, lse: (o, lse - 100), "lse does not belong to q, k and v"),
        (lambda o, lse: (o, lse + 1e-3), "lse does not belong to q, k and v"),
        (lambda o, lse: (o * 1.01, lse), "o does not belong to q, k and v"),
        (lambda o, lse: (o[..., ::-1, :], lse[..., ::-1]), "does not belong to q, k and v"),
    ],
    ids=["lse-100", "lse+1e-3", "o*1.01", "rows reversed"],
)
def test_outputs_of_another_problem_are_refused_before_the_backward(
    make_qkv, rng, backward, edit, message
):
    """Saved o and lse are checked on a few rows recomputed from q, k, v: edited ones, or
    those of another problem, give a message, not NaN or silently wrong gradients."""
    lead = () if backward == "record_backward_trace" else (2,)  # the trace takes one head
    q, k, v = make_qkv(37, 23, 8, lead=lead, dtype=np.float32)
    do = rng.standard_normal(q.shape).astype(np.float32)
    mask = dict(causal=True, causal_align="top_left", block_q=8, block_kv=8)
    o, lse = flash_attention(q, k, v, **mask)
    BACKWARDS[backward](q, k, v, o, lse, do, **mask)  # its own outputs pass
    bad_o, bad_lse = edit(o, lse)
    with pytest.raises(ValueError, match=message):
        BACKWARDS[backward](q, k, v, np.ascontiguousarray(bad_o), bad_lse, do, **mask)
    other = dict(mask, causal_align="bottom_right")  # the same outputs, another mask
    with pytest.raises(ValueError, match="does not belong to q, k and v"):
        BACKWARDS[backward](q, k, v, o, lse, do, **other)


@settings(deadline=None)
@given(
    n_q=st.integers(1, 40), n_k=st.integers(1, 40), d=st.integers(1, 64),
    causal=st.booleans(), align=st.sampled_from(ALIGNS), logits=st.sampled_from([1.0, 30.0]),
    dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_the_forwards_own_outputs_always_pass_the_check(
    n_q, n_k, d, causal, align, logits, dtype, seed
):
    """No false alarm: whatever the sizes, mask and logit size, flash_attention's own o and
    lse are accepted (large logits, and scores that cancel, included)."""
    rng = np.random.default_rng(seed)
    q, k, v, do = (rng.standard_normal((n, d)) for n in (n_q, n_k, n_k, n_q))
    q, k = q * np.sqrt(logits), k * np.sqrt(logits)
    q, k, v, do = (x.astype(dtype) for x in (q, k, v, do))
    mask = dict(causal=causal, causal_align=align, block_q=7, block_kv=5)
    o, lse = flash_attention(q, k, v, **mask)
    flash_attention_backward(q, k, v, o, lse, do, **mask)
