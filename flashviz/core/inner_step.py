"""One step of the FlashAttention-2 inner loop, with its state explicit.

``attn_fwd_inner`` takes the running state ``(m_i, l_i, o_i)`` of one query block and one
K/V tile and returns the new state, like Triton's ``_attn_fwd_inner``. The same phases,
with the same names, appear in ``kernels/flash_attention.cu``. Leading batch dims are
allowed on every array (``...`` below).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class TileUpdate(NamedTuple):
    """What one tile did: the new state and the intermediates a teacher wants to show."""

    m_i: np.ndarray  # (..., block_q)     running row max after this tile
    l_i: np.ndarray  # (..., block_q)     running row sum after this tile
    o_i: np.ndarray  # (..., block_q, d)  unnormalised output accumulator after this tile
    s_ij: np.ndarray  # (..., block_q, block_kv) scaled, masked scores
    p_ij: np.ndarray  # (..., block_q, block_kv) P~ = exp(s_ij - m_new), before dropout
    alpha: np.ndarray  # (..., block_q)   rescale factor applied to the old state


def attn_fwd_inner(
    m_i: np.ndarray,
    l_i: np.ndarray,
    o_i: np.ndarray,
    q_i: np.ndarray,
    k_j: np.ndarray,
    v_j: np.ndarray,
    *,
    scale: float,
    visible: np.ndarray | None = None,
    keep: np.ndarray | None = None,
    keep_scale: float = 1.0,
    p_dtype: np.dtype | None = None,
) -> TileUpdate:
    """Fold K/V tile j into the state of query block i (FA2 Algorithm 1, inner loop).

    ``visible`` is the causal mask of the tile (None: all visible); ``keep`` the dropout
    keep-mask, with kept entries scaled by ``keep_scale`` = 1/(1 - p); ``p_dtype`` the type
    P~ is rounded to for the P~ V matmul (float16 / bfloat16 kernels; None: not rounded).
    """
    # phase:scores  s_ij = scale * q_i k_j^T, masked entries = -inf
    s_ij = (q_i @ np.swapaxes(k_j, -1, -2)) * scale  # (..., bq, bkv)
    if visible is not None:
        s_ij = np.where(visible, s_ij, -np.inf)
    # phase:max  m_new = max(m_i, rowmax(s_ij))
    m_new = np.maximum(m_i, s_ij.max(axis=-1))  # (..., bq)
    m_safe = np.where(np.isneginf(m_new), 0, m_new)  # a row with no key yet: subtract 0
    # phase:exp  p_ij = exp(s_ij - m_new)
    p_ij = np.exp(s_ij - m_safe[..., None])  # (..., bq, bkv)
    # phase:alpha  alpha = exp(m_i - m_new)
    alpha = np.exp(m_i - m_safe)  # (..., bq)
    # phase:sum  l_i = alpha * l_i + rowsum(p_ij)
    l_new = alpha * l_i + p_ij.sum(axis=-1)  # (..., bq)
    # phase:accumulate  o_i = diag(alpha) o_i + p_ij v_j
    p_drop = p_ij if keep is None else np.where(keep, p_ij * keep_scale, 0)
    if p_dtype is not None:  # the matmul reads P~ in the input type, l_i used the exact P~
        p_drop = p_drop.astype(p_dtype).astype(p_ij.dtype)
    o_new = alpha[..., None] * o_i + p_drop @ v_j  # (..., bq, d)
    return TileUpdate(m_new, l_new, o_new, s_ij, p_ij, alpha)


def finalize(m_i: np.ndarray, l_i: np.ndarray, o_i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """After the last tile of a query block: normalise once and form the logsumexp."""
    # phase:normalize  o_i = diag(l_i)^-1 o_i  (rows with no key: l_i = 0, o_i stays 0)
    o = o_i / np.where(l_i == 0, 1, l_i)[..., None]  # (..., bq, d)
    # phase:lse  L_i = m_i + log(l_i)  (-inf for a row with no key)
    with np.errstate(divide="ignore"):
        lse = m_i + np.log(l_i)  # (..., bq)
    return o, lse


def initial_state(
    lead: tuple[int, ...], rows: int, d: int, dtype: type[np.floating]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """m_i = -inf, l_i = 0, o_i = 0 for a query block of ``rows`` rows."""
    # phase:init  m_i = -inf, l_i = 0, o_i = 0
    m_i = np.full((*lead, rows), -np.inf, dtype=dtype)  # (..., bq)
    l_i = np.zeros((*lead, rows), dtype=dtype)  # (..., bq)
    o_i = np.zeros((*lead, rows, d), dtype=dtype)  # (..., bq, d)
    return m_i, l_i, o_i
