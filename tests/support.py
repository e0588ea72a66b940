"""Shared test helpers: tolerances from the reference's own error, Plotly figure JSON, the
repository root.

Tolerances taken from the reference's own error, as flash-attn's tests do:

An implementation computing in precision P passes when its error against a reference in
higher precision is at most twice the error of naive attention computed in P against the
same reference (flash-attn's rule), plus a floor made of two parts:

- a few ulps of the output, for cases where naive is exact (a single key);
- one ulp of the largest score times max |v|: a score off by one rounding moves the
  softmax weights by that much. With logits of 1e4 in float32 one ulp is 1e-3, and which
  matmul kernel rounds a score up or down is luck; on small problems the maximum error is
  over few entries and naive may be lucky. On unit-scale data this term is ~1e-7 and the
  2x rule decides.

The reference is float64 for float32 inputs and long double (80-bit on x86-64) for
float64 inputs.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from flashviz.core.accuracy import allowed_error, max_error
from flashviz.core.masking import mask_offset
from flashviz.core.reference import masked_scores, softmax_rows

ROOT = Path(__file__).resolve().parents[1]  # the repository


def higher_precision(dtype: np.dtype) -> type[np.floating]:
    return np.float64 if dtype == np.float32 else np.longdouble


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
    s_ref = masked_scores(q, k, scale=scale, offset=offset, dtype=hp)
    o_ref, lse_ref = softmax_rows(s_ref, v)
    o_naive, lse_naive = softmax_rows(
        masked_scores(q, k, scale=scale, offset=offset, dtype=dtype.type), v
    )
    eps = float(np.finfo(dtype).eps)
    s_max = float(np.abs(s_ref[np.isfinite(s_ref)]).max(initial=0.0))
    o_err, lse_err = max_error(o, o_ref), max_error(lse, lse_ref)
    o_tol = allowed_error(o_ref, o_naive, eps, extra=eps * s_max * float(np.abs(v).max()))
    lse_tol = allowed_error(lse_ref, lse_naive, eps, extra=eps * s_max)
    assert o.shape == o_ref.shape and lse.shape == lse_ref.shape
    assert o_err <= o_tol, f"o error {o_err:.3e} > tolerance {o_tol:.3e}"
    assert lse_err <= lse_tol, f"lse error {lse_err:.3e} > tolerance {lse_tol:.3e}"
    empty = np.isneginf(lse_ref)
    assert (o[empty] == 0).all(), "rows that see no key must give o = 0"
    return o_err, lse_err


# --- Plotly figure JSON (Plotly >= 6 writes arrays as base64 typed arrays) ---

DTYPES = {
    "f8": np.float64,
    "f4": np.float32,
    "i4": np.int32,
    "i8": np.int64,
    "i1": np.int8,
    "u1": np.uint8,
    "i2": np.int16,
    "u2": np.uint16,
    "u4": np.uint32,
}


def decode(value: object) -> np.ndarray:
    """A typed-array spec {dtype, bdata, shape} or a plain list, as a NumPy array."""
    if isinstance(value, dict) and "bdata" in value:
        a = np.frombuffer(base64.b64decode(value["bdata"]), dtype=DTYPES[value["dtype"]])
        shape = value.get("shape")
        if shape:
            a = a.reshape([int(s) for s in str(shape).split(",")])
        return a
    return np.array(value, dtype=float)


def spec(fig_json: str) -> dict:
    return json.loads(fig_json)
