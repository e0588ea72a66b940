"""Precision lesson 3 (``flashviz.lab.exp2_form``): the inner step in base 2 agrees with the
paper's form to rounding, and the table brings its numbers back to base e.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz.core.inner_step import attn_fwd_inner, initial_state
from flashviz.core.trace import record_steps
from flashviz.figures.precision import forms_table_figure
from flashviz.lab.exp2_form import LN2, LOG2E, attn_fwd_inner_exp2, compare_forms, forms_table
from flashviz.lab.patterns import make_inputs
from tests.lab.precision_support import CASES, random_qkv, u
from tests.support import EXP_ULPS, assert_matches_reference, assert_same_attention, spec


def _tile_state(rng, bq, d, seen: bool):
    m, l, o = initial_state((), bq, d, np.float64)
    if seen:  # a state that has seen keys: finite max, positive sum
        m = rng.normal(0, 3, bq)
        l, o = rng.uniform(1, 5, bq), rng.standard_normal((bq, d))
    return m, l, o


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
    """float64, with |s|, |m| up to ~100. In natural units the arguments of exp and exp2
    differ by at most 7 u (|s| + |m|) <= 14 u (big - 1): s2 ln 2 and m2 ln 2 are s and m
    off by at most 5 roundings (ln 2, 1 / ln 2, scale log2 e, the product; s's own), and
    each form subtracts once. exp and exp2 are each within EXP_ULPS ulps (tests/support.py),
    an ulp at most 2 u: 4 EXP_ULPS u between them. So P~ and alpha agree to that relative
    error, and l, o (sums of them) to it times (bkv + 2)."""
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
    rel = (14 * (big - 1) + 4 * EXP_ULPS) * u64
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
    q, k, v = (x.astype(dtype) for x in random_qkv(rng, n_q, n_k, d, magnitude=2.0))
    kw = {"block_q": bq, "block_kv": bkv, "causal": causal, "causal_align": align}
    runs = [compare_forms(q, k, v, i=i, dtype=dtype, **kw) for i in range(-(-n_q // bq))]
    o, o2 = (np.concatenate([getattr(r, f) for r in runs]) for f in ("o", "o2"))
    lse, lse_e = (np.concatenate([getattr(r, f) for r in runs]) for f in ("lse", "lse_from_base2"))
    assert_matches_reference(o, lse, q, k, v, causal=causal, causal_align=align)
    assert_matches_reference(o2, lse_e.astype(q.dtype), q, k, v, causal=causal, causal_align=align)
    np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(lse_e))
    if dtype == "float64":
        np.testing.assert_allclose(o2, o, rtol=0, atol=1e-12)
        # L = m + log l rounds relative to |m| + |log l|, not to L, which can cancel to ~0
        finite = np.isfinite(lse)
        terms = max(1.0, float(np.abs(lse[finite]).max(initial=0.0)))
        np.testing.assert_allclose(lse_e[finite], lse[finite], rtol=0, atol=1e-13 * terms)
    trace = record_steps(q, k, v, **kw)  # the paper's form is the stepper's run
    # the same steps on blocks compare_forms copies and the trace slices: a BLAS may sum a
    # matmul in another order depending on where its operands sit in memory
    bound = dict(block_kv=bkv, causal=causal, causal_align=align)
    assert_same_attention((o, lse), (trace.o, trace.lse), q, k, v, **bound)


def test_forms_table_brings_base_2_back_to_base_e(rng):
    q, k, v = random_qkv(rng, 9, 14, 8, magnitude=3.0)
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
    q, k, v = random_qkv(rng, 4, 4, 2)
    with pytest.raises(ValueError, match="dtype must be"):
        compare_forms(q, k, v, block_q=2, block_kv=2, dtype="float16")
    with pytest.raises(ValueError, match="i must be a query block index in \\[0, 2\\)"):
        compare_forms(q, k, v, block_q=2, block_kv=2, i=2)


def test_forms_table_figure_is_valid_plotly_and_carries_the_rows():
    q, k, v = make_inputs("spiky", 20, 24, 8, 1)
    run = compare_forms(q, k, v, block_q=8, block_kv=8)
    rows = forms_table(run, 0, 1)
    fig = forms_table_figure(rows, "t")
    go.Figure(fig.to_dict())
    cells = spec(fig.to_json())["data"][0]["cells"]["values"]
    assert cells[0] == [r.quantity for r in rows]
