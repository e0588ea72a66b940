"""Typed rows parse exactly or fail with a message; each row pattern makes its bugs bite."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz.lab.bugzoo import BUGS
from flashviz.lab.row_debugger import debug_row, first_bad_chunk, first_bite
from flashviz.lab.row_input import (
    DEMO_PATTERN,
    MAX_ROW,
    MAX_TEXT_CHARS,
    ROW_PATTERNS,
    format_row,
    make_row,
    masked_prefix,
    masked_tail_start,
    parse_row,
    row_values,
)

NEG = -np.inf


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1, 2, 3", [1.0, 2.0, 3.0]),
        ("1 2\n3\t4", [1.0, 2.0, 3.0, 4.0]),
        ("1;2 ,\n 3", [1.0, 2.0, 3.0]),
        ("[0.5, -inf, 2e3]", [0.5, NEG, 2000.0]),
        ("(-1.5E-2, .5, 7.)", [-0.015, 0.5, 7.0]),
        ("-Infinity, \u22123, +4", [NEG, -3.0, 4.0]),  # a pasted minus sign
        ("  -INF  ", [NEG]),
    ],
)
def test_parse_reads_separators_brackets_and_words(text, expected):
    got = parse_row(text)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the row is empty"),
        (" , ;\n ", "the row is empty"),
        ("[]", "the row is empty"),
        ("1, abc, 3", r"entry 2 \('abc'\) is not a number"),
        ("1 2 3 4e", r"entry 4 \('4e'\) is not a number"),
        ("1_000", r"entry 1 \('1_000'\) is not a number"),
        ("0x10", r"entry 1 \('0x10'\) is not a number"),
        ("1, nan", "entry 2 is NaN"),
        ("NaN", "entry 1 is NaN"),
        ("1, inf", r"entry 2 is \+inf: only -inf"),
        ("+Infinity", r"entry 1 is \+inf"),
        ("1e999", r"entry 1 \(1e999\) is too large for float64"),
        ("2, -1e400", r"entry 2 \(-1e400\) is too large for float64; write -inf"),
        (" ".join(["1"] * (MAX_ROW + 1)), f"the row has {MAX_ROW + 1} numbers; at most {MAX_ROW}"),
    ],
    ids=lambda x: x if len(str(x)) < 40 else f"{str(x)[:20]}...",
)
def test_parse_rejects_bad_rows_with_a_message(text, message):
    with pytest.raises(ValueError, match=message):
        parse_row(text)


def test_parse_rejects_a_non_string_and_takes_a_limit():
    with pytest.raises(ValueError, match="text must be a string, got list"):
        parse_row([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at most 2 are allowed"):
        parse_row("1 2 3", max_len=2)
    assert parse_row(" ".join(["-inf"] * MAX_ROW)).size == MAX_ROW


@given(
    row=st.lists(
        st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.just(NEG)),
        min_size=1,
        max_size=50,
    ),
    sep=st.sampled_from([", ", " ", "\n", ";", ",\n", "\t"]),
)
def test_format_then_parse_is_exact(row, sep):
    scores = np.array(row, dtype=np.float64)
    np.testing.assert_array_equal(parse_row(format_row(scores)), scores)
    np.testing.assert_array_equal(parse_row(format_row(scores).replace(", ", sep)), scores)


# Patterns ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", list(ROW_PATTERNS))
@pytest.mark.parametrize(("n", "chunk"), [(1, 1), (2, 1), (24, 4), (37, 5), (10, 16)])
def test_patterns_are_valid_rows_reproducible_from_the_seed(pattern, n, chunk):
    row = make_row(pattern, n, chunk, seed=7)
    assert row.shape == (n,) and row.dtype == np.float64
    assert not np.isnan(row).any() and not np.isposinf(row).any()
    np.testing.assert_array_equal(row, make_row(pattern, n, chunk, seed=7))
    if pattern != "empty row" and n > 3:
        assert not np.array_equal(row, make_row(pattern, n, chunk, seed=8))


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8])
def test_increasing_raises_the_max_in_every_chunk(chunk, rng):
    row = make_row("increasing", 29, chunk, seed=int(rng.integers(2**31)))
    rises = [row[c : c + chunk].max() - row[:c].max() for c in range(chunk, 29, chunk)]
    assert min(rises) >= 0.2


@pytest.mark.parametrize(("n", "chunk"), [(24, 4), (24, 1), (10, 3), (5, 8), (2, 1)])
def test_masked_patterns_mask_where_they_say(n, chunk):
    start = make_row("masked start", n, chunk, seed=1)
    k = masked_prefix(n, chunk)
    assert np.isneginf(start[:k]).all() and np.isfinite(start[k:]).all() and n - k >= 1
    assert k % chunk == 0 or k == n - 1
    tail = make_row("masked tail", n, chunk, seed=1)
    t = masked_tail_start(n)
    assert np.isfinite(tail[:t]).all() and np.isneginf(tail[t:]).all() and t < n
    assert (tail[:t] < -5e4).all()
    assert np.isneginf(make_row("empty row", n, chunk, seed=1)).all()
    assert (make_row("large logits", n, chunk, seed=1) > 900).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("spiky", 8, 2, 0), "pattern must be one of"),
        (("random", 0, 2, 0), "n must be between 1 and 4096, got 0"),
        (("random", MAX_ROW + 1, 2, 0), "n must be between 1 and 4096"),
        (("random", 8, 0, 0), "chunk must be at least 1, got 0"),
        (("random", 8, 2.0, 0), "chunk must be an integer, got 2.0"),
        (("random", 8, True, 0), "chunk must be an integer, got True"),
        (("random", 8, 2, -1), "seed must be at least 0, got -1"),
    ],
)
def test_make_row_names_the_bad_argument(args, message):
    with pytest.raises(ValueError, match=message):
        make_row(*args)


def test_row_values_shape_reproducible_and_validated():
    v = row_values(6, 3, seed=4)
    assert v.shape == (6, 3) and v.dtype == np.float64 and np.isfinite(v).all()
    np.testing.assert_array_equal(v, row_values(6, 3, seed=4))
    assert not np.array_equal(v, row_values(6, 3, seed=5))
    with pytest.raises(ValueError, match="d must be at least 1, got 0"):
        row_values(6, 0, seed=4)


# Where each bug bites on each pattern, from the pattern's construction (n = 24):
# None = never, an int = that chunk, a callable(chunk) -> chunk, absent = depends on the draw.
RISE = {"no_rescale_o": 1, "no_rescale_l": 1, "wrong_sign": 1}
NEVER_MASK = {"mask_1e4": None, "mask_5e4": None, "no_inf_guard": None}
EMPTY_START = {"no_inf_guard": 0, "mask_1e4": 0, "mask_5e4": 0, "stale_l": 0, "no_max": None}
EXPECTED: dict[str, dict] = {
    "increasing": {**RISE, **NEVER_MASK, "no_max": None, "stale_l": lambda c: 1 if c > 1 else 2},
    "random": {**NEVER_MASK, "no_max": None},
    "large logits": {**NEVER_MASK, "no_max": 0},
    "masked start": EMPTY_START,
    "masked tail": {
        "no_max": 0,  # every exp underflows
        "no_inf_guard": None,
        "mask_1e4": lambda c: masked_tail_start(24) // c,
        "mask_5e4": lambda c: masked_tail_start(24) // c,
    },
    "empty row": {**EMPTY_START, "no_rescale_o": None, "no_rescale_l": None, "wrong_sign": None},
    "jump of 12": {"threshold_too_high_f16": 1, "no_rescale_o": 1, "no_max": None},
}


@pytest.mark.parametrize("pattern", list(ROW_PATTERNS))
@pytest.mark.parametrize("chunk", [1, 3, 4, 7])
def test_each_pattern_makes_its_bugs_bite_exactly_there(pattern, chunk, rng):
    row = make_row(pattern, 24, chunk, seed=int(rng.integers(2**31)))
    values = row_values(24, 2, seed=int(rng.integers(2**31)))
    assert first_bad_chunk(debug_row(row, chunk, values)) is None  # correct: exact throughout
    for bug in BUGS:
        steps = debug_row(row, chunk, values, bug)
        first = first_bad_chunk(steps)
        bite = first_bite(bug, row, chunk)
        assert first == (bite.index if bite else None), bug
        if bug in EXPECTED[pattern]:
            want = EXPECTED[pattern][bug]
            assert first == (want(chunk) if callable(want) else want), bug
        end = len(steps) if first is None else first
        assert all(s.error <= 1e-9 for s in steps[:end]), bug


# The chunk where each bug first bites on its demo pattern, from the pattern's construction
DEMO_BITE = {
    "no_rescale_o": lambda n, c: 1,  # "increasing": the max rises at every chunk
    "no_rescale_l": lambda n, c: 1,
    "wrong_sign": lambda n, c: 1,
    "stale_l": lambda n, c: 1 if c > 1 else 2,  # l != 1 after a chunk of two keys or more
    "no_max": lambda n, c: 0,  # "large logits": exp(1000) overflows at once
    "mask_1e4": lambda n, c: masked_tail_start(n) // c,  # the first masked key, below -1e4
    "mask_5e4": lambda n, c: masked_tail_start(n) // c,  # (-6e4: below -5e4 as well)
    "no_inf_guard": lambda n, c: 0,  # "masked start": whole chunks masked first
    "threshold_too_high_f16": lambda n, c: 1,  # "jump of 12": the max jumps at chunk 1
}


@pytest.mark.parametrize("bug", list(BUGS))
@pytest.mark.parametrize(("n", "chunk"), [(24, 1), (24, 4), (24, 8), (100, 16), (7, 3)])
def test_every_bug_bites_on_its_demo_pattern(bug, n, chunk):
    row = make_row(DEMO_PATTERN[bug], n, chunk, seed=3)
    bite = first_bite(bug, row, chunk)
    first = first_bad_chunk(debug_row(row, chunk, row_values(n, 1, seed=3), bug))
    assert bite is not None and bite.index == first == DEMO_BITE[bug](n, chunk)


def test_demo_patterns_cover_every_bug():
    assert set(DEMO_PATTERN) == set(BUGS) == set(DEMO_BITE)
    assert set(DEMO_PATTERN.values()) <= set(ROW_PATTERNS)


# --- linear time on hostile text ------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("1" * 30_000 + "x", r"entry 1 \('1111.*…', 30,001 characters\) is not a number"),
        ("1" * 30_000, r"entry 1 \(1111.*…, 30,000 characters\) is too large for float64"),
        ("1" * 120_000 + ".", r"entry 1 \(1111.*…, 120,001 characters\) is too large"),
        ("1." + "1" * 120_000 + "e", r"entry 1 \('1\.11.*…', 120,003 characters\) is not a n"),
        ("9" * 2**20, r"the text has 1,048,576 characters; at most 131,072 are read"),
        ("\x00#" * 2**19, r"the text has 1,048,576 characters; at most 131,072"),
    ],
    ids=["30k digits + x", "30k digits", "120k digits", "120k decimals + e", "1 MB", "1 MB junk"],
)
def test_long_tokens_are_refused_fast_with_a_short_message(text: str, pattern: str) -> None:
    """One paste must not hold the GIL: was 20 s for 30,000 digits (quadratic backtracking)."""
    start = time.process_time()  # CPU time: a parallel test worker's load does not count
    with pytest.raises(ValueError, match=pattern) as caught:
        parse_row(text)
    assert time.process_time() - start < 0.2
    assert len(str(caught.value)) < 200


def test_a_long_valid_text_parses_in_linear_time() -> None:
    """The longest text accepted, 4096 numbers of 31 characters, parses well under 0.2 s."""
    number = "-1.2345678901234567890123456e-05"[:31]
    text = " ".join([number] * MAX_ROW)
    assert len(text) <= MAX_TEXT_CHARS
    start = time.process_time()  # CPU time: a parallel test worker's load does not count
    row = parse_row(text)
    assert time.process_time() - start < 0.2
    assert row.shape == (MAX_ROW,) and row[0] == float(number)
