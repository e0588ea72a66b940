"""Precision lesson 1: where the error of a low-precision FlashAttention-2 run comes from.

``error_breakdown`` runs the problem adding one effect of the precision at a time, each run
measured against the float64 reference on the *original* inputs: the inputs rounded to the
storage type (state float64, P~ exact), then the softmax state in float32, then P~ rounded
to the storage type for the P~ V matmul. The last run is exactly
``record_steps(precision=...)``. A pure function of plain inputs (the app's Precision page
draws it); the other lessons are ``flashviz.lab.underflow`` and ``flashviz.lab.exp2_form``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flashviz.core.accuracy import max_error
from flashviz.core.checks import check_problem
from flashviz.core.precision import get_precision, store
from flashviz.core.reference import attention_reference, softmax_attention
from flashviz.core.trace import record_steps
from flashviz.core.verdict import RowErrorMaxima, row_errors
from flashviz.lab.problem_spec import Tiling

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

    q (n_q, d), k and v (n_k, d). Every run is ``record_steps``; the reference is
    ``attention_reference`` on the original q, k, v. Stages (see ``STAGES``):
    "inputs" rounds q, k, v to the storage type and computes in float64; "state" computes
    in the state type (float32); "p_round" also rounds P~ for P~ V, i.e. it is
    ``record_steps(q, k, v, precision=precision)``. An effect a precision does not have
    (float64: all; float32: P~ rounding) repeats the previous run with ``applies=False``.
    Only outputs are kept (a trace holds every tile); ``flashviz.lab.underflow.
    problem_underflow`` takes a trace.
    """
    prob = check_problem(q, k, v, scale, causal_align, causal=causal, two_d=True)
    prec = get_precision(precision)
    kw: Tiling = {
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
    rounded_in = record_steps(*(x.astype(np.float64) for x in stored), precision="float64", **kw)
    has_state = prec.state != np.float64
    in_state = record_steps(*stored, precision=prec.state.name, **kw) if has_state else rounded_in
    full = (
        record_steps(prob.q, prob.k, prob.v, precision=prec.name, **kw)
        if prec.rounds_p
        else in_state
    )
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
    o_naive, _ = softmax_attention(
        *stored,
        scale=prob.scale,
        offset=prob.offset,
        dtype=prec.state.type,
        p_dtype=prec.storage if prec.rounds_p else None,
    )
    naive_err = max_error(o_naive, o_ref)
    return Breakdown(prec.name, o_ref, lse_ref, tuple(stages), naive_err)
