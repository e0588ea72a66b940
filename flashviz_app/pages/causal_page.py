"""Page: Causal alignment (placeholder until its issue-5 part lands)."""

from __future__ import annotations

import streamlit as st


def render() -> None:
    st.title("Causal alignment")
    st.info("This page is being built.")
