"""The Masks page's figures as pure functions: the block map's cells are the block mask's
kinds with the Q block inspected outlined; the dense mask's cells are the mask, one outline
per tile coloured by its kind."""

from __future__ import annotations

import numpy as np

from flashviz.figures.mask_cells import KIND_STYLE
from flashviz.figures.masks import block_map_figure, dense_mask_figure
from flashviz.lab.mask_lab import mask_view


def test_the_block_map_is_the_block_mask_with_the_inspected_row_outlined() -> None:
    view = mask_view("document", 5, 13, 11, 3, 2)  # uneven: short last tiles
    fig = block_map_figure(view.block_mask, 2)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), view.block_mask.kinds[0, 0])
    (band,) = [s for s in fig.layout.shapes if s.name == "the Q block inspected"]
    assert (band.y0, band.y1) == (1.5, 2.5)
    assert fig.layout.xaxis.title.text == "K/V block j (2 keys)"


def test_the_dense_mask_outlines_every_tile_by_its_kind() -> None:
    view = mask_view("chunked", 4, 13, 11, 3, 2)
    assert view.dense is not None
    fig = dense_mask_figure(view.dense, view.block_mask)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), view.dense.astype(np.int8))
    kinds = view.block_mask.kinds[0, 0]
    assert len(fig.layout.shapes) == kinds.size
    colours = [s.line.color for s in fig.layout.shapes]
    full = KIND_STYLE["full"]["color"]
    assert colours.count(full) == int((kinds == 2).sum())
    last = fig.layout.shapes[-1]  # the last tile ends at the last key and query
    assert (last.x1, last.y1) == (10.5, 12.5)
