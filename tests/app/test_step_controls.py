"""The shared step controls: each button and the slider move the step within 0 .. last,
``on_move`` hears every user move, ``locked`` holds Next, Last and the slider back, and one
step gives no slider."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (
    f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
    + """
import streamlit as st
from flashviz.app.widgets.step_controls import step_controls

def heard():
    st.session_state.moves = st.session_state.get("moves", 0) + 1

last, locked = st.session_state.get("last", 5), st.session_state.get("locked", False)
shown = step_controls("k", last, "t_", label="where", locked=locked, on_move=heard)
st.markdown(f"shown {shown}")
"""
)


def _app(**state: object) -> AppTest:
    at = AppTest.from_string(SCRIPT, default_timeout=30)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _shown(at: AppTest) -> int:
    assert not at.exception
    return int(at.markdown[-1].value.split()[-1])


@pytest.mark.parametrize(
    ("start", "button", "expected"),
    [
        (3, "first", 0),
        (3, "prev", 2),
        (0, "prev", 0),
        (3, "next", 4),
        (5, "next", 5),
        (1, "last", 5),
    ],
)
def test_each_button_moves_within_the_range(start: int, button: str, expected: int) -> None:
    at = _app(k=start)
    at.button(key=f"t_{button}").click().run()
    assert _shown(at) == expected and at.session_state["k"] == expected
    assert at.session_state["moves"] == 1


def test_slider_moves_the_step_and_is_heard() -> None:
    at = _app()
    slider = at.slider(key="k")
    assert slider.label == "where" and (slider.min, slider.max) == (0, 5)
    slider.set_value(4).run()
    assert _shown(at) == 4 and at.session_state["moves"] == 1


def test_out_of_range_step_is_clamped() -> None:
    assert _shown(_app(k=9)) == 5
    assert _shown(_app(k=-2)) == 0


def test_locked_disables_next_last_and_the_slider_only() -> None:
    at = _app(k=2, locked=True)
    assert at.button(key="t_next").disabled and at.button(key="t_last").disabled
    assert not at.button(key="t_first").disabled and not at.button(key="t_prev").disabled
    assert at.slider(key="k").disabled
    at.button(key="t_prev").click().run()
    assert _shown(at) == 1


def test_one_step_has_buttons_but_no_slider() -> None:
    at = _app(last=0)
    assert not at.slider and _shown(at) == 0
    at.button(key="t_next").click().run()
    assert _shown(at) == 0
