"""Precision lesson 2 (``flashviz.lab.underflow``): underflow of alpha and P~, and a row's
online softmax with its whole state in one type.

Tolerances come from the unit roundoff u = eps / 2 of each type (float16 2^-11, bfloat16
2^-8, float32 2^-24) and from softmax being Lipschitz in the scores: if every score of a
row moves by at most D, every weight moves by a factor in [e^-2D, e^2D], so o moves by at
most (e^2D - 1) max|v|. Where a result is another implementation in the same precision,
flash-attn's rule (``flashviz.core.accuracy.allowed_error``) is used.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz.core.accuracy import allowed_error
from flashviz.core.masking import mask_offset, visible_counts
from flashviz.core.precision import get_precision
from flashviz.core.reference import softmax_rows
from flashviz.core.trace import record_steps
from flashviz.figures.precision import gap_sweep_figure, underflow_figure
from flashviz.lab.exp2_form import LN2
from flashviz.lab.patterns import make_inputs
from flashviz.lab.row_debugger import debug_row
from flashviz.lab.underflow import (
    UNDERFLOW_TYPES,
    exp_neg,
    gap_sweep,
    jump_row,
    online_row,
    problem_underflow,
    underflow_kind,
    underflow_limits,
)
from tests.lab.precision_support import CASES, u
from tests.support import assert_equal_to_rounding, decode, spec


def test_underflow_limits_match_the_types():
    f16, bf16, f32 = (underflow_limits(n) for n in UNDERFLOW_TYPES)
    # float16 min subnormal 6e-8 -> exp(-16.6); float32 exp(-103.3)
    assert f16.smallest_subnormal == pytest.approx(5.96e-8, rel=1e-3)
    assert f16.gap_below_subnormal == pytest.approx(16.64, abs=0.01)
    assert f32.gap_below_subnormal == pytest.approx(103.28, abs=0.01)
    assert f16.gap_subnormal == pytest.approx(-math.log(2.0**-14))
    assert bf16.tiny == f32.tiny  # bfloat16 has float32's exponent range
    for lim in (f16, bf16, f32):
        assert lim.gap_subnormal < lim.gap_below_subnormal < lim.gap_zero
        assert lim.gap_zero - lim.gap_below_subnormal == pytest.approx(LN2)


@pytest.mark.parametrize("name", UNDERFLOW_TYPES)
def test_exp_neg_changes_kind_exactly_at_the_limits(name):
    """Below the subnormal gap the value stays normal; just beyond it, it may still round
    up to the smallest normal (within half a subnormal step, 2^-8 relative for bfloat16),
    hence 0.01 there. Around the zero gap it goes from the smallest subnormal to 0 (1e-4:
    ml_dtypes converts float64 to bfloat16 through float32, whose subnormals near 4.6e-41
    are 3e-5 apart relative)."""
    lim = underflow_limits(name)
    assert exp_neg(lim.gap_subnormal - 1e-6, name) >= lim.tiny
    assert 0 < exp_neg(lim.gap_subnormal + 0.01, name) < lim.tiny
    assert exp_neg(lim.gap_zero - 1e-4, name) == lim.smallest_subnormal
    assert exp_neg(lim.gap_zero + 1e-4, name) == 0


@given(
    name=st.sampled_from(UNDERFLOW_TYPES),
    gaps=st.lists(st.floats(0.0, 120.0), min_size=1, max_size=20),
)
def test_exp_neg_is_exp_correctly_rounded_and_never_increases(name, gaps):
    lim = underflow_limits(name)
    gaps = np.sort(np.array(gaps))
    got, exact = exp_neg(gaps, name), np.exp(-gaps)
    assert (np.diff(got) <= 0).all()
    normal = got >= lim.tiny
    assert (np.abs(got - exact)[normal] <= u(name) * exact[normal]).all()
    assert (np.abs(got - exact)[~normal] <= lim.smallest_subnormal / 2).all()


def test_exp_neg_refuses_negative_gaps():
    with pytest.raises(ValueError, match="gap must be >= 0"):
        exp_neg(-1.0, "float16")
    with pytest.raises(ValueError, match="gap must be >= 0"):
        exp_neg(np.array([1.0, np.nan]), "float16")


def test_underflow_kind_masks():
    x = np.array([0.0, 1.0, 1e-6, 1e-9])
    sub, zero = underflow_kind(x, "float16")
    np.testing.assert_array_equal(sub, [False, False, True, False])
    np.testing.assert_array_equal(zero, [False, False, False, True])  # 0 itself is not counted


def test_problem_underflow_on_a_hand_built_row():
    """One query, d = 1, scale 1, two tiles of two keys: scores [0, 5] then [30, 10].
    Tile 1 raises the max from 5 to 30: alpha = e^-25 and the key at 10 has P~ = e^-20,
    both below float16's zero gap (17.3) and far above bfloat16's and float32's."""
    q = np.ones((1, 1))
    k = np.array([[0.0], [5.0], [30.0], [10.0]])
    v = np.array([[1.0], [-1.0], [0.5], [0.25]])
    trace = record_steps(q, k, v, block_q=1, block_kv=2, scale=1.0)
    l_fin = 1 + math.exp(-20) + math.exp(-25) * (1 + math.exp(-5))
    f16 = problem_underflow(trace, "float16")
    assert (f16.n_p, f16.p_zero, f16.p_subnormal) == (4, 1, 0)
    assert (f16.n_alpha, f16.alpha_zero, f16.alpha_subnormal) == (1, 1, 0)
    assert f16.p_zero_weight == pytest.approx(math.exp(-20) / l_fin, rel=1e-12)
    assert f16.alpha_zero_weight == pytest.approx(
        (1 + math.exp(-5)) * math.exp(-25) / l_fin, rel=1e-12
    )
    for name in ("bfloat16", "float32"):
        other = problem_underflow(trace, name)
        assert other.p_zero == other.alpha_zero == other.p_subnormal == 0
        assert other.p_zero_weight == other.alpha_zero_weight == 0.0


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}-{c[5]}-{c[6]}")
def test_problem_underflow_counts_every_visible_entry(case):
    n_q, n_k, d, bq, bkv, causal, align = case
    q, k, v = make_inputs("spiky", n_q, n_k, d, 3)
    trace = record_steps(q * 30, k, v, block_q=bq, block_kv=bkv, causal=causal,
                         causal_align=align)  # fmt: skip
    counts = [problem_underflow(trace, name) for name in UNDERFLOW_TYPES]
    offset = mask_offset(n_q, n_k, causal, align)
    assert {c.n_p for c in counts} == {int(visible_counts(n_q, n_k, offset).sum())}
    rescales = sum(int(np.isfinite(s.m_prev).sum()) for s in trace.tile_steps())
    assert {c.n_alpha for c in counts} == {rescales}
    # a value that is 0 in float32 is 0 in bfloat16, and one that is 0 there is 0 in float16
    f16, bf16, f32 = counts
    assert f16.p_zero >= bf16.p_zero >= f32.p_zero
    assert f16.alpha_zero >= bf16.alpha_zero >= f32.alpha_zero
    for c in counts:
        assert 0 <= c.p_zero_weight < 1e-6 and 0 <= c.alpha_zero_weight < 1e-6


def test_online_row_in_float64_is_the_bug_zoos_correct_row(rng):
    scores, values = jump_row(n=37, jump_at=20, gap=25.0, seed=int(rng.integers(1000)))
    run = online_row(scores, values, 6, "float64")
    steps = debug_row(scores, 6, values)
    # the same steps on the same scores; P~ V_j is a matmul on online_row's copy of the
    # values and on the values themselves: a BLAS may sum its 6 terms in another order. Each
    # term passes through at most 6 roundings in its tile, 2 in each later one (rescale,
    # add) and 1 at the end, all relative to the same run on |v|
    size = debug_row(scores, 6, np.abs(values))[-1].estimate
    roundings = 6 + 2 * len(steps) + 1
    assert_equal_to_rounding(run.output, steps[-1].estimate, roundings=roundings, scale=size)
    assert run.error <= 1e-14
    assert run.alpha_zero == run.p_zero == 0 and run.erased_weight == 0.0


@pytest.mark.parametrize("name", ["float16", "float32"])
@given(
    base=st.floats(-200.0, 200.0),
    gap=st.floats(0.0, 60.0),
    chunk=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_online_row_is_as_accurate_as_naive_softmax_in_its_type(name, base, gap, chunk, seed):
    """flash-attn's rule against naive softmax computed in the same type (numpy rounds
    every float16 operation to float16), on the scores rounded to that type."""
    scores, values = jump_row(n=40, jump_at=25, base=base, gap=gap, seed=seed)
    run = online_row(scores, values, chunk, name)
    t = get_precision(name).storage
    naive, _ = softmax_rows(scores.astype(t)[None], values.astype(t))
    tol = allowed_error(run.exact, naive[0].astype(np.float64), 2 * u(name))
    assert run.error <= tol
    np.testing.assert_array_equal(run.alphas, run.alphas.astype(t).astype(np.float64))


def test_online_row_bfloat16_obeys_the_lipschitz_bound(rng):
    """bfloat16 matmuls return float32 in ml_dtypes, so there is no bfloat16 naive; bound
    instead: scores move by u |s|, and every later operation by at most u relative each."""
    for _ in range(20):
        scores, values = jump_row(base=float(rng.uniform(-50, 50)), gap=float(rng.uniform(0, 40)),
                                  seed=int(rng.integers(2**31)))  # fmt: skip
        run = online_row(scores, values, 16, "bfloat16")
        d_s = u("bfloat16") * (2 * np.abs(scores).max() + 2)  # s - m and exp's argument
        steps = 2 * (len(scores) + 4)  # sums of l and o, alpha products, the division
        bound = (np.expm1(2 * d_s) + steps * u("bfloat16")) * np.abs(values).max()
        assert 0 < run.error <= bound


def test_float16_state_underflow_erases_little_but_the_error_is_large():
    """The demonstration of the page: a max jump of 30 (> float16's zero gap of 17.3)."""
    scores, values = jump_row(gap=30.0)  # jump at key 40, chunks of 8: a rescale at key 40
    f16, bf16, f32 = (online_row(scores, values, 8, n) for n in UNDERFLOW_TYPES)
    assert f16.alpha_zero == 1 and bf16.alpha_zero == f32.alpha_zero == 0
    w = np.exp(scores - scores.max())
    w /= w.sum()
    assert f16.erased_weight == pytest.approx(w[:40].sum(), rel=1e-12)  # keys before the jump
    assert f16.erased_weight < u("float16") < f16.error
    assert f16.error > 100 * f32.error and bf16.error > f16.error


def test_float16_state_overflows_beyond_65504():
    scores, values = jump_row(base=7e4, gap=0.0)
    assert online_row(scores, values, 16, "float16").error == math.inf
    assert online_row(scores, values, 16, "float32").error < 1e-2


def test_gap_sweep_is_online_row_at_each_gap():
    gaps = np.array([0.0, 12.0, 30.0])
    sweep = gap_sweep(gaps, chunk=8, n=48, jump_at=24, base=3.0)
    assert set(sweep) == set(UNDERFLOW_TYPES)
    scores, values = jump_row(n=48, jump_at=24, base=3.0, gap=12.0)
    assert sweep["float16"][1] == online_row(scores, values, 8, "float16").error


def test_row_inputs_are_validated():
    with pytest.raises(ValueError, match="chunk must be a positive integer"):
        online_row(np.zeros(4), None, 0, "float16")
    with pytest.raises(ValueError, match="scores must be a non-empty 1-D row"):
        online_row(np.zeros((2, 2)), None, 1, "float16")
    with pytest.raises(ValueError, match="precision must be one of"):
        online_row(np.zeros(4), None, 1, "float8")
    with pytest.raises(ValueError, match="jump_at must be between 0 and 4, got 9"):
        jump_row(n=4, jump_at=9)
    with pytest.raises(ValueError, match="n must be an integer, got True"):
        jump_row(n=True)
    with pytest.raises(ValueError, match="gap"):
        jump_row(gap=-1.0)


def test_underflow_figures_are_valid_plotly_and_carry_the_numbers():
    limits = [underflow_limits(n) for n in UNDERFLOW_TYPES]
    gaps = np.linspace(0, 110, 221)
    fig = underflow_figure(limits, gaps, 20.0)
    go.Figure(fig.to_dict())
    f16 = next(t for t in spec(fig.to_json())["data"] if t["name"] == "float16")
    y = decode(f16["y"])
    assert np.isnan(y[gaps > limits[0].gap_zero]).all() and np.isfinite(y[gaps < 17]).all()
    lines = {s["name"]: s["x0"] for s in spec(fig.to_json())["layout"]["shapes"]}
    assert lines["float16 zero"] == pytest.approx(limits[0].gap_zero) and lines["chosen gap"] == 20

    sweep_gaps = np.array([0.0, 20.0])
    fig = gap_sweep_figure(sweep_gaps, gap_sweep(sweep_gaps), limits[0], 20.0)
    go.Figure(fig.to_dict())
    assert [t["name"] for t in spec(fig.to_json())["data"]] == [
        f"state in {n}" for n in UNDERFLOW_TYPES
    ]
