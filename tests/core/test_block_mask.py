"""Masks and block masks as FlexAttention defines them (``flashviz.masks``).

Each built-in mask against its definition written out entry by entry; every tile's kind
against the dense mask (full: all visible, empty: none, partial: some), on uneven sizes and
blocks (hypothesis); the PyTorch fields (counts, indices listed first, the transpose)
against the kinds; the causal masks against the causal tile schedule the kernels and the
tiled forward use; and the memory a large mask takes (one row of tiles, not n_q x n_k).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz.core.masking import causal_offset, tile_kind_grid
from flashviz.masks import (
    EMPTY,
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


def _dense(mod: MaskMod, n_q: int, n_k: int, b: int = 0, h: int = 0) -> np.ndarray:
    q, k = np.arange(n_q)[:, None], np.arange(n_k)[None, :]
    return np.broadcast_to(np.asarray(mod(b, h, q, k), dtype=bool), (n_q, n_k))


def _by_entry(rule: object, n_q: int, n_k: int) -> np.ndarray:
    return np.array([[bool(rule(r, c)) for c in range(n_k)] for r in range(n_q)])  # type: ignore[operator]


DEFINITIONS = [
    ("causal", causal(), lambda r, c: c <= r),
    ("causal bottom-right", causal(9, 13, "bottom_right"), lambda r, c: c <= r + 4),
    ("window 3", sliding_window(3), lambda r, c: r - 3 <= c <= r),
    ("window 3 both ways", sliding_window(3, causal=False), lambda r, c: abs(r - c) <= 3),
    ("prefix 4", prefix_lm(4), lambda r, c: c < 4 or c <= r),
    ("documents", document([0, 3, 7]), lambda r, c: (r >= 7) == (c >= 7) and (r >= 3) == (c >= 3)),
    ("chunks of 4", chunked(4), lambda r, c: r // 4 == c // 4),
    ("2 global + window 2", global_tokens(2, 2), lambda r, c: r < 2 or c < 2 or r - 2 <= c <= r),
    ("causal and chunks", and_masks(causal(), chunked(4)),
     lambda r, c: c <= r and r // 4 == c // 4),
    ("window or documents", or_masks(sliding_window(1, causal=False), document([0, 5])),
     lambda r, c: abs(r - c) <= 1 or (r >= 5) == (c >= 5)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "mod", "rule"), DEFINITIONS, ids=[d[0] for d in DEFINITIONS])
def test_each_mask_is_its_definition(name: str, mod: MaskMod, rule: object) -> None:
    assert np.array_equal(_dense(mod, 9, 13), _by_entry(rule, 9, 13)), name


MASKS = st.one_of(
    st.just(causal()),
    st.integers(0, 20).map(sliding_window),
    st.integers(0, 20).map(prefix_lm),
    st.integers(1, 12).map(chunked),
    st.lists(st.integers(1, 60), min_size=1, max_size=4, unique=True).map(
        lambda cuts: document([0, *sorted(cuts)])
    ),
    st.tuples(st.integers(0, 5), st.integers(0, 9)).map(lambda gw: global_tokens(*gw)),
    st.just(and_masks()),  # everything visible
    st.just(or_masks()),  # nothing visible
)


@given(
    mod=MASKS,
    n_q=st.integers(1, 70),
    n_k=st.integers(1, 70),
    block_q=st.integers(1, 17),
    block_kv=st.integers(1, 17),
)
def test_every_tile_is_sorted_by_the_dense_mask(
    mod: MaskMod, n_q: int, n_k: int, block_q: int, block_kv: int
) -> None:
    bm = create_block_mask(mod, None, None, n_q, n_k, block_size=(block_q, block_kv))
    dense = _dense(mod, n_q, n_k)
    for i in range(-(-n_q // block_q)):
        for j in range(-(-n_k // block_kv)):
            tile = dense[i * block_q : (i + 1) * block_q, j * block_kv : (j + 1) * block_kv]
            want = FULL if tile.all() else EMPTY if not tile.any() else PARTIAL
            assert bm.kinds[0, 0, i, j] == want, (i, j)
    _fields_agree_with_the_kinds(bm.kinds[0, 0], bm)
    assert bm.sparsity() == pytest.approx(100 * np.mean(bm.kinds == EMPTY))
    assert np.array_equal(bm.to_dense()[0, 0], bm.kinds[0, 0] != EMPTY)


def _fields_agree_with_the_kinds(kinds: np.ndarray, bm: object) -> None:
    for kind, (count, index), (q_count, q_index) in (
        (PARTIAL, ("kv_num_blocks", "kv_indices"), ("q_num_blocks", "q_indices")),
        (FULL, ("full_kv_num_blocks", "full_kv_indices"), ("full_q_num_blocks", "full_q_indices")),
    ):
        for table, counts, indices in ((kinds, count, index), (kinds.T, q_count, q_index)):
            n = getattr(bm, counts)[0, 0]
            listed = getattr(bm, indices)[0, 0]
            for row, blocks in enumerate(table):
                want = np.flatnonzero(blocks == kind)
                assert n[row] == len(want)
                assert list(listed[row, : n[row]]) == list(want)  # listed first, in order
                assert sorted(listed[row]) == list(range(len(blocks)))  # then the others


@given(
    n_q=st.integers(1, 60),
    n_k=st.integers(1, 60),
    block_q=st.integers(1, 16),
    block_kv=st.integers(1, 16),
    align=st.sampled_from(["top_left", "bottom_right"]),
)
def test_causal_block_masks_are_the_tiled_forwards_schedule(
    n_q: int, n_k: int, block_q: int, block_kv: int, align: str
) -> None:
    bm = create_block_mask(causal(n_q, n_k, align), None, None, n_q, n_k, (block_q, block_kv))
    grid = tile_kind_grid(n_q, n_k, block_q, block_kv, causal_offset(n_q, n_k, align))
    names = np.array(["skipped", "partial", "full"])
    assert np.array_equal(names[bm.kinds[0, 0]], grid)


def test_batches_and_heads_each_get_their_mask() -> None:
    def by_head(b: object, h: object, q: np.ndarray, k: np.ndarray) -> np.ndarray:
        return k <= q + int(h) * 8  # head h sees 8 h keys ahead

    bm = create_block_mask(by_head, 2, 3, 16, 32, block_size=8)
    assert bm.shape == (2, 3, 2, 4)
    assert list(bm.full_kv_num_blocks[0, :, 1]) == [1, 2, 3]
    assert np.array_equal(bm.kinds[0], bm.kinds[1])
    assert create_block_mask(causal(), None, None, 16, 16, 8).shape == (1, 1, 2, 2)


def test_to_string_draws_full_partial_and_empty() -> None:
    bm = create_block_mask(causal(), None, None, 8, 8, block_size=4)
    assert bm.to_string() == "\u2591 \n\u2588\u2591"
    assert bm.sparsity() == 25.0


def test_a_long_sequence_takes_one_row_of_tiles_not_the_whole_mask() -> None:
    n = 16_384  # the dense mask alone would be 256 MiB of booleans
    tracemalloc.start()
    try:
        bm = create_block_mask(and_masks(causal(), sliding_window(512)), None, None, n, n, 128)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    row_of_tiles = 128 * n * 8  # bytes of one row of tiles as int64 indices (16 MiB)
    assert peak < 4 * row_of_tiles, f"{peak / 2**20:.1f} MiB"  # the dense mask: 256 MiB
    # a window of 4 blocks: the diagonal tile and the one 4 back partial, the 3 between full
    assert bm.kv_num_blocks.max() == 2 and bm.full_kv_num_blocks.max() == 3
    assert bm.sparsity() > 95


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: sliding_window(-1), ValueError),
        (lambda: chunked(0), ValueError),
        (lambda: chunked(2.5), TypeError),  # type: ignore[arg-type]
        (lambda: prefix_lm(True), TypeError),
        (lambda: document([1, 5]), ValueError),
        (lambda: document([0, 5, 5]), ValueError),
        (lambda: causal(align="middle"), ValueError),
        (lambda: causal(align="bottom_right"), ValueError),
        (lambda: create_block_mask(causal(), None, None, 0, 8), ValueError),
        (lambda: create_block_mask(causal(), None, None, 8, 8, (4, 0)), ValueError),
    ],
)
def test_bad_arguments_are_refused_with_a_message(make: object, error: type) -> None:
    with pytest.raises(error):
        make()  # type: ignore[operator]


def test_the_built_in_masks_say_how_the_kernels_evaluate_them():
    """``mask_spec``: a kind and its integer parameters, ANDed with a causal bound (the CUDA
    kernels evaluate these: tests/gpu/test_kernel_masks.py runs each against its mask_mod);
    none for a user's own mask or a combination the kernels cannot evaluate."""
    from flashviz.core.masks import MaskSpec, mask_spec

    assert mask_spec(None) == MaskSpec()
    assert mask_spec(causal(9, 13, "bottom_right")) == MaskSpec(causal_offset=4)
    assert mask_spec(sliding_window(3)) == MaskSpec("window", (3,), causal_offset=0)
    assert mask_spec(sliding_window(3, causal=False)) == MaskSpec("window", (3,))
    assert mask_spec(prefix_lm(4)) == MaskSpec("prefix_lm", (4,))
    assert mask_spec(document([0, 3, 7])) == MaskSpec("document", starts=(0, 3, 7))
    assert mask_spec(global_tokens(2, 5, causal=False)) == MaskSpec("global", (2, 5, 0))
    # and_masks: causal bounds meet (the smaller offset), with at most one other kind
    both = and_masks(causal(9, 13, "bottom_right"), sliding_window(3), chunked(4))
    assert mask_spec(both) is None  # two kinds
    assert mask_spec(and_masks(causal(9, 13, "bottom_right"), chunked(4))) == MaskSpec(
        "chunked", (4,), causal_offset=4
    )
    assert mask_spec(and_masks(causal(9, 13, "bottom_right"), sliding_window(3))) == MaskSpec(
        "window", (3,), causal_offset=0
    )
    assert mask_spec(and_masks()) == MaskSpec()
    assert mask_spec(or_masks(chunked(4), causal())) is None
    assert mask_spec(or_masks(chunked(4))) == MaskSpec("chunked", (4,))
    mine = lambda b, h, q_idx, kv_idx: q_idx % 2 == kv_idx % 2  # noqa: E731
    assert mask_spec(mine) is None and mask_spec(and_masks(causal(), mine)) is None
