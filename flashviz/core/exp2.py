"""Software exp2: the exponential FlashAttention-4 computes on the FMA units.

On Blackwell the tensor cores got faster than the special-function unit (SFU) that
computes ``exp2``, so FA4 computes part of its exponentials in software (flash-attn's
``ex2_emulation``): 2^x = 2^n * 2^f with n = floor(x) and f = x - n in [0, 1). The integer n
goes into the exponent bits (``ldexp``); the fraction goes through a polynomial
p(f) ~ 2^f, evaluated by Horner's rule, one FMA a degree. flash-attn uses a cubic.

The coefficients below are flashviz's own, not flash-attn's: p(0) = 1 exactly (so every
power of two comes out exact), the others fitted to 2^f on [0, 1] in relative error
(iteratively reweighted least squares towards the minimax fit, in float64, once, offline).
``POLY_REL_ERROR`` is each polynomial's largest relative error on [0, 1), measured on a
grid of 200,001 points; tests/core/test_exp2.py checks it.

An ``exp`` built from it (``exp_impl``) takes e^x = 2^(x log2 e), as kernels do with
log2 e folded into the softmax scale.
"""

from __future__ import annotations

from collections.abc import Callable

import ml_dtypes
import numpy as np

Array = np.ndarray
LOG2E = 1.4426950408889634  # log2(e)

# degree -> (c1, ..., c_degree) of p(f) = 1 + c1 f + ... + c_degree f^degree ~ 2^f on [0, 1)
EXP2_COEFFS: dict[int, tuple[float, ...]] = {
    1: (0.92355768258203008,),
    2: (0.66596081362852333, 0.32993262481035762),
    3: (0.69511679699065021, 0.22764494711466296, 0.077067081296275278),
    4: (0.693044844302803, 0.24128020914356982, 0.052242465203224661, 0.013426689759219609),
    5: (0.69315131183035106, 0.24016444986711677, 0.055799914107171923,
        0.0090170289570607534, 0.0018671307031782952),
}  # fmt: skip
POLY_REL_ERROR = {1: 3.83e-2, 2: 2.06e-3, 3: 8.56e-5, 4: 2.90e-6, 5: 8.23e-8}  # max |p/2^f - 1|
EXACT = "exact"
EXP_IMPLS = (EXACT, *(f"poly{degree}" for degree in EXP2_COEFFS))  # the choices of exp_impl


def exp2_poly(x: Array, degree: int = 3) -> Array:
    """2^x with the fraction through the polynomial of ``degree``: 2^floor(x) * p(x -
    floor(x)), in float32 or float64 (``_as_float``). -inf gives 0; NaN stays NaN."""
    if degree not in EXP2_COEFFS:
        raise ValueError(f"degree must be one of {sorted(EXP2_COEFFS)}, got {degree!r}")
    x = _as_float(x)
    dtype = x.dtype
    with np.errstate(invalid="ignore"):
        clipped = np.clip(np.nan_to_num(x, nan=0.0), -1100.0, 1100.0)  # ldexp's range; 0 or inf
    n = np.floor(clipped)
    f = clipped - n  # in [0, 1)
    p = np.zeros_like(f)
    for c in reversed(EXP2_COEFFS[degree]):  # Horner: p = (((c_n f + c_{n-1}) f + ...) f
        p = p * f + dtype.type(c)
    p = p * f + dtype.type(1.0)
    with np.errstate(over="ignore", under="ignore"):
        y = np.ldexp(p, n.astype(np.int32))
    return np.where(np.isnan(x), x, y)


def _as_float(x: object) -> Array:
    """``x`` as an array of float32 or float64 (its own; float64 for integers; float32 for
    the 16-bit types, whose arithmetic NumPy does in float32 anyway)."""
    x = np.asarray(x)
    if x.dtype in (np.float32, np.float64):
        return x
    if x.dtype.itemsize == 2 and x.dtype.kind in "fV":  # float16, ml_dtypes' bfloat16
        return x.astype(np.float32)
    return x.astype(np.float64)


def exp_impl(name: str) -> Callable[[Array], Array]:
    """e^x as a run computes it: ``"exact"`` (NumPy's exp) or ``"poly<degree>"`` (software
    exp2 of that degree on x log2 e)."""
    if name == EXACT:
        return np.exp
    if name not in EXP_IMPLS:
        raise ValueError(f"exp_impl must be one of {list(EXP_IMPLS)}, got {name!r}")
    degree = int(name.removeprefix("poly"))

    def exp_by_poly(x: Array) -> Array:
        x = _as_float(x)
        return exp2_poly(x * x.dtype.type(LOG2E), degree)

    exp_by_poly.__name__ = f"exp_{name}"
    return exp_by_poly


def ulps(got: Array, exact: Array, dtype: type[np.generic]) -> Array:
    """|got - exact| in units in the last place of ``dtype`` (float32, float16, bfloat16) at
    ``exact``, both rounded to ``dtype`` first: 0 where they round alike."""
    info = ml_dtypes.finfo(dtype)
    with np.errstate(over="ignore"):  # past the type's range: inf, as it stores it
        got_d, exact_d = (np.asarray(a).astype(dtype).astype(np.float64) for a in (got, exact))
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log2(np.abs(exact_d)))
    exponent = np.where(np.isfinite(exponent), exponent, info.maxexp - 1)  # inf: the largest
    spacing = np.exp2(np.maximum(exponent, info.minexp) - info.nmant)  # subnormals: the least
    with np.errstate(invalid="ignore"):
        return np.where(got_d == exact_d, 0.0, np.abs(got_d - exact_d) / spacing)
