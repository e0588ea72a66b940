"""Page: the online-softmax debugger. One row of scores, chunk by chunk, with the bug zoo.

The row comes from a pattern, typed or pasted numbers, or an uploaded ``.npy``; it is
split into chunks; each chunk updates m, l, alpha and the running sum exactly as the FA2
inner loop does (``flashviz.lab.row_debugger.debug_row``), next to the exact softmax of the keys
seen so far. Bug switches inject the classic mistakes; each says where it first bites and
why (``first_bite``). Widgets carry no ``value=``: their values live in session state,
re-set at every run so that the typed row or the pattern survive a switch of source.
Every key starts with ``dbg_``.
"""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from flashviz.app.cached import cached
from flashviz.app.widgets.charts import chart
from flashviz.app.widgets.page_shell import page_shell
from flashviz.app.widgets.page_state import page_fields
from flashviz.app.widgets.safe_text import plain_message
from flashviz.app.widgets.step_controls import step_controls
from flashviz.figures.debugger import (
    CORRECT,
    estimate_figure,
    scores_figure,
    state_figure,
    variant_label,
)
from flashviz.io.bounded_read import MAX_UPLOAD_BYTES
from flashviz.io.uploads import load_score_row
from flashviz.lab.bugzoo import BUGS, TOL
from flashviz.lab.row_debugger import RowStep, debug_row, first_bad_chunk, first_bite
from flashviz.lab.row_input import (
    DEMO_PATTERN,
    MAX_ROW,
    MAX_TEXT_CHARS,
    ROW_PATTERNS,
    make_row,
    parse_row,
    row_values,
)

SOURCES = {
    "pattern": "a pattern",
    "typed": "typed or pasted numbers",
    "upload": "an uploaded .npy row",
}
DEFAULT_TEXT = "0.5, 1.0, -inf, 0.2, 3.0, 1.5, 2.0, 4.5, -1.0, 0.0, 6.0, -inf"
MAX_D = 8
MAX_SEED = 2**31 - 1
BOUNDS = {  # (min, max) of the page's bounded number inputs, and of their URL values
    "dbg_n": (1, MAX_ROW), "dbg_chunk": (1, MAX_ROW), "dbg_d": (1, MAX_D),
    "dbg_seed": (0, MAX_SEED), "dbg_component": (0, MAX_D - 1),
}  # fmt: skip
DEFAULT_N, DEFAULT_CHUNK = 24, 4  # also the size a bug's demonstration row goes back to
DEFAULTS: dict[str, object] = {
    "dbg_source": "pattern",
    "dbg_pattern": "increasing",
    "dbg_n": DEFAULT_N,
    "dbg_text": DEFAULT_TEXT,
    "dbg_chunk": DEFAULT_CHUNK,
    "dbg_d": 1,
    "dbg_seed": 0,
    "dbg_bugs": ["no_rescale_o", "stale_l"],
    "dbg_step": 0,
    "dbg_component": 0,
}

FIELDS = page_fields(
    DEFAULTS,
    choices={"dbg_source": tuple(SOURCES), "dbg_pattern": tuple(ROW_PATTERNS),
             "dbg_bugs": tuple(BUGS)},
    local=("dbg_text",),  # a typed row can be long: it stays out of links
    bounds=BOUNDS,
)  # fmt: skip
Runs = dict[str, list[RowStep]]
INTRO = (
    "One query row of scores s_j, split into chunks as the FA2 inner loop splits the "
    "keys into K/V blocks. Each chunk updates the running max m, the rescale "
    "alpha = exp(m_prev - m), the running sum l = alpha l + sum exp(s - m) and the "
    "running weighted sum o = alpha o + sum exp(s - m) v_j; o / l is compared with the "
    "exact softmax(s) v of the keys seen so far. Switch bugs on to see where each "
    "classic mistake first bites."
)


# Row -------------------------------------------------------------------------------------


def read_upload(data: bytes, filename: str) -> np.ndarray:
    """The uploaded score row, within the debugger's length limit; ValueError says why not."""
    return load_score_row(data, filename, max_len=MAX_ROW)


def _row_source() -> np.ndarray | None:
    """The row of scores from the chosen source, or None (after saying why) if there is none."""
    source = st.radio(
        "Row of scores from",
        list(SOURCES),
        format_func=SOURCES.get,
        horizontal=True,
        key="dbg_source",
    )
    _settings(with_length=source == "pattern")
    try:
        if source == "pattern":  # the full width: the patterns' descriptions are long
            st.selectbox(
                "pattern",
                list(ROW_PATTERNS),
                format_func=lambda p: f"{p}: {ROW_PATTERNS[p]}",
                key="dbg_pattern",
            )
            ss = st.session_state
            return make_row(ss.dbg_pattern, ss.dbg_n, ss.dbg_chunk, ss.dbg_seed)
        if source == "typed":
            text = st.text_area(
                "scores (commas, spaces or new lines; -inf masks a key)",
                key="dbg_text",
                height=100,
                max_chars=MAX_TEXT_CHARS,  # one paste must not hold the server for long
            )
            return parse_row(text)
        file = st.file_uploader(
            "a .npy file holding one row of scores (1-D)",
            type=["npy"],
            key="dbg_upload",
            max_upload_size=math.ceil(MAX_UPLOAD_BYTES / 2**20) + 1,
        )
        st.caption(
            f"Save it with `np.save(f, s)`: a 1-D array of at most {MAX_ROW} real numbers, "
            "-inf for a masked key (read without pickle)."
        )
        if file is None:
            st.info("Upload a .npy row to debug it, or pick a pattern.")
            return None
        return read_upload(file.getvalue(), file.name)
    except ValueError as exc:  # it may quote the typed text or the file name: show it literally
        st.error(plain_message(exc), icon=":material/error:")
        return None


def _settings(with_length: bool) -> None:
    """One row of numbers: the pattern's length n (for a pattern), chunk size, d, seed."""
    cols = iter(st.columns(4 if with_length else 3))
    if with_length:
        next(cols).number_input("length n", *BOUNDS["dbg_n"], step=1, key="dbg_n")
    next(cols).number_input("chunk size", *BOUNDS["dbg_chunk"], step=1, key="dbg_chunk")
    next(cols).number_input("d (size of v_j)", *BOUNDS["dbg_d"], step=1, key="dbg_d")
    next(cols).number_input("seed", *BOUNDS["dbg_seed"], step=1, key="dbg_seed")


def _bug_switches() -> list[str]:
    bugs = st.multiselect(
        "Bug switches (each is compared with the correct update)",
        list(BUGS),
        format_func=lambda k: BUGS[k].title,
        key="dbg_bugs",
    )
    for bug in bugs:
        st.caption(f"**{BUGS[bug].title}**: {BUGS[bug].explanation}")
    return bugs


@cached()
def cached_runs(scores: np.ndarray, chunk: int, d: int, seed: int, bugs: tuple[str, ...]) -> Runs:
    values = row_values(scores.size, d, seed)
    return {key: debug_row(scores, chunk, values, None if key == CORRECT else key)
            for key in (CORRECT, *bugs)}  # fmt: skip


# Stepping --------------------------------------------------------------------------------


def _goto(step: int) -> None:
    st.session_state.dbg_step = step


def _load_demo(bug: str) -> None:
    """Switch to the pattern on which ``bug`` bites, at the chunk where it first does."""
    ss = st.session_state
    ss.dbg_source, ss.dbg_pattern = "pattern", DEMO_PATTERN[bug]
    n, chunk, seed = (int(ss.get(f"dbg_{k}", DEFAULTS[f"dbg_{k}"])) for k in ("n", "chunk", "seed"))
    bite = first_bite(bug, make_row(ss.dbg_pattern, n, chunk, seed), chunk)
    if bite is None:  # too short a row or too long a chunk: back to the demo's own size
        n, chunk = DEFAULT_N, DEFAULT_CHUNK
        ss.dbg_n, ss.dbg_chunk = n, chunk
        bite = first_bite(bug, make_row(ss.dbg_pattern, n, chunk, seed), chunk)
    ss.dbg_step = bite.index if bite else 0
    if bug not in ss.dbg_bugs:
        ss.dbg_bugs = [*ss.dbg_bugs, bug]


# Messages and tables ---------------------------------------------------------------------


def bite_message(bug: str, steps: list[RowStep], scores: np.ndarray, chunk: int) -> str | None:
    """Where and why ``bug`` first bites on this row, or None if it never does."""
    first = first_bad_chunk(steps)
    if first is None:
        return None
    cols, bite = steps[first].cols, first_bite(bug, scores, chunk)
    why = f": {bite.reason}" if bite is not None and bite.index == first else ""
    return (
        f"**{BUGS[bug].title}** first bites at chunk {first} (keys {cols.start}-{cols.stop - 1})"
        f"{why}. |error| there: {steps[first].error:.3g}."
    )


def _messages(runs: Runs, scores: np.ndarray, chunk: int, step: int) -> None:
    for bug in (k for k in runs if k != CORRECT):
        text = bite_message(bug, runs[bug], scores, chunk)
        a, b = st.columns([3, 2], vertical_alignment="center")  # the button's text fits
        if text is None:
            a.success(
                f"**{BUGS[bug].title}** does not bite on this row: every chunk matches the "
                f"exact softmax within {TOL:g}. It bites {BUGS[bug].bites_when}.",
                icon=":material/check_circle:",
            )
            b.button(
                f"Load a row where it bites ({DEMO_PATTERN[bug]})",
                key=f"dbg_demo_{bug}",
                on_click=_load_demo,
                args=(bug,),
            )
            continue
        a.error(text, icon=":material/bug_report:")
        first = first_bad_chunk(runs[bug])
        if first != step:
            b.button(f"Go to chunk {first}", key=f"dbg_goto_{bug}", on_click=_goto, args=(first,))


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def step_table(steps: list[RowStep], step: int, component: int) -> dict[str, list]:
    """Columns of the table: one row per chunk so far."""
    shown = steps[: step + 1]
    return {
        "chunk": [s.index for s in shown],
        "keys": [f"{s.cols.start}-{s.cols.stop - 1}" for s in shown],
        "m": [_fmt(s.m) for s in shown],
        "l": [_fmt(s.l) for s in shown],
        "alpha": [_fmt(s.alpha) for s in shown],
        f"estimate o[{component}]": [_fmt(s.estimate[component]) for s in shown],
        f"exact o[{component}]": [_fmt(s.exact[component]) for s in shown],
        "max |error|": [f"{s.error:.3g}" for s in shown],
        "off": ["x" if not s.error <= TOL else "" for s in shown],
    }


def _tables(runs: Runs, step: int, component: int) -> None:
    st.subheader("The numbers, chunk by chunk")
    st.caption(
        "m, l and alpha are each variant's own state after the chunk; the estimate is "
        "o / l (a normalising variant keeps o normalised); exact is softmax(s) v over the "
        f"keys seen so far; 'off' marks |error| > {TOL:g}."
    )
    tabs = st.tabs([variant_label(k) for k in runs])
    for tab, steps in zip(tabs, runs.values(), strict=True):
        tab.dataframe(step_table(steps, step, component), hide_index=True)


def _current(runs: Runs, step: int, component: int) -> None:
    s = runs[CORRECT][step]
    m_prev = runs[CORRECT][step - 1].m if step > 0 else -np.inf
    st.markdown(
        f"### Chunk {step}: keys {s.cols.start}-{s.cols.stop - 1}\n"
        f"Correct update: m = max({_fmt(m_prev)}, max s) = {_fmt(s.m)}, "
        f"alpha = exp(m_prev - m) = {_fmt(s.alpha)}, l = alpha l_prev + sum exp(s - m) = "
        f"{_fmt(s.l)}; estimate o[{component}] / l = {_fmt(s.estimate[component])}, "
        f"exact {_fmt(s.exact[component])}."
    )


# Page ------------------------------------------------------------------------------------


@page_shell("Online-softmax debugger", FIELDS, INTRO)
def render() -> None:
    scores = _row_source()  # the source, the numbers, then the row itself: each full width
    bugs = _bug_switches()
    if scores is None:
        return
    ss = st.session_state
    try:
        runs = cached_runs(scores, int(ss.dbg_chunk), int(ss.dbg_d), int(ss.dbg_seed), tuple(bugs))
    except ValueError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    last = len(runs[CORRECT]) - 1
    ss.dbg_step = min(max(int(ss.dbg_step), 0), last)
    st.caption(f"{scores.size} keys in {last + 1} chunks of {ss.dbg_chunk}.")
    _messages(runs, scores, int(ss.dbg_chunk), int(ss.dbg_step))
    step = step_controls("dbg_step", last, "dbg_", label="chunk")
    ss.dbg_component = min(max(int(ss.dbg_component), 0), int(ss.dbg_d) - 1)
    if ss.dbg_d > 1:
        st.number_input("component of o shown", 0, int(ss.dbg_d) - 1, key="dbg_component")
    component = int(ss.dbg_component)
    _current(runs, step, component)
    chart(scores_figure(scores, runs[CORRECT], step), key="dbg_scores")
    chart(state_figure(runs, step, height=380), key="dbg_state")
    chart(
        estimate_figure(runs, step, component=component, height=440),
        key="dbg_estimate",
    )
    _tables(runs, step, component)
