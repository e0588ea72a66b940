"""The precision lab: the error breakdown, underflow of alpha and P~, and the exp2 form.

Tolerances come from the unit roundoff u = eps / 2 of each type (float16 2^-11, bfloat16
2^-8, float32 2^-24) through two bounds derived in the tests that use them:

- softmax is Lipschitz in the scores: if every score of a row moves by at most D, every
  weight moves by a factor in [e^-2D, e^2D], so o moves by at most (e^2D - 1) max|v|;
- rounding P~ to a type with unit roundoff u moves each weight by at most u relative (plus
  half the smallest subnormal absolute), so P~ V / l moves by at most that times max|v|.

Where a result is another implementation in the same precision, flash-attn's rule
(``flashviz.core.accuracy.allowed_error``: 2 x naive's error + 4 ulps) is used.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import plotly.graph_objects as go
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flashviz.core.accuracy import allowed_error
from flashviz.core.inner_step import attn_fwd_inner, initial_state
from flashviz.core.masking import mask_offset, visible_counts
from flashviz.core.precision import PRECISIONS, get_precision, store
from flashviz.core.reference import (
    attention_reference,
    masked_scores,
    softmax_attention,
    softmax_rows,
)
from flashviz.core.trace import record_trace
from flashviz.figures.precision import (
    breakdown_figure,
    forms_table_figure,
    gap_sweep_figure,
    row_error_figure,
    underflow_figure,
)
from flashviz.lab.bugzoo import debug_row
from flashviz.lab.patterns import make_inputs
from flashviz.lab.precision_lab import (
    LN2,
    LOG2E,
    STAGES,
    UNDERFLOW_TYPES,
    attn_fwd_inner_exp2,
    compare_forms,
    error_breakdown,
    exp_neg,
    forms_table,
    gap_sweep,
    jump_row,
    online_row,
    problem_underflow,
    row_errors,
    underflow_kind,
    underflow_limits,
)
from tests.support import assert_matches_reference, decode, spec

LOW = ["float32", "float16", "bfloat16"]
CASES = [  # (n_q, n_k, d, block_q, block_kv, causal, align): uneven sizes, both alignments
    (13, 29, 7, 4, 6, False, "bottom_right"),
    (29, 13, 8, 8, 5, True, "bottom_right"),  # n_q > n_k: the first rows see no key
    (17, 17, 16, 5, 4, True, "top_left"),
    (1, 1, 3, 1, 1, False, "bottom_right"),
]


def u(name: str) -> float:
    """Unit roundoff of the storage type of ``name``."""
    return float(ml_dtypes.finfo(get_precision(name).storage).eps) / 2


def _inputs(rng, n_q, n_k, d, magnitude=1.0):
    return (
        rng.standard_normal((n_q, d)) * magnitude,
        rng.standard_normal((n_k, d)),
        rng.standard_normal((n_k, d)),
    )


# --- 1. error breakdown -----------------------------------------------------------------


@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}-{c[5]}-{c[6]}")
def test_last_stage_is_record_trace_bit_for_bit(rng, precision, case):
    n_q, n_k, d, bq, bkv, causal, align = case
    q, k, v = _inputs(rng, n_q, n_k, d)
    kw = {"block_q": bq, "block_kv": bkv, "causal": causal, "causal_align": align}
    b = error_breakdown(q, k, v, precision=precision, **kw)
    trace = record_trace(q, k, v, precision=precision, **kw)
    np.testing.assert_array_equal(b.final.o, trace.o)
    np.testing.assert_array_equal(b.final.lse, trace.lse)
    assert b.final.o.dtype == trace.o.dtype == get_precision(precision).state
    assert [s.key for s in b.stages] == list(STAGES)


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_stages_add_one_effect_each(rng, precision):
    q, k, v = _inputs(rng, 21, 19, 8)
    kw = {"block_q": 5, "block_kv": 4, "causal": True}
    b = error_breakdown(q, k, v, precision=precision, **kw)
    prec = get_precision(precision)
    applies = [s.applies for s in b.stages]
    assert applies == [True, prec.state != np.float64, prec.rounds_p]
    stored = [store(x, prec) for x in (q, k, v)]
    # stage 1: rounded inputs, exact (float64) state
    exact_state = record_trace(*(x.astype(np.float64) for x in stored), precision="float64", **kw)
    np.testing.assert_array_equal(b.stages[0].o, exact_state.o)
    # stage 2: the state type, P~ not rounded
    in_state = record_trace(*stored, precision=prec.state.name, **kw)
    np.testing.assert_array_equal(b.stages[1].o, in_state.o)
    assert b.stages[1].o.dtype == prec.state
    for n, stage in enumerate(b.stages):
        before = b.o_ref if n == 0 else b.stages[n - 1].o.astype(np.float64)
        np.testing.assert_array_equal(
            stage.effect_o, np.abs(stage.o.astype(np.float64) - before).max(axis=1)
        )
        if not stage.applies:
            assert stage.o is b.stages[n - 1].o and b.effects[n] == 0.0
    assert b.dominant == list(STAGES)[int(np.argmax(b.effects))]
    assert b.final.max_err_o <= b.effects.sum() * (1 + 1e-12)  # triangle inequality


@settings(max_examples=25, deadline=None)
@given(
    precision=st.sampled_from(["float16", "bfloat16", "float32"]),
    n_q=st.integers(1, 12),
    n_k=st.integers(1, 12),
    d=st.integers(1, 9),
    logit=st.floats(0.1, 20.0),
    seed=st.integers(0, 2**32 - 1),
    causal=st.booleans(),
)
def test_inputs_stage_is_exact_attention_on_rounded_inputs(
    precision, n_q, n_k, d, logit, seed, causal
):
    """Stage 1 is float64 attention on the rounded inputs (to 1e-12), and its error obeys
    the Lipschitz bound: row r moves by at most (e^(2 D_r) - 1) max|v| + max|dv|, D_r the
    largest change of a visible score of row r caused by rounding q and k."""
    q, k, v = _inputs(np.random.default_rng(seed), n_q, n_k, d)
    scale = logit / math.sqrt(d)
    b = error_breakdown(q, k, v, precision=precision, block_q=3, block_kv=4, causal=causal,
                        scale=scale)  # fmt: skip
    prec = get_precision(precision)
    qr, kr, vr = (store(x, prec).astype(np.float64) for x in (q, k, v))
    o_r, _ = attention_reference(qr, kr, vr, causal=causal, scale=scale)
    np.testing.assert_allclose(b.stages[0].o, o_r, rtol=0, atol=1e-12)
    offset = mask_offset(n_q, n_k, causal, "bottom_right")
    s, s_r = (masked_scores(a, c, scale=scale, offset=offset, dtype=np.float64)
              for a, c in ((q, k), (qr, kr)))  # fmt: skip
    with np.errstate(invalid="ignore"):
        d_row = np.where(np.isfinite(s), np.abs(s - s_r), 0.0).max(axis=1)
    bound = np.expm1(2 * d_row) * np.abs(v).max() + np.abs(vr - v).max() + 1e-12
    assert (b.stages[0].err_o <= bound).all()


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_p_rounding_moves_o_by_at_most_u_times_max_v(rng, precision):
    q, k, v = _inputs(rng, 23, 31, 8, magnitude=2.0)
    b = error_breakdown(q, k, v, precision=precision, block_q=8, block_kv=8)
    lim = underflow_limits(precision)
    v_max = float(np.abs(store(v, get_precision(precision))).max())
    float32_slack = 2 * (31 + 4) * u("float32") * v_max  # matmul rounding of both runs
    # l >= 1 (the row's largest entry contributes exactly 1), so subnormal rounding of the
    # 31 entries moves o by at most 31 * (smallest subnormal / 2) * max|v|
    bound = (u(precision) + 31 * lim.smallest_subnormal / 2) * v_max + float32_slack
    change = np.abs(b.stages[2].o - b.stages[1].o).max(axis=1)
    assert (change <= bound).all()
    assert change.max() > float32_slack  # the rounding really happened


@pytest.mark.parametrize("precision", LOW)
def test_state_stage_is_float32_accurate_and_the_total_obeys_flash_attns_rule(rng, precision):
    q, k, v = _inputs(rng, 33, 27, 16, magnitude=2.0)
    b = error_breakdown(q, k, v, precision=precision, block_q=8, block_kv=8, causal=True)
    prec = get_precision(precision)
    inputs, state = b.stages[0].o, b.stages[1].o
    # the float32 state against exact attention on the same rounded inputs
    offset = mask_offset(33, 27, True, "bottom_right")
    stored = [store(x, prec) for x in (q, k, v)]
    naive32, _ = softmax_attention(*stored, scale=1 / 4, offset=offset, dtype=np.float32)
    tol = allowed_error(inputs, naive32, 2 * u("float32"))
    assert np.abs(state - inputs).max() <= tol
    # the whole run against the reference on the original inputs: 2 x naive + 4 ulps
    tol_total = 2 * b.naive_err_o + 4 * prec.eps * float(np.abs(b.o_ref).max())
    assert b.final.max_err_o <= tol_total


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_rounded_inputs_dominate_16_bit_runs_with_large_logits(seed, precision):
    """A score's rounding error is ~ |s| u; a weight's P~ rounding error is <= u and averages
    out over the keys; with logits ~ 4x the usual, rounding the inputs dominates."""
    q, k, v = make_inputs("random", 48, 48, 32, seed)
    b = error_breakdown(q, k, v, precision=precision, block_q=16, block_kv=16, scale=4 / 32**0.5)
    assert b.dominant == "inputs"
    assert b.effects[0] > 2 * b.effects[2]


def test_float64_breakdown_is_rounding_only(rng):
    q, k, v = _inputs(rng, 10, 12, 4)
    b = error_breakdown(q, k, v, precision="float64", block_q=3, block_kv=5)
    assert b.final.max_err_o <= 1e-12 and b.naive_err_o <= 1e-12
    assert b.stages[0].o is b.stages[1].o is b.stages[2].o


def test_row_errors_treat_rows_with_no_key():
    o = np.zeros((2, 3))
    err_o, err_lse = row_errors(o, np.array([-np.inf, 1.0]), o, np.array([-np.inf, 1.5]))
    np.testing.assert_array_equal(err_o, [0, 0])
    np.testing.assert_array_equal(err_lse, [0, 0.5])
    _, err_lse = row_errors(o, np.array([np.nan, 1.0]), o, np.array([-np.inf, 1.0]))
    assert err_lse[0] == np.inf


def test_breakdown_validates_its_arguments(rng):
    q, k, v = _inputs(rng, 4, 4, 2)
    with pytest.raises(ValueError, match="precision must be one of"):
        error_breakdown(q, k, v, precision="float8", block_q=2, block_kv=2)
    with pytest.raises(ValueError, match="k must have head dim"):
        error_breakdown(q, k[:, :1], v, precision="float16", block_q=2, block_kv=2)
    with pytest.raises(ValueError, match="block_kv must be a positive integer"):
        error_breakdown(q, k, v, precision="float16", block_q=2, block_kv=0)


# --- 2. underflow -------------------------------------------------------------------------


def test_underflow_limits_match_the_types():
    f16, bf16, f32 = (underflow_limits(n) for n in UNDERFLOW_TYPES)
    # the numbers of the issue: float16 min subnormal 6e-8 -> exp(-16.6); float32 exp(-103.3)
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


@settings(max_examples=60, deadline=None)
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
    trace = record_trace(q, k, v, block_q=1, block_kv=2, scale=1.0)
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
    trace = record_trace(q * 30, k, v, block_q=bq, block_kv=bkv, causal=causal,
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
    np.testing.assert_array_equal(run.output, steps[-1].estimate)
    assert run.error <= 1e-14
    assert run.alpha_zero == run.p_zero == 0 and run.erased_weight == 0.0


@pytest.mark.parametrize("name", ["float16", "float32"])
@settings(max_examples=30, deadline=None)
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
    with pytest.raises(ValueError, match="jump_at"):
        jump_row(n=4, jump_at=9)
    with pytest.raises(ValueError, match="gap"):
        jump_row(gap=-1.0)


# --- 3. the exp2 form ---------------------------------------------------------------------


def _tile_state(rng, bq, d, seen: bool):
    m, l, o = initial_state((), bq, d, np.float64)
    if seen:  # a state that has seen keys: finite max, positive sum
        m = rng.normal(0, 3, bq)
        l, o = rng.uniform(1, 5, bq), rng.standard_normal((bq, d))
    return m, l, o


@settings(max_examples=60, deadline=None)
@given(
    bq=st.integers(1, 6),
    bkv=st.integers(1, 7),
    d=st.integers(1, 8),
    magnitude=st.floats(0.1, 30.0),
    seen=st.booleans(),
    masked=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_exp2_step_equals_the_papers_step_to_rounding(bq, bkv, d, magnitude, seen, masked, seed):
    """float64, with |s|, |m| up to ~100: the arguments of exp differ by rounding of the
    scale and the scores, <= 4 u (1 + |s| + |m|) in natural units, so P~ and alpha agree to
    that relative error, and l, o (sums of them) to it times (bkv + 2)."""
    rng = np.random.default_rng(seed)
    q, k, v = (
        rng.standard_normal((bq, d)) * magnitude,
        rng.standard_normal((bkv, d)),
        rng.standard_normal((bkv, d)),
    )
    vis = rng.random((bq, bkv)) < 0.6 if masked else None
    m, l, o = _tile_state(rng, bq, d, seen)
    scale = 1 / math.sqrt(d)
    a = attn_fwd_inner(m, l, o, q, k, v, scale=scale, visible=vis)
    b = attn_fwd_inner_exp2(m * LOG2E, l, o, q, k, v, scale_log2e=scale * LOG2E, visible=vis)
    u64 = u("float64")
    big = (
        1
        + np.abs(np.where(np.isfinite(a.s_ij), a.s_ij, 0)).max()
        + np.abs(np.nan_to_num(m, neginf=0)).max()
    )
    rel = 8 * u64 * big
    np.testing.assert_array_equal(np.isneginf(a.s_ij), np.isneginf(b.s_ij))
    np.testing.assert_allclose(b.s_ij * LN2, a.s_ij, rtol=4 * u64, atol=4 * u64 * big)
    np.testing.assert_allclose(b.m_i * LN2, a.m_i, rtol=4 * u64, atol=4 * u64 * big)
    np.testing.assert_allclose(b.p_ij, a.p_ij, rtol=rel, atol=0)
    np.testing.assert_allclose(b.alpha, a.alpha, rtol=rel, atol=0)
    np.testing.assert_allclose(b.l_i, a.l_i, rtol=(bkv + 2) * rel, atol=0)
    scale_o = (np.abs(o).max() + np.abs(v).max()) * (l.max() + bkv)
    np.testing.assert_allclose(b.o_i, a.o_i, rtol=0, atol=(bkv + 2) * rel * scale_o)


def test_exp2_step_without_log2e_is_caught(rng):
    """The comparison above bites: forgetting to fold log2 e in changes P~ and l."""
    q, k, v = (
        rng.standard_normal((4, 8)) * 3,
        rng.standard_normal((5, 8)),
        rng.standard_normal((5, 8)),
    )
    m, l, o = initial_state((), 4, 8, np.float64)
    a = attn_fwd_inner(m, l, o, q, k, v, scale=0.5)
    b = attn_fwd_inner_exp2(m, l, o, q, k, v, scale_log2e=0.5)
    assert not np.allclose(a.p_ij, b.p_ij, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}-{c[5]}-{c[6]}")
def test_both_forms_match_the_reference_and_each_other(rng, dtype, case):
    n_q, n_k, d, bq, bkv, causal, align = case
    q, k, v = (x.astype(dtype) for x in _inputs(rng, n_q, n_k, d, magnitude=2.0))
    kw = {"block_q": bq, "block_kv": bkv, "causal": causal, "causal_align": align}
    runs = [compare_forms(q, k, v, i=i, dtype=dtype, **kw) for i in range(-(-n_q // bq))]
    o, o2 = (np.concatenate([getattr(r, f) for r in runs]) for f in ("o", "o2"))
    lse, lse_e = (np.concatenate([getattr(r, f) for r in runs]) for f in ("lse", "lse_from_base2"))
    assert_matches_reference(o, lse, q, k, v, causal=causal, causal_align=align)
    assert_matches_reference(o2, lse_e.astype(q.dtype), q, k, v, causal=causal, causal_align=align)
    np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(lse_e))
    if dtype == "float64":
        np.testing.assert_allclose(o2, o, rtol=0, atol=1e-12)
        np.testing.assert_allclose(lse_e[np.isfinite(lse)], lse[np.isfinite(lse)], rtol=1e-13)
    trace = record_trace(q, k, v, **kw)  # the paper's form is the stepper's run
    np.testing.assert_array_equal(o, trace.o)


def test_forms_table_brings_base_2_back_to_base_e(rng):
    q, k, v = _inputs(rng, 9, 14, 8, magnitude=3.0)
    run = compare_forms(q, k, v, block_q=4, block_kv=5, i=1)
    eps = float(np.finfo(np.float32).eps)
    for tile in range(len(run.natural)):
        rows = forms_table(run, 2, tile)
        assert rows[0].quantity == "scale" and rows[0].base2 == pytest.approx(run.scale * LOG2E)
        for r in rows:
            if math.isinf(r.natural):  # m before the first tile
                assert r.natural == r.base2_in_e == -math.inf and r.diff == 0
                continue
            assert r.diff <= 16 * eps * (1 + abs(r.natural)) * (len(run.cols[tile]) + 2), r
        m_before = rows[2]
        assert (m_before.natural == -math.inf) == (tile == 0)
    with pytest.raises(ValueError, match="row must be in"):
        forms_table(run, 4, 0)
    with pytest.raises(ValueError, match="tile must be in"):
        forms_table(run, 0, len(run.natural))


def test_compare_forms_validates(rng):
    q, k, v = _inputs(rng, 4, 4, 2)
    with pytest.raises(ValueError, match="dtype must be"):
        compare_forms(q, k, v, block_q=2, block_kv=2, dtype="float16")
    with pytest.raises(ValueError, match="i must be a query block index in \\[0, 2\\)"):
        compare_forms(q, k, v, block_q=2, block_kv=2, i=2)


# --- figures ------------------------------------------------------------------------------


def test_figures_are_valid_plotly_and_carry_the_numbers(rng):
    q, k, v = make_inputs("spiky", 20, 24, 8, 1)
    bs = [error_breakdown(q, k, v, precision=p, block_q=8, block_kv=8) for p in PRECISIONS]
    fig = breakdown_figure(bs)
    go.Figure(fig.to_dict())
    data = spec(fig.to_json())["data"]
    for n in range(len(STAGES)):
        left, right = data[2 * n], data[2 * n + 1]
        errs = [max(b.stages[n].max_err_o, 1e-18) for b in bs]
        np.testing.assert_allclose(decode(left["y"]), errs)
        np.testing.assert_allclose(decode(right["y"]), [max(b.effects[n], 1e-18) for b in bs])
        assert left["marker"]["opacity"] == [1.0 if b.stages[n].applies else 0.25 for b in bs]
    go.Figure(row_error_figure(bs[2]).to_dict())

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

    run = compare_forms(q, k, v, block_q=8, block_kv=8)
    rows = forms_table(run, 0, 1)
    fig = forms_table_figure(rows, "t")
    go.Figure(fig.to_dict())
    cells = spec(fig.to_json())["data"][0]["cells"]["values"]
    assert cells[0] == [r.quantity for r in rows]
