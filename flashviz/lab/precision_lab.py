"""The precision lab: where the error of a low-precision FlashAttention-2 run comes from.

Three lessons, each a pure function of plain inputs (the app's Precision page draws them):

1. **Error breakdown** (``error_breakdown``): runs that add one effect at a time, each
   measured against the float64 reference on the *original* inputs: the inputs rounded to
   the storage type (state float64, P~ exact), then the softmax state in float32, then P~
   rounded to the storage type for the P~ V matmul. The last run is exactly
   ``record_trace(precision=...)``.
2. **Underflow** (``underflow_limits``, ``exp_neg``, ``problem_underflow``, ``online_row``):
   alpha = exp(m_old - m_new) and P~ = exp(s - m) are exp(-gap) for a gap >= 0; each type
   has a gap beyond which they become subnormal and then 0. ``online_row`` runs the online
   softmax on one row with the whole state in a chosen type, and says how much softmax
   weight underflow erased and how far the output is from the exact answer.
3. **The exp2 form** (``attn_fwd_inner_exp2``, ``compare_forms``, ``forms_table``): real
   kernels fold log2(e) into the softmax scale and call exp2 (one hardware instruction);
   the running max and the logsumexp then live in base 2 and L = ln(2) L2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from flashviz.core.accuracy import max_error
from flashviz.core.checks import check_block, check_problem
from flashviz.core.inner_step import (
    TileUpdate,
    attn_fwd_inner,
    finalize,
    initial_state,
    online_update,
)
from flashviz.core.masking import block_range, kv_blocks_for, mask_offset, num_blocks, visible
from flashviz.core.precision import get_precision, store
from flashviz.core.reference import attention_reference, softmax_attention
from flashviz.core.trace import Trace, WriteStep, record_trace
from flashviz.core.verdict import RowErrorMaxima, row_errors
from flashviz.lab.bugzoo import check_row, exact_prefix

LN2 = math.log(2.0)
LOG2E = 1.0 / LN2

# ---------------------------------------------------------------------------------------
# 1. Error breakdown
# ---------------------------------------------------------------------------------------

STAGES: dict[str, str] = {
    "inputs": "inputs rounded to the storage type (state float64, P\u0303 exact)",
    "state": "+ softmax state (m, l, o, S) in float32",
    "p_round": "+ P\u0303 rounded to the storage type for P\u0303 V",
}


@dataclass(frozen=True, eq=False)
class StageError(RowErrorMaxima):
    """One run of the breakdown and its error against the float64 reference."""

    key: str  # a key of STAGES
    applies: bool  # False: the precision has no such effect (the run equals the one before)
    o: np.ndarray  # (n_q, d) the run's output, in its state type
    lse: np.ndarray  # (n_q,)
    err_o: np.ndarray  # (n_q,) max_c |o_rc - o_ref,rc|
    err_lse: np.ndarray  # (n_q,) |L_r - L_ref,r| (0 for rows that see no key)
    effect_o: np.ndarray  # (n_q,) max_c |o_rc - o_rc of the stage before| (first: the error)


@dataclass(frozen=True, eq=False)
class Breakdown:
    """The error of ``precision``, built up one effect at a time (``stages``, in order)."""

    precision: str
    o_ref: np.ndarray  # (n_q, d) float64 reference on the original inputs
    lse_ref: np.ndarray  # (n_q,)
    stages: tuple[StageError, ...]
    naive_err_o: float  # naive attention in the same precision, against the same reference

    @property
    def final(self) -> StageError:
        return self.stages[-1]

    @property
    def effects(self) -> np.ndarray:
        """How far each stage moves the output: max |o_stage - o_stage before| (errors of
        separate effects partly cancel, so the changes, not the errors, are compared)."""
        return np.array([float(s.effect_o.max()) for s in self.stages])

    @property
    def dominant(self) -> str:
        """The stage whose effect moves the output the most."""
        return self.stages[int(np.argmax(self.effects))].key


def error_breakdown(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    precision: str,
    block_q: int,
    block_kv: int,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
) -> Breakdown:
    """Add one effect of ``precision`` at a time to an exact run; measure each run.

    q (n_q, d), k and v (n_k, d). Every run is ``record_trace``; the reference is
    ``attention_reference`` on the original q, k, v. Stages (see ``STAGES``):
    "inputs" rounds q, k, v to the storage type and computes in float64; "state" computes
    in the state type (float32); "p_round" also rounds P~ for P~ V, i.e. it is
    ``record_trace(q, k, v, precision=precision)``. An effect a precision does not have
    (float64: all; float32: P~ rounding) repeats the previous run with ``applies=False``.
    Only outputs are kept (a trace holds every tile); ``problem_underflow`` takes a trace.
    """
    prob = check_problem(q, k, v, scale, causal_align, two_d=True)
    prec = get_precision(precision)
    kw = {
        "block_q": block_q,
        "block_kv": block_kv,
        "causal": causal,
        "causal_align": causal_align,
        "scale": prob.scale,
    }
    o_ref, lse_ref = attention_reference(
        prob.q, prob.k, prob.v, causal=causal, causal_align=causal_align, scale=prob.scale
    )
    stored = [store(x, prec) for x in (prob.q, prob.k, prob.v)]  # exact in the state type
    rounded_in = record_trace(*(x.astype(np.float64) for x in stored), precision="float64", **kw)
    has_state = prec.state != np.float64
    in_state = record_trace(*stored, precision=prec.state.name, **kw) if has_state else rounded_in
    full = record_trace(*prob[:3], precision=prec.name, **kw) if prec.rounds_p else in_state
    stages: list[StageError] = []
    before = o_ref
    for key, applies, trace in (
        ("inputs", True, rounded_in),
        ("state", has_state, in_state),
        ("p_round", prec.rounds_p, full),
    ):
        o, lse = trace.o, trace.lse
        errs = row_errors(o, lse, o_ref, lse_ref)
        effect = np.abs(o.astype(np.float64) - before).max(axis=1)
        stages.append(StageError(key, applies, o, lse, *errs, effect))
        before = o.astype(np.float64)
    offset = mask_offset(prob.n_q, prob.n_k, causal, causal_align)
    o_naive, _ = softmax_attention(
        *stored,
        scale=prob.scale,
        offset=offset,
        dtype=prec.state.type,
        p_dtype=prec.storage if prec.rounds_p else None,
    )
    naive_err = max_error(o_naive, o_ref)
    return Breakdown(prec.name, o_ref, lse_ref, tuple(stages), naive_err)


# ---------------------------------------------------------------------------------------
# 2. Underflow of alpha and P~
# ---------------------------------------------------------------------------------------

UNDERFLOW_TYPES = ("float16", "bfloat16", "float32")


@dataclass(frozen=True)
class UnderflowLimits:
    """Where exp(-gap) leaves a type's normal range and where it rounds to 0."""

    name: str
    tiny: float  # smallest positive normal number
    smallest_subnormal: float

    @property
    def gap_subnormal(self) -> float:
        """Beyond this gap exp(-gap) is below the smallest normal number and is stored as a
        subnormal: fewer significant bits, a growing relative error."""
        return -math.log(self.tiny)

    @property
    def gap_below_subnormal(self) -> float:
        """Beyond this gap exp(-gap) is smaller than the smallest subnormal."""
        return -math.log(self.smallest_subnormal)

    @property
    def gap_zero(self) -> float:
        """From this gap on exp(-gap) rounds to 0 (below half the smallest subnormal)."""
        return math.log(2.0 / self.smallest_subnormal)


def underflow_limits(name: str) -> UnderflowLimits:
    """Underflow limits of the storage type of precision ``name`` (e.g. "float16")."""
    info = ml_dtypes.finfo(get_precision(name).storage)
    return UnderflowLimits(name, float(info.tiny), float(info.smallest_subnormal))


def exp_neg(gap: np.ndarray | float, name: str) -> np.ndarray:
    """exp(-gap) rounded to the storage type of ``name`` (returned as float64)."""
    gap = np.asarray(gap, dtype=np.float64)
    if np.isnan(gap).any() or (gap < 0).any():
        raise ValueError("gap must be >= 0 (alpha and P~ are exp(-gap) with gap >= 0)")
    return rounded(np.exp(-gap), name)


def rounded(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` rounded to the storage type of ``name``, as float64."""
    return np.asarray(x, dtype=np.float64).astype(get_precision(name).storage).astype(np.float64)


def underflow_kind(x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Masks (subnormal, zero) of the positive values ``x`` once rounded to type ``name``."""
    lim = underflow_limits(name)
    r = rounded(x, name)
    positive = np.asarray(x) > 0
    return positive & (r > 0) & (r < lim.tiny), positive & (r == 0)


@dataclass(frozen=True)
class ProblemUnderflow:
    """alpha and P~ of one run, rounded to type ``name``: how many underflow, what they weigh.

    Weights are shares of a row's final softmax mass: an entry p_rc at a tile whose max was
    m weighs p_rc exp(m - m_final) / l_final; the state rescaled by alpha weighs
    l_prev exp(m_prev - m_final) / l_final. ``*_zero_weight``: the largest total, over
    rows, of what rounding to 0 would erase.
    """

    name: str
    n_p: int  # visible P~ entries
    p_subnormal: int
    p_zero: int
    p_zero_weight: float
    n_alpha: int  # rescales of a non-empty state
    alpha_subnormal: int
    alpha_zero: int
    alpha_zero_weight: float


def problem_underflow(trace: Trace, name: str) -> ProblemUnderflow:
    """Round every P~ and alpha of ``trace`` to type ``name`` and count what underflows."""
    m_fin = np.empty(trace.n_q)
    l_fin = np.empty(trace.n_q)
    for step in trace.steps:
        if isinstance(step, WriteStep):
            m_fin[step.rows.start : step.rows.stop] = step.m
            l_fin[step.rows.start : step.rows.stop] = step.l
    counts = np.zeros(6, dtype=np.int64)  # n_p, p_sub, p_zero, n_alpha, a_sub, a_zero
    erased_p = np.zeros(trace.n_q)
    erased_alpha = np.zeros(trace.n_q)
    for st in trace.tile_steps():
        r = slice(st.rows.start, st.rows.stop)
        with np.errstate(divide="ignore", invalid="ignore"):
            to_final = np.exp(st.m - m_fin[r]) / l_fin[r]  # (bq,) weight of 1 at this max
            prev_weight = st.l_prev * np.exp(st.m_prev - m_fin[r]) / l_fin[r]
        seen = np.isfinite(st.s)
        sub, zero = underflow_kind(np.where(seen, st.p, 0.0), name)
        counts[:3] += (int(seen.sum()), int(sub.sum()), int(zero.sum()))
        erased_p[r] += np.where(zero, st.p, 0.0).sum(axis=1) * np.nan_to_num(to_final)
        had_state = np.isfinite(st.m_prev)
        a_sub, a_zero = underflow_kind(np.where(had_state, st.alpha, 0.0), name)
        counts[3:] += (int(had_state.sum()), int(a_sub.sum()), int(a_zero.sum()))
        erased_alpha[r] += np.where(a_zero, np.nan_to_num(prev_weight), 0.0)
    n_p, p_sub, p_zero, n_alpha, a_sub, a_zero = (int(c) for c in counts)
    return ProblemUnderflow(
        name, n_p, p_sub, p_zero, float(erased_p.max(initial=0.0)),
        n_alpha, a_sub, a_zero, float(erased_alpha.max(initial=0.0)),
    )  # fmt: skip


def jump_row(
    *, n: int = 64, jump_at: int = 40, base: float = 0.0, gap: float = 20.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A score row whose max jumps by ``gap`` at key ``jump_at``, and values (n, 4).

    Scores: ``base`` + N(0, 1), plus ``gap`` from key ``jump_at`` on. Values are multiples
    of 1/8, exact in every type, so an error comes from the softmax state alone.
    """
    for label, value in (("n", n), ("jump_at", jump_at)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{label} must be an integer, got {value!r}")
    if n < 1 or not 0 <= jump_at <= n:
        raise ValueError(f"need n >= 1 and 0 <= jump_at <= n, got n={n}, jump_at={jump_at}")
    if not (math.isfinite(base) and math.isfinite(gap)) or gap < 0:
        raise ValueError(f"base must be finite and gap finite and >= 0, got {base}, {gap}")
    rng = np.random.default_rng(seed)
    scores = base + rng.standard_normal(n)
    scores[jump_at:] += gap
    return scores, rng.integers(-8, 9, size=(n, 4)) / 8.0


@dataclass(frozen=True, eq=False)
class StateRun:
    """The online softmax of one row with its whole state (s, m, l, o, alpha, P~) in ``state``."""

    state: str
    output: np.ndarray  # (d,) o / l, as float64
    exact: np.ndarray  # (d,) softmax(scores) @ values in float64
    alphas: np.ndarray  # (chunks,) alpha of each chunk in the state type (float64 copy)
    alpha_subnormal: int
    alpha_zero: int  # rescales of a non-empty state that gave alpha = 0
    p_zero: int  # visible P~ entries that were 0
    erased_weight: float  # exact softmax weight of the keys underflow erased

    @property
    def error(self) -> float:
        """max |output - exact|, inf when the output is not finite."""
        finite = np.isfinite(self.output).all()
        return float(np.abs(self.output - self.exact).max()) if finite else math.inf


def online_row(scores: object, values: object, chunk: int, state: str) -> StateRun:
    """Run ``flashviz.core.inner_step.online_update`` over one row, ``chunk`` keys at a
    time, computing in the storage type of precision ``state`` ("float16", "bfloat16",
    "float32", ...).

    The scores are rounded to that type first, as a kernel keeping S in it would.
    """
    s, v = check_row(scores, values, chunk)
    dtype = get_precision(state).storage
    lim = underflow_limits(state)
    with np.errstate(over="ignore"):  # float16 holds scores up to 65504 only
        s_t, v_t = s.astype(dtype), v.astype(dtype)
    m, l, o = np.full(1, -np.inf, dtype), np.zeros(1, dtype), np.zeros((1, v.shape[1]), dtype)
    alphas, erased = [], np.zeros(s.size, dtype=bool)
    a_sub = a_zero = p_zero = 0
    for start in range(0, s.size, chunk):
        stop = min(start + chunk, s.size)
        had_state = bool(np.isfinite(m[0]))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # float16's range
            new = online_update(m, l, o, s_t[None, start:stop], v_t[start:stop])
        alpha = float(new.alpha[0])
        alphas.append(alpha)
        if had_state and alpha == 0:
            a_zero += 1
            erased[:start] = True
        a_sub += int(had_state and 0 < alpha < lim.tiny)
        dead = (new.p_ij[0].astype(np.float64) == 0) & np.isfinite(s[start:stop])
        p_zero += int(dead.sum())
        erased[start:stop] |= dead
        m, l, o = new.m_i, new.l_i, new.o_i
    with np.errstate(divide="ignore", invalid="ignore"):
        out = o[0].astype(np.float64) / np.float64(l[0]) if l[0] != 0 else np.zeros(v.shape[1])
    exact = exact_prefix(s, v, s.size)
    finite = np.isfinite(s)
    w = np.zeros(s.size)
    if finite.any():
        w[finite] = np.exp(s[finite] - s[finite].max())
        w /= w.sum()
    return StateRun(
        state, out, exact, np.array(alphas), a_sub, a_zero, p_zero, float(w[erased].sum())
    )


def gap_sweep(
    gaps: np.ndarray,
    *,
    states: tuple[str, ...] = UNDERFLOW_TYPES,
    chunk: int = 16,
    **row: float | int,
) -> dict[str, np.ndarray]:
    """Error of ``online_row`` on ``jump_row(gap=g, **row)`` for every g, per state type."""
    out = {name: np.empty(len(gaps)) for name in states}
    for n, g in enumerate(gaps):
        scores, values = jump_row(gap=float(g), **row)  # type: ignore[arg-type]
        for name in states:
            out[name][n] = online_row(scores, values, chunk, name).error
    return out


# ---------------------------------------------------------------------------------------
# 3. The exp2 form
# ---------------------------------------------------------------------------------------


def attn_fwd_inner_exp2(
    m2_i: np.ndarray,
    l_i: np.ndarray,
    o_i: np.ndarray,
    q_i: np.ndarray,
    k_j: np.ndarray,
    v_j: np.ndarray,
    *,
    scale_log2e: float,
    visible: np.ndarray | None = None,
) -> TileUpdate:
    """``flashviz.core.inner_step.attn_fwd_inner`` in base 2, as Triton and flash-attn write it.

    A separate function rather than a switch in ``attn_fwd_inner``: the base-e step is the
    reference the CUDA kernel mirrors line by line and should stay plain. Only the scale
    constant (log2 e folded in) and the two exponentials (exp2) differ; the phases, names,
    the -inf guard and the returned ``TileUpdate`` are the same, with ``m_i`` holding m2
    and ``s_ij`` holding s2 (both in base-2 units). Dropout and P~ rounding are left out.
    """
    # phase:scores  s2_ij = (q_i k_j^T) * (scale * log2 e), masked entries = -inf
    s2_ij = (q_i @ np.swapaxes(k_j, -1, -2)) * scale_log2e  # (..., bq, bkv)
    if visible is not None:
        s2_ij = np.where(visible, s2_ij, -np.inf)
    # phase:max  m2_new = max(m2_i, rowmax(s2_ij))
    m2_new = np.maximum(m2_i, s2_ij.max(axis=-1))  # (..., bq)
    m2_safe = np.where(np.isneginf(m2_new), 0, m2_new)  # a row with no key yet: subtract 0
    # phase:exp  p_ij = exp2(s2_ij - m2_new)
    p_ij = np.exp2(s2_ij - m2_safe[..., None])  # (..., bq, bkv)
    # phase:alpha  alpha = exp2(m2_i - m2_new)
    alpha = np.exp2(m2_i - m2_safe)  # (..., bq)
    # phase:sum  l_i = alpha * l_i + rowsum(p_ij)
    l_new = alpha * l_i + p_ij.sum(axis=-1)  # (..., bq)
    # phase:accumulate  o_i = diag(alpha) o_i + p_ij v_j
    o_rescaled = alpha[..., None] * o_i  # (..., bq, d)
    o_new = o_rescaled + p_ij @ v_j  # (..., bq, d)
    return TileUpdate(m2_new, l_new, o_new, s2_ij, p_ij, alpha, o_rescaled)


@dataclass(frozen=True, eq=False)
class FormsRun:
    """Query block i run through every K/V tile in the paper's form and in the exp2 form."""

    rows: range
    cols: list[range]
    scale: float  # tau
    scale_log2e: float  # tau log2 e, rounded to the compute type
    natural: list[TileUpdate]  # per tile: m_i, s_ij in base e
    base2: list[TileUpdate]  # per tile: m_i = m2, s_ij = s2 in base 2
    o: np.ndarray  # (bq, d) paper form
    lse: np.ndarray  # (bq,) L = m + ln l
    o2: np.ndarray  # (bq, d) exp2 form
    lse2: np.ndarray  # (bq,) L2 = m2 + log2 l

    @property
    def lse_from_base2(self) -> np.ndarray:
        """L = ln(2) L2."""
        return LN2 * self.lse2


def compare_forms(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    block_q: int,
    block_kv: int,
    i: int = 0,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    dtype: str = "float32",
) -> FormsRun:
    """Run query block ``i`` of one head (q (n_q, d), k, v (n_k, d)) in both forms.

    Both compute in ``dtype`` ("float32", as kernels keep the softmax state, or "float64").
    The paper's form uses ``flashviz.core.inner_step.attn_fwd_inner``; the exp2 form
    ``attn_fwd_inner_exp2``. They agree to rounding: s2 = s log2 e, m2 = m log2 e, and
    alpha, P~, l, o and L = ln(2) L2 are the same numbers.
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    prob = check_problem(q, k, v, scale, causal_align, two_d=True)
    block_q, block_kv = check_block("block_q", block_q), check_block("block_kv", block_kv)
    n_blocks = num_blocks(prob.n_q, block_q)
    if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < n_blocks:
        raise ValueError(f"i must be a query block index in [0, {n_blocks}), got {i!r}")
    t = np.dtype(dtype).type
    offset = mask_offset(prob.n_q, prob.n_k, causal, causal_align)
    rows = block_range(int(i), block_q, prob.n_q)
    q_i = prob.q[rows.start : rows.stop].astype(t)
    k_, v_ = prob.k.astype(t), prob.v.astype(t)
    scale_, scale2 = t(prob.scale), t(prob.scale * LOG2E)
    state = initial_state((), len(rows), prob.d, t)
    state2 = initial_state((), len(rows), prob.d, t)
    cols_list, natural, base2 = [], [], []
    for j in range(kv_blocks_for(rows, block_kv, prob.n_k, offset)):
        cols = block_range(j, block_kv, prob.n_k)
        k_j, v_j = k_[cols.start : cols.stop], v_[cols.start : cols.stop]
        vis = visible(rows, cols, offset)
        new = attn_fwd_inner(*state, q_i, k_j, v_j, scale=scale_, visible=vis)
        new2 = attn_fwd_inner_exp2(*state2, q_i, k_j, v_j, scale_log2e=scale2, visible=vis)
        cols_list.append(cols)
        natural.append(new)
        base2.append(new2)
        state, state2 = (new.m_i, new.l_i, new.o_i), (new2.m_i, new2.l_i, new2.o_i)
    o, lse = finalize(*state)
    o2, _ = finalize(*state2)
    with np.errstate(divide="ignore"):
        lse2 = state2[0] + np.log2(state2[1])  # phase:lse  L2 = m2 + log2(l)
    return FormsRun(rows, cols_list, float(scale_), float(scale2), natural, base2, o, lse, o2, lse2)


@dataclass(frozen=True)
class FormRow:
    """One line of the side-by-side table: a quantity in both forms."""

    quantity: str
    natural: float  # paper's form (base e)
    base2: float  # exp2 form as the kernel holds it
    base2_in_e: float  # the exp2 form's number brought back to base e (x ln 2 for logs)
    diff: float  # |natural - base2_in_e|


def forms_table(run: FormsRun, row: int, tile: int) -> list[FormRow]:
    """The numbers of query row ``row`` (index within the block) at K/V tile ``tile``.

    Log-domain quantities (scale, scores, max, L) differ by the factor log2 e and are
    brought back with x ln 2; alpha, P~, l and o are the same numbers in both forms.
    """
    if not 0 <= row < len(run.rows):
        raise ValueError(f"row must be in [0, {len(run.rows)}), got {row}")
    if not 0 <= tile < len(run.natural):
        raise ValueError(f"tile must be in [0, {len(run.natural)}), got {tile}")
    a, b = run.natural[tile], run.base2[tile]
    s_a, s_b = a.s_ij[row], b.s_ij[row]
    c = int(np.argmax(np.where(np.isfinite(s_a), s_a, -np.inf)))  # the tile's largest score
    m_prev_a = run.natural[tile - 1].m_i[row] if tile else -np.inf
    m_prev_b = run.base2[tile - 1].m_i[row] if tile else -np.inf
    lines = [
        ("scale", run.scale, run.scale_log2e, True),
        (f"s (row max of the tile, key {run.cols[tile].start + c})", s_a[c], s_b[c], True),
        ("m before the tile", m_prev_a, m_prev_b, True),
        ("m after the tile", a.m_i[row], b.m_i[row], True),
        ("alpha", a.alpha[row], b.alpha[row], False),
        ("P\u0303 of the smallest visible score", *_smallest_p(a, b, row), False),
        ("rowsum P\u0303", a.p_ij[row].sum(), b.p_ij[row].sum(), False),
        ("l after the tile", a.l_i[row], b.l_i[row], False),
        ("o[0] after the tile (unnormalised)", a.o_i[row, 0], b.o_i[row, 0], False),
        ("L = m + log l (after the last tile)", run.lse[row], run.lse2[row], True),
    ]
    out = []
    for name, x, y, is_log in lines:
        x, y = float(x), float(y)
        back = y * LN2 if is_log else y
        out.append(FormRow(name, x, y, back, 0.0 if x == back else abs(x - back)))
    return out


def _smallest_p(a: TileUpdate, b: TileUpdate, row: int) -> tuple[float, float]:
    seen = np.isfinite(a.s_ij[row])
    if not seen.any():
        return 0.0, 0.0
    c = int(np.argmin(np.where(seen, a.s_ij[row], np.inf)))
    return float(a.p_ij[row, c]), float(b.p_ij[row, c])


__all__ = [
    "LN2",
    "LOG2E",
    "STAGES",
    "UNDERFLOW_TYPES",
    "Breakdown",
    "FormRow",
    "FormsRun",
    "ProblemUnderflow",
    "StageError",
    "StateRun",
    "UnderflowLimits",
    "attn_fwd_inner_exp2",
    "compare_forms",
    "error_breakdown",
    "exp_neg",
    "forms_table",
    "gap_sweep",
    "jump_row",
    "online_row",
    "problem_underflow",
    "rounded",
    "row_errors",
    "underflow_kind",
    "underflow_limits",
]
