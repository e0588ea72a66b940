"""FA1 and FA2 on the same problem: running totals of HBM traffic and non-matmul FLOPs.

FA2's HBM bytes per step come from ``costs.step_hbm``; its non-matmul FLOPs from
``fa2_step_flops``, counted as ``fa1.fa1_tile_flops`` counts FA1's (one per elementwise
operation or per element a row reduction reads, whole tiles, masking not counted):

    tile:  rowmax(S) rc, max(m_i, .) r, S - m_new and exp 2 rc, e^(m_i - m_new) 2 r,
           rowsum rc, l = alpha l + rowsum 2 r, diag(alpha) O rd, + P~V rd
           -> 4 rc + 5 r + 2 rd
    write: O / l rd, L = m + log l 2 r -> rd + 2 r
    load:  0

Per tile FA1 spends 4 r + 2 rd more (the per-step normalisation and de-normalisation and
the second exponential of the local max); FA2 pays rd + 2 r once per query block. Over a
run, with R = sum of the rows of the executed tiles:

    flops(FA1) - flops(FA2) = (d + 2) (2 R - n_q)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from flashviz.core import costs
from flashviz.core.checks import check_block, check_blocks
from flashviz.core.masking import num_blocks
from flashviz.core.trace import LoadStep, Step, TileStep, Trace, WriteStep, record_steps
from flashviz.lab.fa1 import Fa1TileStep, Fa1Trace, record_fa1
from flashviz.lab.problem_spec import Tiling

# How the two runs are paired at a slider position: by step number, or by tiles done.
Pairing = Literal["step", "tiles"]
PAIRINGS: tuple[Pairing, ...] = ("step", "tiles")
MAX_CHART_TILES = 300_000  # the exact counts walk every tile: about 1 s at this size


def fa2_step_flops(step: Step, d: int) -> int:
    """Non-matmul FLOPs of one FA2 trace step (see the module docstring)."""
    if isinstance(step, LoadStep):
        return 0
    if isinstance(step, TileStep):
        r = len(step.rows)
        return 4 * r * len(step.cols) + 5 * r + 2 * r * d
    if isinstance(step, WriteStep):
        r = len(step.rows)
        return r * d + 2 * r
    raise TypeError(f"step must be a LoadStep, TileStep or WriteStep, got {type(step).__name__}")


def flops_difference(
    n_q: int, n_k: int, d: int, block_q: int, block_kv: int, causal: bool, causal_align: str
) -> int:
    """flops(FA1) - flops(FA2) = (d + 2) (2 R - n_q), R = rows summed over executed tiles."""
    tiles = costs.executed_tile_sums(n_q, n_k, block_q, block_kv, causal, causal_align)
    return (d + 2) * (2 * tiles.rows - n_q)


@dataclass(frozen=True, eq=False)
class RunCounts:
    """Per step of one run, cumulative: bytes read, bytes written, FLOPs, tiles done."""

    reads: np.ndarray  # (steps,)
    writes: np.ndarray  # (steps,)
    flops: np.ndarray  # (steps,)
    tiles: np.ndarray  # (steps,)

    @property
    def n_steps(self) -> int:
        return len(self.reads)

    def index_at(self, position: int, pair_by: Pairing) -> int:
        """The step shown at slider ``position``: the same step number (clamped to the last
        step), or the last step done before tile ``position`` + 1 starts."""
        if pair_by == "step":
            return min(position, self.n_steps - 1)
        return int(np.searchsorted(self.tiles, position, side="right")) - 1


def _cumulate(per_step: Sequence[tuple[costs.HbmTraffic, int, bool]]) -> RunCounts:
    reads, writes, flops, tiles = zip(
        *((h.reads, h.writes, f, t) for h, f, t in per_step), strict=True
    )
    return RunCounts(*(np.cumsum(x, dtype=np.int64) for x in (reads, writes, flops, tiles)))


def fa1_counts(trace: Fa1Trace) -> RunCounts:
    return _cumulate([(s.hbm, s.flops, isinstance(s, Fa1TileStep)) for s in trace.steps])


def fa2_counts(trace: Trace, itemsize: int = 4) -> RunCounts:
    d = trace.d
    return _cumulate(
        [
            (costs.step_hbm(s, d, itemsize), fa2_step_flops(s, d), isinstance(s, TileStep))
            for s in trace.steps
        ]
    )


@dataclass(frozen=True, eq=False)
class Comparison:
    """Both runs of one problem, their running totals, and naive attention's traffic."""

    fa1: Fa1Trace
    fa2: Trace
    fa1_counts: RunCounts
    fa2_counts: RunCounts
    naive: costs.HbmTraffic

    @property
    def tiles_total(self) -> int:
        return int(self.fa2_counts.tiles[-1])

    def last_position(self, pair_by: Pairing) -> int:
        """Largest slider position: the longer run's last step, or the number of tiles."""
        if pair_by == "step":
            return max(self.fa1_counts.n_steps, self.fa2_counts.n_steps) - 1
        return self.tiles_total

    def indices(self, position: int, pair_by: Pairing) -> tuple[int, int]:
        """(FA1 step index, FA2 step index) shown at slider ``position``."""
        if pair_by not in PAIRINGS:
            raise ValueError(f"pair_by must be one of {PAIRINGS}, got {pair_by!r}")
        return (
            self.fa1_counts.index_at(position, pair_by),
            self.fa2_counts.index_at(position, pair_by),
        )


def compare(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    block_q: int,
    block_kv: int,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    itemsize: int = 4,
) -> Comparison:
    """Record FA1 and FA2 on one head (q (n_q, d), k and v (n_k, d)) with the same blocks."""
    kw: Tiling = {
        "block_q": block_q,
        "block_kv": block_kv,
        "causal": causal,
        "causal_align": causal_align,
        "scale": scale,
    }
    fa1 = record_fa1(q, k, v, itemsize=itemsize, **kw)
    fa2 = record_steps(q, k, v, **kw)
    naive = costs.naive_hbm(fa2.n_q, fa2.n_k, fa2.d, itemsize)
    return Comparison(fa1, fa2, fa1_counts(fa1), fa2_counts(fa2, itemsize), naive)


@dataclass(frozen=True)
class HbmOverN:
    """HBM accesses (numbers moved, not bytes) against n = n_q = n_k, for one d and M.

    ``naive``, ``fa1``, ``fa2`` are exact counts (``flashviz.core.costs``, equal to the recorded
    steps) with FA1's blocks from M (B_r = block_q, B_c = block_kv); each run re-reads its
    inner loop's operand once per outer block, so ``fa2_swapped`` (B_r and B_c swapped)
    shows FA2 with its big block outside too; ``order_standard`` and ``order_flash`` are FA1
    Theorem 2's N d + N^2 and N^2 d^2 / M (orders of growth: constants dropped).
    """

    ns: tuple[int, ...]
    left_out: tuple[int, ...]  # n with more than ``max_tiles`` tiles: too slow to count here
    d: int
    sram_elements: int
    block_q: int
    block_kv: int
    naive: tuple[int, ...]
    fa1: tuple[int, ...]
    fa2: tuple[int, ...]
    fa2_swapped: tuple[int, ...]  # FA2 with B_r and B_c swapped: the big block outside
    order_standard: tuple[float, ...]
    order_flash: tuple[float, ...]


def hbm_over_n(
    ns: Sequence[int],
    d: int,
    sram_elements: int,
    causal: bool = False,
    max_tiles: int = MAX_CHART_TILES,
) -> HbmOverN:
    """Counts for each n in ``ns`` with FA1's block sizes B_r, B_c from ``sram_elements``;
    sizes with more than ``max_tiles`` tiles are left out (the exact counts walk the tiles)."""
    d, sram_elements = check_blocks(d=d, sram_elements=sram_elements)
    ns = [check_block("n", n) for n in ns]
    if not ns:
        raise ValueError("ns must hold at least one size n")
    b_r, b_c = costs.fa1_block_sizes(sram_elements, d)
    tiles = {n: num_blocks(n, min(b_r, n)) * num_blocks(n, min(b_c, n)) for n in ns}
    ns = [n for n in ns if tiles[n] <= max_tiles]
    return HbmOverN(
        ns=tuple(ns),
        left_out=tuple(n for n in tiles if tiles[n] > max_tiles),
        d=d,
        sram_elements=sram_elements,
        block_q=b_r,
        block_kv=b_c,
        naive=tuple(costs.naive_hbm(n, n, d, itemsize=1).total for n in ns),
        fa1=tuple(
            costs.fa1_hbm(n, n, d, min(b_r, n), min(b_c, n), itemsize=1, causal=causal).total
            for n in ns
        ),
        fa2=tuple(
            costs.fa2_hbm(n, n, d, min(b_r, n), min(b_c, n), itemsize=1, causal=causal).total
            for n in ns
        ),
        fa2_swapped=tuple(
            costs.fa2_hbm(n, n, d, min(b_c, n), min(b_r, n), itemsize=1, causal=causal).total
            for n in ns
        ),
        order_standard=tuple(costs.io_order_standard(n, d) for n in ns),
        order_flash=tuple(costs.io_order_flash(n, d, sram_elements) for n in ns),
    )
