"""'Predict the next step': a question about one trace step, its answers, and the grading.

``quiz_for(trace, k)`` asks about step k before it is shown, using only what is known
just before it (the scores S_ij of the coming tile, the state m, l of the Q block):

- ``load_q``: what the running state starts at (m_i = -inf, l_i = 0, o_i = 0);
- ``tile``: the new row max m_new = max(m_old, rowmax(S_ij)) of each asked row, and which
  rows rescale (their max rises from a finite value, so alpha = exp(m_old - m_new) < 1);
- ``write``: the logsumexp L = m + log l of each asked row (-inf for a row with no key).

The answers come from the algorithm's formulas applied to the numbers shown (they equal
the trace's own values for a correct run). Numbers are shown with ``DIGITS`` significant
digits, so a number copied from the screen is off by at most half a unit in the last
digit, 5e-4 relative; the tolerance ``REL_TOL`` = 1e-3 is twice that, scaled by the
magnitude of every shown number the answer adds up (see ``Item.tol``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from flashviz.core.trace import LoadStep, TileStep, Trace, WriteStep

DIGITS = 4  # significant digits of every number the quiz shows
REL_TOL = 1e-3  # 2 x the relative rounding error (5e-4) of a number shown with DIGITS digits
MAX_ROWS = 8  # at most this many query rows are asked about per step


def fmt(x: float) -> str:
    """A shown number: DIGITS significant digits, -inf as '-inf'."""
    return f"{float(x):.{DIGITS}g}"


@dataclass(frozen=True)
class Item:
    """One number to predict: its label, the right value, and why it is that value."""

    label: str  # "row 5", "m_i", ...
    expected: float
    why: str  # the reasoning with the shown numbers
    scale: float = 0.0  # magnitude of shown numbers added into the answer (0: a copy of one)

    @property
    def tol(self) -> float:
        """Accepted |given - expected|: the shown numbers' rounding, doubled (module doc)."""
        return REL_TOL * (abs(self.expected) + self.scale)


@dataclass(frozen=True)
class NumberQuestion:
    prompt: str
    items: tuple[Item, ...]
    table: dict[str, list[str]] = field(default_factory=dict)  # shown before answering


@dataclass(frozen=True)
class RowSetQuestion:
    """Pick the rows (global query indices) with a property, among ``options``."""

    prompt: str
    options: tuple[int, ...]
    answer: frozenset[int]
    why: dict[int, str]


@dataclass(frozen=True)
class Quiz:
    step_index: int
    title: str
    numbers: NumberQuestion | None = None
    rows: RowSetQuestion | None = None
    note: str = ""  # what is not asked, and why

    @property
    def empty(self) -> bool:
        return self.numbers is None and self.rows is None


@dataclass(frozen=True)
class Feedback:
    label: str
    ok: bool
    message: str


def parse_number(text: str | float | None) -> float | None:
    """A typed answer as a float, None when empty; ValueError if it is not a number.

    Accepts '-inf' and '-infinity', also written with the Unicode minus and infinity signs.
    """
    if text is None:
        return None
    if isinstance(text, str):
        text = text.strip().lower().replace("\u2212", "-").replace("\u221e", "inf")
        if not text:
            return None
    value = float(text)  # ValueError for any other text
    if np.isnan(value):
        raise ValueError("NaN is not an answer")
    return value


def is_right(item: Item, given: float | None) -> bool:
    if given is None or np.isnan(given):
        return False
    if np.isinf(item.expected) or np.isinf(given):
        return given == item.expected
    return abs(given - item.expected) <= item.tol


def grade_number(item: Item, answer: str | float | None) -> Feedback:
    """Right or wrong, and why, for one item (``answer`` as typed, or a number)."""
    try:
        given = parse_number(answer)
    except ValueError:
        return Feedback(
            item.label,
            False,
            f"{item.label}: '{answer}' is not a number (e.g. 1.25 or -inf). {item.why}",
        )
    if given is None:
        return Feedback(item.label, False, f"{item.label}: no answer. {item.why}")
    if is_right(item, given):
        return Feedback(item.label, True, f"{item.label}: right. {item.why}")
    return Feedback(item.label, False, f"{item.label}: you entered {fmt(given)}, but {item.why}")


def grade_numbers(
    question: NumberQuestion, answers: Sequence[str | float | None]
) -> list[Feedback]:
    if len(answers) != len(question.items):
        raise ValueError(
            f"answers must have one entry per item ({len(question.items)}), got {len(answers)}"
        )
    return [grade_number(item, a) for item, a in zip(question.items, answers, strict=True)]


def grade_rows(question: RowSetQuestion, chosen: Iterable[int]) -> list[Feedback]:
    """One feedback per option row: right when chosen exactly if it is in the answer."""
    picked = {int(r) for r in chosen}
    unknown = picked - set(question.options)
    if unknown:
        raise ValueError(f"chosen must be among the options {question.options}, got {unknown}")
    out = []
    for r in question.options:
        ok = (r in picked) == (r in question.answer)
        verdict = "right" if ok else ("wrongly picked" if r in picked else "missed")
        out.append(Feedback(f"row {r}", ok, f"row {r}: {verdict}. {question.why[r]}"))
    return out


def pick_rows(interesting: np.ndarray, n: int = MAX_ROWS) -> np.ndarray:
    """Up to n local row indices, evenly spread: half from the interesting ones, then others."""
    if interesting.size <= n:
        return np.arange(interesting.size)

    def spread(idx: np.ndarray, count: int) -> np.ndarray:
        count = min(count, idx.size)
        return idx[np.unique(np.linspace(0, idx.size - 1, count).round().astype(int))]

    first = spread(np.flatnonzero(interesting), n // 2)
    rest = np.setdiff1d(np.arange(interesting.size), first)
    return np.sort(np.concatenate([first, spread(rest, n - first.size)]))


def _load_quiz(k: int, step: LoadStep) -> Quiz:
    items = (
        Item("m_i", -np.inf, "m_i starts at -inf: the max of no scores yet, so any score wins."),
        Item("l_i", 0.0, "l_i starts at 0: the sum of no terms exp(s - m) yet."),
        Item("o_i", 0.0, "o_i starts at 0 (every entry): nothing is accumulated yet."),
    )
    prompt = (
        f"Q block {step.i} (rows {step.rows.start} to {step.rows.stop - 1}) is about to be "
        "loaded. What does its running state start at (the same for every row)?"
    )
    return Quiz(k, f"Predict step {k}: load Q block {step.i}", NumberQuestion(prompt, items))


def _max_why(m_old: float, s_max: float, any_visible: bool) -> str:
    if not any_visible and np.isneginf(m_old):
        return "every key of this tile is masked for this row and it saw none before: m stays -inf."
    if not any_visible:
        return f"every key of this tile is masked for this row, so m stays m_old = {fmt(m_old)}."
    if np.isneginf(m_old):
        return f"this row's first visible keys: m_new = max of its S row = {fmt(s_max)}."
    if s_max > m_old:
        return f"max of the S row is {fmt(s_max)} > m_old {fmt(m_old)}, so m_new = {fmt(s_max)}."
    return f"max of the S row is {fmt(s_max)} <= m_old {fmt(m_old)}, so m_new = {fmt(m_old)}."


def _rescale_why(m_old: float, m_new: float, s_max: float, any_visible: bool) -> str:
    if m_new > m_old:
        alpha = float(np.exp(m_old - m_new))
        return (
            f"the max rises from {fmt(m_old)} to {fmt(m_new)}, so alpha = exp({fmt(m_old)} - "
            f"{fmt(m_new)}) = {fmt(alpha)} < 1 shrinks its l and o."
        )
    cause = (
        "the whole tile is masked for it"
        if not any_visible
        else f"this tile's max {fmt(s_max)} <= {fmt(m_old)}"
    )
    return f"the max stays {fmt(m_old)} ({cause}), so alpha = 1: nothing is rescaled."


def _tile_quiz(k: int, step: TileStep) -> Quiz:
    vis = np.isfinite(step.s)  # (bq, bkv) visible entries
    s_max = step.s.max(axis=1)  # (bq,) -inf for a row fully masked in this tile
    m_new = np.maximum(step.m_prev, s_max)  # (bq,) what the step will compute
    asked = pick_rows(m_new > step.m_prev)
    rows = [step.rows.start + int(a) for a in asked]
    table = {"row": [str(r) for r in rows], "m_old": [fmt(step.m_prev[a]) for a in asked]}
    for c_local, c in enumerate(step.cols):
        table[f"key {c}"] = [
            fmt(step.s[a, c_local]) if vis[a, c_local] else "masked" for a in asked
        ]
    items = tuple(
        Item(f"row {r}", float(m_new[a]), _max_why(step.m_prev[a], s_max[a], vis[a].any()))
        for r, a in zip(rows, asked, strict=True)
    )
    prompt = (
        f"K/V tile {step.j} is about to be folded into Q block {step.i}. Its scores S_ij are "
        "below, one column per key (masked: hidden by the causal mask). What is the new "
        "running max m of each row?"
    )
    finite = [(r, a) for r, a in zip(rows, asked, strict=True) if np.isfinite(step.m_prev[a])]
    rows_q = None
    if finite:
        rows_q = RowSetQuestion(
            "Which of these rows rescale (alpha = exp(m_old - m_new) < 1)?",
            tuple(r for r, _ in finite),
            frozenset(r for r, a in finite if m_new[a] > step.m_prev[a]),
            {r: _rescale_why(step.m_prev[a], m_new[a], s_max[a], vis[a].any()) for r, a in finite},
        )
    empty = [r for r, a in zip(rows, asked, strict=True) if not np.isfinite(step.m_prev[a])]
    note = (
        f"Rows {', '.join(map(str, empty))} have seen no key yet (m_old = -inf, l = 0, o = 0): "
        "there is nothing to rescale, so they are not offered in the rescale question."
        if empty
        else ""
    )
    if len(asked) < len(step.rows):
        note = f"Asked about {len(asked)} of the block's {len(step.rows)} rows. " + note
    return Quiz(
        k,
        f"Predict step {k}: tile ({step.i}, {step.j})",
        NumberQuestion(prompt, items, table),
        rows_q,
        note.strip(),
    )


def _lse_why(m: float, l: float, lse: float) -> str:
    if l == 0:
        return "this row saw no key: l = 0 and log 0 = -inf, so L = -inf (its O row is 0)."
    return f"L = m + log l = {fmt(m)} + log({fmt(l)}) = {fmt(lse)}."


def _write_quiz(k: int, step: WriteStep) -> Quiz:
    asked = pick_rows(step.l == 0)
    rows = [step.rows.start + int(a) for a in asked]
    with np.errstate(divide="ignore"):
        lse = step.m.astype(np.float64) + np.log(step.l.astype(np.float64))  # (bq,)
    items = tuple(
        Item(
            f"row {r}",
            float(lse[a]),
            _lse_why(step.m[a], step.l[a], lse[a]),
            scale=abs(float(step.m[a])) + 1.0 if np.isfinite(step.m[a]) else 0.0,
        )
        for r, a in zip(rows, asked, strict=True)
    )
    table = {
        "row": [str(r) for r in rows],
        "m": [fmt(step.m[a]) for a in asked],
        "l": [fmt(step.l[a]) for a in asked],
    }
    prompt = (
        f"Every K/V tile is folded into Q block {step.i}; it is about to be normalised and "
        "written. What is the logsumexp L = m + log l (natural log) of each row?"
    )
    note = (
        f"Asked about {len(asked)} of the block's {len(step.rows)} rows."
        if len(asked) < len(step.rows)
        else ""
    )
    return Quiz(
        k,
        f"Predict step {k}: write O block {step.i}",
        NumberQuestion(prompt, items, table),
        note=note,
    )


def quiz_for(trace: Trace, step_index: int) -> Quiz:
    """The question to answer before step ``step_index`` of ``trace`` is revealed."""
    if not isinstance(trace, Trace):
        raise TypeError(f"trace must be a flashviz Trace, got {type(trace).__name__}")
    if not 0 <= step_index < len(trace.steps):
        raise ValueError(f"step_index must be in [0, {len(trace.steps) - 1}], got {step_index}")
    step = trace.steps[step_index]
    if isinstance(step, LoadStep):
        return _load_quiz(step_index, step)
    if isinstance(step, TileStep):
        return _tile_quiz(step_index, step)
    if isinstance(step, WriteStep):
        return _write_quiz(step_index, step)
    return Quiz(step_index, f"Step {step_index}", note="No question at this step.")
