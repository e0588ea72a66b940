"""The cached work of one problem: trace and figure context, computed once per problem.

``cached`` (``flashviz.app.cached``: one memory budget for the server) hands back the same
object on every rerun: a trace holds every tile, and copying it on each step change would
cost more than drawing the step. Nothing mutates it. Uploaded tensors travel beside the spec as an
unhashed argument (leading underscore): the spec's ``upload`` digest keys the cache.
"""

from __future__ import annotations

from dataclasses import astuple, replace

import numpy as np
import plotly.graph_objects as go

from flashviz.app.cached import cached
from flashviz.app.widgets.charts import themed
from flashviz.figures.context import FigureContext, figure_context
from flashviz.figures.whole_run import whole_run_figure
from flashviz.lab.divergence import first_diverging_step
from flashviz.lab.problem import build_trace
from flashviz.lab.problem_spec import NO_BUG, ProblemSpec

Uploaded = tuple[np.ndarray, np.ndarray, np.ndarray] | None


@cached(spinner="Tracing FlashAttention-2 ...")
def _context(values: tuple, _uploaded: Uploaded) -> FigureContext:
    return figure_context(build_trace(ProblemSpec(*values), _uploaded))


def load_context(spec: ProblemSpec, uploaded: Uploaded = None) -> FigureContext:
    return _context(astuple(spec), uploaded)


@cached()
def _divergence(values: tuple, _uploaded: Uploaded) -> int | None:
    spec = ProblemSpec(*values)
    correct = load_context(replace(spec, bug=NO_BUG), _uploaded).trace
    return first_diverging_step(load_context(spec, _uploaded).trace, correct)


def first_bad_step(spec: ProblemSpec, uploaded: Uploaded = None) -> int | None:
    """The first step where the run with the spec's bug leaves the correct run."""
    return None if spec.bug == NO_BUG else _divergence(astuple(spec), uploaded)


@cached()
def _whole_run(values: tuple, _uploaded: Uploaded, theme: str = "light") -> go.Figure:
    return themed(whole_run_figure(_context(values, _uploaded)), theme)


def whole_run(spec: ProblemSpec, uploaded: Uploaded = None, theme: str = "light") -> go.Figure:
    """The animated whole-run figure, built once per problem and theme (light or dark)."""
    return _whole_run(astuple(spec), uploaded, theme)


@cached()
def _whole_run_html(values: tuple, _uploaded: Uploaded) -> bytes:
    fig = _whole_run(values, _uploaded)
    return fig.to_html(include_plotlyjs=True, full_html=True, auto_play=False).encode()


def whole_run_html(spec: ProblemSpec, uploaded: Uploaded = None) -> bytes:
    """The animation as one self-contained HTML file (plotly.js inside): works offline."""
    return _whole_run_html(astuple(spec), uploaded)
