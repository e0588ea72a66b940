"""The problem set-up in the sidebar. Widgets carry no ``value=``: session state holds it."""

from __future__ import annotations

import streamlit as st

from flashviz.checks import CAUSAL_ALIGNS
from flashviz.patterns import PATTERNS

ALIGN_LABELS = {
    "bottom_right": "bottom-right (flash-attn >= 2.1)",
    "top_left": "top-left (PyTorch is_causal)",
}


def problem_sidebar() -> None:
    """Draw the problem widgets; their values land in ``st.session_state`` under their keys."""
    sb = st.sidebar
    sb.header("Problem")
    sb.selectbox("Input pattern", list(PATTERNS), format_func=PATTERNS.get, key="pattern")
    a, b = sb.columns(2)
    a.number_input("n_q (queries)", step=1, key="n_q")
    b.number_input("n_k (keys)", step=1, key="n_k")
    a.number_input("block_q", step=1, key="block_q")
    b.number_input("block_kv", step=1, key="block_kv")
    a.number_input("head dim d", step=1, key="head_dim")
    b.number_input("seed", step=1, key="seed")
    sb.number_input(
        "softmax scale (0 = 1/sqrt(d))",
        step=0.05,
        format="%.4f",
        key="scale",
        help="tau in S = tau Q K^T; 0 picks the usual 1/sqrt(d).",
    )
    sb.toggle("causal mask", key="causal")
    sb.radio(
        "causal alignment",
        list(CAUSAL_ALIGNS),
        format_func=ALIGN_LABELS.get,
        key="causal_align",
        help="Bottom-right: query r sees key c iff c <= r + n_k - n_q. Top-left: iff c <= r. "
        "They agree when n_q = n_k.",
    )
