"""The tile schedule: exactly the tiles with a visible entry, in FA2's order, against a
brute-force enumeration of every (query, key) pair."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from flashviz.core import costs
from flashviz.core.masking import mask_offset, tile_schedule


def _brute_force(n_q, n_k, block_q, block_kv, offset):
    """Per query block (in order): the K/V blocks (in order) where some row sees some key."""
    r, c = np.arange(n_q)[:, None], np.arange(n_k)[None, :]
    seen = np.ones((n_q, n_k), bool) if offset is None else c <= r + offset
    out = []
    for i, r0 in enumerate(range(0, n_q, block_q)):
        rows = range(r0, min(r0 + block_q, n_q))
        kv = [
            (j, range(c0, min(c0 + block_kv, n_k)))
            for j, c0 in enumerate(range(0, n_k, block_kv))
            if seen[rows.start : rows.stop, c0 : c0 + block_kv].any()
        ]
        out.append((i, rows, kv))
    return out


@given(
    n_q=st.integers(1, 40),
    n_k=st.integers(1, 40),
    block_q=st.integers(1, 45),
    block_kv=st.integers(1, 45),
    causal=st.booleans(),
    align=st.sampled_from(["bottom_right", "top_left"]),
)
def test_the_schedule_is_every_tile_with_a_visible_entry_in_order(
    n_q, n_k, block_q, block_kv, causal, align
):
    offset = mask_offset(n_q, n_k, causal, align)
    got = [(b.i, b.rows, list(b.kv)) for b in tile_schedule(n_q, n_k, block_q, block_kv, offset)]
    assert got == _brute_force(n_q, n_k, block_q, block_kv, offset)
    for b in tile_schedule(n_q, n_k, block_q, block_kv, offset):  # a prefix: j = 0, 1, ...
        assert [j for j, _ in b.kv] == list(range(len(b.kv)))
    tiles = costs.executed_tiles(n_q, n_k, block_q, block_kv, causal, align)
    assert tiles == [(rows, cols) for _, rows, kv in got for _, cols in kv]


def test_a_query_block_that_sees_no_key_is_scheduled_with_no_tile():
    # bottom-right, n_q = 6 > n_k = 2: rows 0-3 see no key
    blocks = list(tile_schedule(6, 2, 2, 1, mask_offset(6, 2, True, "bottom_right")))
    assert [len(b.kv) for b in blocks] == [0, 0, 2]
    assert [b.rows for b in blocks] == [range(0, 2), range(2, 4), range(4, 6)]
