"""The bug zoo: the correct variant is exact; each bug diverges where it first bites."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flashviz.core.inner_step import attn_fwd_inner
from flashviz.core.masking import visible
from flashviz.lab.bugzoo import (
    BUGS,
    LOG_OVERFLOW,
    LOG_UNDERFLOW,
    debug_row,
    first_bite,
    first_divergence,
    online_step,
)

NEG = -np.inf
# (bug, row, chunk, first diverging step): chunks before it are exact, it is not.
CASES = [
    ("no_rescale_o", [1.0, 0.0, 0.5, 0.2, 3.0, 1.0], 2, 2),  # the max first rises at chunk 2
    ("no_rescale_l", [1.0, 0.0, 0.5, 0.2, 3.0, 1.0], 2, 2),
    ("wrong_sign", [1.0, 0.0, 0.5, 0.2, 3.0, 1.0], 2, 2),
    ("stale_l", [1.0, 0.0, 0.5, 0.2, 3.0, 1.0], 2, 1),  # bites at the second chunk
    ("no_max", [1.0, 2.0, 30.0, 3.0, 800.0, 1.0], 2, 2),  # exp(800) overflows
    ("mask_1e4", [-2e4, -2e4 + 1, -2e4, NEG, 1.0, 0.0], 2, 1),  # real scores below -1e4
    ("mask_5e4", [-6e4, -6e4 + 1, -6e4, NEG, 1.0, 0.0], 2, 1),
    ("mask_1e4", [NEG, NEG, 1.0, 2.0], 2, 0),  # a chunk with every key masked
    ("no_inf_guard", [1.0, 2.0, NEG, NEG, 0.5], 2, None),  # harmless once a key was seen
    ("no_inf_guard", [NEG, NEG, 1.0, 2.0], 2, 0),  # (-inf) - (-inf) = NaN
]


@pytest.mark.parametrize(("bug", "row", "chunk", "first"), CASES)
def test_bug_diverges_exactly_where_it_first_bites(rng, bug, row, chunk, first):
    values = rng.standard_normal((len(row), 3))
    correct = debug_row(row, chunk, values)
    buggy = debug_row(row, chunk, values, bug=bug)
    assert first_divergence(correct) is None
    assert first_divergence(buggy) == first
    bite = first_bite(bug, row, chunk)
    assert (bite.index if bite else None) == first
    for before in buggy[: first if first is not None else len(buggy)]:
        assert before.error <= 1e-9


def test_mask_5e4_survives_what_breaks_mask_1e4():
    row = [-2e4, -2e4 + 1, -2e4, NEG, 1.0, 0.0]
    assert first_divergence(debug_row(row, 2, bug="mask_5e4")) is None


def test_every_bug_has_a_case_and_an_explanation():
    assert {c[0] for c in CASES} == set(BUGS)
    assert all(b.title and len(b.explanation) > 40 for b in BUGS.values())
    assert all(len(b.bites_when) > 20 for b in BUGS.values())


@pytest.mark.parametrize("chunk", [1, 3, 7, 50])
def test_correct_variant_is_exact_on_random_rows(rng, chunk):
    row = rng.standard_normal(37) * 20
    row[rng.random(37) < 0.3] = NEG
    steps = debug_row(row, chunk, rng.standard_normal((37, 4)))
    assert max(st.error for st in steps) <= 1e-12
    assert [st.cols.start for st in steps] == list(range(0, 37, chunk))


@settings(max_examples=100, deadline=None)
@given(
    row=st.lists(st.one_of(st.floats(-1e5, 1e5), st.just(NEG)), min_size=1, max_size=40),
    chunk=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_correct_variant_is_exact_on_any_row(row, chunk, seed):
    values = np.random.default_rng(seed).standard_normal((len(row), 2))
    steps = debug_row(row, chunk, values)
    assert max(s.error for s in steps) <= 1e-12  # |v| ~ 1: a few ulps of float64
    assert all(np.isfinite(s.estimate).all() for s in steps)


def test_correct_online_step_equals_the_stepper(rng):
    q, k, v = rng.standard_normal((5, 4)), rng.standard_normal((7, 4)), rng.standard_normal((7, 4))
    m, l, o = rng.standard_normal(5), rng.random(5) + 1, rng.standard_normal((5, 4))
    mask = visible(range(3, 8), range(0, 7), 0)
    ref = attn_fwd_inner(m, l, o, q, k, v, scale=0.5, visible=mask)
    got = online_step(m, l, o, ref.s_ij, v)
    np.testing.assert_allclose(got.m, ref.m_i, rtol=0, atol=0)
    np.testing.assert_allclose(got.l, ref.l_i, rtol=1e-15)
    np.testing.assert_allclose(got.o, ref.o_i, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(got.alpha, ref.alpha, rtol=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"scores": []}, "scores must be a non-empty 1-D row"),
        ({"scores": [1.0, np.nan]}, "scores must be finite or -inf"),
        ({"scores": [1.0, 2.0], "values": [1.0]}, r"values must be finite with shape \(2,\)"),
        ({"scores": [1.0, 2.0], "chunk": 0}, "chunk must be a positive integer"),
        ({"scores": [1.0, 2.0], "bug": "typo"}, "bug must be None or one of"),
    ],
)
def test_bad_input_is_named(kwargs, pattern):
    args = {"chunk": 2, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        debug_row(**args)


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (("typo", [1.0], 1), "bug must be one of"),
        ((None, [1.0], 1), "bug must be one of"),
        (("no_max", [[1.0]], 1), "scores must be a non-empty 1-D row"),
        (("no_max", [1.0, np.inf], 1), "scores must be finite or -inf"),
        (("no_max", [1.0], 0), "chunk must be a positive integer"),
    ],
)
def test_first_bite_bad_input_is_named(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        first_bite(*args)


# Rows on a grid of step 0.25 around an offset: a rise of the max is 0 or >= 0.25, every key
# within 6 of the max, so each mistake changes the result by 0 or far more than the
# tolerance; the offsets put the scores where exp overflows, underflows, or meets a stand-in.
@settings(max_examples=150, deadline=None)
@given(
    grid=st.lists(st.one_of(st.none(), st.integers(-12, 12)), min_size=1, max_size=30),
    chunk=st.integers(1, 9),
    offset=st.sampled_from([0.0, 1000.0, -2e4, -6e4]),
    seed=st.integers(0, 2**32 - 1),
)
def test_first_bite_predicts_the_first_divergence(grid, chunk, offset, seed):
    row = np.array([-np.inf if g is None else offset + 0.25 * g for g in grid])
    values = np.random.default_rng(seed).standard_normal((row.size, 3))
    for bug in BUGS:
        bite = first_bite(bug, row, chunk)
        assert first_divergence(debug_row(row, chunk, values, bug)) == (
            bite.index if bite else None
        ), bug


def test_first_bite_explains_with_the_numbers():
    row = [1.0, 0.0, 0.5, 0.2, 3.0, 1.0]
    assert "rose from 1 to 3" in first_bite("no_rescale_o", row, 2).reason
    assert "exp(m - m_prev) = 7.39" in first_bite("wrong_sign", row, 2).reason
    assert "l = 1.368" in first_bite("stale_l", row, 2).reason
    assert "(-inf) - (-inf) = NaN" in first_bite("no_inf_guard", [NEG, 1.0], 1).reason
    assert "outweigh" in first_bite("mask_1e4", [-3e4, NEG], 1).reason


def test_no_max_thresholds_are_where_exp_leaves_float64():
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(np.float64(LOG_OVERFLOW) + 1e-9))
    assert np.isfinite(np.exp(np.float64(LOG_OVERFLOW) - 1e-9))
    assert 0 < np.exp(LOG_UNDERFLOW) < np.finfo(np.float64).tiny  # subnormal
    values = np.array([[0.5], [1.0]])
    for row, first in [
        ([LOG_OVERFLOW - 1.0, 1.0], None),
        ([LOG_OVERFLOW + 1.0, 1.0], 0),
        ([LOG_OVERFLOW - 0.5, LOG_OVERFLOW - 0.5], 1),  # each exp is finite, their sum is not
        ([-700.0, -750.0], None),
        ([-750.0, -760.0], 0),  # every exp is 0
    ]:
        bite = first_bite("no_max", row, 1)
        assert (bite.index if bite else None) == first, row
        assert first_divergence(debug_row(row, 1, values, "no_max")) == first, row
