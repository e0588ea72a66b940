"""Figure builders: valid Plotly, the right traces and shapes, data equal to the trace."""

from __future__ import annotations

import itertools

import numpy as np
import plotly.graph_objects as go
import pytest

from flashviz.core.reference import attention_reference
from flashviz.core.trace import LoadStep, TileStep, WriteStep
from flashviz.figures import (
    accumulator_figure,
    figure_context,
    stats_figure,
    tile_figure,
    tile_map_figure,
)
from flashviz.figures.context import pool_max
from flashviz.figures.correctness import error_figure
from flashviz.figures.tile import score_range as tile_scale_range
from flashviz.figures.tile_map import tile_map_title
from flashviz.figures.whole_run import run_states, whole_run_figure
from flashviz.lab.problem import build_trace
from flashviz.lab.problem_spec import ProblemSpec
from tests.support import decode, spec

SPECS = [
    ProblemSpec(),
    ProblemSpec(n_q=10, n_k=7, block_q=4, block_kv=3, causal=True, pattern="random"),
    ProblemSpec(n_q=7, n_k=12, block_q=3, block_kv=5, causal=True, causal_align="top_left"),
]


@pytest.fixture(scope="module", params=SPECS, ids=lambda s: f"{s.n_q}x{s.n_k}")
def ctx(request: pytest.FixtureRequest):
    return figure_context(build_trace(request.param))


def _shape(fig: go.Figure, name: str) -> list[dict]:
    return [s for s in spec(fig.to_json())["layout"]["shapes"] if s.get("name") == name]


def test_every_builder_gives_valid_plotly_at_every_step(ctx) -> None:
    """Every figure validates, and its title names what it shows at that step."""
    t = ctx.trace
    for k, step in enumerate(t.steps):
        titles = {
            tile_map_figure: f"Tile map: all {t.n_q} x {t.n_k} scores s<sub>rc</sub>",
            stats_figure: f"Running statistics of Q block {step.i}",
            accumulator_figure: f"Output accumulator o of Q block {step.i}",
        }
        if isinstance(step, WriteStep):  # the title says whether the error is rounding
            worst = float(np.abs(step.o - ctx.verdict.o_ref[step.rows.start : step.rows.stop])
                          .astype(np.float32).max())  # fmt: skip
            verdict = "rounding" if worst <= ctx.verdict.tol else "beyond rounding"
            titles[accumulator_figure] = (
                f"Written O of Q block {step.i}: max |error| {worst:.1e}, {verdict}"
            )
        if isinstance(step, TileStep):
            masked = (
                "" if step.tile_kind == "full" else "<br>on the causal diagonal: blank = masked"
            )
            titles[tile_figure] = f"Tile ({step.i}, {step.j}){masked}"
        for build, title in titles.items():
            fig = build(ctx, k)
            go.Figure(fig.to_dict())  # full validation raises on any bad property
            assert fig.layout.title.text == title, build.__name__
    assert tile_map_title(ctx) == titles[tile_map_figure]  # ctx.pool == 1: nothing pooled
    whole = whole_run_figure(ctx)
    go.Figure(whole.to_dict())
    assert whole.layout.title.text == f"The whole run, {len(t.steps)} frames: press Play"
    errors = error_figure(ctx)
    go.Figure(errors.to_dict())
    assert errors.layout.title.text == (
        f"Error per row vs attention_reference (dashed: tolerance {ctx.verdict.tol:g})"
    )


def test_error_figure_shows_each_rows_error_against_the_reference(ctx) -> None:
    """max_c |o_rc - o_ref,rc| and |lse_r - lse_ref,r| per row, 0 drawn at 1e-18 on the log
    axis; the dashed line at the tolerance."""
    t = ctx.trace
    o_ref, lse_ref = attention_reference(
        t.q, t.k, t.v, causal=t.causal, causal_align=t.causal_align, scale=t.scale
    )
    err_o = np.abs(t.o - o_ref).max(axis=1)
    both_empty = np.isneginf(t.lse) & np.isneginf(lse_ref)
    err_lse = np.abs(np.where(both_empty, 0.0, t.lse) - np.where(both_empty, 0.0, lse_ref))
    fig = spec(error_figure(ctx).to_json())
    o_line, lse_line = fig["data"]
    assert (o_line["name"], lse_line["name"]) == ("output O", "logsumexp L")
    np.testing.assert_array_equal(decode(o_line["x"]), np.arange(t.n_q))
    np.testing.assert_array_equal(decode(o_line["y"]), np.maximum(err_o, 1e-18))
    np.testing.assert_array_equal(decode(lse_line["y"]), np.maximum(err_lse, 1e-18))
    (tol,) = fig["layout"]["shapes"]
    assert tol["y0"] == tol["y1"] == ctx.verdict.tol and tol["line"]["dash"] == "dash"


def test_tile_map_highlights_the_current_tile(ctx) -> None:
    t = ctx.trace
    for k, step in enumerate(t.steps):
        current = _shape(tile_map_figure(ctx, k), "current")
        if not isinstance(step, TileStep):
            assert current == []
            continue
        (rect,) = current
        assert rect["x0"] == step.cols.start - 0.5 and rect["x1"] == step.cols.stop - 0.5
        assert rect["y0"] == step.rows.start - 0.5 and rect["y1"] == step.rows.stop - 0.5


def test_tile_map_states_cover_the_grid(ctx) -> None:
    """Processed + current + to come + skipped tiles add up to the whole grid, every step."""
    t = ctx.trace
    n_i, n_j = t.grid
    kinds = t.tile_kinds()
    for k in range(len(t.steps)):
        fig = tile_map_figure(ctx, k)
        widths = {}
        for name in ("processed", "current", "to come", "skipped"):
            for s in _shape(fig, name):
                i = round(s["y0"] + 0.5) // t.block_q
                j0, j1 = round(s["x0"] + 0.5), round(s["x1"] + 0.5)
                n = len(range(j0 // t.block_kv, -(-j1 // t.block_kv)))
                widths[i] = widths.get(i, 0) + n
                if name == "skipped":
                    assert (kinds[i, j0 // t.block_kv :] == "skipped").all()
        assert all(widths.get(i, 0) == n_j for i in range(n_i))


def test_tile_figure_data_equals_the_trace(ctx) -> None:
    for k, step in enumerate(ctx.trace.steps):
        if not isinstance(step, TileStep):
            with pytest.raises(ValueError, match="not a tile"):
                tile_figure(ctx, k)
            continue
        s_trace, p_trace = spec(tile_figure(ctx, k).to_json())["data"]
        s = decode(s_trace["z"])
        assert np.array_equal(np.isnan(s), np.isneginf(step.s))
        assert np.allclose(s[np.isfinite(s)], step.s[np.isfinite(step.s)], rtol=0, atol=0)
        assert np.array_equal(decode(p_trace["z"]), step.p)
        assert list(decode(s_trace["x"])) == list(step.cols)


def test_tile_colour_scale_whole_map_or_this_tile() -> None:
    """At n = 512 (d = 64, blocks 64) a tile's scores span a sliver of the map's
    symmetric scale; with ``tile_scale`` the S heatmap's zmin / zmax are the tile's own
    finite min and max, P~ keeps [0, 1], and the map's scale stays the default."""
    ctx = figure_context(
        build_trace(ProblemSpec(n_q=512, n_k=512, head_dim=64, block_q=64, block_kv=64))
    )
    k = next(k for k, s in enumerate(ctx.trace.steps) if isinstance(s, TileStep) and s.j == 4)
    step = ctx.trace.steps[k]
    finite = step.s[np.isfinite(step.s)]
    whole, own = (spec(tile_figure(ctx, k, tile_scale=t).to_json())["data"] for t in (0, 1))
    assert (whole[0]["zmin"], whole[0]["zmax"]) == (-ctx.score_max, ctx.score_max)
    assert (finite.max() - finite.min()) < 0.5 * (2 * ctx.score_max)  # blank on the map's
    assert (own[0]["zmin"], own[0]["zmax"]) == (finite.min(), finite.max())
    assert own[0]["colorbar"]["title"]["text"] == "score (this tile)"
    assert (own[1]["zmin"], own[1]["zmax"]) == (0, 1)
    assert np.array_equal(decode(own[0]["z"]), decode(whole[0]["z"]), equal_nan=True)
    flat = np.full_like(step.s, 0.25)  # a tile with no spread keeps the map's scale
    assert tile_scale_range(ctx, flat, True) == (-ctx.score_max, ctx.score_max)
    assert tile_scale_range(ctx, np.full_like(flat, -np.inf), True) == (
        -ctx.score_max,
        ctx.score_max,
    )


def test_stats_alpha_below_m_and_l_when_their_columns_would_be_slivers() -> None:
    """At n = 512 in blocks of 64 (8 tiles) side by side with alpha a tile's
    column of m or l got ~30 px at 1280 x 720; alpha then moves below them, each column is
    >= MIN_COLUMN_PX, alpha stays one upright bar per row; small problems and presentation
    mode's 285 px charts keep the single row."""
    from flashviz.figures.stats import MIN_COLUMN_PX, stacked
    from flashviz.figures.style import FULL_WIDTH

    big = figure_context(
        build_trace(ProblemSpec(n_q=512, n_k=512, head_dim=64, block_q=64, block_kv=64))
    )
    k = next(k for k, s in enumerate(big.trace.steps) if isinstance(s, TileStep) and s.j == 4)
    fig = stats_figure(big, k, width=FULL_WIDTH)
    go.Figure(fig.to_dict())  # valid Plotly
    layout = spec(fig.to_json())["layout"]
    plot_w = FULL_WIDTH - layout["margin"]["l"] - layout["margin"]["r"]
    for axis in ("xaxis", "xaxis2"):
        x0, x1 = layout[axis]["domain"]
        assert plot_w * (x1 - x0) / big.trace.grid[1] >= MIN_COLUMN_PX
    assert layout["yaxis3"]["domain"][1] < layout["yaxis"]["domain"][0]  # alpha below
    assert layout["height"] == 420 + 200
    bars = next(d for d in spec(fig.to_json())["data"] if d["type"] == "bar")
    assert bars["orientation"] == "v"
    assert np.allclose(decode(bars["y"]), big.trace.steps[k].alpha)
    assert not stacked(big, 285, 610)  # presentation mode: fixed height, one row
    small = figure_context(build_trace(ProblemSpec()))
    assert not stacked(small, 420, FULL_WIDTH)


def test_stats_history_and_alpha(ctx) -> None:
    for k, step in enumerate(ctx.trace.steps):
        data = spec(stats_figure(ctx, k).to_json())["data"]
        m = decode(data[0]["z"])
        assert m.shape == (len(step.rows), ctx.kv_span(step.i))
        if isinstance(step, TileStep):
            col = m[:, step.j]
            finite = np.isfinite(step.m)
            assert np.allclose(col[finite], step.m[finite])
            assert np.isnan(m[:, step.j + 1 :]).all()
            bars = next(d for d in data if d["type"] == "bar")
            values = bars["x"] if bars["orientation"] == "h" else bars["y"]  # alpha below m, l
            assert np.allclose(decode(values), step.alpha)
            outlines = next(d for d in data if d["type"] == "scatter")
            rose = step.max_changed & np.isfinite(step.m_prev)
            y = np.array([np.nan if v is None else v for v in outlines["y"]], dtype=float)
            x = np.array([np.nan if v is None else v for v in outlines["x"]], dtype=float)
            centres = np.nanmean(y.reshape(-1, 6)[:, :4], axis=1) if y.size else y
            assert sorted(np.round(centres).astype(int)) == list(
                np.flatnonzero(rose) + step.rows.start
            )  # one outline per row whose max rose, in its m cell of tile j
            assert np.allclose(np.nanmean(x.reshape(-1, 6)[:, :4], axis=1), step.j)
            half = np.abs(y.reshape(-1, 6)[:, :4] - centres[:, None]) if y.size else y
            assert (half >= 0.4).all() and (half < 0.5).all()  # near its edges, off the number


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).astype(np.float32)


def test_accumulator_panels(ctx) -> None:
    for k, step in enumerate(ctx.trace.steps):
        data = spec(accumulator_figure(ctx, k).to_json())["data"]
        z = [decode(d["z"]) for d in data]
        if isinstance(step, LoadStep):
            assert len(z) == 1 and not z[0].any()
        elif isinstance(step, TileStep):
            assert np.array_equal(z[0], _f32(step.o_prev))  # the figure stores float32
            assert np.array_equal(z[1], _f32(step.alpha[:, None] * step.o_prev))
            assert np.array_equal(z[2], _f32(step.o))
        else:
            assert isinstance(step, WriteStep)
            ref = ctx.verdict.o_ref[step.rows.start : step.rows.stop]
            assert np.array_equal(z[0], _f32(step.o)) and np.array_equal(z[1], _f32(ref))
            assert (z[2] < 1e-6).all()


def test_whole_run_frames(ctx) -> None:
    t = ctx.trace
    fig = whole_run_figure(ctx)
    assert len(fig.frames) == len(t.steps)
    m, l, o = run_states(t)
    assert np.allclose(o[-1], t.o)
    with np.errstate(divide="ignore"):
        lse = np.where(np.isnan(m[-1]), -np.inf, m[-1]) + np.log(l[-1])
    assert np.allclose(lse, t.lse)
    last = spec(fig.to_json())["frames"][-1]["data"]
    assert np.array_equal(decode(last[2]["z"]), _f32(t.o[:, :32]))


def test_large_problem_is_downsampled_and_small() -> None:
    ctx = figure_context(
        build_trace(ProblemSpec(n_q=256, n_k=256, head_dim=64, block_q=32, block_kv=32))
    )
    assert ctx.pool == 3 and ctx.score_map.shape == (86, 86)
    fig = tile_map_figure(ctx, 5)
    assert fig.layout.title.text == (
        "Tile map: all 256 x 256 scores s<sub>rc</sub><br>downsampled: a cell is the max of 3 x 3"
    )
    t = ctx.trace
    s = t.scale * (t.q @ t.k.T)
    pooled = [[s[r : r + 3, c : c + 3].max() for c in range(0, 256, 3)] for r in range(0, 256, 3)]
    z = decode(spec(fig.to_json())["data"][0]["z"])  # the max of each 3 x 3 block of scores
    np.testing.assert_allclose(z, pooled, rtol=1e-6, atol=0)
    size = sum(
        len(f(ctx, 5).to_json())
        for f in (tile_map_figure, stats_figure, accumulator_figure, tile_figure)
    )
    assert size < 200_000


def test_pool_max_keeps_the_max_of_visible_scores() -> None:
    s = np.array([[1.0, -np.inf, 3.0], [-np.inf, -np.inf, 0.5], [2.0, 7.0, -np.inf]])
    pooled = pool_max(s, 2)
    assert pooled[0, 0] == 1.0 and pooled[0, 1] == 3.0 and pooled[1, 0] == 7.0
    assert np.isnan(pool_max(np.full((2, 2), -np.inf), 2)).all()


def test_the_output_rescale_prints_its_numbers_where_stacking_makes_room() -> None:
    """d = 8, 4 rows: side by side at the stepper's width a cell is narrower than "-0.4";
    stacked, every panel prints its numbers. d = 64: too many dims either way, side by
    side with the colour scale."""
    small = figure_context(build_trace(ProblemSpec()))
    k = next(k for k, s in enumerate(small.trace.steps) if isinstance(s, TileStep))
    fig = spec(accumulator_figure(small, k).to_json())
    heatmaps = [d for d in fig["data"] if d["type"] == "heatmap"]
    assert len(heatmaps) == 3 and all(d.get("texttemplate") for d in heatmaps)
    domains = sorted(fig["layout"][f"yaxis{s}"]["domain"] for s in ("", "2", "3"))
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(domains))  # one above another
    wide = figure_context(build_trace(ProblemSpec(head_dim=64)))
    fig = spec(accumulator_figure(wide, k).to_json())
    assert fig["layout"]["yaxis2"]["domain"] == fig["layout"]["yaxis"]["domain"]  # a row
    assert not any(d.get("texttemplate") for d in fig["data"] if d["type"] == "heatmap")
