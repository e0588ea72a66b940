"""Record what FlashAttention-2 does, step by step, for one head.

``record_steps`` runs exactly the algorithm of ``flash_attention`` (same inner step, same
loop order) and keeps, for each step, the tile-sized arrays a teacher wants to show.
Step kinds, in execution order for each query block i:

- ``"load_q"``: Q block i is loaded and its state initialised (m = -inf, l = 0, o = 0);
- ``"tile"``: one K/V block j folded into the state (one per tile not skipped by the mask);
- ``"write"``: the state is normalised once (o / l) and O_i, L_i are written back.

``precision`` stores the inputs in float16 / bfloat16 / float32 with the state in float32
(``flashviz.core.precision``); ``hooks`` varies the update (``flashviz.core.inner_step.
UpdateHooks``: the bug zoo's mistakes, ``flashviz.lab.bugzoo``) so the trace shows exactly
what the broken kernel would do. The public ``flashviz.record_trace`` takes a bug's name.

Memory is O(steps x tile size): no step holds an n_q x n_k array.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ml_dtypes
import numpy as np

from flashviz.core.block_mask import BlockMask
from flashviz.core.checks import check_scores_fit, check_tiled_problem
from flashviz.core.fa4 import check_rescale_threshold, check_threshold_fits, softmax_hooks
from flashviz.core.inner_step import FA2, UpdateHooks, attn_fwd_inner, finalize, initial_state
from flashviz.core.masking import TileKind
from flashviz.core.masks import MaskMod
from flashviz.core.precision import Precision, get_precision, store
from flashviz.core.problem import TiledProblem


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
    tile_kind: TileKind  # "full" (the mask not evaluated) or "partial" (evaluated entry by entry)
    s: np.ndarray  # (bq, bkv) scaled, masked scores; masked entries are -inf
    p: np.ndarray  # (bq, bkv) P~ = exp(s - m)
    m_prev: np.ndarray  # (bq,)
    m: np.ndarray  # (bq,)
    alpha: np.ndarray  # (bq,) exp(m_prev - m)
    l_prev: np.ndarray  # (bq,)
    l: np.ndarray  # (bq,)
    o_prev: np.ndarray  # (bq, d) unnormalised accumulator before this tile
    o_rescaled: np.ndarray  # (bq, d) diag(alpha) o_prev, before adding P~ V
    o: np.ndarray  # (bq, d) unnormalised accumulator after this tile
    stale: np.ndarray  # (bq,) bool: the max rose by at most the rescale threshold: m_prev kept

    @property
    def rescaled(self) -> np.ndarray:
        """Rows whose state was rescaled at this tile (alpha < 1: the max rose above a max
        already held)."""
        return (self.m > self.m_prev) & np.isfinite(self.m_prev)

    @property
    def pv(self) -> np.ndarray:
        """P~ V: what this tile adds to the rescaled accumulator."""
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf in a buggy run
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
class Trace(TiledProblem):
    """Everything ``record_steps`` saw: the problem, the steps, and the final output."""

    precision: str = "float64"
    hooks: UpdateHooks = FA2  # the update's variant: FA2's own, or a bug zoo mistake
    steps: list[Step] = field(default_factory=list)
    o: np.ndarray = field(kw_only=True)  # (n_q, d)
    lse: np.ndarray = field(kw_only=True)  # (n_q,)

    @property
    def bug(self) -> str | None:
        """The name of the mistake the run was recorded with (None: the correct update)."""
        return self.hooks.name

    def tile_steps(self) -> list[TileStep]:
        return [s for s in self.steps if isinstance(s, TileStep)]


def record_steps(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    block_q: int,
    block_kv: int,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    precision: str | None = None,
    hooks: UpdateHooks = FA2,
    mask_mod: MaskMod | None = None,
    block_mask: BlockMask | None = None,
    rescale_threshold: float | None = None,
    exp_impl: str | None = None,
) -> Trace:
    """Run FlashAttention-2 on one head (q (n_q, d), k and v (n_k, d)) and record each step.

    The mask: ``causal``, or a FlexAttention ``mask_mod`` or ``block_mask`` (B = H = 1) as
    in ``flash_attention``; a tile step records its kind (full or partial) and the steps
    skip the empty tiles.

    ``precision`` (see ``flashviz.core.precision.PRECISIONS``; None: the inputs' own dtype)
    rounds q, k, v to its storage type and keeps the state in its state type; ``hooks``
    records the run with that variant of the update (``flashviz.lab.bugzoo.BUGS[name].hooks``
    for a mistake of the bug zoo; ``flashviz.record_trace`` takes the name).

    FlashAttention-4's softmax (``flashviz.core.fa4``): ``rescale_threshold`` (log2 units;
    None: FA2's rule) keeps a stale max, each tile step recording the rows that kept one
    (``TileStep.stale``); a threshold whose P~ overflows a 16-bit precision is refused.
    ``exp_impl`` ("exact", or "poly<degree>": ``flashviz.core.exp2``) is the exp the run uses.
    """
    problem = check_tiled_problem(
        q, k, v, block_q=block_q, block_kv=block_kv, causal=causal,
        causal_align=causal_align, scale=scale, two_d=True, mask_mod=mask_mod,
        block_mask=block_mask,
    )  # fmt: skip
    if rescale_threshold is not None:
        check_threshold_fits(
            check_rescale_threshold(rescale_threshold),
            get_precision(problem.q.dtype.name if precision is None else precision),
        )
    hooks = softmax_hooks(hooks, rescale_threshold, exp_impl)
    return record_problem(problem, precision=precision, hooks=hooks)


def record_problem(
    problem: TiledProblem, *, precision: str | None = None, hooks: UpdateHooks = FA2
) -> Trace:
    """``record_steps`` of a problem already validated (``flashviz.core.checks.
    check_tiled_problem(..., two_d=True)``: one head)."""
    if problem.q.ndim != 2:
        raise ValueError(f"a trace records one head: q must be (n_q, d), got {problem.q.shape}")
    prec = get_precision(problem.q.dtype.name if precision is None else precision)
    if not isinstance(hooks, UpdateHooks):
        raise TypeError(f"hooks must be an UpdateHooks, got {type(hooks).__name__}")
    q_, k_, v_ = (store(x, prec) for x in (problem.q, problem.k, problem.v))
    _check_range(q_, k_, v_, problem.scale, prec, 2.0**hooks.rescale_threshold)
    n_q, d = problem.n_q, problem.d
    dtype = prec.state.type
    scale_ = dtype(problem.scale)
    p_dtype = prec.storage if prec.rounds_p else None
    steps: list[Step] = []
    o = np.empty((n_q, d), dtype=dtype)
    lse = np.empty(n_q, dtype=dtype)

    for i, rows, kv in problem.schedule():
        q_i = q_[rows.start : rows.stop]
        m_i, l_i, o_i = initial_state((), len(rows), d, dtype)
        steps.append(LoadStep("load_q", i, rows, q_i, m_i, l_i, o_i))
        for j, cols in kv:
            k_j, v_j = k_[cols.start : cols.stop], v_[cols.start : cols.stop]
            with hooks.errstate():
                new = attn_fwd_inner(
                    m_i,
                    l_i,
                    o_i,
                    q_i,
                    k_j,
                    v_j,
                    scale=scale_,
                    visible=problem.tile_visible(i, j),
                    p_dtype=p_dtype,
                    hooks=hooks,
                )
            steps.append(
                TileStep(
                    "tile",
                    i,
                    rows,
                    j,
                    cols,
                    problem.tile_kind(i, j),
                    new.s_ij,
                    new.p_ij,
                    m_i,
                    new.m_i,
                    new.alpha,
                    l_i,
                    new.l_i,
                    o_i,
                    new.o_rescaled,
                    new.o_i,
                    new.stale,
                )
            )
            m_i, l_i, o_i = new.m_i, new.l_i, new.o_i
        with np.errstate(invalid="ignore"):
            o_out, lse_out = finalize(m_i, l_i, o_i, hooks=hooks)
        steps.append(WriteStep("write", i, rows, m_i, l_i, o_i, o_out, lse_out))
        o[rows.start : rows.stop], lse[rows.start : rows.stop] = o_out, lse_out

    return Trace(
        q_, k_, v_, float(scale_), problem.causal, problem.causal_align, problem.block_q,
        problem.block_kv, prec.name, hooks, steps, o=o, lse=lse, **problem.mask_fields(),
    )  # fmt: skip


def _check_range(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, prec: Precision, p_max: float
) -> None:
    """ValueError if the inputs or the scores do not fit the precision's range (P~ up to
    ``p_max``)."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not np.isfinite(x).all():
            raise ValueError(
                f"{name} has values beyond the range of {prec.storage} (largest "
                f"{float(ml_dtypes.finfo(prec.storage).max):.4g}): scale the inputs down or "
                "pick a wider precision"
            )
    check_scores_fit(q, k, v, scale, prec.state.type, p_max)  # never builds n_q x n_k
