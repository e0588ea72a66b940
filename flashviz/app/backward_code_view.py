"""Code beside the math on the backward page: the inner step and the loops of the NumPy
backward, this step's phase lit up.

The sources are cut at their ``phase:`` markers (``flashviz.lab.backward_code_view``) and drawn
as the stepper's code is (``flashviz.app.stepper.code_view.source_html``), cached per file
version (path and modification time).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from flashviz.app.cached import cached
from flashviz.app.stepper.code_view import CONTEXT, file_lines, source_html
from flashviz.lab.backward_code_view import STEP_PHASES, backward_highlight, source_paths
from flashviz.lab.code_view import Source

ALL = "all phases"
PHASE_KEY = "bwd_code_phase"  # the radio of a tile step's phase (kept by the page)
Files = tuple[tuple[str, int], ...]


def _files() -> Files:
    return tuple((str(p), p.stat().st_mtime_ns) for p in source_paths())


@cached()
def _lit(files: Files, kind: str, phase: str | None) -> list[tuple[Source, list]]:
    (inner, _), (loops, _) = files
    return backward_highlight(kind, phase, Path(inner), Path(loops))


@cached()
def _drawn(files: Files, kind: str, phase: str | None, whole: bool) -> list[str]:
    return [
        source_html(src, ranges, context=None if whole or not ranges else CONTEXT)
        for src, ranges in _lit(files, kind, phase)
    ]


NO_MARKER = (
    "A load step has no `phase:` marker: the loop of `tiled_backward` slices K_j "
    "and V_j and sets dK_j = dV_j = 0 before its inner loop (right, unlit)."
)


def backward_code_section(kind: str) -> None:
    """The inner step (left) and the loops (right), the phases of a ``kind`` step lit up;
    at a tile step a radio picks one phase."""
    st.markdown("#### The code of this step")
    phase = None
    if kind == "tile":
        choice = st.radio("Phase to highlight", (ALL, *STEP_PHASES["tile"]), key=PHASE_KEY,
                          horizontal=True)  # fmt: skip
        phase = None if choice == ALL else choice
    try:
        files = _files()
        lit = _lit(files, kind, phase)
    except (ValueError, OSError) as e:  # a missing or repeated marker, a missing file
        st.error(f"Cannot show the code of this step: {e}")
        return
    phases = STEP_PHASES[kind] if phase is None else (phase,)
    names = ", ".join(f"`{p}`" for p in phases)
    st.caption(
        (f"Highlighted: {names}, each from its `phase:` marker to the end of its paragraph."
         if phases else NO_MARKER)
        + " Left, the inner step on one tile (`row_delta` runs once before the loops); "
        "right, the loops around it."
    )  # fmt: skip
    whole = st.toggle("Show the whole sources", key="bwd_code_whole")
    drawn = _drawn(files, kind, phase, whole)
    for col, (src, ranges), body in zip(st.columns(2), lit, drawn, strict=True):
        where = f", lines {file_lines(src, ranges)}" if ranges else ""
        col.caption(f"`{src.path}`{where}")
        col.html(body)
