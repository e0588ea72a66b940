"""FlexAttention's ``BlockMask``: every tile of a mask sorted into full, partial and empty.

A tile (one Q block by one K/V block) is **full** when every entry of it is visible (a
kernel computes it without evaluating the mask), **partial** when some are (the mask is
applied entry by entry) and **empty** when none is (never visited). The fields follow
PyTorch's names and conventions (``torch.nn.attention.flex_attention.BlockMask``), with a
leading (B, H):

- ``kv_num_blocks[b, h, i]``: how many partial tiles Q block i has; ``kv_indices[b, h, i]``
  their K/V block indices first, in increasing order, then the others;
- ``full_kv_num_blocks``, ``full_kv_indices``: the same for its full tiles;
- ``q_num_blocks``, ``q_indices``, ``full_q_num_blocks``, ``full_q_indices``: the transpose,
  per K/V block (what the backward's K/V-outer loop visits).

``create_block_mask`` evaluates the mask one row of tiles at a time (``block_q x n_k``
booleans), never ``n_q x n_k``. A last block shorter than the block size is judged on the
entries it has. B or H None: the mask is the same for all (a size of 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flashviz.core.masking import block_range, num_blocks
from flashviz.core.masks import MaskMod, mask_entries

EMPTY, PARTIAL, FULL = 0, 1, 2  # a tile's kind in ``BlockMask.kinds``
_CHARS = {EMPTY: " ", PARTIAL: "\u2591", FULL: "\u2588"}  # as PyTorch's to_string draws them


@dataclass(frozen=True)
class BlockMask:
    kinds: np.ndarray  # (B, H, Q blocks, K/V blocks) of EMPTY, PARTIAL, FULL
    block_size: tuple[int, int]  # (block_q, block_kv)
    seq_lengths: tuple[int, int]  # (n_q, n_k)
    mask_mod: MaskMod
    seen: np.ndarray  # (B, H, Q blocks, K/V blocks) int64: visible entries of each tile

    @property
    def shape(self) -> tuple[int, int, int, int]:
        b, h, q, k = self.kinds.shape
        return b, h, q, k

    @property
    def kv_num_blocks(self) -> np.ndarray:
        return kv_lists(self.kinds)[0]

    @property
    def kv_indices(self) -> np.ndarray:
        return kv_lists(self.kinds)[1]

    @property
    def full_kv_num_blocks(self) -> np.ndarray:
        return kv_lists(self.kinds)[2]

    @property
    def full_kv_indices(self) -> np.ndarray:
        return kv_lists(self.kinds)[3]

    @property
    def q_num_blocks(self) -> np.ndarray:
        return _counts(self._transposed() == PARTIAL)

    @property
    def q_indices(self) -> np.ndarray:
        return _listed_first(self._transposed() == PARTIAL)

    @property
    def full_q_num_blocks(self) -> np.ndarray:
        return _counts(self._transposed() == FULL)

    @property
    def full_q_indices(self) -> np.ndarray:
        return _listed_first(self._transposed() == FULL)

    def _transposed(self) -> np.ndarray:
        return np.swapaxes(self.kinds, -1, -2)

    def sparsity(self) -> float:
        """The percentage of tiles never visited (empty), as PyTorch's ``sparsity()``."""
        return float(100.0 * np.mean(self.kinds == EMPTY))

    def to_dense(self) -> np.ndarray:
        """(B, H, Q blocks, K/V blocks) int32: 1 where a tile is visited (full or partial)."""
        return (self.kinds != EMPTY).astype(np.int32)

    def to_string(self, b: int = 0, h: int = 0) -> str:
        """One line per Q block: a full block character for a full tile, a shaded one for a
        partial tile, a space for an empty one."""
        return "\n".join("".join(_CHARS[int(k)] for k in row) for row in self.kinds[b, h])


def kv_lists(kinds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices) of tile kinds
    (..., Q blocks, K/V blocks), int32, as the ``BlockMask`` fields of those names."""
    partial, full = kinds == PARTIAL, kinds == FULL
    return _counts(partial), _listed_first(partial), _counts(full), _listed_first(full)


def causal_kinds(n_q: int, n_k: int, block_q: int, block_kv: int, offset: int | None) -> np.ndarray:
    """(Q blocks, K/V blocks) int8 kinds of a causal mask (``offset``: row r sees key c iff
    c <= r + offset; None: no mask, every tile full), as ``flashviz.core.masking.tile_kind``
    sorts them, for all tiles at once."""
    q_blocks, kv_blocks = num_blocks(n_q, block_q), num_blocks(n_k, block_kv)
    if offset is None:
        return np.full((q_blocks, kv_blocks), FULL, dtype=np.int8)
    first_row = np.arange(q_blocks)[:, None] * block_q
    last_row = np.minimum(first_row + block_q, n_q) - 1
    first_col = np.arange(kv_blocks)[None, :] * block_kv
    last_col = np.minimum(first_col + block_kv, n_k) - 1
    kinds = np.where(first_col > last_row + offset, EMPTY, PARTIAL)
    return np.where(last_col <= first_row + offset, FULL, kinds).astype(np.int8)


def _counts(listed: np.ndarray) -> np.ndarray:
    return listed.sum(axis=-1).astype(np.int32)


def _listed_first(listed: np.ndarray) -> np.ndarray:
    """Each row's listed block indices first (increasing), then the others (increasing)."""
    return np.argsort(~listed, axis=-1, kind="stable").astype(np.int32)


def create_block_mask(
    mask_mod: MaskMod,
    B: int | None,  # PyTorch's names: batches and heads (None: one mask for all)
    H: int | None,
    n_q: int,
    n_k: int,
    block_size: int | tuple[int, int] = 128,
) -> BlockMask:
    """The ``BlockMask`` of ``mask_mod`` over ``n_q`` queries and ``n_k`` keys in tiles of
    ``block_size`` (one int: square tiles; a pair: (block_q, block_kv))."""
    block_q, block_kv = (block_size, block_size) if isinstance(block_size, int) else block_size
    for name, value in (("n_q", n_q), ("n_k", n_k), ("block_q", block_q), ("block_kv", block_kv)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    batches, heads = B or 1, H or 1
    q_blocks, kv_blocks = num_blocks(n_q, block_q), num_blocks(n_k, block_kv)
    kinds = np.empty((batches, heads, q_blocks, kv_blocks), dtype=np.int8)
    seen_counts = np.empty((batches, heads, q_blocks, kv_blocks), dtype=np.int64)
    starts = np.arange(0, n_k, block_kv)
    for b in range(batches):
        for h in range(heads):
            for i in range(q_blocks):
                rows = block_range(i, block_q, n_q)
                seen = mask_entries(mask_mod, rows, range(n_k), b, h)  # one row of tiles
                per_col = seen.sum(axis=0)  # visible entries of each key column
                visible = np.add.reduceat(per_col, starts)  # of each tile
                size = len(rows) * np.diff(np.append(starts, n_k))
                kinds[b, h, i] = np.where(
                    visible == 0, EMPTY, np.where(visible == size, FULL, PARTIAL)
                )
                seen_counts[b, h, i] = visible
    return BlockMask(kinds, (block_q, block_kv), (n_q, n_k), mask_mod, seen_counts)
