"""attention_reference against an independent per-row oracle, and the mask conventions."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from flashviz import attention_reference
from flashviz.core.masking import causal_offset, tile_kind, visible, visible_counts
from flashviz.core.reference import softmax_rows, softmax_weights


def per_row_oracle(q, k, v, scale, allowed):
    """Row by row with np.logaddexp.reduce: shares no code with the reference."""
    n_q, d = q.shape
    o = np.zeros((n_q, d))
    lse = np.full(n_q, -np.inf)
    for r in range(n_q):
        cols = np.flatnonzero(allowed[r])
        if cols.size == 0:
            continue
        s = np.array([scale * float(np.dot(q[r], k[c])) for c in cols])
        lse[r] = np.logaddexp.reduce(s)
        o[r] = (np.exp(s - lse[r])[:, None] * v[cols]).sum(axis=0)
    return o, lse


@pytest.mark.parametrize(
    ("n_q", "n_k", "causal", "align"),
    [
        (1, 1, False, "bottom_right"),
        (7, 13, False, "bottom_right"),
        (7, 13, True, "bottom_right"),
        (13, 7, True, "bottom_right"),
        (13, 7, True, "top_left"),
        (9, 9, True, "top_left"),
    ],
)
def test_reference_matches_per_row_oracle(make_qkv, n_q, n_k, causal, align):
    q, k, v = make_qkv(n_q, n_k, 5)
    scale = 0.37
    r = np.arange(n_q)[:, None]
    c = np.arange(n_k)[None, :]
    shift = (n_k - n_q) if align == "bottom_right" else 0
    allowed = (c <= r + shift) if causal else np.ones((n_q, n_k), bool)
    o, lse = attention_reference(q, k, v, causal=causal, causal_align=align, scale=scale)
    o_or, lse_or = per_row_oracle(q, k, v, scale, allowed)
    np.testing.assert_allclose(o, o_or, rtol=0, atol=1e-13)
    np.testing.assert_allclose(lse, lse_or, rtol=0, atol=1e-13)
    assert o.dtype == np.float64


def test_bottom_right_mask_two_queries_five_keys():
    mask = visible(range(2), range(5), causal_offset(2, 5, "bottom_right"))
    assert mask.astype(int).tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]


def test_top_left_mask_is_pytorch_is_causal():
    mask = visible(range(2), range(5), causal_offset(2, 5, "top_left"))
    assert mask.astype(int).tolist() == [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0]]


def test_bottom_right_five_queries_two_keys_top_three_rows_see_nothing(make_qkv):
    assert visible_counts(5, 2, causal_offset(5, 2, "bottom_right")).tolist() == [0, 0, 0, 1, 2]
    q, k, v = make_qkv(5, 2, 3)
    o, lse = attention_reference(q, k, v, causal=True)
    assert (o[:3] == 0).all() and np.isneginf(lse[:3]).all()
    assert np.isfinite(lse[3:]).all()
    np.testing.assert_array_equal(o[3], v[0])


def test_alignments_agree_on_square_problems(make_qkv):
    q, k, v = make_qkv(11, 11, 4)
    a = attention_reference(q, k, v, causal=True, causal_align="bottom_right")
    b = attention_reference(q, k, v, causal=True, causal_align="top_left")
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize(
    ("rows", "cols", "offset", "kind"),
    [
        (range(0, 4), range(0, 4), None, "full"),
        (range(0, 4), range(0, 4), 0, "partial"),
        (range(4, 8), range(0, 4), 0, "full"),
        (range(0, 4), range(4, 8), 0, "skipped"),
        (range(0, 4), range(4, 8), 1, "partial"),
        (range(0, 3), range(0, 2), -3, "skipped"),
    ],
)
def test_tile_kind(rows, cols, offset, kind):
    assert tile_kind(rows, cols, offset) == kind


def test_large_logits_do_not_overflow(make_qkv):
    """Logits ~1e5 apart: L lies in [max s, max s + log n_k]; a row whose next score is more
    than 40 below its max (most rows) is one-hot: O is that key's v and L that score."""
    q, k, v = make_qkv(6, 9, 4, magnitude=300.0)  # logits ~1e4 and beyond
    o, lse = attention_reference(q, k, v)
    s = (q @ k.T) / 2.0  # scale 1 / sqrt(4)
    top = np.sort(s, axis=1)
    assert np.abs(top[:, -1]).max() > 1e3
    assert ((lse >= top[:, -1]) & (lse <= top[:, -1] + np.log(9) + 1e-9)).all()
    one_hot = top[:, -1] - top[:, -2] > 40  # the others' weights sum to < 8 e^-40
    assert one_hot.sum() >= 3  # (a gap < 40 among scores ~1e5 apart is rare)
    np.testing.assert_allclose(lse[one_hot], top[one_hot, -1], rtol=1e-15)
    np.testing.assert_allclose(o[one_hot], v[s.argmax(axis=1)][one_hot], rtol=0, atol=1e-15)


def test_softmax_weights_guard_rows_with_no_key_and_sum_to_one(rng):
    s = rng.standard_normal((4, 6)) * 50
    s[0] = -np.inf  # every key masked
    s[1, ::2] = -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no (-inf) - (-inf) = NaN on the way
        p, l, m = softmax_weights(s)
    assert p.shape == s.shape and l.shape == m.shape == (4, 1)
    np.testing.assert_array_equal(p[0], 0.0)
    assert l[0, 0] == 0 and np.isneginf(m[0, 0])
    np.testing.assert_array_equal(p[1, ::2], 0.0)
    np.testing.assert_allclose((p / np.where(l == 0, 1, l)).sum(axis=1), [0, 1, 1, 1])
    np.testing.assert_array_equal(p[1:], np.exp(s[1:] - s[1:].max(axis=1, keepdims=True)))


def test_softmax_rows_needs_only_the_array_module_it_is_given(rng):
    """The GPU baseline runs it on CuPy: every array function it calls comes from ``xp``."""
    names = ("where", "isneginf", "exp", "matmul", "asarray", "log")
    calls = []

    def recorded(name):
        def call(*args, **kwargs):
            calls.append(name)
            return getattr(np, name)(*args, **kwargs)

        return call

    xp = SimpleNamespace(**{name: recorded(name) for name in names})
    s = rng.standard_normal((2, 3, 5)).astype(np.float32)
    s[0, 1] = -np.inf
    v = rng.standard_normal((2, 5, 4)).astype(np.float32)
    o, lse = softmax_rows(s, v, xp=xp)
    o_np, lse_np = softmax_rows(s, v)
    np.testing.assert_array_equal(o, o_np)
    np.testing.assert_array_equal(lse, lse_np)
    assert o.dtype == lse.dtype == np.float32 and set(calls) == set(names)
    np.testing.assert_array_equal(o[0, 1], 0.0)
    assert np.isneginf(lse[0, 1])
