"""What a block mask costs (``flashviz.costs.block_mask_costs``): for the causal mask the
same as the causal counts the rest of flashviz uses; for any mask, useful FLOPs from the
dense mask, the mask evaluated exactly on the partial tiles' entries (counted in a real
run of the tiled forward), and the HBM traffic of the tiles a run visits."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from flashviz import costs, flash_attention
from flashviz.masks import and_masks, causal, create_block_mask, document, sliding_window

D = 8


@given(
    n_q=st.integers(1, 70),
    n_k=st.integers(1, 70),
    block_q=st.integers(1, 20),
    block_kv=st.integers(1, 20),
    align=st.sampled_from(["top_left", "bottom_right"]),
)
def test_the_causal_block_mask_costs_what_the_causal_counts_say(
    n_q: int, n_k: int, block_q: int, block_kv: int, align: str
) -> None:
    bm = create_block_mask(causal(n_q, n_k, align), None, None, n_q, n_k, (block_q, block_kv))
    got = costs.block_mask_costs(bm, D)
    tiles = (n_q, n_k, D, block_q, block_kv, True, align)
    assert got.useful_flops == costs.attention_flops(n_q, n_k, D, True, align)
    assert got.executed_flops == costs.executed_flops(*tiles)
    assert got.hbm == costs.fa2_hbm(*tiles)
    assert got.dense_flops == costs.attention_flops(n_q, n_k, D)
    assert got.full_tiles + got.partial_tiles + got.empty_tiles == bm.kinds.size


@given(
    n=st.integers(1, 60),
    block_q=st.integers(1, 16),
    block_kv=st.integers(1, 16),
    window=st.integers(0, 60),
    starts=st.sets(st.integers(1, 59), max_size=4),
)
def test_a_mask_is_evaluated_on_the_partial_tiles_entries_and_nowhere_else(
    n: int, block_q: int, block_kv: int, window: int, starts: set[int]
) -> None:
    mod = and_masks(sliding_window(window), document([0, *sorted(s for s in starts if s < n)]))
    evaluated = [0]

    def counted(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        seen = np.broadcast_to(mod(b, h, q_idx, kv_idx), np.broadcast_shapes(
            np.shape(q_idx), np.shape(kv_idx)))  # fmt: skip
        evaluated[0] += seen.size
        return seen

    bm = create_block_mask(counted, None, None, n, n, (block_q, block_kv))
    got = costs.block_mask_costs(bm, D)
    q_idx, kv_idx = np.arange(n)[:, None], np.arange(n)[None, :]
    assert got.useful_flops == 4 * D * int(mod(0, 0, q_idx, kv_idx).sum())
    assert got.executed_flops == 4 * D * (got.mask_evaluations + got.evaluations_saved)
    evaluated[0] = 0
    x = np.random.default_rng(n).standard_normal((n, D))
    flash_attention(x, x, x, block_mask=bm)
    assert evaluated[0] == got.mask_evaluations


def test_a_sliding_window_skips_most_of_a_long_sequence_and_a_wide_one_saves_evaluations() -> None:
    n = 4096
    narrow, wide = (
        create_block_mask(sliding_window(w), None, None, n, n, (128, 64)) for w in (256, 1024)
    )
    got = costs.block_mask_costs(narrow, 64)
    print(f"window 256: sparsity {narrow.sparsity():.1f} %, executed / dense "
          f"{got.executed_flops / got.dense_flops:.3f}")  # fmt: skip
    assert got.executed_flops < 0.1 * got.dense_flops  # about (window + tiles) / n of it
    assert got.useful_flops <= got.executed_flops
    wide_costs = costs.block_mask_costs(wide, 64)  # the band's inside: full tiles
    assert wide_costs.evaluations_saved > 3 * wide_costs.mask_evaluations
