"""Precision lesson 2: underflow of alpha and P~, and a row's state in a 16-bit type.

alpha = exp(m_old - m_new) and P~ = exp(s - m) are exp(-gap) for a gap >= 0; each type has
a gap beyond which they become subnormal and then 0 (``underflow_limits``, ``exp_neg``).
``problem_underflow`` counts what underflows in a recorded run and the softmax weight it
carries; ``online_row`` runs the online softmax on one row with the whole state in a chosen
type, and says how much weight underflow erased and how far the output is from the exact
answer (``jump_row`` makes a row whose max jumps by ``gap``; ``gap_sweep`` runs it for many
gaps). Pure functions of plain inputs, drawn by the app's Precision page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict, Unpack

import ml_dtypes
import numpy as np

from flashviz.core.checks import check_int
from flashviz.core.inner_step import online_update
from flashviz.core.precision import get_precision
from flashviz.core.reference import softmax_weights
from flashviz.core.trace import Trace, WriteStep
from flashviz.lab.row_debugger import check_row, exact_prefix

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
        alpha_sub, alpha_zero = underflow_kind(np.where(had_state, st.alpha, 0.0), name)
        counts[3:] += (int(had_state.sum()), int(alpha_sub.sum()), int(alpha_zero.sum()))
        erased_alpha[r] += np.where(alpha_zero, np.nan_to_num(prev_weight), 0.0)
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
    n = check_int("n", n, 1)
    jump_at = check_int("jump_at", jump_at, 0, n)
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
    w = np.zeros(s.size)  # the exact softmax weights of the row
    if np.isfinite(s).any():
        p, l, _ = softmax_weights(s)  # (n,), (1,)
        w = p / l
    return StateRun(
        state, out, exact, np.array(alphas), a_sub, a_zero, p_zero, float(w[erased].sum())
    )


class JumpRowArgs(TypedDict, total=False):
    """The arguments of ``jump_row`` other than ``gap``."""

    n: int
    jump_at: int
    base: float
    seed: int


def gap_sweep(
    gaps: np.ndarray,
    *,
    states: tuple[str, ...] = UNDERFLOW_TYPES,
    chunk: int = 16,
    **row: Unpack[JumpRowArgs],
) -> dict[str, np.ndarray]:
    """Error of ``online_row`` on ``jump_row(gap=g, **row)`` for every g, per state type."""
    out = {name: np.empty(len(gaps)) for name in states}
    for n, g in enumerate(gaps):
        scores, values = jump_row(gap=float(g), **row)
        for name in states:
            out[name][n] = online_row(scores, values, chunk, name).error
    return out
