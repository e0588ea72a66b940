"""One paragraph per step: what this phase does, its formula, and one query row's numbers.

``explain(trace, step_index, row)`` returns plain text (Markdown) and LaTeX strings; the
app renders them with ``st.markdown`` and ``st.latex``. ``row`` is the offset of the
selected query row inside the current Q block (clipped to the block). At a tile step the
numbers are the update as the run's bug computes it (``flashviz.lab.bugzoo.UpdateTex``,
FlashAttention-2's without a bug), followed by the correct update from the same state.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from flashviz.core.inner_step import online_update
from flashviz.core.trace import LoadStep, TileStep, Trace, WriteStep
from flashviz.lab.bugzoo import UpdateTex, bug_hooks, bug_tex


@dataclass(frozen=True)
class Explanation:
    title: str
    text: str  # Markdown paragraph
    formula: str  # LaTeX: the phase's general formula
    numbers: str  # LaTeX: the update the run performed, with the selected row's numbers
    row: int  # the global query row the numbers are for
    correct: str = ""  # with a bug on (tile step): the correct update from the same state


def term(x: float) -> str:
    """A number that follows a + or a x: negatives in parentheses."""
    return f"({num(x)})" if x < 0 else num(x)


LINE_CHARS = 26  # a line longer than this (in visible characters) puts its result below


def _visible(tex: str) -> int:
    return len(re.sub(r"\\[a-zA-Z]+|[{}&_^\\ ]", "", tex))


def lines(*equations: str) -> str:
    """One equation a line, aligned at '&='; a long 'name = expression = result' line puts
    ``= result`` on a line of its own, so the numbers fit a half-column box at 1280 px."""
    out = []
    for eq in equations:
        head, sep, result = eq.rpartition(" = ")
        if sep and "&=" in head and _visible(eq) > LINE_CHARS:
            out += [head, f"&= {result}"]
        else:
            out.append(eq)
    return r"\begin{aligned} " + r" \\ ".join(out) + r" \end{aligned}"


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
    head = 3  # entries of q_r shown: the line fits a half column at 1280 px
    shown = [num(x) for x in step.q_i[r, :head]] + ([r"\dots"] if step.q_i.shape[1] > head else [])
    numbers = rf"q_{{{row}}} = [{', '.join(shown)}]"
    return Explanation(
        f"Step: load Q block {step.i}",
        text,
        r"m_i = -\infty,\quad \ell_i = 0,\quad o_i = 0",
        numbers,
        row,
    )


def _tile_story(step: TileStep, r: int, row: int, threshold: float) -> str:
    if np.isneginf(step.m[r]):
        return f"Query row {row} sees no key yet (all masked), so its state stays empty."
    if not np.isfinite(step.m_prev[r]):
        return f"This is row {row}'s first visible tile: its max is set to {step.m[r]:.4g}."
    if step.stale[r]:
        top = float(np.max(step.s[r]))
        return (
            f"For query row {row} this tile's max {top:.4g} is above the running max "
            f"{step.m_prev[r]:.4g}, but by at most the rescale threshold ({threshold:g} in "
            f"log2 units, {threshold * np.log(2):.4g} here): FA4 keeps the **stale max** "
            f"{step.m[r]:.4g}, so alpha = 1 and nothing is rescaled. P~ = exp(s - m) goes "
            f"above 1 (up to {float(np.max(step.p[r])):.4g} in this tile); the final o / l "
            "divides the stale reference out, so the answer is the same."
        )
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


def _lazy_tex(threshold: float) -> UpdateTex:
    """FA4's update in TeX: the max line says when the new max is taken."""
    return UpdateTex(
        max=r"m_{{{row}}} &= {m} \quad \text{{(}}\max({m_prev},\ {rowmax})\text{{ only if "
        r"more than }} " + f"{threshold:g}" + r"\,\ln 2 \text{{ above)}}"
    )


def _tile(
    step: TileStep, r: int, row: int, bug: str | None, v_j: np.ndarray, threshold: float = 0.0
) -> Explanation:
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
        + _tile_story(step, r, row, threshold)
    )
    formula = (
        r"\begin{aligned} m_i^{new} &= \max\left(m_i,\ \mathrm{rowmax}(S_{ij})\right) \\ "
        r"\tilde P_{ij} &= e^{S_{ij} - m_i^{new}} \\ \alpha &= e^{m_i - m_i^{new}} \\ "
        r"\ell_i &\leftarrow \alpha\,\ell_i + \mathrm{rowsum}(\tilde P_{ij}) \\ "
        r"o_i &\leftarrow \mathrm{diag}(\alpha)\,o_i + \tilde P_{ij} V_j \end{aligned}"
    )
    values = _tile_values(step, r, row, v_j, bug_hooks(bug).scores)
    tex = _lazy_tex(threshold) if threshold and bug is None else bug_tex(bug)
    numbers = lines(*tex.lines(**values))
    correct = _correct_numbers(step, r, row, v_j) if bug else ""
    return Explanation(f"Step: tile ({step.i}, {step.j})", text, formula, numbers, row, correct)


def _tile_values(
    step: TileStep, r: int, row: int, v_j: np.ndarray, read: Callable[[np.ndarray], np.ndarray]
) -> dict[str, object]:
    """Row r's numbers of the update, written as TeX: the fields of ``UpdateTex``. ``read``
    gives the scores as the run's update reads them (a mask bug reads its stand-in where the
    trace shows the masked -inf)."""
    with np.errstate(over="ignore", invalid="ignore"):  # a buggy run's inf and NaN
        pv_from_p = float(step.p[r] @ v_j[:, 0])
    return {
        "row": row,
        "m_prev": num(step.m_prev[r]),
        "rowmax": num(read(step.s[r]).max()),
        "m": num(step.m[r]),
        "alpha": num(step.alpha[r]),
        "l_prev": num(step.l_prev[r]),
        "psum": num(step.p[r].sum()),
        "l": num(step.l[r]),
        "o_prev": term(step.o_prev[r, 0]),
        "pv": term(step.pv[r, 0]),
        "pv_from_p": term(pv_from_p),
        "o": num(step.o[r, 0]),
    }


def _correct_numbers(step: TileStep, r: int, row: int, v_j: np.ndarray) -> str:
    """What the correct update gives from the same state as the buggy step, and the gap."""
    one = slice(r, r + 1)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a buggy state
        c = online_update(step.m_prev[one], step.l_prev[one], step.o_prev[one], step.s[one], v_j)
        d_l = float(step.l[r] - c.l_i[0])
        d_o = float(step.o[r, 0] - c.o_i[0, 0])
    return lines(
        rf"m_{{{row}}} &= {num(c.m_i[0])},\quad \alpha = {num(c.alpha[0])}",
        rf"\ell_{{{row}}} &= {num(c.l_i[0])},\quad \Delta\ell = {num(d_l)}",
        rf"o_{{{row},0}} &= {num(c.o_i[0, 0])},\quad \Delta o = {num(d_o)}",
    )


def _write(step: WriteStep, r: int, row: int) -> Explanation:
    text = (
        f"**Normalise once and write Q block {step.i}.** All K/V tiles are folded in, so l "
        "now holds the full softmax denominator (relative to the final max m). FlashAttention-2 "
        "divides o by l only here, once, instead of after every tile as FlashAttention-1 "
        "did; then O_i and the logsumexp L_i = m + log l go back to HBM."
    )
    formula = r"O_i = \mathrm{diag}(\ell_i)^{-1}\, o_i,\qquad L_i = m_i + \log \ell_i"
    numbers = lines(
        rf"O_{{{row},0}} &= {term(step.o_unnormalized[r, 0])} / {num(step.l[r])} = "
        rf"{num(step.o[r, 0])}",
        rf"L_{{{row}}} &= {num(step.m[r])} + \log {num(step.l[r])} = {num(step.lse[r])}",
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
        threshold = trace.hooks.rescale_threshold
        return _tile(step, r, global_row, trace.bug, trace.v[step.cols], threshold)
    assert isinstance(step, WriteStep)
    return _write(step, r, global_row)
