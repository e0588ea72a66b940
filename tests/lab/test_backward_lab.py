"""The backward lesson (``flashviz.lab.backward``, ``flashviz.lab.backward_code_view``) and its
budget: the run against its reference, the counters against the cost formulas, the tile
map's states in K/V-outer order, dQ's additions, D_i both ways, the explanations' numbers,
the code phases of each step kind."""

from __future__ import annotations

import itertools
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from flashviz.core.backward_trace import (
    BwdLoadStep,
    BwdTileStep,
    BwdWriteStep,
    record_backward_trace,
)
from flashviz.core.costs import backward_executed_flops, fa2_backward_hbm, recompute_flops
from flashviz.core.masks import document
from flashviz.core.verdict import DEFAULT_TOL
from flashviz.lab.backward import (
    DO_STREAM,
    TILE_STATES,
    delta_check,
    dq_adds_after,
    dq_adds_total,
    dq_after,
    explain_step,
    grad_output,
    on_chip,
    progress,
    rows_added,
    run_backward,
    step_title,
    tile_order,
    tile_states,
)
from flashviz.lab.backward_code_view import (
    INNER_PHASES,
    STEP_PHASES,
    backward_highlight,
    source_paths,
    step_phases,
)
from flashviz.lab.budget import MAX_STEPS, estimate_cost, page_steps, suggest_spec
from flashviz.lab.code_view import MarkerError
from flashviz.lab.explain import num
from flashviz.lab.patterns import PATTERNS, make_inputs
from flashviz.lab.problem import problem_errors
from flashviz.lab.problem_spec import ProblemSpec

SMALL = ProblemSpec(n_q=10, n_k=7, head_dim=4, block_q=3, block_kv=2)
CASES = [
    SMALL,
    replace(SMALL, causal=True),
    replace(SMALL, causal=True, causal_align="top_left"),
    ProblemSpec(causal=True),  # the page's default problem, causal
    ProblemSpec(n_q=12, n_k=5, head_dim=3, block_q=4, block_kv=2, causal=True),  # empty rows
]
IDS = ["plain", "causal", "top_left", "default causal", "rows with no key"]


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def run(request):
    return run_backward(request.param)


def test_do_is_seeded_on_its_own_stream() -> None:
    do = grad_output(5, 3, seed=7)
    assert np.array_equal(do, np.random.default_rng((7, DO_STREAM)).standard_normal((5, 3)))
    assert not np.array_equal(do, grad_output(5, 3, seed=8))
    q, _, _ = make_inputs("random", 5, 4, 3, 7)
    assert not np.allclose(do, q)  # not the queries' stream


@pytest.mark.parametrize("pattern", list(PATTERNS))
@pytest.mark.parametrize("causal", [False, True])
def test_the_run_matches_the_float64_gradient(pattern: str, causal: bool) -> None:
    spec = ProblemSpec(n_q=20, n_k=13, head_dim=6, block_q=4, block_kv=3, causal=causal,
                       pattern=pattern, seed=3)  # fmt: skip
    r = run_backward(spec)
    q, k, _ = make_inputs(pattern, 20, 13, 6, 3)
    assert np.array_equal(r.trace.q, q) and np.array_equal(r.trace.k, k)
    assert np.array_equal(r.trace.do, grad_output(20, 6, 3))
    assert r.tol == DEFAULT_TOL and r.ok, r.errors
    assert r.errors["dq"] == float(np.abs(r.trace.dq - r.dq_ref).max())
    assert set(r.errors) == {"dq", "dk", "dv"}


def test_a_wrong_gradient_is_caught() -> None:
    r = run_backward(SMALL)
    broken = replace(r, errors={**r.errors, "dk": 1e-6})
    assert not broken.ok


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (ProblemSpec(n_q=0), "`n_q` must be at least 1"),
        (ProblemSpec(pattern="nope"), "`pattern` must be one of"),
        (ProblemSpec(n_q=512, n_k=512, head_dim=8, block_q=1, block_kv=1), "too large"),
    ],
)
def test_invalid_problems_are_refused_with_their_reasons(spec, fragment) -> None:
    with pytest.raises(ValueError, match=fragment):
        run_backward(spec)


def test_the_counters_add_up_to_the_cost_formulas(run) -> None:
    t = run.trace
    args = (t.n_q, t.n_k, t.d, t.block_q, t.block_kv, t.causal, t.causal_align)
    last = progress(run, len(t.steps) - 1)
    assert last.hbm_bytes == last.hbm_bytes_total == fa2_backward_hbm(*args).total
    assert last.flops == last.flops_total == backward_executed_flops(*args)
    assert last.recompute_flops == recompute_flops(*args)
    assert last.tiles_done == last.tiles_total == len(t.tile_steps())
    assert last.memory_saved == 4 * t.n_q * t.n_k
    first = progress(run, 0)
    assert (first.tiles_done, first.flops, first.recompute_flops) == (0, 0, 0)
    assert first.hbm_bytes > 0  # D from O and dO
    totals = [progress(run, k) for k in range(len(t.steps))]
    for a, b in itertools.pairwise(totals):
        assert a.hbm_bytes <= b.hbm_bytes and a.flops <= b.flops and a.tiles_done <= b.tiles_done
        assert 5 * b.recompute_flops == b.flops  # 2 d of the 10 d per tile entry


def test_tiles_are_visited_k_v_blocks_outside(run) -> None:
    t = run.trace
    order = tile_order(t)
    visited = sorted(zip(*np.nonzero(order), strict=True), key=lambda ij: order[ij])
    assert visited == sorted(visited, key=lambda ij: (ij[1], ij[0]))  # down each column
    assert np.array_equal(order == 0, t.tile_kinds() == "skipped")
    assert order.max() == len(t.tile_steps())


def test_tile_states_step_by_step(run) -> None:
    t = run.trace
    order = tile_order(t)
    done = 0
    for k, step in enumerate(t.steps):
        states = tile_states(t, k)
        assert set(np.unique(states)) <= set(range(len(TILE_STATES)))
        assert np.array_equal(states == 3, order == 0)
        if isinstance(step, BwdTileStep):
            done += 1
            assert states[step.i, step.j] == 1 and (states == 1).sum() == 1
        else:
            assert (states == 1).sum() == 0
        assert (states == 0).sum() + (states == 1).sum() == done
    assert ((states == 0) | (states == 3)).all()  # the end: every visited tile done


def test_dq_in_hbm_and_its_additions(run) -> None:
    t = run.trace
    last = len(t.steps) - 1
    np.testing.assert_array_equal(dq_after(t, last), t.dq)
    seen_blocks = (t.tile_kinds() != "skipped").sum(axis=1)  # per Q block
    block_of_row = np.arange(t.n_q) // t.block_q
    np.testing.assert_array_equal(dq_adds_total(t), seen_blocks[block_of_row])
    assert not dq_adds_after(t, 0).any() and not dq_after(t, 0).any()
    for k, step in enumerate(t.steps):
        adds = dq_adds_after(t, k)
        if isinstance(step, BwdTileStep):
            assert rows_added(t, k) == step.rows
            prev = dq_adds_after(t, k - 1)
            changed = np.nonzero(adds != prev)[0]
            assert changed.tolist() == list(step.rows)
            assert (adds[list(step.rows)] == step.dq_adds).all()
            np.testing.assert_array_equal(dq_after(t, k)[step.rows.start : step.rows.stop],
                                          step.dq)  # fmt: skip
        else:
            assert len(rows_added(t, k)) == 0


def test_gradients_on_chip(run) -> None:
    t = run.trace
    assert on_chip(t, 0) is None  # the delta step
    for k, step in enumerate(t.steps):
        if isinstance(step, BwdLoadStep):
            dk, dv = on_chip(t, k)
            assert dk.shape == step.k_j.shape and not dk.any() and not dv.any()
        elif isinstance(step, BwdWriteStep):
            dk, dv = on_chip(t, k)
            np.testing.assert_array_equal(dk, t.dk[step.cols.start : step.cols.stop])
            np.testing.assert_array_equal(dv, t.dv[step.cols.start : step.cols.stop])


def test_d_both_ways(run) -> None:
    t = run.trace
    for row in range(t.n_q):
        c = delta_check(t, row)
        assert c.row == row and c.from_o == float(t.delta[row])
        assert abs(c.from_o - c.from_p) <= 1e-12 * max(1.0, abs(c.from_o))
        if np.isneginf(t.lse[row]):  # a row that sees no key
            assert c.from_o == 0 and c.from_p == 0


def test_d_both_ways_under_a_flexattention_mask() -> None:
    """rowsum(dP * P) over the keys the mask lets a row see, whatever the mask."""
    q, k, v = make_inputs("random", 13, 11, 4, 5)
    do = np.random.default_rng(5).standard_normal((13, 4))
    mod = document([0, 4, 9])
    t = record_backward_trace(q, k, v, do, block_q=4, block_kv=3, mask_mod=mod)
    for row in range(t.n_q):
        c = delta_check(t, row)
        assert abs(c.from_o - c.from_p) <= 1e-12 * max(1.0, abs(c.from_o)), row


def test_the_explanations_carry_the_step_s_numbers(run) -> None:
    t = run.trace
    for k, step in enumerate(t.steps):
        e = explain_step(t, k, row=1)
        assert step_title(t, k).startswith(f"Step {k} of {len(t.steps) - 1}: ")
        if isinstance(step, BwdTileStep):
            r = min(1, len(step.rows) - 1)
            row = step.rows.start + r
            assert e.row == row and f"tile (Q block {step.i}, K/V block {step.j})" in e.title
            c = int(np.argmax(np.abs(step.ds[r])))
            assert f"dS_{{{row},{step.cols.start + c}}}" in e.numbers
            for value in (step.s[r, c], step.p[r, c], step.dp[r, c], step.ds[r, c],
                          t.delta[row], step.dq[r, 0]):  # fmt: skip
                assert num(float(value)) in e.numbers, (num(float(value)), e.numbers)
        elif isinstance(step, BwdWriteStep):
            assert num(float(step.dk[0, 0])) in e.numbers
        elif isinstance(step, BwdLoadStep):
            assert num(float(step.k_j[0, 0])) in e.numbers
        else:
            c = delta_check(t, 1)
            assert num(c.from_o) in e.numbers and num(c.from_p) in e.numbers


# The code phases ---------------------------------------------------------------------------


def test_each_step_kind_lights_its_markers() -> None:
    for kind, phases in STEP_PHASES.items():
        (inner, inner_ranges), (loops, loop_ranges) = backward_highlight(kind)
        lit = [inner.lines[n - 1] for a, b in inner_ranges for n in range(a, b + 1)]
        lit += [loops.lines[n - 1] for a, b in loop_ranges for n in range(a, b + 1)]
        marked = [line.split("phase:")[1].split()[0] for line in lit if "# phase:" in line]
        assert marked == list(phases), kind
    (inner, ranges), _ = backward_highlight("tile", "ds")
    (first, last_line) = ranges[0]
    assert len(ranges) == 1 and "phase:ds" in inner.lines[first - 1]
    assert "ds_ij = p_ij * (dp_ij - delta_i" in inner.lines[last_line - 1]
    assert inner.path == "flashviz/core/backward_step.py"


def test_step_phases_checks_its_arguments() -> None:
    assert step_phases("tile") == INNER_PHASES[1:] and step_phases("load_kv") == ()
    assert step_phases("tile", "dq") == ("dq",)
    with pytest.raises(ValueError, match="step_kind must be one of"):
        step_phases("load_q")
    with pytest.raises(ValueError, match="phase must be one of"):
        step_phases("write_kv", "dq")


def test_a_missing_marker_is_an_error(tmp_path: Path) -> None:
    inner, loops = source_paths()
    broken = tmp_path / "backward_step.py"
    broken.write_text(inner.read_text().replace("# phase:dp ", "# dp "))
    with pytest.raises(MarkerError, match="no marker for dp"):
        backward_highlight("tile", inner=broken, loops=loops)


# The page's budget ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [
    ProblemSpec(n_q=256, n_k=256, head_dim=64, block_q=8, block_kv=8, causal=True),
    ProblemSpec(n_q=128, n_k=512, head_dim=128, block_q=4, block_kv=64),
], ids=["256 causal", "128 x 512, d = 128"])  # fmt: skip
def test_the_estimate_bounds_the_backward_page(spec: ProblemSpec) -> None:
    cost = estimate_cost(spec, "backward")
    tracemalloc.start()
    try:
        r = run_backward(spec)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.ok
    assert peak <= cost.total_bytes - cost.figure_bytes, (peak, cost)
    assert cost.total_bytes - cost.figure_bytes <= 3 * peak  # a bound, not a wild guess


def test_the_backward_page_counts_its_own_steps() -> None:
    spec = ProblemSpec(n_q=16, n_k=512, head_dim=8, block_q=4, block_kv=1)
    assert spec.n_steps == 4 * (512 + 2) < MAX_STEPS < spec.n_backward_steps == 1 + 512 * 6
    assert page_steps(spec, "backward") == spec.n_backward_steps
    assert page_steps(spec, "stepper") == spec.n_steps
    assert problem_errors(spec) == []
    (error,) = problem_errors(spec, "backward")
    assert f"up to {spec.n_backward_steps:,} steps" in error
    fitted = suggest_spec(spec, "backward")
    assert problem_errors(fitted, "backward") == [] and fitted.n_backward_steps <= MAX_STEPS
    assert error.endswith(
        f"Try n_q = {fitted.n_q}, n_k = {fitted.n_k}, block_q = {fitted.block_q}, "
        f"block_kv = {fitted.block_kv}."
    )
    assert len(run_backward(fitted).trace.steps) <= fitted.n_backward_steps
