"""A visible Light / Dark switch for the whole app.

Streamlit 1.67 has no Python API to set the theme at run time (``st.set_option`` takes
``client.*`` options only); the theme lives in the browser. So the switch is a small
components-v2 component that asks Streamlit's frontend for the theme the same way a person
does: it selects Light or Dark in the main menu's theme section (the menu opened unseen),
which goes through Streamlit's own ``setTheme``: the whole page changes, and Streamlit keeps
the choice in its local storage. Then the component reruns the app, whose charts take
their colours from the theme the browser reports (``st.context.theme.type``,
``flashviz.app.widgets.charts``). It also reruns when the theme changes another way (the main menu,
the operating system's setting), so the charts always follow the page.

Kept across pages: a page change inside the app keeps the frontend's theme; a reload of
another page's address (Streamlit stores its choice per address) gets the last choice made
with this switch back from ``localStorage["flashviz-theme"]``. Should the menu ever be
missing, the switch writes Streamlit's stored choice for this address and reloads once.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from flashviz.app.widgets.charts import theme_name

KEY = "theme_switch"  # the sidebar's switch; presentation mode's step bar has its own
FRONTEND = Path(__file__).parent / "frontend"  # the switch's HTML, CSS and JavaScript
_component = st.components.v2.component(
    "flashviz.theme_switch",
    html=(FRONTEND / "theme_switch.html").read_text(encoding="utf-8"),
    css=(FRONTEND / "theme_switch.css").read_text(encoding="utf-8"),
    js=(FRONTEND / "theme_switch.js").read_text(encoding="utf-8"),
)


def _theme_changed() -> None:
    """The browser shows another theme now: this rerun draws the charts in it."""


def theme_switch(key: str = KEY) -> None:
    """The Light / Dark switch (the server's current theme tells the browser what the
    charts were drawn in)."""
    _component(key=key, data={"theme": theme_name()}, on_theme_change=_theme_changed)
