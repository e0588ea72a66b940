"""Live rooms in the app, by AppTest: the lecturer's session and the students' sessions run
in this one process, sharing its room store, as on a one-process server.

The lecturer starts a class and every step is published; a student following the room
gets the lecturer's step and problem; a student's own moves never reach the room; the
lead link leads (and leaves no token in the address bar), a wrong token only follows."""

from __future__ import annotations

import re
import struct

from streamlit.testing.v1 import AppTest

from flashviz.app.widgets import class_question_view, class_room
from flashviz.app.widgets.class_room import ROLE, Follow, Lead, qr_png
from flashviz.app.widgets.safe_text import shown
from flashviz.classroom.codes import new_token
from flashviz.classroom.store import make_store, room_store
from tests.app.step_view_driver import move, shown_step
from tests.app.test_stepper_page import run_app


def _start_class(at: AppTest) -> tuple[str, str]:
    at.button(key="class_start").click().run()
    assert not at.exception, at.exception
    lead = at.session_state[ROLE]
    assert isinstance(lead, Lead)
    assert any(re.fullmatch(rf"Class code \*\*{lead.code}\*\*", m.value) for m in at.markdown)
    return lead.code, lead.token


def _params(code: str) -> dict[str, str]:
    state = room_store().state(code)
    assert state is not None
    return dict(state.params)


def test_the_lecturers_steps_are_published_and_a_student_gets_them() -> None:
    lecturer = run_app(step=2, n_q=24)
    code, _ = _start_class(lecturer)
    assert _params(code)["step"] == "2" and _params(code)["page"] == ""  # the stepper
    move(lecturer, "next")
    assert _params(code)["step"] == "3"  # a step inside the fragment is published too
    student = run_app(room=code)
    assert isinstance(student.session_state[ROLE], Follow)
    assert shown_step(student) == 3 and student.session_state["n_q"] == 24
    assert any(f"Following class {code}" in i.value for i in student.info)


def test_a_student_cannot_move_the_class() -> None:
    lecturer = run_app(step=1)
    code, _ = _start_class(lecturer)
    student = run_app(room=code)
    before = room_store().version(code)
    move(student, "next")
    student.run()
    assert _params(code)["step"] == "1" and room_store().version(code) == before


def test_the_lead_link_leads_without_showing_its_token() -> None:
    lecturer = run_app(step=4)
    code, token = _start_class(lecturer)
    again = run_app(room=code, lead=token)
    assert isinstance(again.session_state[ROLE], Lead)
    assert "lead" not in again.query_params and "room" not in again.query_params
    move(again, "next")
    assert _params(code)["step"] == "5"


def test_a_wrong_lead_token_only_follows() -> None:
    lecturer = run_app(step=4)
    code, _ = _start_class(lecturer)
    for token in (new_token(), "x" * 22, "<b>bold</b>", "A" * 5000):
        student = run_app(room=code, lead=token)
        assert isinstance(student.session_state[ROLE], Follow)
        assert "lead" not in student.query_params
        assert any("lead link is not valid" in w.value for w in student.warning)


def test_a_room_that_does_not_exist_is_named_literally_and_the_app_goes_on() -> None:
    for code in ("ZZZZZ", "**K7HRW**", "`x`", ":red[big]", "K" * 500):
        at = run_app(room=code, step=3)
        assert ROLE not in at.session_state or at.session_state[ROLE] is None
        assert "room" not in at.query_params and shown_step(at) == 3
        (warning,) = [w.value for w in at.warning if "There is no class" in w.value]
        assert shown(warning).startswith(f"There is no class {code[:32]} (it may have ended)")


def test_a_class_question_is_answered_once_tallied_and_revealed() -> None:
    lecturer = run_app(step=6)
    code, _ = _start_class(lecturer)
    lecturer.button(key="class_ask").click().run()
    state = room_store().state(code)
    assert state is not None and state.question is not None
    question = state.question
    assert question.prompt.startswith("Tile (1, 0)")  # step 7, the step after the one shown
    students = [run_app(room=code) for _ in range(3)]
    for n, student in enumerate(students):
        assert any(question.prompt in m.value.replace("\\", "") for m in student.markdown)
        student.radio(key=f"class_choice_{question.id}").set_value(n % 2).run()
        student.button(key=f"class_send_{question.id}").click().run()
        assert not student.exception, student.exception
        assert any("Answer sent" in c.value for c in student.caption)
    tally = room_store().tally(code)
    assert tally is not None and tally.counts[:2] == (2, 1) and tally.answered == 3
    lecturer.button(key="class_reveal").click().run()
    for n, student in enumerate(students):
        student.run()
        right = n % 2 == question.right
        said = [e.value for e in [*student.success, *student.error]]
        assert any(t.startswith("Right:" if right else "Not this time:") for t in said), said


def test_the_student_link_is_a_qr_code_big_enough_for_a_hall() -> None:
    png = qr_png("http://lecture.example:8501/?room=K7HRW")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert width == height >= 250  # 10 px a module: about 6 cm on a projected sidebar
    lecturer = run_app(step=1)
    _start_class(lecturer)
    (image,) = lecturer.get("image")
    assert image.proto.imgs[0].caption == "Scan to follow"


def test_a_store_that_goes_away_leaves_every_page_working(monkeypatch) -> None:
    """Redis stops mid-class: lecturer and student see the message, the stepper goes on."""
    lecturer = run_app(step=2)
    code, _ = _start_class(lecturer)
    student = run_app(room=code)
    gone = make_store("redis://127.0.0.1:9/0")  # nothing listens on port 9
    monkeypatch.setattr(class_room, "room_store", lambda: gone)
    monkeypatch.setattr(class_question_view, "room_store", lambda: gone)
    for at in (lecturer, student):
        move(at, "next")
        at.run()
        assert not at.exception, at.exception
        assert shown_step(at) == 3
        said = [e.value for e in [*at.warning, *at.caption]]
        assert any("cannot be reached" in t for t in said), said


def test_a_flood_of_joins_from_one_session_stops_at_the_limit() -> None:
    lecturer = run_app(step=6)
    code, _ = _start_class(lecturer)
    student = run_app(room=code)
    for _ in range(class_room.MAX_TRIES + 3):  # leave and join again, over and over
        for leave in [b for b in student.button if b.key == "class_leave"]:
            leave.click().run()
        student.query_params["room"] = code
        student.run()
    assert not student.exception
    assert any("Too many tries to join" in w.value for w in student.warning)
    assert room_store().followers(code) <= class_room.MAX_TRIES


def _tries_app() -> None:
    import streamlit as st

    from flashviz.app.widgets.class_room import MAX_TRIES, within_tries

    st.write(str([within_tries("answer", now=100.0) for _ in range(MAX_TRIES + 2)]))
    st.write(str(within_tries("answer", now=161.0)))  # a minute later: allowed again


def test_a_session_may_try_a_few_times_a_minute() -> None:
    at = AppTest.from_function(_tries_app).run()
    first, later = (m.value for m in at.markdown)
    assert first == str([True] * class_room.MAX_TRIES + [False, False]) and later == "True"
