"""Precisions a run can use: how inputs are stored, what the softmax state is kept in.

Real FlashAttention kernels read Q, K, V in float16 or bfloat16, keep m, l and the output
accumulator in float32, and round P~ back to the input type for the P~ V matmul on tensor
cores. ``PRECISIONS`` names the settings flashviz can show; "float64" is the baseline in
which every number is kept to float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np


@dataclass(frozen=True)
class Precision:
    """``storage``: inputs (and P~ for the matmul); ``state``: m_i, l_i, o_i and the math."""

    name: str
    storage: np.dtype
    state: np.dtype

    @property
    def rounds_p(self) -> bool:
        """Whether P~ is rounded to the storage type before P~ V (16-bit kernels do)."""
        return self.storage.itemsize < self.state.itemsize

    @property
    def eps(self) -> float:
        """Machine epsilon of the storage type (twice the unit roundoff of its rounding)."""
        return float(ml_dtypes.finfo(self.storage).eps)


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("float64", np.dtype(np.float64), np.dtype(np.float64)),
        Precision("float32", np.dtype(np.float32), np.dtype(np.float32)),
        Precision("float16", np.dtype(np.float16), np.dtype(np.float32)),
        Precision("bfloat16", np.dtype(ml_dtypes.bfloat16), np.dtype(np.float32)),
    )
}
PRECISION_LABELS = {
    "float64": "float64 everywhere (baseline)",
    "float32": "float32 inputs and state",
    "float16": "float16 inputs, float32 state",
    "bfloat16": "bfloat16 inputs, float32 state",
}


def get_precision(name: str) -> Precision:
    if not isinstance(name, str) or name not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {name!r}")
    return PRECISIONS[name]


def store(x: np.ndarray, precision: Precision) -> np.ndarray:
    """``x`` rounded to the storage type, returned in the state type (exactly representable)."""
    with np.errstate(over="ignore"):  # out-of-range values become inf; callers check
        return np.asarray(x).astype(precision.storage).astype(precision.state)
