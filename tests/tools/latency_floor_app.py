"""The floor for stepping latency: a minimal Streamlit page whose fragment redraws two 4x4
Plotly heatmaps when a button is clicked. ``tests/tools/measure_latency.py`` and
``tests/timing/test_browser_latency.py`` time the stepper against it, side by side."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st


@st.fragment
def _steps() -> None:
    if st.button("Next", key="btn_next"):
        st.session_state.step = st.session_state.get("step", 0) + 1
    k = st.session_state.get("step", 0)
    st.markdown(f"### Step {k}")
    rng = np.random.default_rng(k)
    for name in ("a", "b"):
        fig = go.Figure(go.Heatmap(z=rng.standard_normal((4, 4))))
        st.plotly_chart(fig, key=f"chart_{name}")


st.set_page_config(page_title="latency floor", layout="wide")
_steps()
