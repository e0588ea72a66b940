"""CPU benchmark of the backward pass: FlashAttention-2's tiled backward against the standard
backward, measured in one run, as the forward's bench (``flashviz.perf.cpu_bench``) does.

The standard backward (``naive_attention_backward``) forms S and keeps P = softmax(S), then
dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dP * P)), dQ and dK: it holds n x n
matrices. ``flash_attention_backward`` recomputes P one tile at a time from the forward's
saved O and logsumexp L (computed once, before timing, by ``flash_attention``). Both get
the same float inputs q, k, v, dO; times are medians after one warm-up, peak memory comes
from a separate run under ``tracemalloc``, and the error is the largest of dQ's, dK's and
dV's against the float64 gradient ``attention_backward_reference``.
"""

from __future__ import annotations

import numpy as np

from flashviz.core.accuracy import max_error
from flashviz.core.backward import (
    Grads,
    attention_backward_reference,
    flash_attention_backward,
    naive_attention_backward,
)
from flashviz.core.flash import DEFAULT_BLOCK_KV, DEFAULT_BLOCK_Q, flash_attention
from flashviz.core.measurement import CpuResult
from flashviz.perf.cpu_bench import compare


def grads_error(grads: Grads, ref: Grads) -> float:
    """The largest error of dq, dk and dv against the reference's."""
    return max(max_error(g, r) for g, r in zip(grads, ref, strict=True))


def measure_backward(
    n: int,
    d: int,
    *,
    dtype: str = "float32",
    block_q: int = DEFAULT_BLOCK_Q,
    block_kv: int = DEFAULT_BLOCK_KV,
    causal: bool = False,
    repeat: int = 3,
    seed: int = 0,
) -> CpuResult:
    """Time and measure the standard and the tiled backward at one size, on the same inputs
    (q, k, v, dO drawn in that order from ``seed``)."""
    rng = np.random.default_rng(seed)
    q, k, v, do = (rng.standard_normal((n, d)).astype(dtype) for _ in range(4))
    # the forward's saved outputs
    o, lse = flash_attention(q, k, v, block_q=block_q, block_kv=block_kv, causal=causal)

    def naive() -> Grads:
        return naive_attention_backward(q, k, v, do, causal=causal)

    def flash() -> Grads:
        return flash_attention_backward(
            q, k, v, o, lse, do, block_q=block_q, block_kv=block_kv, causal=causal
        )

    ref = attention_backward_reference(q, k, v, do, causal=causal)
    return compare(n, d, naive, flash, lambda grads: grads_error(grads, ref), repeat)
