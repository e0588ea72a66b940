"""Precision lesson 1 (``flashviz.lab.precision_errors``): the error breakdown, one effect of
the precision at a time.

Tolerances come from the unit roundoff u = eps / 2 of each type (float16 2^-11, bfloat16
2^-8, float32 2^-24): rounding P~ to a type with unit roundoff u moves each weight by at
most u relative (plus half the smallest subnormal absolute), so P~ V / l moves by at most
that times max|v|. Where a result is another implementation in the same precision,
flash-attn's rule (``flashviz.core.accuracy.allowed_error``: 2 x naive's error + 4 ulps)
is used.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz.core.accuracy import allowed_error
from flashviz.core.masking import mask_offset
from flashviz.core.precision import PRECISIONS, get_precision, store
from flashviz.core.reference import attention_reference, masked_scores, softmax_attention
from flashviz.core.trace import record_steps
from flashviz.core.verdict import row_errors
from flashviz.figures.precision import breakdown_figure, row_error_figure
from flashviz.lab.patterns import make_inputs
from flashviz.lab.precision_errors import STAGES, error_breakdown
from flashviz.lab.underflow import (
    underflow_limits,
)
from tests.lab.precision_support import CASES, LOW, random_qkv, u
from tests.support import decode, spec


@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}-{c[5]}-{c[6]}")
def test_last_stage_is_record_steps_bit_for_bit(rng, precision, case):
    n_q, n_k, d, bq, bkv, causal, align = case
    q, k, v = random_qkv(rng, n_q, n_k, d)
    kw = {"block_q": bq, "block_kv": bkv, "causal": causal, "causal_align": align}
    b = error_breakdown(q, k, v, precision=precision, **kw)
    trace = record_steps(q, k, v, precision=precision, **kw)
    np.testing.assert_array_equal(b.final.o, trace.o)
    np.testing.assert_array_equal(b.final.lse, trace.lse)
    assert b.final.o.dtype == trace.o.dtype == get_precision(precision).state
    assert [s.key for s in b.stages] == list(STAGES)


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_stages_add_one_effect_each(rng, precision):
    q, k, v = random_qkv(rng, 21, 19, 8)
    kw = {"block_q": 5, "block_kv": 4, "causal": True}
    b = error_breakdown(q, k, v, precision=precision, **kw)
    prec = get_precision(precision)
    applies = [s.applies for s in b.stages]
    assert applies == [True, prec.state != np.float64, prec.rounds_p]
    stored = [store(x, prec) for x in (q, k, v)]
    # stage 1: rounded inputs, exact (float64) state
    exact_state = record_steps(*(x.astype(np.float64) for x in stored), precision="float64", **kw)
    np.testing.assert_array_equal(b.stages[0].o, exact_state.o)
    # stage 2: the state type, P~ not rounded
    in_state = record_steps(*stored, precision=prec.state.name, **kw)
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
    q, k, v = random_qkv(np.random.default_rng(seed), n_q, n_k, d)
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
    q, k, v = random_qkv(rng, 23, 31, 8, magnitude=2.0)
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
    q, k, v = random_qkv(rng, 33, 27, 16, magnitude=2.0)
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
    q, k, v = random_qkv(rng, 10, 12, 4)
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
    q, k, v = random_qkv(rng, 4, 4, 2)
    with pytest.raises(ValueError, match="precision must be one of"):
        error_breakdown(q, k, v, precision="float8", block_q=2, block_kv=2)
    with pytest.raises(ValueError, match="k must have head dim"):
        error_breakdown(q, k[:, :1], v, precision="float16", block_q=2, block_kv=2)
    with pytest.raises(ValueError, match="block_kv must be a positive integer"):
        error_breakdown(q, k, v, precision="float16", block_q=2, block_kv=0)


def test_breakdown_figures_are_valid_plotly_and_carry_the_numbers():
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
