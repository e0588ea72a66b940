"""Bounded work per page: the whole-run data holds only what is drawn, and the problem check
estimates memory and time of everything a page computes against one stated budget."""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import flashviz
from flashviz.core.precision import PRECISIONS
from flashviz.core.trace import record_steps
from flashviz.figures.context import figure_context
from flashviz.figures.whole_run import (
    MAX_DIMS,
    MAX_FRAMES,
    MAX_ROWS,
    frame_steps,
    run_states,
    whole_run_figure,
)
from flashviz.lab.budget import PAGES, estimate_cost, suggest_size, suggest_spec
from flashviz.lab.fa_compare import compare
from flashviz.lab.precision_errors import error_breakdown
from flashviz.lab.problem import build_trace, problem_errors, spec_inputs, spec_problem
from flashviz.lab.problem_spec import NO_BUG, ProblemSpec
from flashviz.lab.underflow import UNDERFLOW_TYPES, problem_underflow
from tests.app.step_view_driver import step_title
from tests.app.test_stepper_page import run_app
from tests.support import spec


def test_whole_run_data_is_bounded_by_what_is_drawn() -> None:
    """1024 x 64, d = 256, 192 steps: was steps x n_q x d float64 = 400 MB; now ~2 MB."""
    ctx = figure_context(
        build_trace(ProblemSpec(n_q=1024, n_k=64, head_dim=256, block_q=16, block_kv=64))
    )
    tracemalloc.start()
    try:
        fig = whole_run_figure(ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.0f} MiB"  # ~6 MiB; ~19 on a first figure
    assert len(fig.frames) == 150


@pytest.mark.parametrize("spec", [
    ProblemSpec(n_q=37, n_k=29, head_dim=5, block_q=4, block_kv=3, causal=True),
    ProblemSpec(n_q=200, n_k=20, head_dim=40, block_q=3, block_kv=7, bug="no_rescale_o"),
])  # fmt: skip
def test_run_states_of_picked_frames_rows_and_dims_equal_the_full_run(spec) -> None:
    trace = build_trace(spec)
    m, l, o = run_states(trace)
    picks = frame_steps(len(trace.steps), 17)
    rows = np.arange(0, trace.n_q, max(1, trace.n_q // MAX_ROWS))
    m2, l2, o2 = run_states(trace, picks, rows, MAX_DIMS)
    np.testing.assert_array_equal(m2, m[picks][:, rows])
    np.testing.assert_array_equal(l2, l[picks][:, rows])
    np.testing.assert_array_equal(o2, o[picks][:, rows, :MAX_DIMS])


URL_ACCEPTED = dict(n_q=4096, n_k=64, head_dim=256, block_q=16, block_kv=64)  # within the budget
URL_REFUSED = dict(n_q=16384, n_k=16, head_dim=256, block_q=64, block_kv=16)  # beyond it


@pytest.mark.parametrize("spec", [
    ProblemSpec(**URL_ACCEPTED),
    ProblemSpec(n_q=512, n_k=512, head_dim=64, block_q=16, block_kv=16, causal=True),
    ProblemSpec(n_q=300, n_k=200, head_dim=128, block_q=8, block_kv=32, bug="no_rescale_l"),
], ids=["issue URL", "512 causal", "bug: two traces"])  # fmt: skip
def test_the_estimate_bounds_the_memory_a_page_takes(spec: ProblemSpec) -> None:
    """Measured: trace(s), figure context and whole-run figure, as the stepper builds them."""
    cost = estimate_cost(spec)
    tracemalloc.start()
    try:
        traces = [build_trace(spec)]
        if spec.bug != NO_BUG:
            traces.append(build_trace(replace(spec, bug=NO_BUG)))
        contexts = [figure_context(t) for t in traces]
        whole_run_figure(contexts[0])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= cost.total_bytes, f"{peak / 2**20:.0f} > {cost.total_bytes / 2**20:.0f} MiB"
    assert cost.total_bytes - cost.figure_bytes <= 3 * peak  # a bound, not a wild guess
    assert cost.within_budget


@pytest.mark.parametrize("spec", [
    ProblemSpec(**URL_ACCEPTED),
    ProblemSpec(n_q=512, n_k=512, head_dim=256, block_q=16, block_kv=16),
], ids=["issue URL", "512 x 512, d = 256"])  # fmt: skip
def test_the_estimate_bounds_the_fa1_page_too(spec: ProblemSpec) -> None:
    """The FA1 vs FA2 page records both runs on the same problem."""
    tracemalloc.start()
    try:
        compare(*spec_inputs(spec), **spec.tiling)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= estimate_cost(spec).total_bytes


def test_a_url_beyond_the_budget_is_refused_with_a_size_that_fits() -> None:
    (error,) = problem_errors(ProblemSpec(**URL_REFUSED))
    assert "about 579 MiB and 6.6 s of CPU (recorded runs 459 MiB" in error
    assert "at most 256 MiB and 4 s" in error
    assert error.endswith("Try n_q = 4096, n_k = 16, block_q = 64, block_kv = 16.")
    assert suggest_spec(ProblemSpec(**URL_REFUSED)) == ProblemSpec(**{**URL_REFUSED, "n_q": 4096})
    with pytest.raises(ValueError, match="would cost the server about 579 MiB"):
        build_trace(ProblemSpec(**URL_REFUSED))  # refused before anything is allocated


@pytest.mark.parametrize("spec", [
    ProblemSpec(n_q=256, n_k=256, head_dim=64, block_q=16, block_kv=32),
    ProblemSpec(n_q=1024, n_k=32, head_dim=128, block_q=32, block_kv=32, causal=True),
], ids=["256 x 256", "1024 x 32"])  # fmt: skip
def test_the_estimate_bounds_the_precision_page(spec: ProblemSpec) -> None:
    """Every precision run three times (12 recorded runs) and the exact trace."""
    tracemalloc.start()
    try:
        q, k, v = spec_inputs(spec)
        runs = {p: error_breakdown(q, k, v, precision=p, **spec.tiling) for p in PRECISIONS}
        exact = record_steps(q, k, v, **spec.tiling)
        [problem_underflow(exact, name) for name in UNDERFLOW_TYPES]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(runs) == 4
    cost = estimate_cost(spec, "precision")
    assert peak <= cost.total_bytes and cost.within_budget
    assert cost.seconds > estimate_cost(spec).seconds  # 13 runs against 2


def test_the_precision_page_has_its_own_budget() -> None:
    spec = ProblemSpec(n_q=512, n_k=512, head_dim=256, block_q=16, block_kv=16)
    assert problem_errors(spec) == []
    (error,) = problem_errors(spec, "precision")
    assert "s of CPU" in error
    assert error.endswith("Try n_q = 512, n_k = 512, block_q = 16, block_kv = 128.")
    with pytest.raises(ValueError, match="page must be one of"):
        estimate_cost(spec, "gpu")


@given(
    n_q=st.integers(1, 40_000),
    n_k=st.integers(1, 40_000),
    head_dim=st.integers(1, 256),
    block_q=st.integers(1, 4096),
    block_kv=st.integers(1, 4096),
    bug=st.sampled_from([NO_BUG, "stale_l"]),
    page=st.sampled_from(PAGES),
)
def test_the_suggestion_always_fits_and_keeps_what_fits(
    n_q, n_k, head_dim, block_q, block_kv, bug, page
):
    spec = ProblemSpec(n_q=n_q, n_k=n_k, head_dim=head_dim, block_q=min(block_q, n_q),
                       block_kv=min(block_kv, n_k), bug=bug)  # fmt: skip
    fitted = suggest_spec(spec, page)
    assert problem_errors(fitted, page) == []
    assert fitted.head_dim == head_dim and fitted.bug == bug
    if problem_errors(spec, page) == []:
        assert fitted == spec
    else:
        assert (
            "Try n_q = {}, n_k = {}, block_q = {}, block_kv = {}.".format(*suggest_size(spec, page))
            in problem_errors(spec, page)[0]
        )


@pytest.mark.timeout(120)
def test_urls_within_and_beyond_the_budget_in_the_app() -> None:
    """The refused URL answers at once with the suggestion; the accepted one renders."""
    start = time.process_time()  # CPU time: a parallel test worker's load does not count
    at = run_app(**URL_REFUSED)
    assert time.process_time() - start < 10
    assert any("Try n_q = 4096, n_k = 16" in e.value for e in at.error)
    assert not at.get("plotly_chart")
    at = run_app(**URL_ACCEPTED)
    assert not at.error and not at.exception
    # 4096 / 16 = 256 query blocks of one K/V tile each: load, tile, write = 768 steps
    assert step_title(at) == "### Step 0 of 767: load q, Q block 0"
    (whole_run,) = [c for c in at.get("plotly_chart") if c.key == "chart_whole_run"]
    frames = spec(whole_run.proto.spec)["frames"]  # the costly one: MAX_FRAMES of 768 steps
    assert len(frames) == MAX_FRAMES == len(frame_steps(768))


@pytest.mark.parametrize("bug", [NO_BUG, "stale_l"])
def test_a_spec_builds_the_cores_problem_and_records_it(bug):
    spec = ProblemSpec(n_q=11, n_k=7, head_dim=4, block_q=3, block_kv=2, causal=True,
                       causal_align="bottom_right", precision="bfloat16", bug=bug)  # fmt: skip
    problem = spec_problem(spec)
    assert (problem.n_q, problem.n_k, problem.d, problem.grid) == (11, 7, 4, (4, 4))
    assert (problem.causal, problem.causal_align, problem.scale) == (True, "bottom_right", 0.5)
    for got, want in zip(spec_inputs(spec), (problem.q, problem.k, problem.v), strict=True):
        np.testing.assert_array_equal(got, want)
    trace = build_trace(spec)
    again = flashviz.record_trace(*spec_inputs(spec), **spec.tiling, precision="bfloat16",
                                  bug=spec.bug_or_none)  # fmt: skip
    np.testing.assert_array_equal(trace.o, again.o)
    assert trace.bug == spec.bug_or_none and trace.precision == "bfloat16"
