"""split_kv_attention against the reference: decoding sizes, splits from one to more than
the K/V blocks, causal alignments, empty splits and rows, batch and heads; its partials."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flashviz import (
    DEFAULT_SPLIT_BLOCK_KV,
    attention_reference,
    flash_attention,
    split_kv_attention,
)
from flashviz.core.masking import mask_offset, num_blocks
from flashviz.core.reference import masked_scores, softmax_rows
from flashviz.core.split_kv import split_blocks
from tests.support import assert_matches_reference, assert_same_attention

MASKS = [(False, "bottom_right"), (True, "bottom_right"), (True, "top_left")]


def _draw(rng: np.random.Generator) -> tuple[int, int, int]:
    """A random uneven problem: n_k up to 5000, head dim, block; printed for a replay."""
    n_k, d, block_kv = (
        int(rng.integers(1, 5001)),
        int(rng.integers(1, 97)),
        int(rng.integers(1, 700)),
    )
    print(f"n_k={n_k} d={d} block_kv={block_kv}")
    return n_k, d, block_kv


@pytest.mark.parametrize("n_q", [1, 3, 8])
@pytest.mark.parametrize(("causal", "align"), MASKS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_reference_for_every_number_of_splits(rng, make_qkv, n_q, causal, align, dtype):
    n_k, d, block_kv = _draw(rng)
    q, k, v = make_qkv(n_q, n_k, d, dtype=dtype)
    n_blocks = num_blocks(n_k, block_kv)
    splits = {1, 2, 3, 7, n_blocks, n_blocks + 1, n_blocks + 5}  # beyond the blocks: empty
    for num_splits in sorted(s for s in splits if s <= n_k):  # at most one split a key
        o, lse, partials = split_kv_attention(
            q, k, v, num_splits=num_splits, block_kv=block_kv, causal=causal, causal_align=align
        )
        assert o.dtype == dtype and lse.dtype == dtype and len(partials) == num_splits
        assert_matches_reference(o, lse, q, k, v, causal=causal, causal_align=align)
        if dtype == np.float64:
            o_ref, lse_ref = attention_reference(q, k, v, causal=causal, causal_align=align)
            np.testing.assert_allclose(o, o_ref, rtol=0, atol=1e-12)
            np.testing.assert_allclose(lse, lse_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("causal", "align"), MASKS)
def test_one_split_is_the_fa2_loop(make_qkv, causal, align):
    q, k, v = make_qkv(5, 777, 16, dtype=np.float32)
    mask = dict(causal=causal, causal_align=align)
    o, lse, (part,) = split_kv_attention(q, k, v, num_splits=1, block_kv=100, **mask)
    # combining one split is exact: its state (lse, 1, o) finalised is o / 1 and lse + log 1
    np.testing.assert_array_equal(o, part.o)
    np.testing.assert_array_equal(lse, part.lse)
    # the split is FA2's loop over the same tiles; flash_attention's matmuls are a stack of
    # one, which a BLAS may sum in another order than the split's single ones
    o_fa2, lse_fa2 = flash_attention(q, k, v, block_q=5, block_kv=100, **mask)
    assert_same_attention((part.o, part.lse), (o_fa2, lse_fa2), q, k, v, block_kv=100, **mask)


@pytest.mark.parametrize(("n_blocks", "num_splits"), [(10, 4), (10, 1), (3, 5), (0, 2), (7, 7)])
def test_splits_are_contiguous_and_as_even_as_possible(n_blocks, num_splits):
    splits = split_blocks(n_blocks, num_splits)
    assert len(splits) == num_splits
    assert [j for r in splits for j in r] == list(range(n_blocks))  # contiguous, in order
    sizes = [len(r) for r in splits]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True), sizes


def test_known_splits_and_their_keys(make_qkv):
    q, k, v = make_qkv(2, 10, 4)
    *_, partials = split_kv_attention(q, k, v, num_splits=5, block_kv=3)  # 4 blocks
    assert [p.s for p in partials] == [0, 1, 2, 3, 4]
    assert [p.blocks for p in partials] == [
        range(0, 1),
        range(1, 2),
        range(2, 3),
        range(3, 4),
        range(4, 4),
    ]
    assert [p.cols for p in partials] == [
        range(0, 3),
        range(3, 6),
        range(6, 9),
        range(9, 10),
        range(10, 10),
    ]
    assert split_blocks(10, 4) == [range(0, 3), range(3, 6), range(6, 8), range(8, 10)]


@pytest.mark.parametrize(("causal", "align"), MASKS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_partial_is_attention_over_its_own_keys(make_qkv, causal, align, dtype):
    n_q, n_k = 6, 50
    q, k, v = make_qkv(n_q, n_k, 8, dtype=dtype)
    *_, partials = split_kv_attention(
        q, k, v, num_splits=9, block_kv=7, causal=causal, causal_align=align
    )  # 8 blocks: the last split is empty (checked after the loop: no reference for no key)
    offset = mask_offset(n_q, n_k, causal, align)
    scale = 1 / np.sqrt(8)
    for p in partials[:-1]:
        shifted = None if offset is None else offset - p.cols.start  # the mask in split s
        s = masked_scores(
            q, k[p.cols.start : p.cols.stop], scale=scale, offset=shifted, dtype=np.float64
        )
        o_ref, lse_ref = softmax_rows(s, v[p.cols.start : p.cols.stop].astype(np.float64))
        tol = 64 * float(np.finfo(dtype).eps)
        np.testing.assert_allclose(p.o, o_ref, rtol=0, atol=tol)
        np.testing.assert_allclose(p.lse, lse_ref, rtol=0, atol=tol * 8)
        np.testing.assert_allclose(p.m, s.max(axis=-1, initial=-np.inf), rtol=0, atol=tol * 8)
        with np.errstate(divide="ignore"):
            np.testing.assert_array_equal(p.lse, p.m + np.log(p.l))
        assert p.o.dtype == dtype and not np.isnan(p.o).any()
        # the lanes: (m, l) after each tile the split ran, over the keys up to that tile
        keys = len(p.cols) if offset is None else min(len(p.cols), max(0, n_q + shifted))
        ran = num_blocks(keys, 7)  # up to the block of the last key some row sees
        assert p.m_steps.shape == p.l_steps.shape == (ran, n_q)
        for t in range(ran):
            seen = s[:, : 7 * (t + 1)]
            with np.errstate(divide="ignore"):
                lse_t = p.m_steps[t] + np.log(p.l_steps[t])
            np.testing.assert_allclose(p.m_steps[t], seen.max(axis=-1), rtol=0, atol=tol * 8)
            np.testing.assert_allclose(
                lse_t, np.logaddexp.reduce(seen, axis=-1), rtol=0, atol=tol * 8
            )
        if ran:
            np.testing.assert_array_equal(p.m_steps[-1], p.m)
            np.testing.assert_array_equal(p.l_steps[-1], p.l)
    assert len(partials[-1].cols) == 0 and np.isneginf(partials[-1].lse).all()
    assert (partials[-1].l == 0).all() and (partials[-1].o == 0).all()
    assert partials[-1].m_steps.shape == partials[-1].l_steps.shape == (0, n_q)


def test_combine_is_the_logsumexp_weighted_sum_of_the_partials(make_qkv):
    q, k, v = make_qkv(3, 897, 16, lead=(2,))  # 15 blocks of 64 keys, the last one key
    o, lse, partials = split_kv_attention(q, k, v, num_splits=7, block_kv=64, causal=True)
    lse_s = np.stack([p.lse for p in partials])  # (splits, 2, n_q)
    want_lse = np.logaddexp.reduce(lse_s, axis=0)
    w = np.exp(lse_s - want_lse)  # (splits, 2, n_q), 0 where a split saw no key of the row
    want_o = (w[..., None] * np.stack([p.o for p in partials])).sum(axis=0)
    # splits of 3, 2, ..., 2 blocks; key 896, alone in block 14, is seen by row 2 only
    assert partials[-1].blocks == range(13, 15) and np.isfinite(lse_s).all()
    assert ((w > 0.01) & (w < 0.99)).sum(axis=0).min() >= 2  # every weight matters
    np.testing.assert_allclose(lse, want_lse, rtol=0, atol=1e-13)
    np.testing.assert_allclose(o, want_o, rtol=0, atol=1e-13)
    # one split per block: the last one (key 896) sees none of rows 0 and 1
    o1, lse1, parts1 = split_kv_attention(q, k, v, num_splits=15, block_kv=64, causal=True)
    assert np.isneginf(parts1[-1].lse[..., :2]).all() and np.isfinite(parts1[-1].lse[..., 2]).all()
    lse_s = np.stack([p.lse for p in parts1])
    want_lse = np.logaddexp.reduce(lse_s, axis=0)
    want_o = (np.exp(lse_s - want_lse)[..., None] * np.stack([p.o for p in parts1])).sum(axis=0)
    np.testing.assert_allclose(lse1, want_lse, rtol=0, atol=1e-13)
    np.testing.assert_allclose(o1, want_o, rtol=0, atol=1e-13)


@pytest.mark.parametrize("num_splits", [1, 2, 3, 4])  # 3, 4: some splits hold no block
def test_rows_that_see_no_key_give_zero_and_minus_inf_without_warnings(make_qkv, num_splits):
    q, k, v = make_qkv(9, 4, 8)  # bottom-right: rows 0-4 see no key
    with np.errstate(all="raise"):
        o, lse, partials = split_kv_attention(
            q, k, v, num_splits=num_splits, block_kv=2, causal=True
        )
    o_ref, lse_ref = attention_reference(q, k, v, causal=True)
    empty = np.isneginf(lse_ref)
    assert empty.sum() == 5
    assert (o[empty] == 0).all() and np.isneginf(lse[empty]).all()
    assert not np.isnan(o).any() and not np.isnan(lse).any()
    assert all(not np.isnan(p.o).any() and not np.isnan(p.lse).any() for p in partials)
    np.testing.assert_allclose(o, o_ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(lse[empty], lse_ref[empty])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_and_heads_are_independent_problems(make_qkv, dtype):
    q, k, v = make_qkv(2, 333, 16, lead=(2, 3), dtype=dtype)
    args = dict(num_splits=5, block_kv=32, causal=True, scale=0.7)
    o, lse, partials = split_kv_attention(q, k, v, **args)
    assert o.shape == (2, 3, 2, 16) and lse.shape == (2, 3, 2)
    assert partials[0].o.shape == (2, 3, 2, 16) and partials[0].m.shape == (2, 3, 2)
    assert_matches_reference(o, lse, q, k, v, causal=True, scale=0.7)
    for b, h in [(0, 0), (1, 2)]:  # each head is the single-head problem
        head = (q[b, h], k[b, h], v[b, h])
        o_h, lse_h, _ = split_kv_attention(*head, **args)
        # to rounding: a BLAS may sum a stack of matmuls in another order than a single one
        bound = dict(block_kv=32, causal=True, scale=0.7, splits=5)
        assert_same_attention((o[b, h], lse[b, h]), (o_h, lse_h), *head, **bound)


def test_default_block(make_qkv):
    q, k, v = make_qkv(1, 1000, 8, dtype=np.float32)
    o, lse, partials = split_kv_attention(q, k, v, num_splits=3)
    assert DEFAULT_SPLIT_BLOCK_KV == 128
    assert [p.blocks for p in partials] == [range(0, 3), range(3, 6), range(6, 8)]
    assert_matches_reference(o, lse, q, k, v)


def _message(call) -> tuple[type, str]:
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    return info.type, str(info.value)


BAD = {
    "causal as a string": dict(causal="False"),
    "unknown alignment": dict(causal_align="top"),
    "infinite scale": dict(scale=float("inf")),
    "bool scale": dict(scale=True),
    "zero block": dict(block_kv=0),
    "float block": dict(block_kv=2.5),
    "integer dtype": dict(q=np.ones((2, 4), dtype=np.int64)),
    "head dims differ": dict(k=np.ones((5, 3))),
    "k and v lengths differ": dict(v=np.ones((6, 4))),
    "NaN in q": dict(q=np.full((2, 4), np.nan)),
    "overflowing scores": dict(q=np.full((2, 4), 1e200), k=np.full((5, 4), 1e200)),
}


@pytest.mark.parametrize("bad", BAD, ids=list(BAD))
def test_bad_input_is_refused_as_flash_attention_refuses_it(bad):
    args = dict(q=np.ones((2, 4)), k=np.ones((5, 4)), v=np.ones((5, 4))) | BAD[bad]
    want = _message(lambda: flash_attention(**args))
    assert _message(lambda: split_kv_attention(**args, num_splits=2)) == want


@pytest.mark.parametrize("num_splits", [0, -1, 2.0, True, "2", None])
def test_num_splits_must_be_a_positive_integer(num_splits):
    q = np.ones((1, 4))
    want = f"num_splits must be a positive integer, got {num_splits!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(want)}$"):
        split_kv_attention(q, q, q, num_splits=num_splits)


@settings(deadline=None)
@given(n_k=st.integers(1, 40), num_splits=st.integers(1, 2**70), block_kv=st.integers(1, 16))
def test_at_most_one_split_a_key(n_k, num_splits, block_kv):
    """Up to n_k splits run (those beyond the K/V blocks get no key); more are refused at
    once, before anything is allocated."""
    q, kv = np.ones((2, 3)), np.arange(n_k * 3, dtype=float).reshape(n_k, 3) / (3 * n_k)
    if num_splits <= n_k:
        o, lse, partials = split_kv_attention(q, kv, kv, num_splits=num_splits, block_kv=block_kv)
        assert len(partials) == num_splits and np.isfinite(o).all() and np.isfinite(lse).all()
    else:
        want = f"num_splits must be at most n_k = {n_k}, got {num_splits}"
        with pytest.raises(ValueError, match=f"^{re.escape(want)}$"):
            split_kv_attention(q, kv, kv, num_splits=num_splits, block_kv=block_kv)
