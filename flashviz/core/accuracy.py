"""How far from the reference a result may be: flash-attn's rule (its test_flash_attn.py).

A result computed in precision P is right when its error against a higher-precision
reference is at most twice the error of naive attention computed in P against the same
reference, plus a floor of a few ulps of P (naive can be exact, e.g. with a single key).
Used by the tests and by the GPU benchmark, which checks each method before timing it.
"""

from __future__ import annotations

import numpy as np

ULPS_FLOOR = 4


def max_error(result: np.ndarray, ref: np.ndarray) -> float:
    """Max abs error over entries finite in ``ref``; inf if infinities or NaNs disagree."""
    result = np.asarray(result)
    finite = np.isfinite(ref)
    if np.isnan(result).any() or not np.array_equal(result[~finite], ref[~finite]):
        return float("inf")
    diff = result[finite].astype(ref.dtype) - ref[finite]
    return float(np.abs(diff).max(initial=0.0))


def allowed_error(ref: np.ndarray, naive: np.ndarray, eps: float, extra: float = 0.0) -> float:
    """2 x naive's own error + ``ULPS_FLOOR`` ulps (``eps``) of the reference's magnitude."""
    magnitude = float(np.abs(ref[np.isfinite(ref)]).max(initial=1.0))
    return 2 * max_error(naive, ref) + ULPS_FLOOR * eps * magnitude + extra
