"""Split-KV decoding (Flash-Decoding): the keys cut into chunks run in parallel, then merged.

FA2 parallelises over query blocks; a decoder has one query row (or a few) and a long key
sequence, so FA2 would keep one thread block busy. Split-KV cuts the K/V blocks into
``num_splits`` contiguous chunks, as even as possible (the first ``n_blocks % num_splits``
splits take one block more; a split may get none). Each split runs the FA2 inner loop
(``inner_step.attn_fwd_inner``) over its chunk for every query row and finishes with its
own (o_s, lse_s); the combine step merges them (``merge.merge_states`` folded over the
splits, then normalised once):

    lse = logsumexp_s lse_s,   o = sum_s exp(lse_s - lse) o_s

Tiles that the causal mask hides from every row are skipped, as in ``flash_attention``; a
row that sees no key of a split has (o_s, lse_s) = (0, -inf) there, and o = 0, lse = -inf
if it sees no key at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np

from flashviz.core.checks import check_blocks, check_problem, check_scores_fit
from flashviz.core.inner_step import attn_fwd_inner, finalize, initial_state
from flashviz.core.masking import block_range, kv_blocks_for, num_blocks, visible
from flashviz.core.merge import merge_states, output_state
from flashviz.core.problem import Problem

DEFAULT_SPLIT_BLOCK_KV = 128  # decoding splits a few thousand keys: blocks smaller than FA2's


@dataclass(frozen=True, eq=False)
class SplitPartial:
    """What split s leaves for the combine step (and a teacher): its keys and final state."""

    s: int  # the split's index
    blocks: range  # the K/V blocks j it owns
    cols: range  # the keys they hold
    m: np.ndarray  # (..., n_q)     running max after its last tile (-inf: no key seen)
    l: np.ndarray  # (..., n_q)     running sum after its last tile (0: no key seen)
    o: np.ndarray  # (..., n_q, d)  o_s = o_i / l_i, its normalised output (0: no key seen)
    lse: np.ndarray  # (..., n_q)   lse_s = m + log l (-inf: no key seen)
    m_steps: np.ndarray  # (tiles, ..., n_q) running max after each of its tiles, in order
    l_steps: np.ndarray  # (tiles, ..., n_q) running sum after each of its tiles


def split_blocks(n_blocks: int, num_splits: int) -> list[range]:
    """The K/V blocks of each split: contiguous, sizes differing by at most one, the larger
    first; empty ranges when there are more splits than blocks."""
    size, extra = divmod(n_blocks, num_splits)
    starts = [s * size + min(s, extra) for s in range(num_splits + 1)]
    return [range(starts[s], starts[s + 1]) for s in range(num_splits)]


def split_kv_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    num_splits: int,
    block_kv: int = DEFAULT_SPLIT_BLOCK_KV,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[SplitPartial, ...]]:
    """Split-KV forward; returns o (..., n_q, d), lse (..., n_q) and each split's partial.

    Computes in the inputs' precision (float32 or float64); conventions, validation and
    messages as in ``flash_attention``. ``block_kv`` is a positive integer, ``num_splits`` one
    of at most n_k; splits beyond the number of K/V blocks get no key.
    """
    prob = check_problem(q, k, v, scale, causal_align, causal=causal)
    block_kv, num_splits = check_blocks(block_kv=block_kv, num_splits=num_splits)
    if num_splits > prob.n_k:  # each split holds one key at least
        raise ValueError(f"num_splits must be at most n_k = {prob.n_k}, got {num_splits}")
    check_scores_fit(prob.q, prob.k, prob.v, prob.scale, prob.q.dtype.type)
    rows = range(prob.n_q)  # all rows form one query block (decoding: n_q is small)
    seen = kv_blocks_for(rows, block_kv, prob.n_k, prob.offset)  # j < seen: some row sees j
    partials = tuple(
        _run_split(prob, s, blocks, rows, block_kv, seen)
        for s, blocks in enumerate(split_blocks(num_blocks(prob.n_k, block_kv), num_splits))
    )
    o, lse = combine([(p.o, p.lse) for p in partials])
    return o, lse, partials


def _run_split(
    prob: Problem, s: int, blocks: range, rows: range, block_kv: int, seen: int
) -> SplitPartial:
    """Split s: the FA2 inner loop over its K/V blocks (those before ``seen``), finalised."""
    lead, dtype = prob.q.shape[:-2], prob.q.dtype.type
    m_i, l_i, o_i = initial_state(lead, prob.n_q, prob.d, dtype)
    m_steps, l_steps = [], []
    for j in range(blocks.start, min(blocks.stop, seen)):  # later blocks: hidden from all rows
        cols = block_range(j, block_kv, prob.n_k)
        m_i, l_i, o_i, *_ = attn_fwd_inner(
            m_i,
            l_i,
            o_i,
            prob.q,
            prob.k[..., cols.start : cols.stop, :],
            prob.v[..., cols.start : cols.stop, :],
            scale=prob.scale,
            visible=visible(rows, cols, prob.offset),
        )
        m_steps.append(m_i)
        l_steps.append(l_i)
    o_s, lse_s = finalize(m_i, l_i, o_i)
    cols = range(min(blocks.start * block_kv, prob.n_k), min(blocks.stop * block_kv, prob.n_k))
    steps = [np.stack(x) if x else np.empty((0, *m_i.shape), dtype) for x in (m_steps, l_steps)]
    return SplitPartial(s, blocks, cols, m_i, l_i, o_s, lse_s, *steps)


def combine(outputs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The combine step: each split's (o_s, lse_s) as a state, merged left to right, then
    normalised: lse = logsumexp_s lse_s, o = sum_s exp(lse_s - lse) o_s."""
    return finalize(*reduce(merge_states, (output_state(o, lse) for o, lse in outputs)))
