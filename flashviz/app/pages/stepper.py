"""Page 1, "Stepper": step through FlashAttention-2 tile by tile (the step panel, then the
whole run, correctness and downloads)."""

from __future__ import annotations

import functools
from dataclasses import replace

import streamlit as st

from flashviz.app.stepper import presentation
from flashviz.app.stepper.model import first_bad_step, load_context
from flashviz.app.stepper.sections import (
    correctness_section,
    downloads_section,
    how_to_read,
    whole_run_section,
)
from flashviz.app.stepper.sidebar import problem_sidebar
from flashviz.app.stepper.state import PRESENT, PROBLEM_FIELDS, STEPPER_FIELDS
from flashviz.app.stepper.step_panel import play_controls, step_panel
from flashviz.app.stepper.uploads_view import refused_upload_notice
from flashviz.app.widgets.class_question_view import class_question_section
from flashviz.app.widgets.page_state import keep, mirror_url
from flashviz.app.widgets.problem_errors import problem_errors_view
from flashviz.lab.problem import problem_errors
from flashviz.lab.problem_spec import gqa_note

# Less space above the title, so that the step buttons and the charts share the first
# screen at 1280 x 720 (the page's top padding is 6rem by default).
FIRST_SCREEN = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem !important; }
[data-testid="stMainBlockContainer"] h1 { padding-top: 0.25rem !important; }
</style>"""


def render() -> None:
    warnings = keep(STEPPER_FIELDS)
    presentation.toggle()
    spec, uploaded = problem_sidebar()
    present = presentation.on()
    mirror_url([PRESENT])  # entering or leaving it shows in the URL at once
    if present:
        presentation.style()
    else:
        st.markdown(FIRST_SCREEN, unsafe_allow_html=True)  # fixed CSS, no user text
        st.title("FlashAttention-2, tile by tile")
    for w in warnings:
        st.warning(w)
    refused_upload_notice()
    errors = problem_errors(spec)
    if errors:
        problem_errors_view(errors, spec, STEPPER_FIELDS)
        return
    # the same steps, other numbers: keep the step
    same_problem = replace(spec, precision="", bug="", head=0, rescale_threshold=0.0)
    if st.session_state.get("_spec") != same_problem:  # a new problem starts at step 0
        if "_spec" in st.session_state:
            st.session_state.step = 0
        st.session_state["_spec"] = same_problem
    mirror_url(PROBLEM_FIELDS)
    if uploaded is not None:
        st.info(
            "Tracing your uploaded tensors. A link cannot carry them: it reopens the "
            "settings and step only.",
            icon=":material/upload_file:",
        )
    try:
        ctx = load_context(spec, uploaded)
        bug_at = first_bad_step(spec, uploaded)
    except ValueError as e:  # uploaded values beyond the chosen precision's range
        st.error(f"Cannot trace this problem: {e}.")
        return
    load = functools.partial(load_context, spec, uploaded)  # the fragment holds no problem
    if (note := gqa_note(spec)) is not None:
        st.caption(note)  # plain text: numbers only, no user text
    if present:
        step_panel(load, None, bug_at, present=True)
        return
    step_panel(load, play_controls(), bug_at)
    class_question_section(lambda: load().trace)  # a class's prediction of the next step
    how_to_read()
    whole_run_section(spec, uploaded)
    correctness_section(ctx)
    downloads_section(load)
