"""Stepper state in AppTest: a change of precision or bug keeps the step; a new
problem starts at step 0. Navigation between pages is covered in the browser
(tests/browser/test_browser_navigation.py): AppTest cannot switch function pages."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from flashviz.lab.problem import build_trace
from flashviz.lab.problem_spec import ProblemSpec
from tests.app.step_view_driver import step_title
from tests.support import APP_SCRIPT

ROOT = Path(__file__).resolve().parents[2]


def _app() -> AppTest:
    return AppTest.from_file(str(APP_SCRIPT), default_timeout=120).run()


def test_precision_change_keeps_the_step() -> None:
    last = len(build_trace(ProblemSpec()).steps) - 1
    at = _app()
    at.session_state["step"] = 7
    at.run()
    at.selectbox(key="precision").set_value("bfloat16").run()
    assert at.session_state["step"] == 7
    assert step_title(at).startswith(f"### Step 7 of {last}")
    at.selectbox(key="bug").set_value("no_rescale_o").run()
    assert at.session_state["step"] == 7
    assert step_title(at).startswith(f"### Step 7 of {last}")
    at.number_input(key="n_q").set_value(8).run()  # a new problem starts at step 0
    assert at.session_state["step"] == 0
    last = len(build_trace(ProblemSpec(n_q=8)).steps) - 1
    assert step_title(at).startswith(f"### Step 0 of {last}")
