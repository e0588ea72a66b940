"""The backward's Python code, cut into the phases of one step (as ``code_view`` does for
the forward).

Two sources, read from the files at every call: the inner step (``row_delta`` and
``attn_bwd_inner`` of ``flashviz/core/backward_step.py``, markers ``delta`` to ``dk``) and
the loops (``tiled_backward`` of ``flashviz/core/backward.py``, marker ``write``).
The span of a phase follows ``code_view``'s rule. A ``load_kv`` step has no marker: K_j
and V_j are loaded and dK_j = dV_j = 0 by the loop, around the markers.
"""

from __future__ import annotations

from pathlib import Path

from flashviz.core import backward, backward_step
from flashviz.lab.code_view import Source, function_code, phase_ranges, phases_of

INNER_PHASES: tuple[str, ...] = (
    "delta",  # D_i = rowsum(dO_i * O_i), once before the loops
    "scores",  # s_ij = scale q_i k_j^T, masked
    "recompute",  # p_ij = exp(s_ij - L_i)
    "dv",  # dV_j += p_ij^T dO_i
    "dp",  # dp_ij = dO_i v_j^T
    "ds",  # ds_ij = p_ij * (dp_ij - D_i)
    "dq",  # dQ_i += scale ds_ij k_j, in HBM
    "dk",  # dK_j += scale ds_ij^T q_i
)
LOOP_PHASES: tuple[str, ...] = ("write",)  # dK_j, dV_j -> HBM
# The phases each step kind of flashviz.core.backward_trace runs, in order.
STEP_PHASES: dict[str, tuple[str, ...]] = {
    "delta": INNER_PHASES[:1],
    "load_kv": (),
    "tile": INNER_PHASES[1:],
    "write_kv": LOOP_PHASES,
}
INNER_FUNCTIONS = ("row_delta", "attn_bwd_inner")
LOOP_FUNCTIONS = ("tiled_backward",)


def step_phases(step_kind: str, phase: str | None = None) -> tuple[str, ...]:
    """The phases a backward step of ``step_kind`` runs, or just ``phase`` (one of them)."""
    return phases_of(step_kind, phase, STEP_PHASES)


def source_paths() -> tuple[Path, Path]:
    """The inner step's file and the loops' file."""
    return Path(backward_step.__file__), Path(backward.__file__)


def backward_sources(
    inner: Path | None = None, loops: Path | None = None
) -> list[tuple[Source, tuple[str, ...]]]:
    """The two sources, each with the phases it marks (paths default to the core's files)."""
    default_inner, default_loops = source_paths()
    return [
        (function_code(inner or default_inner, INNER_FUNCTIONS), INNER_PHASES),
        (function_code(loops or default_loops, LOOP_FUNCTIONS), LOOP_PHASES),
    ]


def backward_highlight(
    step_kind: str, phase: str | None = None, inner: Path | None = None, loops: Path | None = None
) -> list[tuple[Source, list[tuple[int, int]]]]:
    """Each source with its shown-line ranges to light up for this step (and phase).

    Raises MarkerError if a source's markers are missing, repeated or unknown."""
    phases = step_phases(step_kind, phase)
    return [
        (src, phase_ranges(src, phases, expected))
        for src, expected in backward_sources(inner, loops)
    ]
