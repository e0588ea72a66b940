"""Shared fixtures: fresh random inputs each run, with the seed printed for a replay."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator seeded afresh each time; the seed is printed (shown on failure)."""
    seed = int(np.random.SeedSequence().entropy % 2**32)
    print(f"rng seed: {seed}")
    return np.random.default_rng(seed)


@pytest.fixture
def make_qkv(rng: np.random.Generator) -> Callable[..., tuple[np.ndarray, ...]]:
    """make_qkv(n_q, n_k, d, lead=(), dtype=np.float64, magnitude=1.0) -> q, k, v."""

    def make(
        n_q: int,
        n_k: int,
        d: int,
        lead: tuple[int, ...] = (),
        dtype: type = np.float64,
        magnitude: float = 1.0,
    ) -> tuple[np.ndarray, ...]:
        q = rng.standard_normal((*lead, n_q, d)) * magnitude
        k = rng.standard_normal((*lead, n_k, d)) * magnitude
        v = rng.standard_normal((*lead, n_k, d))
        return tuple(x.astype(dtype) for x in (q, k, v))

    return make


# Scripts (README screenshots, latency and load measurements) and data, not tests.
collect_ignore = ["tools", "figures/data"]
