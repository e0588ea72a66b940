"""Code beside the math: the Python inner step and the CUDA kernel, this step's phase lit up.

Both sources are cut at their ``phase:`` markers (``flashviz/lab/code_view.py``) and drawn
once per file version: the cache is keyed on each file's path and modification time, so
the highlight follows the code as it changes without re-parsing it at every step. st.code
cannot highlight lines, so the code is drawn as escaped HTML: monospace, file line
numbers, comments dimmed, the current phase's lines on an orange background. A phase only
the kernel has (``code_view.KERNEL_ONLY``: the cross-thread sum of l_i at a write step)
lights nothing on the Python side, and the caption says why. The code is a part of the
step view (``code_html``, one per step kind), swapped by the browser with the step; its
controls (``code_choices``) stay the same from step to step.
"""

from __future__ import annotations

import html
from pathlib import Path

import streamlit as st

from flashviz.app.cached import cached
from flashviz.app.math_html import markdown_html
from flashviz.core import inner_step
from flashviz.figures.style import CURRENT
from flashviz.lab import code_view
from flashviz.lab.code_view import (
    KERNEL_ONLY,
    STEP_PHASES,
    Source,
    highlight,
    inner_step_code,
    kernel_code,
    markers,
    phases_of,
)

Files = tuple[tuple[str, int], ...]  # (path, st_mtime_ns) of the Python and CUDA sources
_KERNEL_ONLY_NOTES = {  # why each phase of code_view.KERNEL_ONLY has no Python lines
    "reduce": " `reduce` is the kernel's alone: each thread has kept l_part, the sum over "
    "its own columns, and the row's threads now add their shares into l_i; NumPy's l_i is "
    "the whole row's sum from the start.",
}

ALL = "all phases"
CONTEXT = 3  # lines shown around the highlighted ones, unless the whole source is asked for
_BOX = (
    "font-family: 'Source Code Pro', ui-monospace, monospace; font-size: 0.78rem; "
    "line-height: 1.45; white-space: pre; overflow: auto; max-height: 38rem; "
    "border-radius: 0.5rem; "
    "border: 1px solid rgba(128, 128, 128, 0.35); padding: 0.4rem 0"
)
_LIT = f"background: rgba(230, 159, 0, 0.22); box-shadow: inset 4px 0 0 {CURRENT}"
_DIM = "opacity: 0.6"
_NUM = f"{_DIM}; user-select: none"


def _comment_at(line: str, prefix: str) -> int | None:
    """Index where a comment starts in ``line`` (outside string literals), or None."""
    quote = None
    for n, ch in enumerate(line):
        if quote:
            quote = None if ch == quote and line[n - 1] != "\\" else quote
        elif ch in "'\"":
            quote = ch
        elif line.startswith(prefix, n):
            return n
    return None


def _code(line: str, prefix: str, is_marker: bool) -> str:
    """One line as HTML: a phase marker in bold, other comments and `#pragma` lines dimmed."""
    if is_marker:
        return f"<b>{html.escape(line)}</b>"
    if prefix == "//" and line.startswith("#"):
        return f'<span style="{_DIM}">{html.escape(line)}</span>'
    at = _comment_at(line, prefix)
    if at is None:
        return html.escape(line)
    return f'{html.escape(line[:at])}<span style="{_DIM}">{html.escape(line[at:])}</span>'


def source_html(source: Source, ranges: list[tuple[int, int]], context: int | None = None) -> str:
    """The source as HTML with shown lines in ``ranges`` (1-based, inclusive) highlighted.

    ``context``: show only the highlighted lines and this many around them, a gap line
    standing for each hidden run; None shows every line. Each line is a
    ``<div class="fv-line" data-line=N>`` (``fv-line fv-hl`` when highlighted).
    """
    lines = source.lines
    lit = {n for first, last in ranges for n in range(first, last + 1)}
    marks = {n for _, n in markers(source.text, source.comment_prefix)}
    width = len(str(max((n for n in source.line_numbers if n), default=1)))
    shown = set(range(1, len(lines) + 1))
    if context is not None:
        shown = {n for n in shown if any(abs(n - m) <= context for m in lit)}
    rows, hidden = [], 0
    for n, (line, number) in enumerate(zip(lines, source.line_numbers, strict=True), 1):
        if n not in shown:
            hidden += 1
            continue
        if hidden:
            rows.append(_gap(hidden))
            hidden = 0
        num = f'<span class="fv-num" style="{_NUM}">{number or "":>{width}}  </span>'
        style, cls = (f' style="{_LIT}"', "fv-line fv-hl") if n in lit else ("", "fv-line")
        body = _code(line, source.comment_prefix, n in marks)
        rows.append(f'<div class="{cls}" data-line="{n}"{style}>{num}{body}</div>')
    if hidden:
        rows.append(_gap(hidden))
    # No newlines between the rows: the box keeps white space, so they would show as lines.
    return f'<div class="fv-code" style="{_BOX}"><div style="min-width: max-content">' + (
        "".join(rows) + "</div></div>"
    )


def _gap(hidden: int) -> str:
    return f'<div class="fv-gap" style="{_DIM}">  \u22ee {hidden} more lines</div>'


def file_lines(source: Source, ranges: list[tuple[int, int]]) -> str:
    parts = []
    for first, last in ranges:
        a, b = source.line_numbers[first - 1], source.line_numbers[last - 1]
        parts.append(f"{a}" if a == b else f"{a}-{b}")
    return ", ".join(parts)


def _files() -> Files:
    """The two source files as (path, modification time): what the caches below key on."""
    paths = (Path(inner_step.__file__), code_view.KERNEL_PATH)
    return tuple((str(p), p.stat().st_mtime_ns) for p in paths)


@cached()
def _lit(files: Files, step_kind: str, phase: str | None) -> list[tuple[Source, list]]:
    """Each source with its lines to light up; raises (uncached) on a marker or file error."""
    (py_path, _), (cu_path, _) = files
    sources = [inner_step_code(Path(py_path)), kernel_code(Path(cu_path))]
    return [(src, highlight(src, step_kind, phase)) for src in sources]


@cached()
def _drawn(files: Files, step_kind: str, phase: str | None, whole: bool) -> list[str]:
    return [
        source_html(src, ranges, context=None if whole else CONTEXT)
        for src, ranges in _lit(files, step_kind, phase)
    ]


def code_choices() -> tuple[str | None, bool]:
    """The code section's heading and its two controls, the same at every step (the code
    itself is a step part: ``code_html``): the phase lit at a tile step (None: all of
    them), and whether to show the whole sources."""
    st.markdown("#### The code of this step")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    choice = left.radio(
        "Phase to highlight at a tile step", (ALL, *STEP_PHASES["tile"]), key="code_phase",
        horizontal=True,
    )  # fmt: skip
    whole = right.toggle("Show the whole sources", key="code_whole")
    return (None if choice == ALL else choice), whole


def code_html(step_kind: str, tile_phase: str | None = None, whole: bool = False) -> str:
    """The Python inner step and the CUDA kernel side by side as HTML, a ``step_kind`` step's
    phases lit (at a tile step only ``tile_phase``, when given), with captions.

    ``step_kind`` is a trace step's kind ("load_q", "tile", "write")."""
    phase = tile_phase if step_kind == "tile" else None
    try:
        phases = phases_of(step_kind, phase)
        files = _files()
        lit = _lit(files, step_kind, phase)
    except (ValueError, OSError) as e:  # a missing or repeated phase marker, a missing file
        message = html.escape(f"Cannot show the code of this step: {e}")
        return f'<div class="fv-alert fv-error">{message}</div>'
    names = ", ".join(f"`{p}`" for p in phases)
    kernel_only = [p for p in phases if p in KERNEL_ONLY]
    caption = (
        f"Highlighted: {names}, each from its `phase:` marker (the formula) to the end of "
        "its paragraph. The same phases, in the same order, in NumPy on one tile (left) and "
        "in the CUDA kernel, where each thread owns a few rows of the tile (right)."
        + "".join(_KERNEL_ONLY_NOTES[p] for p in kernel_only)
    )
    columns = []
    for (src, ranges), body in zip(lit, _drawn(files, step_kind, phase, whole), strict=True):
        if ranges:
            where = f"`{src.path}`, lines {file_lines(src, ranges)}"
        else:  # a kernel-only phase, asked for alone
            where = f"`{src.path}` has no `{'`, `'.join(kernel_only)}`: kernel only"
        columns.append(f'<div><p class="fv-caption">{markdown_html(where)}</p>{body}</div>')
    return (
        f'<p class="fv-caption">{markdown_html(caption)}</p>'
        f'<div class="fv-columns">{"".join(columns)}</div>'
    )
