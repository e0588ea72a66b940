"""Class predictions: the lecturer asks about the next step, students answer, a live tally.

The lecturer's "Ask the class about the next step" stores ``flashviz.lab.class_questions``'
question for the step after the one shown; a live tally (refreshed every ``TALLY_S``) shows
how many answered each choice, in one colour until "Reveal the answer". Students see the
question when their poll brings the room's new version, answer once (the room keeps the
first answer of a session), and after the reveal see whether they were right, why, and the
class's answers. Prompts and choices are the app's own text; a student sends only the
index of a choice.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from flashviz.app.widgets.charts import chart
from flashviz.app.widgets.class_room import HIDDEN, Follow, Lead, role, within_tries
from flashviz.app.widgets.safe_text import plain_message
from flashviz.classroom.room import Question, RoomError
from flashviz.classroom.store import room_store
from flashviz.core.trace import Trace
from flashviz.figures.class_tally import tally_figure
from flashviz.lab.class_questions import class_question

TALLY_S = 1.0
PROMPT_PX = 64  # presentation mode: the question's two lines above its tally
ANSWERED = "_class_answered"  # session state: question id -> the choice this session sent


def _ask(lead: Lead, load: Callable[[], Trace]) -> None:
    trace = load()
    k = min(int(st.session_state.get("step", 0)) + 1, len(trace.steps) - 1)
    question = class_question(trace, k)
    try:
        room_store().ask(lead.code, lead.token, question.prompt, question.choices, question.right)
    except RoomError as err:
        st.session_state["_class_error"] = str(err)


def _reveal(lead: Lead) -> None:
    try:
        room_store().reveal(lead.code, lead.token)
    except RoomError as err:
        st.session_state["_class_error"] = str(err)


def _answer(follow: Follow, question: Question, choice: int | None) -> None:
    if choice is None:
        return
    if not within_tries("answer"):
        st.session_state["_class_error"] = "Too many answers sent; wait a minute."
        return
    try:
        room_store().answer(follow.code, follow.session, question.id, choice)
    except RoomError as err:
        st.session_state["_class_error"] = str(err)
        return
    st.session_state.setdefault(ANSWERED, {})[question.id] = choice


def _tally(code: str, question: Question, key: str, height: int = 320) -> None:
    tally = room_store().tally(code)
    if tally is None or tally.question.id != question.id:
        return
    right = question.right if tally.question.revealed else None
    chart(tally_figure(question.choices, tally.counts, right, height=height), key=key)


@st.fragment(run_every=TALLY_S)
def _live_tally(lead: Lead) -> None:
    try:
        state = room_store().state(lead.code)
        if state is None or state.question is None:
            return
        question = state.question
        st.markdown(f"**Class question:** {plain_message(question.prompt)}")
        _tally(lead.code, question, key=f"class_tally_{question.id}")
    except RoomError as err:
        st.caption(plain_message(err))


def presented_question(code: str) -> Question | None:
    """The question presentation mode shows in place of the bottom charts (None: the charts),
    until the lecturer hides it (``HIDDEN``, a follower's applied from the room)."""
    try:
        state = room_store().state(code)
    except RoomError:
        return None
    question = None if state is None else state.question
    if question is None or str(st.session_state.get(HIDDEN)) == str(question.id):
        return None
    return question


def _hide(question_id: int) -> None:
    st.session_state[HIDDEN] = question_id


def presentation_class_button(
    lead: Lead, load: Callable[[], Trace], question: Question | None
) -> None:
    """The step bar's one class button for the ``question`` on the stage (``presented_question``):
    Ask, then Reveal, then back to the Charts."""
    if question is None:
        st.button("Ask", on_click=_ask, args=(lead, load), key="class_ask_present",
                  icon=":material/quiz:", help="Ask the class about the next step")  # fmt: skip
    elif not question.revealed:
        st.button("Reveal", on_click=_reveal, args=(lead,), key="class_reveal_present",
                  icon=":material/visibility:", help="Show the right answer")  # fmt: skip
    else:
        st.button("Charts", on_click=_hide, args=(question.id,), key="class_hide_present",
                  icon=":material/bar_chart:", help="Back to the four charts")  # fmt: skip


@st.fragment(run_every=TALLY_S)
def presentation_tally(lead: Lead, height: int) -> None:
    """The live tally on the stage, in place of the bottom row of charts: the question as
    its title, the counts large enough for the back of a hall."""
    question = presented_question(lead.code)
    if question is None:
        st.rerun()  # hidden or gone: the whole stage draws the charts again
    try:
        tally = room_store().tally(lead.code)
    except RoomError as err:
        st.caption(plain_message(err))
        return
    if tally is None or tally.question.id != question.id:
        return
    right = question.right if question.revealed else None
    st.markdown(f"**Class question:** {plain_message(question.prompt)}")
    fig = tally_figure(question.choices, tally.counts, right, height=height - PROMPT_PX)
    chart(fig, key=f"class_tally_present_{question.id}")


def _lead_view(lead: Lead, load: Callable[[], Trace]) -> None:
    ask, reveal = st.columns(2)
    ask.button("Ask the class about the next step", on_click=_ask, args=(lead, load),
               key="class_ask", icon=":material/quiz:")  # fmt: skip
    state = room_store().state(lead.code)
    if state is not None and state.question is not None and not state.question.revealed:
        reveal.button("Reveal the answer", on_click=_reveal, args=(lead,), key="class_reveal")
    _live_tally(lead)


RESULT_PX = 110  # a student's stage: the question and the result above the class's tally


def presentation_answer(follow: Follow, height: int) -> None:
    """A following student's stage: the question in place of the bottom charts, within
    ``height`` px."""
    try:
        _student_view(follow, tally_height=height - RESULT_PX)
    except RoomError as err:
        st.caption(plain_message(err))


def _student_view(follow: Follow, tally_height: int = 320) -> None:
    state = room_store().state(follow.code)
    if state is None or state.question is None or follow.exploring:
        return
    question = state.question
    st.markdown(f"**Class question:** {plain_message(question.prompt)}")
    sent = st.session_state.get(ANSWERED, {}).get(question.id)
    if question.revealed:
        right = question.choices[question.right]
        if sent is None:
            st.info(f"The answer: {plain_message(right)}")
        elif sent == question.right:
            st.success(f"Right: {plain_message(right)}")
        else:
            st.error(f"Not this time: the answer is {plain_message(right)}")
        _tally(follow.code, question, key=f"class_result_{question.id}", height=tally_height)
    elif sent is None:
        choice = st.radio("Your answer", range(len(question.choices)), index=None,
                          format_func=lambda i: question.choices[i],
                          key=f"class_choice_{question.id}")  # fmt: skip
        st.button("Send my answer", on_click=_answer, args=(follow, question, choice),
                  key=f"class_send_{question.id}", disabled=choice is None)  # fmt: skip
    else:
        st.caption(f"Answer sent: {plain_message(question.choices[sent])}. Waiting for the reveal.")


def class_question_section(load: Callable[[], Trace]) -> None:
    """The class question under the stepper's step, for a lecturer or a following student."""
    now = role()
    if now is None:
        return
    error = st.session_state.pop("_class_error", None)
    if error:
        st.warning(plain_message(error))
    try:
        if isinstance(now, Lead):
            _lead_view(now, load)
        else:
            _student_view(now)
    except RoomError as err:
        st.caption(plain_message(err))
