"""The step panel, stepped in the browser: everything that belongs to a step changes in one
frame, with no server round trip first.

One components-v2 component (``frontend/step_view.js``), mounted once per part (the four
buttons, the step slider, the heading, each chart, each text: explanation, counters, code)
with a stable key, so its DOM survives a step. Each part carries a window of steps around
the current one (figure JSON from the Python builders, HTML of the texts, headings): a click
on First / Previous / Next / Last, the slider, or Left / Right / Home / End, redraws every
part at once on the client (``Plotly.react`` in place, the texts swapped), then reports
``{step, seq}`` to the server, which reruns the step panel so the URL and the next window
follow. The server echoes ``seq``; the browser ignores older reruns' steps until it.

plotly.js is the copy shipped with the plotly Python package (the version that wrote the
figure JSON), served with the component's own files through Streamlit's static route for
custom components, so it loads whether or not any ``st.plotly_chart`` is on the page.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path

import plotly
import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st
import streamlit.components.v1 as components_v1
from streamlit import config
from streamlit.components.v1.custom_component import CustomComponent

from flashviz.app.widgets.charts import themed
from flashviz.figures import FigureContext

GROUP = "stepper"
KEY_PREFIX = "step_view_"  # session-state keys of the parts: step_view_buttons, ...
SEQ = "_step_view_seq"  # the last move's seq the server has applied
AHEAD = "_step_view_ahead"  # session state: steps beyond k + 2 a window holds (a follower's)
WINDOW_BYTES = 1 << 20  # figure JSON sent per rerun, all parts together (the current step always)
CACHED_STEPS = 64  # figure JSON kept per problem
FRONTEND = Path(__file__).parent / "frontend"
_ASSETS = components_v1.declare_component("step_view_assets", path=str(FRONTEND))
_PLOTLY_JS = components_v1.declare_component(
    "plotly_js", path=str(Path(plotly.__file__).parent / "package_data")
)
LOADER = """export default function (component) {
  const url = new URL(component.data.module, window.location.origin).href;
  return import(url).then((m) => m.render(component));
}"""
_component = st.components.v2.component("flashviz.step_view", js=LOADER, isolate_styles=False)

StepJson = dict[str, str | None]  # part name -> figure JSON or HTML (None: no such chart there)
Texts = Callable[[FigureContext, int], dict[str, str]]  # a step's text parts, by name
JsonKey = tuple[int, str, str, tuple[Hashable, ...]]  # step, theme, figure set, texts' key
_JSON: weakref.WeakKeyDictionary[FigureContext, dict[JsonKey, StepJson]] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()


def _static_url(component: CustomComponent, file: str) -> str:
    base = str(config.get_option("server.baseUrlPath") or "").strip("/")
    return f"{'/' + base if base else ''}/component/{component.name}/{file}"


def step_json(
    ctx: FigureContext,
    k: int,
    figures: Callable[[FigureContext, int], dict[str, go.Figure]],
    theme: str,
    texts: Texts | None = None,
    texts_key: tuple[Hashable, ...] = (),
) -> StepJson:
    """Figure JSON of step ``k``'s charts in ``theme`` and, with ``texts``, its text parts'
    HTML (``texts_key``: what they depend on besides the step), cached per problem (the
    newest CACHED_STEPS)."""
    key: JsonKey = (k, theme, getattr(figures, "__qualname__", ""), texts_key)  # one per set
    with _LOCK:
        cached = _JSON.setdefault(ctx, {})
        if key in cached:
            return cached[key]
    figs = figures(ctx, k)
    found: StepJson = {
        name: pio.to_json(themed(fig, theme), validate=False) for name, fig in figs.items()
    }
    if texts is not None:
        found.update(texts(ctx, k))
    with _LOCK:
        cached[key] = found
        while len(cached) > CACHED_STEPS:
            cached.pop(next(iter(cached)))
    return found


def window(
    k: int,
    last: int,
    size: Callable[[int], int],
    budget: int = WINDOW_BYTES,
    also: tuple[int, ...] = (),
) -> list[int]:
    """Steps whose data to send: ``k`` always, then next, previous, last, first, the steps
    in ``also`` (a page's links) and two either side, each while the total ``size`` stays
    within ``budget``."""
    steps: list[int] = []
    total = 0
    for s in dict.fromkeys((k, k + 1, k - 1, last, 0, *also, k + 2, k - 2)):
        if not 0 <= s <= last:
            continue
        b = size(s)
        if steps and total + b > budget:
            continue
        steps.append(s)
        total += b
    return steps


@dataclass(frozen=True)
class StepWindow:
    """What every part of one step panel run shares."""

    k: int
    last: int
    allowed: int  # the furthest step the buttons may reach (the quiz holds Next back)
    figs: dict[int, StepJson]  # the window's steps

    def common(self, part: str) -> dict:
        return {
            "group": GROUP,
            "part": part,
            "module": _static_url(_ASSETS, "step_view.js"),
            "plotly": _static_url(_PLOTLY_JS, "plotly.min.js"),
            "step": self.k,
            "seq": st.session_state.get(SEQ),
            "last": self.last,
            "allowed": self.allowed,
        }


def step_window(
    ctx: FigureContext,
    k: int,
    *,
    allowed: int,
    figures: Callable[[FigureContext, int], dict[str, go.Figure]],
    theme: str,
    texts: Texts | None = None,
    texts_key: tuple[Hashable, ...] = (),
    also: tuple[int, ...] = (),
) -> StepWindow:
    """The window around step ``k``: figures from ``figures(ctx, step)`` in ``theme``, and
    the texts from ``texts(ctx, step)`` (``texts_key``: what else they depend on); ``also``:
    steps the page links to (a text's "Go to step"); a class's follower also holds the
    steps its lecturer will show next (``AHEAD``)."""
    last = len(ctx.trace.steps) - 1
    get = functools.partial(
        step_json, ctx, figures=figures, theme=theme, texts=texts, texts_key=texts_key
    )
    n = int(st.session_state.get(AHEAD, 0))  # a class follower's steps ahead, from k + 2 on
    ahead = range(k + 2, k + 3 + n) if n else ()
    steps = window(k, last, lambda s: sum(len(j or "") for j in get(s).values()),
                   also=(*also, *ahead))  # fmt: skip
    return StepWindow(k, last, allowed, {s: get(s) for s in steps})


def _moved(last: int, allowed: int, on_move: Callable[[], None]) -> None:
    """The browser moved to a step: apply it (within 0 .. allowed) and remember its seq."""
    ss = st.session_state
    move = (ss.get(f"{KEY_PREFIX}buttons") or {}).get("move")
    if not isinstance(move, dict):
        return
    try:
        to = int(move["step"])
    except (KeyError, TypeError, ValueError):
        return
    ss.step = min(max(to, 0), allowed, last)
    ss[SEQ] = str(move.get("seq", ""))[:64]
    on_move()


WIDE_PX = 1700  # a browser window at least this wide (sidebar open) takes the wide layout
WIDE = "_step_view_wide"  # session state: the window is that wide


def wide() -> bool:
    """Whether the browser's window is WIDE_PX wide or more (as it last reported)."""
    return bool(st.session_state.get(WIDE, False))


def _resized() -> None:
    """The browser reported its window's width (at the first draw and after a resize that
    crosses WIDE_PX): the page takes the layout for it."""
    width = (st.session_state.get(f"{KEY_PREFIX}buttons") or {}).get("viewport")
    if isinstance(width, int | float) and 0 < width < 100_000:
        st.session_state[WIDE] = width >= WIDE_PX


def buttons(
    w: StepWindow,
    *,
    on_move: Callable[[], None],
    keys: bool = True,
    stage: tuple[int, int] | None = None,
) -> None:
    """First / Previous / Next / Last (and with ``keys``, Left / Right / Home / End).
    ``stage``: the (width, height) in px of a stage the browser scales to fill the window
    (presentation mode), as CSS variables ``--fv-stage-scale``, ``--fv-stage-x``, ``-y``."""
    _component(
        key=f"{KEY_PREFIX}buttons",
        data={**w.common("buttons"), "keys": keys, "stage": stage, "wide": [WIDE_PX, wide()]},
        on_move_change=functools.partial(_moved, w.last, w.allowed, on_move),
        on_viewport_change=_resized,
    )


def heading(w: StepWindow, text: Callable[[int], str]) -> None:
    """The step heading (an h3), ``text(step)`` for each step of the window."""
    _component(
        key=f"{KEY_PREFIX}heading",
        data={**w.common("heading"), "texts": {s: text(s) for s in w.figs}},
    )


def chart(w: StepWindow, name: str, *, note: str = "", notes: str = "") -> None:
    """Chart ``name`` of the window's steps; where a step has no such chart, its text part
    ``notes`` (HTML) if given and not empty, else the plain text ``note``."""
    _component(
        key=f"{KEY_PREFIX}{name}",
        data={
            **w.common(name),
            "figs": {s: figs.get(name) for s, figs in w.figs.items()},
            "note": note,
            "notes": {s: figs.get(notes) or "" for s, figs in w.figs.items()} if notes else {},
        },
    )


def text(w: StepWindow, name: str) -> None:
    """Text part ``name`` of the window's steps (HTML built by us: ``step_texts``); a
    ``data-goto`` button in it moves to its step. Each distinct text is sent once
    (``bodies``; ``texts`` maps a step to its body: the code is the same for every tile)."""
    per_step = {s: parts.get(name) or "" for s, parts in w.figs.items()}
    bodies = list(dict.fromkeys(per_step.values()))
    index = {body: n for n, body in enumerate(bodies)}
    _component(
        key=f"{KEY_PREFIX}{name}",
        data={
            **w.common(name),
            "kind": "text",
            "texts": {s: index[body] for s, body in per_step.items()},
            "bodies": bodies,
        },
    )


def slider(w: StepWindow, label: str = "step") -> None:
    """The step slider (0 .. last; beyond ``allowed`` it springs back), moved with the rest."""
    _component(key=f"{KEY_PREFIX}slider", data={**w.common("slider"), "kind": "slider",
                                                 "label": label})  # fmt: skip
