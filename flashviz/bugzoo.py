"""The online-softmax bug zoo: the classic mistakes, switchable, on a row or a tile.

``online_step`` is the FA2 update written on the scores directly (``s_ij`` already
computed and masked with -inf), with one switch per mistake. With ``bug=None`` it is the
correct update and equals ``flashviz.stepper.attn_fwd_inner``. ``debug_row`` walks one row
of scores chunk by chunk and compares the running estimate with the exact softmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class Bug:
    key: str
    title: str
    explanation: str


BUGS: dict[str, Bug] = {
    b.key: b
    for b in (
        Bug(
            "no_rescale_o",
            "Forget to rescale O",
            "o_i = o_i + p_ij v_j without alpha: when the max rises, the old terms keep "
            "weights taken against the old, smaller max and are over-weighted.",
        ),
        Bug(
            "no_rescale_l",
            "Forget to rescale l",
            "l_i = l_i + rowsum(p_ij) without alpha: the denominator mixes sums taken "
            "against different maxima, so the output is too small once the max rises.",
        ),
        Bug(
            "wrong_sign",
            "Rescale with the wrong sign",
            "alpha = exp(m_new - m_i) >= 1 inflates the old state instead of shrinking it.",
        ),
        Bug(
            "no_max",
            "Do not subtract the max",
            "p_ij = exp(s_ij) overflows to inf for logits above ~709 (float64; ~88 in "
            "float32) and inf / inf = NaN.",
        ),
        Bug(
            "stale_l",
            "Normalise every step with a stale l",
            "FA1 keeps O normalised at every step: O_new = (alpha l_old O + P~ V) / l_new. "
            "Dropping l_old rescales an already normalised O as if it were a raw sum.",
        ),
        Bug(
            "mask_1e4",
            "-1e4 stands in for -inf",
            "Masked scores become -1e4 instead of -inf: harmless while the real scores are "
            "far above -1e4, wrong when they are not, and a row with every key masked "
            "averages the masked keys instead of giving 0.",
        ),
        Bug(
            "mask_5e4",
            "-5e4 stands in for -inf",
            "The same with -5e4 (a value that still fits in float16): it fails later, for "
            "scores below about -5e4.",
        ),
        Bug(
            "no_inf_guard",
            "No guard for a row with no key",
            "A row whose keys so far are all masked has m = -inf, and s - m = "
            "(-inf) - (-inf) = NaN poisons the row from then on.",
        ),
    )
}
MASK_STAND_INS = {"mask_1e4": -1e4, "mask_5e4": -5e4}


class OnlineStep(NamedTuple):
    m: np.ndarray  # (rows,)
    l: np.ndarray  # (rows,)
    o: np.ndarray  # (rows, d) the state (normalised only for "stale_l")
    p: np.ndarray  # (rows, cols)
    alpha: np.ndarray  # (rows,)
    estimate: np.ndarray  # (rows, d) the current estimate of the normalised output


def check_bug(bug: str | None) -> str | None:
    if bug is not None and bug not in BUGS:
        raise ValueError(f"bug must be None or one of {sorted(BUGS)}, got {bug!r}")
    return bug


def online_step(
    m_i: np.ndarray,
    l_i: np.ndarray,
    o_i: np.ndarray,
    s_ij: np.ndarray,
    v_j: np.ndarray,
    bug: str | None = None,
) -> OnlineStep:
    """One online-softmax update from scores ``s_ij`` (-inf = masked), with ``bug`` on."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if bug in MASK_STAND_INS:
            s_ij = np.where(np.isneginf(s_ij), MASK_STAND_INS[bug], s_ij)
        # m_new = max(m_i, rowmax(s_ij))
        m_new = np.maximum(m_i, s_ij.max(axis=-1))
        if bug == "no_max":
            m_new = np.zeros_like(m_new)
        m_safe = m_new if bug == "no_inf_guard" else np.where(np.isneginf(m_new), 0, m_new)
        # p_ij = exp(s_ij - m_new);  alpha = exp(m_i - m_new)
        p_ij = np.exp(s_ij - m_safe[:, None])
        alpha = np.exp(m_i - m_safe)
        if bug == "wrong_sign":
            alpha = np.where(np.isneginf(m_i), 0, np.exp(m_safe - m_i))
        # l_i = alpha * l_i + rowsum(p_ij)
        l_new = (1 if bug == "no_rescale_l" else alpha) * l_i + p_ij.sum(axis=-1)
        # o_i = diag(alpha) o_i + p_ij v_j
        pv = p_ij @ v_j
        if bug == "stale_l":  # o_i is kept normalised, and l_i is forgotten
            o_new = (alpha[:, None] * o_i + pv) / l_new[:, None]
            return OnlineStep(m_new, l_new, o_new, p_ij, alpha, o_new)
        o_new = (1 if bug == "no_rescale_o" else alpha[:, None]) * o_i + pv
        estimate = o_new / np.where(l_new == 0, 1, l_new)[:, None]
    return OnlineStep(m_new, l_new, o_new, p_ij, alpha, estimate)


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
    w = np.exp(s - s.max())
    return (w / w.sum()) @ values[:stop]


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
    if isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    return s, v


def debug_row(
    scores: object, chunk: int, values: object | None = None, bug: str | None = None
) -> list[RowStep]:
    """Online softmax over one row of scores, ``chunk`` columns at a time, with ``bug``."""
    s, v = check_row(scores, values, chunk)
    check_bug(bug)
    m, l, o = np.full(1, -np.inf), np.zeros(1), np.zeros((1, v.shape[1]))
    steps = []
    for index, start in enumerate(range(0, s.size, chunk)):
        cols = range(start, min(start + chunk, s.size))
        new = online_step(m, l, o, s[None, cols.start : cols.stop], v[cols.start : cols.stop], bug)
        m, l, o = new.m, new.l, new.o
        exact = exact_prefix(s, v, cols.stop)
        est = new.estimate[0]
        err = float(np.abs(est - exact).max()) if np.isfinite(est).all() else np.inf
        steps.append(
            RowStep(index, cols, float(m[0]), float(l[0]), float(new.alpha[0]), est, exact, err)
        )
    return steps


def first_divergence(steps: list[RowStep], tol: float = 1e-9) -> int | None:
    """Index of the first step whose estimate is off the exact answer by more than ``tol``."""
    return next((st.index for st in steps if not st.error <= tol), None)
