"""Property tests (hypothesis): any shape, block, mask, scale and logit magnitude."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from flashviz import flash_attention, record_trace
from tests.support import assert_matches_reference, assert_same_attention


@st.composite
def problems(draw):
    n_q, n_k = draw(st.integers(1, 80)), draw(st.integers(1, 80))
    d = draw(st.integers(1, 16))
    logits = 10.0 ** draw(st.floats(-2, 4))  # typical |score| from 0.01 up to 1e4
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.one_of(st.none(), st.floats(-2, 2).filter(lambda s: abs(s) > 1e-3)))
    eff_scale = 1 / np.sqrt(d) if scale is None else abs(scale)
    mag = np.sqrt(logits / eff_scale / np.sqrt(d))
    q, k = (rng.standard_normal((n, d)) * mag for n in (n_q, n_k))
    v = rng.standard_normal((n_k, d))
    return dict(
        q=q.astype(dtype),
        k=k.astype(dtype),
        v=v.astype(dtype),
        scale=scale,
        causal=draw(st.booleans()),
        causal_align=draw(st.sampled_from(["bottom_right", "top_left"])),
        block_q=draw(st.integers(1, 48)),
        block_kv=draw(st.integers(1, 48)),
    )


@given(problems())
def test_flash_attention_matches_reference(p):
    o, lse = flash_attention(**p)
    mask = {key: p[key] for key in ("scale", "causal", "causal_align")}
    assert_matches_reference(o, lse, p["q"], p["k"], p["v"], **mask)


@given(problems())
def test_trace_output_equals_flash_attention(p):
    trace = record_trace(**p)
    o, lse = flash_attention(**p)
    # flash_attention's matmuls are a stack of one head: a BLAS may sum them in another order
    bound = {key: p[key] for key in ("block_kv", "scale", "causal", "causal_align")}
    assert_same_attention((trace.o, trace.lse), (o, lse), p["q"], p["k"], p["v"], **bound)
    for step in trace.tile_steps():
        assert (step.m >= step.m_prev).all() and ((step.alpha >= 0) & (step.alpha <= 1)).all()
