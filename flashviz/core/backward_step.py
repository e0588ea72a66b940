"""One step of the FlashAttention-2 backward inner loop (Dao 2023, Algorithm 2), with its
state explicit.

``attn_bwd_inner`` takes the running gradients ``(dk_j, dv_j)`` of one K/V block, which stay
on chip for the whole inner loop, and one query block i, and returns the new ones together
with this tile's addition to dQ_i, which the kernel adds to HBM (an atomic add, since every
K/V block adds to the same rows). P is recomputed from the saved logsumexp L_i, never read
from memory. The phases carry ``phase:`` markers like the forward's. Leading batch dims are
allowed on every array (``...`` below).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

Array = np.ndarray


class BwdTileUpdate(NamedTuple):
    """What one backward tile did: the new on-chip gradients, dQ's addition, and the
    intermediates a teacher wants to show."""

    dk_j: Array  # (..., bkv, d)  dK_j after this tile (on chip)
    dv_j: Array  # (..., bkv, d)  dV_j after this tile (on chip)
    dq_add: Array  # (..., bq, d)  scale dS_ij K_j, added to dQ_i in HBM
    s_ij: Array  # (..., bq, bkv) scaled, masked scores (recomputed)
    p_ij: Array  # (..., bq, bkv) P_ij = exp(s_ij - L_i) (recomputed)
    dp_ij: Array  # (..., bq, bkv) dO_i V_j^T
    ds_ij: Array  # (..., bq, bkv) P_ij * (dP_ij - D_i)


def _t(x: Array) -> Array:
    return np.swapaxes(x, -1, -2)


def row_delta(do: Array, o: Array) -> Array:
    """D = rowsum(dO * O), once before the loops: it equals rowsum(dP * P) for each row."""
    # phase:delta  D_i = rowsum(dO_i * O_i)
    return (do * o).sum(axis=-1)  # (..., n_q)


def attn_bwd_inner(
    dk_j: Array,
    dv_j: Array,
    q_i: Array,
    k_j: Array,
    v_j: Array,
    do_i: Array,
    lse_i: Array,
    delta_i: Array,
    *,
    scale: float,
    visible: Array | None = None,
) -> BwdTileUpdate:
    """Fold query block i into the gradients of K/V block j (FA2 Algorithm 2, inner loop).

    ``lse_i`` is the forward's L_i (-inf for a row with no key), ``delta_i`` is D_i and
    ``visible`` the causal mask of the tile (None: all visible).
    """
    # phase:scores  s_ij = scale * q_i k_j^T, masked entries = -inf
    s_ij = (q_i @ _t(k_j)) * scale  # (..., bq, bkv)
    if visible is not None:
        s_ij = np.where(visible, s_ij, -np.inf)
    # phase:recompute  p_ij = exp(s_ij - L_i), from the saved L_i: P is never stored
    lse_safe = np.where(np.isneginf(lse_i), 0, lse_i)  # a row with no key: all s_ij = -inf
    p_ij = np.exp(s_ij - lse_safe[..., None])  # (..., bq, bkv)
    # phase:dv  dV_j = dV_j + p_ij^T dO_i
    dv_j = dv_j + _t(p_ij) @ do_i  # (..., bkv, d)
    # phase:dp  dp_ij = dO_i v_j^T
    dp_ij = do_i @ _t(v_j)  # (..., bq, bkv)
    # phase:ds  ds_ij = p_ij * (dp_ij - D_i)
    ds_ij = p_ij * (dp_ij - delta_i[..., None])  # (..., bq, bkv)
    # phase:dq  dQ_i = dQ_i + scale * ds_ij k_j  (added in HBM: an atomic add in the kernel)
    dq_add = (ds_ij @ k_j) * scale  # (..., bq, d)
    # phase:dk  dK_j = dK_j + scale * ds_ij^T q_i
    dk_j = dk_j + (_t(ds_ij) @ q_i) * scale  # (..., bkv, d)
    return BwdTileUpdate(dk_j, dv_j, dq_add, s_ij, p_ij, dp_ij, ds_ij)
