"""The class's answers to a question: one bar a choice, the count printed on it.

Before the answer is revealed every bar has one colour (a projected tally must not give the
answer away); after it, the right choice is green and ticked (its label, seen even when no
one chose it), the others grey. Readable from the
back of a hall: the choices are the bars' labels at the figure's font size.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from flashviz.figures.grid import figure
from flashviz.figures.style import BLUE, GREEN, base_layout

WRONG = "rgba(128, 128, 128, 0.6)"


def tally_figure(
    choices: Sequence[str], counts: Sequence[int], right: int | None = None, height: int = 320
) -> go.Figure:
    """Horizontal bars of ``counts`` per choice (first choice on top); ``right``: the index
    of the right choice once revealed (None: not yet)."""
    if len(choices) != len(counts):
        raise ValueError(f"{len(choices)} choices but {len(counts)} counts")
    total = sum(counts)
    colours = [
        BLUE if right is None else GREEN if i == right else WRONG for i in range(len(choices))
    ]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "y": [("\u2713 " if i == right else "") + c for i, c in enumerate(choices)],
            "x": list(counts),
            "marker": {"color": colours},
            "text": [str(c) for c in counts],
            "textposition": "auto",
            "cliponaxis": False,
            "hovertemplate": "%{y}: %{x}<extra></extra>",
        }
    ]
    layout = {
        "xaxis": {
            "title": {"text": "answers"},
            "rangemode": "tozero",
            "dtick": 1 if total <= 10 else None,
        },
        "yaxis": {"autorange": "reversed", "automargin": True},
        "showlegend": False,
    }
    title = f"{total} answered" + ("" if right is None else ": the right answer in green")
    return figure(data, base_layout(layout, title=title, height=height))
