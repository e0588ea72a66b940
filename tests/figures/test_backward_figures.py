"""The backward page's figures (``flashviz.figures.backward``): each one's data is the
trace's numbers at the step, every figure validates as Plotly JSON, text is projector-sized
and numbers are printed in cells only where they fit."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from flashviz.core.backward_trace import BwdTileStep
from flashviz.figures.backward import (
    STATE_COLOURS,
    backward_tile_map_figure,
    dq_figure,
    grads_figure,
    on_chip_figure,
    scores_figure,
)
from flashviz.figures.style import CURRENT, DONE, FONT_SIZE
from flashviz.lab.backward import (
    dq_adds_after,
    dq_adds_total,
    dq_after,
    on_chip,
    rows_added,
    run_backward,
    tile_order,
    tile_states,
)
from flashviz.lab.problem_spec import ProblemSpec
from tests.support import decode

SPEC = ProblemSpec(n_q=10, n_k=9, head_dim=3, block_q=3, block_kv=2, causal=True)


@pytest.fixture(scope="module")
def trace():
    return run_backward(SPEC).trace


def tile_indices(trace) -> list[int]:
    return [k for k, s in enumerate(trace.steps) if isinstance(s, BwdTileStep)]


def arr(value: object) -> np.ndarray:
    """An array of the figure's JSON (typed arrays decoded); strings as they are."""
    if isinstance(value, dict):
        return decode(value)
    return np.asarray(value)


def validated(fig: go.Figure) -> dict:
    """The figure as a dict, after Plotly validated it; its fonts are projector-sized."""
    go.Figure(fig.to_dict())
    layout = fig.to_dict()["layout"]
    assert layout["font"]["size"] >= FONT_SIZE
    return fig.to_dict()


def test_tile_map_shows_each_tile_s_state_and_order(trace) -> None:
    order = tile_order(trace)
    for k in (0, *tile_indices(trace)[::3], len(trace.steps) - 1):
        states = tile_states(trace, k)
        fig = validated(backward_tile_map_figure(trace, states, order, k))
        heat = fig["data"][0]
        np.testing.assert_array_equal(arr(heat["z"]), states)
        assert arr(heat["text"]).tolist() == np.where(order > 0, order.astype(str), "").tolist()
        dashed = [s for s in fig["layout"].get("shapes", ()) if s["line"].get("dash")]
        assert len(dashed) == int((order == 0).sum()) > 0  # causal: skipped tiles outlined
        assert fig["layout"]["title"]["text"].startswith("Tiles in the backward's order")
        assert f"step {k}" in fig["layout"]["title"]["text"]
        names = [d.get("name") for d in fig["data"][1:]]
        assert names == ["done", "current", "to come", "masked"]
    scale = heat["colorscale"]  # one flat band per state
    for code, colour in enumerate(STATE_COLOURS):
        z = (code + 0.5) / 4
        assert [c for p, c in scale if p <= z][-1] == colour


def test_scores_and_grads_are_the_tile_s_numbers(trace) -> None:
    for k in tile_indices(trace):
        step = trace.steps[k]
        s_fig = validated(scores_figure(step))
        s, p = s_fig["data"]
        np.testing.assert_array_equal(arr(s["z"]), np.where(np.isfinite(step.s), step.s, np.nan))
        np.testing.assert_array_equal(arr(p["z"]), step.p)
        assert arr(s["x"]).tolist() == list(step.cols) and arr(s["y"]).tolist() == list(step.rows)
        assert (p["zmin"], p["zmax"]) == (0, 1)
        dp, ds = validated(grads_figure(step))["data"]
        np.testing.assert_array_equal(arr(dp["z"]), step.dp)
        np.testing.assert_array_equal(arr(ds["z"]), step.ds)
        assert dp["zmin"] == -dp["zmax"] and ds["zmin"] == -ds["zmax"]  # 0 in the middle
        assert ds["zmax"] >= np.abs(step.ds).max()
        title = s_fig["layout"]["title"]["text"]
        assert title.startswith(f"Tile ({step.i}, {step.j})")
        assert ("blank = masked" in title) == (step.tile_kind == "partial")


def test_numbers_are_printed_in_cells_only_where_they_fit(trace) -> None:
    step = trace.steps[tile_indices(trace)[0]]  # 3 x 2 cells: wide
    assert all("texttemplate" in d for d in scores_figure(step).to_dict()["data"])
    big = run_backward(ProblemSpec(n_q=64, n_k=64, head_dim=4, block_q=32, block_kv=32)).trace
    wide = big.steps[2]  # a 32 x 32 tile: 1024 cells, too many for numbers
    assert not any("texttemplate" in d for d in grads_figure(wide).to_dict()["data"])


def test_on_chip_shows_dk_and_dv_after_the_step(trace) -> None:
    for k, step in enumerate(trace.steps):
        grads = on_chip(trace, k)
        if grads is None:
            continue
        fig = validated(on_chip_figure(*grads, step.cols, step.j, k))
        dk, dv = fig["data"]
        np.testing.assert_array_equal(arr(dk["z"]), grads[0])
        np.testing.assert_array_equal(arr(dv["z"]), grads[1])
        assert arr(dk["y"]).tolist() == list(step.cols)
        assert fig["layout"]["title"]["text"] == (
            f"K/V block {step.j}'s gradients on chip after step {k}"
        )


def test_dq_figure_shows_hbm_and_the_additions(trace) -> None:
    total = dq_adds_total(trace)
    for k in range(len(trace.steps)):
        now = rows_added(trace, k)
        fig = validated(dq_figure(dq_after(trace, k), dq_adds_after(trace, k), total, now, k))
        bars, totals, heat = fig["data"]
        np.testing.assert_array_equal(arr(bars["x"]), dq_adds_after(trace, k))
        np.testing.assert_array_equal(arr(totals["x"]), total)
        np.testing.assert_array_equal(arr(heat["z"]), dq_after(trace, k))
        colours = bars["marker"]["color"]
        assert [c == CURRENT for c in colours] == [r in now for r in range(trace.n_q)]
        assert set(colours) <= {CURRENT, DONE}
        shapes = fig["layout"].get("shapes", [])
        if len(now):
            (box,) = shapes
            assert (box["y0"], box["y1"]) == (now.start - 0.5, now.stop - 0.5)
            assert (
                f"rows {now.start}-{now.stop - 1} receive an addition"
                in (fig["layout"]["title"]["text"])
            )
        else:
            assert not shapes and fig["layout"]["title"]["text"].endswith("no addition")
