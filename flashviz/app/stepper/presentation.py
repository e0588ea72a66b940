"""Presentation mode: for a lecturer at a projector (toggle in the sidebar, ``?present=true``).

The controls go (sidebar, header, title, explanation, counters, code, the sections below);
a compact step bar (First / Previous / Next / Last, the step heading, Light / Dark) stays
pinned at the top; the tile map, the tile, the running statistics and the accumulator share
one 1280 x 720 screen in a 2 x 2 grid of fixed-size charts, so nothing moves from step to step.
Left / Right step and Home / End jump (the step bar's keys, ``step_view``).
"""

from __future__ import annotations

import streamlit as st

KEY = "present"
CHART_HEIGHT = 285  # px: two rows of charts under the step bar fit 720 px
HALF = 610  # px: a half-width chart at 1280 px without the sidebar
STEP_BAR = "present_bar"  # container key: class st-key-present_bar
THEME_SWITCH = "theme_switch_present"  # the step bar's Light / Dark switch
CSS = f"""<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stHeader"], [data-testid="stToolbar"] {{ display: none !important; }}
[data-testid="stMainBlockContainer"] {{ padding: 0.25rem 1rem 0 1rem !important;
  max-width: 100% !important; }}
.st-key-{STEP_BAR} {{ position: sticky; top: 0; z-index: 999;
  background: var(--st-background-color, inherit); }}
.st-key-{STEP_BAR} h3 {{ font-size: 1.2rem; padding: 0; margin: 0; }}
[data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"] {{ gap: 0.2rem; }}
</style>"""


def on() -> bool:
    return bool(st.session_state.get(KEY, False))


def toggle() -> None:
    """The sidebar switch (its value travels in the URL as ``present``)."""
    st.sidebar.toggle(
        "Presentation mode",
        key=KEY,
        help="For a projector: only the step bar and the four charts, on one 1280 x 720 "
        "screen; Left / Right step, Home / End jump. Leave with the button at the top right.",
    )


def _leave() -> None:
    st.session_state[KEY] = False


def style() -> None:
    """Hide everything but the step panel, pin the step bar. Fixed CSS, no user text."""
    st.markdown(CSS, unsafe_allow_html=True)


def leave_button(container: object) -> None:
    container.button(  # type: ignore[attr-defined]
        "Leave", key="btn_leave_presentation", icon=":material/close_fullscreen:",
        on_click=_leave, help="Back to the full page with its controls",
    )  # fmt: skip
