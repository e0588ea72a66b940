"""The stepper's problem with a FlexAttention mask: the run visits only the block mask's full
and partial tiles (in order, the empty ones skipped, wherever they are); its figures draw
the skipped tiles where they are and the statistics by K/V block; a bad mask or size gets
a sentence; the causal toggle gives way to the mask."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from flashviz.core.block_mask import EMPTY, FULL
from flashviz.figures.context import figure_context, full_scores
from flashviz.figures.stats import history
from flashviz.figures.tile_map import row_states, tile_map_figure
from flashviz.lab.mask_lab import MASK_KINDS, mask_view
from flashviz.lab.problem import build_trace, problem_errors
from flashviz.lab.problem_spec import ProblemSpec

SPEC = ProblemSpec(n_q=24, n_k=20, block_q=4, block_kv=4, mask="document", mask_size=7)


@pytest.mark.parametrize("kind", list(MASK_KINDS))
def test_the_run_visits_the_block_masks_tiles_and_matches_the_reference(kind: str) -> None:
    spec = replace(SPEC, mask=kind)
    trace = build_trace(spec)
    kinds = mask_view(kind, 7, 24, 20, 4, 4).block_mask.kinds[0, 0]
    visited = [(s.i, s.j) for s in trace.tile_steps()]
    assert visited == [tuple(ij) for ij in np.argwhere(kinds != EMPTY)]  # row by row, in order
    assert all((s.tile_kind == "full") == (kinds[s.i, s.j] == FULL) for s in trace.tile_steps())
    scores = full_scores(trace)  # the mask entry by entry, as the kernel applies it
    seen = MASK_KINDS[kind].build(24, 20, 7)(0, 0, np.arange(24)[:, None], np.arange(20))
    np.testing.assert_array_equal(np.isfinite(scores), np.broadcast_to(seen, (24, 20)))
    ctx = figure_context(trace)
    assert ctx.verdict.ok


def test_the_tile_map_and_statistics_place_skipped_tiles_where_they_are() -> None:
    trace = build_trace(SPEC)  # documents of 7: rows 8-11 visit K/V blocks 1 and 2 only
    ctx = figure_context(trace)
    k = next(n for n, s in enumerate(trace.steps) if getattr(s, "j", None) == 2 and s.i == 2)
    states = row_states(ctx, k)
    assert states[2] == (((1,), 2, (), (0, 3, 4)))  # done, current, to come, skipped
    rects = [s for s in tile_map_figure(ctx, k).layout.shapes if s.name == "skipped"]
    row2 = [(r.x0, r.x1) for r in rects if (r.y0, r.y1) == (7.5, 11.5)]
    assert row2 == [(-0.5, 3.5), (11.5, 19.5)]  # before and after the visited ones
    m, _ = history(ctx, k)
    assert m.shape == (4, 3)  # K/V blocks 0 .. 2; block 0 skipped: NaN
    assert np.isnan(m[:, 0]).all() and np.isfinite(m[:, 1]).any()


def test_the_causal_toggle_gives_way_to_a_mask() -> None:
    spec = replace(SPEC, causal=True)
    assert spec.tiling["causal"] is False
    assert replace(spec, mask="none").tiling["causal"] is True
    trace = build_trace(spec)
    assert [s.j for s in trace.tile_steps()] == [s.j for s in build_trace(SPEC).tile_steps()]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mask": "<b>evil</b>"}, "`mask` must be 'none' or one of"),
        ({"mask_size": 0}, "`mask_size` must be between 1 and 4096"),
        ({"mask_size": 10**12}, "`mask_size` must be between 1 and 4096"),
    ],
)
def test_a_bad_mask_gets_a_sentence(change: dict[str, object], message: str) -> None:
    errors = problem_errors(replace(SPEC, **change))  # type: ignore[arg-type]
    assert any(message in e for e in errors), errors
    assert problem_errors(replace(SPEC, mask="none", mask_size=0)) == []  # unused: no error


def test_a_grouped_query_head_steps_its_own_q_over_the_groups_k_and_v() -> None:
    """group = 4, head = 2: q is the pattern's of seed + 2; k and v are head 0's; the run is
    that head's attention over them (the verdict); head 0 of a group is the plain problem."""
    from flashviz.lab.patterns import make_inputs
    from flashviz.lab.problem import spec_inputs
    from flashviz.lab.problem_spec import gqa_note

    plain = ProblemSpec(n_q=12, n_k=10, block_q=4, block_kv=4, seed=5)
    grouped = replace(plain, group=4, head=2)
    q, k, v = spec_inputs(grouped)
    q0, k0, v0 = spec_inputs(plain)
    np.testing.assert_array_equal(q, make_inputs("spiky", 12, 10, 8, 7)[0])
    np.testing.assert_array_equal(k, k0)
    np.testing.assert_array_equal(v, v0)
    assert not np.array_equal(q, q0)
    for a, b in zip(spec_inputs(replace(grouped, head=0)), (q0, k0, v0), strict=True):
        np.testing.assert_array_equal(a, b)
    trace = build_trace(grouped)
    assert figure_context(trace).verdict.ok
    np.testing.assert_array_equal(trace.q, q)
    assert gqa_note(plain) is None
    assert "query head 2 of the 4 that share K/V head 0" in (gqa_note(grouped) or "")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"group": 0}, "`group` must be between 1 and 8"),
        ({"group": 9}, "`group` must be between 1 and 8"),
        ({"group": 4, "head": 4}, "`head` must be between 0 and `group` - 1 = 3"),
        ({"group": 2, "head": -1}, "`head` must be between 0"),
        ({"group": 2, "upload": "abc"}, "`group` must be 1 with your own tensors"),
    ],
)
def test_a_bad_group_or_head_gets_a_sentence(changes: dict, message: str) -> None:
    errors = problem_errors(replace(ProblemSpec(), **changes))
    assert any(message in e for e in errors), errors
