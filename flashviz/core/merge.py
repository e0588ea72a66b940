"""The merge of two partial softmax states: the operation under online softmax and split-KV.

A state ``(m, l, o)`` summarises a set of keys for each query row: ``m`` their largest
score, ``l = sum_j exp(s_j - m)`` and ``o = sum_j exp(s_j - m) v_j`` (unnormalised, as the
FA2 inner loop keeps it). Two states over disjoint sets of keys merge into the state of
their union by rescaling both to the larger max:

    m = max(m_a, m_b),  l = e^(m_a - m) l_a + e^(m_b - m) l_b,
                        o = e^(m_a - m) o_a + e^(m_b - m) o_b

The merge is commutative (exactly: IEEE sums and products commute) and associative (to
rounding), with the empty state ``(-inf, 0, 0)`` (``inner_step.initial_state``) as its
identity. Folding it left to right over single keys, each the state ``(s_j, 1, v_j)``, is
the online softmax (``inner_step.online_update`` one key at a time); merging the states
of contiguous chunks of keys is the combine step of split-KV decoding
(``flashviz.core.split_kv``). A finished pair ``(o / l, lse)`` with ``lse = m + log l`` is
the state ``(lse, 1, o / l)`` (``output_state``): ``merge_outputs`` merges two of them.
Leading batch dims are allowed (``...`` below).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from flashviz.core.checks import check_output, check_pair, check_state
from flashviz.core.inner_step import finalize

Array = np.ndarray


class State(NamedTuple):
    """The online-softmax state of a set of keys, per query row."""

    m: Array  # (..., n_q)     largest score (-inf: no key)
    l: Array  # (..., n_q)     sum of exp(s - m) (0: no key)
    o: Array  # (..., n_q, d)  sum of exp(s - m) v, unnormalised (0: no key)


class MergeUpdate(NamedTuple):
    """What one merge did: the merged state and the factors each side was rescaled by."""

    m: Array  # (..., n_q)     max(m_a, m_b)
    l: Array  # (..., n_q)     alpha_a l_a + alpha_b l_b
    o: Array  # (..., n_q, d)  alpha_a o_a + alpha_b o_b
    alpha_a: Array  # (..., n_q)  exp(m_a - m) (0 where a saw no key)
    alpha_b: Array  # (..., n_q)  exp(m_b - m)


def merge_update(a: tuple[Array, Array, Array], b: tuple[Array, Array, Array]) -> MergeUpdate:
    """The merge of states a and b (m, l, o), with its rescale factors (for a teacher)."""
    m_a, l_a, o_a = a
    m_b, l_b, o_b = b
    # m = max(m_a, m_b)
    m = np.maximum(m_a, m_b)  # (..., n_q)
    m_safe = np.where(np.isneginf(m), 0, m)  # neither side saw a key: subtract 0
    # alpha_a = exp(m_a - m), alpha_b = exp(m_b - m)
    alpha_a = np.exp(m_a - m_safe)  # (..., n_q)
    alpha_b = np.exp(m_b - m_safe)  # (..., n_q)
    # l = alpha_a l_a + alpha_b l_b
    l = alpha_a * l_a + alpha_b * l_b  # (..., n_q)
    # o = diag(alpha_a) o_a + diag(alpha_b) o_b
    o = alpha_a[..., None] * o_a + alpha_b[..., None] * o_b  # (..., n_q, d)
    return MergeUpdate(m, l, o, alpha_a, alpha_b)


def merge_states(a: tuple[Array, Array, Array], b: tuple[Array, Array, Array]) -> State:
    """The state of the union of two disjoint sets of keys, from their states (m, l, o)
    (``checks.check_state``: same shapes and dtype, no broadcasting)."""
    a_, b_ = check_state("a", a), check_state("b", b)
    check_pair(a_, b_)
    return State(*merge_update(a_, b_)[:3])


def output_state(o: Array, lse: Array) -> State:
    """A finished (o, lse) as a state: (lse, 1, o), or (-inf, 0, 0) for a row with no key."""
    l = (~np.isneginf(lse)).astype(lse.dtype)  # (..., n_q)
    return State(lse, l, o)


def merge_outputs(a: tuple[Array, Array], b: tuple[Array, Array]) -> tuple[Array, Array]:
    """(o, lse) over the union of two disjoint sets of keys, from each set's (o, lse):
    lse = logaddexp(lse_a, lse_b), o = e^(lse_a - lse) o_a + e^(lse_b - lse) o_b."""
    a_, b_ = check_output("a", a), check_output("b", b)
    check_pair(a_, b_)
    return finalize(*merge_update(output_state(*a_), output_state(*b_))[:3])
