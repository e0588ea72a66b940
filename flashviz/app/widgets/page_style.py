"""CSS every page shares: what Streamlit's theme leaves below WCAG AA (4.5:1 for text).

- Captions are drawn in a grey with 3.9:1 on the light theme's white: they take the text's
  own colour, a little faded, instead (about 7:1 in light, 11:1 in dark).
- A multiselect's chips are the primary colour with white text: 5.1:1 on the light theme's
  blue, 2.3:1 on the dark theme's sky blue; in dark their text takes the page's background.

Fixed CSS, no user text; ``st.html`` with only a style element takes no space on the page.
"""

from __future__ import annotations

import streamlit as st

from flashviz.app.widgets.charts import theme_name

CSS = """<style>
[data-testid="stCaptionContainer"] { color: inherit !important; opacity: 0.8; }
</style>"""
DARK_CSS = """<style>
[data-testid="stMultiSelectTagsContainer"] > span,
[data-testid="stMultiSelectTagsContainer"] > span * { color: rgb(23, 22, 20) !important; }
</style>"""


def page_style() -> None:
    st.html(CSS + (DARK_CSS if theme_name() == "dark" else ""))
