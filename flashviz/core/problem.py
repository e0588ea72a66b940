"""One attention problem, as every part of the core sees it.

``Problem``: the inputs q (..., n_q, d), k and v (..., n_k, d), the softmax scale and the
mask (causal, a FlexAttention ``mask_mod``, or none); ``TiledProblem`` adds the block sizes
of a tiled run, with its grid, its block mask and its tile schedule. With grouped-query
attention k and v have fewer heads than q: query head h reads K/V head h // group.
``flashviz.core.checks.check_problem`` and ``check_tiled_problem`` build them from a
caller's arguments, validated; FA2's ``Trace`` and FA1's ``flashviz.lab.fa1.Fa1Trace`` are
tiled problems that also hold their steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np

from flashviz.core.block_mask import EMPTY, FULL, BlockMask, causal_kinds
from flashviz.core.masking import (
    KeyBlock,
    QueryBlock,
    TileKind,
    block_range,
    kv_tile_schedule,
    mask_offset,
    num_blocks,
    tile_kind,
    tile_kind_grid,
    tile_schedule,
    visible,
)
from flashviz.core.masks import MaskMod, mask_entries

_KINDS: dict[int, TileKind] = {EMPTY: "skipped", FULL: "full"}


@dataclass(frozen=True, eq=False)
class Problem:
    """Attention inputs and what the softmax needs: scale tau and the causal mask."""

    q: np.ndarray  # (..., n_q, d)
    k: np.ndarray  # (..., n_k, d)
    v: np.ndarray  # (..., n_k, d)
    scale: float
    causal: bool
    causal_align: str  # "bottom_right" or "top_left" (see flashviz.core.masking)
    mask_mod: MaskMod | None = field(default=None, kw_only=True)  # FlexAttention's predicate
    mask_heads: tuple[int, int] = field(default=(1, 1), kw_only=True)  # (B, H) it varies over

    @property
    def n_q(self) -> int:
        return self.q.shape[-2]

    @property
    def n_k(self) -> int:
        return self.k.shape[-2]

    @property
    def d(self) -> int:
        return self.q.shape[-1]

    @property
    def offset(self) -> int | None:
        """Row r sees key c iff c <= r + offset; None without a causal mask."""
        return mask_offset(self.n_q, self.n_k, self.causal, self.causal_align)

    @property
    def heads(self) -> int:
        """Query heads, all leading dims together (1 for q (n_q, d))."""
        return int(np.prod(self.q.shape[:-2], dtype=np.int64))

    @property
    def group(self) -> int:
        """Query heads per K/V head: 1, or more under grouped-query attention."""
        return self.heads // int(np.prod(self.k.shape[:-2], dtype=np.int64))

    def mask_index(self, head: int) -> tuple[int, int]:
        """The (b, h) a ``mask_mod`` is called with for flat query head ``head`` (0 where the
        mask is the same for all batches or heads)."""
        per_batch = self.q.shape[-3] if self.q.ndim > 2 else 1
        b, h = divmod(head, per_batch)
        return (b if self.mask_heads[0] > 1 else 0, h if self.mask_heads[1] > 1 else 0)

    def entries_visible(self, rows: range, cols: range, head: int = 0) -> np.ndarray | None:
        """Boolean (len(rows), len(cols)): which entries the mask lets query head ``head``
        see; None when all are."""
        if self.mask_mod is None:
            return visible(rows, cols, self.offset)
        return self._mask_mod_entries(self.mask_mod, rows, cols, head)

    def _mask_mod_entries(self, mod: MaskMod, rows: range, cols: range, head: int) -> np.ndarray:
        return mask_entries(mod, rows, cols, *self.mask_index(head))

    def dense_visible(self) -> np.ndarray | None:
        """The whole mask, broadcasting against the scores (..., n_q, n_k); None: no mask.
        n_q x n_k booleans (per (b, h) the mask varies over): for the float64 reference."""
        rows, cols = range(self.n_q), range(self.n_k)
        if self.mask_mod is None:
            return visible(rows, cols, self.offset)
        if self.mask_heads == (1, 1):
            return self._mask_mod_entries(self.mask_mod, rows, cols, 0)
        lead = self.q.shape[:-2]
        per_head = [self._mask_mod_entries(self.mask_mod, rows, cols, h) for h in range(self.heads)]
        return np.stack(per_head).reshape(*lead, self.n_q, self.n_k)


class MaskFields(TypedDict):
    mask_mod: MaskMod | None
    mask_heads: tuple[int, int]
    block_mask: BlockMask | None


@dataclass(frozen=True, eq=False)
class TiledProblem(Problem):
    """A problem cut into query blocks of ``block_q`` rows and K/V blocks of ``block_kv``;
    under a ``mask_mod`` its ``block_mask`` sorts the tiles into full, partial and empty."""

    block_q: int
    block_kv: int
    block_mask: BlockMask | None = field(default=None, kw_only=True)

    @property
    def grid(self) -> tuple[int, int]:
        """(number of Q blocks, number of K/V blocks)."""
        return num_blocks(self.n_q, self.block_q), num_blocks(self.n_k, self.block_kv)

    def mask_fields(self) -> MaskFields:
        """The mask's fields, to build another tiled problem (a trace) with the same mask."""
        return MaskFields(
            mask_mod=self.mask_mod, mask_heads=self.mask_heads, block_mask=self.block_mask
        )

    def head_groups(self) -> list[tuple[slice, int]]:
        """The query heads that share one tile schedule, with one of them: all heads together,
        unless the block mask differs between batches or heads (then one by one)."""
        if self.block_mask is None or self.mask_heads == (1, 1):
            return [(slice(0, self.heads), 0)]
        return [(slice(h, h + 1), h) for h in range(self.heads)]

    def block_kinds(self) -> np.ndarray:
        """(B, H, Q blocks, K/V blocks) int8 tile kinds (``flashviz.core.block_mask``'s EMPTY,
        PARTIAL, FULL): the block mask's, or (causal or none) one (B, H) = (1, 1) for all."""
        if self.block_mask is not None:
            return self.block_mask.kinds
        kinds = causal_kinds(self.n_q, self.n_k, self.block_q, self.block_kv, self.offset)
        return kinds[None, None]

    def tile_kinds(self, head: int = 0) -> np.ndarray:
        """(Q blocks, K/V blocks) of "full", "partial" or "skipped" (the block mask's empty)."""
        if self.block_mask is None:
            return tile_kind_grid(self.n_q, self.n_k, self.block_q, self.block_kv, self.offset)
        b, h = self.mask_index(head)
        return np.vectorize(lambda k: _KINDS.get(int(k), "partial"))(self.block_mask.kinds[b, h])

    def tile_kind(self, i: int, j: int, head: int = 0) -> TileKind:
        """Tile (i, j)'s kind for query head ``head``."""
        if self.block_mask is None:
            return tile_kind(self._rows(i), self._cols(j), self.offset)
        b, h = self.mask_index(head)
        return _KINDS.get(int(self.block_mask.kinds[b, h, i, j]), "partial")

    def tile_visible(self, i: int, j: int, head: int = 0) -> np.ndarray | None:
        """Tile (i, j)'s mask for query head ``head``: None for a full tile (the mask is not
        evaluated), else the entries the mask lets it see."""
        if self.block_mask is None:  # causal or none: visible() sorts the tile itself
            return visible(self._rows(i), self._cols(j), self.offset)
        if self.tile_kind(i, j, head) == "full":
            return None
        return self.entries_visible(self._rows(i), self._cols(j), head)

    def schedule(self, head: int = 0) -> Iterator[QueryBlock]:
        """The tiles a tiled run computes, in order: every query block, and in it the K/V
        blocks whose tile is not skipped (empty), in increasing order
        (``flashviz.core.masking.tile_schedule`` for a causal mask)."""
        if self.block_mask is None:
            yield from tile_schedule(self.n_q, self.n_k, self.block_q, self.block_kv, self.offset)
            return
        kinds = self.tile_kinds(head)
        for i in range(self.grid[0]):
            kv = (j for j in range(self.grid[1]) if kinds[i, j] != "skipped")
            yield QueryBlock(i, self._rows(i), tuple((j, self._cols(j)) for j in kv))

    def kv_schedule(self, head: int = 0) -> Iterator[KeyBlock]:
        """The tiles a tiled backward computes, K/V blocks outside, the query blocks whose tile
        is not skipped inside (``flashviz.core.masking.kv_tile_schedule``)."""
        if self.block_mask is None:
            yield from kv_tile_schedule(
                self.n_q, self.n_k, self.block_q, self.block_kv, self.offset
            )
            return
        kinds = self.tile_kinds(head)
        for j in range(self.grid[1]):
            seen = (i for i in range(self.grid[0]) if kinds[i, j] != "skipped")
            yield KeyBlock(j, self._cols(j), tuple((i, self._rows(i)) for i in seen))

    def _rows(self, i: int) -> range:
        return block_range(i, self.block_q, self.n_q)

    def _cols(self, j: int) -> range:
        return block_range(j, self.block_kv, self.n_k)
