"""Plotly figure builders for the stepper: pure functions of a trace returning ``go.Figure``.

Usable from a notebook::

    from flashviz.lab.problem import build_trace
    from flashviz.lab.problem_spec import ProblemSpec
    from flashviz.figures import figure_context, tile_map_figure
    ctx = figure_context(build_trace(ProblemSpec()))
    tile_map_figure(ctx, step_index=5).show()

Nothing here imports streamlit.
"""

from flashviz.figures.accumulator import accumulator_figure
from flashviz.figures.context import FigureContext, figure_context
from flashviz.figures.stats import stats_figure
from flashviz.figures.tile import tile_figure
from flashviz.figures.tile_map import tile_map_figure

__all__ = [
    "FigureContext",
    "accumulator_figure",
    "figure_context",
    "stats_figure",
    "tile_figure",
    "tile_map_figure",
]
