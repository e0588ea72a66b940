"""flash_attention against the reference: uneven sizes, blocks, masks, precisions."""

from __future__ import annotations

import numpy as np
import pytest

from flashviz import DEFAULT_BLOCK_KV, DEFAULT_BLOCK_Q, attention_reference, flash_attention
from tests.support import assert_matches_reference, assert_same_attention

PAIRS = [(1, 1), (7, 13), (113, 203), (128, 127), (1023, 1024)]
HEAD_DIMS = [1, 8, 40, 64, 96]
BLOCKS = [(16, 16), (32, 64), (64, 16), (7, 5), (1, 3), (256, 2048)]  # ragged, > n
MASKS = [(False, "bottom_right"), (True, "bottom_right"), (True, "top_left")]


@pytest.mark.parametrize(("n_q", "n_k"), PAIRS)
@pytest.mark.parametrize("d", HEAD_DIMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sizes_and_head_dims(make_qkv, n_q, n_k, d, dtype):
    q, k, v = make_qkv(n_q, n_k, d, dtype=dtype)
    causal = d % 2 == 0  # alternate with / without mask across head dims
    o, lse = flash_attention(q, k, v, block_q=32, block_kv=48, causal=causal)
    assert o.dtype == dtype and lse.dtype == dtype
    assert_matches_reference(o, lse, q, k, v, causal=causal)
    if dtype == np.float64:
        o_ref, lse_ref = attention_reference(q, k, v, causal=causal)
        np.testing.assert_allclose(o, o_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(lse, lse_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("block_q", "block_kv"), BLOCKS)
@pytest.mark.parametrize(("causal", "align"), MASKS)
@pytest.mark.parametrize(("n_q", "n_k"), [(45, 71), (71, 45)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_and_masks(make_qkv, block_q, block_kv, causal, align, n_q, n_k, dtype):
    q, k, v = make_qkv(n_q, n_k, 24, dtype=dtype)
    o, lse = flash_attention(
        q, k, v, block_q=block_q, block_kv=block_kv, causal=causal, causal_align=align
    )
    assert_matches_reference(o, lse, q, k, v, causal=causal, causal_align=align)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_and_head_dims_with_custom_scale(make_qkv, dtype):
    q, k, v = make_qkv(37, 53, 16, lead=(2, 3), dtype=dtype)
    o, lse = flash_attention(q, k, v, block_q=16, block_kv=16, causal=True, scale=0.7)
    assert o.shape == (2, 3, 37, 16) and lse.shape == (2, 3, 37)
    assert_matches_reference(o, lse, q, k, v, causal=True, scale=0.7)
    for b in range(2):  # each head is the single-head problem
        head = (q[b, 1], k[b, 1], v[b, 1])
        o_h, lse_h = flash_attention(*head, block_q=16, block_kv=16, causal=True, scale=0.7)
        # to rounding: a BLAS may sum a stack of matmuls in another order than a single one
        assert_same_attention(
            (o[b, 1], lse[b, 1]), (o_h, lse_h), *head, block_kv=16, causal=True, scale=0.7
        )


def test_defaults(make_qkv):
    q, k, v = make_qkv(300, 700, 8, dtype=np.float32)
    o, lse = flash_attention(q, k, v)
    assert (DEFAULT_BLOCK_Q, DEFAULT_BLOCK_KV) == (128, 512)
    assert_matches_reference(o, lse, q, k, v)


@pytest.mark.parametrize("align", ["bottom_right", "top_left"])
def test_rows_that_see_no_key_give_zero_and_minus_inf(make_qkv, align):
    q, k, v = make_qkv(9, 4, 8)
    o, lse = flash_attention(q, k, v, block_q=2, block_kv=3, causal=True, causal_align=align)
    o_ref, lse_ref = attention_reference(q, k, v, causal=True, causal_align=align)
    empty = np.isneginf(lse_ref)
    assert empty.sum() == (5 if align == "bottom_right" else 0)
    assert (o[empty] == 0).all() and np.isneginf(lse[empty]).all()
    assert not np.isnan(o).any() and not np.isnan(lse).any()
    np.testing.assert_allclose(o, o_ref, rtol=0, atol=1e-12)


def test_single_key_returns_v_exactly(make_qkv):
    q, k, v = make_qkv(5, 1, 8, dtype=np.float32)
    o, _ = flash_attention(q, k, v)
    np.testing.assert_array_equal(o, np.broadcast_to(v, o.shape))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_logits_stay_finite_and_accurate(make_qkv, dtype):
    q, k, v = make_qkv(40, 90, 16, dtype=dtype, magnitude=25.0)  # logits up to ~1e4
    o, lse = flash_attention(q, k, v, block_q=8, block_kv=16, causal=True)
    assert np.isfinite(o).all() and np.isfinite(lse).all()
    assert_matches_reference(o, lse, q, k, v, causal=True)


def test_results_do_not_depend_on_blocks_beyond_rounding(make_qkv):
    q, k, v = make_qkv(50, 60, 8)
    a = flash_attention(q, k, v, block_q=1, block_kv=1)
    b = flash_attention(q, k, v, block_q=64, block_kv=64)
    np.testing.assert_allclose(a[0], b[0], rtol=0, atol=1e-13)
