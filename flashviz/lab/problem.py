"""The problem a user sets up in the app, validated, and its recorded run.

``problem_errors`` lists everything wrong with a ``ProblemSpec`` as sentences a user can
act on (its size limits and cost from ``flashviz.lab.budget``); ``build_trace`` makes the
inputs and records the run.
"""

from __future__ import annotations

import numpy as np

from flashviz.core.checks import CAUSAL_ALIGNS, check_tiled_problem
from flashviz.core.fa4 import check_rescale_threshold, check_threshold_fits, softmax_hooks
from flashviz.core.precision import PRECISIONS, get_precision
from flashviz.core.problem import TiledProblem
from flashviz.core.trace import Trace, record_problem
from flashviz.lab.budget import budget_errors
from flashviz.lab.bugzoo import BUGS, bug_hooks
from flashviz.lab.mask_lab import MASK_KINDS, MAX_N
from flashviz.lab.patterns import PATTERNS, make_inputs
from flashviz.lab.problem_spec import MAX_GROUP, NO_BUG, NO_MASK, ProblemSpec


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


def problem_errors(spec: ProblemSpec, page: str = "stepper") -> list[str]:
    """Everything wrong with ``spec``, one actionable sentence each; empty when it is fine.

    ``page`` (one of ``PAGES``) says whose work the budget is estimated for."""
    errors = _size_errors(spec)
    if spec.causal_align not in CAUSAL_ALIGNS:
        errors.append(f"`causal_align` must be one of {list(CAUSAL_ALIGNS)}.")
    if spec.pattern not in PATTERNS:
        errors.append(f"`pattern` must be one of {list(PATTERNS)}, got {spec.pattern!r}.")
    if spec.precision not in PRECISIONS:
        errors.append(f"`precision` must be one of {list(PRECISIONS)}, got {spec.precision!r}.")
    if spec.bug != NO_BUG and spec.bug not in BUGS:
        errors.append(f"`bug` must be {NO_BUG!r} or one of {list(BUGS)}, got {spec.bug!r}.")
    if spec.mask != NO_MASK and spec.mask not in MASK_KINDS:
        errors.append(f"`mask` must be {NO_MASK!r} or one of {list(MASK_KINDS)}.")
    elif spec.mask != NO_MASK and not 1 <= spec.mask_size <= MAX_N:
        errors.append(f"`mask_size` must be between 1 and {MAX_N}, got {spec.mask_size}.")
    errors += _group_errors(spec)
    if spec.precision in PRECISIONS:
        errors += _threshold_errors(spec)
    if spec.seed < 0:
        errors.append(f"`seed` must be a non-negative integer, got {spec.seed}.")
    if spec.scale < 0:
        errors.append(f"`scale` must be positive (or 0 for 1/sqrt(d)), got {spec.scale}.")
    if not errors:
        errors = budget_errors(spec, page)
    return errors


def _threshold_errors(spec: ProblemSpec) -> list[str]:
    try:
        threshold = check_rescale_threshold(spec.rescale_threshold)
        check_threshold_fits(threshold, get_precision(spec.precision))
    except ValueError as e:
        return [f"`rescale_threshold`: {e}."]
    return []


def _group_errors(spec: ProblemSpec) -> list[str]:
    if not 1 <= spec.group <= MAX_GROUP:
        return [f"`group` must be between 1 and {MAX_GROUP}, got {spec.group}."]
    if spec.upload and spec.group != 1:
        return ["`group` must be 1 with your own tensors: they hold one query head."]
    if not 0 <= spec.head < spec.group:
        return [f"`head` must be between 0 and `group` - 1 = {spec.group - 1}, got {spec.head}."]
    return []


def spec_inputs(
    spec: ProblemSpec, uploaded: tuple[np.ndarray, ...] | None = None
) -> tuple[np.ndarray, ...]:
    """q, k, v of the problem: the uploaded tensors, or the spec's pattern and seed (query
    head ``head`` of a group: q of seed + head, k and v of seed)."""
    if spec.upload:
        if uploaded is None:
            raise ValueError("this problem uses uploaded tensors: pass them as `uploaded`")
        return uploaded
    q, k, v = make_inputs(spec.pattern, spec.n_q, spec.n_k, spec.head_dim, spec.seed)
    if spec.head:  # another query head of the group: its own q, the group's k and v
        q = make_inputs(spec.pattern, spec.n_q, spec.n_k, spec.head_dim, spec.seed + spec.head)[0]
    return q, k, v


def spec_problem(spec: ProblemSpec, uploaded: tuple[np.ndarray, ...] | None = None) -> TiledProblem:
    """The core's problem of ``spec``: its inputs (``spec_inputs``), tiling and mask (a
    FlexAttention ``mask_mod`` in place of the causal toggle), validated."""
    q, k, v = spec_inputs(spec, uploaded)
    mod = None
    if spec.mask != NO_MASK:
        mod = MASK_KINDS[spec.mask].build(q.shape[0], k.shape[0], spec.mask_size)
    return check_tiled_problem(q, k, v, **spec.tiling, two_d=True, mask_mod=mod)


def build_trace(spec: ProblemSpec, uploaded: tuple[np.ndarray, ...] | None = None) -> Trace:
    """The recorded FlashAttention-2 run of ``spec`` (its precision, its bug if any, FA4's
    rescale threshold if set)."""
    errors = problem_errors(spec)
    if errors:
        raise ValueError(" ".join(errors))
    hooks = softmax_hooks(bug_hooks(spec.bug_or_none), spec.rescale_threshold or None)
    return record_problem(spec_problem(spec, uploaded), precision=spec.precision, hooks=hooks)
