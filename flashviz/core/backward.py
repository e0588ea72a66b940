"""The backward pass of softmax attention: the float64 gradient, and FlashAttention-2's
tiled backward (Dao 2023, Algorithm 2) in vectorised NumPy.

Given dO, the gradient of a loss with respect to o, attention's gradients are

    P = softmax(S),  dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dP * P)),
    dQ = scale dS K,  dK = scale dS^T Q.

The tiled backward never holds P: the forward saved only O and the logsumexp L, and each
tile recomputes P_ij = exp(S_ij - L_i). rowsum(dP * P) is D = rowsum(dO * O), formed once.
K/V blocks are the outer loop, so dK_j and dV_j stay on chip; dQ_i receives one addition per
tile, in HBM. Rows that see no key contribute nothing.
"""

from __future__ import annotations

import numpy as np

from flashviz.core.backward_step import attn_bwd_inner, row_delta
from flashviz.core.block_mask import BlockMask
from flashviz.core.checks import (
    check_grad_output,
    check_problem,
    check_saved,
    check_scores_fit,
    check_tiled_problem,
)
from flashviz.core.flash import kv_heads
from flashviz.core.masks import MaskMod
from flashviz.core.problem import Problem, TiledProblem
from flashviz.core.reference import masked_scores, query_heads, softmax_weights

Grads = tuple[np.ndarray, np.ndarray, np.ndarray]


def softmax_ds(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    do: np.ndarray,
    *,
    scale: float,
    offset: int | None = None,
    dtype: type[np.floating],
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P = softmax(S), dP = dO V^T and dS = P * (dP - rowsum(dP * P)), whole, in ``dtype``:
    (..., n_q, n_k) each; masked as ``masked_scores``. Inputs unchecked."""
    q, k, v, do = (np.asarray(x, dtype=dtype) for x in (q, k, v, do))
    s = masked_scores(q, k, scale=scale, offset=offset, dtype=dtype, mask=mask)  # (..., n_q, n_k)
    p_tilde, l, _ = softmax_weights(s)  # (..., n_q, n_k), (..., n_q, 1)
    p = p_tilde / np.where(l == 0, dtype(1), l)  # P = softmax(S); a row with no key: 0
    dp = do @ np.swapaxes(v, -1, -2)  # (..., n_q, n_k)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))  # (..., n_q, n_k)
    return p, dp, ds


def softmax_gradients(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    do: np.ndarray,
    *,
    scale: float,
    offset: int | None = None,
    dtype: type[np.floating],
    mask: np.ndarray | None = None,
) -> Grads:
    """(dq, dk, dv) from the whole P, all in ``dtype``; masked as ``masked_scores``. Inputs
    unchecked; k and v have q's heads."""
    p, _, ds = softmax_ds(q, k, v, do, scale=scale, offset=offset, dtype=dtype, mask=mask)
    q, k, do = (np.asarray(x, dtype=dtype) for x in (q, k, do))
    dv = np.swapaxes(p, -1, -2) @ do  # (..., n_k, d)
    dq = (ds @ k) * dtype(scale)  # (..., n_q, d)
    dk = (np.swapaxes(ds, -1, -2) @ q) * dtype(scale)  # (..., n_k, d)
    return dq, dk, dv


def attention_backward_reference(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    do: np.ndarray,
    *,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    mask_mod: MaskMod | None = None,
    block_mask: BlockMask | None = None,
) -> Grads:
    """The gradient (dq, dk, dv) of softmax attention in float64, from the whole P.

    Conventions and masks as in ``attention_reference``; ``do`` has o's shape (..., n_q, d).
    A row that sees no key has o = 0 whatever q, k, v are: it contributes nothing. Under
    grouped-query attention dk and dv (k's shape) sum over the query heads of a group.
    """
    prob = check_problem(
        q, k, v, scale, causal_align, causal=causal, mask_mod=mask_mod, block_mask=block_mask,
        grouped=True,
    )  # fmt: skip
    do_ = check_grad_output(prob, do)
    check_scores_fit(prob.q, prob.k, prob.v, prob.scale, np.float64)
    return problem_gradients(prob, do_, np.float64)


def problem_gradients(prob: Problem, do: np.ndarray, dtype: type[np.floating]) -> Grads:
    """``softmax_gradients`` of a checked problem: its mask; under grouped-query attention
    K/V heads repeated for the query heads, and dk, dv summed back over each group."""
    k, v = (query_heads(prob, x) for x in (prob.k, prob.v))
    dq, dk, dv = softmax_gradients(
        prob.q, k, v, do, scale=prob.scale, dtype=dtype, mask=prob.dense_visible()
    )
    return dq, group_sum(prob, dk), group_sum(prob, dv)


def group_sum(prob: Problem, dx: np.ndarray) -> np.ndarray:
    """A gradient per query head (..., H_q, n_k, d) summed over each group of query heads
    that read one K/V head: k's shape (..., H_kv, n_k, d)."""
    if prob.group == 1:
        return dx
    lead, tail = dx.shape[:-3], dx.shape[-2:]
    return dx.reshape(*lead, -1, prob.group, *tail).sum(axis=-3)


def naive_attention_backward(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    do: np.ndarray,
    *,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    mask_mod: MaskMod | None = None,
    block_mask: BlockMask | None = None,
) -> Grads:
    """The same computation in the inputs' own precision: the standard backward, which
    holds the n_q x n_k matrices P, dP and dS."""
    prob = check_problem(
        q, k, v, scale, causal_align, causal=causal, mask_mod=mask_mod, block_mask=block_mask,
        grouped=True,
    )  # fmt: skip
    do_ = check_grad_output(prob, do)
    check_scores_fit(prob.q, prob.k, prob.v, prob.scale, prob.q.dtype.type)
    return problem_gradients(prob, do_, prob.q.dtype.type)


def flash_attention_backward(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    o: np.ndarray,
    lse: np.ndarray,
    do: np.ndarray,
    *,
    block_q: int | None = None,
    block_kv: int | None = None,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    mask_mod: MaskMod | None = None,
    block_mask: BlockMask | None = None,
) -> Grads:
    """Tiled FlashAttention-2 backward; returns (dq, dk, dv) in the inputs' precision.

    ``o`` and ``lse`` are what ``flash_attention`` returned for the same q, k, v and
    arguments; ``do`` has o's shape. Blocks, masks, grouped-query attention (dk and dv sum
    over the query heads of a group), validation and messages as ``flash_attention``'s.
    """
    prob = check_tiled_problem(
        q, k, v, block_q=block_q, block_kv=block_kv, causal=causal,
        causal_align=causal_align, scale=scale, mask_mod=mask_mod, block_mask=block_mask,
        grouped=True,
    )  # fmt: skip
    check_scores_fit(prob.q, prob.k, prob.v, prob.scale, prob.q.dtype.type)
    o_, lse_ = check_saved(prob, o, lse)
    return tiled_backward(prob, o_, lse_, check_grad_output(prob, do))


def tiled_backward(prob: TiledProblem, o_: np.ndarray, lse_: np.ndarray, do_: np.ndarray) -> Grads:
    """The loops of ``flash_attention_backward`` on checked inputs (o, lse and do as
    ``check_saved`` and ``check_grad_output`` return them)."""
    n_q, n_k, d, heads = prob.n_q, prob.n_k, prob.d, prob.heads
    q3, do3, o3 = (x.reshape(heads, n_q, d) for x in (prob.q, do_, o_))
    k3, v3 = (x.reshape(-1, n_k, d) for x in (prob.k, prob.v))
    lse3 = lse_.reshape(heads, n_q)
    delta = row_delta(do3, o3)  # (heads, n_q)
    dq = np.zeros_like(q3)  # in HBM: every K/V block adds to it
    dk, dv = np.zeros((heads, n_k, d), dtype=q3.dtype), np.zeros((heads, n_k, d), dtype=q3.dtype)

    for hs, head in prob.head_groups():  # heads that share a tile schedule
        kv_h = kv_heads(prob, hs)
        for j, cols, q_blocks in prob.kv_schedule(head):  # outer loop: K/V blocks
            k_j, v_j = k3[kv_h, cols.start : cols.stop], v3[kv_h, cols.start : cols.stop]
            dk_j, dv_j = np.zeros_like(k_j), np.zeros_like(v_j)  # (heads, bkv, d) on chip
            for i, rows in q_blocks:  # inner loop: the query blocks the mask does not hide
                r = slice(rows.start, rows.stop)
                dk_j, dv_j, dq_add, *_ = attn_bwd_inner(
                    dk_j, dv_j, q3[hs, r], k_j, v_j, do3[hs, r], lse3[hs, r], delta[hs, r],
                    scale=prob.scale, visible=prob.tile_visible(i, j, head),
                )  # fmt: skip
                dq[hs, r] += dq_add
            # phase:write  dK_j, dV_j -> HBM, once per K/V block (per query head)
            dk[hs, cols.start : cols.stop], dv[hs, cols.start : cols.stop] = dk_j, dv_j
    dk, dv = (group_sum(prob, x.reshape(*prob.q.shape[:-2], n_k, d)) for x in (dk, dv))
    return dq.reshape(prob.q.shape), dk.reshape(prob.k.shape), dv.reshape(prob.v.shape)
