"""The software exp2 lesson (FlashAttention-4): how far the polynomial is from 2^x.

``exp2_errors(degree)`` evaluates ``flashviz.core.exp2.exp2_poly`` in float32 over the
range P~ = 2^x takes in a run (x from ``X_RANGE[0]``, far below the max, up to the FA4
headroom ``X_RANGE[1]``) against the exact 2^x, in float32 ulps and after rounding P~ to
float16 and bfloat16, as the P~ V product reads it. ``bits`` is the polynomial's accuracy
in bits (-log2 of its largest relative error).
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from flashviz.core.checks import check_int
from flashviz.core.exp2 import EXP2_COEFFS, POLY_REL_ERROR, exp2_poly, ulps

X_RANGE = (-16.0, 8.0)  # 2^-16 .. 2^8: where P~ lives, up to FA4's headroom of 2^8
POINTS = 4001
ULP_TYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
MANTISSA_BITS = {"float32": 24, "float16": 11, "bfloat16": 8}  # significant bits


@dataclass(frozen=True)
class Exp2Errors:
    degree: int
    x: np.ndarray  # (POINTS,) exponents, float32
    ulps: dict[str, np.ndarray]  # type -> (POINTS,) error in that type's ulps
    rel_error: float  # the polynomial's largest relative error on [0, 1)
    bits: float  # -log2(rel_error): correct bits

    def max_ulps(self, name: str) -> float:
        return float(np.max(self.ulps[name]))


def exp2_errors(degree: int) -> Exp2Errors:
    """The polynomial of ``degree`` against exact 2^x over ``X_RANGE``."""
    degree = check_int("degree", degree, min(EXP2_COEFFS), max(EXP2_COEFFS))
    x = np.linspace(*X_RANGE, POINTS).astype(np.float32)
    got, exact = exp2_poly(x, degree), np.exp2(x.astype(np.float64))
    errors = {name: ulps(got, exact, dtype) for name, dtype in ULP_TYPES.items()}
    rel = POLY_REL_ERROR[degree]
    return Exp2Errors(degree, x, errors, rel, float(-np.log2(rel)))


def verdict(e: Exp2Errors) -> str:
    """The lesson of one degree, in words, from its numbers."""
    f32, f16, bf16 = (e.max_ulps(n) for n in ULP_TYPES)
    text = (
        f"Degree {e.degree}: {e.bits:.1f} correct bits, up to {f32:,.0f} float32 ulps "
        f"(float32 has {MANTISSA_BITS['float32']}). "
    )
    if f16 <= 1 and bf16 <= 1:
        return text + (
            "Once P~ is rounded to 16 bits for the P~ V product the two differ by at most one "
            f"ulp of float16 ({MANTISSA_BITS['float16']} bits) and of bfloat16 "
            f"({MANTISSA_BITS['bfloat16']} bits), where 2^x lies near a rounding boundary: "
            "no more than the rounding P~ gets anyway. That is why FA4 can compute part of "
            "its exponentials this way, on the FMA units, while the special-function unit "
            "computes the rest."
        )
    return text + (
        f"Rounded to 16 bits it is still up to {f16:,.0f} float16 ulps and {bf16:,.0f} "
        "bfloat16 ulps off: too few bits even for a 16-bit P~."
    )
