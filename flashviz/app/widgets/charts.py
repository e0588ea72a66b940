"""Every Plotly chart of the app, drawn in the colours of the current light or dark theme.

Streamlit's own chart theme prints tick labels in faded grey at ~13 px (3.7:1 on white);
charts here are drawn with ``theme=None`` and their text in the theme's ink instead: at
least 16 px (the figures' ``font.size``) and well above WCAG AA's 4.5:1 in both themes.
The theme is the one the browser reports (``st.context.theme.type``); the sidebar's
Light / Dark switch (``flashviz.app.widgets.theme_switch``) changes it and reruns the app, so the
charts follow at once.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from flashviz.figures.style import INK, ORANGE, SKY_BLUE

THEMES = {  # ink on paper: 14.7:1 (light) and 17.3:1 (dark); paper = Streamlit's page
    "light": {"ink": "#262730", "paper": "#FFFFFF"},
    "dark": {"ink": "#FAFAFA", "paper": "#171614"},
}
# Okabe-Ito colours under WCAG's 3:1 for graphics on the light paper (orange 2.3:1, sky blue
# 2.3:1), drawn darker there (4.0:1 each; same hues); on the dark paper all of them pass.
ON_LIGHT = {ORANGE: "#B86E00", SKY_BLUE: "#2E86C1"}


def theme_name() -> str:
    """'light' or 'dark': the theme the browser shows now."""
    kind = st.context.theme.type
    return kind if kind in THEMES else "light"


INKS = {theme["ink"] for theme in THEMES.values()} | {INK}


def themed(fig: go.Figure, theme: str) -> go.Figure:
    """``fig`` with its text, paper and plot background in ``theme``'s colours, the lines,
    markers and shapes drawn in ink (``flashviz.figures.style.INK``) in the theme's, and on
    the light paper the too-light Okabe-Ito colours darker (``ON_LIGHT``) (in place)."""
    ink = THEMES[theme]["ink"]
    fig.layout.font.color = ink
    fig.layout.paper_bgcolor = THEMES[theme]["paper"]
    fig.layout.plot_bgcolor = THEMES[theme]["paper"]
    swap = {**{c: ink for c in INKS}, **(ON_LIGHT if theme == "light" else {})}
    for trace in fig.data:
        for part in ("line", "marker"):
            holder = getattr(trace, part, None)
            if holder is not None and "color" in holder:
                holder.color = _swapped(holder.color, swap)
        marker = getattr(trace, "marker", None)
        if marker is not None and "line" in marker and "color" in marker.line:
            marker.line.color = _swapped(marker.line.color, swap)
    for shape in fig.layout.shapes:
        shape.line.color = _swapped(shape.line.color, swap)
        shape.fillcolor = _swapped(shape.fillcolor, swap)
    return fig


def _swapped(color: object, swap: dict[str, str]) -> object:
    """``color`` (one colour, or one per point) with the colours in ``swap`` replaced."""
    if isinstance(color, str):
        return swap.get(color, color)
    if isinstance(color, list | tuple):
        return [swap.get(c, c) if isinstance(c, str) else c for c in color]
    return color


def chart(fig: go.Figure, key: str | None = None, container: DeltaGenerator | None = None) -> None:
    """Draw ``fig`` full width in the current theme's colours (in ``container``, or where
    the page is drawing now)."""
    draw = st.plotly_chart if container is None else container.plotly_chart
    draw(themed(fig, theme_name()), width="stretch", key=key, theme=None)
