"""The problem set-up in the sidebar. Widgets carry no ``value=``: session state holds it."""

from __future__ import annotations

import streamlit as st

from flashviz.app.stepper.model import Uploaded
from flashviz.app.stepper.uploads_view import qkv_uploader
from flashviz.core.checks import CAUSAL_ALIGNS
from flashviz.core.precision import PRECISION_LABELS, PRECISIONS
from flashviz.io.uploads import qkv_digest
from flashviz.lab.alignment import ALIGN_LABELS  # the causal alignments' names
from flashviz.lab.bugzoo import BUGS
from flashviz.lab.patterns import PATTERNS
from flashviz.lab.problem_spec import NO_BUG


def _use_upload(uploaded: Uploaded) -> None:
    """Point the problem at the uploaded tensors (their shapes), or back at the pattern."""
    digest = "" if uploaded is None else qkv_digest(*uploaded)
    if st.session_state.get("upload", "") == digest:
        return
    st.session_state.upload = digest
    if uploaded is not None:
        q, k, _ = uploaded
        st.session_state.n_q, st.session_state.n_k = q.shape[0], k.shape[0]
        st.session_state.head_dim = q.shape[1]
        st.session_state.block_q = min(st.session_state.block_q, q.shape[0])
        st.session_state.block_kv = min(st.session_state.block_kv, k.shape[0])


def problem_sidebar() -> Uploaded:
    """Draw the problem widgets; their values land in ``st.session_state`` under their keys.

    Returns the uploaded q, k, v when the user traces their own tensors.
    """
    sb = st.sidebar
    sb.header("Problem")
    with sb.expander("Your own tensors (.npz / .npy)"):
        uploaded = qkv_uploader()
    _use_upload(uploaded)
    own = uploaded is not None
    sb.selectbox(
        "Input pattern", list(PATTERNS), format_func=PATTERNS.get, key="pattern", disabled=own
    )
    a, b = sb.columns(2)
    a.number_input("n_q (queries)", step=1, key="n_q", disabled=own)
    b.number_input("n_k (keys)", step=1, key="n_k", disabled=own)
    a.number_input("block_q", step=1, key="block_q")
    b.number_input("block_kv", step=1, key="block_kv")
    a.number_input("head dim d", step=1, key="head_dim", disabled=own)
    b.number_input("seed", step=1, key="seed", disabled=own)
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
    sb.selectbox(
        "precision",
        list(PRECISIONS),
        format_func=PRECISION_LABELS.get,
        key="precision",
        help="Inputs stored in this type; m, l and o kept in float32 (float64 for the "
        "baseline). 16-bit runs round P~ to the input type for the P~ V matmul, as real "
        "kernels do. See the Precision page for where the error comes from.",
    )
    bug_sidebar()
    return uploaded


def bug_sidebar() -> None:
    """The bug zoo switch: the trace is recorded with this mistake in the update."""
    sb = st.sidebar
    sb.selectbox(
        "bug zoo: inject a mistake",
        [NO_BUG, *BUGS],
        format_func=lambda key: (
            "none (correct FlashAttention-2)" if key == NO_BUG else BUGS[key].title
        ),
        key="bug",
        help="Record the run with a classic online-softmax mistake; the stepper points out "
        "the first step where it leaves the correct run.",
    )
    if st.session_state.get("bug", NO_BUG) != NO_BUG:
        sb.caption(BUGS[st.session_state.bug].explanation)
