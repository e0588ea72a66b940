"""One budget bounds what a page computes for one problem.

``estimate_cost`` adds up two recorded runs (every tile's arrays: a bug's run and the
correct one, or FA1 and FA2), the figure context (the full score matrix and the float64
reference) and the figures (whole-run frames are bounded by what is drawn), in bytes and
seconds of server CPU; a problem over ``MEMORY_BUDGET`` (256 MiB) or ``TIME_BUDGET`` (4 s)
is refused before anything is allocated (``budget_errors``), with a suggested size
(``suggest_spec`` / ``suggest_size``) that fits every limit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from flashviz.core.masking import num_blocks
from flashviz.lab.problem_spec import NO_BUG, ProblemSpec

MAX_CELLS = 512 * 512  # n_q * n_k: the trace keeps every tile's scores
MAX_STEPS = 3000  # steps a slider can still reach
MAX_HEAD_DIM = 256
MEMORY_BUDGET = 256 * 2**20  # bytes one problem's page may hold (trace, context, figures)
TIME_BUDGET = 4.0  # seconds of server CPU to trace a problem and build its figures
_FIGURES_BYTES = 16 * 2**20  # whole-run frames (<= 150 x 64 rows x 32 dims) and figure JSON
_SECONDS_FIXED, _SECONDS_PER_STEP, _SECONDS_PER_MIB = 1.0, 0.6e-3, 8e-3  # measured, rounded up


def page_steps(spec: ProblemSpec, page: str) -> int:
    """The steps a slider of ``page`` walks through (the backward's on its page)."""
    return spec.n_backward_steps if page == "backward" else spec.n_steps


@dataclass(frozen=True)
class PageCost:
    """What one problem costs the server (upper bounds): bytes of each part, and seconds."""

    trace_bytes: int  # two recorded runs: a bug's and the correct one, or FA1 and FA2
    context_bytes: int  # full score matrix, tile map, float64 reference, per trace
    figure_bytes: int
    seconds: float

    @property
    def total_bytes(self) -> int:
        return self.trace_bytes + self.context_bytes + self.figure_bytes

    @property
    def within_budget(self) -> bool:
        return self.total_bytes <= MEMORY_BUDGET and self.seconds <= TIME_BUDGET


PAGES = ("stepper", "fa1", "precision", "backward")  # pages whose work estimate_cost knows
_PRECISION_RUNS = 12  # the Precision page: 4 precisions x 3 stages, each a recorded run


def estimate_cost(spec: ProblemSpec, page: str = "stepper") -> PageCost:
    """Memory and time of everything ``page`` computes for ``spec`` (no allocation).

    "stepper" and "fa1": two recorded runs (the stepper with a bug records the correct run
    too; FA1 vs FA2 records both), the figure context of each stepper run, the figures.
    "precision": the exact run and one of the 12 stage runs alive at a time, 12 kept
    outputs (o and its error, n_q x d each), 13 runs' time. "backward": one recorded
    backward run (``_backward_trace_bytes``), the forward run before it and the float64
    gradient from the whole P (about 8 n_q x n_k arrays alive at once). float64 everywhere (lower
    precisions take less). A trace holds q, k, v; per query block q_i and the state at load
    and write; per tile s_ij and P~ (together n_q x n_k over all tiles), o before adding
    P~ V and after (n_q x d per K/V block), five row vectors.
    """
    if page not in PAGES:
        raise ValueError(f"page must be one of {PAGES}, got {page!r}")
    if page == "backward":
        return _backward_cost(spec)
    n_q, n_k, d = spec.n_q, spec.n_k, spec.head_dim
    n_kb = num_blocks(n_k, spec.block_kv)
    trace = 8 * (
        (n_q + 2 * n_k) * d  # inputs
        + n_q * (2 * d + 2)  # load steps
        + 2 * n_q * n_k
        + n_q * n_kb * (2 * d + 5)  # tile steps
        + n_q * (2 * d + 3)  # write steps
    )
    context = 8 * (4 * n_q * n_k + 3 * n_q * d)
    if page == "precision":
        traces, runs = 2, 1 + _PRECISION_RUNS
        contexts, context = 1, 8 * 2 * _PRECISION_RUNS * n_q * d  # the kept outputs
    else:
        traces = runs = 2
        contexts = 1 if spec.bug == NO_BUG or page == "fa1" else 2
    total = traces * trace + contexts * context + _FIGURES_BYTES
    seconds = (
        _SECONDS_FIXED + runs * spec.n_steps * _SECONDS_PER_STEP + total / 2**20 * _SECONDS_PER_MIB
    )
    return PageCost(traces * trace, contexts * context, _FIGURES_BYTES, seconds)


def _backward_trace_bytes(spec: ProblemSpec) -> int:
    """A recorded backward run: q, dO, O (n_q x d), k, v (n_k x d), L, D; per tile s, p, dp,
    ds (together n_q x n_k at most), dK_j, dV_j (bkv x d) and dQ's addition and partial sum
    (bq x d); the zeros of each K/V block; the gradients."""
    n_q, n_k, d = spec.n_q, spec.n_k, spec.head_dim
    n_qb, n_kb = num_blocks(n_q, spec.block_q), num_blocks(n_k, spec.block_kv)
    return 8 * (
        3 * n_q * d + 2 * n_k * d + 2 * n_q  # inputs, the saved O, L and D
        + 4 * n_q * n_k  # tile steps: s, p, dp, ds
        + 2 * n_k * d * (n_qb + 1)  # tile steps (and zeros): dK_j, dV_j after each tile
        + 2 * n_q * d * n_kb  # tile steps: dQ_i's addition and its partial sum
        + n_q * d + 2 * n_k * d  # dq, dk, dv
    )  # fmt: skip


def _backward_cost(spec: ProblemSpec) -> PageCost:
    trace = _backward_trace_bytes(spec)
    context = 8 * 8 * spec.n_q * spec.n_k  # the float64 gradient: S, P, dP, dS, temporaries
    total = trace + context + _FIGURES_BYTES
    steps = spec.n_steps + spec.n_backward_steps  # the forward (for O, L), then the backward
    seconds = _SECONDS_FIXED + steps * _SECONDS_PER_STEP + total / 2**20 * _SECONDS_PER_MIB
    return PageCost(trace, context, _FIGURES_BYTES, seconds)


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


def _try(spec: ProblemSpec, page: str) -> str:
    s = suggest_spec(spec, page)
    return f"Try n_q = {s.n_q}, n_k = {s.n_k}, block_q = {s.block_q}, block_kv = {s.block_kv}."


def budget_errors(spec: ProblemSpec, page: str) -> list[str]:
    """The sentences that refuse ``spec`` on ``page`` for its size or cost; empty when it fits."""
    errors = []
    if spec.head_dim > MAX_HEAD_DIM:
        errors.append(f"`head_dim` = {spec.head_dim} is above {MAX_HEAD_DIM}; try 64 or 128.")
        return errors
    steps = page_steps(spec, page)
    if spec.n_q * spec.n_k > MAX_CELLS or steps > MAX_STEPS:
        errors.append(
            f"This problem is too large to trace step by step ({spec.n_q} x {spec.n_k} = "
            f"{spec.n_q * spec.n_k:,} scores, up to {steps:,} steps; the limits are "
            f"{MAX_CELLS:,} scores and "
            f"{MAX_STEPS:,} steps). {_try(spec, page)}"
        )
        return errors
    cost = estimate_cost(spec, page)
    if not cost.within_budget:
        errors.append(
            f"This problem would cost the server about {_mib(cost.total_bytes)} and "
            f"{cost.seconds:.1f} s of CPU (recorded runs {_mib(cost.trace_bytes)}, scores, "
            f"reference and outputs {_mib(cost.context_bytes)}, figures "
            f"{_mib(cost.figure_bytes)}); one "
            f"problem may take at most {_mib(MEMORY_BUDGET)} and {TIME_BUDGET:g} s, so that "
            f"a class can share the server. {_try(spec, page)}"
        )
    return errors


def _fits(spec: ProblemSpec, page: str) -> bool:
    return (
        spec.n_q * spec.n_k <= MAX_CELLS
        and page_steps(spec, page) <= MAX_STEPS
        and estimate_cost(spec, page).within_budget
    )


def suggest_spec(spec: ProblemSpec, page: str = "stepper") -> ProblemSpec:
    """``spec`` with n_q, n_k, block_q, block_kv changed as little as it takes to fit the
    size limits and the budget: the sizes halved to the score limit, then blocks doubled
    (fewer steps, fewer saved accumulators), then the larger of n_q, n_k halved."""
    n_q, n_k = max(1, spec.n_q), max(1, spec.n_k)
    while n_q * n_k > MAX_CELLS:
        n_q, n_k = max(1, n_q // 2), max(1, n_k // 2)
    head_dim = min(max(1, spec.head_dim), MAX_HEAD_DIM)
    s = replace(
        spec,
        n_q=n_q,
        n_k=n_k,
        head_dim=head_dim,
        block_q=min(max(1, spec.block_q), n_q),
        block_kv=min(max(1, spec.block_kv), n_k),
    )
    while not _fits(s, page):
        if page_steps(s, page) > MAX_STEPS and (s.block_q < s.n_q or s.block_kv < s.n_k):
            s = replace(s, block_q=min(2 * s.block_q, s.n_q), block_kv=min(2 * s.block_kv, s.n_k))
        elif s.block_kv < s.n_k:
            s = replace(s, block_kv=min(2 * s.block_kv, s.n_k))
        elif s.n_q >= s.n_k:
            s = replace(s, n_q=max(1, s.n_q // 2), block_q=min(s.block_q, max(1, s.n_q // 2)))
        else:
            s = replace(s, n_k=max(1, s.n_k // 2), block_kv=min(s.block_kv, max(1, s.n_k // 2)))
    return replace(s, head_dim=spec.head_dim)


def suggest_size(spec: ProblemSpec, page: str = "stepper") -> tuple[int, int, int, int]:
    """``suggest_spec``'s sizes: (n_q, n_k, block_q, block_kv)."""
    s = suggest_spec(spec, page)
    return s.n_q, s.n_k, s.block_q, s.block_kv
