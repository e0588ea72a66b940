"""The row debugger: one row of scores through the online-softmax update, chunk by chunk.

``debug_row`` walks the row through ``flashviz.core.inner_step.online_update`` (with a
mistake of the bug zoo, ``flashviz.lab.bugzoo``, if asked) and compares the running estimate
o / l with the exact softmax of the columns seen so far; ``first_bad_chunk`` is where they
part. ``first_bite`` says, from the row alone, at which chunk a mistake first changes the
arithmetic and why; the tests check that this is exactly where ``debug_row`` diverges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flashviz.core.checks import check_block
from flashviz.core.inner_step import finalize, initial_state, online_update
from flashviz.core.reference import softmax_weights
from flashviz.lab.bugzoo import BUGS, TOL, ChunkState, bug_hooks, lazy_max


def _row_errstate() -> np.errstate:
    """No warnings for the inf and NaN any float64 row (or a bug) may make."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


@dataclass(frozen=True)
class RowStep:
    """One chunk of the row debugger: the state after it and the exact answer so far."""

    index: int
    cols: range
    m: float
    l: float
    alpha: float
    estimate: np.ndarray  # (d,)
    exact: np.ndarray  # (d,) exact softmax-weighted sum over the columns seen so far
    error: float  # max |estimate - exact|, inf if the estimate is not finite


def exact_prefix(scores: np.ndarray, values: np.ndarray, stop: int) -> np.ndarray:
    """softmax(scores[:stop]) @ values[:stop] in float64; 0 if every score is masked."""
    s = scores[:stop]
    if not np.isfinite(s).any():
        return np.zeros(values.shape[1])
    with np.errstate(over="ignore"):  # -1e308 - 1e308 = -inf: a weight of exactly 0
        p, l, _ = softmax_weights(s)  # (stop,), (1,)
    return (p / l) @ values[:stop]


def check_row(scores: object, values: object | None, chunk: int) -> tuple[np.ndarray, ...]:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"scores must be a non-empty 1-D row, got shape {s.shape}")
    if np.isnan(s).any() or np.isposinf(s).any():
        raise ValueError("scores must be finite or -inf (masked), got NaN or +inf")
    if values is None:
        values = np.linspace(-1.0, 1.0, s.size)
    v = np.asarray(values, dtype=np.float64)
    v = v[:, None] if v.ndim == 1 else v
    if v.ndim != 2 or v.shape[0] != s.size or not np.isfinite(v).all():
        raise ValueError(
            f"values must be finite with shape ({s.size},) or ({s.size}, d), got {v.shape}"
        )
    check_block("chunk", chunk)
    return s, v


def debug_row(
    scores: object, chunk: int, values: object | None = None, bug: str | None = None
) -> list[RowStep]:
    """Online softmax over one row of scores, ``chunk`` columns at a time, with ``bug``."""
    s, v = check_row(scores, values, chunk)
    hooks = bug_hooks(bug)
    m, l, o = initial_state((), 1, v.shape[1], np.float64)  # (1,), (1,), (1, d)
    steps = []
    for index, start in enumerate(range(0, s.size, chunk)):
        cols = range(start, min(start + chunk, s.size))
        s_ij, v_j = s[None, cols.start : cols.stop], v[cols.start : cols.stop]  # (1, c), (c, d)
        with _row_errstate():
            new = online_update(m, l, o, s_ij, v_j, hooks=hooks)
            est = finalize(new.m_i, new.l_i, new.o_i, hooks=hooks)[0][0]  # o / l so far
        m, l, o = new.m_i, new.l_i, new.o_i
        exact = exact_prefix(s, v, cols.stop)
        err = float(np.abs(est - exact).max()) if np.isfinite(est).all() else np.inf
        steps.append(
            RowStep(index, cols, float(m[0]), float(l[0]), float(new.alpha[0]), est, exact, err)
        )
    return steps


def first_bad_chunk(steps: list[RowStep], tol: float = TOL) -> int | None:
    """Index of the first step whose estimate is off the exact answer by more than ``tol``."""
    return next((st.index for st in steps if not st.error <= tol), None)


@dataclass(frozen=True)
class Bite:
    index: int  # the chunk where the mistake first changes the result
    reason: str  # why, with the numbers of that chunk


def first_bite(bug: str, scores: object, chunk: int) -> Bite | None:
    """The first chunk where ``bug`` changes the arithmetic, judged from the row alone.

    Walks the correct online state (m, l, alpha) and tests each mistake's condition (see
    ``Bug.bites_when`` and ``Bug.reason``); None if it never holds. It predicts
    ``first_bad_chunk`` of ``debug_row(..., bug=bug)`` (tolerance ``TOL``) wherever the
    change the mistake makes is not within a factor of about 10 of ``TOL``, where the
    values v decide.
    """
    if not isinstance(bug, str) or bug not in BUGS:
        raise ValueError(f"bug must be one of {sorted(BUGS)}, got {bug!r}")
    s, _ = check_row(scores, None, chunk)
    m, l, masked_seen, m_lazy = -np.inf, 0.0, False, -np.inf
    zeros = np.zeros((chunk, 1))
    for index, start in enumerate(range(0, s.size, chunk)):
        s_ij = s[None, start : start + chunk]  # (1, cols)
        # the correct update: m_new, alpha = exp(m - m_new), l_new = alpha l + rowsum(p)
        with _row_errstate():
            new = online_update(
                np.array([m]), np.array([l]), np.zeros((1, 1)), s_ij, zeros[: s_ij.size]
            )
        masked_seen = masked_seen or bool(np.isneginf(s_ij).any())
        m_new = float(new.m_i[0])
        m_lazy = lazy_max(m_lazy, m_new)
        c = ChunkState(m, m_new, l, float(new.l_i[0]), float(new.alpha[0]), masked_seen, m_lazy)
        reason = BUGS[bug].reason(c)
        if reason is not None:
            return Bite(index, reason)
        m, l = c.m, c.l
    return None
