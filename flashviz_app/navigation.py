"""The app's pages. Add a page: write ``pages/<name>.py`` with ``render()`` and list it here."""

from __future__ import annotations

import streamlit as st

from flashviz_app.pages import gpu_page, stepper_page


def pages() -> list:
    return [
        st.Page(
            stepper_page.render,
            title="Stepper",
            url_path="stepper",
            default=True,
            icon=":material/grid_on:",
        ),
        st.Page(gpu_page.render, title="GPU timings", url_path="gpu", icon=":material/speed:"),
    ]
