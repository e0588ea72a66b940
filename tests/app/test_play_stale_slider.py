"""Play against a stale step slider (seen in Chromium under load: 14, 15, 14, 15).

On the backward page the step slider is a Streamlit widget, hidden while playing. The first
timer rerun after Play can start before the browser has drawn the Play rerun, so its
request still carries the slider's old step. That value must not move the played step
back. The rerun below sends exactly that request: the widget states of the current page
plus the slider's state from before Play. (The stepper's slider is drawn by its step view
in the browser and only sends a step when a person drags it.)
"""

from __future__ import annotations

from streamlit.proto.WidgetStates_pb2 import WidgetStates

from tests.app.test_backward_page import heading, open_page


def test_a_stale_slider_value_after_play_does_not_step_back() -> None:
    at = open_page()
    at.slider(key="bwd_step").set_value(14).run()
    stale = at.slider(key="bwd_step")._widget_state  # what the browser still holds
    assert list(stale.double_array_value.data) == [14]
    at.button(key="btn_bwd_play").click().run()
    assert "bwd_step" not in [s.key for s in at.slider]  # hidden while playing
    at.run()  # the timer's first step
    assert at.session_state["bwd_step"] == 15 and heading(at).startswith("### Step 15 of")
    states = WidgetStates()
    states.widgets.extend(at._tree.get_widget_states().widgets)
    states.widgets.append(stale)
    at._run(states)  # a run carrying the slider's pre-Play step
    assert not at.exception, at.exception
    print("step after the stale rerun:", at.session_state["bwd_step"], heading(at))
    assert at.session_state["bwd_step"] == 16, heading(at)
    assert heading(at).startswith("### Step 16 of")
