"""Shared by the precision lessons' tests: the precisions, the problem sizes, the unit
roundoff of a type and random inputs."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from flashviz.core.precision import get_precision

LOW = ["float32", "float16", "bfloat16"]
CASES = [  # (n_q, n_k, d, block_q, block_kv, causal, align): uneven sizes, both alignments
    (13, 29, 7, 4, 6, False, "bottom_right"),
    (29, 13, 8, 8, 5, True, "bottom_right"),  # n_q > n_k: the first rows see no key
    (17, 17, 16, 5, 4, True, "top_left"),
    (1, 1, 3, 1, 1, False, "bottom_right"),
]


def u(name: str) -> float:
    """Unit roundoff of the storage type of ``name``."""
    return float(ml_dtypes.finfo(get_precision(name).storage).eps) / 2


def random_qkv(
    rng: np.random.Generator, n_q: int, n_k: int, d: int, magnitude: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q (n_q, d) scaled by ``magnitude``, k and v (n_k, d): standard normal."""
    return (
        rng.standard_normal((n_q, d)) * magnitude,
        rng.standard_normal((n_k, d)),
        rng.standard_normal((n_k, d)),
    )
