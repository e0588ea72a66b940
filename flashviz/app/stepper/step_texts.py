"""The step panel's text parts as HTML, one set per step: the explanation with its worked
numbers, the bug banner, the counters and the code. The browser holds them for a window of
steps beside the charts (``step_view.text``) and swaps them with the charts in one frame.

Every string here is ours (the explanations, the bug zoo, numbers), and is escaped all the
same: ``math_html`` escapes text and draws TeX as MathML.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from flashviz.app.math_html import markdown_html, tex_html
from flashviz.app.stepper.code_view import code_html
from flashviz.figures import FigureContext
from flashviz.lab.bugzoo import BUGS
from flashviz.lab.explain import explain
from flashviz.lab.progress import progress


@dataclass(frozen=True)
class TextChoices:
    """What the texts depend on besides the step: the reader's choices and the bug."""

    row: int = 0  # the query row inside the Q block, for the worked numbers
    tile_phase: str | None = None  # the code's phase at a tile step (None: all)
    whole_code: bool = False
    bug_at: int | None = None  # the first step where the run with a bug leaves the correct one


def _p(text: str, cls: str = "") -> str:
    return f'<p class="{cls}">{markdown_html(text)}</p>' if cls else f"<p>{markdown_html(text)}</p>"


def explanation_html(ctx: FigureContext, k: int, row: int) -> str:
    """Title, paragraph, formula and the selected query row's numbers at step ``k``."""
    e = explain(ctx.trace, k, row)
    parts = [f'<h4 class="fv-title">{html.escape(e.title)}</h4>', _p(e.text), tex_html(e.formula)]
    if e.correct:  # a bug is on: its own update, then the correct one from the same state
        parts += [
            _p(f"The update the bug performs on query row {e.row}, with its numbers:",
               "fv-caption"),
            tex_html(e.numbers),
            _p("What the correct update gives from the same state, and the difference "
               "(Delta = bug - correct):", "fv-caption"),
            tex_html(e.correct),
        ]  # fmt: skip
    else:
        parts += [_p(f"With the numbers of query row {e.row}:", "fv-caption"), tex_html(e.numbers)]
    return f'<div class="fv-explanation" data-row="{e.row}">{"".join(parts)}</div>'


def _alert(kind: str, text: str, extra: str = "") -> str:
    body = f"<span>{markdown_html(text)}</span>"
    return f'<div class="fv-alert fv-{kind}" role="status">{body}{extra}</div>'


def bug_html(ctx: FigureContext, k: int, bug_at: int | None) -> str:
    """With a bug on: where the run first leaves the correct one, relative to step ``k``
    ('' without a bug)."""
    bug = ctx.trace.bug
    if bug is None:
        return ""
    title = f"Bug on: **{BUGS[bug].title}**."
    if bug_at is None:
        return _alert(
            "info",
            f"{title} On this problem it never changes the result (no step differs from the "
            "correct run). Try the spiky pattern, a causal mask with n_q > n_k, or a large "
            "softmax scale to make it bite.",
        )
    if k < bug_at:
        go = (
            f'<button type="button" class="fv-button fv-goto" data-goto="{bug_at}">'
            f"Go to step {bug_at}</button>"
        )
        return _alert(
            "warning",
            f"{title} Still right at this step; the run first leaves the correct one at "
            f"step {bug_at}.",
            go,
        )
    if k == bug_at:
        return _alert(
            "error", f"{title} This is the step where it first bites: {BUGS[bug].explanation}"
        )
    return _alert(
        "error",
        f"{title} Past step {bug_at}, where it first left the correct run: the numbers below "
        "are wrong.",
    )


def _metric(label: str, value: str, help_text: str = "") -> str:
    tip = f' title="{html.escape(help_text)}"' if help_text else ""
    return (
        f'<div class="fv-metric"{tip}><div class="fv-metric-label">{html.escape(label)}</div>'
        f'<div class="fv-metric-value">{html.escape(value)}</div></div>'
    )


def counters_html(ctx: FigureContext, k: int) -> str:
    """Tiles done, HBM moved so far and by naive attention, bytes on chip, rows rescaled and
    rescales skipped, at step ``k``."""
    p = progress(ctx.trace, k)
    return '<div class="fv-metrics">' + "".join([
        _metric("tiles done", f"{p.tiles_done} / {p.tiles_total}"),
        _metric("HBM moved so far (FA2)", f"{p.hbm_bytes / 1024:,.1f} KiB",
                f"The whole FlashAttention-2 run moves {p.hbm_bytes_total / 1024:,.1f} KiB "
                "(float32, 4 bytes per number)."),
        _metric("naive attention moves", f"{p.naive_hbm_bytes / 1024:,.1f} KiB",
                "Standard attention writes S and P (n_q x n_k each) to HBM and reads them back."),
        _metric("on chip now", f"{p.sram_bytes / 1024:,.2f} KiB",
                "Q_i, K_j, V_j, one S/P~ tile, o_i, m_i and l_i (float32)."),
        _metric("rows rescaled / skipped", f"{p.rescales} / {p.rescales_skipped}",
                f"Rows whose max rose so their l_i and o_i were rescaled (alpha < 1), and rows "
                f"whose max rose but was kept stale (FA4's lazy rescaling); the whole run: "
                f"{p.rescales_total} / {p.rescales_skipped_total}."),
    ]) + "</div>"  # fmt: skip


def step_texts(ctx: FigureContext, k: int, choices: TextChoices) -> dict[str, str]:
    """Every text part of step ``k``, by part name."""
    return {
        "bug": bug_html(ctx, k, choices.bug_at),
        "explanation": explanation_html(ctx, k, choices.row),
        "counters": counters_html(ctx, k),
        "code": code_html(ctx.trace.steps[k].kind, choices.tile_phase, choices.whole_code),
    }
