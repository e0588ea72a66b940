"""Every Plotly chart of the app, drawn in the colours of the current light or dark theme.

Streamlit's own chart theme prints tick labels in faded grey at ~13 px (3.7:1 on white);
charts here are drawn with ``theme=None`` and their text in the theme's ink instead: at
least 16 px (the figures' ``font.size``) and well above WCAG AA's 4.5:1 in both themes.
The theme is the one the browser reports (``st.context.theme.type``); the sidebar's
Light / Dark switch (``flashviz.app.theme_switch``) changes it and reruns the app, so the
charts follow at once.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from flashviz.figures.style import INK

THEMES = {  # ink on paper: 14.7:1 (light) and 17.3:1 (dark); paper = Streamlit's page
    "light": {"ink": "#262730", "paper": "#FFFFFF"},
    "dark": {"ink": "#FAFAFA", "paper": "#171614"},
}


def theme_name() -> str:
    """'light' or 'dark': the theme the browser shows now."""
    kind = st.context.theme.type
    return kind if kind in THEMES else "light"


INKS = {theme["ink"] for theme in THEMES.values()} | {INK}


def themed(fig: go.Figure, theme: str) -> go.Figure:
    """``fig`` with its text, paper and plot background in ``theme``'s colours, and the lines,
    markers and shapes drawn in ink (``flashviz.figures.style.INK``) in the theme's (in place)."""
    ink = THEMES[theme]["ink"]
    fig.layout.font.color = ink
    fig.layout.paper_bgcolor = THEMES[theme]["paper"]
    fig.layout.plot_bgcolor = THEMES[theme]["paper"]
    for trace in fig.data:
        for part in ("line", "marker"):
            if getattr(getattr(trace, part, None), "color", None) in INKS:
                getattr(trace, part).color = ink
    for shape in fig.layout.shapes:
        if shape.line.color in INKS:
            shape.line.color = ink
    return fig


def chart(fig: go.Figure, key: str | None = None, container: object = None) -> None:
    """Draw ``fig`` full width in the current theme's colours."""
    target = st if container is None else container
    target.plotly_chart(themed(fig, theme_name()), width="stretch", key=key, theme=None)  # type: ignore[attr-defined]
