"""Presentation mode: for a lecturer at a projector (toggle in the sidebar, ``?present=true``).

The controls go (sidebar, header, title, explanation, counters, code, the sections below).
What stays is a 1280 x 720 stage: a step bar (First / Previous / Next / Last, the step
heading, Light / Dark, Leave), a strip with the step's update and the selected row's
numbers, and the tile map, the tile (at a load or a write: what happens there), the running
statistics and the accumulator in a 2 x 2 grid of fixed-size charts. The browser scales the
whole stage to fill the screen (``step_view``: 1.5x at 1920 x 1080, 3x at 3840 x 2160), so
text grows with the screen and nothing moves from step to step, however the mode was
entered. Left / Right step and Home / End jump (the step bar's keys).
"""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

KEY = "present"
STAGE_W, STAGE_H = 1280, 720  # px: the stage, scaled as a whole to fill the screen
BAR_PX = 44  # the step bar
STRIP_PX = 76  # the formula strip: two lines of equations
CHART_HEIGHT = 280  # px: two rows of charts under the bar and the strip fill the stage
HALF = 616  # px: a half-width chart on the stage (1280 less padding and the column gap)
STEP_BAR = "present_bar"  # container key: class st-key-present_bar
STRIP = "present_strip"
THEME_SWITCH = "theme_switch_present"  # the step bar's Light / Dark switch
CSS = f"""<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stHeader"], [data-testid="stToolbar"] {{ display: none !important; }}
[data-testid="stMain"] {{ overflow: hidden !important; }}
[data-testid="stMainBlockContainer"] {{
  position: fixed; left: 0; top: 0; margin: 0 !important;
  width: {STAGE_W}px !important; max-width: none !important; height: {STAGE_H}px;
  padding: 4px 16px 0 16px !important; overflow: hidden;
  transform-origin: 0 0;
  transform: translate(var(--fv-stage-x, 0px), var(--fv-stage-y, 0px))
             scale(var(--fv-stage-scale, 1));
}}
.st-key-{STEP_BAR} {{ height: {BAR_PX}px; overflow: hidden; }}
.st-key-{STEP_BAR} [data-testid="stColumn"] {{ min-width: 0; overflow: hidden; }}
.st-key-{STEP_BAR} h3 {{ font-size: 20px; padding: 0; margin: 0; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }}
.st-key-{STEP_BAR} .fv-buttons {{ gap: 6px; }}
.st-key-{STEP_BAR} .fv-button {{ min-height: 36px; padding: 2px 6px; gap: 4px; }}
[data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"] {{ gap: 6px; }}
</style>"""


def on() -> bool:
    return bool(st.session_state.get(KEY, False))


def toggle() -> None:
    """The sidebar switch (its value travels in the URL as ``present``)."""
    st.sidebar.toggle(
        "Presentation mode",
        key=KEY,
        help="For a projector: the step bar, the step's numbers and the four charts, scaled "
        "to fill the screen; Left / Right step, Home / End jump. Leave with the button at "
        "the top right.",
    )


def _leave() -> None:
    st.session_state[KEY] = False


def style() -> None:
    """Hide everything but the step panel, pin the step bar. Fixed CSS, no user text."""
    st.markdown(CSS, unsafe_allow_html=True)


def leave_button(container: DeltaGenerator) -> None:
    container.button(
        "Leave", key="btn_leave_presentation", icon=":material/close_fullscreen:",
        on_click=_leave, help="Back to the full page with its controls",
    )  # fmt: skip
