"""FlexAttention's masks and grouped-query attention in the library: the tiled forward and
backward, the reference and the traces, against a float64 (long double) reference.

Every built-in mask, combinations of them and a user's own ``mask_mod``, on uneven sizes
(n_q != n_k, not multiples of the blocks) and grouped-query ratios, drawn by hypothesis;
rows that see no key; the tile schedule (empty tiles never visited, full tiles never
evaluating the mask, partial tiles applying it); ``causal=True`` the same as the causal
``mask_mod``; and the arguments refused with a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz import (
    attention_backward_reference,
    attention_reference,
    flash_attention,
    flash_attention_backward,
    naive_attention,
    record_backward_trace,
    record_trace,
)
from flashviz.masks import (
    FULL,
    PARTIAL,
    MaskMod,
    and_masks,
    causal,
    chunked,
    create_block_mask,
    document,
    global_tokens,
    or_masks,
    prefix_lm,
    sliding_window,
)
from tests.core.backward_support import assert_gradients_match
from tests.support import assert_matches_reference


def _dense(mod: MaskMod, n_q: int, n_k: int, b: int = 0, h: int = 0) -> np.ndarray:
    q_idx, kv_idx = np.arange(n_q)[:, None], np.arange(n_k)[None, :]
    return np.broadcast_to(np.asarray(mod(b, h, q_idx, kv_idx), dtype=bool), (n_q, n_k))


@st.composite
def masks(draw: Callable[..., Any], n_q: int, n_k: int) -> tuple[str, MaskMod]:
    """A built-in mask with parameters that make sense for n_q x n_k, or a combination."""
    n = max(n_q, n_k)
    kind = draw(st.sampled_from(
        ["causal", "window", "prefix", "document", "chunked", "global", "and", "or", "own"]
    ))  # fmt: skip
    window = draw(st.integers(0, n))
    if kind == "causal":
        align = draw(st.sampled_from(["top_left", "bottom_right"]))
        return f"causal {align}", causal(n_q, n_k, align)
    if kind == "window":
        both = draw(st.booleans())
        return f"window {window} causal={not both}", sliding_window(window, causal=not both)
    if kind == "prefix":
        return f"prefix {window}", prefix_lm(window)
    if kind == "document":
        starts = sorted(draw(st.sets(st.integers(1, n), max_size=4)))
        return f"documents {[0, *starts]}", document([0, *starts])
    if kind == "chunked":
        chunk = draw(st.integers(1, n))
        return f"causal chunks of {chunk}", and_masks(causal(), chunked(chunk))
    if kind == "global":
        n_global = draw(st.integers(0, 3))
        return f"{n_global} global + window {window}", global_tokens(n_global, window)
    if kind == "and":
        return f"window {window} and prefix 2", and_masks(sliding_window(window), prefix_lm(2))
    if kind == "or":
        return f"window {window} or documents", or_masks(sliding_window(window), document([0, 5]))
    stride = draw(st.integers(2, 5))
    return f"own: every {stride}th key", lambda b, h, q_idx, kv_idx: kv_idx % stride == 0


def _repeat(x: np.ndarray, group: int) -> np.ndarray:
    return np.repeat(x, group, axis=-3)


@given(
    data=st.data(),
    n_q=st.integers(1, 40),
    n_k=st.integers(1, 40),
    block_q=st.integers(1, 16),
    block_kv=st.integers(1, 16),
    kv_heads=st.integers(1, 2),
    group=st.integers(1, 3),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_mask_and_gqa_ratio_matches_the_reference(
    data: st.DataObject, n_q: int, n_k: int, block_q: int, block_kv: int, kv_heads: int,
    group: int, dtype: type, seed: int,
) -> None:  # fmt: skip
    name, mod = data.draw(masks(n_q, n_k))
    print(f"mask {name}, n_q {n_q}, n_k {n_k}, blocks {block_q}x{block_kv}, "
          f"heads {kv_heads}x{group}, {np.dtype(dtype)}, seed {seed}")  # fmt: skip
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((2, kv_heads * group, n_q, 8)).astype(dtype)
    k, v = (rng.standard_normal((2, kv_heads, n_k, 8)).astype(dtype) for _ in range(2))
    do = rng.standard_normal(q.shape).astype(dtype)
    mask = _dense(mod, n_q, n_k)
    kw = dict(block_q=block_q, block_kv=block_kv, mask_mod=mod)
    o, lse = flash_attention(q, k, v, **kw)
    assert_matches_reference(o, lse, q, _repeat(k, group), _repeat(v, group), mask=mask)
    grads = flash_attention_backward(q, k, v, o, lse, do, **kw)
    assert [g.shape for g in grads] == [q.shape, k.shape, v.shape]
    assert_gradients_match(
        grads, q, _repeat(k, group), _repeat(v, group), do, mask=mask, group=group
    )
    empty = ~mask.any(axis=1)  # rows that see no key: o = 0, lse = -inf
    assert np.isneginf(lse[..., empty]).all() and (o[..., empty, :] == 0).all()


@given(
    n_q=st.integers(1, 30),
    n_k=st.integers(1, 30),
    block_q=st.integers(1, 9),
    block_kv=st.integers(1, 9),
    data=st.data(),
)
def test_the_trace_visits_the_listed_tiles_and_evaluates_the_mask_on_partial_ones_only(
    n_q: int, n_k: int, block_q: int, block_kv: int, data: st.DataObject
) -> None:
    name, mod = data.draw(masks(n_q, n_k))
    calls: list[tuple[int, int]] = []  # the first query and key of each evaluation

    def counted(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        calls.append((int(np.min(q_idx)), int(np.min(kv_idx))))
        return mod(b, h, q_idx, kv_idx)

    bm = create_block_mask(mod, None, None, n_q, n_k, (block_q, block_kv))
    rng = np.random.default_rng(n_q * 100 + n_k)
    q, k, v = (rng.standard_normal((n, 4)) for n in (n_q, n_k, n_k))
    bm_counted = create_block_mask(counted, None, None, n_q, n_k, (block_q, block_kv))
    calls.clear()  # building the block mask evaluates it row of tiles by row of tiles
    trace = record_trace(q, k, v, block_mask=bm_counted, block_q=block_q, block_kv=block_kv)
    kinds = bm.kinds[0, 0]
    visited = [(s.i, s.j, s.tile_kind) for s in trace.tile_steps()]
    listed = [(i, j) for i in range(kinds.shape[0]) for j in range(kinds.shape[1])
              if kinds[i, j] in (FULL, PARTIAL)]  # fmt: skip
    assert [(i, j) for i, j, _ in visited] == listed, name  # in order, the empty ones skipped
    assert all((kind == "full") == (kinds[i, j] == FULL) for i, j, kind in visited)
    partial = sorted((i * block_q, j * block_kv) for i, j, kind in visited if kind == "partial")
    assert sorted(calls) == partial, name  # once per partial tile, never on a full one
    o, lse = attention_reference(q, k, v, mask_mod=mod)
    np.testing.assert_allclose(trace.o, o, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.isneginf(trace.lse), np.isneginf(lse))
    assert (trace.tile_kinds() == np.where(kinds == FULL, "full", np.where(
        kinds == PARTIAL, "partial", "skipped"))).all()  # fmt: skip


def test_causal_true_is_the_causal_mask_mod_in_every_function() -> None:
    rng = np.random.default_rng(7)
    q, do = rng.standard_normal((2, 3, 13, 4)), rng.standard_normal((2, 3, 13, 4))
    k, v = rng.standard_normal((2, 3, 9, 4)), rng.standard_normal((2, 3, 9, 4))
    for align in ("top_left", "bottom_right"):
        mod = causal(13, 9, align)
        by_flag = dict(causal=True, causal_align=align)
        for fn in (attention_reference, naive_attention):
            np.testing.assert_allclose(fn(q, k, v, mask_mod=mod)[0], fn(q, k, v, **by_flag)[0])
        tiles = dict(block_q=4, block_kv=3)
        o, lse = flash_attention(q, k, v, mask_mod=mod, **tiles)
        o_c, lse_c = flash_attention(q, k, v, **by_flag, **tiles)
        np.testing.assert_allclose(o, o_c, rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(lse_c))
        grads = flash_attention_backward(q, k, v, o, lse, do, mask_mod=mod, **tiles)
        for g, g_c in zip(grads, attention_backward_reference(q, k, v, do, **by_flag), strict=True):
            np.testing.assert_allclose(g, g_c, rtol=1e-10, atol=1e-12)
        t = record_backward_trace(q[0, 0], k[0, 0], v[0, 0], do[0, 0], mask_mod=mod, **tiles)
        t_c = record_backward_trace(q[0, 0], k[0, 0], v[0, 0], do[0, 0], **by_flag, **tiles)
        assert [(s.i, s.j, s.tile_kind) for s in t.tile_steps()] == [
            (s.i, s.j, s.tile_kind) for s in t_c.tile_steps()
        ]
        np.testing.assert_allclose(t.dk, t_c.dk, rtol=1e-10, atol=1e-12)


def test_a_block_mask_per_batch_and_head_masks_each_head_its_own_way() -> None:
    """A mask that depends on b and h: each head gets its own tiles and entries."""

    def per_head(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        return (kv_idx <= q_idx) & ((q_idx + kv_idx + b + 2 * h) % 3 != 0)

    rng = np.random.default_rng(11)
    q, do = rng.standard_normal((2, 4, 21, 4)), rng.standard_normal((2, 4, 21, 4))
    k, v = rng.standard_normal((2, 2, 17, 4)), rng.standard_normal((2, 2, 17, 4))
    bm = create_block_mask(per_head, 2, 4, 21, 17, (5, 4))
    dense = np.stack([np.stack([_dense(per_head, 21, 17, b, h) for h in range(4)])
                      for b in range(2)])  # fmt: skip
    o, lse = flash_attention(q, k, v, block_mask=bm)
    assert_matches_reference(o, lse, q, _repeat(k, 2), _repeat(v, 2), mask=dense)
    o_ref, _ = attention_reference(q, k, v, block_mask=bm)
    np.testing.assert_allclose(o, o_ref, rtol=1e-12, atol=1e-12)
    grads = flash_attention_backward(q, k, v, o, lse, do, block_mask=bm)
    assert_gradients_match(grads, q, _repeat(k, 2), _repeat(v, 2), do, mask=dense, group=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(causal=True, mask_mod=causal()), "not both"),
        (dict(mask_mod=causal(), block_mask="x"), "not both"),
        (dict(mask_mod="causal"), "mask_mod must be a function"),
        (dict(block_mask=np.ones((1, 1, 2, 2))), "block_mask must be a BlockMask"),
        (dict(block_mask=create_block_mask(causal(), None, None, 8, 9, 4)), "built for"),
        (dict(block_mask=create_block_mask(causal(), 3, None, 8, 8, 4)), "(B, H)"),
        (dict(block_mask=create_block_mask(causal(), None, None, 8, 8, 4), block_q=2),
         "build it with block_size=(2, 4)"),
    ],
)  # fmt: skip
def test_a_wrong_mask_is_refused_with_a_message(kwargs: dict[str, Any], message: str) -> None:
    q = k = v = np.zeros((2, 2, 8, 4))
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        flash_attention(q, k, v, **kwargs)


def test_kv_heads_must_divide_the_query_heads_of_the_same_batches() -> None:
    q = np.zeros((2, 6, 8, 4))
    for kv_shape, message in (
        ((2, 4, 8, 4), "fewer heads dividing"),
        ((1, 2, 8, 4), "same leading"),
    ):
        with pytest.raises(ValueError, match=message):
            flash_attention(q, np.zeros(kv_shape), np.zeros(kv_shape))
