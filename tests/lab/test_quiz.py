"""Quiz logic: the right answers are the trace's own values, grading tolerance and feedback."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz import LoadStep, TileStep, Trace, WriteStep, record_trace
from flashviz.figures.stats import changed_rows
from flashviz.lab.patterns import make_inputs
from flashviz.lab.quiz import (
    MAX_ROWS,
    REL_TOL,
    Item,
    NumberQuestion,
    fmt,
    grade_number,
    grade_numbers,
    grade_rows,
    is_right,
    parse_number,
    pick_rows,
    quiz_for,
)

CASES = [  # n_q, n_k, block_q, block_kv, causal, align: ragged, empty rows, both alignments
    (11, 7, 4, 3, True, "bottom_right"),  # n_q > n_k: the top rows see no key
    (7, 13, 3, 5, True, "top_left"),
    (13, 9, 5, 4, False, "bottom_right"),
    (40, 24, 32, 8, True, "bottom_right"),  # more rows than MAX_ROWS in a block
]


@pytest.fixture(params=[(c, p) for c in CASES for p in ("random", "spiky")], ids=str)
def trace(request, rng):
    (n_q, n_k, bq, bkv, causal, align), pattern = request.param
    seed = int(rng.integers(2**31))
    q, k, v = (x.astype(np.float32) for x in make_inputs(pattern, n_q, n_k, 6, seed))
    return record_trace(q, k, v, block_q=bq, block_kv=bkv, causal=causal, causal_align=align)


def handmade() -> Trace:
    """Tile 1 raises the max of rows 0 and 2 and not of rows 1 and 3; d = 2, 4 x 4."""
    q = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], np.float32)
    k = np.array([[1, 0], [0, 0], [2, 0], [0, -1]], np.float32)
    v = np.arange(8, dtype=np.float32).reshape(4, 2)
    return record_trace(q, k, v, block_q=4, block_kv=2)


def asked_local(step, quiz) -> list[int]:
    return [int(item.label.split()[1]) - step.rows.start for item in quiz.numbers.items]


def test_answers_are_the_traces_values(trace):
    """Every item's answer equals what the step computes; the trace's values are graded right."""
    for k, step in enumerate(trace.steps):
        quiz = quiz_for(trace, k)
        assert quiz.numbers is not None and quiz.step_index == k
        if isinstance(step, LoadStep):
            assert [i.expected for i in quiz.numbers.items] == [-np.inf, 0.0, 0.0]
            assert np.isneginf(step.m).all() and (step.l == 0).all() and (step.o == 0).all()
            continue
        local = asked_local(step, quiz)
        assert 1 <= len(local) <= MAX_ROWS and local == sorted(set(local))
        assert len(local) == min(len(step.rows), MAX_ROWS)
        truth = step.m if isinstance(step, TileStep) else step.lse
        assert isinstance(step, TileStep | WriteStep)
        for item, a in zip(quiz.numbers.items, local, strict=True):
            assert is_right(item, float(truth[a])), (k, item, truth[a])
            assert grade_number(item, fmt(truth[a])).ok  # the number as displayed
        if isinstance(step, TileStep):
            np.testing.assert_array_equal([i.expected for i in quiz.numbers.items], step.m[local])
            finite = [a for a in local if np.isfinite(step.m_prev[a])]
            if not finite:
                assert quiz.rows is None
                continue
            assert quiz.rows.options == tuple(step.rows.start + a for a in finite)
            changed = changed_rows(step)
            assert quiz.rows.answer == {step.rows.start + a for a in finite if changed[a]}
            assert all(f.ok for f in grade_rows(quiz.rows, quiz.rows.answer))
            assert all(step.alpha[a] < 1 for a in finite if changed[a])
            assert all(step.alpha[a] == 1 for a in finite if not changed[a])


def test_cases_reach_rescaled_unchanged_and_empty_rows():
    """The answers test above meets rows that rescale, rows that do not, -inf answers."""
    rescaled = unchanged = empty = 0
    for (n_q, n_k, bq, bkv, causal, align), pattern in [(c, "random") for c in CASES]:
        q, k, v = make_inputs(pattern, n_q, n_k, 6, 0)
        t = record_trace(q, k, v, block_q=bq, block_kv=bkv, causal=causal, causal_align=align)
        for n, step in enumerate(t.steps):
            if not isinstance(step, LoadStep):  # (a load's m_i = -inf is always asked)
                empty += sum(np.isneginf(i.expected) for i in quiz_for(t, n).numbers.items)
            if isinstance(step, TileStep):
                rescaled += changed_rows(step).sum()
                unchanged += (~step.max_changed & np.isfinite(step.m_prev)).sum()
    assert rescaled and unchanged and empty


# tile j: (rows whose max rose, rows asked). Tile 2 holds the late key: 19 rows rise, 4 asked
# spread over them (their 1st, 7th, 13th, 19th: 0, 11, 20, 31), 4 over the 28 others (1, 10,
# 21, 30: they rose too). At tile 3 only rows 6 and 10 rise: both asked, 6 others spread.
BIG_BLOCK = {
    2: ([0, 1, 3, 4, 9, 10, 11, 12, 13, 14, 15, 19, 20, 21, 23, 26, 27, 30, 31],
        [0, 1, 10, 11, 20, 21, 30, 31]),
    3: ([6, 10], [0, 6, 7, 10, 14, 19, 25, 31]),
}  # fmt: skip


@pytest.mark.parametrize("j", sorted(BIG_BLOCK))
def test_big_block_asks_spread_rows_with_rescaled_ones(j):
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((n, 4)).astype(np.float32) for n in (32, 32, 32))
    k[20] = 5 * q.mean(axis=0) / np.linalg.norm(q.mean(axis=0))  # a late key raises the max
    trace = record_trace(q, k, v, block_q=32, block_kv=8)
    step_index, step = next((n, s) for n, s in enumerate(trace.steps) if getattr(s, "j", 0) == j)
    quiz = quiz_for(trace, step_index)
    assert len(quiz.numbers.items) == MAX_ROWS and "8 of the block's 32 rows" in quiz.note
    asked, rose = asked_local(step, quiz), np.flatnonzero(changed_rows(step)).tolist()
    assert (rose, asked) == BIG_BLOCK[j]
    assert quiz.rows.options == tuple(asked)  # block 0: local rows are global rows
    assert quiz.rows.answer == {a for a in asked if a in rose}  # exactly those that rose


def tile_with(trace, predicate) -> tuple[int, TileStep, int]:
    for n, s in enumerate(trace.steps):
        if isinstance(s, TileStep):
            for a in range(len(s.rows)):
                if predicate(s, a):
                    return n, s, a
    raise AssertionError("no such tile row")


def feedback_for(trace, n: int, step: TileStep, a: int, answer: object):
    quiz = quiz_for(trace, n)
    local = asked_local(step, quiz)
    return grade_number(quiz.numbers.items[local.index(a)], answer)


def test_feedback_explains_a_rising_and_a_steady_max():
    trace = handmade()
    quiz = quiz_for(trace, 2)  # load, tile 0, tile 1
    step = trace.steps[2]
    scale = trace.scale
    right = grade_number(quiz.numbers.items[0], fmt(2 * scale))
    assert right.ok and right.message == (
        f"row 0: right. max of the S row is {fmt(2 * scale)} > m_old {fmt(scale)}, "
        f"so m_new = {fmt(2 * scale)}."
    )
    wrong = grade_number(quiz.numbers.items[0], fmt(scale))  # forgot the new tile
    assert not wrong.ok and wrong.message.startswith(f"row 0: you entered {fmt(scale)}, but max")
    steady = grade_number(quiz.numbers.items[1], "0")
    assert steady.ok and "<= m_old 0, so m_new = 0." in steady.message
    assert quiz.rows.options == (0, 1, 2, 3) and quiz.rows.answer == {0, 2}
    assert np.array_equal(changed_rows(step), [True, False, True, False])
    assert quiz.numbers.table["key 2"] == [fmt(2 * scale), "0", fmt(2 * scale), fmt(-2 * scale)]


def test_feedback_for_masked_and_empty_rows():
    q, k, v = (np.random.default_rng(2).standard_normal((n, 3)) for n in (9, 4, 4))
    trace = record_trace(q, k, v, block_q=3, block_kv=2, causal=True)  # rows 0..4 see no key
    n, step, a = tile_with(trace, lambda s, a: np.isneginf(s.m[a]))
    assert not feedback_for(trace, n, step, a, "0").ok
    assert not feedback_for(trace, n, step, a, -1e30).ok
    for typed in ("-inf", " -INF ", "\u2212\u221e", "-infinity", float("-inf")):
        fb = feedback_for(trace, n, step, a, typed)
        assert fb.ok and "m stays -inf" in fb.message
    n, step, a = tile_with(
        trace, lambda s, a: np.isfinite(s.m_prev[a]) and np.isneginf(s.s[a]).all()
    )
    fb = feedback_for(trace, n, step, a, fmt(step.m_prev[a]))
    assert fb.ok and "masked for this row, so m stays m_old" in fb.message
    n, step, a = tile_with(trace, lambda s, a: np.isfinite(s.m[a]))
    assert not feedback_for(trace, n, step, a, "-inf").ok


def test_unparseable_and_missing_answers():
    item = Item("row 3", 1.5, "max of the S row is 1.5.")
    assert "'abc' is not a number" in grade_number(item, "abc").message
    assert not grade_number(item, "nan").ok and not grade_number(item, "").ok
    assert grade_number(item, "").message == "row 3: no answer. max of the S row is 1.5."
    assert parse_number("  \u22122.5 ") == -2.5 and parse_number("") is None
    with pytest.raises(ValueError, match="one entry per item"):
        grade_numbers(NumberQuestion("?", (item,)), [])


def test_rows_feedback_says_missed_and_wrongly_picked():
    q = quiz_for(handmade(), 2).rows
    fb = {f.label: f for f in grade_rows(q, [2, 3])}
    assert [f.ok for f in fb.values()] == [False, True, True, False]
    assert fb["row 0"].message.startswith("row 0: missed. the max rises from")
    assert (
        "alpha = exp(" in fb["row 0"].message and "< 1 shrinks its l and o" in fb["row 0"].message
    )
    assert fb["row 3"].message.startswith("row 3: wrongly picked. the max stays 0")
    assert "alpha = 1: nothing is rescaled" in fb["row 3"].message
    assert all(f.ok for f in grade_rows(q, [0, 2]))
    with pytest.raises(ValueError, match="chosen must be among the options"):
        grade_rows(q, [10_000])


def test_quiz_for_validates(trace):
    with pytest.raises(ValueError, match="step_index must be in"):
        quiz_for(trace, len(trace.steps))
    with pytest.raises(TypeError, match="trace must be"):
        quiz_for("trace", 0)


def test_pick_rows_keeps_interesting_rows():
    interesting = np.zeros(30, bool)
    interesting[[3, 17, 29]] = True
    picked = pick_rows(interesting)
    assert len(picked) == MAX_ROWS and {3, 17, 29} <= set(picked.tolist())
    assert list(picked) == sorted(set(picked.tolist()))
    assert list(pick_rows(np.zeros(5, bool))) == [0, 1, 2, 3, 4]


values = st.one_of(
    st.just(0.0),
    st.floats(1e-30, 1e30).flatmap(lambda x: st.sampled_from([x, -x])),
)


@given(values, st.floats(0, 1e6))
def test_true_and_displayed_answers_pass(expected, scale):
    item = Item("row 0", expected, "", scale=scale)
    assert is_right(item, expected)
    assert is_right(item, float(fmt(expected)))  # copied from the screen (4 digits)
    assert grade_number(item, fmt(expected)).ok


@given(values, st.floats(0, 1e6), st.floats(1.01, 1e6), st.booleans())
def test_beyond_tolerance_fails(expected, scale, factor, up):
    item = Item("row 0", expected, "", scale=scale)
    delta = factor * item.tol if item.tol > 0 else 1e-300
    given_value = expected + delta if up else expected - delta
    assert given_value != expected
    assert not is_right(item, given_value)
    assert not is_right(item, -np.inf) and not is_right(item, np.inf)


def test_tolerance_is_twice_the_display_rounding():
    """The worst 4-digit rounding (half a unit in the 4th digit) passes, 2.5x it fails."""
    x = 1.0005  # shown as 1 (or 1.001): off by 5e-4, the worst case
    assert is_right(Item("r", x, ""), 1.0) and REL_TOL == 2 * 5e-4
    assert not is_right(Item("r", x, ""), x - 2.5 * 5e-4 * x)


def one_write_step(m: float, l: float) -> Trace:
    """A trace holding one write step of one row with state (m, l)."""
    m_, l_ = np.array([m], np.float32), np.array([l], np.float32)
    with np.errstate(divide="ignore"):
        lse = m_ + np.log(l_)
    step = WriteStep("write", 0, range(1), m_, l_, np.zeros((1, 1)), np.zeros((1, 1)), lse)
    x = np.zeros((1, 1), np.float32)
    return Trace(x, x, x, 1.0, False, "bottom_right", 1, 1, steps=[step], o=step.o, lse=step.lse)


@given(st.floats(-5, 5), st.floats(1, 1e4))
def test_logsumexp_from_the_shown_numbers_passes(lse, l):
    """A student adds the shown m to the log of the shown l: that passes, even when L ~ 0."""
    m = lse - np.log(l)  # m and log l cancel when L is small
    (item,) = quiz_for(one_write_step(m, l), 0).numbers.items
    shown_m, shown_l = float(fmt(np.float32(m))), float(fmt(np.float32(l)))
    assert grade_number(item, fmt(shown_m + np.log(shown_l))).ok
    assert item.why.startswith(f"L = m + log l = {fmt(np.float32(m))} + log(")


def test_logsumexp_of_a_row_with_no_key():
    (item,) = quiz_for(one_write_step(-np.inf, 0.0), 0).numbers.items
    assert np.isneginf(item.expected) and grade_number(item, "-inf").ok
    assert not grade_number(item, "0").ok and "log 0 = -inf" in item.why
