"""The tolerance rule for gradients, as ``tests.support.assert_matches_reference`` states it
for the forward: an implementation computing in precision P passes when its error against a
higher-precision reference (float64 for float32 inputs, long double for float64) is at most
twice the error of the naive backward computed in P, plus a floor of a few ulps of the
gradient's magnitude and, as the forward's floor, one ulp of the largest score: the tiled
backward recomputes P_ij = exp(S_ij - L_i) from the forward's L_i, rounded to P, so every
P_ij may be off by that much relative (a score of 1e3 in float32: 1e-4). Each gradient
then moves by up to that times the sum of the absolute terms it adds up: dS_ij moves by
P_ij (|dP_ij| + |D_i|), so scale P (|dP| + |D|) |K| for dq, its transpose times |Q| for dk,
P^T |dO| for dv (the gradient itself can be far smaller: the rows of dS sum to zero, and a
one-hot P gives dS = 0 up to rounding). dP_ij = dO_i . V_j and D_i are dot products rounded to
P, so dS_ij also moves by a few ulps (``ULPS_FLOOR``) of P_ij (A_ij + rowsum(P A)_i), with
A = |dO| |V|^T >= |dP|: the naive backward can hide that where it cancels exactly (one key:
P = 1 and its dS = dP - dP = 0, while the tiled dP - D keeps two different roundings). So
each gradient's floor is (largest score + ``ULPS_FLOOR``) ulps of its terms with A for |dP|."""

from __future__ import annotations

import numpy as np

from flashviz.core.accuracy import ULPS_FLOOR, allowed_error, max_error
from flashviz.core.backward import softmax_ds, softmax_gradients
from flashviz.core.masking import mask_offset
from flashviz.core.reference import masked_scores
from tests.support import higher_precision

NAMES = ("dq", "dk", "dv")


def assert_gradients_match(
    grads: tuple[np.ndarray, ...],
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    do: np.ndarray,
    *,
    scale: float | None = None,
    causal: bool = False,
    causal_align: str = "bottom_right",
    mask: np.ndarray | None = None,
    group: int = 1,
) -> dict[str, tuple[float, float]]:
    """Check (dq, dk, dv) computed on q, k, v, do (their dtype) against the rule; returns
    each gradient's (error, tolerance). ``mask``: visible entries in place of the causal
    one; ``group`` > 1: k and v are given repeated to q's heads (grouped-query attention)
    and dk, dv are sums over each group of query heads, as are their references and terms."""
    dtype = q.dtype
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    offset = mask_offset(q.shape[-2], k.shape[-2], causal, causal_align)
    hp = higher_precision(dtype)
    kw = dict(scale=scale, offset=offset, mask=mask)
    ref = softmax_gradients(q, k, v, do, dtype=hp, **kw)
    naive = softmax_gradients(q, k, v, do, dtype=dtype.type, **kw)
    eps = float(np.finfo(dtype).eps)
    s = masked_scores(q, k, dtype=hp, **kw)
    s_max = float(np.abs(s[np.isfinite(s)]).max(initial=0.0))
    p, _, _ = softmax_ds(q, k, v, do, dtype=hp, **kw)
    q_, k_, v_, do_ = (np.abs(x.astype(hp)) for x in (q, k, v, do))
    a = do_ @ np.swapaxes(v_, -1, -2)  # A = |dO| |V|^T >= |dP|  (..., n_q, n_k)
    ds_moves = p * (a + (p * a).sum(axis=-1, keepdims=True))  # (..., n_q, n_k)
    terms = (
        abs(scale) * ds_moves @ k_,
        abs(scale) * np.swapaxes(ds_moves, -1, -2) @ q_,
        np.swapaxes(p, -1, -2) @ do_,
    )
    ref, naive, terms = (_group_sums(x, group) for x in (ref, naive, terms))
    out = {}
    for name, got, r, n, t in zip(NAMES, grads, ref, naive, terms, strict=True):
        assert got.shape == r.shape and got.dtype == dtype, (name, got.shape, got.dtype)
        extra = eps * (s_max + ULPS_FLOOR) * float(t.max(initial=0.0))
        err, tol = max_error(got, r), allowed_error(r, n, eps, extra=extra)
        assert err <= tol, f"{name} error {err:.3e} > tolerance {tol:.3e}"
        out[name] = (err, tol)
    return out


def _group_sums(grads: tuple[np.ndarray, ...], group: int) -> tuple[np.ndarray, ...]:
    """(dq, dk, dv) per query head with dk and dv summed over each group of ``group`` heads."""
    dq, dk, dv = grads
    if group == 1:
        return grads
    summed = (x.reshape(*x.shape[:-3], -1, group, *x.shape[-2:]).sum(axis=-3) for x in (dk, dv))
    return (dq, *summed)
