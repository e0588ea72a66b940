"""Parts of the stepper page outside the fragment: how to read it, whole run, correctness."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from flashviz.app.stepper.model import Uploaded, whole_run, whole_run_html
from flashviz.app.stepper.uploads_view import trace_download_button
from flashviz.app.widgets.charts import chart, theme_name
from flashviz.figures import FigureContext
from flashviz.figures.correctness import error_figure
from flashviz.lab.problem_spec import ProblemSpec

HOW_TO_READ = """
- **Tile map** (left): every score s_rc = tau q_r . k_c of the problem, cut into tiles of
  block_q x block_kv. FlashAttention-2 walks query blocks i from top to bottom (outer loop)
  and, for each, the key/value blocks j from left to right (inner loop). Orange outline:
  the tile being processed now; green: tiles done; grey veil: still to come; blue dashed:
  skipped entirely by the mask (the causal mask, or a FlexAttention mask's empty tiles);
  purple dotted inside a tile: partial, the mask applied entry by entry (blank cells).
  The orange bars show the Q block (right) and the K/V block (top) on chip.
- **Current tile**: the scores S_ij of this tile and P~_ij = exp(S_ij - m_new). S is on
  this tile's own colour scale (its colour bar says which numbers); the switch above the
  tile puts it on the map's scale instead. Blank cells are masked.
- **Running statistics**: for each query row of the block, the running max m and running
  sum l after every tile so far, and alpha = exp(m_old - m_new) of this step. Circled
  rows: their max just rose, so alpha < 1 shrinks what was accumulated before.
- **Output accumulator**: o before this tile, after the rescale diag(alpha) o, and after
  adding P~ V_j. At the write step: o / l next to the reference rows and their error.
- Step with the buttons or the slider, or press Play. The URL always points at the current
  view: copy it to share this exact step.
"""


def how_to_read() -> None:
    with st.expander("How to read this page", expanded=False):
        st.markdown(HOW_TO_READ)


def whole_run_section(spec: ProblemSpec, uploaded: Uploaded = None) -> None:
    st.subheader("The whole run")
    st.caption(
        "Runs in your browser (Play / slider), no server round-trips. Download it as "
        "one HTML file to use offline in class."
    )
    theme = theme_name()  # the cached figure is built once per problem and theme
    st.plotly_chart(whole_run(spec, uploaded, theme), width="stretch", key="chart_whole_run",
                    theme=None)  # fmt: skip
    st.download_button(
        "Download the animation (HTML, works offline)",
        data=lambda: whole_run_html(spec, uploaded),
        file_name="flashviz_whole_run.html",
        mime="text/html",
        on_click="ignore",
        key="download_whole_run",
    )


def correctness_section(ctx: FigureContext) -> None:
    st.subheader("Correctness")
    v = ctx.verdict
    tol = f"{v.tol:.2g}" if v.tol == v.tol_lse else f"{v.tol:.2g} for O, {v.tol_lse:.2g} for L"
    message = (
        f"max |O - O_ref| = {v.max_err_o:.2e}, max |L - L_ref| = {v.max_err_lse:.2e} "
        f"(tolerance {tol}) against `attention_reference` (float64) on the inputs the run saw."
    )
    if ctx.trace.precision != "float64":
        message += (
            f" Inputs in {ctx.trace.precision}: the tolerance is twice the error of naive "
            "attention in the same precision, plus 4 ulps (flash-attn's rule)."
        )
    if ctx.trace.bug is not None and not v.ok:
        st.error(
            f"Wrong, as the bug ({ctx.trace.bug}) makes it: {message}", icon=":material/bug_report:"
        )
    elif ctx.trace.bug is not None:
        st.warning(f"The bug ({ctx.trace.bug}) does not bite on this problem: {message}")
    elif v.ok:
        st.success(
            f"Correct: the tiled run matches the reference. {message}",
            icon=":material/check_circle:",
        )
    else:
        st.error(
            f"Mismatch: the tiled run differs from the reference. {message}",
            icon=":material/error:",
        )
    chart(error_figure(ctx), key="chart_errors")


def downloads_section(load: Callable[[], FigureContext]) -> None:
    st.subheader("Check your own kernel")
    st.caption(
        "Every step's m, l, alpha and o in one .npz, to diff against your kernel's "
        "intermediate state (the names are listed in flashviz/io/trace_export.py)."
    )
    trace_download_button(lambda: load().trace)
