"""The problem a user sets up in the app: plain parameters, validated, with size limits.

``ProblemSpec`` holds only plain values (ints, floats, strings), so it can key a cache and
round-trip through URL query parameters. ``problem_errors`` lists everything wrong with a
spec as sentences a user can act on; ``build_trace`` makes the inputs and records the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flashviz.bugzoo import BUGS
from flashviz.checks import CAUSAL_ALIGNS
from flashviz.masking import num_blocks
from flashviz.patterns import PATTERNS, make_inputs
from flashviz.precision import PRECISIONS
from flashviz.trace import Trace, record_trace

NO_BUG = "none"

MAX_CELLS = 512 * 512  # n_q * n_k: the trace keeps every tile's scores
MAX_STEPS = 3000  # steps a slider can still reach
MAX_HEAD_DIM = 256


@dataclass(frozen=True)
class ProblemSpec:
    """One attention head to trace. ``scale`` 0 means the default 1/sqrt(head_dim).

    ``precision`` is a key of ``flashviz.precision.PRECISIONS``; ``bug`` "none" or a key of
    ``flashviz.bugzoo.BUGS``; ``upload`` the digest of uploaded tensors ("" for a pattern),
    in which case n_q, n_k and head_dim are the uploaded shapes.
    """

    n_q: int = 16
    n_k: int = 16
    head_dim: int = 8
    block_q: int = 4
    block_kv: int = 4
    causal: bool = False
    causal_align: str = "bottom_right"
    scale: float = 0.0
    seed: int = 0
    pattern: str = "spiky"
    precision: str = "float64"
    bug: str = NO_BUG
    upload: str = ""

    @property
    def tiling(self) -> dict[str, object]:
        """The keyword arguments every tiled run of this problem takes."""
        return {
            "block_q": self.block_q,
            "block_kv": self.block_kv,
            "causal": self.causal,
            "causal_align": self.causal_align,
            "scale": self.scale_or_none,
        }

    @property
    def bug_or_none(self) -> str | None:
        return None if self.bug == NO_BUG else self.bug

    @property
    def scale_or_none(self) -> float | None:
        return None if self.scale == 0 else float(self.scale)

    @property
    def n_steps(self) -> int:
        """Upper bound on trace steps: per Q block one load, every K/V tile, one write."""
        return num_blocks(self.n_q, self.block_q) * (num_blocks(self.n_k, self.block_kv) + 2)


def _size_errors(spec: ProblemSpec) -> list[str]:
    errors = []
    for name in ("n_q", "n_k", "head_dim", "block_q", "block_kv"):
        if getattr(spec, name) < 1:
            errors.append(f"`{name}` must be at least 1, got {getattr(spec, name)}.")
    if errors:
        return errors
    for block, n in (("block_q", "n_q"), ("block_kv", "n_k")):
        b, size = getattr(spec, block), getattr(spec, n)
        if b > size:
            errors.append(
                f"`{block}` = {b} is larger than `{n}` = {size}: a block cannot hold more "
                f"rows than there are; use `{block}` <= {size}."
            )
    return errors


def _limit_errors(spec: ProblemSpec) -> list[str]:
    errors = []
    if spec.head_dim > MAX_HEAD_DIM:
        errors.append(f"`head_dim` = {spec.head_dim} is above {MAX_HEAD_DIM}; try 64 or 128.")
    if spec.n_q * spec.n_k > MAX_CELLS or spec.n_steps > MAX_STEPS:
        n_q, n_k, b_q, b_kv = suggest_size(spec)
        errors.append(
            f"This problem is too large to trace step by step ({spec.n_q} x {spec.n_k} scores, "
            f"up to {spec.n_steps} steps; the limits are {MAX_CELLS:,} scores and "
            f"{MAX_STEPS:,} steps). Try n_q = {n_q}, n_k = {n_k}, block_q = {b_q}, "
            f"block_kv = {b_kv}."
        )
    return errors


def problem_errors(spec: ProblemSpec) -> list[str]:
    """Everything wrong with ``spec``, one actionable sentence each; empty when it is fine."""
    errors = _size_errors(spec)
    if spec.causal_align not in CAUSAL_ALIGNS:
        errors.append(f"`causal_align` must be one of {list(CAUSAL_ALIGNS)}.")
    if spec.pattern not in PATTERNS:
        errors.append(f"`pattern` must be one of {list(PATTERNS)}, got {spec.pattern!r}.")
    if spec.precision not in PRECISIONS:
        errors.append(f"`precision` must be one of {list(PRECISIONS)}, got {spec.precision!r}.")
    if spec.bug != NO_BUG and spec.bug not in BUGS:
        errors.append(f"`bug` must be {NO_BUG!r} or one of {list(BUGS)}, got {spec.bug!r}.")
    if spec.seed < 0:
        errors.append(f"`seed` must be a non-negative integer, got {spec.seed}.")
    if spec.scale < 0:
        errors.append(f"`scale` must be positive (or 0 for 1/sqrt(d)), got {spec.scale}.")
    if not errors:
        errors = _limit_errors(spec)
    return errors


def suggest_size(spec: ProblemSpec) -> tuple[int, int, int, int]:
    """A size within the limits close to ``spec``: (n_q, n_k, block_q, block_kv)."""
    n_q, n_k, b_q, b_kv = spec.n_q, spec.n_k, spec.block_q, spec.block_kv
    while n_q * n_k > MAX_CELLS:
        n_q, n_k = max(1, n_q // 2), max(1, n_k // 2)
    b_q, b_kv = min(b_q, n_q), min(b_kv, n_k)
    while num_blocks(n_q, b_q) * (num_blocks(n_k, b_kv) + 2) > MAX_STEPS:
        b_q, b_kv = min(2 * b_q, n_q), min(2 * b_kv, n_k)
    return n_q, n_k, b_q, b_kv


def spec_inputs(
    spec: ProblemSpec, uploaded: tuple[np.ndarray, ...] | None = None
) -> tuple[np.ndarray, ...]:
    """q, k, v of the problem: the uploaded tensors, or the spec's pattern and seed."""
    if spec.upload:
        if uploaded is None:
            raise ValueError("this problem uses uploaded tensors: pass them as `uploaded`")
        return uploaded
    return make_inputs(spec.pattern, spec.n_q, spec.n_k, spec.head_dim, spec.seed)


def build_trace(spec: ProblemSpec, uploaded: tuple[np.ndarray, ...] | None = None) -> Trace:
    """The recorded FlashAttention-2 run of ``spec`` (its precision, its bug if any)."""
    errors = problem_errors(spec)
    if errors:
        raise ValueError(" ".join(errors))
    return record_trace(
        *spec_inputs(spec, uploaded),
        **spec.tiling,
        precision=spec.precision,
        bug=spec.bug_or_none,
    )
