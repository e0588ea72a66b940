"""FlashAttention-1's forward, recorded step by step, for one head.

FA1 (Dao et al. 2022, arXiv 2205.14135, Appendix B, Algorithm 2 without dropout) swaps
FA2's loops and keeps the softmax state in HBM:

    O = 0 (n_q, d), l = 0 (n_q,), m = -inf (n_q,)                 # initialised in HBM
    for each K/V block j:                                          # outer loop: K/V blocks
        load K_j, V_j
        for each query block i:                                    # inner loop: Q blocks
            load Q_i, O_i, l_i, m_i
            S_ij = tau Q_i K_j^T, masked
            m~_ij = rowmax(S_ij); P~_ij = exp(S_ij - m~_ij); l~_ij = rowsum(P~_ij)
            m_new = max(m_i, m~_ij)
            l_new = e^(m_i - m_new) l_i + e^(m~_ij - m_new) l~_ij
            write O_i = diag(l_new)^-1 (diag(l_i) e^(m_i - m_new) O_i + e^(m~_ij - m_new) P~_ij V_j)
            write l_i = l_new, m_i = m_new

O is normalised at every step (and de-normalised by diag(l_i) at the next one); FA2
normalises once, at the end. The tile's local statistics (m~, P~, l~, P~ V) come from
``flashviz.core.inner_step.attn_fwd_inner`` run on an empty state. Tiles hidden by the causal mask
are skipped, as in FA2; every K/V block is loaded once (as ``costs.fa1_hbm`` counts).

Non-matmul FLOPs (``fa1_tile_flops``): one per elementwise operation or per element a row
reduction reads, on whole tiles (masked entries included); masking and the -inf guard are
not counted (FA2 does the same). For a tile of r rows, c keys, head dim d:

    rowmax 1 rc, S - m~ and exp 2 rc, rowsum 1 rc                      -> 4 rc
    max(m_i, m~) 1 r, e^(m_i - m_new) 2 r, e^(m~ - m_new) 2 r, l_new 3 r -> 8 r
    l_i e^(m_i - m_new) 1 r; times O_i 1 rd, e^(..) P~V 1 rd, + 1 rd, / l_new 1 rd
                                                                         -> r + 4 rd
    total 4 rc + 9 r + 4 rd
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flashviz.core.checks import check_block, check_tiled_problem
from flashviz.core.costs import HbmTraffic
from flashviz.core.inner_step import attn_fwd_inner, initial_state
from flashviz.core.masking import (
    TileKind,
    block_range,
    tile_kind,
    visible,
)
from flashviz.core.problem import TiledProblem


def fa1_tile_flops(rows: int, cols: int, d: int) -> int:
    """Non-matmul FLOPs of one FA1 tile (see the module docstring): 4rc + 9r + 4rd."""
    return 4 * rows * cols + 9 * rows + 4 * rows * d


@dataclass(frozen=True, eq=False)
class Fa1Step:
    """Common fields: the step's kind, its HBM traffic (bytes) and non-matmul FLOPs."""

    kind: str
    hbm: HbmTraffic
    flops: int


@dataclass(frozen=True, eq=False)
class Fa1InitStep(Fa1Step):
    """O = 0, l = 0, m = -inf written to HBM for all n_q rows."""


@dataclass(frozen=True, eq=False)
class Fa1LoadStep(Fa1Step):
    """K block j and V block j loaded to chip; they stay there for the whole inner loop."""

    j: int
    cols: range


@dataclass(frozen=True, eq=False)
class Fa1TileStep(Fa1Step):
    """Query block i read from HBM with its state, tile (i, j) folded in, state written back."""

    i: int
    j: int
    rows: range
    cols: range
    tile_kind: TileKind  # "full" or "partial" (crosses the causal diagonal)
    s: np.ndarray  # (bq, bkv) scaled, masked scores
    p: np.ndarray  # (bq, bkv) P~ = exp(s - m~), local to this tile
    m_tilde: np.ndarray  # (bq,) rowmax(s)
    l_tilde: np.ndarray  # (bq,) rowsum(P~)
    m_prev: np.ndarray  # (bq,) m_i read from HBM
    l_prev: np.ndarray  # (bq,) l_i read from HBM
    o_prev: np.ndarray  # (bq, d) O_i read from HBM (normalised)
    m: np.ndarray  # (bq,) m_new written to HBM
    l: np.ndarray  # (bq,) l_new written to HBM
    o: np.ndarray  # (bq, d) O_i written to HBM (normalised again)

    @property
    def alpha(self) -> np.ndarray:
        """e^(m_i - m_new): rescale of the old state (0 for a row with no key before)."""
        return _exp_diff(self.m_prev, self.m)

    @property
    def beta(self) -> np.ndarray:
        """e^(m~_ij - m_new): rescale of this tile's local statistics."""
        return _exp_diff(self.m_tilde, self.m)


def _exp_diff(m_old: np.ndarray, m_new: np.ndarray) -> np.ndarray:
    """e^(m_old - m_new), subtracting 0 where m_new is still -inf (no key seen yet)."""
    return np.exp(m_old - np.where(np.isneginf(m_new), 0, m_new))


@dataclass(frozen=True, eq=False)
class Fa1Trace(TiledProblem):
    """Everything ``record_fa1`` saw: the problem, the steps, and the final HBM arrays."""

    steps: list[Fa1Step] = field(default_factory=list)
    o: np.ndarray = field(kw_only=True)  # (n_q, d) O in HBM at the end
    l: np.ndarray = field(kw_only=True)  # (n_q,)
    m: np.ndarray = field(kw_only=True)  # (n_q,)

    @property
    def lse(self) -> np.ndarray:
        """L = m + log l from the final HBM arrays (-inf for a row that sees no key)."""
        with np.errstate(divide="ignore"):
            return self.m + np.log(self.l)

    def tile_steps(self) -> list[Fa1TileStep]:
        return [s for s in self.steps if isinstance(s, Fa1TileStep)]


def _merge(
    m_i: np.ndarray, l_i: np.ndarray, o_i: np.ndarray, m_t: np.ndarray, l_t: np.ndarray,
    pv: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Fold a tile's local (m~, l~, P~ V) into the normalised HBM state (m_i, l_i, O_i)."""
    # m_new = max(m_i, m~_ij)
    m_new = np.maximum(m_i, m_t)  # (bq,)
    a, b = _exp_diff(m_i, m_new), _exp_diff(m_t, m_new)  # (bq,) each
    # l_new = e^(m_i - m_new) l_i + e^(m~ - m_new) l~
    l_new = a * l_i + b * l_t  # (bq,)
    # O_i = diag(l_new)^-1 (diag(l_i) e^(m_i - m_new) O_i + e^(m~ - m_new) P~ V)
    o_new = ((l_i * a)[:, None] * o_i + b[:, None] * pv) / np.where(l_new == 0, 1, l_new)[:, None]
    return m_new, l_new, o_new  # (bq,), (bq,), (bq, d)


def record_fa1(
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
) -> Fa1Trace:
    """Run FlashAttention-1 on one head (q (n_q, d), k and v (n_k, d)), recording each step.

    ``itemsize`` is the bytes per number the HBM counts use (4: float32, as in
    ``flashviz.core.costs``). Computes in the inputs' precision; rows that see no key end with
    o = 0, l = 0, m = -inf (lse = -inf). Steps: one ``init``, then per K/V block j one
    ``load_kv`` and one ``tile`` per query block whose tile (i, j) the mask does not skip.
    """
    prob = check_tiled_problem(
        q, k, v, block_q=block_q, block_kv=block_kv, causal=causal,
        causal_align=causal_align, scale=scale, two_d=True,
    )  # fmt: skip
    itemsize = check_block("itemsize", itemsize)
    n_q, n_k, d, offset = prob.n_q, prob.n_k, prob.d, prob.offset
    dtype = prob.q.dtype.type
    # O = 0, l = 0, m = -inf in HBM
    m_hbm, l_hbm, o_hbm = initial_state((), n_q, d, dtype)  # (n_q,), (n_q,), (n_q, d)
    steps: list[Fa1Step] = [Fa1InitStep("init", HbmTraffic(0, n_q * (d + 2) * itemsize), 0)]
    schedule = list(prob.schedule())
    for j in range(prob.grid[1]):  # outer loop: K/V blocks
        cols = block_range(j, prob.block_kv, n_k)
        k_j, v_j = prob.k[cols.start : cols.stop], prob.v[cols.start : cols.stop]
        steps.append(
            Fa1LoadStep("load_kv", HbmTraffic(2 * len(cols) * d * itemsize, 0), 0, j, cols)
        )
        for i, rows, kv in schedule:  # inner loop: Q blocks
            if j >= len(kv):  # kv holds K/V blocks 0 to len(kv) - 1
                continue  # tile hidden by the causal mask
            r = slice(rows.start, rows.stop)
            m_i, l_i, o_i = m_hbm[r].copy(), l_hbm[r].copy(), o_hbm[r].copy()
            # m~ = rowmax(S_ij), P~ = exp(S_ij - m~), l~ = rowsum(P~), P~ V_j
            local = attn_fwd_inner(
                *initial_state((), len(rows), d, dtype),
                prob.q[r],
                k_j,
                v_j,
                scale=prob.scale,
                visible=visible(rows, cols, offset),
            )
            m_new, l_new, o_new = _merge(m_i, l_i, o_i, local.m_i, local.l_i, local.o_i)
            m_hbm[r], l_hbm[r], o_hbm[r] = m_new, l_new, o_new
            hbm = HbmTraffic(len(rows) * (2 * d + 2) * itemsize, len(rows) * (d + 2) * itemsize)
            steps.append(
                Fa1TileStep(
                    "tile",
                    hbm,
                    fa1_tile_flops(len(rows), len(cols), d),
                    i,
                    j,
                    rows,
                    cols,
                    tile_kind(rows, cols, offset),
                    local.s_ij,
                    local.p_ij,
                    local.m_i,
                    local.l_i,
                    m_i,
                    l_i,
                    o_i,
                    m_new,
                    l_new,
                    o_new,
                )
            )
    return Fa1Trace(
        prob.q, prob.k, prob.v, prob.scale, prob.causal, prob.causal_align, prob.block_q,
        prob.block_kv, steps, o=o_hbm, l=l_hbm, m=m_hbm,
    )  # fmt: skip
