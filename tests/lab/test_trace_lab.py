"""record_trace with a precision and with a bug switch, and the first diverging step."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz import record_trace
from flashviz.core.precision import PRECISIONS
from flashviz.core.trace import LoadStep, TileStep
from flashviz.core.verdict import compare_with_reference
from flashviz.figures.context import full_scores
from flashviz.lab.bugzoo import BUGS
from flashviz.lab.divergence import first_diverging_step, step_estimate
from flashviz.lab.row_debugger import debug_row, first_bad_chunk

LOW = ["float32", "float16", "bfloat16"]


def _problem(seed: int, n_q: int, n_k: int, d: int, logit_scale: float = 1.0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n_q, d)) * logit_scale
    k = rng.standard_normal((n_k, d))
    v = rng.standard_normal((n_k, d))
    return q, k, v


@pytest.mark.parametrize("precision", LOW)
@pytest.mark.parametrize(
    "causal,align", [(False, "bottom_right"), (True, "bottom_right"), (True, "top_left")]
)
def test_low_precision_trace_is_as_accurate_as_naive_in_that_precision(precision, causal, align):
    q, k, v = _problem(7, 37, 29, 11, logit_scale=3.0)
    trace = record_trace(
        q, k, v, block_q=8, block_kv=6, causal=causal, causal_align=align, precision=precision
    )
    prec = PRECISIONS[precision]
    assert trace.precision == precision and trace.o.dtype == prec.state
    np.testing.assert_array_equal(trace.q, q.astype(prec.storage).astype(prec.state))
    verdict = compare_with_reference(trace)
    assert verdict.ok, (verdict.max_err_o, verdict.tol, verdict.max_err_lse, verdict.tol_lse)
    assert verdict.tol < 1e-2  # a real bound, not a blanket pass


def test_verdict_errors_per_row_and_rows_that_see_no_key():
    q, k, v = _problem(3, 13, 7, 5)  # bottom-right causal: rows 0-5 see no key
    trace = record_trace(q, k, v, block_q=4, block_kv=3, causal=True, precision="float32")
    verdict = compare_with_reference(trace)
    empty = np.isneginf(verdict.lse_ref)
    assert empty.sum() == 6 and np.isneginf(trace.lse[empty]).all()
    np.testing.assert_array_equal(verdict.err_lse[empty], 0.0)
    seen = ~empty
    err_o = np.abs(trace.o.astype(np.float64) - verdict.o_ref).max(axis=1)
    err_lse = np.abs(trace.lse[seen].astype(np.float64) - verdict.lse_ref[seen])
    np.testing.assert_array_equal(verdict.err_o, err_o)
    np.testing.assert_array_equal(verdict.err_lse[seen], err_lse)
    assert (verdict.max_err_o, verdict.max_err_lse) == (err_o.max(), err_lse.max())
    assert 0 < verdict.max_err_o <= verdict.tol and verdict.ok


def test_16_bit_runs_round_p_for_the_matmul_but_not_for_l():
    q, k, v = _problem(3, 9, 13, 5)
    fp16 = record_trace(q, k, v, block_q=4, block_kv=5, precision="float16")
    step = fp16.tile_steps()[0]
    p16 = step.p.astype(np.float16).astype(np.float32)
    np.testing.assert_allclose(step.l, step.p.sum(axis=1), rtol=1e-6)  # l from the exact P~
    np.testing.assert_allclose(
        step.pv, p16 @ fp16.v[step.cols.start : step.cols.stop], rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(step.p, p16, rtol=0, atol=0)  # the rounding is real


def test_bfloat16_inputs_are_bfloat16_values():
    q, k, v = _problem(4, 6, 6, 4)
    trace = record_trace(q, k, v, block_q=3, block_kv=3, precision="bfloat16")
    for x in (trace.q, trace.k, trace.v):
        np.testing.assert_array_equal(x, x.astype(ml_dtypes.bfloat16).astype(np.float32))


def test_unknown_precision_and_bug_are_rejected_with_their_names():
    q, k, v = _problem(0, 4, 4, 2)
    with pytest.raises(ValueError, match="precision must be one of"):
        record_trace(q, k, v, block_q=2, block_kv=2, precision="float8")
    with pytest.raises(ValueError, match="bug must be None or one of"):
        record_trace(q, k, v, block_q=2, block_kv=2, bug="typo")


def test_correct_trace_never_diverges_from_itself_and_tile_fields_are_consistent():
    q, k, v = _problem(1, 21, 17, 6)
    trace = record_trace(q, k, v, block_q=5, block_kv=4, causal=True)
    assert first_diverging_step(trace, trace) is None
    for step in trace.tile_steps():
        np.testing.assert_allclose(step.o_rescaled, step.alpha[:, None] * step.o_prev)


def _expected_first_step(trace, q, k, v, bug, tol):
    """From the row debugger: the first tile where any row of a Q block leaves the exact."""
    s = full_scores(trace)
    for index, step in enumerate(trace.steps):
        if not isinstance(step, LoadStep):
            continue
        tiles = [t for t in trace.steps[index + 1 :] if t.i == step.i and isinstance(t, TileStep)]
        if not tiles:
            continue
        stop = tiles[-1].cols.stop
        firsts = [
            first_bad_chunk(debug_row(s[r, :stop], trace.block_kv, trace.v[:stop], bug), tol)
            for r in step.rows
        ]
        hit = min((f for f in firsts if f is not None), default=None)
        if hit is not None:
            return index + 1 + hit
    return None


@given(
    bug=st.sampled_from(sorted(BUGS)),
    n_q=st.integers(1, 13),
    n_k=st.integers(1, 13),
    block_q=st.integers(1, 5),
    block_kv=st.integers(1, 5),
    causal=st.booleans(),
    align=st.sampled_from(["bottom_right", "top_left"]),
    logit_scale=st.sampled_from([1.0, 30.0, 3000.0]),
    seed=st.integers(0, 2**16),
)
def test_bug_trace_diverges_exactly_where_the_row_debugger_says(
    bug, n_q, n_k, block_q, block_kv, causal, align, logit_scale, seed
):
    q, k, v = _problem(seed, n_q, n_k, 3, logit_scale)
    kw = dict(block_q=block_q, block_kv=block_kv, causal=causal, causal_align=align)
    correct = record_trace(q, k, v, **kw)
    buggy = record_trace(q, k, v, bug=bug, **kw)
    tol = 1e-9 * max(1.0, float(np.abs(v).max()))
    got = first_diverging_step(buggy, correct, tol)
    assert got == _expected_first_step(correct, q, k, v, bug, tol)
    assert buggy.bug == bug and len(buggy.steps) == len(correct.steps)


# (step, rows that leave the correct run there): step 1 is tile j = 0, step 2 tile j = 1
SHOWCASE_BITES = {
    "mask_1e4": (1, [0]),  # row 0's masked keys get weight at -1e4: its output is not 0
    "mask_5e4": (1, [0]),
    "no_inf_guard": (1, [0]),  # row 0: m = -inf, (-inf) - (-inf) = NaN
    "stale_l": (1, [0]),  # row 0: l = 0, O / l = 0 / 0
    "no_max": (1, [3]),  # row 3's score -6e4: exp underflows to 0, l = 0
    "no_rescale_o": (2, [2, 3]),  # rows 2 and 3: the max rises at tile 1
    "no_rescale_l": (2, [2, 3]),
    "wrong_sign": (2, [2, 3]),
    # row 2's max rises by 12 at tile 1, under 20 ln 2: kept, and P~ = e^12 overflows float16
    "threshold_too_high_f16": (2, [2]),
}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_every_bug_bites_on_its_showcase_problem(bug):
    """Row 0 sees no key, row 1 one key, rows 2 and 3 see their max rise over tiles (row 2's
    scores are -8, 4: a rise of 12; row 3's -6e4, 3e4, 6e4): each bug first bites at the
    tile and rows it is about."""
    q = np.array([[1.0], [1.0], [8.0], [60000.0]])
    k = np.array([[-1.0], [0.5], [1.0]])
    v = np.array([[1.0], [-2.0], [3.0]])
    kw = dict(block_q=4, block_kv=1, causal=True, causal_align="bottom_right", scale=1.0)
    correct = record_trace(q, k, v, **kw)
    buggy = record_trace(q, k, v, bug=bug, **kw)
    first = first_diverging_step(buggy, correct)
    a = step_estimate(buggy, buggy.steps[first])
    b = step_estimate(correct, correct.steps[first])
    with np.errstate(invalid="ignore"):
        rows = [r for r in range(4) if not np.abs(a[r] - b[r]).max() <= 1e-12]
    assert (first, rows) == SHOWCASE_BITES[bug]
    assert set(SHOWCASE_BITES) == set(BUGS)
    assert compare_with_reference(correct).ok


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_a_bug_that_does_not_bite_leaves_a_16_bit_run_bit_for_bit(precision):
    """The bug's run is the correct run with its hooks: same P~ rounding, same numbers."""
    q, k, v = _problem(5, 9, 11, 4)  # no mask: the -inf stand-ins never matter
    kw = dict(block_q=4, block_kv=3, precision=precision)
    correct = record_trace(q, k, v, **kw)
    for bug in ("mask_1e4", "no_inf_guard"):
        buggy = record_trace(q, k, v, bug=bug, **kw)
        np.testing.assert_array_equal(buggy.o, correct.o)
        for a, b in zip(buggy.tile_steps(), correct.tile_steps(), strict=True):
            np.testing.assert_array_equal(a.o, b.o)
