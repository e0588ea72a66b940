"""The step panel of the Stepper page: controls and the linked views of one step, rerun
alone as a fragment (``step_panel``).

A step change (button, slider, or the play timer) reruns only this fragment; the trace
and figure context come from the cache. Play/pause and speed live outside the fragment,
because they change the fragment's timer (``run_every``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import plotly.graph_objects as go
import streamlit as st

from flashviz.app.charts import theme_name
from flashviz.app.params import TILE_SCALE, sync_query_params
from flashviz.app.play import SPEEDS as SPEEDS  # re-exported: the browser Play test
from flashviz.app.play import Player
from flashviz.app.step_controls import step_controls
from flashviz.app.stepper import presentation, step_view
from flashviz.app.stepper.code_view import code_section
from flashviz.app.stepper.export_view import png_download
from flashviz.app.stepper.quiz_view import (
    quiz_mode_toggle,
    quiz_section,
    reset_if_new_problem,
    unlocked,
)
from flashviz.app.theme_switch import theme_switch
from flashviz.core.trace import TileStep
from flashviz.figures import (
    FigureContext,
    accumulator_figure,
    stats_figure,
    tile_figure,
    tile_map_figure,
)
from flashviz.figures.style import FULL_WIDTH
from flashviz.lab.bugzoo import BUGS
from flashviz.lab.explain import explain
from flashviz.lab.progress import progress

PLAYER = Player("step")  # the stepper's play state: keys "_play", "speed", "btn_play", ...


def _jump(to: int) -> None:
    st.session_state.step = to
    st.session_state["_user_moved"] = True


def _bug_banner(ctx: FigureContext, k: int, bug_at: int | None) -> None:
    """With a bug on: where the run first leaves the correct one, relative to step k."""
    bug = ctx.trace.bug
    if bug is None:
        return
    title = f"Bug on: **{BUGS[bug].title}**."
    if bug_at is None:
        st.info(
            f"{title} On this problem it never changes the result (no step differs from the "
            "correct run). Try the spiky pattern, a causal mask with n_q > n_k, or a large "
            "softmax scale to make it bite.",
            icon=":material/bug_report:",
        )
    elif k < bug_at:
        st.warning(
            f"{title} Still right at this step; the run first leaves the correct one at "
            f"step {bug_at}.",
            icon=":material/bug_report:",
        )
        st.button(f"Go to step {bug_at}", key="btn_bug_step", on_click=_jump, args=(bug_at,))
    elif k == bug_at:
        st.error(
            f"{title} This is the step where it first bites: {BUGS[bug].explanation}",
            icon=":material/bug_report:",
        )
    else:
        st.error(
            f"{title} Past step {bug_at}, where it first left the correct run: the numbers "
            "below are wrong.",
            icon=":material/bug_report:",
        )


def _user_moved() -> None:
    PLAYER.user_moved()


def play_controls() -> float | None:
    """Play/pause and speed; returns the fragment's timer interval (None when paused)."""
    return PLAYER.controls(disabled=st.session_state.get("quiz_mode", False))


def _counters(ctx: FigureContext, k: int) -> None:
    p = progress(ctx.trace, k)
    a, b, c, d = st.columns(4)
    a.metric("tiles done", f"{p.tiles_done} / {p.tiles_total}")
    b.metric(
        "HBM moved so far (FA2)",
        f"{p.hbm_bytes / 1024:.1f} KiB",
        help=f"The whole FlashAttention-2 run moves {p.hbm_bytes_total / 1024:.1f} KiB "
        "(float32, 4 bytes per number).",
    )
    c.metric(
        "naive attention moves",
        f"{p.naive_hbm_bytes / 1024:.1f} KiB",
        help="Standard attention writes S and P (n_q x n_k each) to HBM and reads them back.",
    )
    d.metric(
        "on chip now",
        f"{p.sram_bytes / 1024:.2f} KiB",
        help="Q_i, K_j, V_j, one S/P~ tile, o_i, m_i and l_i (float32).",
    )


def _explanation(ctx: FigureContext, k: int) -> None:
    block_rows = len(ctx.trace.steps[k].rows)
    row = 0
    if block_rows > 1:
        st.session_state.row = min(int(st.session_state.get("row", 0)), ctx.trace.block_q - 1)
        row = st.slider(
            "query row inside the Q block (for the numbers)", 0, ctx.trace.block_q - 1, key="row"
        )
    e = explain(ctx.trace, k, row)
    st.markdown(f"#### {e.title}")
    st.markdown(e.text)
    st.latex(e.formula)
    if e.correct:  # a bug is on: its own update, then the correct one from the same state
        st.caption(f"The update the bug performs on query row {e.row}, with its numbers:")
        st.latex(e.numbers)
        st.caption(
            "What the correct update gives from the same state, and the difference "
            "(Delta = bug - correct):"
        )
        st.latex(e.correct)
    else:
        st.caption(f"With the numbers of query row {e.row}:")
        st.latex(e.numbers)


def step_figures(ctx: FigureContext, k: int, tile_scale: bool = True) -> dict[str, go.Figure]:
    """The step panel's charts at step ``k`` (no tile at a load or finish step); S on the
    tile's own colour scale, or with ``tile_scale=False`` on the tile map's."""
    figs = {"tile_map": tile_map_figure(ctx, k)}
    if isinstance(ctx.trace.steps[k], TileStep):
        figs["tile"] = tile_figure(ctx, k, width=FULL_WIDTH, tile_scale=tile_scale)
    figs["stats"] = stats_figure(ctx, k, width=FULL_WIDTH)
    figs["accumulator"] = accumulator_figure(ctx, k)
    return figs


def step_figures_map_scale(ctx: FigureContext, k: int) -> dict[str, go.Figure]:
    """``step_figures`` with S on the tile map's colour scale (its own name: step_view
    caches figure JSON per figure function)."""
    return step_figures(ctx, k, tile_scale=False)


def _figures() -> Callable[[FigureContext, int], dict[str, go.Figure]]:
    """The step panel's figure set for the colour-scale toggle (``tile_scale``, in the URL)."""
    return step_figures if st.session_state.get(TILE_SCALE, True) else step_figures_map_scale


def step_heading(ctx: FigureContext, k: int) -> str:
    step = ctx.trace.steps[k]
    return (
        f"Step {k} of {len(ctx.trace.steps) - 1}: {step.kind.replace('_', ' ')}, Q block {step.i}"
        + (f", K/V block {step.j}" if isinstance(step, TileStep) else "")
    )


def _views(ctx: FigureContext, k: int, w: step_view.StepWindow) -> None:
    """The charts, drawn in the browser from the window (``step_view``)."""
    left, right = st.columns([1, 1])
    with left:
        step_view.chart(w, "tile_map")
        st.caption(
            "Drawn for teaching: the real kernel never materialises this n_q x n_k "
            "matrix; only one tile of it is ever on chip."
        )
    with right:
        _explanation(ctx, k)
    # full width: the cells are wide enough for their numbers
    st.toggle(
        "S colour scale: this tile (off: the whole tile map's)",
        key=TILE_SCALE,
        help="A tile of small scores in a map with large ones looks blank on the map's "
        "scale; on this tile's own scale its contrast shows (see the colour bar's numbers).",
    )
    step_view.chart(w, "tile", note="No tile at this step: see the explanation above.")
    step_view.chart(w, "stats")
    step_view.chart(w, "accumulator")


def present_figures(ctx: FigureContext, k: int) -> dict[str, go.Figure]:
    """Presentation mode's charts: the same four, sized for a 2 x 2 grid on 1280 x 720."""
    h, w = presentation.CHART_HEIGHT, presentation.HALF
    figs = {"tile_map": tile_map_figure(ctx, k, height=h)}
    if isinstance(ctx.trace.steps[k], TileStep):
        figs["tile"] = tile_figure(ctx, k, height=h, width=w, tile_scale=True)
    figs["stats"] = stats_figure(ctx, k, height=h, width=w)
    figs["accumulator"] = accumulator_figure(ctx, k, height=h, width=w)
    for fig in figs.values():  # compact: small margins, no legends or colour bars
        fig.update_layout(margin={"t": 60, "b": 62, "l": 64, "r": 15}, showlegend=False)
        fig.update_traces(showscale=False, selector={"type": "heatmap"})
    figs["tile_map"].update_layout(title_text="")  # its K/V bar sits where the title was
    return figs


def presentation_body(ctx: FigureContext) -> None:
    """Presentation mode: the pinned step bar and the four charts, nothing else."""
    last = len(ctx.trace.steps) - 1
    st.session_state.step = k = min(max(int(st.session_state.get("step", 0)), 0), last)
    w = step_view.step_window(ctx, k, allowed=last, figures=present_figures, theme=theme_name())
    with st.container(key=presentation.STEP_BAR):
        bar, theme, leave = st.columns([8, 2, 1], vertical_alignment="center")
        with bar:
            step_view.buttons(w, on_move=_user_moved)
            step_view.heading(w, functools.partial(step_heading, ctx))
        with theme:
            theme_switch(presentation.THEME_SWITCH)  # the sidebar's is hidden here
        presentation.leave_button(leave)
    sync_query_params({"step": k})
    for names in (("tile_map", "tile"), ("stats", "accumulator")):
        for col, name in zip(st.columns(2), names, strict=True):
            with col, st.container(height=presentation.CHART_HEIGHT + 10, border=False):
                step_view.chart(w, name, note="No tile at this step (a load or a write).")


def step_panel_body(
    load: Callable[[], FigureContext], bug_at: int | None = None, present: bool = False
) -> None:
    """One step: controls, heading, counters and views (presentation mode: its own body).

    ``load`` fetches the problem from the cache on every run: the fragment keeps only the
    loader, so an evicted problem's memory is freed, not pinned by the session."""
    if presentation.on() != present:  # entered or left from inside the fragment (Leave)
        st.rerun(scope="app")  # the whole page: sidebar, header, title and URL follow
    ctx = load()
    if present:
        presentation_body(ctx)
        return
    started = time.perf_counter()
    last = len(ctx.trace.steps) - 1
    st.session_state.step = min(max(int(st.session_state.get("step", 0)), 0), last)
    quiz = bool(st.session_state.get("quiz_mode", False))  # its switch is drawn below the views
    if quiz:
        PLAYER.stop()  # no auto-advance past a question
        reset_if_new_problem(ctx)
    step_now = st.session_state.step
    PLAYER.advance(last)
    locked = quiz and step_now < last and not unlocked(step_now + 1)  # the quiz holds Next
    playing = PLAYER.playing()
    k = int(st.session_state.step)
    # Buttons, heading and charts step in the browser at once, then tell the server.
    w = step_view.step_window(
        ctx, k, allowed=k if locked else last, figures=_figures(), theme=theme_name()
    )
    step_view.buttons(w, on_move=_user_moved)
    step_controls(
        "step",
        last,
        "btn_",
        locked=locked,
        on_move=PLAYER.slider_moved,
        slider=not playing,
        buttons=False,
    )
    if quiz and k < last:
        quiz_section(ctx, k + 1)  # asks about the step Next will show
    sync_query_params({"step": k, TILE_SCALE: bool(st.session_state.get(TILE_SCALE, True))})
    step_view.heading(w, functools.partial(step_heading, ctx))
    _bug_banner(ctx, k, bug_at)
    _views(ctx, k, w)  # first: buttons, heading and charts share the first screen
    _counters(ctx, k)
    quiz_mode_toggle()
    png_download(
        functools.partial(_figures(), ctx, k), count=len(w.figs[k]), file_stem=f"flashviz_step{k}"
    )
    code_section(ctx.trace.steps[k].kind)
    st.session_state["_step_ms"] = (time.perf_counter() - started) * 1000  # for measure_app


def step_panel(
    load: Callable[[], FigureContext],
    run_every: float | None,
    bug_at: int | None = None,
    present: bool = False,
) -> None:
    """Run the step panel as a fragment (with a timer while playing), in presentation mode
    when ``present`` (the page's mode when it drew the fragment)."""
    st.fragment(step_panel_body, run_every=run_every)(load, bug_at, present)
