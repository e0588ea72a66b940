"""An experiment for ``tests/measure_latency.py --react``: the stepper's four charts drawn by
``Plotly.react`` into the same divs at every step, instead of ``st.plotly_chart``.

Streamlit 1.67's ``st.plotly_chart`` hashes the figure into the element's id, so each step
mounts new charts (``Plotly.newPlot``). Here a components-v2 component with a stable key
keeps its divs and updates them in place with the page's own plotly.js (``window.Plotly``,
loaded by any ``st.plotly_chart`` on the page), heading first, in one task. Same figures,
same server round trip; only the drawing differs. Not part of the app: the stepper still
uses ``st.plotly_chart`` (themes, AppTests and export read its elements).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flashviz.figures import (
    FigureContext,
    accumulator_figure,
    figure_context,
    stats_figure,
    tile_figure,
    tile_map_figure,
)
from flashviz.problem import ProblemSpec, build_trace
from flashviz.trace import TileStep

NAMES = ("tile_map", "tile", "stats", "accumulator")
JS = """
export default function (component) {
  const { data, parentElement } = component;
  let root = parentElement.querySelector('.fv-root');
  if (!root) {
    root = document.createElement('div');
    root.className = 'fv-root';
    const heading = document.createElement('h3');
    heading.className = 'fv-heading';
    root.appendChild(heading);
    for (const name of data.names) {
      const div = document.createElement('div');
      div.className = 'fv-' + name;
      root.appendChild(div);
    }
    parentElement.appendChild(root);
  }
  const draw = () => {
    if (!window.Plotly) { setTimeout(draw, 30); return; }
    root.querySelector('.fv-heading').textContent = data.heading;
    for (const name of data.names) {
      const div = root.querySelector('.fv-' + name);
      const fig = data.figs[name];
      div.style.display = fig ? '' : 'none';
      if (fig) window.Plotly.react(div, fig.data, fig.layout, {displaylogo: false});
    }
  };
  draw();
}
"""
charts = st.components.v2.component("fv_inplace_charts", js=JS, isolate_styles=False)
FIELDS = ("n_q", "n_k", "head_dim", "block_q", "block_kv")


@st.cache_resource
def _context(values: tuple[int, ...]) -> FigureContext:
    return figure_context(build_trace(ProblemSpec(**dict(zip(FIELDS, values, strict=True)))))


@st.fragment
def _steps(ctx: FigureContext) -> None:
    last = len(ctx.trace.steps) - 1
    if st.button("Next", key="btn_next"):
        st.session_state.step = min(st.session_state.step + 1, last)
    k = st.session_state.step
    st.markdown(f"### Step {k} of {last}")
    figs = {"tile_map": tile_map_figure(ctx, k), "stats": stats_figure(ctx, k)}
    figs["accumulator"] = accumulator_figure(ctx, k)
    if isinstance(ctx.trace.steps[k], TileStep):
        figs["tile"] = tile_figure(ctx, k)
    data = {
        "heading": f"Step {k} of {last} (drawn in place)",
        "names": NAMES,
        "figs": {name: json.loads(pio.to_json(fig, validate=False)) for name, fig in figs.items()},
    }
    charts(key="fv_inplace_charts", data=data)


st.set_page_config(page_title="latency: charts drawn in place", layout="wide")
defaults = ProblemSpec()
values = tuple(int(st.query_params.get(f, getattr(defaults, f))) for f in FIELDS)
st.session_state.setdefault("step", int(st.query_params.get("step", 1)))
st.plotly_chart(go.Figure(go.Scatter(x=[0], y=[0])), key="loads_plotly_js", height=150)
_steps(_context(values))
