"""Stepper state in AppTest (finding 9): a change of precision or bug keeps the step; a new
problem starts at step 0. Navigation between pages is covered in the browser
(tests/browser/test_browser_navigation.py): AppTest cannot switch function pages."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()


def test_precision_change_keeps_the_step() -> None:
    at = _app()
    at.session_state["step"] = 7
    at.run()
    at.selectbox(key="precision").set_value("bfloat16").run()
    assert at.session_state["step"] == 7 and not at.exception
    at.selectbox(key="bug").set_value("no_rescale_o").run()
    assert at.session_state["step"] == 7 and not at.exception
    at.number_input(key="n_q").set_value(8).run()  # a new problem starts at step 0
    assert at.session_state["step"] == 0
