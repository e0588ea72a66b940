"""One attention problem, as every part of the core sees it.

``Problem``: the inputs q (..., n_q, d), k and v (..., n_k, d), the softmax scale and the
causal mask; ``TiledProblem`` adds the block sizes of a tiled run, with its grid and its
tile schedule. ``flashviz.core.checks.check_problem`` and ``check_tiled_problem`` build
them from a caller's arguments, validated; FA2's ``Trace`` and FA1's
``flashviz.lab.fa1.Fa1Trace`` are tiled problems that also hold their steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from flashviz.core.masking import (
    KeyBlock,
    QueryBlock,
    kv_tile_schedule,
    mask_offset,
    num_blocks,
    tile_schedule,
)


@dataclass(frozen=True, eq=False)
class Problem:
    """Attention inputs and what the softmax needs: scale tau and the causal mask."""

    q: np.ndarray  # (..., n_q, d)
    k: np.ndarray  # (..., n_k, d)
    v: np.ndarray  # (..., n_k, d)
    scale: float
    causal: bool
    causal_align: str  # "bottom_right" or "top_left" (see flashviz.core.masking)

    @property
    def n_q(self) -> int:
        return self.q.shape[-2]

    @property
    def n_k(self) -> int:
        return self.k.shape[-2]

    @property
    def d(self) -> int:
        return self.q.shape[-1]

    @property
    def offset(self) -> int | None:
        """Row r sees key c iff c <= r + offset; None without a mask."""
        return mask_offset(self.n_q, self.n_k, self.causal, self.causal_align)


@dataclass(frozen=True, eq=False)
class TiledProblem(Problem):
    """A problem cut into query blocks of ``block_q`` rows and K/V blocks of ``block_kv``."""

    block_q: int
    block_kv: int

    @property
    def grid(self) -> tuple[int, int]:
        """(number of Q blocks, number of K/V blocks)."""
        return num_blocks(self.n_q, self.block_q), num_blocks(self.n_k, self.block_kv)

    def schedule(self) -> Iterator[QueryBlock]:
        """The tiles a tiled run computes, in order (``flashviz.core.masking.tile_schedule``)."""
        return tile_schedule(self.n_q, self.n_k, self.block_q, self.block_kv, self.offset)

    def kv_schedule(self) -> Iterator[KeyBlock]:
        """The tiles a tiled backward computes, K/V blocks outside
        (``flashviz.core.masking.kv_tile_schedule``)."""
        return kv_tile_schedule(self.n_q, self.n_k, self.block_q, self.block_kv, self.offset)
