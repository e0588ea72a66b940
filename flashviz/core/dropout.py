"""Reproducible dropout masks that do not depend on the tiling.

Like flash-attn's Philox-based dropout, the keep/drop decision for entry (b, r, c) of the
attention matrix is a pure function of (seed, b, r, c): a counter-based hash
(SplitMix64's finaliser). So the same seed drops the same entries whatever the block
sizes, and a tile's mask is made without materialising the whole matrix.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def uniform(seed: int, heads: int, rows: range, cols: range, n_q: int, n_k: int) -> np.ndarray:
    """Uniform [0, 1) numbers for entries (h, r, c), shape (heads, len(rows), len(cols))."""
    h = np.arange(heads, dtype=np.uint64)[:, None, None]
    r = np.arange(rows.start, rows.stop, dtype=np.uint64)[None, :, None]
    c = np.arange(cols.start, cols.stop, dtype=np.uint64)[None, None, :]
    counter = (h * np.uint64(n_q) + r) * np.uint64(n_k) + c
    with np.errstate(over="ignore"):
        key = _splitmix64(np.array(seed % 2**64, dtype=np.uint64))
        bits = _splitmix64(counter ^ key)
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def keep_mask(
    seed: int, dropout_p: float, heads: int, rows: range, cols: range, n_q: int, n_k: int
) -> np.ndarray:
    """True where entry (h, r, c) is kept (probability 1 - dropout_p)."""
    return uniform(seed, heads, rows, cols, n_q, n_k) >= dropout_p


def fresh_seed() -> int:
    """A random seed, for calls that ask for dropout without one."""
    entropy = np.random.SeedSequence().entropy
    assert isinstance(entropy, int)  # none was given: an int drawn from the OS
    return entropy % 2**63
