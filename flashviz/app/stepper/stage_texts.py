"""Presentation mode's text parts, one set per step: the formula strip (the step's update
with the selected row's numbers, one equation a cell) and, at a load or a write step, what
happens there, in the quarter where a tile step's tile is drawn (the loaded rows of Q_i and
the initial state; the normalisation and the written rows)."""

from __future__ import annotations

import html
import re

import numpy as np

from flashviz.app.math_html import math
from flashviz.core.trace import LoadStep, TileStep, WriteStep
from flashviz.figures import FigureContext
from flashviz.figures.stats import focus_rows
from flashviz.lab.explain import explain, num

ROWS = 4  # rows of the Q block shown in the stage's charts and tables
DIMS = 4  # head dimensions shown of a row of Q_i or O_i


def _equations(tex: str) -> list[str]:
    """The lines of an ``aligned`` block as whole equations ('&= result' lines joined)."""
    body = re.sub(r"\\(begin|end)\{aligned\}", "", tex)
    out: list[str] = []
    for line in (part.strip() for part in body.split(r"\\")):
        if line.startswith("&=") and out:
            out[-1] += " " + line[1:]
        elif line:
            out.append(line.replace("&", ""))
    return out


def strip_html(ctx: FigureContext, k: int, row: int) -> str:
    """The step's update with query row ``row``'s numbers, one equation a cell."""
    e = explain(ctx.trace, k, row)
    cells = "".join(
        f'<div class="fv-eq" data-tex="{html.escape(eq)}">{math(eq)}</div>'
        for eq in _equations(e.numbers)
    )
    label = f"row {e.row}"
    return (
        f'<div class="fv-strip" data-row="{e.row}"><div class="fv-strip-label">'
        f"{html.escape(label)}</div>{cells}</div>"
    )


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{math(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{math(c)}</td>" for c in r) + "</tr>" for r in rows)
    return (
        f'<table class="fv-stage-table"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'
    )


def _vector(values: np.ndarray, dims: int = DIMS) -> str:
    shown = [num(float(x)) for x in values[:dims]] + ([r"\dots"] if len(values) > dims else [])
    return "[" + ", ".join(shown) + "]"


def stage_note_html(ctx: FigureContext, k: int, row: int) -> str:
    """At a load or write step, what happens there (``''`` at a tile step)."""
    step = ctx.trace.steps[k]
    if isinstance(step, TileStep):
        return ""
    shown = focus_rows(len(step.rows), row, ROWS)
    rows = range(step.rows.start, step.rows.stop)[shown]
    if isinstance(step, LoadStep):
        title = f"Load Q<sub>{step.i}</sub>: rows {step.rows.start} to {step.rows.stop - 1}"
        table = _table(
            ["r", "q_r"],
            [[str(r), _vector(q)] for r, q in zip(rows, step.q_i[shown], strict=True)],
        )
        state = math(r"m_i = -\infty,\quad \ell_i = 0,\quad o_i = 0")
        return (
            f'<div class="fv-stage-note"><h4>{title} from HBM to on chip</h4>{table}'
            f"<p>Its state starts empty: {state}</p></div>"
        )
    assert isinstance(step, WriteStep)
    title = f"Write O<sub>{step.i}</sub>: normalise once, then to HBM"
    table = _table(
        ["r", "m_r", r"\ell_r", r"L_r = m_r + \log \ell_r", r"O_r = o_r / \ell_r"],
        [
            [str(r), num(float(m)), num(float(l)), num(float(lse)), _vector(o, 2)]
            for r, m, l, lse, o in zip(
                rows, step.m[shown], step.l[shown], step.lse[shown], step.o[shown], strict=True
            )
        ],
    )
    return f'<div class="fv-stage-note"><h4>{title}</h4>{table}</div>'


def stage_texts(ctx: FigureContext, k: int, row: int) -> dict[str, str]:
    """Presentation mode's text parts of step ``k``, by part name."""
    return {"strip": strip_html(ctx, k, row), "stage_note": stage_note_html(ctx, k, row)}
