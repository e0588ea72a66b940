"""Class questions: one per step, within a room's limits, answered right by the trace itself."""

from __future__ import annotations

import numpy as np
import pytest

from flashviz import record_trace
from flashviz.classroom.room import checked_question
from flashviz.core.trace import LoadStep, TileStep, WriteStep
from flashviz.lab.class_questions import class_question
from flashviz.lab.quiz import fmt

PROBLEMS = [  # (n_q, n_k, d, block_q, block_kv, causal, align): ragged, causal, empty rows
    (13, 11, 4, 4, 3, False, "bottom_right"),
    (16, 16, 8, 4, 4, True, "bottom_right"),
    (9, 5, 3, 2, 2, True, "bottom_right"),  # rows 0..3 see no key
    (7, 12, 5, 3, 5, True, "top_left"),
]


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: "x".join(map(str, p)))
def test_every_step_has_a_question_a_room_accepts_and_the_trace_answers(problem, rng) -> None:
    n_q, n_k, d, bq, bkv, causal, align = problem
    q, k, v = (rng.standard_normal((n, d)) * 3 for n in (n_q, n_k, n_k))
    trace = record_trace(q, k, v, block_q=bq, block_kv=bkv, causal=causal, causal_align=align)
    for index, step in enumerate(trace.steps):
        question = class_question(trace, index)
        checked_question(question.prompt, question.choices, question.right)  # room limits
        assert len(set(question.choices)) == len(question.choices)
        assert question == class_question(trace, index)  # the same list on every device
        right = question.choices[question.right]
        if isinstance(step, LoadStep):
            assert right == "-inf"
        elif isinstance(step, TileStep):
            row = int(question.prompt.split("Row ")[1].split()[0]) - step.rows.start
            if not np.isfinite(step.m_prev[row]):
                assert right.startswith("the row has seen no key")
            elif step.m[row] > step.m_prev[row]:
                assert right.startswith("it rises")
            else:
                assert right.startswith("it stays")
        else:
            assert isinstance(step, WriteStep)
            row = int(question.prompt.split("Row ")[1].split()[0]) - step.rows.start
            with np.errstate(divide="ignore"):
                assert right == fmt(float(step.m[row]) + float(np.log(step.l[row])))


def test_the_right_answer_is_not_always_first(rng) -> None:
    q, k, v = (rng.standard_normal((16, 4)) for _ in range(3))
    trace = record_trace(q, k, v, block_q=4, block_kv=4)
    places = {class_question(trace, i).right for i in range(len(trace.steps))}
    assert len(places) > 1


def test_a_step_outside_the_trace_is_refused(rng) -> None:
    q = rng.standard_normal((4, 2))
    trace = record_trace(q, q, q, block_q=2, block_kv=2)
    for bad in (-1, len(trace.steps)):
        with pytest.raises(ValueError, match="step_index must be in"):
            class_question(trace, bad)
