"""Causal-mask conventions, which tiles a causal mask skips, and the tile schedule.

Row r (query) may see column c (key) iff ``c <= r + offset`` where the offset is
``n_k - n_q`` for "bottom_right" (flash-attn >= 2.1) and ``0`` for "top_left"
(PyTorch ``is_causal=True``). The two agree when n_q == n_k.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, NamedTuple

import numpy as np

TileKind = Literal["full", "partial", "skipped"]


def causal_offset(n_q: int, n_k: int, causal_align: str) -> int:
    """Diagonal offset: row r sees key c iff c <= r + offset."""
    return n_k - n_q if causal_align == "bottom_right" else 0


def visible(rows: range, cols: range, offset: int | None) -> np.ndarray | None:
    """Boolean (len(rows), len(cols)) mask of visible entries; None when all are visible."""
    if offset is None or tile_kind(rows, cols, offset) == "full":
        return None
    r = np.arange(rows.start, rows.stop)[:, None]
    c = np.arange(cols.start, cols.stop)[None, :]
    return c <= r + offset


def tile_kind(rows: range, cols: range, offset: int | None) -> TileKind:
    """'full' (no entry masked), 'partial' (crosses the diagonal) or 'skipped' (all masked)."""
    if offset is None or cols.stop - 1 <= rows.start + offset:
        return "full"
    if cols.start > rows.stop - 1 + offset:
        return "skipped"
    return "partial"


def tile_kind_grid(
    n_q: int, n_k: int, block_q: int, block_kv: int, offset: int | None
) -> np.ndarray:
    """(num Q blocks, num K/V blocks) array of "full", "partial" or "skipped"."""
    return np.array(
        [
            [
                tile_kind(block_range(i, block_q, n_q), block_range(j, block_kv, n_k), offset)
                for j in range(num_blocks(n_k, block_kv))
            ]
            for i in range(num_blocks(n_q, block_q))
        ]
    )


def block_range(index: int, block: int, n: int) -> range:
    """The rows (or columns) covered by block ``index`` of size ``block`` out of ``n``."""
    return range(index * block, min((index + 1) * block, n))


def num_blocks(n: int, block: int) -> int:
    return -(-n // block)


def kv_blocks_for(rows: range, block_kv: int, n_k: int, offset: int | None) -> int:
    """How many K/V blocks (from j = 0) query rows ``rows`` must visit; later ones are skipped."""
    total = num_blocks(n_k, block_kv)
    if offset is None:
        return total
    last_visible_col = rows.stop - 1 + offset
    if last_visible_col < 0:
        return 0
    return min(total, last_visible_col // block_kv + 1)


class QueryBlock(NamedTuple):
    """Query block i of a tiled run, and the K/V blocks it visits in order."""

    i: int
    rows: range
    kv: tuple[tuple[int, range], ...]  # (j, cols) for j = 0, 1, ..., len(kv) - 1


def tile_schedule(
    n_q: int, n_k: int, block_q: int, block_kv: int, offset: int | None
) -> Iterator[QueryBlock]:
    """The tiles (i, j) a tiled run computes, in FA2's order: every query block i (the outer
    loop; a block whose rows see no key visits no tile), and in it the K/V blocks j from 0
    up to the last one holding a key that one of its rows sees (the inner loop). The K/V
    blocks after it lie entirely above the causal diagonal: those tiles are skipped."""
    for i in range(num_blocks(n_q, block_q)):
        rows = block_range(i, block_q, n_q)
        kv = range(kv_blocks_for(rows, block_kv, n_k, offset))
        yield QueryBlock(i, rows, tuple((j, block_range(j, block_kv, n_k)) for j in kv))


class KeyBlock(NamedTuple):
    """K/V block j of a backward run (K/V blocks outside), and the query blocks it visits."""

    j: int
    cols: range
    q: tuple[tuple[int, range], ...]  # (i, rows) of each query block with a row seeing a key of j


def kv_tile_schedule(
    n_q: int, n_k: int, block_q: int, block_kv: int, offset: int | None
) -> Iterator[KeyBlock]:
    """The tiles (i, j) FA2's backward computes, in its order: every K/V block j (the outer
    loop), and in it the query blocks i whose tile (i, j) the mask does not hide entirely
    (the inner loop). A tile the mask hides holds no gradient and is skipped."""
    blocks_q = [block_range(i, block_q, n_q) for i in range(num_blocks(n_q, block_q))]
    for j in range(num_blocks(n_k, block_kv)):
        cols = block_range(j, block_kv, n_k)
        seen = tuple(
            (i, r) for i, r in enumerate(blocks_q) if tile_kind(r, cols, offset) != "skipped"
        )
        yield KeyBlock(j, cols, seen)


def visible_counts(n_q: int, n_k: int, offset: int | None) -> np.ndarray:
    """Number of keys each query row sees, shape (n_q,)."""
    if offset is None:
        return np.full(n_q, n_k, dtype=np.int64)
    return np.clip(np.arange(n_q) + offset + 1, 0, n_k)


def mask_offset(n_q: int, n_k: int, causal: bool, causal_align: str) -> int | None:
    """The offset for a causal problem, or None when there is no mask."""
    return causal_offset(n_q, n_k, causal_align) if causal else None
