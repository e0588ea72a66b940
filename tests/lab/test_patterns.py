"""Input patterns: shapes, reproducibility, and that each shows what it promises."""

from __future__ import annotations

import numpy as np
import pytest

from flashviz import attention_reference, record_trace
from flashviz.lab.patterns import PATTERNS, make_inputs


def _weights(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    s = q @ k.T / np.sqrt(q.shape[1])
    p = np.exp(s - s.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_shapes_dtype_and_seed(pattern: str) -> None:
    q, k, v = make_inputs(pattern, 7, 13, 5, seed=3)
    assert (q.shape, k.shape, v.shape) == ((7, 5), (13, 5), (13, 5))
    assert q.dtype == k.dtype == v.dtype == np.float64
    again = make_inputs(pattern, 7, 13, 5, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((q, k, v), again, strict=True))
    other = make_inputs(pattern, 7, 13, 5, seed=4)
    assert not np.array_equal(q, other[0])
    o, _ = attention_reference(q, k, v)
    assert np.isfinite(o).all()


@pytest.mark.parametrize(("n", "block"), [(16, 4), (64, 16), (40, 8)])
def test_spiky_max_jumps_late(n: int, block: int) -> None:
    q, k, v = make_inputs("spiky", n, n, 8, seed=1)
    trace = record_trace(q, k, v, block_q=block, block_kv=block)
    n_j = -(-n // block)
    for t in trace.tile_steps():
        if t.j == n_j - 1:  # the last tile holds the biggest spike: the max rises late
            assert t.max_changed.mean() >= 0.75
            assert np.median(t.alpha) < 0.5


def test_sink_takes_most_weight() -> None:
    for n in (8, 64, 256):
        q, k, _ = make_inputs("sink", n, n, 16, seed=2)
        w = _weights(q, k)
        assert w[:, 0].mean() > 0.9
        assert (w[:, 0] > 0.5).mean() > 0.95
        trace = record_trace(q, k, _, block_q=8, block_kv=8)
        assert not any(t.max_changed.any() for t in trace.tile_steps() if t.j > 0)


def test_similar_keys_give_uniform_weights() -> None:
    q, k, _ = make_inputs("similar", 20, 30, 8, seed=5)
    w = _weights(q, k)
    assert np.allclose(w, 1 / 30, rtol=0.05)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("zigzag", 4, 4, 4, 0), "pattern"),
        (("random", 0, 4, 4, 0), "n_q must be at least 1, got 0"),
        (("random", 4, 2.0, 4, 0), "n_k must be an integer, got 2.0"),
        (("random", 4, 4, 0, 0), "d must be at least 1, got 0"),
        (("random", 4, 4, 4, -1), "seed must be at least 0, got -1"),
    ],
)
def test_invalid_arguments(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_inputs(*args)
