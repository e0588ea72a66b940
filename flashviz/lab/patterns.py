"""Input patterns that make one part of FlashAttention-2 visible.

``make_inputs(pattern, n_q, n_k, d, seed)`` returns float64 ``q`` (n_q, d), ``k`` and ``v``
(n_k, d), reproducible from ``seed``. The patterns assume the default softmax scale
1/sqrt(d):

- ``"random"``: q, k, v standard normal;
- ``"spiky"``: a few late keys point along the queries' shared direction, each more than
  the last, so a row's running max m_i jumps at late tiles and alpha < 1 rescales the
  state built so far;
- ``"sink"``: key 0 points along the queries' shared direction so strongly that it takes
  most of every row's weight (an "attention sink"); the max is set by the first tile and
  never changes;
- ``"similar"``: near-identical keys, so every score is almost the same and the weights
  are almost uniform (P~ close to 1 everywhere).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flashviz.core.checks import check_int

PATTERNS: dict[str, str] = {
    "random": "plain random",
    "spiky": "spiky keys (the max jumps late)",
    "sink": "attention sink on key 0",
    "similar": "near-identical keys",
}

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def _direction(rng: np.random.Generator, d: int) -> np.ndarray:
    u = rng.standard_normal(d)
    return u / np.linalg.norm(u)


def _random(rng: np.random.Generator, n_q: int, n_k: int, d: int) -> Arrays:
    return rng.standard_normal((n_q, d)), rng.standard_normal((n_k, d)), _values(rng, n_k, d)


def _values(rng: np.random.Generator, n_k: int, d: int) -> np.ndarray:
    return rng.standard_normal((n_k, d))


def spike_positions(n_k: int) -> list[int]:
    """Key indices of the spikes: late in the sequence, in increasing order."""
    return sorted({min(n_k - 1, int(f * n_k)) for f in (0.45, 0.7, 0.95)})


def _spiky(rng: np.random.Generator, n_q: int, n_k: int, d: int) -> Arrays:
    u = _direction(rng, d)
    q = 0.3 * rng.standard_normal((n_q, d)) + u  # every query leans along u
    k = 0.5 * rng.standard_normal((n_k, d))
    for rank, c in enumerate(spike_positions(n_k), start=1):
        k[c] += 1.5 * rank * np.sqrt(d) * u  # score ~ 1.5 * rank: a higher max each time
    return q, k, _values(rng, n_k, d)


def _sink(rng: np.random.Generator, n_q: int, n_k: int, d: int) -> Arrays:
    u = _direction(rng, d)
    q = 0.2 * rng.standard_normal((n_q, d)) + u
    k = 0.3 * rng.standard_normal((n_k, d))
    k[0] = (np.log(n_k) + 4.0) * np.sqrt(d) * u  # score of key 0 beats the rest by e^4 in sum
    return q, k, _values(rng, n_k, d)


def _similar(rng: np.random.Generator, n_q: int, n_k: int, d: int) -> Arrays:
    base = rng.standard_normal(d)
    k = base + 1e-3 * rng.standard_normal((n_k, d))
    return rng.standard_normal((n_q, d)), k, _values(rng, n_k, d)


_MAKERS: dict[str, Callable[[np.random.Generator, int, int, int], Arrays]] = {
    "random": _random,
    "spiky": _spiky,
    "sink": _sink,
    "similar": _similar,
}


def make_inputs(pattern: str, n_q: int, n_k: int, d: int, seed: int) -> Arrays:
    """q (n_q, d), k (n_k, d), v (n_k, d) in float64 for ``pattern``, reproducible from seed."""
    if pattern not in _MAKERS:
        raise ValueError(f"pattern must be one of {list(PATTERNS)}, got {pattern!r}")
    n_q, n_k, d = (check_int(name, x, 1) for name, x in (("n_q", n_q), ("n_k", n_k), ("d", d)))
    seed = check_int("seed", seed, 0)
    q, k, v = _MAKERS[pattern](np.random.default_rng(seed), n_q, n_k, d)
    return q.astype(np.float64), k.astype(np.float64), v.astype(np.float64)
