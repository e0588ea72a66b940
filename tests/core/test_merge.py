"""The merge of softmax states: its algebra (hypothesis), the online softmax it folds into,
and (o, lse) pairs over disjoint key sets against the reference."""

from __future__ import annotations

from functools import reduce

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz import attention_reference, merge_outputs, merge_states
from flashviz.core.inner_step import initial_state, online_update
from flashviz.core.merge import State, merge_update, output_state

DTYPES = [np.float32, np.float64]


def _states(seed: int, count: int, rows: int, d: int, spread: float, dtype: type) -> list[State]:
    """``count`` random states (m, l >= 1, o), about a quarter of their rows empty."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        empty = rng.random(rows) < 0.25
        m = np.where(empty, -np.inf, rng.standard_normal(rows) * spread)
        l = np.where(empty, 0.0, 1 + rng.random(rows) * 10)
        o = np.where(empty[:, None], 0.0, rng.standard_normal((rows, d)) * l[:, None])
        out.append(State(*(x.astype(dtype) for x in (m, l, o))))
    return out


@st.composite
def state_lists(draw, count: int | None = None):
    count = draw(st.integers(2, 12)) if count is None else count
    return _states(
        draw(st.integers(0, 2**32 - 1)),
        count,
        draw(st.integers(1, 6)),
        draw(st.integers(1, 4)),
        10.0 ** draw(st.floats(-2, 3)),  # scores up to ~1e3 apart
        draw(st.sampled_from(DTYPES)),
    )


def _magnitude(states: list[State]) -> State:
    """The merge of the states with |o|: what the rounding of a merged o is relative to."""
    return reduce(merge_states, [State(m, l, np.abs(o)) for m, l, o in states])


def _assert_close(x: State, y: State, size: State, ulps: float = 16) -> None:
    """m equal; l and o within ``ulps`` roundings of their magnitude."""
    eps = float(np.finfo(x.l.dtype).eps)
    np.testing.assert_array_equal(x.m, y.m)
    assert (np.abs(x.l - y.l) <= ulps * eps * size.l).all(), (x.l, y.l)
    assert (np.abs(x.o - y.o) <= ulps * eps * size.o).all(), (x.o, y.o)


def _tree(states: list[State]) -> State:
    """Pairwise reduction: merge neighbours, then neighbours of the results, ..."""
    while len(states) > 1:
        pairs = [merge_states(*states[i : i + 2]) for i in range(0, len(states) - 1, 2)]
        states = pairs + states[len(states) - len(states) % 2 :]
    return states[0]


@given(state_lists(count=2))
def test_merge_is_commutative_exactly(states):
    a, b = states
    for x, y in zip(merge_states(a, b), merge_states(b, a), strict=True):
        np.testing.assert_array_equal(x, y)


@given(state_lists(count=3))
def test_merge_is_associative_to_rounding(states):
    a, b, c = states
    left = merge_states(merge_states(a, b), c)
    right = merge_states(a, merge_states(b, c))
    _assert_close(left, right, _magnitude(states))


@given(state_lists())
def test_a_tree_reduction_equals_a_sequential_one(states):
    _assert_close(reduce(merge_states, states), _tree(states), _magnitude(states))


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_empty_state_is_the_identity_without_nan(rng, dtype):
    rows, d = 6, 3
    empty = State(*initial_state((), rows, d, dtype))
    (a,) = _states(int(rng.integers(2**32)), 1, rows, d, 5.0, dtype)
    a.m[:2], a.l[:2], a.o[:2] = [-np.inf, 1.5], [0, 2], [[0] * d, [3] * d]  # both kinds of row
    with np.errstate(all="raise"):  # no warning: no 0 * inf, no inf - inf
        merged = [merge_states(empty, a), merge_states(a, empty)]
        nothing = merge_states(empty, empty)
    for got in merged:
        for x, y in zip(got, a, strict=True):
            np.testing.assert_array_equal(x, y)
            assert x.dtype == dtype
    assert np.isneginf(nothing.m).all() and (nothing.l == 0).all() and (nothing.o == 0).all()


@st.composite
def key_rows(draw):
    """Scores (rows, n_k) with some keys masked (-inf) and values (n_k, d)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows, n_k, d = draw(st.integers(1, 5)), draw(st.integers(1, 24)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from(DTYPES))
    s = rng.standard_normal((rows, n_k)) * 10.0 ** draw(st.floats(-2, 3))
    s[rng.random((rows, n_k)) < draw(st.floats(0, 1))] = -np.inf
    return s.astype(dtype), rng.standard_normal((n_k, d)).astype(dtype)


def _key_state(s_j: np.ndarray, v_j: np.ndarray) -> State:
    """One key as a state, per row: (s_j, 1, v_j), or the empty state where it is masked."""
    seen = np.isfinite(s_j)
    return State(s_j, seen.astype(s_j.dtype), np.where(seen[:, None], v_j, 0).astype(s_j.dtype))


@given(key_rows())
def test_folding_single_keys_left_to_right_is_the_online_softmax_bit_for_bit(keys):
    s, v = keys
    rows, n_k = s.shape
    online = merged = State(*initial_state((), rows, v.shape[1], s.dtype.type))
    for j in range(n_k):
        # exact by construction: the same elementwise operations on the same values, and a
        # one-key P~ V_j is a matmul with one product per entry, which IEEE rounds once,
        # whatever BLAS computes it, as merge's alpha_b * v_j does
        online = State(*online_update(*online, s[:, j : j + 1], v[j : j + 1])[:3])
        merged = merge_states(merged, _key_state(s[:, j], v[j]))
        for x, y in zip(merged, online, strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("align", ["bottom_right", "top_left"])
def test_merge_outputs_of_two_key_sets_is_attention_over_their_union(rng, dtype, align):
    n_q, n_k, cut, d = 9, 6, 2, 5
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in ((n_q, d), (n_k, d), (n_k, d)))
    s = q.astype(np.float64) @ k.T.astype(np.float64) / np.sqrt(d)
    offset = n_k - n_q if align == "bottom_right" else 0
    s[np.arange(n_k)[None, :] > np.arange(n_q)[:, None] + offset] = -np.inf
    halves = []
    for cols in (slice(0, cut), slice(cut, n_k)):
        lse = np.logaddexp.reduce(s[:, cols], axis=1)  # -inf for a row that sees none
        w = np.exp(s[:, cols] - np.where(np.isneginf(lse), 0, lse)[:, None])
        halves.append(((w @ v[cols].astype(np.float64)).astype(dtype), lse.astype(dtype)))
    assert any(np.isneginf(h[1]).any() for h in halves)  # a row that sees none of a half
    o, lse = merge_outputs(*halves)
    o_ref, lse_ref = attention_reference(q, k, v, causal=True, causal_align=align)
    tol = 8 * float(np.finfo(dtype).eps)
    np.testing.assert_allclose(o, o_ref, rtol=0, atol=tol * 4)
    np.testing.assert_allclose(lse, lse_ref, rtol=0, atol=tol * 4)
    assert np.array_equal(np.isneginf(lse), np.isneginf(lse_ref)) and not np.isnan(o).any()
    o_swap, lse_swap = merge_outputs(*halves[::-1])
    np.testing.assert_array_equal(o, o_swap)
    np.testing.assert_array_equal(lse, lse_swap)


def test_output_state_is_lse_one_o_or_the_empty_state():
    o = np.array([[1.0, 2.0], [0.0, 0.0]])
    lse = np.array([0.5, -np.inf])
    m, l, o_s = output_state(o, lse)
    np.testing.assert_array_equal(m, lse)
    np.testing.assert_array_equal(l, [1.0, 0.0])
    np.testing.assert_array_equal(o_s, o)


@given(state_lists(count=2))
def test_merge_update_shows_the_factors_each_side_was_rescaled_by(states):
    a, b = states
    up = merge_update(a, b)
    for x, y in zip(up[:3], merge_states(a, b), strict=True):
        np.testing.assert_array_equal(x, y)
    for alpha, side in ((up.alpha_a, a), (up.alpha_b, b)):
        assert ((alpha >= 0) & (alpha <= 1)).all()
        assert (alpha[np.isneginf(side.m)] == 0).all()  # a side with no key weighs nothing
        seen = np.isfinite(side.m)
        np.testing.assert_allclose(alpha[seen], np.exp(side.m[seen] - up.m[seen]), rtol=1e-6)
        assert (alpha[seen & (side.m == up.m)] == 1).all()  # the side with the max: 1


def _pair(dtype=np.float64):
    rng = np.random.default_rng(0)  # the values do not matter here, only shapes and checks
    o, lse = rng.standard_normal((2, 3, 4)).astype(dtype), rng.standard_normal((2, 3)).astype(dtype)
    return o, lse, (lse, np.ones_like(lse), o)


BAD_STATES = {  # how b is broken: the message
    "a list of two": (lambda m, l, o: [m, l], r"^b must be a tuple \(m, l, o\), got 2 items$"),
    "not a tuple": (lambda m, l, o: o, r"^b must be a tuple \(m, l, o\), got ndarray$"),
    "integers": (lambda m, l, o: (m, l, o.astype(int)), r"^b's o must be a float32 or float64"),
    "two dtypes": (lambda m, l, o: (m, l, o.astype(np.float32)), r"^b's \(m, l, o\) must share"),
    "m NaN": (lambda m, l, o: (m * np.nan, l, o), r"^b's m must be finite, or -inf"),
    "m +inf": (lambda m, l, o: (m + np.inf, l, o), r"^b's m must be finite, or -inf"),
    "l negative": (lambda m, l, o: (m, -l, o), r"^b's l must be finite and >= 0"),
    "l inf": (lambda m, l, o: (m, l * np.inf, o), r"^b's l must be finite and >= 0"),
    "o inf": (lambda m, l, o: (m, l, o * np.inf), r"^b's o must be finite"),
    "m of other rows": (lambda m, l, o: (m[:, :2], l, o), r"^b's per-row values must have shape"),
    "o without d": (lambda m, l, o: (m, l, o[..., 0]), r"^b's per-row values must have shape"),
    "fewer rows": (lambda m, l, o: (m[:1], l[:1], o[:1]), r"^a and b must have the same shapes"),
    "broadcastable": (lambda m, l, o: (m[:1], l[:1], o[:1, :, :1] + 0 * o[:1]),
                      r"^a and b must have the same shapes"),
}  # fmt: skip


@pytest.mark.parametrize("bad", BAD_STATES, ids=list(BAD_STATES))
def test_merge_states_refuses_what_is_no_state_naming_it(bad):
    """No NaN from inf states, no silent broadcasting, no AttributeError from lists."""
    *_, state = _pair()
    change, message = BAD_STATES[bad]
    with pytest.raises((ValueError, TypeError), match=message):
        merge_states(state, change(*state))


BAD_OUTPUTS = {
    "a list of three": (lambda o, lse: [o, lse, lse], r"^b must be a tuple \(o, lse\), got 3"),
    "lse NaN": (lambda o, lse: (o, lse * np.nan), r"^b's lse must be finite, or -inf"),
    "o NaN": (lambda o, lse: (o * np.nan, lse), r"^b's o must be finite"),
    "lse of other rows": (lambda o, lse: (o, lse[:, :1]), r"^b's per-row values must have"),
    "fewer heads": (lambda o, lse: (o[:1], lse[:1]), r"^a and b must have the same shapes"),
    "float32": (lambda o, lse: (o.astype(np.float32), lse.astype(np.float32)),
                r"^a and b must share one dtype"),
}  # fmt: skip


@pytest.mark.parametrize("bad", BAD_OUTPUTS, ids=list(BAD_OUTPUTS))
def test_merge_outputs_refuses_what_is_no_output_naming_it(bad):
    o, lse, _ = _pair()
    change, message = BAD_OUTPUTS[bad]
    with pytest.raises((ValueError, TypeError), match=message):
        merge_outputs((o, lse), change(o, lse))


def test_lists_are_merged_as_arrays():
    o, lse, state = _pair()
    as_lists = tuple(x.tolist() for x in state)
    for got, want in zip(merge_states(state, as_lists), merge_states(state, state), strict=True):
        np.testing.assert_array_equal(got, want)
    got_o, got_lse = merge_outputs((o.tolist(), lse.tolist()), (o, lse))
    want_o, want_lse = merge_outputs((o, lse), (o, lse))
    np.testing.assert_array_equal(got_o, want_o)
    np.testing.assert_array_equal(got_lse, want_lse)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e308])
@pytest.mark.parametrize("where", ["m", "l", "o"])
@pytest.mark.parametrize("row", [0, 2])
def test_a_merged_state_is_finite_or_the_input_is_refused(value, where, row):
    """Any one odd value in a state: either the merge refuses it, or nothing in the result
    is NaN or infinite (but m, -inf for a row with no key)."""
    _, _, (m, l, o) = _pair()
    parts = {"m": m.copy(), "l": l.copy(), "o": o.copy()}
    parts[where][0, row] = value
    if where == "m" and value == -np.inf:
        parts["l"][0, row], parts["o"][0, row] = 0.0, 0.0  # the empty state of that row
    try:
        got = merge_states((m, l, o), (parts["m"], parts["l"], parts["o"]))
    except ValueError:
        return
    assert not np.isnan(got.m).any() and np.isfinite(got.l).all() and np.isfinite(got.o).all()
