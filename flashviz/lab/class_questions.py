"""A question a lecturer asks the whole class about the next step, with choices to tally.

``class_question(trace, k)`` asks about step k before it is shown, from what is known just
before it (as ``flashviz.lab.quiz``, whose reasoning it reuses), as one multiple-choice
question whose answers a class can count:

- ``load_q``: what the running max m_i starts at;
- ``tile``: whether one row's running max rises (so l and o are rescaled by alpha < 1),
  stays (alpha = 1), or the row has seen no key yet; the row is one whose max rises, if any;
- ``write``: the logsumexp L = m + log l of one row, among the usual slips (m alone, log l
  alone, log of l in base 2).

Choices keep a fixed order for a step (the right one is not always first: the order is
drawn from the step index), so every device shows the same list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flashviz.core.trace import LoadStep, TileStep, Trace, WriteStep
from flashviz.lab.quiz import fmt, pick_rows


@dataclass(frozen=True)
class ClassQuestion:
    prompt: str
    choices: tuple[str, ...]
    right: int  # index into choices
    why: str  # shown with the answer


def _ordered(right: str, wrong: list[str], seed: int, prompt: str, why: str) -> ClassQuestion:
    """The right answer among the wrong ones (duplicates dropped), in an order fixed by
    ``seed``."""
    choices = [right] + [w for i, w in enumerate(wrong) if w != right and w not in wrong[:i]]
    order = np.random.default_rng(seed).permutation(len(choices))
    shown = tuple(choices[i] for i in order)
    return ClassQuestion(prompt, shown, shown.index(right), why)


def _load(k: int, step: LoadStep) -> ClassQuestion:
    prompt = (
        f"Q block {step.i} (rows {step.rows.start} to {step.rows.stop - 1}) is loaded next. "
        "What does its running max m start at?"
    )
    why = "m starts at -inf: the max of no scores yet, so any score wins."
    return _ordered("-inf", ["0", "the largest score of the row", "1"], k, prompt, why)


def _tile(k: int, step: TileStep) -> ClassQuestion:
    s_max = step.s.max(axis=1)  # (bq,) -inf for a row fully masked in this tile
    m_new = np.maximum(step.m_prev, s_max)
    rises = (m_new > step.m_prev) & np.isfinite(step.m_prev)
    a = int(pick_rows(rises, 1)[0])
    row, m_old = step.rows.start + a, float(step.m_prev[a])
    new = "masked" if not np.isfinite(s_max[a]) else fmt(s_max[a])
    prompt = (
        f"Tile ({step.i}, {step.j}) is folded in next. Row {row} has m_old = {fmt(m_old)}; its "
        f"largest new score is {new}. What happens to its running max?"
    )
    yes, no, none = (
        "it rises: l and o are rescaled (alpha < 1)",
        "it stays: alpha = 1",
        ("the row has seen no key yet: nothing to rescale"),
    )
    if not np.isfinite(m_old):
        right, why = none, "m_old = -inf: l = 0 and o = 0, so there is nothing to rescale."
    elif m_new[a] > m_old:
        alpha = float(np.exp(m_old - m_new[a]))
        right = yes
        why = f"{new} > {fmt(m_old)}: alpha = exp({fmt(m_old)} - {new}) = {fmt(alpha)} < 1."
    else:
        right, why = no, f"the new scores do not exceed {fmt(m_old)}: m stays, alpha = 1."
    return _ordered(right, [yes, no, none], k, prompt, why)


def _write(k: int, step: WriteStep) -> ClassQuestion:
    a = int(pick_rows(step.l > 0, 1)[0])
    row, m, l = step.rows.start + a, float(step.m[a]), float(step.l[a])
    prompt = (
        f"Q block {step.i} is written next. Row {row} has m = {fmt(m)} and l = {fmt(l)}. "
        "What is its logsumexp L (natural log)?"
    )
    if l == 0:
        why = "the row saw no key: l = 0, log 0 = -inf, so L = -inf."
        return _ordered("-inf", [fmt(m), "0", "nan"], k, prompt, why)
    lse = m + float(np.log(l))
    why = f"L = m + log l = {fmt(m)} + log({fmt(l)}) = {fmt(lse)}."
    wrong = [fmt(m), fmt(float(np.log(l))), fmt(m + float(np.log2(l)))]
    return _ordered(fmt(lse), wrong, k, prompt, why)


def class_question(trace: Trace, step_index: int) -> ClassQuestion:
    """The class question about step ``step_index`` of ``trace`` (asked before it is shown)."""
    if not 0 <= step_index < len(trace.steps):
        raise ValueError(f"step_index must be in [0, {len(trace.steps) - 1}], got {step_index}")
    step = trace.steps[step_index]
    if isinstance(step, LoadStep):
        return _load(step_index, step)
    if isinstance(step, TileStep):
        return _tile(step_index, step)
    assert isinstance(step, WriteStep)
    return _write(step_index, step)
