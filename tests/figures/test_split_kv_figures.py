"""The split-KV figures: valid Plotly, and their data are the lesson's numbers."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from flashviz.figures.split_kv import (
    MAX_LEGEND,
    WAVE_COLOURS,
    lanes_figure,
    merge_figure,
    sm_figure,
    utilisation_figure,
)
from flashviz.figures.style import CURRENT, DONE, SKY_BLUE
from flashviz.lab.split_kv import (
    fa2_work,
    merge_steps,
    run_split_kv,
    schedule,
    split_weights,
    split_work,
    utilisation_curve,
)
from tests.support import decode, spec


@pytest.fixture(scope="module")
def run():
    return run_split_kv(3, 1000, 16, 6, 64, True, 0)  # 16 blocks: splits of 3, 3, 3, 3, 2, 2


def _valid(fig: go.Figure) -> dict:
    """The figure as plain JSON data (arrays decoded), after Plotly's validation, which the
    builders skip when they assemble dicts."""
    go.Figure(fig.to_dict())
    return _decoded(spec(fig.to_json()))


def _decoded(value: object) -> object:
    if isinstance(value, dict) and "bdata" in value:
        return decode(value).tolist()
    if isinstance(value, dict):
        return {k: _decoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


def test_sm_figure_draws_each_thread_block_where_and_when_it_ran():
    fa2 = schedule(fa2_work(1, 1000, 64, None, 2), 4)
    kv = schedule(split_work(1, 1000, 64, 6, None, 2), 4)  # 12 blocks on 4 SMs: 3 waves
    fig = _valid(sm_figure(fa2, kv, sms=4, gpu="T4", num_splits=6))
    left, right = fig["data"]
    assert (left["xaxis"], right["xaxis"]) == ("x", "x2")
    for trace, slots in ((left, fa2), (right, kv)):
        assert list(trace["base"]) == [s.start for s in slots]
        assert list(trace["x"]) == [s.stop - s.start for s in slots]
        assert list(trace["y"]) == [s.sm for s in slots]
        assert trace["marker"]["color"] == [WAVE_COLOURS[s.wave] for s in slots]
    assert [c[:2] for c in right["customdata"]] == [[h, s] for h in range(2) for s in range(6)]
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert titles[0] == "FA2: 2 thread blocks, 50% busy"  # 2 x 16 tiles / (4 SMs x 16)
    assert titles[1] == "split-KV, 6 splits: 12 blocks, 3 wave(s), 100% busy"  # 32 / (4 x 8)
    assert fig["layout"]["title"]["text"] == "Thread blocks on the 4 SMs of the T4 (colour: wave)"


def test_sm_figure_leaves_out_blocks_that_compute_nothing():
    kv = schedule(split_work(1, 100, 64, 5, None), 8)  # 2 blocks, 5 splits
    fig = _valid(sm_figure(kv[:1], kv, sms=8, gpu="T4", num_splits=5))
    assert list(fig["data"][1]["x"]) == [1, 1]


@pytest.mark.parametrize("done", [0, 1, 2, 3, 8])
def test_lanes_are_each_split_s_running_max_and_sum_after_its_first_tiles(run, done):
    row = 2
    fig = _valid(lanes_figure(run, row, done))
    m_lanes = [t for t in fig["data"] if t["xaxis"] == "x"]
    l_lanes = [t for t in fig["data"] if t["xaxis"] == "x2"]
    assert len(m_lanes) == len(l_lanes) == (6 if done else 0)  # before any tile: no lanes
    for p, m, l in zip(run.partials if done else [], m_lanes, l_lanes, strict=True):
        shown = min(done, len(p.m_steps))
        assert list(m["x"]) == list(range(1, shown + 1))
        np.testing.assert_array_equal(m["y"], p.m_steps[:shown, row])
        np.testing.assert_array_equal(l["y"], p.l_steps[:shown, row])
        assert m["name"] == f"split {p.s}" and m["showlegend"] and not l["showlegend"]
    assert fig["layout"]["xaxis"]["range"] == [0.5, 3.5]
    after = f"after tile {min(done, 3)}" if done else "before the first tile"
    assert fig["layout"]["title"]["text"].endswith(after)


def test_lanes_hide_empty_splits_and_rows_that_see_nothing_yet():
    run = run_split_kv(17, 16, 8, 14, 4, True, 0)  # 4 one-block splits, 10 empty; row 0 sees none
    fig = _valid(lanes_figure(run, 0, 1))
    assert len(fig["data"]) == 2 * 4
    assert all(np.isnan(t["y"]).all() for t in fig["data"] if t["xaxis"] == "x")  # m = -inf
    assert not any(t["showlegend"] for t in fig["data"])  # 14 splits > MAX_LEGEND
    assert MAX_LEGEND < 14


@pytest.mark.parametrize("upto", [0, 3, 5])
def test_merge_figure_shows_the_splits_and_the_merged_lse_so_far(run, upto):
    row = 1
    steps = merge_steps(run, row)
    weights = split_weights(run, row)
    fig = _valid(merge_figure(steps, weights, upto))
    bars, line, weight = fig["data"]
    np.testing.assert_array_equal(bars["y"], [st.lse_s for st in steps])
    assert list(line["x"]) == list(range(upto + 1))
    np.testing.assert_array_equal(line["y"], [st.lse for st in steps[: upto + 1]])
    np.testing.assert_array_equal(weight["y"], weights)
    want = [DONE] * upto + [CURRENT] + [SKY_BLUE] * (5 - upto)
    assert bars["marker"]["color"] == weight["marker"]["color"] == want
    low, top = fig["layout"]["yaxis"]["range"]
    assert low < min(st.lse_s for st in steps) and top > steps[upto].lse
    assert (
        fig["layout"]["title"]["text"]
        == f"The merge, split by split: step {upto} merges split {upto}"
    )


def test_utilisation_figure_marks_fa2_and_the_chosen_splits():
    curve = utilisation_curve(1, 3000, 128, None, 4, 108, 64)
    fig = _valid(utilisation_figure(curve, 8, "A100"))
    line, fa2, chosen = fig["data"]
    np.testing.assert_array_equal(line["x"], np.arange(1, 65))
    np.testing.assert_array_equal(line["y"], curve.split_kv)
    assert list(fa2["y"]) == [4 / 108, 4 / 108]
    assert list(chosen["x"]) == [8] and list(chosen["y"]) == [curve.split_kv[7]]
