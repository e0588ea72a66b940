"""The cached work of one problem: trace and figure context, computed once per problem.

``st.cache_resource`` (not ``cache_data``) hands back the same object on every rerun: a
trace holds every tile, and unpickling it on each step change would cost more than
drawing the step. Nothing mutates it.
"""

from __future__ import annotations

from dataclasses import astuple

import plotly.graph_objects as go
import streamlit as st

from flashviz.figures.context import FigureContext, figure_context
from flashviz.figures.whole_run import whole_run_figure
from flashviz.problem import ProblemSpec, build_trace


@st.cache_resource(max_entries=8, show_spinner="Tracing FlashAttention-2 ...")
def _context(*values: object) -> FigureContext:
    return figure_context(build_trace(ProblemSpec(*values)))


def load_context(spec: ProblemSpec) -> FigureContext:
    return _context(*astuple(spec))


@st.cache_resource(max_entries=4, show_spinner=False)
def _whole_run_html(*values: object) -> bytes:
    fig = whole_run_figure(_context(*values))
    return fig.to_html(include_plotlyjs=True, full_html=True, auto_play=False).encode()


def whole_run_html(spec: ProblemSpec) -> bytes:
    """The animation as one self-contained HTML file (plotly.js inside): works offline."""
    return _whole_run_html(*astuple(spec))


@st.cache_resource(max_entries=4, show_spinner=False)
def _whole_run(*values: object) -> go.Figure:
    return whole_run_figure(_context(*values))


def whole_run(spec: ProblemSpec) -> go.Figure:
    """The animated whole-run figure, built once per problem."""
    return _whole_run(*astuple(spec))
