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

from flashviz.app.stepper import presentation, step_view
from flashviz.app.stepper.code_view import ALL, code_choices
from flashviz.app.stepper.export_view import png_download
from flashviz.app.stepper.quiz_view import (
    quiz_mode_toggle,
    quiz_section,
    reset_if_new_problem,
    unlocked,
)
from flashviz.app.stepper.stage_texts import ROWS, stage_texts
from flashviz.app.stepper.state import SCALE, STEP, TILE_SCALE
from flashviz.app.stepper.step_texts import TextChoices, step_texts
from flashviz.app.widgets.charts import theme_name
from flashviz.app.widgets.class_question_view import (
    presentation_answer,
    presentation_class_button,
    presentation_tally,
    presented_question,
)
from flashviz.app.widgets.class_room import Lead, class_badge, in_class
from flashviz.app.widgets.page_state import mirror_url
from flashviz.app.widgets.play import SPEEDS as SPEEDS  # re-exported: the browser Play test
from flashviz.app.widgets.play import Player
from flashviz.app.widgets.theme_switch import theme_switch
from flashviz.core.trace import TileStep
from flashviz.figures import (
    FigureContext,
    accumulator_figure,
    stats_figure,
    tile_figure,
    tile_map_figure,
)
from flashviz.figures.stats import focus_rows
from flashviz.figures.style import FULL_WIDTH

PLAYER = Player("step")  # the stepper's play state: keys "_play", "speed", "btn_play", ...


def _user_moved() -> None:
    PLAYER.user_moved()


def play_controls() -> float | None:
    """Play/pause and speed; returns the fragment's timer interval (None when paused)."""
    return PLAYER.controls(disabled=st.session_state.get("quiz_mode", False))


WIDE_HEIGHTS = {"tile_map": 360, "tile": 360, "stats": 340, "accumulator": 340}  # px
WIDE_WIDTH = 440  # px: a third of the main column of a 1920 px window, sidebar open


def step_figures(
    ctx: FigureContext, k: int, tile_scale: bool = True, wide: bool = False
) -> dict[str, go.Figure]:
    """The step panel's charts at step ``k`` (no tile at a load or finish step); S on the
    tile's own colour scale, or with ``tile_scale=False`` on the tile map's. ``wide``: sized
    for the wide layout's three columns, two charts high on one screen."""
    h = WIDE_HEIGHTS if wide else {"tile_map": 560, "tile": 420, "stats": 420, "accumulator": 380}
    w = WIDE_WIDTH if wide else FULL_WIDTH
    figs = {"tile_map": tile_map_figure(ctx, k, height=h["tile_map"])}
    if isinstance(ctx.trace.steps[k], TileStep):
        figs["tile"] = tile_figure(ctx, k, height=h["tile"], width=w, tile_scale=tile_scale)
    figs["stats"] = stats_figure(ctx, k, height=h["stats"], width=w)
    figs["accumulator"] = accumulator_figure(ctx, k, height=h["accumulator"], width=w)
    return figs


def step_figures_map_scale(ctx: FigureContext, k: int) -> dict[str, go.Figure]:
    """``step_figures`` with S on the tile map's colour scale (each set its own name:
    step_view caches figure JSON per figure function)."""
    return step_figures(ctx, k, tile_scale=False)


def step_figures_wide(ctx: FigureContext, k: int) -> dict[str, go.Figure]:
    return step_figures(ctx, k, wide=True)


def step_figures_wide_map_scale(ctx: FigureContext, k: int) -> dict[str, go.Figure]:
    return step_figures(ctx, k, tile_scale=False, wide=True)


def _figures() -> Callable[[FigureContext, int], dict[str, go.Figure]]:
    """The step panel's figure set for the colour-scale toggle (``tile_scale``, in the URL)
    and the window's width (``step_view.wide``)."""
    own = bool(st.session_state.get(TILE_SCALE, True))
    if step_view.wide():
        return step_figures_wide if own else step_figures_wide_map_scale
    return step_figures if own else step_figures_map_scale


def step_heading(ctx: FigureContext, k: int) -> str:
    step = ctx.trace.steps[k]
    return (
        f"Step {k} of {len(ctx.trace.steps) - 1}: {step.kind.replace('_', ' ')}, Q block {step.i}"
        + (f", K/V block {step.j}" if isinstance(step, TileStep) else "")
    )


TEACHING_NOTE = (
    "Drawn for teaching: the real kernel never materialises this n_q x n_k matrix; only one "
    "tile of it is ever on chip."
)


def _row_slider(ctx: FigureContext) -> None:
    if ctx.trace.block_q > 1:
        st.slider(
            "query row inside the Q block (for the numbers)", 0, ctx.trace.block_q - 1,
            key="row",
        )  # fmt: skip


def _scale_toggle() -> None:
    st.toggle(
        "S colour scale: this tile (off: the whole tile map's)",
        key=TILE_SCALE,
        help="A tile of small scores in a map with large ones looks blank on the map's "
        "scale; on this tile's own scale its contrast shows (see the colour bar's numbers).",
    )


def _views(ctx: FigureContext, w: step_view.StepWindow) -> None:
    """The charts and the explanation, drawn in the browser from the window (``step_view``):
    the map beside the explanation, then the tile, the statistics and the accumulator across
    the page; in a wide window three columns, all four charts on one screen."""
    if step_view.wide():
        maps, tiles, words = st.columns(3)
        with maps:
            step_view.chart(w, "tile_map")
            step_view.chart(w, "stats")
        with tiles:
            step_view.chart(w, "tile", note="No tile at this step: see the explanation.")
            step_view.chart(w, "accumulator")
        with words:
            _row_slider(ctx)
            step_view.text(w, "explanation")
            _scale_toggle()
            st.caption(TEACHING_NOTE)
        return
    left, right = st.columns([1, 1])
    with left:
        step_view.chart(w, "tile_map")
        st.caption(TEACHING_NOTE)
    with right:
        _row_slider(ctx)
        step_view.text(w, "explanation")
    _scale_toggle()  # full width: the cells are wide enough for their numbers
    step_view.chart(w, "tile", note="No tile at this step: see the explanation above.")
    step_view.chart(w, "stats")
    step_view.chart(w, "accumulator")


def _selected_row(ctx: FigureContext) -> int:
    """The query row inside the Q block chosen for the numbers (the ``row`` slider, kept in
    session state and clamped to this problem's blocks)."""
    ss = st.session_state
    ss.row = min(max(int(ss.get("row", 0)), 0), ctx.trace.block_q - 1)
    return int(ss.row)


def _text_choices(ctx: FigureContext, bug_at: int | None) -> TextChoices:
    """The reader's choices the texts depend on, as the widgets below hold them."""
    ss = st.session_state
    phase = ss.get("code_phase", ALL)
    return TextChoices(
        row=_selected_row(ctx),
        tile_phase=None if phase == ALL else phase,
        whole_code=bool(ss.get("code_whole", False)),
        bug_at=bug_at,
    )


STAGE_MARGIN = {"t": 56, "b": 56}  # the stage's charts: room for a title and an axis each


def _on_stage(fig: go.Figure) -> go.Figure:
    """A stage chart: values in the cells where they fit, a colour scale where they do not.
    A figure whose heatmaps all print their numbers drops its colour bars; one with any
    heatmap too small for them keeps the bars it was built with. Titles on one line."""
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    if heatmaps and all(t.texttemplate for t in heatmaps):
        fig.update_traces(showscale=False, selector={"type": "heatmap"})
    title = fig.layout.title.text or ""
    fig.update_layout(showlegend=False, title_text=title.replace("<br>", ": "))
    return fig


def _tile_on_stage(fig: go.Figure) -> go.Figure:
    """The tile's colour bars, when its numbers do not fit, go under the panels in place
    of the axis titles (the stage's charts have no room below for both)."""
    if not all(t.texttemplate for t in fig.data if t.type == "heatmap"):
        fig.update_layout(margin_b=112)
        fig.update_xaxes(title_text=None)
        fig.update_traces(colorbar_y=-0.3, colorbar_thickness=10, selector={"type": "heatmap"})
    return fig


def present_figures(ctx: FigureContext, k: int, row: int = 0) -> dict[str, go.Figure]:
    """Presentation mode's charts: the same four at the stage's fixed size, the running
    statistics of (at most) ``stage_texts.ROWS`` rows from the selected ``row`` on."""
    h, w, margin = presentation.CHART_HEIGHT, presentation.HALF, STAGE_MARGIN
    step = ctx.trace.steps[k]
    focus = focus_rows(len(step.rows), row, ROWS)
    figs = {"tile_map": tile_map_figure(ctx, k, height=h)}
    if isinstance(step, TileStep):
        tile = tile_figure(ctx, k, height=h, width=w, tile_scale=True, margin=margin)
        figs["tile"] = _tile_on_stage(tile)
    figs["stats"] = stats_figure(ctx, k, height=h, width=w, focus=focus, margin=margin)
    figs["accumulator"] = accumulator_figure(  # the stage's quarters keep their size
        ctx, k, height=h, width=w, margin=margin, may_stack=False
    )
    figs["tile_map"].update_layout(margin=margin, title_text="")  # its K/V bar: at the top
    for fig in figs.values():
        fig.update_layout(width=w)
        _on_stage(fig)
    return figs


def presentation_body(ctx: FigureContext) -> None:
    """Presentation mode: the stage (step bar, formula strip, four charts), nothing else."""
    last = len(ctx.trace.steps) - 1
    ss = st.session_state
    ss.step = k = min(max(int(ss.get("step", 0)), 0), last)
    row = _selected_row(ctx)
    w = step_view.step_window(
        ctx, k, allowed=last, figures=functools.partial(present_figures, row=row),
        theme=theme_name(), texts=functools.partial(stage_texts, row=row),
        texts_key=("present", row),
    )  # fmt: skip
    now = in_class()  # a class: its code (the lecturer's: count and question) in the bar
    lead = now if isinstance(now, Lead) else None
    question = None if now is None else presented_question(now.code)  # on the stage
    widths = [320, 235, 215, 125, 235, 105] if now else [380, 420, 270, 130]
    with st.container(key=presentation.STEP_BAR):
        bar, heading, *klass, theme, leave = st.columns(widths, vertical_alignment="center")
        with bar:
            step_view.buttons(
                w, on_move=_user_moved, stage=(presentation.STAGE_W, presentation.STAGE_H)
            )
        with heading:
            step_view.heading(w, functools.partial(step_heading, ctx))
        if now:
            with klass[0]:
                class_badge(now)
        if lead:
            with klass[1]:
                presentation_class_button(lead, lambda: ctx.trace, question)
        with theme:
            theme_switch(presentation.THEME_SWITCH)  # the sidebar's is hidden here
        presentation.leave_button(leave)
    with st.container(key=presentation.STRIP, height=presentation.STRIP_PX, border=False):
        step_view.text(w, "strip")  # a fixed height: one line or two, nothing below moves
    mirror_url([STEP])
    for names in (("tile_map", "tile"), ("stats", "accumulator")):
        if question and now and names[0] == "stats":  # the class question instead
            with st.container(height=presentation.CHART_HEIGHT + 4, border=False):
                if isinstance(now, Lead):
                    presentation_tally(now, presentation.CHART_HEIGHT)
                else:
                    presentation_answer(now, presentation.CHART_HEIGHT)
            continue
        for col, name in zip(st.columns(2), names, strict=True):
            with col, st.container(height=presentation.CHART_HEIGHT + 4, border=False):
                step_view.chart(w, name, notes="stage_note")


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
    k = int(st.session_state.step)
    # Everything of a step (buttons, slider, heading, charts, texts) steps in the browser at
    # once, from the window of steps it holds, then tells the server.
    choices = _text_choices(ctx, bug_at)
    w = step_view.step_window(
        ctx, k, allowed=k if locked else last, figures=_figures(), theme=theme_name(),
        texts=functools.partial(step_texts, choices=choices), texts_key=(choices,),
        also=() if bug_at is None else (bug_at,),
    )  # fmt: skip
    buttons, slider = st.columns([3, 2], vertical_alignment="center")  # one compact bar
    with buttons:
        step_view.buttons(w, on_move=_user_moved)
    if last > 0:
        with slider:
            step_view.slider(w)
    if quiz and k < last:
        quiz_section(ctx, k + 1)  # asks about the step Next will show
    mirror_url([STEP, SCALE])
    step_view.heading(w, functools.partial(step_heading, ctx))
    if ctx.trace.bug is not None:
        step_view.text(w, "bug")
    _views(ctx, w)  # first: buttons, heading and charts share the first screen
    step_view.text(w, "counters")
    quiz_mode_toggle()
    png_download(
        functools.partial(_figures(), ctx, k),
        label="Render this step's views as PNG (zip)",
        file_stem=f"flashviz_step{k}",
    )
    code_choices()
    step_view.text(w, "code")
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
