"""FlashAttention-2 forward in vectorised NumPy: loops over tiles only.

Loop order and deferred normalisation of FA2 (Dao 2023, Algorithm 1): the outer loop
walks query blocks, the inner loop K/V blocks; the state (m_i, l_i, o_i) of a query block
stays "on chip" (local arrays) and O is normalised once, after the last tile. Tiles that a
mask hides entirely are never computed: past the causal diagonal, or a block mask's empty
tiles (FlexAttention's ``BlockMask``); full tiles never evaluate the mask.
"""

from __future__ import annotations

import numpy as np

from flashviz.core import dropout
from flashviz.core.block_mask import BlockMask
from flashviz.core.checks import (
    DEFAULT_BLOCK_KV,
    DEFAULT_BLOCK_Q,
    check_dropout_p,
    check_scores_fit,
    check_seed,
    check_tiled_problem,
)
from flashviz.core.fa4 import softmax_hooks
from flashviz.core.inner_step import FA2, attn_fwd_inner, finalize, initial_state
from flashviz.core.masks import MaskMod
from flashviz.core.problem import Problem

__all__ = ["DEFAULT_BLOCK_KV", "DEFAULT_BLOCK_Q", "flash_attention", "kv_heads"]


def flash_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    block_q: int | None = None,
    block_kv: int | None = None,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    dropout_p: float = 0.0,
    seed: int | None = None,
    mask_mod: MaskMod | None = None,
    block_mask: BlockMask | None = None,
    rescale_threshold: float | None = None,
    exp_impl: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Tiled FlashAttention-2 forward; returns o (..., n_q, d) and lse (..., n_q).

    Computes in the inputs' precision (float32 or float64). Conventions as in
    ``attention_reference``. Block sizes: ``block_q`` query rows by ``block_kv`` keys (None:
    the block mask's, else 128 and 512). A mask is ``causal=True``, a FlexAttention
    ``mask_mod`` (its block mask built with these blocks, one for all heads) or a
    ``block_mask`` (``flashviz.masks.create_block_mask``). k and v may have fewer heads than
    q (grouped-query attention: query head h reads K/V head h // group).

    With ``dropout_p > 0``, P~ is dropped (kept entries scaled by 1/(1 - p)) before P~ V
    while l sums the undropped P~, as FA2 does; the dropout mask is a function of ``seed``
    (an integer, or None for a fresh one) and the entry's position only (see
    ``flashviz.core.dropout``). ``causal`` must be a bool; scores or values that overflow
    the inputs' precision raise ValueError (never a silent NaN).

    FlashAttention-4's softmax (``flashviz.core.fa4``): ``rescale_threshold`` (log2 units;
    None: FA2's rule, rescale whenever the max rises) keeps a stale max until the new one is
    larger by more than it; ``exp_impl`` ("exact", or "poly<degree>", the software exp2 of
    ``flashviz.core.exp2``) is the exp of the update.
    """
    prob = check_tiled_problem(
        q, k, v, block_q=block_q, block_kv=block_kv, causal=causal,
        causal_align=causal_align, scale=scale, mask_mod=mask_mod, block_mask=block_mask,
        grouped=True,
    )  # fmt: skip
    hooks = softmax_hooks(FA2, rescale_threshold, exp_impl)
    check_scores_fit(prob.q, prob.k, prob.v, prob.scale, prob.q.dtype.type,
                     p_max=2.0**hooks.rescale_threshold)  # fmt: skip
    dropout_p = check_dropout_p(dropout_p)
    seed = check_seed(seed)
    drop_seed = None  # the dropout mask's seed; None: no dropout
    if dropout_p > 0:
        drop_seed = dropout.fresh_seed() if seed is None else seed

    lead = prob.q.shape[:-2]
    n_q, n_k, d, heads = prob.n_q, prob.n_k, prob.d, prob.heads
    q3 = prob.q.reshape(heads, n_q, d)
    k3, v3 = (x.reshape(-1, n_k, d) for x in (prob.k, prob.v))
    dtype = prob.q.dtype.type
    o = np.empty((heads, n_q, d), dtype=dtype)
    lse = np.empty((heads, n_q), dtype=dtype)

    for hs, head in prob.head_groups():  # heads that share a tile schedule
        kv_h = kv_heads(prob, hs)
        for i, rows, kv in prob.schedule(head):  # outer loop: query blocks
            q_i = q3[hs, rows.start : rows.stop]  # (heads, bq, d)
            m_i, l_i, o_i = initial_state((q_i.shape[0],), len(rows), d, dtype)
            for j, cols in kv:  # inner loop: the K/V blocks the mask does not hide
                keep = None
                if drop_seed is not None:
                    keep = dropout.keep_mask(drop_seed, dropout_p, heads, rows, cols, n_q, n_k)[hs]
                m_i, l_i, o_i, *_ = attn_fwd_inner(
                    m_i,
                    l_i,
                    o_i,
                    q_i,
                    k3[kv_h, cols.start : cols.stop],
                    v3[kv_h, cols.start : cols.stop],
                    scale=prob.scale,
                    visible=prob.tile_visible(i, j, head),
                    keep=keep,
                    keep_scale=1.0 / (1.0 - dropout_p),
                    hooks=hooks,
                )
            r = slice(rows.start, rows.stop)
            o[hs, r], lse[hs, r] = finalize(m_i, l_i, o_i, hooks=hooks)
    return o.reshape(*lead, n_q, d), lse.reshape(*lead, n_q)


def kv_heads(prob: Problem, query_heads: slice) -> slice | np.ndarray:
    """The K/V head each of ``query_heads`` reads (flat indices): the same heads without
    grouped-query attention (a slice: views, no copies), else query head h // group."""
    if prob.group == 1:
        return query_heads
    return np.arange(prob.heads)[query_heads] // prob.group
