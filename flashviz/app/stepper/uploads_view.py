"""Widgets for one's own tensors: upload Q, K, V; download the trace to diff a kernel.

``qkv_uploader`` reads and checks the file with ``flashviz.io.uploads`` (no pickle, size and
shape limits) and answers with ``st.error`` (the message says what is wrong) or
``st.success`` (the shapes), the file name and message shown as literal text
(``safe_text``). The parsed arrays (in their own dtype, ``QKVUpload``) are kept in session
state per uploaded file, so a rerun does not parse the file again.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import streamlit as st

from flashviz.app.cached import cached
from flashviz.app.widgets.safe_text import plain_message
from flashviz.core.trace import Trace
from flashviz.io.bounded_read import MAX_UPLOAD_BYTES, UploadError, short_name
from flashviz.io.trace_export import trace_npz
from flashviz.io.uploads import QKVUpload, read_qkv
from flashviz.lab.budget import MAX_CELLS, MAX_HEAD_DIM

REFUSED = "_upload_refused"  # session state: why the uploaded file was refused (this run)
ACCEPTED = (
    "An `.npz` holding arrays `q` (n_q, d), `k` and `v` (n_k, d), saved with "
    "`np.savez(f, q=q, k=k, v=v)`, or one `.npy` of shape (3, n, d) stacking q, k, v. "
    "float16, bfloat16, float32, float64 or integers up to 2^53, converted exactly to "
    "float64; "
    f"at most {MAX_UPLOAD_BYTES // 2**20} MiB, d <= {MAX_HEAD_DIM}, "
    f"n_q x n_k <= {MAX_CELLS:,} (512 x 512). Read without pickle."
)


def parse_upload(data: bytes, filename: str) -> QKVUpload | str:
    """The validated upload, or the message that says why the file cannot be used."""
    try:
        return read_qkv(data, filename)
    except UploadError as exc:
        return str(exc)


@cached()
def _parsed(file_id: str, name: str, _data: bytes) -> QKVUpload | str:
    """The upload parsed once per file, in the server's cache (read again if evicted)."""
    return parse_upload(_data, name)


def qkv_uploader() -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Upload widget for q, k, v: the float64 arrays when a valid file is loaded, else None."""
    file = st.file_uploader(
        "Your own Q, K, V (.npz or .npy)",
        type=["npy", "npz"],
        key="upload_qkv",
        max_upload_size=math.ceil(MAX_UPLOAD_BYTES / 2**20) + 1,  # our own check says more
    )
    st.caption(ACCEPTED)
    st.session_state.pop(REFUSED, None)
    if file is None:
        return None
    result = _parsed(file.file_id, file.name, file.getvalue())
    if isinstance(result, str):
        st.error(plain_message(result), icon=":material/error:")
        st.session_state[REFUSED] = result
        return None
    st.success(
        plain_message(f"Loaded {short_name(file.name)}: {result.summary()}"),
        icon=":material/check_circle:",
    )
    return result.arrays


def refused_upload_notice() -> None:
    """In the main area, above the steps: the file just refused, and what the page shows
    instead (the sidebar's message is far down, out of sight)."""
    message = st.session_state.get(REFUSED)
    if message:
        st.error(
            plain_message(f"Your file was not used: {message} The steps below are the "
                          "generated problem of the sidebar's settings."),
            icon=":material/error:",
        )  # fmt: skip


def trace_download_button(load: Callable[[], Trace]) -> None:
    """Download every step's m, l, alpha, o (and the problem) as .npz to diff one's kernel.

    ``load`` fetches the trace (from the cache) now and on a click: the deferred download
    keeps the loader, not the trace."""
    trace = load()
    st.download_button(
        "Download the trace (.npz)",
        data=lambda: trace_npz(load()),  # built on click only
        file_name=f"flashviz_trace_{trace.n_q}x{trace.n_k}x{trace.d}.npz",
        mime="application/octet-stream",
        key="download_trace",
        icon=":material/download:",
        help="m, l, alpha (n_j, n_q) and o (n_j, n_q, d): the state after each K/V block j, "
        "by query row; s and p (n_q, n_k); final O and L; the steps; q, k, v and the "
        "settings. Load with np.load(f, allow_pickle=False) and compare your kernel's "
        "state after each K/V block with t['m'][j], t['l'][j], t['o'][j] where "
        "t['row_ran'][j]. Names are listed in flashviz/io/trace_export.py.",
    )
