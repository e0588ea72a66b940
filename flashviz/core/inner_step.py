"""One step of the FlashAttention-2 inner loop, with its state explicit.

``attn_fwd_inner`` takes the running state ``(m_i, l_i, o_i)`` of one query block and one
K/V tile and returns the new state, like Triton's ``_attn_fwd_inner``: it forms the tile's
scores and folds them in with ``online_update``, the online-softmax update that the row
debugger (``flashviz.lab.bugzoo``) runs on a row of scores directly. The same phases, with
the same names, appear in ``kernels/flash_attention.cu``. Leading batch dims are allowed on
every array (``...`` below).

A run may vary the update (the bug zoo's mistakes): ``UpdateHooks`` holds one function per
intermediate value, applied right after the correct update computes it; the defaults return
the value unchanged, so the code below is FlashAttention-2 with no branch on any variant.
It also holds FlashAttention-4's two softmax variations: the rescale threshold (lazy
rescaling: the stale row max is kept unless the new one is larger by more than the
threshold, in log2 units; 0 is FA2's rule) and the exp the run computes with
(``flashviz.core.exp2``'s software exp2, or NumPy's).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

Array = np.ndarray
LN2 = 0.6931471805599453  # ln 2: a threshold in log2 units, in the natural-log scores


def _same(value: Array, *_: Array) -> Array:
    return value


def _same_pair(m_new: Array, m_safe: Array) -> tuple[Array, Array]:
    return m_new, m_safe


@dataclass(frozen=True)
class UpdateHooks:
    """How a run's update departs from FlashAttention-2's: one hook per intermediate value.

    Each hook gets the value the correct update just computed (first argument) and what it
    was computed from, and returns the value the run goes on with. The defaults return it
    unchanged: ``UpdateHooks()`` (``FA2``) is the correct update.
    """

    name: str | None = None  # the variant's label, kept by a trace (None: the correct update)
    # s_ij (masked entries -inf) -> the scores the update reads
    scores: Callable[[Array], Array] = _same
    # (m_new, m_safe) -> the running max kept and the max subtracted (m_safe: -inf -> 0)
    max: Callable[[Array, Array], tuple[Array, Array]] = _same_pair
    # (alpha, m_i, m_safe) -> the factor the old state is rescaled by
    alpha: Callable[[Array, Array, Array], Array] = _same
    # (l_new, l_i, p_ij) -> the running sum kept
    sum: Callable[[Array, Array, Array], Array] = _same
    # (o_rescaled, o_i) -> diag(alpha) o_i as the run forms it
    rescale_o: Callable[[Array, Array], Array] = _same
    # (p_ij) -> P~ as the P~ V product reads it (a type P~ overflows in)
    p_stored: Callable[[Array], Array] = _same
    # (o_new, l_new) -> the accumulator kept
    accumulate: Callable[[Array, Array], Array] = _same
    # (o, o_i) -> the output written after the last tile (o = o_i / l_i)
    normalize: Callable[[Array, Array], Array] = _same
    quiet: bool = False  # the variant makes inf or NaN on purpose: no NumPy warnings for them
    # FA4's lazy rescaling: m_i is kept unless the tile's max exceeds it by more than this, in
    # log2 units (so P~ <= 2^rescale_threshold); 0: FA2's rule, rescale whenever it rises
    rescale_threshold: float = 0.0
    exp: Callable[[Array], Array] = np.exp  # e^x as the run computes it (flashviz.core.exp2)

    def errstate(self) -> contextlib.AbstractContextManager[object]:
        """The NumPy error state to run this variant in (the caller's own for FA2)."""
        if self.quiet:
            return np.errstate(over="ignore", invalid="ignore", divide="ignore")
        return contextlib.nullcontext()


FA2 = UpdateHooks()  # the correct update


class TileUpdate(NamedTuple):
    """What one tile did: the new state and the intermediates a teacher wants to show."""

    m_i: Array  # (..., block_q)     running row max after this tile
    l_i: Array  # (..., block_q)     running row sum after this tile
    o_i: Array  # (..., block_q, d)  unnormalised output accumulator after this tile
    s_ij: Array  # (..., block_q, block_kv) scaled, masked scores
    p_ij: Array  # (..., block_q, block_kv) P~ = exp(s_ij - m_new), before dropout
    alpha: Array  # (..., block_q)   rescale factor applied to the old state
    o_rescaled: Array  # (..., block_q, d) diag(alpha) o_i, before P~ V is added
    stale: Array  # (..., block_q) bool: the row's max rose, but by at most the threshold: kept


def attn_fwd_inner(
    m_i: Array,
    l_i: Array,
    o_i: Array,
    q_i: Array,
    k_j: Array,
    v_j: Array,
    *,
    scale: float,
    visible: Array | None = None,
    keep: Array | None = None,
    keep_scale: float = 1.0,
    p_dtype: np.dtype | None = None,
    hooks: UpdateHooks = FA2,
) -> TileUpdate:
    """Fold K/V tile j into the state of query block i (FA2 Algorithm 1, inner loop).

    ``visible`` is the causal mask of the tile (None: all visible); ``keep``, ``keep_scale``,
    ``p_dtype`` and ``hooks`` as in ``online_update``.
    """
    # phase:scores  s_ij = scale * q_i k_j^T, masked entries = -inf
    s_ij = (q_i @ np.swapaxes(k_j, -1, -2)) * scale  # (..., bq, bkv)
    if visible is not None:
        s_ij = np.where(visible, s_ij, -np.inf)
    return online_update(
        m_i, l_i, o_i, s_ij, v_j, keep=keep, keep_scale=keep_scale, p_dtype=p_dtype, hooks=hooks
    )


def online_update(
    m_i: Array,
    l_i: Array,
    o_i: Array,
    s_ij: Array,
    v_j: Array,
    *,
    keep: Array | None = None,
    keep_scale: float = 1.0,
    p_dtype: np.dtype | None = None,
    hooks: UpdateHooks = FA2,
) -> TileUpdate:
    """Fold the scores ``s_ij`` of K/V tile j (-inf where masked) into the state.

    ``keep`` is the dropout keep-mask, with kept entries scaled by ``keep_scale`` = 1/(1 - p);
    ``p_dtype`` the type P~ is rounded to for the P~ V matmul (float16 / bfloat16 kernels;
    None: not rounded); ``hooks`` a variant of the update (see ``UpdateHooks``).
    """
    masked = s_ij  # (..., bq, bkv) the scores as given, kept in the returned update
    s_ij = hooks.scores(s_ij)
    # phase:max  m_new = max(m_i, rowmax(s_ij)), kept at m_i unless it rises by more than
    # the threshold (FA4; 0: FA2)
    m_max = np.maximum(m_i, s_ij.max(axis=-1))  # (..., bq)
    m_new = np.where(m_max > m_i + hooks.rescale_threshold * LN2, m_max, m_i)  # (..., bq)
    stale = m_max > m_new  # (..., bq) the max rose but is kept
    m_safe = np.where(np.isneginf(m_new), 0, m_new)  # a row with no key yet: subtract 0
    m_new, m_safe = hooks.max(m_new, m_safe)
    # phase:exp  p_ij = exp(s_ij - m_new)
    p_ij = hooks.exp(s_ij - m_safe[..., None])  # (..., bq, bkv)
    # phase:alpha  alpha = exp(m_i - m_new)
    alpha = hooks.exp(m_i - m_safe)  # (..., bq)
    alpha = hooks.alpha(alpha, m_i, m_safe)
    # phase:sum  l_i = alpha * l_i + rowsum(p_ij)
    l_new = alpha * l_i + p_ij.sum(axis=-1)  # (..., bq)
    l_new = hooks.sum(l_new, l_i, p_ij)
    # phase:accumulate  o_i = diag(alpha) o_i + p_ij v_j
    o_rescaled = alpha[..., None] * o_i  # (..., bq, d)
    o_rescaled = hooks.rescale_o(o_rescaled, o_i)
    p_drop = hooks.p_stored(p_ij)
    p_drop = p_drop if keep is None else np.where(keep, p_drop * keep_scale, 0)
    if p_dtype is not None:  # the matmul reads P~ in the input type, l_i used the exact P~
        p_drop = p_drop.astype(p_dtype).astype(p_ij.dtype)
    o_new = o_rescaled + p_drop @ v_j  # (..., bq, d)
    o_new = hooks.accumulate(o_new, l_new)
    return TileUpdate(m_new, l_new, o_new, masked, p_ij, alpha, o_rescaled, stale)


def finalize(
    m_i: Array, l_i: Array, o_i: Array, *, hooks: UpdateHooks = FA2
) -> tuple[Array, Array]:
    """After the last tile of a query block: normalise once and form the logsumexp."""
    # phase:normalize  o_i = diag(l_i)^-1 o_i  (rows with no key: l_i = 0, o_i stays 0)
    o = o_i / np.where(l_i == 0, 1, l_i)[..., None]  # (..., bq, d)
    o = hooks.normalize(o, o_i)
    # phase:lse  L_i = m_i + log(l_i)  (-inf for a row with no key)
    with np.errstate(divide="ignore"):
        lse = m_i + np.log(l_i)  # (..., bq)
    return o, lse


def initial_state(
    lead: tuple[int, ...], rows: int, d: int, dtype: type[np.floating]
) -> tuple[Array, Array, Array]:
    """m_i = -inf, l_i = 0, o_i = 0 for a query block of ``rows`` rows."""
    # phase:init  m_i = -inf, l_i = 0, o_i = 0
    m_i = np.full((*lead, rows), -np.inf, dtype=dtype)  # (..., bq)
    l_i = np.zeros((*lead, rows), dtype=dtype)  # (..., bq)
    o_i = np.zeros((*lead, rows, d), dtype=dtype)  # (..., bq, d)
    return m_i, l_i, o_i
