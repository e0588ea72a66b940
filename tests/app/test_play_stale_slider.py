"""Play against a stale step slider (seen in Chromium under load: 14, 15, 14, 15).

While playing, the step slider is hidden. The first timer rerun after Play can start before
the browser has drawn the Play rerun, so its request still carries the slider's old step.
That value must not move the played step back. The rerun below sends exactly that request:
the widget states of the current page plus the slider's state from before Play.
"""

from __future__ import annotations

from streamlit.proto.WidgetStates_pb2 import WidgetStates

from tests.app.step_view_driver import step_title
from tests.app.test_stepper_page import run_app


def test_a_stale_slider_value_after_play_does_not_step_back() -> None:
    at = run_app(step=14)
    stale = at.slider(key="step")._widget_state  # what the browser still holds
    assert list(stale.double_array_value.data) == [14]
    at.button(key="btn_play").click().run()
    assert at.session_state["step"] == 15 and step_title(at).startswith("### Step 15 of")
    assert "step" not in [s.key for s in at.slider]  # hidden while playing
    states = WidgetStates()
    states.widgets.extend(at._tree.get_widget_states().widgets)
    states.widgets.append(stale)
    at._run(states)  # a run carrying the slider's pre-Play step
    assert not at.exception, at.exception
    print("step after the stale rerun:", at.session_state["step"], step_title(at))
    assert at.session_state["step"] == 16, step_title(at)
    assert step_title(at).startswith("### Step 16 of")
