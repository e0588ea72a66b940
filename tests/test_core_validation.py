"""Bad input: a ValueError or TypeError naming the argument and what was expected."""

from __future__ import annotations

import numpy as np
import pytest

from flashviz import attention_reference, flash_attention, naive_attention, record_trace

ENTRY_POINTS = [
    lambda q, k, v, **kw: attention_reference(q, k, v, **kw),
    lambda q, k, v, **kw: naive_attention(q, k, v, **kw),
    lambda q, k, v, **kw: flash_attention(q, k, v, **kw),
    lambda q, k, v, **kw: record_trace(q, k, v, block_q=4, block_kv=4, **kw),
]


def ok(n_q=5, n_k=6, d=3, dtype=np.float64):
    rng = np.random.default_rng(0)  # the values do not matter here, only shapes and dtypes
    return (
        rng.standard_normal((n_q, d)).astype(dtype),
        rng.standard_normal((n_k, d)).astype(dtype),
        rng.standard_normal((n_k, d)).astype(dtype),
    )


@pytest.mark.parametrize("call", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("mutate", "error", "pattern"),
    [
        (lambda q, k, v: (q[0], k, v), ValueError, r"q must have shape .*got shape \(3,\)"),
        (lambda q, k, v: (q, k[:, :2], v), ValueError, r"k must have head dim d = 3"),
        (lambda q, k, v: (q, k, v[:, :2]), ValueError, r"v must have head dim d = 3"),
        (lambda q, k, v: (q, k, v[:4]), ValueError, r"v must have as many rows as k"),
        (lambda q, k, v: (q[:0], k, v), ValueError, r"q must have at least one row"),
        (lambda q, k, v: (q, k[:, :0], v[:, :0]), ValueError, r"at least one row and one col"),
        (lambda q, k, v: (q.astype(int), k, v), TypeError, r"q must be a float32 or float64"),
        (lambda q, k, v: (q, k.astype(np.float16), v), TypeError, r"k must be a float32 or"),
        (lambda q, k, v: (q, k.astype(np.float32), v), TypeError, r"share one dtype"),
        (lambda q, k, v: (q, k, np.where(v > 0, np.nan, v)), ValueError, r"v must be finite"),
        (lambda q, k, v: (np.full_like(q, np.inf), k, v), ValueError, r"q must be finite"),
    ],
)
def test_bad_arrays(call, mutate, error, pattern):
    with pytest.raises(error, match=pattern):
        call(*mutate(*ok()))


def test_mismatched_leading_dims():
    q, k, v = ok()
    with pytest.raises(ValueError, match=r"k must have the same leading \(batch, head\) dims"):
        flash_attention(q[None].repeat(2, 0), k[None], v[None])


@pytest.mark.parametrize("call", ENTRY_POINTS)
def test_bad_options(call):
    q, k, v = ok()
    with pytest.raises(ValueError, match=r"causal_align must be one of"):
        call(q, k, v, causal=True, causal_align="top-left")
    with pytest.raises(ValueError, match=r"scale must be a finite real number"):
        call(q, k, v, scale=float("nan"))


@pytest.mark.parametrize("name", ["block_q", "block_kv"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True, "8"])
def test_bad_block_sizes(name, value):
    q, k, v = ok()
    with pytest.raises(ValueError, match=rf"{name} must be a positive integer"):
        flash_attention(q, k, v, **{name: value})
    kwargs = {"block_q": 4, "block_kv": 4, name: value}
    with pytest.raises(ValueError, match=rf"{name} must be a positive integer"):
        record_trace(q, k, v, **kwargs)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_dropout(p):
    q, k, v = ok()
    with pytest.raises(ValueError, match=r"dropout_p must be a number in \[0, 1\)"):
        flash_attention(q, k, v, dropout_p=p)


def test_lists_are_not_floats():
    with pytest.raises(TypeError, match=r"q must be a float32 or float64 array, got dtype int"):
        flash_attention([[1, 2]], [[1.0, 2.0]], [[1.0, 2.0]])
