"""What attention costs: FLOPs, on-chip bytes, HBM traffic, and the memory saving.

Counts follow the papers: standard attention (FA1 Algorithm 0) writes S and P to HBM;
FlashAttention-1 (FA1 Algorithm 1) keeps K/V blocks outside and reads/writes O, l, m at
every tile; FlashAttention-2 (FA2 Algorithm 1) keeps Q blocks outside and writes O, L once.
Byte counts take ``itemsize`` bytes per element (4 for float32).

Under a FlexAttention block mask (``block_mask_costs``): useful FLOPs count the visible
pairs, executed FLOPs the full and partial tiles, and the full tiles save the mask's
evaluation.

The backward: standard attention's backward (FA1 Algorithm 3) reads the stored P and writes
dP and dS to HBM; FA2's backward (FA2 Algorithm 2) zeroes dQ in HBM, forms D, recomputes P
from the saved logsumexp, keeps dK_j, dV_j on chip and adds to dQ_i in HBM at every tile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from flashviz.core.backward_trace import BwdLoadStep, BwdStep, BwdTileStep, BwdWriteStep
from flashviz.core.block_mask import EMPTY, FULL, PARTIAL, BlockMask
from flashviz.core.masking import kv_blocks_for, mask_offset, tile_schedule, visible_counts
from flashviz.core.trace import LoadStep, Step, TileStep, WriteStep


def attention_flops(
    n_q: int, n_k: int, d: int, causal: bool = False, causal_align: str = "bottom_right"
) -> int:
    """Useful FLOPs of the forward: 4 d per visible (query, key) pair (QK^T and PV, 2 each).

    Without a mask this is 4 n_q n_k d. Softmax work is not counted, as in the papers.
    """
    offset = mask_offset(n_q, n_k, causal, causal_align)
    return 4 * d * int(visible_counts(n_q, n_k, offset).sum())


def executed_tiles(
    n_q: int, n_k: int, block_q: int, block_kv: int, causal: bool, causal_align: str
) -> list[tuple[range, range]]:
    """(rows, cols) of every tile a tiled kernel computes, in FA2 order (Q blocks outside)."""
    offset = mask_offset(n_q, n_k, causal, causal_align)
    schedule = tile_schedule(n_q, n_k, block_q, block_kv, offset)
    return [(rows, cols) for _, rows, kv in schedule for _, cols in kv]


@dataclass(frozen=True)
class TileSums:
    """Sums over the executed tiles, from one line per query block (a query block visits
    K/V blocks 0, 1, ... up to its last visible one, so its tiles cover that many columns)."""

    rows: int  # sum of len(rows) over the tiles
    cols: int  # sum of len(cols)
    entries: int  # sum of len(rows) * len(cols)


def executed_tile_sums(
    n_q: int, n_k: int, block_q: int, block_kv: int, causal: bool, causal_align: str
) -> TileSums:
    """``executed_tiles`` summed, in O(n_q / block_q) steps instead of one per tile."""
    offset = mask_offset(n_q, n_k, causal, causal_align)
    rows_sum = cols_sum = entries = 0
    for start in range(0, n_q, block_q):
        rows = range(start, min(n_q, start + block_q))
        visited = kv_blocks_for(rows, block_kv, n_k, offset)
        cols = min(n_k, visited * block_kv)  # the last K/V block may be short
        rows_sum += len(rows) * visited
        cols_sum += cols
        entries += len(rows) * cols
    return TileSums(rows_sum, cols_sum, entries)


def executed_flops(
    n_q: int,
    n_k: int,
    d: int,
    block_q: int,
    block_kv: int,
    causal: bool = False,
    causal_align: str = "bottom_right",
) -> int:
    """FLOPs the tiles execute: whole tiles, masked entries included, skipped tiles excluded."""
    return 4 * d * executed_tile_sums(n_q, n_k, block_q, block_kv, causal, causal_align).entries


@dataclass(frozen=True)
class SramBytes:
    """On-chip bytes of one FA2 thread block: inputs tiles, score tile, accumulator, stats."""

    q_i: int
    k_j: int
    v_j: int
    s_ij: int
    o_i: int
    m_l: int

    @property
    def total(self) -> int:
        return self.q_i + self.k_j + self.v_j + self.s_ij + self.o_i + self.m_l


def sram_bytes(block_q: int, block_kv: int, d: int, itemsize: int = 4) -> SramBytes:
    """Bytes on chip while one tile is processed (S_ij and P~_ij share one buffer)."""
    return SramBytes(
        q_i=block_q * d * itemsize,
        k_j=block_kv * d * itemsize,
        v_j=block_kv * d * itemsize,
        s_ij=block_q * block_kv * itemsize,
        o_i=block_q * d * itemsize,
        m_l=2 * block_q * itemsize,
    )


@dataclass(frozen=True)
class HbmTraffic:
    """Bytes read from and written to HBM (off-chip memory)."""

    reads: int
    writes: int

    @property
    def total(self) -> int:
        return self.reads + self.writes


def naive_hbm(n_q: int, n_k: int, d: int, itemsize: int = 4) -> HbmTraffic:
    """Standard attention: read Q, K, write S; read S, write P; read P, V, write O."""
    reads = (n_q + n_k) * d + n_q * n_k + (n_q * n_k + n_k * d)
    writes = n_q * n_k + n_q * n_k + n_q * d
    return HbmTraffic(reads * itemsize, writes * itemsize)


def fa2_hbm(
    n_q: int,
    n_k: int,
    d: int,
    block_q: int,
    block_kv: int,
    causal: bool = False,
    causal_align: str = "bottom_right",
    itemsize: int = 4,
) -> HbmTraffic:
    """FA2: each Q block read once, K_j and V_j read per executed tile, O and L written once."""
    tiles = executed_tile_sums(n_q, n_k, block_q, block_kv, causal, causal_align)
    reads = n_q * d + 2 * tiles.cols * d
    writes = n_q * (d + 1)
    return HbmTraffic(reads * itemsize, writes * itemsize)


def fa1_hbm(
    n_q: int,
    n_k: int,
    d: int,
    block_q: int,
    block_kv: int,
    causal: bool = False,
    causal_align: str = "bottom_right",
    itemsize: int = 4,
) -> HbmTraffic:
    """FA1: O, l, m initialised in HBM; K_j, V_j read once; per tile read Q_i, O_i, l_i, m_i
    and write O_i, l_i, m_i back (outer loop over K/V blocks, inner over Q blocks)."""
    tiles = executed_tile_sums(n_q, n_k, block_q, block_kv, causal, causal_align)
    reads = 2 * n_k * d + tiles.rows * (2 * d + 2)
    writes = n_q * (d + 2) + tiles.rows * (d + 2)
    return HbmTraffic(reads * itemsize, writes * itemsize)


def step_hbm(step: Step, d: int, itemsize: int = 4) -> HbmTraffic:
    """HBM traffic of one FA2 trace step: load Q_i, load K_j and V_j, or write O_i and L_i."""
    if isinstance(step, LoadStep):
        return HbmTraffic(len(step.rows) * d * itemsize, 0)
    if isinstance(step, TileStep):
        return HbmTraffic(2 * len(step.cols) * d * itemsize, 0)
    if isinstance(step, WriteStep):
        return HbmTraffic(0, len(step.rows) * (d + 1) * itemsize)
    raise TypeError(f"step must be a LoadStep, TileStep or WriteStep, got {type(step).__name__}")


def io_order_standard(n: int, d: int) -> float:
    """FA1 Theorem 2: standard attention makes Theta(N d + N^2) HBM accesses."""
    return float(n * d + n * n)


def io_order_flash(n: int, d: int, sram_elements: int) -> float:
    """FA1 Theorem 2: FlashAttention makes Theta(N^2 d^2 / M) HBM accesses (M in elements)."""
    return n * n * d * d / sram_elements


def fa1_block_sizes(sram_elements: int, d: int) -> tuple[int, int]:
    """FA1's block sizes from the on-chip size M (elements): B_r = min(ceil(M/4d), d),
    B_c = ceil(M/4d). Returns (B_r, B_c) = (block_q, block_kv)."""
    b_c = math.ceil(sram_elements / (4 * d))
    return min(b_c, d), b_c


@dataclass(frozen=True)
class MemorySavings:
    """Extra memory of naive attention (the n x n matrix) vs flash (tiles + m, l vectors)."""

    n: int
    naive_bytes: int
    flash_bytes: int

    @property
    def reduction_factor(self) -> float:
        return self.naive_bytes / self.flash_bytes

    def __str__(self) -> str:
        return (
            f"n={self.n}: naive={self.naive_bytes / 2**20:.1f} MiB, "
            f"flash={self.flash_bytes / 2**10:.1f} KiB, {self.reduction_factor:.0f}x reduction"
        )


def memory_savings(
    n: int, d: int, block_q: int = 64, block_kv: int = 64, itemsize: int = 4
) -> MemorySavings:
    """Working memory beyond inputs and output: naive holds S (n x n); flash one tile's
    buffers and the m, l vectors (as the seed implementation counted)."""
    return MemorySavings(
        n=n,
        naive_bytes=n * n * itemsize,
        flash_bytes=sram_bytes(block_q, block_kv, d, itemsize).total + 2 * n * itemsize,
    )


# The backward pass


def backward_flops(
    n_q: int, n_k: int, d: int, causal: bool = False, causal_align: str = "bottom_right"
) -> int:
    """Useful FLOPs of the backward: 8 d per visible (query, key) pair, 2 d each for
    dV = P^T dO, dP = dO V^T, dQ = dS K and dK = dS^T Q (twice the forward's 4 d). The
    recomputation of S is not useful work: ``recompute_flops``; with it a tile executes
    10 d per entry, the 2.5x the forward that FA2's paper counts for the backward."""
    return 2 * attention_flops(n_q, n_k, d, causal, causal_align)


def recompute_flops(
    n_q: int,
    n_k: int,
    d: int,
    block_q: int,
    block_kv: int,
    causal: bool = False,
    causal_align: str = "bottom_right",
) -> int:
    """FLOPs FA2's backward spends recomputing S_ij = Q_i K_j^T (2 d per entry of each
    executed tile) instead of reading a stored P: the price of not storing it."""
    return executed_flops(n_q, n_k, d, block_q, block_kv, causal, causal_align) // 2


def backward_executed_flops(
    n_q: int,
    n_k: int,
    d: int,
    block_q: int,
    block_kv: int,
    causal: bool = False,
    causal_align: str = "bottom_right",
) -> int:
    """FLOPs FA2's backward tiles execute: 10 d per entry of each executed tile (the four
    products above and the recomputation of S_ij), masked entries included."""
    return 5 * recompute_flops(n_q, n_k, d, block_q, block_kv, causal, causal_align)


def naive_backward_hbm(n_q: int, n_k: int, d: int, itemsize: int = 4) -> HbmTraffic:
    """Standard attention's backward (FA1 Algorithm 3): read P, dO, write dV; read dO, V,
    write dP; read P, dP, write dS; read dS, K, write dQ; read dS, Q, write dK."""
    reads = 5 * n_q * n_k + 3 * n_q * d + 2 * n_k * d
    writes = 2 * n_q * n_k + n_q * d + 2 * n_k * d
    return HbmTraffic(reads * itemsize, writes * itemsize)


def backward_step_hbm(step: BwdStep, n_q: int, d: int, itemsize: int = 4) -> HbmTraffic:
    """HBM traffic of one FA2 backward trace step.

    - ``delta`` (before the loops, all n_q rows): read O and dO, write D, and write dQ = 0
      (Algorithm 2 zeroes dQ in HBM: every tile adds to it, and rows no tile visits keep 0);
    - ``load_kv``: read K_j and V_j;
    - ``tile``: read Q_i, dO_i, L_i, D_i, and dQ_i, which the addition writes back. Algorithm 2
      also lists O_i among the inner loop's loads; once D is formed no tile uses it, so it
      is not counted;
    - ``write_kv``: write dK_j and dV_j.
    """
    if isinstance(step, BwdTileStep):
        rows = len(step.rows)
        return HbmTraffic(rows * (3 * d + 2) * itemsize, rows * d * itemsize)
    if isinstance(step, BwdLoadStep):
        return HbmTraffic(2 * len(step.cols) * d * itemsize, 0)
    if isinstance(step, BwdWriteStep):
        return HbmTraffic(0, 2 * len(step.cols) * d * itemsize)
    if isinstance(step, BwdStep) and step.kind == "delta":
        return HbmTraffic(2 * n_q * d * itemsize, n_q * (d + 1) * itemsize)
    raise TypeError(f"step must be a step of a backward trace, got {type(step).__name__}")


def backward_step_flops(step: BwdStep, d: int) -> int:
    """FLOPs one FA2 backward trace step executes: 10 d per tile entry (recomputation
    included); none for loads and writes (D's 2 d per row is not counted, as softmax work
    is not in the forward)."""
    return 10 * d * len(step.rows) * len(step.cols) if isinstance(step, BwdTileStep) else 0


def fa2_backward_hbm(
    n_q: int,
    n_k: int,
    d: int,
    block_q: int,
    block_kv: int,
    causal: bool = False,
    causal_align: str = "bottom_right",
    itemsize: int = 4,
) -> HbmTraffic:
    """FA2's backward, the sum of ``backward_step_hbm`` over its steps: D and dQ = 0 once;
    K_j and V_j read once and dK_j, dV_j written once per K/V block (every block, even one
    the mask hides entirely: its gradients are 0); Q_i, dO_i, L_i, D_i read and dQ_i read
    and written per executed tile."""
    tiles = executed_tile_sums(n_q, n_k, block_q, block_kv, causal, causal_align)
    reads = 2 * n_q * d + 2 * n_k * d + tiles.rows * (3 * d + 2)
    writes = n_q * (d + 1) + 2 * n_k * d + tiles.rows * d
    return HbmTraffic(reads * itemsize, writes * itemsize)


def backward_memory_saved(n_q: int, n_k: int, itemsize: int = 4) -> int:
    """Bytes per head the backward does without by recomputing P: the n_q x n_k matrix P
    that standard attention stores in the forward for its backward."""
    return n_q * n_k * itemsize


@dataclass(frozen=True)
class MaskCosts:
    """What a block mask's tiles cost and save, summed over its (B, H) (one head's for a
    mask the same for all)."""

    useful_flops: int  # 4 d per visible (query, key) pair
    executed_flops: int  # 4 d per entry of every full or partial tile (masked entries too)
    dense_flops: int  # 4 d n_q n_k: every tile computed, none skipped
    mask_evaluations: int  # entries of the partial tiles: the mask evaluated entry by entry
    evaluations_saved: int  # entries of the full tiles: computed without evaluating it
    full_tiles: int
    partial_tiles: int
    empty_tiles: int  # never visited
    hbm: HbmTraffic  # FA2's: Q_i once, K_j and V_j per visited tile, O_i and L_i once


def block_mask_costs(block_mask: BlockMask, d: int, itemsize: int = 4) -> MaskCosts:
    """The forward's costs under ``block_mask`` with head dimension ``d``."""
    (n_q, n_k), (block_q, block_kv) = block_mask.seq_lengths, block_mask.block_size
    rows = np.diff(np.append(np.arange(0, n_q, block_q), n_q))  # (Q blocks,) rows of each
    cols = np.diff(np.append(np.arange(0, n_k, block_kv), n_k))  # (K/V blocks,)
    entries = rows[:, None] * cols[None, :]  # (Q blocks, K/V blocks) entries of each tile
    kinds = block_mask.kinds  # (B, H, Q blocks, K/V blocks)
    visited = kinds != EMPTY
    heads = kinds.shape[0] * kinds.shape[1]
    reads = heads * n_q * d + 2 * d * int((visited * cols).sum())
    return MaskCosts(
        useful_flops=4 * d * int(block_mask.seen.sum()),
        executed_flops=4 * d * int((visited * entries).sum()),
        dense_flops=4 * d * n_q * n_k * heads,
        mask_evaluations=int(((kinds == PARTIAL) * entries).sum()),
        evaluations_saved=int(((kinds == FULL) * entries).sum()),
        full_tiles=int((kinds == FULL).sum()),
        partial_tiles=int((kinds == PARTIAL).sum()),
        empty_tiles=int((kinds == EMPTY).sum()),
        hbm=HbmTraffic(reads * itemsize, heads * n_q * (d + 1) * itemsize),
    )
