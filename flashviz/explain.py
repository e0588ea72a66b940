"""One paragraph per step: what this phase does, its formula, and one query row's numbers.

``explain(trace, step_index, row)`` returns plain text (Markdown) and LaTeX strings; the
app renders them with ``st.markdown`` and ``st.latex``. ``row`` is the offset of the
selected query row inside the current Q block (clipped to the block).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flashviz.trace import LoadStep, TileStep, Trace, WriteStep


@dataclass(frozen=True)
class Explanation:
    title: str
    text: str  # Markdown paragraph
    formula: str  # LaTeX: the phase's general formula
    numbers: str  # LaTeX: the same with the selected row's actual numbers
    row: int  # the global query row the numbers are for


def num(x: float) -> str:
    """A number for LaTeX: 4 significant digits, -inf as -\\infty."""
    if np.isneginf(x):
        return r"-\infty"
    if np.isposinf(x):
        return r"\infty"
    return f"{x:.4g}".replace("e", r"\mathrm{e}")


def _load(step: LoadStep, r: int, row: int) -> Explanation:
    text = (
        f"**Load Q block {step.i}** (query rows {step.rows.start} to {step.rows.stop - 1}) from "
        "HBM into on-chip memory, where it stays for the whole inner loop. Its running state "
        "starts empty: the row max m is minus infinity, the row sum l is 0, and the "
        "unnormalised output o is 0."
    )
    shown = [num(x) for x in step.q_i[r, :4]] + ([r"\dots"] if step.q_i.shape[1] > 4 else [])
    numbers = rf"q_{{{row}}} = [{', '.join(shown)}]"
    return Explanation(
        f"Step: load Q block {step.i}",
        text,
        r"m_i = -\infty,\quad \ell_i = 0,\quad o_i = 0",
        numbers,
        row,
    )


def _tile_story(step: TileStep, r: int, row: int) -> str:
    if np.isneginf(step.m[r]):
        return f"Query row {row} sees no key yet (all masked), so its state stays empty."
    if not np.isfinite(step.m_prev[r]):
        return f"This is row {row}'s first visible tile: its max is set to {step.m[r]:.4g}."
    if step.m[r] > step.m_prev[r]:
        return (
            f"For query row {row} the max **rose** from {step.m_prev[r]:.4g} to {step.m[r]:.4g}, "
            f"so alpha = exp({step.m_prev[r]:.4g} - {step.m[r]:.4g}) = {step.alpha[r]:.4g} "
            "shrinks the old l and o before this tile's terms are added: everything computed "
            "so far was relative to the old max."
        )
    return (
        f"For query row {row} the max stayed at {step.m[r]:.4g}, so alpha = 1 and nothing is "
        "rescaled: the new terms are simply added."
    )


def _tile(step: TileStep, r: int, row: int) -> Explanation:
    masked = (
        " The tile crosses the causal diagonal, so keys after a query's position are masked "
        "to minus infinity (they get P~ = 0)."
        if step.tile_kind == "partial"
        else ""
    )
    text = (
        f"**Fold K/V tile {step.j} into Q block {step.i}.** $K_{{{step.j}}}$ and "
        f"$V_{{{step.j}}}$ are loaded; the scores $S = \\tau\\, Q K^T$ of this tile are "
        f"computed on chip.{masked} The new row max $m$ takes the larger of the old max and "
        "this tile's max; $\\tilde P = \\exp(S - m)$ uses the new max; the factor "
        "$\\alpha = \\exp(m_{old} - m)$ corrects the old sum $\\ell$ and output $o$. "
        + _tile_story(step, r, row)
    )
    formula = (
        r"\begin{aligned} m_i^{new} &= \max\left(m_i,\ \mathrm{rowmax}(S_{ij})\right) \\ "
        r"\tilde P_{ij} &= e^{S_{ij} - m_i^{new}},\qquad \alpha = e^{m_i - m_i^{new}} \\ "
        r"\ell_i &\leftarrow \alpha\,\ell_i + \mathrm{rowsum}(\tilde P_{ij}) \\ "
        r"o_i &\leftarrow \mathrm{diag}(\alpha)\,o_i + \tilde P_{ij} V_j \end{aligned}"
    )
    rowmax = step.s[r].max()
    psum = step.p[r].sum()
    numbers = (
        rf"m_{{{row}}} = \max({num(step.m_prev[r])},\ {num(rowmax)}) = {num(step.m[r])},\quad "
        rf"\alpha = {num(step.alpha[r])}"
        rf"\\ \ell_{{{row}}} = {num(step.alpha[r])} \times {num(step.l_prev[r])} + {num(psum)} "
        rf"= {num(step.l[r])}"
        rf"\\ o_{{{row},0}} = {num(step.alpha[r])} \times {num(step.o_prev[r, 0])} + "
        rf"{num(step.pv[r, 0])} = {num(step.o[r, 0])}"
    )
    return Explanation(f"Step: tile ({step.i}, {step.j})", text, formula, numbers, row)


def _write(step: WriteStep, r: int, row: int) -> Explanation:
    text = (
        f"**Normalise once and write Q block {step.i}.** All K/V tiles are folded in, so l "
        "now holds the full softmax denominator (relative to the final max m). FlashAttention-2 "
        "divides o by l only here, once, instead of after every tile as FlashAttention-1 "
        "did; then O_i and the logsumexp L_i = m + log l go back to HBM."
    )
    formula = r"O_i = \mathrm{diag}(\ell_i)^{-1}\, o_i,\qquad L_i = m_i + \log \ell_i"
    numbers = (
        rf"O_{{{row},0}} = {num(step.o_unnormalized[r, 0])} / {num(step.l[r])} = "
        rf"{num(step.o[r, 0])},\quad L_{{{row}}} = {num(step.m[r])} + \log {num(step.l[r])} = "
        rf"{num(step.lse[r])}"
    )
    return Explanation(f"Step: write O block {step.i}", text, formula, numbers, row)


def explain(trace: Trace, step_index: int, row: int = 0) -> Explanation:
    """The explanation of step ``step_index`` with numbers for row ``row`` of the Q block."""
    step = trace.steps[step_index]
    r = min(max(row, 0), len(step.rows) - 1)
    global_row = step.rows.start + r
    if isinstance(step, LoadStep):
        return _load(step, r, global_row)
    if isinstance(step, TileStep):
        return _tile(step, r, global_row)
    assert isinstance(step, WriteStep)
    return _write(step, r, global_row)
