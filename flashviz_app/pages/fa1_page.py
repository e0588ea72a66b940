"""Page: FA1 vs FA2 (placeholder until its issue-5 part lands)."""

from __future__ import annotations

import streamlit as st


def render() -> None:
    st.title("FA1 vs FA2")
    st.info("This page is being built.")
