"""Figures of the precision lessons (``flashviz.lab.precision_errors``, ``flashviz.lab.
underflow``, ``flashviz.lab.exp2_form``): pure functions -> go.Figure.

- ``breakdown_figure``: per precision, the output error after each stage of the breakdown
  and how far each stage moves the output;
- ``row_error_figure``: the error of every query row after each stage;
- ``underflow_figure``: exp(-gap) as each type holds it, with its subnormal and zero gaps;
- ``gap_sweep_figure``: error of the online softmax with its state in each type vs the gap;
- ``forms_table_figure``: the paper's form and the exp2 form side by side;
- ``exp2_error_figure``: FA4's software exp2 against exact 2^x, in ulps of each type.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from flashviz.figures.grid import figure, panel_axes, row_layout
from flashviz.figures.style import BLUE, CURRENT, GREEN, INK, VERMILLION, base_layout, log_ticks
from flashviz.lab.exp2_form import FormRow
from flashviz.lab.exp2_lesson import Exp2Errors
from flashviz.lab.precision_errors import STAGES, Breakdown
from flashviz.lab.underflow import UnderflowLimits, exp_neg

FLOOR = 1e-18  # exact zeros drawn at this height on log axes
STAGE_COLORS = {"inputs": BLUE, "state": GREEN, "p_round": VERMILLION}
TYPE_COLORS = {"float16": VERMILLION, "bfloat16": BLUE, "float32": GREEN}
STAGE_SHORT = {
    "inputs": "inputs rounded",
    "state": "+ float32 state",
    "p_round": "+ P\u0303 rounded",
}


def _log_axis(title: str) -> dict:
    return {"title": {"text": title}, "type": "log", "exponentformat": "power"}


def _log_y_figure(
    data: list[dict], *, x_title: str, y_title: str, title: str, height: int, **extra: object
) -> go.Figure:
    """The lab's line charts: a log y axis, the legend below, room for the axis numbers;
    ``extra``: more layout (shapes, annotations)."""
    layout = {
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {**_log_axis(y_title), **log_ticks(*(t["y"] for t in data if "y" in t))},
        **extra,
        "legend": {"orientation": "h", "x": 0, "y": 0, "yref": "container", "yanchor": "bottom"},
    }
    layout = base_layout(layout, title=title, height=height + 60, margin={"l": 90, "b": 140})
    return figure(data, layout)


def breakdown_figure(breakdowns: Sequence[Breakdown], height: int = 420) -> go.Figure:
    """Left: max |O - O_ref| after each stage; right: max |O_stage - O_stage before|.

    One group of bars per precision; a stage the precision does not have is drawn faint.
    Diamonds: naive attention in the same precision (flash-attn's yardstick).
    """
    names = [b.precision for b in breakdowns]
    data: list[dict] = []
    for n, key in enumerate(STAGES):
        applies = [b.stages[n].applies for b in breakdowns]
        for panel, values in enumerate(
            ([b.stages[n].max_err_o for b in breakdowns], [b.effects[n] for b in breakdowns])
        ):
            x, y = panel_axes(panel)
            data.append(
                {
                    "type": "bar",
                    "x": names,
                    "y": np.maximum(values, FLOOR),
                    "xaxis": x,
                    "yaxis": y,
                    "name": STAGE_SHORT[key],
                    "legendgroup": key,
                    "showlegend": panel == 0,
                    "marker": {
                        "color": STAGE_COLORS[key],
                        "opacity": [1.0 if a else 0.25 for a in applies],
                    },
                    "customdata": [STAGES[key] if a else "no such effect" for a in applies],
                    "hovertemplate": "%{x}: %{y:.3g}<br>%{customdata}<extra></extra>",
                }
            )
    data.append(
        {
            "type": "scatter",
            "x": names,
            "y": np.maximum([b.naive_err_o for b in breakdowns], FLOOR),
            "mode": "markers",
            "name": "naive attention, same precision",
            "marker": {"symbol": "diamond", "size": 12, "color": INK},
        }
    )
    layout = row_layout(["error after each stage", "change each stage makes"])
    ys = [t["y"] for t in data]
    layout["yaxis"].update(_log_axis("max |O \u2212 O_ref|"), **log_ticks(*ys))
    layout["yaxis2"].update(_log_axis("max |\u0394O|"), **log_ticks(*ys))
    layout.update(barmode="group", legend={"orientation": "h", "y": -0.2, "x": 0})
    title = "Where the error comes from (reference: float64 on the original inputs)"
    margin = {"t": 100, "l": 90}
    return figure(data, base_layout(layout, title=title, height=height, margin=margin))


def row_error_figure(breakdown: Breakdown, height: int = 380) -> go.Figure:
    """max_c |O_rc - O_ref,rc| of every query row r after each stage of ``breakdown``."""
    rows = np.arange(len(breakdown.o_ref))
    data = [
        {
            "type": "scatter",
            "x": rows,
            "y": np.maximum(stage.err_o, FLOOR),
            "mode": "lines+markers",
            "name": STAGE_SHORT[stage.key] + ("" if stage.applies else " (no such effect)"),
            "line": {"color": STAGE_COLORS[stage.key], "dash": "solid" if n == 0 else "dot"},
            "marker": {"size": 6},
        }
        for n, stage in enumerate(breakdown.stages)
    ]
    return _log_y_figure(
        data,
        x_title="query row r",
        y_title="max_c |O_rc \u2212 O_ref,rc|",
        title=f"Error per row, {breakdown.precision}",
        height=height,
    )


def _vline(x: float, color: str, dash: str, name: str) -> dict:
    """A vertical line at gap ``x`` across the whole plot height."""
    return {
        "type": "line",
        "name": name,
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": {"color": color, "dash": dash, "width": 2},
    }


def _with_chosen_gap(shapes: list[dict], gap: float | None) -> list[dict]:
    """``shapes`` and, when a gap is chosen on the page, an orange dashed line there."""
    return shapes if gap is None else [*shapes, _vline(gap, CURRENT, "dash", "chosen gap")]


def underflow_figure(
    limits: Sequence[UnderflowLimits],
    gaps: np.ndarray,
    gap: float | None = None,
    height: int = 440,
) -> go.Figure:
    """exp(-gap) rounded to each type of ``limits``, over ``gaps``, on a log axis.

    A value that rounds to 0 leaves the log axis, so each curve stops at its type's zero
    gap (solid line); the dotted line marks where the type's subnormals begin. ``gap``:
    the gap chosen on the page (orange).
    """
    exact = np.exp(-np.asarray(gaps, dtype=np.float64))
    data = [
        {
            "type": "scatter",
            "x": gaps,
            "y": np.where(exact > 0, exact, np.nan),
            "mode": "lines",
            "name": "exact exp(\u2212gap)",
            "line": {"color": "gray", "dash": "dash"},
        }
    ]
    shapes, notes = [], []
    for n, lim in enumerate(limits):
        color = TYPE_COLORS.get(lim.name, INK)
        y = exp_neg(gaps, lim.name)
        data.append(
            {
                "type": "scatter",
                "x": gaps,
                "y": np.where(y > 0, y, np.nan),
                "mode": "lines",
                "name": lim.name,
                "line": {"color": color, "width": 3 + 3 * (len(limits) - 1 - n)},  # all visible
            }
        )
        shapes.append(_vline(lim.gap_subnormal, color, "dot", f"{lim.name} subnormal"))
        shapes.append(_vline(lim.gap_zero, color, "solid", f"{lim.name} zero"))
        notes.append(_note(lim.gap_zero, 0.97 - 0.09 * n, f"{lim.name}: 0", color))
    notes.append(_note(limits[0].gap_subnormal, 0.6, f"{limits[0].name} subnormal", "gray"))
    return _log_y_figure(
        data,
        x_title="gap = m_new \u2212 m_old (alpha) or m \u2212 s (P\u0303)",
        y_title="exp(\u2212gap) in the type",
        title="alpha and P\u0303 = exp(\u2212gap): dotted = subnormal from here, "
        "solid = 0 from here",
        height=height,
        shapes=_with_chosen_gap(shapes, gap),
        annotations=notes,
    )


def _note(x: float, y: float, text: str, color: str) -> dict:
    return {
        "x": x,
        "y": y,
        "xref": "x",
        "yref": "paper",
        "text": text,
        "showarrow": False,
        "xanchor": "left",
        "font": {"color": color, "size": 16},
    }


def gap_sweep_figure(
    gaps: np.ndarray,
    errors: dict[str, np.ndarray],
    limits: UnderflowLimits,
    gap: float | None = None,
    height: int = 420,
) -> go.Figure:
    """Error of the online softmax with its state in each type, against the max's jump.

    Vertical lines: where alpha becomes subnormal (dotted) and 0 (solid) in ``limits``'s
    type; orange: the gap chosen on the page.
    """
    data = [
        {
            "type": "scatter",
            "x": gaps,
            "y": np.maximum(np.where(np.isfinite(err), err, np.nan), FLOOR),
            "mode": "lines+markers",
            "name": f"state in {name}",
            "line": {"color": TYPE_COLORS.get(name, INK)},
            "marker": {"size": 5},
        }
        for name, err in errors.items()
    ]
    color = TYPE_COLORS.get(limits.name, INK)
    shapes = [
        _vline(limits.gap_subnormal, color, "dot", f"{limits.name} alpha subnormal"),
        _vline(limits.gap_zero, color, "solid", f"{limits.name} alpha = 0"),
    ]
    return _log_y_figure(
        data,
        x_title="jump of the row max (gap)",
        y_title="max |o \u2212 o_exact|",
        title=f"Online softmax, state in each type (lines: {limits.name} alpha subnormal / 0)",
        height=height,
        shapes=_with_chosen_gap(shapes, gap),
    )


def forms_table_figure(rows: Sequence[FormRow], title: str) -> go.Figure:
    """The paper's form next to the exp2 form, one quantity per line."""

    def fmt(x: float) -> str:
        return f"{x:.9g}"

    columns = [
        [r.quantity for r in rows],
        [fmt(r.natural) for r in rows],
        [fmt(r.base2) for r in rows],
        [fmt(r.base2_in_e) for r in rows],
        [f"{r.diff:.2g}" for r in rows],
    ]
    header = [
        "quantity",
        "paper (base e)",
        "exp2 form (base 2)",
        "exp2 form back in base e",
        "|difference|",
    ]
    data = [
        {
            "type": "table",
            "columnwidth": [3.2, 1.6, 1.6, 1.8, 1.1],
            "header": {"values": header, "font": {"size": 16}, "align": "left"},
            "cells": {"values": columns, "font": {"size": 16}, "align": "left", "height": 30},
        }
    ]
    height = 80 + 30 * (len(rows) + 1)  # title, header and one line per quantity
    return figure(data, base_layout({}, title=title, height=height, margin={"t": 60, "b": 10}))


def exp2_error_figure(e: Exp2Errors, height: int = 380) -> go.Figure:
    """The polynomial exp2 of degree ``e.degree`` against exact 2^x over the range of P~: its
    error in float32 ulps, and in float16 and bfloat16 ulps once both are rounded to that
    type (as P~ V reads P~). Exact agreement is drawn at 0.1 ulp on the log axis."""
    data = [
        {"type": "scatter", "mode": "lines", "x": e.x, "y": np.maximum(e.ulps[name], 0.1),
         "name": f"{name} ulps" + ("" if name == "float32" else " (both rounded)"),
         "line": {"color": TYPE_COLORS[name], "width": 2},
         "hovertemplate": "x = %{x:.3f}: %{y:.3g} ulps<extra></extra>"}
        for name in e.ulps
    ]  # fmt: skip
    return _log_y_figure(
        data, x_title="x (P\u0303 = 2^x)", y_title="error (ulps; 0 drawn at 0.1)",
        title=f"Software exp2, degree {e.degree}: {e.bits:.1f} correct bits", height=height,
    )  # fmt: skip
