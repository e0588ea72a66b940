"""The Masks page's lesson: a FlexAttention mask, its block mask and what its tiles cost.

``MASK_KINDS`` names the masks a user picks, each built from one integer (its size: a
window, a prefix, a document's length, a chunk) for n_q queries and n_k keys;
``mask_view`` builds the ``BlockMask`` and its costs for the page, after ``size_errors``
bounded what it may cost (the dense mask is only drawn up to ``DENSE_MAX`` a side).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from flashviz.core.block_mask import BlockMask, create_block_mask
from flashviz.core.costs import MaskCosts, block_mask_costs
from flashviz.core.masking import num_blocks
from flashviz.core.masks import (
    MaskMod,
    and_masks,
    causal,
    chunked,
    document,
    global_tokens,
    mask_entries,
    prefix_lm,
    sliding_window,
)

MAX_N = 4096  # queries or keys
MAX_TILES = 64 * 64  # tiles in the block map (and rows of the fields' tables)
DENSE_MAX = 256  # the dense mask is drawn up to this many rows and columns
D = 64  # the head dimension the costs are counted for


@dataclass(frozen=True)
class MaskKind:
    label: str
    size_label: str  # what the one integer means ('' when the mask takes none)
    build: Callable[[int, int, int], MaskMod]  # (n_q, n_k, size) -> mask_mod
    code: str  # how to write it with flashviz.masks, {size} filled in


def _documents(n_q: int, n_k: int, size: int) -> MaskMod:
    """Documents of ``size`` tokens packed one after another (the last may be shorter)."""
    return and_masks(causal(), document(list(range(0, max(n_q, n_k), size))))


MASK_KINDS: dict[str, MaskKind] = {
    "causal": MaskKind("causal (top-left)", "", lambda n_q, n_k, size: causal(),
                       "causal()"),
    "sliding_window": MaskKind("sliding window (causal)", "window (keys back)",
                               lambda n_q, n_k, size: sliding_window(size),
                               "sliding_window({size})"),
    "prefix_lm": MaskKind("prefix-LM", "prefix length",
                          lambda n_q, n_k, size: prefix_lm(size), "prefix_lm({size})"),
    "document": MaskKind("documents (packed, causal)", "document length", _documents,
                         "and_masks(causal(), document(range(0, n, {size})))"),
    "chunked": MaskKind("chunked (causal)", "chunk",
                        lambda n_q, n_k, size: and_masks(causal(), chunked(size)),
                        "and_masks(causal(), chunked({size}))"),
    "global_window": MaskKind("global tokens + window", "window (4 global tokens)",
                              lambda n_q, n_k, size: global_tokens(4, size),
                              "global_tokens(4, {size})"),
}  # fmt: skip


def size_errors(kind: str, size: int, n_q: int, n_k: int, block_q: int, block_kv: int) -> list[str]:
    """What is wrong with the page's values, each a sentence to show ([] when all fit)."""
    errors = []
    if kind not in MASK_KINDS:
        errors.append(f"Pick a mask from the list ({', '.join(MASK_KINDS)}).")
    for name, value in (("n_q", n_q), ("n_k", n_k), ("block_q", block_q), ("block_kv", block_kv)):
        if not 1 <= value <= MAX_N:
            errors.append(f"{name} must be between 1 and {MAX_N}, got {value}.")
    if errors:
        return errors
    if MASK_KINDS[kind].size_label and not 1 <= size <= MAX_N:
        errors.append(f"The {MASK_KINDS[kind].size_label} must be between 1 and {MAX_N}.")
    tiles = num_blocks(n_q, block_q) * num_blocks(n_k, block_kv)
    if tiles > MAX_TILES:
        errors.append(
            f"{num_blocks(n_q, block_q)} x {num_blocks(n_k, block_kv)} = {tiles:,} tiles: at "
            f"most {MAX_TILES:,} are drawn. Use larger blocks."
        )
    return errors


@dataclass(frozen=True)
class MaskView:
    """A mask, its block mask and costs, and the dense mask when it is small enough."""

    kind: str
    size: int
    block_mask: BlockMask
    costs: MaskCosts
    dense: np.ndarray | None  # (n_q, n_k) booleans, None beyond DENSE_MAX a side

    @property
    def code(self) -> str:
        (n_q, n_k), block = self.block_mask.seq_lengths, self.block_mask.block_size
        mod = MASK_KINDS[self.kind].code.format(size=self.size)
        return f"create_block_mask({mod}, None, None, {n_q}, {n_k}, block_size={block})"


def mask_view(kind: str, size: int, n_q: int, n_k: int, block_q: int, block_kv: int) -> MaskView:
    """The page's mask (values checked by ``size_errors`` first)."""
    mod = MASK_KINDS[kind].build(n_q, n_k, size)
    bm = create_block_mask(mod, None, None, n_q, n_k, (block_q, block_kv))
    dense = mask_entries(mod, range(n_q), range(n_k)) if max(n_q, n_k) <= DENSE_MAX else None
    return MaskView(kind, size, bm, block_mask_costs(bm, D), dense)
