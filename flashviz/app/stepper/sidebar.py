"""The stepper's problem in the sidebar: one's own tensors, then every problem field."""

from __future__ import annotations

import streamlit as st

from flashviz.app.stepper.model import Uploaded
from flashviz.app.stepper.state import PROBLEM
from flashviz.app.stepper.uploads_view import qkv_uploader
from flashviz.app.widgets.problem import FIXED_BY_UPLOAD, Row, problem_widgets
from flashviz.io.uploads import qkv_digest
from flashviz.lab.mask_lab import MASK_KINDS
from flashviz.lab.problem_spec import NO_MASK, ProblemSpec

ROWS: tuple[Row, ...] = (
    "pattern",
    ("n_q", "n_k"),
    ("block_q", "block_kv"),
    ("head_dim", "seed"),
    "scale",
    "causal",
    "causal_align",
    "mask",
    "mask_size",
    ("group", "head"),
    "precision",
    "rescale_threshold",
    "bug",  # the bug zoo: the trace is recorded with this mistake in the update
)


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


def problem_sidebar() -> tuple[ProblemSpec, Uploaded]:
    """Draw the problem widgets; returns the problem (its ``upload``: the digest of the
    user's own tensors, or "") and those tensors, q, k, v, when the user traces them."""
    sb = st.sidebar
    sb.header("Problem")
    with sb.expander("Your own tensors (.npz / .npy)"):
        uploaded = qkv_uploader()
    _use_upload(uploaded)
    fixed = (*FIXED_BY_UPLOAD, "group", "head") if uploaded is not None else ()
    one_head: tuple[str, ...] = ()
    if st.session_state.get("group", 1) == 1:  # no group: one query head, 0, not to be chosen
        st.session_state.head, one_head = 0, ("head",)
    disabled = (*fixed, *_masked_out(), *one_head)
    return problem_widgets(PROBLEM, ROWS, disabled=disabled), uploaded


def _masked_out() -> tuple[str, ...]:
    """The fields a FlexAttention mask turns off: the causal toggle and its alignment while
    one is chosen, its size while none is (or the mask takes none)."""
    mask = st.session_state.get("mask", NO_MASK)
    if mask == NO_MASK:
        return ("mask_size",)
    sized = mask in MASK_KINDS and MASK_KINDS[mask].size_label
    return ("causal", "causal_align", *(() if sized else ("mask_size",)))
