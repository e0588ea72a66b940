"""Dropout as FA2 does it: l sums the undropped P~, P~ is dropped before P~ V."""

from __future__ import annotations

import numpy as np
import pytest

from flashviz import flash_attention
from flashviz.core import dropout


def explicit_dropout_reference(q, k, v, p, seed):
    """Whole-matrix dropout in float64 with the same keep mask: softmax(S) * keep/(1-p) V."""
    heads, n_q, d = q.shape
    n_k = k.shape[1]
    keep = dropout.keep_mask(seed, p, heads, range(n_q), range(n_k), n_q, n_k)
    s = q @ k.transpose(0, 2, 1) / np.sqrt(d)
    w = np.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return (w * keep / (1 - p)) @ v


def test_matches_explicit_dropout(make_qkv):
    q, k, v = make_qkv(23, 41, 8, lead=(3,))
    o, _ = flash_attention(q, k, v, block_q=8, block_kv=16, dropout_p=0.3, seed=7)
    np.testing.assert_allclose(o, explicit_dropout_reference(q, k, v, 0.3, 7), atol=1e-12)


def test_p_zero_is_no_dropout(make_qkv):
    q, k, v = make_qkv(23, 41, 8)
    a = flash_attention(q, k, v, block_q=8, block_kv=16)
    b = flash_attention(q, k, v, block_q=8, block_kv=16, dropout_p=0.0, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_same_seed_same_output_other_seed_other_output(make_qkv):
    q, k, v = make_qkv(23, 41, 8)
    a, lse_a = flash_attention(q, k, v, dropout_p=0.2, seed=11)
    b, _ = flash_attention(q, k, v, dropout_p=0.2, seed=11)
    c, lse_c = flash_attention(q, k, v, dropout_p=0.2, seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(lse_a, lse_c)  # l sums the undropped P~


def test_mask_does_not_depend_on_blocks(make_qkv):
    q, k, v = make_qkv(30, 45, 4)
    a, _ = flash_attention(q, k, v, block_q=4, block_kv=7, dropout_p=0.5, seed=5)
    b, _ = flash_attention(q, k, v, block_q=64, block_kv=64, dropout_p=0.5, seed=5)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)


def test_no_seed_draws_a_fresh_one(make_qkv):
    q, k, v = make_qkv(10, 20, 4)
    a, _ = flash_attention(q, k, v, dropout_p=0.5)
    b, _ = flash_attention(q, k, v, dropout_p=0.5)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_fraction(p):
    keep = dropout.keep_mask(123, p, 2, range(300), range(500), 300, 500)
    assert abs(keep.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / keep.size)


def test_unbiased_average_converges_to_undropped_output(rng, make_qkv):
    """Each head of a batch gets its own mask: 4000 copies of one problem are 4000 samples."""
    samples = 4000
    q, k, v = make_qkv(3, 9, 4)
    o_ref, _ = flash_attention(q, k, v)
    rep = [np.broadcast_to(x, (samples, *x.shape)).copy() for x in (q, k, v)]
    o, _ = flash_attention(*rep, dropout_p=0.4, seed=int(rng.integers(2**32)))
    mean, sem = o.mean(axis=0), o.std(axis=0) / np.sqrt(samples)
    assert (np.abs(mean - o_ref) < 5 * sem + 1e-12).all()
    assert sem.max() < 0.05  # the check has teeth: a biased average (no 1/(1-p)) fails it
    biased = mean * 0.6
    assert not (np.abs(biased - o_ref) < 5 * sem).all()
