"""Per-row error of the final output and logsumexp against the float64 reference."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from flashviz.figures.context import FigureContext
from flashviz.figures.grid import figure
from flashviz.figures.style import CHANGED, DONE, base_layout, log_ticks

FLOOR = 1e-18  # exact zeros drawn at this height on the log axis


def error_figure(ctx: FigureContext, height: int = 360) -> go.Figure:
    """max_c |O_rc - O_ref,rc| and |L_r - L_ref,r| for every query row r, on a log axis."""
    v = ctx.verdict
    rows = np.arange(ctx.trace.n_q)
    data = [
        {
            "type": "scatter",
            "x": rows,
            "y": np.maximum(err, FLOOR),
            "mode": "markers",
            "name": name,
            "marker": {"color": color, "size": 8, "symbol": symbol},
        }
        for name, err, color, symbol in (
            ("output O", v.err_o, DONE, "circle"),
            ("logsumexp L", v.err_lse, CHANGED, "diamond"),
        )
    ]
    layout = {
        "xaxis": {"title": {"text": "query r"}},
        "yaxis": {
            "title": {"text": "|error|", "standoff": 10},
            "automargin": True,  # the title clear of the tick numbers
            "type": "log",
            "exponentformat": "power",
            **log_ticks(*(t["y"] for t in data), [v.tol, v.tol_lse]),  # <= ~6 labels of 16 px
        },
        "shapes": [
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": v.tol,
                "y1": v.tol,
                "line": {"dash": "dash", "color": "gray"},
                "name": "tolerance",
            }
        ],
        "legend": {"orientation": "h", "y": -0.25, "x": 0},
    }
    title = f"Error per row vs attention_reference (dashed: tolerance {v.tol:g})"
    return figure(data, base_layout(layout, title=title, height=height))
