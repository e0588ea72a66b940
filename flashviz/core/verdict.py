"""Compare a traced run with the float64 reference: the correctness verdict the app shows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flashviz.core.accuracy import allowed_error
from flashviz.core.precision import get_precision
from flashviz.core.reference import attention_reference, softmax_attention
from flashviz.core.trace import Trace

DEFAULT_TOL = 1e-10  # both sides compute in float64; differences are rounding only


def row_errors(
    o: np.ndarray, lse: np.ndarray, o_ref: np.ndarray, lse_ref: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per query row: max |o - o_ref| and |lse - lse_ref| (0 where both are -inf: a row that
    sees no key); each (n_q,), in float64."""
    err_o = np.abs(o.astype(np.float64) - o_ref).max(axis=1)
    with np.errstate(invalid="ignore"):
        diff = np.abs(lse.astype(np.float64) - lse_ref)
    both_empty = np.isneginf(lse) & np.isneginf(lse_ref)
    return err_o, np.where(both_empty, 0.0, np.nan_to_num(diff, nan=np.inf))


class RowErrorMaxima:
    """For a result holding per-row errors ``err_o`` and ``err_lse`` (n_q,): their maxima."""

    err_o: np.ndarray
    err_lse: np.ndarray

    @property
    def max_err_o(self) -> float:
        return float(self.err_o.max())

    @property
    def max_err_lse(self) -> float:
        return float(self.err_lse.max())


@dataclass(frozen=True, eq=False)
class Verdict(RowErrorMaxima):
    """Final output and logsumexp against the reference, with the largest errors."""

    o_ref: np.ndarray  # (n_q, d)
    lse_ref: np.ndarray  # (n_q,)
    err_o: np.ndarray  # (n_q,) max |o - o_ref| over each row
    err_lse: np.ndarray  # (n_q,) |lse - lse_ref| (0 where both are -inf)
    tol: float  # for o
    tol_lse: float

    @property
    def ok(self) -> bool:
        return self.max_err_o <= self.tol and self.max_err_lse <= self.tol_lse


def precision_tolerance(
    trace: Trace, o_ref: np.ndarray, lse_ref: np.ndarray
) -> tuple[float, float]:
    """Tolerances for (o, lse). float64: ``DEFAULT_TOL``. Lower precisions: flash-attn's
    rule, 2 x the error of naive attention in the same precision (state type, P~ rounded
    like the trace) + 4 ulps."""
    prec = get_precision(trace.precision)
    if prec.state == np.float64:
        return DEFAULT_TOL, DEFAULT_TOL
    o_naive, lse_naive = softmax_attention(
        trace.q,
        trace.k,
        trace.v,
        scale=trace.scale,
        dtype=prec.state.type,
        mask=trace.dense_visible(),
        p_dtype=prec.storage if prec.rounds_p else None,
    )
    eps = float(np.finfo(prec.state).eps)
    return allowed_error(o_ref, o_naive, eps), allowed_error(lse_ref, lse_naive, eps)


def compare_with_reference(trace: Trace, tol: float | None = None) -> Verdict:
    """Run ``attention_reference`` on the inputs the trace saw and measure the trace's error.

    ``tol`` defaults to ``precision_tolerance``.
    """
    o_ref, lse_ref = attention_reference(
        trace.q,
        trace.k,
        trace.v,
        causal=trace.causal,
        causal_align=trace.causal_align,
        scale=trace.scale,
        mask_mod=trace.mask_mod,
    )
    err_o, err_lse = row_errors(trace.o, trace.lse, o_ref, lse_ref)
    tol_o, tol_lse = precision_tolerance(trace, o_ref, lse_ref) if tol is None else (tol, tol)
    return Verdict(o_ref, lse_ref, err_o, err_lse, tol_o, tol_lse)
