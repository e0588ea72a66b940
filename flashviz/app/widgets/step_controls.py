"""First / Previous / Next / Last buttons and a slider over one step index in session state.

Shared by the stepper, the FA1 vs FA2 page and the online-softmax debugger: each passes the
session-state key of its step, the last index and the prefix of its button keys.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

MOVES = [
    ("first", "First", ":material/first_page:"),
    ("prev", "Previous", ":material/chevron_left:"),
    ("next", "Next", ":material/chevron_right:"),
    ("last", "Last", ":material/last_page:"),
]


SLIDER_PX = 76  # a labelled slider's height (72 px): the progress bar gets the same box


def _move(key: str, to: str, last: int, on_move: Callable[[], None] | None) -> None:
    k = int(st.session_state[key])
    st.session_state[key] = {
        "first": 0,
        "prev": max(k - 1, 0),
        "next": min(k + 1, last),
        "last": last,
    }[to]
    if on_move is not None:
        on_move()


def step_controls(
    key: str,
    last: int,
    key_prefix: str,
    *,
    label: str = "step",
    locked: bool = False,
    on_move: Callable[[], None] | None = None,
    on_slide: Callable[[], None] | None = None,
    slider: bool = True,
    buttons: bool = True,
) -> int:
    """Draw the four buttons (keys ``key_prefix`` + first/prev/next/last) and, when there is
    more than one step, a slider labelled ``label``, all moving ``st.session_state[key]``
    within 0 .. ``last``. ``slider`` False: a progress bar stands in for the slider (while
    playing, so that a stale slider value from the browser cannot move the step back).
    ``locked``: Next, Last and the slider are disabled (the quiz holds
    the next step back). ``on_move`` runs after any user move; ``on_slide``, if given, after
    a slider move instead (a Play timer tells a stale slider value from a button press).
    ``buttons`` False: the slider only (the stepper's buttons are drawn in the browser,
    ``flashviz.app.stepper.step_view``). Returns the step."""
    st.session_state[key] = min(max(int(st.session_state.get(key, 0)), 0), last)
    for col, (to, text, icon) in zip(st.columns(4) if buttons else (), MOVES, strict=False):
        col.button(
            text,
            key=f"{key_prefix}{to}",
            icon=icon,
            on_click=_move,
            args=(key, to, last, on_move),
            width="stretch",
            disabled=locked and to in ("next", "last"),
        )
    k = int(st.session_state[key])
    if last > 0:  # a slider needs two values; the bar standing in for it takes its height
        with st.container(height=SLIDER_PX, border=False):
            if slider:
                slid = on_move if on_slide is None else on_slide
                st.slider(label, 0, last, key=key, on_change=slid, disabled=locked)
            else:
                st.progress(k / last, text=f"{label} {k} of {last}")
    return k
