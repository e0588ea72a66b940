"""Plain softmax attention: the float64 oracle, and the naive baseline in any precision.

Both materialise the full n_q x n_k score matrix; that is what FlashAttention avoids.
Rows that see no key (possible with a causal mask and n_q > n_k) give o = 0 and
lse = -inf, the logsumexp of an empty set (what ``torch.logsumexp`` returns for an
all ``-inf`` row). flash-attn's kernel stores +inf there instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flashviz.core.block_mask import BlockMask
from flashviz.core.checks import check_problem, check_scores_fit
from flashviz.core.masking import visible
from flashviz.core.masks import MaskMod
from flashviz.core.problem import Problem


def masked_scores(
    q: np.ndarray,
    k: np.ndarray,
    *,
    scale: float,
    offset: int | None = None,
    dtype: type[np.floating],
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """S = scale Q K^T in ``dtype``, masked entries -inf: shape (..., n_q, n_k). The mask:
    ``mask`` (booleans broadcasting against S, ``Problem.dense_visible()``), else the causal
    ``offset`` (None: no mask)."""
    q, k = (np.asarray(x, dtype=dtype) for x in (q, k))
    s = (q @ np.swapaxes(k, -1, -2)) * dtype(scale)
    if mask is None:
        mask = visible(range(q.shape[-2]), range(k.shape[-2]), offset)
    return s if mask is None else np.where(mask, s, -np.inf)


def softmax_weights(s: Any, xp: Any = np) -> tuple[Any, Any, Any]:
    """P~ = exp(S - m) row by row with m = rowmax(S), l = rowsum(P~), and m (l, m keep the
    reduced axis): a masked softmax is P~ / l. Masked entries of ``s`` are -inf; a row with
    every entry masked subtracts 0, not -inf (no NaN), and gets P~ = 0, l = 0. ``xp`` is
    the array module: NumPy, or CuPy for the GPU baseline.
    """
    m = s.max(axis=-1, keepdims=True)  # (..., 1)
    m_safe = xp.where(xp.isneginf(m), s.dtype.type(0), m)  # empty rows: subtract 0, not -inf
    p = xp.exp(s - m_safe)  # (..., n_k)
    return p, p.sum(axis=-1, keepdims=True), m


def softmax_rows(s: Any, v: Any, p_dtype: np.dtype | None = None, xp: Any = np) -> tuple[Any, Any]:
    """P = softmax(S) row by row, O = P V, and L = logsumexp(S), in the dtype of ``s``
    (a row with no key: O = 0, L = -inf).

    ``p_dtype``: round P~ to this type for the P V matmul, as 16-bit kernels do; ``xp``: the
    array module, as in ``softmax_weights``.
    """
    p, l, m = softmax_weights(s, xp)  # (..., n_q, n_k), (..., n_q, 1), (..., n_q, 1)
    p_mm = p if p_dtype is None else p.astype(p_dtype).astype(p.dtype)
    o = xp.matmul(p_mm, xp.asarray(v, dtype=s.dtype)) / xp.where(l == 0, s.dtype.type(1), l)
    with np.errstate(divide="ignore"):
        lse = (m + xp.log(l))[..., 0]
    return o, lse


def softmax_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    scale: float,
    offset: int | None = None,
    dtype: type[np.floating],
    p_dtype: np.dtype | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """S = scale Q K^T, masked (as ``masked_scores``); P = softmax(S); O = P V; all in
    ``dtype``. Inputs unchecked; k and v have q's heads."""
    s = masked_scores(q, k, scale=scale, offset=offset, dtype=dtype, mask=mask)
    return softmax_rows(s, v, p_dtype)


def problem_attention(prob: Problem, dtype: type[np.floating]) -> tuple[np.ndarray, np.ndarray]:
    """``softmax_attention`` of a checked problem: its mask, K/V heads repeated for GQA."""
    k, v = (query_heads(prob, x) for x in (prob.k, prob.v))
    return softmax_attention(prob.q, k, v, scale=prob.scale, dtype=dtype, mask=prob.dense_visible())


def query_heads(prob: Problem, x: np.ndarray) -> np.ndarray:
    """K/V-shaped ``x`` with one head per query head (grouped-query attention repeats each
    K/V head ``group`` times; without it, ``x`` itself)."""
    return x if prob.group == 1 else np.repeat(x, prob.group, axis=-3)


def attention_reference(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    mask_mod: MaskMod | None = None,
    block_mask: BlockMask | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax attention in float64: returns o (..., n_q, d) and lse (..., n_q).

    ``scale`` defaults to 1/sqrt(d). ``causal_align`` is "bottom_right" (row r sees key c
    iff c <= r + n_k - n_q, flash-attn >= 2.1) or "top_left" (c <= r, PyTorch). A
    FlexAttention ``mask_mod`` or ``block_mask`` (``flashviz.masks``) is evaluated entry by
    entry. k and v may have fewer heads than q (grouped-query attention).
    Rows that see no key give o = 0 and lse = -inf. Scores or values that overflow
    float64 raise ValueError (never a silent NaN).
    """
    prob = check_problem(
        q, k, v, scale, causal_align, causal=causal, mask_mod=mask_mod, block_mask=block_mask,
        grouped=True,
    )  # fmt: skip
    check_scores_fit(prob.q, prob.k, prob.v, prob.scale, np.float64)
    return problem_attention(prob, np.float64)


def naive_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    mask_mod: MaskMod | None = None,
    block_mask: BlockMask | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The same computation in the inputs' own precision: what a user would write."""
    prob = check_problem(
        q, k, v, scale, causal_align, causal=causal, mask_mod=mask_mod, block_mask=block_mask,
        grouped=True,
    )  # fmt: skip
    check_scores_fit(prob.q, prob.k, prob.v, prob.scale, prob.q.dtype.type)
    return problem_attention(prob, prob.q.dtype.type)
