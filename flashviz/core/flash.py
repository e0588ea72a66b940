"""FlashAttention-2 forward in vectorised NumPy: loops over tiles only.

Loop order and deferred normalisation of FA2 (Dao 2023, Algorithm 1): the outer loop
walks query blocks, the inner loop K/V blocks; the state (m_i, l_i, o_i) of a query block
stays "on chip" (local arrays) and O is normalised once, after the last tile. Tiles that a
causal mask hides entirely are never computed.
"""

from __future__ import annotations

import numpy as np

from flashviz.core import dropout
from flashviz.core.checks import (
    check_dropout_p,
    check_scores_fit,
    check_seed,
    check_tiled_problem,
)
from flashviz.core.inner_step import attn_fwd_inner, finalize, initial_state
from flashviz.core.masking import visible

DEFAULT_BLOCK_Q = 128
DEFAULT_BLOCK_KV = 512


def flash_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    block_q: int = DEFAULT_BLOCK_Q,
    block_kv: int = DEFAULT_BLOCK_KV,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    dropout_p: float = 0.0,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Tiled FlashAttention-2 forward; returns o (..., n_q, d) and lse (..., n_q).

    Computes in the inputs' precision (float32 or float64). Conventions as in
    ``attention_reference``. With ``dropout_p > 0``, P~ is dropped (kept entries scaled
    by 1/(1 - p)) before P~ V while l sums the undropped P~, as FA2 does; the mask is a
    function of ``seed`` (an integer, or None for a fresh one) and the entry's position
    only (see ``flashviz.core.dropout``). ``causal`` must be a bool; scores or values that
    overflow the inputs' precision raise ValueError (never a silent NaN).
    """
    prob = check_tiled_problem(
        q, k, v, block_q=block_q, block_kv=block_kv, causal=causal,
        causal_align=causal_align, scale=scale,
    )  # fmt: skip
    check_scores_fit(prob.q, prob.k, prob.v, prob.scale, prob.q.dtype.type)
    dropout_p = check_dropout_p(dropout_p)
    seed = check_seed(seed)
    drop_seed = None  # the dropout mask's seed; None: no dropout
    if dropout_p > 0:
        drop_seed = dropout.fresh_seed() if seed is None else seed

    lead = prob.q.shape[:-2]
    n_q, n_k, d = prob.n_q, prob.n_k, prob.d
    heads = int(np.prod(lead, dtype=np.int64))
    q3, k3, v3 = (x.reshape(heads, x.shape[-2], d) for x in (prob.q, prob.k, prob.v))
    dtype = prob.q.dtype.type
    o = np.empty((heads, n_q, d), dtype=dtype)
    lse = np.empty((heads, n_q), dtype=dtype)
    offset = prob.offset

    for _, rows, kv in prob.schedule():  # outer loop: query blocks
        q_i = q3[:, rows.start : rows.stop]  # (heads, bq, d)
        m_i, l_i, o_i = initial_state((heads,), len(rows), d, dtype)
        for _, cols in kv:  # inner loop: the K/V blocks the mask does not hide
            keep = None
            if drop_seed is not None:
                keep = dropout.keep_mask(drop_seed, dropout_p, heads, rows, cols, n_q, n_k)
            m_i, l_i, o_i, *_ = attn_fwd_inner(
                m_i,
                l_i,
                o_i,
                q_i,
                k3[:, cols.start : cols.stop],
                v3[:, cols.start : cols.stop],
                scale=prob.scale,
                visible=visible(rows, cols, offset),
                keep=keep,
                keep_scale=1.0 / (1.0 - dropout_p),
            )
        o[:, rows.start : rows.stop], lse[:, rows.start : rows.stop] = finalize(m_i, l_i, o_i)
    return o.reshape(*lead, n_q, d), lse.reshape(*lead, n_q)
