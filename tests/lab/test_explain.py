"""The step explanation's worked numbers: each bug's update is written as the bug computes
it, so every equation shown holds for the numbers shown (the CPU twin of the browser test
``tests/browser/test_browser_explanation.py``, on every tile step and row)."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest

from flashviz import record_trace
from flashviz.core.trace import TileStep
from flashviz.lab.bugzoo import BUGS, FA2_TEX
from flashviz.lab.explain import explain
from tests.browser.test_browser_explanation import _value, equations

# A number as the explanation writes it: 4 significant digits, TeX exponent.
NUMBER = re.compile(r"(?<![\w.])(?<!_\{)-?\d+(?:\.\d+)?(?:\\mathrm\{e\}[+-]?\d+)?")


def half_unit(text: str) -> float:
    """Half a unit in the 4th significant digit of the number ``text`` (the explanation
    writes numbers with ``.4g``, which drops trailing zeros: "1" may be 0.99996)."""
    value = abs(_value(text))
    return 0.0 if value == 0 else 0.5 * 10.0 ** (math.floor(math.log10(value)) - 3)


def rounding_range(line: str) -> tuple[float, float]:
    """The range of the line's expression when each number shown moves by its rounding
    error (every corner: the expressions are monotone in each number)."""
    expression = [p.strip() for p in line.split("=")][-2]
    spans = [(m.start(), m.end()) for m in NUMBER.finditer(expression)]
    values = []
    for corner in itertools.product((-1, 1), repeat=len(spans)):
        text, end = "", 0
        for (a, b), sign in zip(spans, corner, strict=True):
            number = _value(expression[a:b]) + sign * half_unit(expression[a:b])
            text += expression[end:a] + f"({number!r})"
            end = b
        with np.errstate(over="ignore"):
            values.append(_value(text + expression[end:]))
    return min(values), max(values)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("bug", [None, *BUGS])
def test_the_shown_update_holds_for_the_shown_numbers(rng, bug, causal) -> None:
    """Rows whose state was finite before the tile: every line 'name = expression = number'
    of the bug's update holds to the 4 digits shown (the max lines of no_max and of the
    high threshold are words)."""
    q, k, v = (
        rng.standard_normal((9, 3)) * 2,
        rng.standard_normal((11, 3)),
        rng.standard_normal((11, 3)),
    )
    trace = record_trace(q, k, v, block_q=4, block_kv=3, causal=causal, bug=bug)
    lines_per_row = 3 if bug in ("no_max", "threshold_too_high_f16") else 4
    checked = 0
    for index, step in enumerate(trace.steps):
        if not isinstance(step, TileStep):
            continue
        for r in range(len(step.rows)):
            if not (np.isfinite(step.m_prev[r]) and np.isfinite(step.o[r]).all()):
                continue
            shown = equations(explain(trace, index, r).numbers)
            assert len(shown) == lines_per_row, shown
            for line, _, right in shown:
                low, high = rounding_range(line)
                slack = half_unit(line.split("=")[-1].strip()) + 1e-12 * abs(right)
                assert low - slack <= right <= high + slack, (line, low, high)
            checked += 1
    assert checked >= 10


def test_a_bug_rewrites_only_the_lines_of_what_it_changes() -> None:
    changed = {
        key: {
            f
            for f in ("max", "alpha", "sum", "accumulate")
            if getattr(b.tex, f) != getattr(FA2_TEX, f)
        }
        for key, b in BUGS.items()
    }
    assert changed == {
        "no_rescale_o": {"accumulate"},
        "no_rescale_l": {"sum"},
        "wrong_sign": {"alpha"},
        "no_max": {"max"},
        "stale_l": {"accumulate"},
        "mask_1e4": set(),
        "mask_5e4": set(),
        "no_inf_guard": set(),
        "threshold_too_high_f16": {"max"},
    }


def test_the_worked_numbers_with_and_without_a_bug() -> None:
    """Row 0 of tile (0, 1), where its max rises: the correct update, and no_rescale_o's
    o line without alpha next to the correct update from the same state."""
    q, k, v = np.array([[1.0, 0.0]]), np.array([[0.0, 0.0], [2.0, 0.0]]), np.eye(2)
    correct = explain(record_trace(q, k, v, block_q=1, block_kv=1), 2)
    assert correct.numbers == (
        r"\begin{aligned} m_{0} &= \max(0,\ 1.414) = 1.414 \\ "
        r"\alpha &= e^{0 - (1.414)} = 0.2431 \\ "
        r"\ell_{0} &= 0.2431 \times 1 + 1 = 1.243 \\ "
        r"o_{0,0} &= 0.2431 \times 1 + 0 = 0.2431 \end{aligned}"
    )
    assert correct.correct == ""
    buggy = explain(record_trace(q, k, v, block_q=1, block_kv=1, bug="no_rescale_o"), 2)
    assert r"o_{0,0} &= 1 + 0 = 1 \end{aligned}" in buggy.numbers
    assert r"\Delta o = 0.7569" in buggy.correct


@pytest.mark.parametrize("bug", ["mask_1e4", "mask_5e4"])
def test_a_mask_bugs_max_line_shows_the_stand_in_it_reads(bug) -> None:
    """A row that sees no key yet, at a tile it cannot see: the update reads the stand-in,
    not -inf, so the shown max line is max(-inf, stand-in) = stand-in (it once showed
    max(-inf, -inf) = -1e4)."""
    rng = np.random.default_rng(5)
    print("rng seed: 5")
    q, k, v = (rng.standard_normal((n, 2)) for n in (8, 2, 2))  # bottom-right: rows 0-5 empty
    trace = record_trace(q, k, v, block_q=4, block_kv=1, causal=True, bug=bug)
    checked = 0
    for index, step in enumerate(trace.steps):
        if not isinstance(step, TileStep):
            continue
        for r in range(len(step.rows)):
            if not (np.isneginf(step.m_prev[r]) and np.isneginf(step.s[r]).all()):
                continue
            m_line = explain(trace, index, r).numbers.split(r"\\")[0]
            read, shown_m = re.search(r"\\max\(-\\infty,\\ (\S+)\) = (\S+)", m_line).groups()
            assert read == shown_m != r"-\infty", m_line
            checked += 1
    assert checked >= 2
