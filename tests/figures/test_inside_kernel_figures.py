"""Figures of the "Inside the kernel" page: valid Plotly JSON, the lab's numbers, text at
least 16 px."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from flashviz.figures.inside_kernel import explorer_figure, ownership_figure, timeline_figure
from flashviz.figures.style import FONT_SIZE
from flashviz.gpu.kernel_resources import build_config
from flashviz.lab.inside_kernel import ownership, timeline
from flashviz.lab.occupancy import SM_LIMITS
from flashviz.lab.tile_explorer import BLOCK_SIZES, explore

TC = build_config("tensor cores", 64, 64, 64).defines


def _valid(fig: go.Figure) -> dict:
    go.Figure(fig.to_dict())  # validates every property
    return fig.to_plotly_json()


def _font_sizes(fig: dict) -> list[float]:
    sizes = [fig["layout"]["font"]["size"]]
    sizes += [t["textfont"]["size"] for t in fig["data"] if "textfont" in t]
    return sizes


@pytest.mark.parametrize("colour_by", ["thread", "warp", "lane"])
def test_ownership_figure(colour_by: str) -> None:
    own = ownership("tensor cores", TC, "O_i")
    fig = _valid(ownership_figure(own, colour_by, highlight=5))
    z = np.asarray(fig["data"][0]["z"])
    np.testing.assert_array_equal(z, getattr(own, colour_by))
    outline = fig["data"][1]
    assert len(outline["x"]) == int((own.thread == 5).sum())
    assert len(fig["layout"]["shapes"]) == 64 // 16 - 1 + 64 // 8 - 1  # warps, n-tiles
    assert min(_font_sizes(fig)) >= FONT_SIZE
    with pytest.raises(ValueError, match="colour_by"):
        ownership_figure(own, "colour")


@pytest.mark.parametrize("kind", ["float32", "tensor cores"])
def test_timeline_figure(kind: str) -> None:
    tl = timeline(kind)
    fig = _valid(timeline_figure(tl))
    shown = sum(len(t["x"]) for t in fig["data"])
    assert shown == len(tl.events)
    barriers = [s for s in fig["layout"]["shapes"] if s["type"] == "line"]
    assert len(barriers) == sum(e.kind == "barrier" for e in tl.events)
    assert min(_font_sizes(fig)) >= FONT_SIZE


def test_explorer_figure() -> None:
    builds = [
        (q, kv, build_config("tensor cores", 128, q, kv).defines)
        for q in BLOCK_SIZES
        for kv in BLOCK_SIZES
    ]
    cells = explore("tensor cores", builds, 128, SM_LIMITS["sm_90"])
    fig = _valid(explorer_figure(cells, 128, "sm_90", 128))
    z = fig["data"][0]["z"]
    for c in cells:
        value = z[BLOCK_SIZES.index(c.block_q)][BLOCK_SIZES.index(c.block_kv)]
        assert value == (c.occupancy.fraction if c.fits else None)
    assert any(c.fits for c in cells) and not all(c.fits for c in cells)
    text = fig["data"][0]["text"]
    assert all("≈" in row[i] for row in text for i, _ in enumerate(row) if "blk" in row[i])
    known = {(c.block_q, c.block_kv): 96 for c in cells if c.fits}
    measured = explore("tensor cores", builds, 128, SM_LIMITS["sm_90"], known=known)
    text = _valid(explorer_figure(measured, 128, "sm_90", 128))["data"][0]["text"]
    assert not any("≈" in cell for row in text for cell in row)
    assert min(_font_sizes(fig)) >= FONT_SIZE
