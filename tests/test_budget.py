"""Bounded work per page: the whole-run data holds only what is drawn, and the problem check
estimates memory and time of everything a page computes against one stated budget."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from flashviz.figures.context import figure_context
from flashviz.figures.whole_run import MAX_DIMS, MAX_ROWS, frame_steps, run_states, whole_run_figure
from flashviz.problem import ProblemSpec, build_trace


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
    assert peak < 24 * 2**20, f"peak {peak / 2**20:.0f} MiB"
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
