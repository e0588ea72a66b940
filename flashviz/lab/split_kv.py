"""Split-KV decoding as a lesson: a run with its reference, the merge of one row step by step,
and how busy the GPU's SMs are, FA2's query blocks against split-KV.

The algorithm is ``flashviz.core.split_kv`` and its merge ``flashviz.core.merge``; this
module runs them on a random problem and lays out what the page shows. The SM model is the
simplest that shows the point: every split (FA2: every query block) is one thread block, an
SM runs one thread block at a time, a thread block takes one time unit per K/V tile it
computes, and the scheduler hands the thread blocks out in order to the SM that frees up
first (lowest index on a tie). FA2's grid is batch x heads x ceil(n_q / block_q) query
blocks: batch x heads for a decoder (n_q <= 8 < block_q = 128), often fewer than the SMs;
split-KV multiplies it by the number of splits.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from flashviz.core.accuracy import allowed_error
from flashviz.core.flash import DEFAULT_BLOCK_Q
from flashviz.core.inner_step import initial_state
from flashviz.core.masking import kv_blocks_for, mask_offset, num_blocks
from flashviz.core.merge import State, merge_update, output_state
from flashviz.core.reference import attention_reference, naive_attention
from flashviz.core.split_kv import SplitPartial, split_blocks, split_kv_attention
from flashviz.core.verdict import RowErrorMaxima, row_errors

# SM counts of a few NVIDIA GPUs (their data sheets)
GPUS: dict[str, int] = {
    "H100 SXM": 132,
    "H100 PCIe": 114,
    "A100": 108,
    "RTX 4090": 128,
    "RTX 3090": 82,
    "V100": 80,
    "L4": 58,
    "T4": 40,
}
MAX_N_Q = 8  # decoding: one query row, or a few (speculative decoding, grouped queries)
MAX_N_K = 8192
MAX_HEAD_DIM = 256
MAX_SPLITS = 512
MAX_HEADS = 32  # batch x heads: the grid multiplies by it; the numbers are head 0's
MAX_THREAD_BLOCKS = 4096  # heads x splits: the SM chart draws each one
CURVE_SPLITS = 64  # the utilisation curve goes up to this many splits (or the chosen number)
MAX_TILES = 2048  # K/V blocks: the lanes draw one point per tile


def size_errors(
    n_q: int, n_k: int, head_dim: int, num_splits: int, block_kv: int, heads: int, seed: int
) -> list[str]:
    """Everything wrong with the page's inputs, one actionable sentence each; empty if fine."""
    ranges = {
        "n_q": (n_q, MAX_N_Q),
        "n_k": (n_k, MAX_N_K),
        "head_dim": (head_dim, MAX_HEAD_DIM),
        "num_splits": (num_splits, MAX_SPLITS),
        "block_kv": (block_kv, None),
        "heads": (heads, MAX_HEADS),
    }
    errors = []
    for name, (value, top) in ranges.items():
        if value < 1 or (top is not None and value > top):
            bound = f"between 1 and {top}" if top is not None else "at least 1"
            errors.append(f"`{name}` must be {bound}, got {value}.")
    if seed < 0:
        errors.append(f"`seed` must be a non-negative integer, got {seed}.")
    if errors:
        return errors
    if num_splits > n_k:
        errors.append(
            f"`num_splits` must be at most n_k = {n_k} (one key a split), got {num_splits}."
        )
    if num_blocks(n_k, block_kv) > MAX_TILES:
        errors.append(
            f"n_k = {n_k} in blocks of {block_kv} is {num_blocks(n_k, block_kv)} K/V tiles, "
            f"more than the {MAX_TILES} the lanes can draw: use block_kv >= "
            f"{-(-n_k // MAX_TILES)}."
        )
    if heads * num_splits > MAX_THREAD_BLOCKS:
        errors.append(
            f"{heads} heads x {num_splits} splits = {heads * num_splits} thread blocks, more "
            f"than the {MAX_THREAD_BLOCKS} the SM chart can draw: use at most "
            f"{MAX_THREAD_BLOCKS // heads} splits."
        )
    return errors


# SM schedule ------------------------------------------------------------------------------


class Slot(NamedTuple):
    """Where and when one thread block ran."""

    block: int  # the thread block (the split s)
    sm: int  # the SM it ran on
    wave: int  # how many thread blocks that SM ran before it
    start: int  # time, in K/V tiles
    stop: int


def schedule(work: Sequence[int], sms: int) -> list[Slot]:
    """Thread blocks taking ``work[b]`` time units each, handed out in order to the SM that
    frees up first (lowest index on a tie)."""
    free = [(0, sm, 0) for sm in range(sms)]  # (free at, SM, thread blocks run so far)
    slots = []
    for b, w in enumerate(work):
        at, sm, ran = heapq.heappop(free)
        slots.append(Slot(b, sm, ran, at, at + w))
        heapq.heappush(free, (at + w, sm, ran + 1))
    return slots


def utilisation(work: Sequence[int], sms: int) -> float:
    """Busy SM time / (all SMs x the time until the last thread block ends); 0 for no work."""
    end = max((s.stop for s in schedule(work, sms)), default=0)
    return sum(work) / (sms * end) if end else 0.0


def split_work(
    n_q: int, n_k: int, block_kv: int, num_splits: int, offset: int | None, heads: int = 1
) -> list[int]:
    """The K/V tiles each thread block of split-KV computes, head by head, split by split
    (blocks hidden from every row are skipped)."""
    seen = kv_blocks_for(range(n_q), block_kv, n_k, offset)
    blocks = split_blocks(num_blocks(n_k, block_kv), num_splits)
    return [max(0, min(b.stop, seen) - b.start) for b in blocks] * heads


def fa2_work(n_q: int, n_k: int, block_kv: int, offset: int | None, heads: int = 1) -> list[int]:
    """FA2's thread blocks: per head, one per query block of ``DEFAULT_BLOCK_Q`` rows, each
    computing every K/V tile its rows see."""
    rows = [range(r, min(r + DEFAULT_BLOCK_Q, n_q)) for r in range(0, n_q, DEFAULT_BLOCK_Q)]
    return [kv_blocks_for(r, block_kv, n_k, offset) for r in rows] * heads


class UtilisationCurve(NamedTuple):
    splits: np.ndarray  # (n,) numbers of splits 1, 2, ...
    split_kv: np.ndarray  # (n,) utilisation of split-KV with that many splits
    fa2: float  # utilisation of FA2 (query blocks only)


def utilisation_curve(
    n_q: int, n_k: int, block_kv: int, offset: int | None, heads: int, sms: int, max_splits: int
) -> UtilisationCurve:
    """SM utilisation of split-KV for 1 .. ``max_splits`` splits, and of FA2."""
    splits = np.arange(1, max_splits + 1)
    busy = [utilisation(split_work(n_q, n_k, block_kv, int(s), offset, heads), sms) for s in splits]
    fa2 = utilisation(fa2_work(n_q, n_k, block_kv, offset, heads), sms)
    return UtilisationCurve(splits, np.array(busy), fa2)


# A run ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SplitKvRun(RowErrorMaxima):
    """Split-KV on one random head (float32), with the float64 reference and its errors."""

    q: np.ndarray  # (n_q, d)
    k: np.ndarray  # (n_k, d)
    v: np.ndarray  # (n_k, d)
    block_kv: int
    causal: bool  # bottom-right: the n_q rows are the last tokens of the sequence
    o: np.ndarray  # (n_q, d)
    lse: np.ndarray  # (n_q,)
    partials: tuple[SplitPartial, ...]
    o_ref: np.ndarray  # (n_q, d) float64
    lse_ref: np.ndarray  # (n_q,)
    err_o: np.ndarray  # (n_q,) max |o - o_ref| over each row
    err_lse: np.ndarray  # (n_q,)
    tol_o: float  # flash-attn's rule: 2 x naive float32's error + 4 ulps
    tol_lse: float

    @property
    def n_q(self) -> int:
        return self.q.shape[0]

    @property
    def n_k(self) -> int:
        return self.k.shape[0]

    @property
    def offset(self) -> int | None:
        return mask_offset(self.n_q, self.n_k, self.causal, "bottom_right")

    @property
    def work(self) -> list[int]:
        """The K/V tiles each split computed."""
        return [len(p.m_steps) for p in self.partials]

    @property
    def ok(self) -> bool:
        return self.max_err_o <= self.tol_o and self.max_err_lse <= self.tol_lse


def run_split_kv(
    n_q: int, n_k: int, head_dim: int, num_splits: int, block_kv: int, causal: bool, seed: int
) -> SplitKvRun:
    """Random float32 q, k, v from ``seed``; split-KV, the reference and the tolerances."""
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((n, head_dim)).astype(np.float32) for n in (n_q, n_k, n_k))
    o, lse, partials = split_kv_attention(
        q, k, v, num_splits=num_splits, block_kv=block_kv, causal=causal
    )
    o_ref, lse_ref = attention_reference(q, k, v, causal=causal)
    o_naive, lse_naive = naive_attention(q, k, v, causal=causal)
    eps = float(np.finfo(np.float32).eps)
    err_o, err_lse = row_errors(o, lse, o_ref, lse_ref)
    tol_o, tol_lse = allowed_error(o_ref, o_naive, eps), allowed_error(lse_ref, lse_naive, eps)
    return SplitKvRun(
        q, k, v, block_kv, causal, o, lse, partials, o_ref, lse_ref, err_o, err_lse, tol_o, tol_lse
    )


# The merge of one row, step by step ----------------------------------------------------------


class MergeStep(NamedTuple):
    """Merge step s of one row: the state of splits 0 .. s-1 merged with split s's."""

    s: int
    m_prev: float  # the merged state so far (step 0: the empty state -inf, 0)
    l_prev: float
    lse_s: float  # split s as a state: (lse_s, 1), or (-inf, 0) if the row saw none of it
    l_s: float
    m: float  # the merged state after this step
    l: float
    alpha_prev: float  # exp(m_prev - m): the factor the state so far is rescaled by
    alpha_s: float  # exp(lse_s - m): split s's
    lse: float  # m + log l: the logsumexp of every key merged so far


def merge_steps(run: SplitKvRun, row: int) -> list[MergeStep]:
    """The combine step for query ``row``: from the empty state, each split merged in turn
    (``flashviz.core.merge.merge_update``, on every row; the numbers of ``row``)."""
    state = State(*initial_state((), run.n_q, run.q.shape[1], np.float32))
    steps = []
    for p in run.partials:
        part = output_state(p.o, p.lse)
        up = merge_update(state, part)
        with np.errstate(divide="ignore"):
            lse = float(up.m[row] + np.log(up.l[row]))
        m_prev, l_prev, lse_s, l_s, m, l, alpha_prev, alpha_s = (
            float(x[row])
            for x in (state.m, state.l, part.m, part.l, up.m, up.l, up.alpha_a, up.alpha_b)
        )
        steps.append(MergeStep(p.s, m_prev, l_prev, lse_s, l_s, m, l, alpha_prev, alpha_s, lse))
        state = State(up.m, up.l, up.o)
    return steps


def split_weights(run: SplitKvRun, row: int) -> np.ndarray:
    """exp(lse_s - lse) for each split s: its share of the row's softmax (0 if it saw none)."""
    lse_s = np.array([float(p.lse[row]) for p in run.partials])
    lse = float(run.lse[row])
    if np.isneginf(lse):
        return np.zeros_like(lse_s)
    return np.exp(lse_s - lse)
