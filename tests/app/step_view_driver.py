"""The step panel's browser-drawn parts (``flashviz/app/stepper/step_view.py``) in AppTest.

AppTest runs no JavaScript: it sees each part as a ``bidi_component`` element whose data is
what the browser gets (the window's headings and figure JSON). ``move`` does what a click
on First / Previous / Next / Last does in ``frontend/step_view.js``: send the buttons part's
state ``{"move": {"step", "seq"}}`` and rerun.
"""

from __future__ import annotations

import itertools
import json

from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from flashviz.app.stepper.step_view import GROUP
from tests.support import spec

_SEQ = itertools.count(1)


def parts(at: AppTest) -> dict[str, tuple[str, dict]]:
    """Part name -> (element id, data) of each step-view part on the page."""
    found = {}
    for el in at.get("bidi_component"):
        data = json.loads(el.proto.json or el.proto.mixed.json or "null")
        if isinstance(data, dict) and data.get("group") == GROUP:
            found[data["part"]] = (el.proto.id, data)
    return found


def shown_step(at: AppTest) -> int:
    return int(parts(at)["buttons"][1]["step"])


def step_title(at: AppTest) -> str:
    """The heading of the step shown, as the old markdown read ("### Step k of n: ...")."""
    data = parts(at)["heading"][1]
    return "### " + data["texts"][str(data["step"])]


def step_charts(at: AppTest) -> dict[str, dict]:
    """``chart_<name>`` -> figure dict of each chart the step shows."""
    out = {}
    for name, (_, data) in parts(at).items():
        fig = data.get("figs", {}).get(str(data["step"]))
        if fig is not None:
            out[f"chart_{name}"] = spec(fig)
    return out


def window_bytes(at: AppTest) -> int:
    """Figure JSON sent in this run, all chart parts and window steps together."""
    return sum(
        len(fig or "") for _, data in parts(at).values() for fig in data.get("figs", {}).values()
    )


def enabled(at: AppTest, to: str) -> bool:
    """Whether the button ``to`` (first, prev, next, last) is enabled (as the browser draws it)."""
    data = parts(at)["buttons"][1]
    k = int(data["step"])
    return k > 0 if to in ("first", "prev") else k < int(data["allowed"])


def move(at: AppTest, to: str) -> AppTest:
    """Click ``to`` (first, prev, next, last) and rerun, as the browser does."""
    _, data = parts(at)["buttons"]
    if not enabled(at, to):
        raise AssertionError(f"{to} is disabled at step {data['step']}")
    k, allowed = int(data["step"]), int(data["allowed"])
    return send(at, {"first": 0, "prev": k - 1, "next": k + 1, "last": allowed}[to])


def send(at: AppTest, step: object) -> AppTest:
    """Send the buttons part the move to ``step`` (what a browser could send) and rerun."""
    element_id, _ = parts(at)["buttons"]
    state = WidgetState(id=element_id)
    state.json_value = json.dumps({"move": {"step": step, "seq": f"test.{next(_SEQ)}"}})
    states = at._tree.get_widget_states()  # AppTest has no API for a component's state
    states.widgets.append(state)
    return at._run(states)


def slide(at: AppTest, step: int) -> AppTest:
    """Drag the step slider to ``step``: the browser sends the same move as a button."""
    assert "slider" in parts(at), "no step slider on the page"
    return send(at, step)


def step_text(at: AppTest, name: str) -> str:
    """The HTML of text part ``name`` (explanation, counters, bug, code) at the shown step."""
    data = parts(at)[name][1]
    return data["bodies"][data["texts"][str(data["step"])]]
