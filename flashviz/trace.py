"""Record what FlashAttention-2 does, step by step, for one head.

``record_trace`` runs exactly the algorithm of ``flash_attention`` (same inner step, same
loop order) and keeps, for each step, the tile-sized arrays a teacher wants to show.
Step kinds, in execution order for each query block i:

- ``"load_q"``: Q block i is loaded and its state initialised (m = -inf, l = 0, o = 0);
- ``"tile"``: one K/V block j folded into the state (one per tile not skipped by the mask);
- ``"write"``: the state is normalised once (o / l) and O_i, L_i are written back.

Memory is O(steps x tile size): no step holds an n_q x n_k array.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flashviz.checks import check_block, check_problem
from flashviz.masking import (
    TileKind,
    block_range,
    kv_blocks_for,
    mask_offset,
    num_blocks,
    tile_kind,
    visible,
)
from flashviz.stepper import attn_fwd_inner, finalize, initial_state


@dataclass(frozen=True, eq=False)
class Step:
    """Common fields: the step's kind, query block index i and its query rows."""

    kind: str
    i: int
    rows: range


@dataclass(frozen=True, eq=False)
class LoadStep(Step):
    """Q block i loaded to chip; the state starts empty."""

    q_i: np.ndarray  # (bq, d)
    m: np.ndarray  # (bq,) all -inf
    l: np.ndarray  # (bq,) all 0
    o: np.ndarray  # (bq, d) all 0


@dataclass(frozen=True, eq=False)
class TileStep(Step):
    """K/V block j folded into the state of Q block i."""

    j: int
    cols: range
    tile_kind: TileKind  # "full" or "partial" (crosses the causal diagonal)
    s: np.ndarray  # (bq, bkv) scaled, masked scores; masked entries are -inf
    p: np.ndarray  # (bq, bkv) P~ = exp(s - m)
    m_prev: np.ndarray  # (bq,)
    m: np.ndarray  # (bq,)
    alpha: np.ndarray  # (bq,) exp(m_prev - m)
    l_prev: np.ndarray  # (bq,)
    l: np.ndarray  # (bq,)
    o_prev: np.ndarray  # (bq, d) unnormalised accumulator before this tile
    o: np.ndarray  # (bq, d) unnormalised accumulator after this tile

    @property
    def o_rescaled(self) -> np.ndarray:
        """diag(alpha) o_prev: the old accumulator after rescaling, before adding P~ V."""
        return self.alpha[:, None] * self.o_prev

    @property
    def pv(self) -> np.ndarray:
        """P~ V: what this tile adds to the rescaled accumulator."""
        return self.o - self.o_rescaled

    @property
    def max_changed(self) -> np.ndarray:
        """Rows whose running max rose at this tile (the ones that get rescaled)."""
        return self.m > self.m_prev


@dataclass(frozen=True, eq=False)
class WriteStep(Step):
    """Q block i normalised once and written back: O_i = o / l, L_i = m + log(l)."""

    m: np.ndarray  # (bq,)
    l: np.ndarray  # (bq,)
    o_unnormalized: np.ndarray  # (bq, d)
    o: np.ndarray  # (bq, d) final output rows
    lse: np.ndarray  # (bq,)


@dataclass(frozen=True, eq=False)
class Trace:
    """Everything ``record_trace`` saw: the problem, the steps, and the final output."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    block_q: int
    block_kv: int
    causal: bool
    causal_align: str
    scale: float
    steps: list[Step] = field(default_factory=list)
    o: np.ndarray | None = None  # (n_q, d)
    lse: np.ndarray | None = None  # (n_q,)

    @property
    def n_q(self) -> int:
        return self.q.shape[0]

    @property
    def n_k(self) -> int:
        return self.k.shape[0]

    @property
    def d(self) -> int:
        return self.q.shape[1]

    @property
    def offset(self) -> int | None:
        return mask_offset(self.n_q, self.n_k, self.causal, self.causal_align)

    @property
    def grid(self) -> tuple[int, int]:
        """(number of Q blocks, number of K/V blocks)."""
        return num_blocks(self.n_q, self.block_q), num_blocks(self.n_k, self.block_kv)

    def tile_steps(self) -> list[TileStep]:
        return [s for s in self.steps if isinstance(s, TileStep)]

    def tile_kinds(self) -> np.ndarray:
        """(n_q blocks, n_kv blocks) array of "full" / "partial" / "skipped"."""
        n_i, n_j = self.grid
        return np.array(
            [
                [
                    tile_kind(
                        block_range(i, self.block_q, self.n_q),
                        block_range(j, self.block_kv, self.n_k),
                        self.offset,
                    )
                    for j in range(n_j)
                ]
                for i in range(n_i)
            ]
        )


def record_trace(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    block_q: int,
    block_kv: int,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
) -> Trace:
    """Run FlashAttention-2 on one head (q (n_q, d), k and v (n_k, d)) and record each step."""
    prob = check_problem(q, k, v, scale, causal_align, two_d=True)
    block_q = check_block("block_q", block_q)
    block_kv = check_block("block_kv", block_kv)
    n_q, n_k, d = prob.n_q, prob.n_k, prob.d
    offset = mask_offset(n_q, n_k, causal, causal_align)
    dtype = prob.q.dtype.type
    steps: list[Step] = []
    o = np.empty((n_q, d), dtype=dtype)
    lse = np.empty(n_q, dtype=dtype)

    for i in range(num_blocks(n_q, block_q)):
        rows = block_range(i, block_q, n_q)
        q_i = prob.q[rows.start : rows.stop]
        m_i, l_i, o_i = initial_state((), len(rows), d, dtype)
        steps.append(LoadStep("load_q", i, rows, q_i, m_i, l_i, o_i))
        for j in range(kv_blocks_for(rows, block_kv, n_k, offset)):
            cols = block_range(j, block_kv, n_k)
            new = attn_fwd_inner(
                m_i,
                l_i,
                o_i,
                q_i,
                prob.k[cols.start : cols.stop],
                prob.v[cols.start : cols.stop],
                scale=prob.scale,
                visible=visible(rows, cols, offset),
            )
            kind = tile_kind(rows, cols, offset)
            steps.append(
                TileStep(
                    "tile",
                    i,
                    rows,
                    j,
                    cols,
                    kind,
                    new.s_ij,
                    new.p_ij,
                    m_i,
                    new.m_i,
                    new.alpha,
                    l_i,
                    new.l_i,
                    o_i,
                    new.o_i,
                )
            )
            m_i, l_i, o_i = new.m_i, new.l_i, new.o_i
        o_out, lse_out = finalize(m_i, l_i, o_i)
        steps.append(WriteStep("write", i, rows, m_i, l_i, o_i, o_out, lse_out))
        o[rows.start : rows.stop], lse[rows.start : rows.stop] = o_out, lse_out

    return Trace(
        prob.q, prob.k, prob.v, block_q, block_kv, causal, causal_align, prob.scale, steps, o, lse
    )
