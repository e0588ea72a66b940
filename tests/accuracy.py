"""Tolerances taken from the reference's own error (REFERENCE.md section 3).

An implementation computing in precision P passes when its error against a reference in
higher precision is at most twice the error of naive attention computed in P against the
same reference, plus a floor of a few ulps of P (for cases where naive is exact, such as a
single key). The reference is float64 for float32 inputs and long double (80-bit on
x86-64) for float64 inputs.
"""

from __future__ import annotations

import numpy as np

from flashviz.masking import mask_offset
from flashviz.reference import softmax_attention

ULPS_FLOOR = 4


def higher_precision(dtype: np.dtype) -> type[np.floating]:
    return np.float64 if dtype == np.float32 else np.longdouble


def error(a: np.ndarray, b: np.ndarray) -> float:
    """Max abs difference over entries finite in b (infinite entries must match exactly)."""
    fin = np.isfinite(b)
    assert np.array_equal(np.isposinf(a), np.isposinf(b)), "+inf entries differ"
    assert np.array_equal(np.isneginf(a), np.isneginf(b)), "-inf entries differ"
    assert not np.isnan(a).any(), "NaN in output"
    if not fin.any():
        return 0.0
    return float(np.abs(a[fin].astype(b.dtype) - b[fin]).max())


def assert_matches_reference(
    o: np.ndarray,
    lse: np.ndarray,
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    scale: float | None = None,
    causal: bool = False,
    causal_align: str = "bottom_right",
) -> tuple[float, float]:
    """Check o and lse of an implementation run on q, k, v (their dtype) against the rule."""
    dtype = q.dtype
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    offset = mask_offset(q.shape[-2], k.shape[-2], causal, causal_align)
    hp = higher_precision(dtype)
    o_ref, lse_ref = softmax_attention(q, k, v, scale=scale, offset=offset, dtype=hp)
    o_naive, lse_naive = softmax_attention(q, k, v, scale=scale, offset=offset, dtype=dtype.type)
    eps = np.finfo(dtype).eps
    finite_lse = lse_ref[np.isfinite(lse_ref)]
    o_floor = ULPS_FLOOR * eps * float(np.abs(o_ref).max(initial=1.0))
    lse_floor = ULPS_FLOOR * eps * float(np.abs(finite_lse).max(initial=1.0))
    o_err, lse_err = error(o, o_ref), error(lse, lse_ref)
    o_tol = 2 * error(o_naive, o_ref) + o_floor
    lse_tol = 2 * error(lse_naive, lse_ref) + lse_floor
    assert o.shape == o_ref.shape and lse.shape == lse_ref.shape
    assert o_err <= o_tol, f"o error {o_err:.3e} > tolerance {o_tol:.3e}"
    assert lse_err <= lse_tol, f"lse error {lse_err:.3e} > tolerance {lse_tol:.3e}"
    empty = np.isneginf(lse_ref)
    assert (o[empty] == 0).all(), "rows that see no key must give o = 0"
    return o_err, lse_err
