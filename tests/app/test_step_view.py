"""The step panel's window of steps sent to the browser (``flashviz/app/stepper/step_view.py``):
the current step always, neighbours first, never past the byte budget; and its callback
applies a browser move only within the steps the buttons may reach."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz.app.stepper.step_view import window
from tests.app.step_view_driver import enabled, send, shown_step
from tests.app.test_stepper_page import run_app


@given(
    last=st.integers(0, 60),
    data=st.data(),
    budget=st.integers(1, 5000),
    sizes=st.lists(st.integers(1, 2000), min_size=61, max_size=61),
)
def test_window_holds_the_current_step_and_stays_within_the_budget(
    last: int, data: st.DataObject, budget: int, sizes: list[int]
) -> None:
    k = data.draw(st.integers(0, last))
    steps = window(k, last, sizes.__getitem__, budget)
    assert steps[0] == k and len(set(steps)) == len(steps)
    assert all(0 <= s <= last for s in steps)
    assert sum(sizes[s] for s in steps) <= max(budget, sizes[k])


@pytest.mark.parametrize(
    ("k", "last", "expected"),
    [
        (5, 20, [5, 6, 4, 20, 0, 7, 3]),
        (0, 20, [0, 1, 20, 2]),
        (20, 20, [20, 19, 0, 18]),
        (0, 0, [0]),
    ],
)
def test_window_order_next_previous_last_first_then_two_either_side(
    k: int, last: int, expected: list[int]
) -> None:
    assert window(k, last, lambda s: 1, budget=100) == expected


def test_window_drops_what_does_not_fit_but_never_the_current_step() -> None:
    assert window(5, 20, lambda s: 10, budget=25) == [5, 6]  # 5 and 6 fit, 4 would not
    assert window(5, 20, lambda s: 100, budget=25) == [5]


@pytest.mark.parametrize("sent", [5, 10**9, -3, "x", None])
def test_a_move_the_quiz_holds_back_or_out_of_range_is_refused_by_the_server(sent) -> None:
    at = run_app(step=1)
    at.toggle(key="quiz_mode").set_value(True).run()
    assert not enabled(at, "next")
    send(at, sent)
    assert not at.exception
    assert at.session_state["step"] in (0, 1) and shown_step(at) == at.session_state["step"]
    if sent == -3:
        assert at.session_state["step"] == 0  # clamped, the way back is open


def test_a_move_without_the_quiz_goes_anywhere_within_the_steps() -> None:
    at = run_app(step=1)
    send(at, 10**9)
    assert shown_step(at) == at.session_state["step"] == int(at.query_params["step"]) > 1
