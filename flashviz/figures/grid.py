"""Build figures from plain dicts, fast: one row of panels without ``make_subplots``.

Stepping must feel instant, and Plotly's property validation costs tens of milliseconds
per figure. Builders here assemble the figure as dicts and wrap them unvalidated; the
unit tests validate every builder's output once with ``go.Figure(fig.to_dict())``.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go


def panel_axes(index: int) -> tuple[str, str]:
    """Trace axis references of panel ``index`` (0-based): ("x", "y"), ("x2", "y2"), ..."""
    suffix = "" if index == 0 else str(index + 1)
    return f"x{suffix}", f"y{suffix}"


def row_layout(
    titles: Sequence[str],
    widths: Sequence[float] | None = None,
    gap: float = 0.08,
    share_y: bool = False,
) -> dict:
    """Layout of len(titles) panels side by side: axis domains and a title above each."""
    n = len(titles)
    widths = list(widths or [1.0] * n)
    scale = (1.0 - gap * (n - 1)) / sum(widths)
    layout: dict = {"annotations": []}
    left = 0.0
    for k, (title, w) in enumerate(zip(titles, widths, strict=True)):
        x_name, y_name = panel_axes(k)
        right = min(1.0, round(left + w * scale, 6))
        layout[f"xaxis{x_name[1:]}"] = {"domain": [round(left, 6), right], "anchor": y_name}
        y_axis: dict = {"domain": [0.0, 1.0], "anchor": x_name}
        if share_y and k > 0:
            y_axis.update(matches="y", showticklabels=False)
        layout[f"yaxis{y_name[1:]}"] = y_axis
        layout["annotations"].append(
            {
                "text": title,
                "x": (left + right) / 2,
                "y": 1.0,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 16},
            }
        )
        left = right + gap
    return layout


def column_layout(titles: Sequence[str], gap: float = 0.1) -> dict:
    """Layout of len(titles) panels stacked top to bottom, sharing the x axis (shown at the
    foot only): axis domains and a title above each."""
    n = len(titles)
    height = (1.0 - gap * (n - 1)) / n
    layout: dict = {"annotations": []}
    for k, title in enumerate(titles):
        x_name, y_name = panel_axes(k)
        top = 1.0 - k * (height + gap)
        bottom = max(0.0, round(top - height, 6))
        x_axis: dict = {"domain": [0.0, 1.0], "anchor": y_name}
        if k > 0:
            x_axis["matches"] = "x"
        if k < n - 1:
            x_axis["showticklabels"] = False
        layout[f"xaxis{x_name[1:]}"] = x_axis
        layout[f"yaxis{y_name[1:]}"] = {"domain": [bottom, round(top, 6)], "anchor": x_name}
        layout["annotations"].append(
            {"text": title, "x": 0.5, "y": round(top, 6), "xref": "paper", "yref": "paper",
             "xanchor": "center", "yanchor": "bottom", "showarrow": False,
             "font": {"size": 16}}
        )  # fmt: skip
    return layout


def figure(data: list[dict], layout: dict) -> go.Figure:
    """Wrap plain trace and layout dicts in a ``go.Figure`` without validation."""
    return go.Figure({"data": data, "layout": layout}, _validate=False)
