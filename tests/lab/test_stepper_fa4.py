"""The stepper's problem with FA4's rescale threshold: the run keeps stale maxima, and the
tile map, the statistics, the counters and the worked numbers show where; a threshold that
is out of range, or too high for float16, gets a sentence."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from flashviz.app.stepper.step_texts import counters_html
from flashviz.core.trace import TileStep
from flashviz.figures.context import figure_context
from flashviz.figures.stats import stats_figure
from flashviz.figures.tile_map import tile_map_figure
from flashviz.lab.explain import explain
from flashviz.lab.problem import build_trace, problem_errors
from flashviz.lab.problem_spec import ProblemSpec
from flashviz.lab.progress import progress

SPEC = ProblemSpec(rescale_threshold=8.0)  # the default problem: 43 of 48 rescales skipped


def _stale_step(trace) -> int:
    return next(k for k, s in enumerate(trace.steps) if isinstance(s, TileStep) and s.stale.any())


def test_the_run_keeps_stale_maxima_and_the_answer() -> None:
    lazy, fa2 = build_trace(SPEC), build_trace(replace(SPEC, rescale_threshold=0.0))
    last = len(lazy.steps) - 1
    p, q = progress(lazy, last), progress(fa2, last)
    assert (p.rescales_total, p.rescales_skipped_total) == (5, 43)
    assert (q.rescales_total, q.rescales_skipped_total) == (48, 0)
    np.testing.assert_allclose(lazy.o, fa2.o, rtol=1e-13, atol=1e-15)
    assert figure_context(lazy).verdict.ok
    html = counters_html(figure_context(lazy), last)
    assert "rows rescaled / skipped" in html and "5 / 43" in html


def test_the_tile_map_and_statistics_mark_the_skipped_rescales() -> None:
    trace = build_trace(SPEC)
    ctx = figure_context(trace)
    k = _stale_step(trace)
    marks = [d for d in tile_map_figure(ctx, k).data if d.name == "rescale skipped"]
    assert len(marks) == 1 and len(marks[0].x) == 1  # the one tile done so far that kept one
    step = trace.steps[k]
    assert marks[0].customdata[0] == int(step.stale.sum())
    last = tile_map_figure(ctx, len(trace.steps) - 1)
    (every,) = [d for d in last.data if d.name == "rescale skipped"]
    assert len(every.x) == sum(1 for s in trace.tile_steps() if s.stale.any())
    outlines = [d for d in stats_figure(ctx, k).data if d.name and "kept stale" in d.name]
    assert len(outlines) == 1 and outlines[0].x.count(None) == int(step.stale.sum())
    # FA2's figures have neither
    fa2 = figure_context(build_trace(replace(SPEC, rescale_threshold=0.0)))
    assert not [d for d in tile_map_figure(fa2, k).data if d.name == "rescale skipped"]
    assert not [d for d in stats_figure(fa2, k).data if d.name and "kept stale" in d.name]


def test_the_worked_numbers_show_the_stale_max_at_work() -> None:
    trace = build_trace(SPEC)
    k = _stale_step(trace)
    step = trace.steps[k]
    r = int(np.flatnonzero(step.stale)[0])
    e = explain(trace, k, r)
    assert "**stale max**" in e.text and f"{step.m_prev[r]:.4g}" in e.text
    assert r"\text{ only if more than } 8\,\ln 2 \text{ above)}" in e.numbers
    assert r"\alpha &= e^{" in e.numbers and "= 1" in e.numbers


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rescale_threshold": -1.0}, "`rescale_threshold`: rescale_threshold must be a number"),
        ({"rescale_threshold": 65.0}, "in [0, 64]"),
        ({"rescale_threshold": 16.0, "precision": "float16"}, "too high for float16"),
    ],
)
def test_a_bad_threshold_gets_a_sentence(changes: dict, message: str) -> None:
    errors = problem_errors(replace(ProblemSpec(), **changes))
    assert any(message in e for e in errors), errors


def test_a_threshold_and_a_bug_together() -> None:
    """The bug zoo's high threshold is its own; a threshold set beside it replaces it."""
    spec = replace(ProblemSpec(), bug="threshold_too_high_f16")
    assert build_trace(spec).hooks.rescale_threshold == 20.0
    assert build_trace(replace(spec, rescale_threshold=8.0)).hooks.rescale_threshold == 8.0
