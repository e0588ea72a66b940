"""Causal alignment: masks, tile kinds, empty rows and FLOPs against brute force.

The brute-force oracles below start from the definition only (row r sees key c iff
c <= r + offset, offset = n_k - n_q bottom-right, 0 top-left) and count cell by cell;
they use nothing from flashviz.core.masking or flashviz.core.costs.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz.figures.alignment import alignment_flops_figure, alignment_map_figure
from flashviz.lab import alignment
from flashviz.lab.alignment import (
    ALIGNS,
    analyse,
    analyse_both,
    element_mask,
    empty_row_outputs,
    empty_rows,
    flash_attn_lse,
    flop_counts,
    size_errors,
    tile_kinds,
)
from tests.support import decode, spec

# --- brute force, from the definition -------------------------------------------------


def brute_mask(n_q: int, n_k: int, align: str) -> np.ndarray:
    offset = n_k - n_q if align == "bottom_right" else 0
    return np.array([[c <= r + offset for c in range(n_k)] for r in range(n_q)], dtype=bool)


def brute_tiles(n_q: int, n_k: int, b_q: int, b_kv: int) -> list[tuple[int, int, range, range]]:
    return [
        (i, j, range(r0, min(r0 + b_q, n_q)), range(c0, min(c0 + b_kv, n_k)))
        for i, r0 in enumerate(range(0, n_q, b_q))
        for j, c0 in enumerate(range(0, n_k, b_kv))
    ]


def brute_kinds(mask: np.ndarray, b_q: int, b_kv: int) -> np.ndarray:
    n_q, n_k = mask.shape
    kinds = np.empty((-(-n_q // b_q), -(-n_k // b_kv)), dtype=object)
    for i, j, rows, cols in brute_tiles(n_q, n_k, b_q, b_kv):
        sub = mask[rows.start : rows.stop, cols.start : cols.stop]
        kinds[i, j] = "full" if sub.all() else "skipped" if not sub.any() else "partial"
    return kinds


def brute_flops(mask: np.ndarray, d: int, b_q: int, b_kv: int) -> tuple[int, int, int]:
    """(unmasked, executed, useful): every cell; cells of tiles with a visible entry; visible."""
    n_q, n_k = mask.shape
    executed = 0
    for _, _, rows, cols in brute_tiles(n_q, n_k, b_q, b_kv):
        if mask[rows.start : rows.stop, cols.start : cols.stop].any():
            executed += 4 * d * len(rows) * len(cols)
    return 4 * d * n_q * n_k, executed, 4 * d * int(mask.sum())


sizes = st.integers(1, 40)
blocks = st.integers(1, 12)
aligns = st.sampled_from(ALIGNS)


# --- the logic against brute force ----------------------------------------------------


@given(n_q=sizes, n_k=sizes, b_q=blocks, b_kv=blocks, d=st.integers(1, 16), align=aligns)
def test_everything_matches_brute_force(n_q, n_k, b_q, b_kv, d, align) -> None:
    a = analyse(n_q, n_k, d, b_q, b_kv, align)
    mask = brute_mask(n_q, n_k, align)
    assert a.mask.dtype == bool and np.array_equal(a.mask, mask)
    assert a.kinds.tolist() == brute_kinds(mask, b_q, b_kv).tolist()
    assert a.empty_rows.tolist() == [r for r in range(n_q) if not mask[r].any()]
    unmasked, executed, useful = brute_flops(mask, d, b_q, b_kv)
    assert (a.flops.unmasked, a.flops.executed, a.flops.useful) == (unmasked, executed, useful)
    assert a.flops.saving == pytest.approx(1 - executed / unmasked, abs=1e-15)
    assert a.flops.wasted == executed - useful >= 0
    assert sum(a.count(kind) for kind in alignment.TILE_KINDS) == a.kinds.size


@given(n=sizes, b_q=blocks, b_kv=blocks, d=st.integers(1, 8))
def test_equal_lengths_the_two_alignments_agree(n, b_q, b_kv, d) -> None:
    top, bottom = analyse_both(n, n, d, b_q, b_kv)
    assert np.array_equal(top.mask, bottom.mask)
    assert np.array_equal(top.kinds, bottom.kinds)
    assert top.flops == bottom.flops
    assert len(top.empty_rows) == len(bottom.empty_rows) == 0
    assert top.offset == bottom.offset == 0


@given(n_q=sizes, extra=st.integers(1, 20), b_q=blocks, b_kv=blocks)
def test_fewer_queries_no_empty_rows_and_bottom_right_sees_more(n_q, extra, b_q, b_kv) -> None:
    n_k = n_q + extra
    top, bottom = analyse_both(n_q, n_k, 4, b_q, b_kv)
    assert len(top.empty_rows) == len(bottom.empty_rows) == 0
    assert not np.array_equal(top.mask, bottom.mask)
    assert (bottom.mask >= top.mask).all()  # bottom-right sees every key top-left sees
    assert bottom.mask[-1].all()  # the last query sees every key
    assert bottom.flops.executed >= top.flops.executed


@given(n_k=sizes, extra=st.integers(1, 20), b_q=blocks, b_kv=blocks)
def test_more_queries_bottom_right_has_empty_rows(n_k, extra, b_q, b_kv) -> None:
    n_q = n_k + extra
    top, bottom = analyse_both(n_q, n_k, 4, b_q, b_kv)
    assert len(top.empty_rows) == 0  # top-left: row r always sees key 0
    assert bottom.empty_rows.tolist() == list(range(n_q - n_k))  # a prefix, as drawn
    assert (bottom.mask <= top.mask).all()
    assert bottom.mask[-1].all() and top.mask[-1].all()
    assert bottom.flops.executed <= top.flops.executed


@given(n_q=sizes, n_k=sizes, d=st.integers(1, 8), align=aligns)
def test_single_cell_tiles_waste_nothing(n_q, n_k, d, align) -> None:
    f = flop_counts(n_q, n_k, d, 1, 1, align)
    assert f.executed == f.useful == 4 * d * int(brute_mask(n_q, n_k, align).sum())


def test_reference_examples() -> None:
    # bottom-right (flash-attn >= 2.1): row r sees key c iff c <= r + n_k - n_q, so with
    # 2 queries x 5 keys the rows are 11110 / 11111; top-left (PyTorch): c <= r
    assert element_mask(2, 5, "bottom_right").astype(int).tolist() == [
        [1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
    ]
    assert element_mask(2, 5, "top_left").astype(int).tolist() == [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0]]
    # 5 queries x 2 keys, bottom-right: the top three rows see no key at all
    assert empty_rows(5, 2, "bottom_right").tolist() == [0, 1, 2]
    assert empty_rows(5, 2, "top_left").tolist() == []


def test_default_page_case_has_every_kind() -> None:
    top, bottom = analyse_both(12, 5, 8, 4, 2)
    assert top.kinds.tolist() == [
        ["partial", "partial", "skipped"],
        ["full", "full", "full"],
        ["full", "full", "full"],
    ]
    assert bottom.kinds.tolist() == [
        ["skipped", "skipped", "skipped"],
        ["partial", "skipped", "skipped"],
        ["full", "partial", "partial"],
    ]
    assert bottom.offset == -7 and bottom.empty_rows.tolist() == list(range(7))
    # executed cells: top-left 56 of 60, bottom-right 28 of 60; useful 50 and 15
    assert (top.flops.executed, top.flops.useful) == (4 * 8 * 56, 4 * 8 * 50)
    assert (bottom.flops.executed, bottom.flops.useful) == (4 * 8 * 28, 4 * 8 * 15)
    assert bottom.flops.saving == pytest.approx(32 / 60)


# --- empty rows' o and lse from the real implementations ------------------------------


@given(
    n_k=st.integers(1, 12),
    extra=st.integers(0, 12),
    b_q=blocks,
    b_kv=blocks,
    d=st.integers(1, 16),
    seed=st.integers(0, 2**31),
    align=aligns,
)
def test_empty_rows_give_zero_output_and_minus_inf_lse(n_k, extra, b_q, b_kv, d, seed, align):
    n_q = n_k + extra
    out = empty_row_outputs(n_q, n_k, d, b_q, b_kv, align, seed)
    expected = [r for r in range(n_q) if not brute_mask(n_q, n_k, align)[r].any()]
    assert out.rows.tolist() == expected
    assert out.o_reference.shape == out.o_flash.shape == (len(expected), d)
    assert (out.o_reference == 0).all() and (out.o_flash == 0).all()  # exact zeros, no NaN
    assert np.isneginf(out.lse_reference).all() and np.isneginf(out.lse_flash).all()
    table = out.table()
    assert table["query row r"] == expected
    assert set(table["lse flashviz"]) <= {"-inf"} and set(table["lse reference"]) <= {"-inf"}
    assert set(table["lse flash-attn stores"]) <= {"+inf"}
    assert set(table["max |o_r| flashviz"]) <= {0.0}


def test_flash_attn_lse_maps_only_minus_inf() -> None:
    lse = np.array([-np.inf, -3.5, 0.0, 2.0])
    assert flash_attn_lse(lse).tolist() == [np.inf, -3.5, 0.0, 2.0]


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: element_mask(0, 5, "top_left"), "n_q"),
        (lambda: element_mask(3, -1, "top_left"), "n_k"),
        (lambda: tile_kinds(3, 5, 0, 2, "top_left"), "block_q"),
        (lambda: tile_kinds(3, 5, 2, 2.5, "top_left"), "block_kv"),
        (lambda: element_mask(3, 5, "diagonal"), "causal_align"),
        (lambda: flop_counts(3, 5, 0, 1, 1, "top_left"), "head_dim"),
        (lambda: empty_row_outputs(3, 5, 4, 1, 1, "top_right", 0), "causal_align"),
    ],
)
def test_bad_arguments_raise_naming_them(call, name) -> None:
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((0, 5, 8, 1, 1, 0), "`n_q` must be at least 1"),
        ((5, 5, 8, 1, 0, 0), "`block_kv` must be at least 1"),
        ((5, 5, 0, 1, 1, 0), "`head_dim` must be at least 1"),
        ((5, 5, 8, 1, 1, -1), "`seed` must be a non-negative"),
        ((200, 5, 8, 40, 1, 0), "at most 128"),
        ((128, 128, 8, 1, 1, 0), "too many to outline"),
        ((5, 5, 1000, 1, 1, 0), "`head_dim` = 1000"),
    ],
)
def test_size_errors_explain(args, fragment) -> None:
    errors = size_errors(*args)
    assert any(fragment in e for e in errors), errors


def test_size_errors_accept_valid_and_suggested_sizes() -> None:
    assert size_errors(12, 5, 8, 4, 2, 0) == []
    assert size_errors(128, 128, 256, 64, 64, 0) == []  # at the limits
    assert size_errors(3, 2, 8, 10, 10, 0) == []  # a block larger than n is one tile
    # the suggestion in the "too many tiles" message is itself accepted
    assert size_errors(128, 128, 8, 4, 4, 0) == []


# --- figures --------------------------------------------------------------------------


@pytest.mark.parametrize("case", [(12, 5, 4, 2), (2, 5, 1, 2), (7, 7, 3, 2), (50, 37, 4, 3)])
def test_map_figure_shows_masks_tiles_and_empty_rows(case) -> None:
    n_q, n_k, b_q, b_kv = case
    views = analyse_both(n_q, n_k, 8, b_q, b_kv)
    fig = alignment_map_figure(views)
    go.Figure(fig.to_dict())  # full validation
    data = spec(fig.to_json())
    heatmaps = [t for t in data["data"] if t["type"] == "heatmap"]
    shapes = data["layout"]["shapes"]
    for k, align in enumerate(ALIGNS):
        xref = "x" if k == 0 else "x2"
        assert heatmaps[k]["xaxis"] == xref
        mask = brute_mask(n_q, n_k, align)
        assert np.array_equal(decode(heatmaps[k]["z"]).reshape(n_q, n_k), mask.astype(np.int8))
        kinds = brute_kinds(mask, b_q, b_kv)
        for i, j, rows, cols in brute_tiles(n_q, n_k, b_q, b_kv):
            (rect,) = [
                s
                for s in shapes
                if s["xref"] == xref
                and s["name"].endswith(" tile")
                and (s["x0"], s["y0"]) == (cols.start - 0.5, rows.start - 0.5)
            ]
            assert rect["name"] == f"{kinds[i, j]} tile"
            assert (rect["x1"], rect["y1"]) == (cols.stop - 0.5, rows.stop - 0.5)
        band = [s for s in shapes if s["xref"] == xref and s["name"] == "empty rows"]
        empty = [r for r in range(n_q) if not mask[r].any()]
        if empty:
            (rect,) = band
            assert (rect["y0"], rect["y1"]) == (empty[0] - 0.5, empty[-1] + 0.5)
            assert (rect["x0"], rect["x1"]) == (-0.5, n_k - 0.5)
        else:
            assert band == []


def test_flops_figure_bars_equal_the_counts() -> None:
    views = analyse_both(12, 5, 8, 4, 2)
    fig = alignment_flops_figure(views)
    go.Figure(fig.to_dict())
    executed, useful = spec(fig.to_json())["data"]
    counted = [brute_flops(brute_mask(12, 5, a), 8, 4, 2) for a in ALIGNS]
    assert decode(executed["y"]).tolist() == [4 * 8 * 60] + [c[1] for c in counted]
    assert decode(useful["y"]).tolist() == [4 * 8 * 60] + [c[2] for c in counted]
    assert executed["text"] == ["100%", "93%", "47%"]
