"""Top-left vs bottom-right causal masks when n_q != n_k: tiles, empty rows, FLOPs saved.

Row r (query) sees key c iff ``c <= r + offset``: offset 0 for "top_left" (PyTorch
``is_causal=True``), ``n_k - n_q`` for "bottom_right" (flash-attn >= 2.1); they agree when
n_q == n_k. The rules themselves live in ``flashviz.core.masking``; this module applies them to
a whole problem: the element mask, each tile's kind, the rows that see no key (only
bottom-right with n_q > n_k has them) with what o and lse are there, and the FLOPs the
tiles execute with the mask against without it.

Rows that see no key give o = 0 and lse = -inf here (the logsumexp of an empty set);
flash-attn's CUDA kernel stores lse = +inf for them (``flash_attn_lse``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flashviz.core import costs
from flashviz.core.checks import check_blocks, check_causal_align
from flashviz.core.flash import flash_attention
from flashviz.core.masking import (
    TileKind,
    causal_offset,
    num_blocks,
    tile_kind_grid,
    visible,
    visible_counts,
)
from flashviz.core.reference import attention_reference
from flashviz.lab.budget import MAX_HEAD_DIM
from flashviz.lab.patterns import make_inputs

ALIGNS = ("top_left", "bottom_right")  # display order: PyTorch's rule first
ALIGN_LABELS = {
    "top_left": "top-left (PyTorch is_causal)",
    "bottom_right": "bottom-right (flash-attn >= 2.1)",
}
TILE_KINDS: tuple[TileKind, ...] = ("full", "partial", "skipped")
MAX_N = 128  # the map draws every (query, key) cell
MAX_TILES = 32 * 32  # tiles per map: each one is an outlined shape


def element_mask(n_q: int, n_k: int, causal_align: str) -> np.ndarray:
    """(n_q, n_k) bool: True where query r sees key c (c <= r + offset)."""
    check_blocks(n_q=n_q, n_k=n_k)
    offset = causal_offset(n_q, n_k, check_causal_align(causal_align))
    mask = visible(range(n_q), range(n_k), offset)
    return np.ones((n_q, n_k), dtype=bool) if mask is None else mask


def tile_kinds(n_q: int, n_k: int, block_q: int, block_kv: int, causal_align: str) -> np.ndarray:
    """(num Q blocks, num K/V blocks) array of "full", "partial" or "skipped"."""
    check_blocks(n_q=n_q, n_k=n_k, block_q=block_q, block_kv=block_kv)
    offset = causal_offset(n_q, n_k, check_causal_align(causal_align))
    return tile_kind_grid(n_q, n_k, block_q, block_kv, offset)


def empty_rows(n_q: int, n_k: int, causal_align: str) -> np.ndarray:
    """Indices of the query rows that see no key at all (r + offset < 0), ascending."""
    check_blocks(n_q=n_q, n_k=n_k)
    offset = causal_offset(n_q, n_k, check_causal_align(causal_align))
    return np.flatnonzero(visible_counts(n_q, n_k, offset) == 0)


@dataclass(frozen=True)
class FlopCounts:
    """Forward FLOPs (QK^T and PV, 2 each per multiply-add) of one masked problem."""

    unmasked: int  # no mask: every tile executed, 4 n_q n_k d
    executed: int  # with the mask: skipped tiles excluded, partial tiles computed whole
    useful: int  # 4 d per visible (query, key) pair

    @property
    def saving(self) -> float:
        """Share of the unmasked FLOPs the mask saves by skipping tiles."""
        return 1.0 - self.executed / self.unmasked

    @property
    def wasted(self) -> int:
        """Executed on masked entries of partial tiles, then thrown away."""
        return self.executed - self.useful


def flop_counts(
    n_q: int, n_k: int, head_dim: int, block_q: int, block_kv: int, causal_align: str
) -> FlopCounts:
    """Executed FLOPs with the causal mask vs without, and the useful ones."""
    check_blocks(n_q=n_q, n_k=n_k, head_dim=head_dim, block_q=block_q, block_kv=block_kv)
    check_causal_align(causal_align)
    sizes = (n_q, n_k, head_dim, block_q, block_kv)
    return FlopCounts(
        unmasked=costs.executed_flops(*sizes, causal=False),
        executed=costs.executed_flops(*sizes, causal=True, causal_align=causal_align),
        useful=costs.attention_flops(n_q, n_k, head_dim, causal=True, causal_align=causal_align),
    )


@dataclass(frozen=True)
class Alignment:
    """Everything the causal-alignment page shows about one alignment of one problem."""

    causal_align: str
    n_q: int
    n_k: int
    block_q: int
    block_kv: int
    offset: int  # row r sees key c iff c <= r + offset
    mask: np.ndarray  # (n_q, n_k) bool
    kinds: np.ndarray  # (num Q blocks, num K/V blocks) of TILE_KINDS
    empty_rows: np.ndarray  # (n_empty,) row indices
    flops: FlopCounts

    @property
    def label(self) -> str:
        return ALIGN_LABELS[self.causal_align]

    def count(self, kind: TileKind) -> int:
        return int(np.count_nonzero(self.kinds == kind))


def analyse(
    n_q: int, n_k: int, head_dim: int, block_q: int, block_kv: int, causal_align: str
) -> Alignment:
    """Mask, tile kinds, empty rows and FLOPs of one alignment."""
    return Alignment(
        causal_align=causal_align,
        n_q=n_q,
        n_k=n_k,
        block_q=block_q,
        block_kv=block_kv,
        offset=causal_offset(n_q, n_k, check_causal_align(causal_align)),
        mask=element_mask(n_q, n_k, causal_align),
        kinds=tile_kinds(n_q, n_k, block_q, block_kv, causal_align),
        empty_rows=empty_rows(n_q, n_k, causal_align),
        flops=flop_counts(n_q, n_k, head_dim, block_q, block_kv, causal_align),
    )


def analyse_both(n_q: int, n_k: int, head_dim: int, block_q: int, block_kv: int) -> list[Alignment]:
    """``analyse`` for top-left, then bottom-right."""
    return [analyse(n_q, n_k, head_dim, block_q, block_kv, a) for a in ALIGNS]


def flash_attn_lse(lse: np.ndarray) -> np.ndarray:
    """lse as flash-attn's kernel stores it: +inf (not -inf) for rows that see no key, so
    that its backward's exp(S - L) is 0 there."""
    return np.where(np.isneginf(lse), np.inf, lse)


@dataclass(frozen=True)
class EmptyRowOutputs:
    """o and lse of the rows that see no key, from the float64 reference and from the tiled
    FA2 forward (float32 inputs) on random inputs."""

    causal_align: str
    rows: np.ndarray  # (n_empty,)
    o_reference: np.ndarray  # (n_empty, d) float64
    lse_reference: np.ndarray  # (n_empty,)
    o_flash: np.ndarray  # (n_empty, d) float32
    lse_flash: np.ndarray  # (n_empty,)

    def table(self) -> dict[str, list]:
        """One row per empty query row, for a data frame; lse printed with its sign."""

        def signed(x: np.ndarray) -> list[str]:
            return [format(float(v), "+g") for v in x]

        return {
            "query row r": [int(r) for r in self.rows],
            "keys seen": [0] * len(self.rows),
            "max |o_r| reference": [float(np.abs(o).max()) for o in self.o_reference],
            "max |o_r| flashviz": [float(np.abs(o).max()) for o in self.o_flash],
            "lse reference": signed(self.lse_reference),
            "lse flashviz": signed(self.lse_flash),
            "lse flash-attn stores": signed(flash_attn_lse(self.lse_flash)),
        }


def empty_row_outputs(
    n_q: int,
    n_k: int,
    head_dim: int,
    block_q: int,
    block_kv: int,
    causal_align: str,
    seed: int,
) -> EmptyRowOutputs:
    """Run the reference and ``flash_attention`` on random inputs (from ``seed``) and keep
    the rows that see no key."""
    check_blocks(n_q=n_q, n_k=n_k, head_dim=head_dim, block_q=block_q, block_kv=block_kv)
    q, k, v = make_inputs("random", n_q, n_k, head_dim, seed)  # (n_q, d), (n_k, d), (n_k, d)
    o_ref, lse_ref = attention_reference(q, k, v, causal=True, causal_align=causal_align)
    q32, k32, v32 = (x.astype(np.float32) for x in (q, k, v))
    o_fl, lse_fl = flash_attention(
        q32, k32, v32, block_q=block_q, block_kv=block_kv, causal=True, causal_align=causal_align
    )
    rows = empty_rows(n_q, n_k, causal_align)
    return EmptyRowOutputs(causal_align, rows, o_ref[rows], lse_ref[rows], o_fl[rows], lse_fl[rows])


def size_errors(
    n_q: int, n_k: int, head_dim: int, block_q: int, block_kv: int, seed: int
) -> list[str]:
    """Everything wrong with the page's inputs, one actionable sentence each; empty if fine."""
    named = {"n_q": n_q, "n_k": n_k, "head_dim": head_dim, "block_q": block_q, "block_kv": block_kv}
    errors = [f"`{name}` must be at least 1, got {v}." for name, v in named.items() if v < 1]
    if seed < 0:
        errors.append(f"`seed` must be a non-negative integer, got {seed}.")
    if errors:
        return errors
    if max(n_q, n_k) > MAX_N:
        errors.append(
            f"n_q = {n_q}, n_k = {n_k}: the map draws every score, so both must be at most "
            f"{MAX_N}; try n_q = {min(n_q, MAX_N)}, n_k = {min(n_k, MAX_N)}."
        )
    tiles = num_blocks(n_q, block_q) * num_blocks(n_k, block_kv)
    if tiles > MAX_TILES:
        errors.append(
            f"{tiles} tiles per map is too many to outline (at most {MAX_TILES}); use larger "
            f"blocks, e.g. block_q = {-(-n_q // 32)}, block_kv = {-(-n_k // 32)}."
        )
    if head_dim > MAX_HEAD_DIM:
        errors.append(f"`head_dim` = {head_dim} is above {MAX_HEAD_DIM}; try 64 or 128.")
    return errors
