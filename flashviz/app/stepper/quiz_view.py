"""Quiz mode: predict the next step before it is shown, then get feedback row by row.

``quiz_section(ctx, k)`` asks the question of ``flashviz.lab.quiz.quiz_for`` about step k (the
step about to be revealed) and returns True once the student has checked an answer or
pressed Reveal: the step panel lets Next move to step k only then. Answers are typed as text
so that '-inf' (a row that has seen no key) can be entered. All widget and state keys
start with ``quiz_``; they are cleared when the problem changes.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from flashviz.app.widgets.safe_text import plain_message
from flashviz.figures import FigureContext
from flashviz.lab.quiz import Feedback, Quiz, grade_numbers, grade_rows, quiz_for

COLUMNS = 4  # answer boxes per line


def quiz_mode_toggle() -> bool:
    return st.toggle(
        "Quiz mode: predict each step before it is shown",
        key="quiz_mode",
        help="Before Next reveals a step, enter the new row max m (or the rows that rescale, "
        "or the logsumexp) and check your answer.",
    )


def _fingerprint(ctx: FigureContext) -> tuple:
    t = ctx.trace
    return (
        t.n_q,
        t.n_k,
        t.d,
        t.block_q,
        t.block_kv,
        t.causal,
        t.causal_align,
        float(t.scale),
        float(np.sum(t.q, dtype=np.float64)),
        float(np.sum(t.k, dtype=np.float64)),
        t.precision,
        t.bug,
        ctx.kv_blocks,  # the tiles a mask lets the run visit
        float(np.sum(t.o, dtype=np.float64)),  # and what its entries let through
    )


def reset_if_new_problem(ctx: FigureContext) -> None:
    """Forget answers given to another problem; call before drawing what ``unlocked`` gates."""
    fingerprint = _fingerprint(ctx)
    if st.session_state.get("_quiz_problem") == fingerprint:
        return
    for key in [k for k in st.session_state if str(k).startswith("quiz_") and k != "quiz_mode"]:
        del st.session_state[key]
    st.session_state["_quiz_problem"] = fingerprint


def unlocked(k: int) -> bool:
    """Whether step k may be shown: its question was checked, or the student gave up."""
    return bool(
        st.session_state.get(f"quiz_{k}_checked") or st.session_state.get(f"quiz_{k}_revealed")
    )


def _check(quiz: Quiz) -> None:
    k, feedback = quiz.step_index, []
    if quiz.numbers is not None:
        answers = [
            st.session_state.get(f"quiz_{k}_{n}", "") for n in range(len(quiz.numbers.items))
        ]
        feedback += grade_numbers(quiz.numbers, answers)
    if quiz.rows is not None:
        feedback += grade_rows(quiz.rows, st.session_state.get(f"quiz_{k}_rows", []))
    st.session_state[f"quiz_{k}_feedback"] = feedback
    st.session_state[f"quiz_{k}_checked"] = True


def _reveal(k: int) -> None:
    st.session_state[f"quiz_{k}_revealed"] = True


def _inputs(quiz: Quiz) -> None:
    k = quiz.step_index
    if quiz.numbers is not None:
        st.markdown(quiz.numbers.prompt)
        if quiz.numbers.table:
            st.dataframe(quiz.numbers.table, hide_index=True)
        for n, item in enumerate(quiz.numbers.items):
            if n % COLUMNS == 0:
                cols = st.columns(COLUMNS)
            cols[n % COLUMNS].text_input(
                item.label, key=f"quiz_{k}_{n}", placeholder="e.g. 1.25 or -inf", max_chars=40
            )
    if quiz.rows is not None:
        st.multiselect(
            quiz.rows.prompt,
            quiz.rows.options,
            key=f"quiz_{k}_rows",
            format_func=lambda r: f"row {r}",
            placeholder="pick the rows (none is a valid answer)",
        )
    if quiz.note:
        st.caption(quiz.note)


def _show(feedback: list[Feedback]) -> None:
    right = sum(f.ok for f in feedback)
    st.markdown(f"**{right} of {len(feedback)} right.**")
    for f in feedback:
        (st.success if f.ok else st.error)(  # it may quote a typed answer: literal text
            plain_message(f.message),
            icon=":material/check_circle:" if f.ok else ":material/cancel:",
        )


def _answers(quiz: Quiz) -> None:
    lines = [f"- {item.label}: {item.why}" for item in (quiz.numbers.items if quiz.numbers else ())]
    if quiz.rows is not None:
        lines += [f"- row {r}: {quiz.rows.why[r]}" for r in quiz.rows.options]
    st.info("The answers:\n" + "\n".join(lines))


def quiz_section(ctx: FigureContext, k: int) -> bool:
    """Ask about step k (the next one); True once it may be revealed (checked or given up)."""
    if not 0 <= k < len(ctx.trace.steps):
        st.caption("End of the run: nothing left to predict.")
        return True
    reset_if_new_problem(ctx)
    quiz = quiz_for(ctx.trace, k)
    st.markdown(f"#### {quiz.title}")
    if quiz.empty:
        st.info(quiz.note or "No question at this step.")
        return True
    _inputs(quiz)
    a, b = st.columns(2)
    a.button(
        "Check",
        key="quiz_check",
        on_click=_check,
        args=(quiz,),
        icon=":material/done:",
        width="stretch",
    )
    b.button(
        "Reveal",
        key="quiz_reveal",
        on_click=_reveal,
        args=(k,),
        icon=":material/visibility:",
        width="stretch",
    )
    if f"quiz_{k}_feedback" in st.session_state:
        _show(st.session_state[f"quiz_{k}_feedback"])
    elif st.session_state.get(f"quiz_{k}_revealed"):
        _answers(quiz)
    if unlocked(k):
        st.caption("Next now shows this step.")
    return unlocked(k)
