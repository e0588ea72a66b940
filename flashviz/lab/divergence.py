"""Where a run recorded with a bug first leaves the correct run.

Both traces take the same steps (the bug changes numbers, not the loop), so they can be
compared step by step on what each step claims the output is so far: the output the run
would write if the tile were its last (``finalize`` with the run's hooks: o_i / l_i, or
o_i itself for "stale_l", whose accumulator is kept normalised), O_i at a write.
"""

from __future__ import annotations

import numpy as np

from flashviz.core.inner_step import finalize
from flashviz.core.precision import get_precision
from flashviz.core.trace import Step, TileStep, Trace, WriteStep

DIVERGENCE_ULPS = 64  # rounding differences between two correct paths stay far below this


def step_estimate(trace: Trace, step: Step) -> np.ndarray | None:
    """The output rows this step implies (bq, d); None for a load step."""
    if isinstance(step, WriteStep):
        return step.o
    if not isinstance(step, TileStep):
        return None
    return tile_estimate(trace, step)


def tile_estimate(trace: Trace, step: TileStep) -> np.ndarray:
    """The output rows (bq, d) of a tile step's state, normalised as if it were the last."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return finalize(step.m, step.l, step.o, hooks=trace.hooks)[0]


def divergence_tolerance(trace: Trace) -> float:
    """Rounding the two paths may differ by: ulps of the state, or of P~'s 16-bit type."""
    prec = get_precision(trace.precision)
    eps = prec.eps if prec.rounds_p else float(np.finfo(prec.state).eps)
    return DIVERGENCE_ULPS * eps * (1.0 + float(np.abs(trace.v).max(initial=0.0)))


def step_divergence(buggy: Trace, correct: Trace, k: int) -> float:
    """max |estimate_buggy - estimate_correct| at step k (inf if NaN/inf appear in one)."""
    a = step_estimate(buggy, buggy.steps[k])
    b = step_estimate(correct, correct.steps[k])
    if a is None or b is None:
        return 0.0
    if not np.isfinite(a).all():
        return float("inf")
    return float(np.abs(a - b).max(initial=0.0))


def first_diverging_step(buggy: Trace, correct: Trace, tol: float | None = None) -> int | None:
    """Index of the first step where ``buggy`` leaves ``correct`` by more than ``tol``."""
    if len(buggy.steps) != len(correct.steps):
        raise ValueError(
            f"the traces must take the same steps, got {len(buggy.steps)} and {len(correct.steps)}"
        )
    tol = divergence_tolerance(correct) if tol is None else tol
    return next(
        (k for k in range(len(buggy.steps)) if step_divergence(buggy, correct, k) > tol), None
    )
