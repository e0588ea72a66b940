"""Record what FlashAttention-2's backward does, step by step, for one head.

``record_backward_trace`` runs exactly the algorithm of ``flash_attention_backward`` (same
inner step ``attn_bwd_inner``, same loop order: K/V blocks outside) and keeps, for each
step, the tile-sized arrays a teacher wants to show. Step kinds, in execution order:

- ``"delta"`` (once, first): D = rowsum(dO * O) for every row (the trace's ``delta``);
- for each K/V block j:
  - ``"load_kv"``: K_j and V_j are loaded and dK_j = dV_j = 0 start on chip;
  - ``"tile"``: one query block i folded into dK_j, dV_j, and its addition to dQ_i in HBM
    (one per tile the mask does not hide);
  - ``"write_kv"``: dK_j and dV_j are written back, once.

Memory is O(steps x tile size): no step holds an n_q x n_k array.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flashviz.core.backward_step import attn_bwd_inner, row_delta
from flashviz.core.block_mask import BlockMask
from flashviz.core.checks import (
    check_grad_output,
    check_saved,
    check_scores_fit,
    check_tiled_problem,
)
from flashviz.core.flash import flash_attention
from flashviz.core.masking import TileKind
from flashviz.core.masks import MaskMod
from flashviz.core.problem import TiledProblem


@dataclass(frozen=True, eq=False)
class BwdStep:
    """Common fields: the step's kind, K/V block index j and its keys (j = -1, no keys: the
    delta step)."""

    kind: str
    j: int
    cols: range


@dataclass(frozen=True, eq=False)
class BwdLoadStep(BwdStep):
    """K_j, V_j loaded to chip; dK_j and dV_j start at 0."""

    k_j: np.ndarray  # (bkv, d)
    v_j: np.ndarray  # (bkv, d)


@dataclass(frozen=True, eq=False)
class BwdTileStep(BwdStep):
    """Query block i folded into the gradients of K/V block j."""

    i: int
    rows: range
    tile_kind: TileKind  # "full" (the mask not evaluated) or "partial" (evaluated entry by entry)
    s: np.ndarray  # (bq, bkv) scaled, masked scores, recomputed
    p: np.ndarray  # (bq, bkv) P = exp(s - L_i), recomputed from the saved L
    dp: np.ndarray  # (bq, bkv) dO_i V_j^T
    ds: np.ndarray  # (bq, bkv) P * (dP - D_i)
    dk_prev: np.ndarray  # (bkv, d) dK_j before this tile
    dk: np.ndarray  # (bkv, d) dK_j after it
    dv_prev: np.ndarray  # (bkv, d)
    dv: np.ndarray  # (bkv, d)
    dq_add: np.ndarray  # (bq, d) scale dS K_j, added to dQ_i in HBM
    dq: np.ndarray  # (bq, d) dQ_i in HBM after the addition (partial sum)
    dq_adds: int  # additions dQ_i's rows have received so far, this one included


@dataclass(frozen=True, eq=False)
class BwdWriteStep(BwdStep):
    """dK_j and dV_j written back to HBM."""

    dk: np.ndarray  # (bkv, d)
    dv: np.ndarray  # (bkv, d)


@dataclass(frozen=True, eq=False)
class BackwardTrace(TiledProblem):
    """Everything ``record_backward_trace`` saw: the problem, the forward's saved o and
    lse, the incoming dO, D, the steps and the gradients."""

    do: np.ndarray = field(kw_only=True)  # (n_q, d)
    o: np.ndarray = field(kw_only=True)  # (n_q, d) the forward's output
    lse: np.ndarray = field(kw_only=True)  # (n_q,) the forward's logsumexp L
    delta: np.ndarray = field(kw_only=True)  # (n_q,) D = rowsum(dO * O)
    steps: list[BwdStep] = field(default_factory=list)
    dq: np.ndarray = field(kw_only=True)  # (n_q, d)
    dk: np.ndarray = field(kw_only=True)  # (n_k, d)
    dv: np.ndarray = field(kw_only=True)  # (n_k, d)

    def tile_steps(self) -> list[BwdTileStep]:
        return [s for s in self.steps if isinstance(s, BwdTileStep)]


def record_backward_trace(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    do: np.ndarray,
    *,
    block_q: int,
    block_kv: int,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    o: np.ndarray | None = None,
    lse: np.ndarray | None = None,
    mask_mod: MaskMod | None = None,
    block_mask: BlockMask | None = None,
) -> BackwardTrace:
    """Run FlashAttention-2's backward on one head (q, do (n_q, d), k, v (n_k, d)) and
    record each step, in the inputs' precision (float32 or float64).

    ``o`` and ``lse``: the forward's saved output and logsumexp; None (both): run
    ``flash_attention`` with the same arguments first. Masks as ``record_trace``'s.
    """
    problem = check_tiled_problem(
        q, k, v, block_q=block_q, block_kv=block_kv, causal=causal,
        causal_align=causal_align, scale=scale, two_d=True, mask_mod=mask_mod,
        block_mask=block_mask,
    )  # fmt: skip
    check_scores_fit(problem.q, problem.k, problem.v, problem.scale, problem.q.dtype.type)
    do_ = check_grad_output(problem, do)
    if (o is None) != (lse is None):
        raise ValueError("pass both o and lse (the forward's saved outputs), or neither")
    if o is None:
        o, lse = flash_attention(
            problem.q, problem.k, problem.v, block_q=problem.block_q,
            block_kv=problem.block_kv, causal=problem.causal,
            causal_align=problem.causal_align, scale=problem.scale,
            block_mask=problem.block_mask,
        )  # fmt: skip
    o_, lse_ = check_saved(problem, o, lse)
    return _record(problem, o_, lse_, do_)


def _record(problem: TiledProblem, o: np.ndarray, lse: np.ndarray, do: np.ndarray) -> BackwardTrace:
    q, k, v, scale = problem.q, problem.k, problem.v, problem.scale
    delta = row_delta(do, o)  # (n_q,)
    steps: list[BwdStep] = [BwdStep("delta", -1, range(0))]
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    adds = np.zeros(problem.grid[0], dtype=np.int64)  # additions each dQ_i has received
    for j, cols, q_blocks in problem.kv_schedule():
        k_j, v_j = k[cols.start : cols.stop], v[cols.start : cols.stop]
        dk_j, dv_j = np.zeros_like(k_j), np.zeros_like(v_j)
        steps.append(BwdLoadStep("load_kv", j, cols, k_j, v_j))
        for i, rows in q_blocks:
            r = slice(rows.start, rows.stop)
            new = attn_bwd_inner(
                dk_j, dv_j, q[r], k_j, v_j, do[r], lse[r], delta[r],
                scale=scale, visible=problem.tile_visible(i, j),
            )  # fmt: skip
            dq[r] += new.dq_add
            adds[i] += 1
            steps.append(
                BwdTileStep(
                    "tile",
                    j,
                    cols,
                    i,
                    rows,
                    problem.tile_kind(i, j),
                    new.s_ij,
                    new.p_ij,
                    new.dp_ij,
                    new.ds_ij,
                    dk_j,
                    new.dk_j,
                    dv_j,
                    new.dv_j,
                    new.dq_add,
                    dq[r].copy(),
                    int(adds[i]),
                )
            )
            dk_j, dv_j = new.dk_j, new.dv_j
        steps.append(BwdWriteStep("write_kv", j, cols, dk_j, dv_j))
        dk[cols.start : cols.stop], dv[cols.start : cols.stop] = dk_j, dv_j
    return BackwardTrace(
        q, k, v, scale, problem.causal, problem.causal_align, problem.block_q,
        problem.block_kv, steps, do=do, o=o, lse=lse, delta=delta, dq=dq, dk=dk, dv=dv,
        **problem.mask_fields(),
    )  # fmt: skip
