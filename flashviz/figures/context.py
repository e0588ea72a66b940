"""What every figure of one trace shares, computed once per problem.

``figure_context(trace)`` draws the full score matrix once (for teaching only: the kernel
never stores it), downsamples it for large problems, fixes the shared score colour range,
indexes the steps by query block and lists the K/V tiles each visits (the trace's tile
schedule: a prefix under a causal mask, any set under a block mask), so that building a
step's figures stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flashviz.core.reference import masked_scores
from flashviz.core.trace import TileStep, Trace
from flashviz.core.verdict import Verdict, compare_with_reference

MAX_MAP_SIDE = 96  # the tile map shows at most this many cells per side


@dataclass(frozen=True, eq=False)
class FigureContext:
    trace: Trace
    score_map: np.ndarray  # pooled, masked scores for the tile map (NaN = masked)
    pool: int  # scores per map cell along each axis (1 = every score drawn)
    score_max: float  # shared colour range of scores: [-score_max, score_max]
    verdict: Verdict
    block_steps: dict[int, list[int]] = field(default_factory=dict)  # i -> its step indices
    kv_blocks: tuple[tuple[int, ...], ...] = ()  # i -> the K/V blocks j it visits, in order
    partial_tiles: tuple[tuple[int, int], ...] = ()  # (i, j) of the tiles the mask cuts through

    def kv_span(self, i: int) -> int:
        """K/V blocks 0 .. the last one query block i visits: the columns of its statistics
        (how many it visits under a causal mask, which skips only the blocks after them)."""
        return self.kv_blocks[i][-1] + 1 if self.kv_blocks[i] else 0

    def tiles_so_far(self, step_index: int) -> list[TileStep]:
        """Tile steps of the current query block up to and including ``step_index``."""
        i = self.trace.steps[step_index].i
        return [
            s
            for k in self.block_steps[i]
            if k <= step_index and isinstance(s := self.trace.steps[k], TileStep)
        ]


def full_scores(trace: Trace) -> np.ndarray:
    """scale * Q K^T with masked entries -inf: the matrix the kernel never materialises."""
    return masked_scores(
        trace.q, trace.k, scale=trace.scale, dtype=trace.q.dtype.type, mask=trace.dense_visible()
    )


def pool_max(s: np.ndarray, f: int) -> np.ndarray:
    """Max over f x f patches of finite entries (NaN where a patch is all masked)."""
    if f == 1:
        return np.where(np.isfinite(s), s, np.nan)
    rows, cols = -(-s.shape[0] // f) * f, -(-s.shape[1] // f) * f
    padded = np.full((rows, cols), -np.inf)
    padded[: s.shape[0], : s.shape[1]] = s
    pooled = padded.reshape(rows // f, f, cols // f, f).max(axis=(1, 3))
    return np.where(np.isfinite(pooled), pooled, np.nan)


def figure_context(trace: Trace, max_side: int = MAX_MAP_SIDE) -> FigureContext:
    s = full_scores(trace)
    pool = -(-max(trace.n_q, trace.n_k) // max_side)
    finite = s[np.isfinite(s)]
    score_max = float(np.abs(finite).max()) if finite.size else 1.0
    block_steps: dict[int, list[int]] = {}
    for k, step in enumerate(trace.steps):
        block_steps.setdefault(step.i, []).append(k)
    return FigureContext(
        trace=trace,
        score_map=pool_max(s, pool).astype(np.float32),
        pool=pool,
        score_max=score_max or 1.0,
        verdict=compare_with_reference(trace),
        block_steps=block_steps,
        kv_blocks=tuple(tuple(j for j, _ in block.kv) for block in trace.schedule()),
        partial_tiles=tuple(
            (int(i), int(j))
            for i, j in zip(*(trace.tile_kinds() == "partial").nonzero(), strict=True)
        ),
    )
