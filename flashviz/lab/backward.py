"""FlashAttention-2's backward as a lesson: one recorded run with its float64 gradient, and
what the page shows at each step (counters, the tile map's states, dQ in HBM, D_i).

The inputs are the problem's (``ProblemSpec``: pattern, sizes, seed, via
``flashviz.lab.problem.spec_inputs``); the incoming gradient dO is drawn from the same seed
on its own stream, ``np.random.default_rng((seed, DO_STREAM))``, standard normal (n_q, d),
so q, k, v are the same as on the other pages. Everything runs in float64: the run and
``attention_backward_reference`` differ by rounding only, so the verdict's tolerance is
``flashviz.core.verdict.DEFAULT_TOL`` (the float64 stepper's).

Byte counts are those of a float32 kernel (4 bytes per number), as on the stepper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flashviz.core.accuracy import max_error
from flashviz.core.backward import attention_backward_reference
from flashviz.core.backward_trace import (
    BackwardTrace,
    BwdLoadStep,
    BwdTileStep,
    BwdWriteStep,
    record_backward_trace,
)
from flashviz.core.costs import (
    backward_memory_saved,
    backward_step_flops,
    backward_step_hbm,
    naive_backward_hbm,
    recompute_flops,
)
from flashviz.core.verdict import DEFAULT_TOL
from flashviz.lab.explain import Explanation, lines, num, term
from flashviz.lab.problem import problem_errors, spec_inputs
from flashviz.lab.problem_spec import ProblemSpec

DO_STREAM = 1  # dO's stream of the seed: q, k, v use the seed alone
ITEMSIZE = 4  # bytes per number, as a float32 GPU kernel would move them
TILE_STATES = ("done", "current", "to come", "skipped")  # codes 0 .. 3 of ``tile_states``


def grad_output(n_q: int, d: int, seed: int) -> np.ndarray:
    """dO, the gradient of the loss with respect to O: standard normal (n_q, d) in float64,
    from ``np.random.default_rng((seed, DO_STREAM))``."""
    return np.random.default_rng((seed, DO_STREAM)).standard_normal((n_q, d))


@dataclass(frozen=True, eq=False)
class BackwardRun:
    """The recorded backward, its float64 reference and per-step running totals."""

    trace: BackwardTrace
    dq_ref: np.ndarray  # (n_q, d)
    dk_ref: np.ndarray  # (n_k, d)
    dv_ref: np.ndarray  # (n_k, d)
    errors: dict[str, float]  # "dq", "dk", "dv": max |run - reference|
    tol: float
    tiles: np.ndarray  # (steps,) tiles done after each step
    hbm: np.ndarray  # (steps,) HBM bytes moved after each step
    flops: np.ndarray  # (steps,) FLOPs executed after each step

    @property
    def ok(self) -> bool:
        return all(e <= self.tol for e in self.errors.values())


def run_backward(spec: ProblemSpec) -> BackwardRun:
    """The backward of ``spec``'s problem (forward first, for O and L), recorded, with the
    reference; ValueError (every reason) if the spec is not valid or too large."""
    errors = problem_errors(spec, "backward")
    if errors:
        raise ValueError(" ".join(errors))
    q, k, v = spec_inputs(spec)
    do = grad_output(spec.n_q, spec.head_dim, spec.seed)
    trace = record_backward_trace(q, k, v, do, **spec.tiling)
    refs = attention_backward_reference(
        q, k, v, do, causal=spec.causal, causal_align=spec.causal_align, scale=spec.scale_or_none
    )
    got = {"dq": trace.dq, "dk": trace.dk, "dv": trace.dv}
    errs = {name: max_error(x, ref) for (name, x), ref in zip(got.items(), refs, strict=True)}
    steps, d = trace.steps, trace.d
    return BackwardRun(
        trace,
        *refs,
        errs,
        DEFAULT_TOL,
        np.cumsum([isinstance(s, BwdTileStep) for s in steps]),
        np.cumsum([backward_step_hbm(s, trace.n_q, d, ITEMSIZE).total for s in steps]),
        np.cumsum([backward_step_flops(s, d) for s in steps]),
    )


# Counters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BwdProgress:
    tiles_done: int
    tiles_total: int
    hbm_bytes: int  # moved by FA2's backward up to and including this step
    hbm_bytes_total: int  # the whole backward
    naive_hbm_bytes: int  # standard attention's backward (reads the stored P)
    flops: int  # executed so far, recomputation of S included
    flops_total: int
    recompute_flops: int  # of ``flops``: recomputing S_ij = Q_i K_j^T
    memory_saved: int  # bytes of P the forward did not store


def progress(run: BackwardRun, k: int) -> BwdProgress:
    """The counters after step ``k``."""
    t = run.trace
    flops, total = int(run.flops[k]), int(run.flops[-1])
    recompute = recompute_flops(t.n_q, t.n_k, t.d, t.block_q, t.block_kv, t.causal, t.causal_align)
    return BwdProgress(
        tiles_done=int(run.tiles[k]),
        tiles_total=int(run.tiles[-1]),
        hbm_bytes=int(run.hbm[k]),
        hbm_bytes_total=int(run.hbm[-1]),
        naive_hbm_bytes=naive_backward_hbm(t.n_q, t.n_k, t.d, ITEMSIZE).total,
        flops=flops,
        flops_total=total,
        recompute_flops=recompute * flops // total if total else 0,  # 2 d of 10 d per entry
        memory_saved=backward_memory_saved(t.n_q, t.n_k, ITEMSIZE),
    )


# The tile map --------------------------------------------------------------------------------


def tile_order(trace: BackwardTrace) -> np.ndarray:
    """(n_q blocks, n_kv blocks): each tile's place in the run, 1 for the first tile
    computed (K/V blocks outside: down each column, column after column); 0 if the mask
    skips it."""
    order = np.zeros(trace.grid, dtype=np.int64)
    for n, step in enumerate(trace.tile_steps(), start=1):
        order[step.i, step.j] = n
    return order


def tile_states(trace: BackwardTrace, k: int) -> np.ndarray:
    """(n_q blocks, n_kv blocks) codes into ``TILE_STATES`` after step ``k``: done, the
    current tile, still to come, skipped by the mask."""
    order = tile_order(trace)
    done = int(sum(isinstance(s, BwdTileStep) for s in trace.steps[: k + 1]))
    step = trace.steps[k]
    states = np.where(order == 0, 3, np.where(order <= done, 0, 2))
    if isinstance(step, BwdTileStep):
        states[step.i, step.j] = 1
    return states


# dQ in HBM, dK_j and dV_j on chip ------------------------------------------------------------


def _latest_tiles(trace: BackwardTrace, k: int) -> dict[int, BwdTileStep]:
    """Q block i -> the last tile step up to step ``k`` that added to dQ_i."""
    latest: dict[int, BwdTileStep] = {}
    for step in trace.steps[: k + 1]:
        if isinstance(step, BwdTileStep):
            latest[step.i] = step
    return latest


def dq_after(trace: BackwardTrace, k: int) -> np.ndarray:
    """dQ in HBM after step ``k`` (n_q, d): each Q block's partial sum so far."""
    dq = np.zeros((trace.n_q, trace.d))
    for step in _latest_tiles(trace, k).values():
        dq[step.rows.start : step.rows.stop] = step.dq
    return dq


def dq_adds_after(trace: BackwardTrace, k: int) -> np.ndarray:
    """(n_q,): how many additions each row of dQ has received up to step ``k``."""
    adds = np.zeros(trace.n_q, dtype=np.int64)
    for step in _latest_tiles(trace, k).values():
        adds[step.rows.start : step.rows.stop] = step.dq_adds
    return adds


def dq_adds_total(trace: BackwardTrace) -> np.ndarray:
    """(n_q,): the additions each row of dQ receives in the whole run (its visible tiles)."""
    return dq_adds_after(trace, len(trace.steps) - 1)


def rows_added(trace: BackwardTrace, k: int) -> range:
    """The rows of dQ that receive an addition at step ``k`` (empty unless a tile step)."""
    step = trace.steps[k]
    return step.rows if isinstance(step, BwdTileStep) else range(0)


def on_chip(trace: BackwardTrace, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(dK_j, dV_j) on chip after step ``k`` (None at the delta step: no K/V block yet)."""
    step = trace.steps[k]
    if isinstance(step, (BwdTileStep, BwdWriteStep)):
        return step.dk, step.dv
    if isinstance(step, BwdLoadStep):
        return np.zeros_like(step.k_j), np.zeros_like(step.v_j)
    return None


# D_i: why rowsum(dO_i * O_i) stands for rowsum(dP_i * P_i) ----------------------------------


@dataclass(frozen=True)
class DeltaCheck:
    row: int
    from_o: float  # D_i = rowsum(dO_i * O_i): what the backward computes, d products
    from_p: float  # rowsum(dP_i * P_i) over all n_k keys: n_k (d + 1) products and P_i


def delta_check(trace: BackwardTrace, row: int) -> DeltaCheck:
    """Both forms of D for one query row: equal, since O_i = P_i V, so
    rowsum(dO_i * O_i) = dO_i . (P_i V) = sum_c P_ic (dO_i . v_c) = rowsum(P_i * dP_i)."""
    mask = trace.entries_visible(range(row, row + 1), range(trace.n_k))  # causal or a mask_mod
    s = (trace.q[row] @ trace.k.T) * trace.scale
    if mask is not None:
        s = np.where(mask[0], s, -np.inf)
    lse = float(trace.lse[row])
    p = np.exp(s - lse) if np.isfinite(lse) else np.zeros(trace.n_k)
    dp = trace.v @ trace.do[row]  # dP_i = dO_i V^T
    return DeltaCheck(row, float(trace.delta[row]), float(p @ dp))


# Explanation ---------------------------------------------------------------------------------


def step_title(trace: BackwardTrace, k: int) -> str:
    """'Step k of n: ...' for the heading."""
    step, last = trace.steps[k], len(trace.steps) - 1
    what = {
        "delta": "D = rowsum(dO * O) for every row",
        "load_kv": f"load K/V block {step.j}",
        "write_kv": f"write dK/dV block {step.j}",
    }.get(step.kind, "")
    if isinstance(step, BwdTileStep):
        what = f"tile (Q block {step.i}, K/V block {step.j})"
    return f"Step {k} of {last}: {what}"


def _delta(trace: BackwardTrace, row: int) -> Explanation:
    c = delta_check(trace, row)
    text = (
        "**Before the loops: D = rowsum(dO * O) for every query row.** dS needs, for each row, "
        "rowsum(dP_i * P_i), a sum over all n_k keys that no single tile sees. Since "
        "O_i = P_i V, it equals rowsum(dO_i * O_i): d products from two vectors already in "
        "HBM. D is computed once (n_q numbers) and read by every tile."
    )
    formula = (
        r"D_i = \mathrm{rowsum}(dO_i \circ O_i) = dO_i \cdot (P_i V) = "
        r"\textstyle\sum_c P_{ic}\,(dO_i \cdot v_c) = \mathrm{rowsum}(dP_i \circ P_i)"
    )
    numbers = lines(
        rf"\mathrm{{rowsum}}(dO_{{{row}}} \circ O_{{{row}}}) &= {num(c.from_o)}",
        rf"\mathrm{{rowsum}}(dP_{{{row}}} \circ P_{{{row}}}) &= {num(c.from_p)}",
    )
    return Explanation("Step: D = rowsum(dO * O)", text, formula, numbers, row)


def _load(step: BwdLoadStep, row: int) -> Explanation:
    text = (
        f"**Load K/V block {step.j}** (keys {step.cols.start} to {step.cols.stop - 1}) into "
        "on-chip memory, where it stays for the whole inner loop over the query blocks. Its "
        "gradients start at zero on chip: every query block adds to them, and they go back "
        "to HBM once, at the end of the inner loop."
    )
    shown = [num(x) for x in step.k_j[0, :4]] + ([r"\dots"] if step.k_j.shape[1] > 4 else [])
    numbers = rf"k_{{{step.cols.start}}} = [{', '.join(shown)}]"
    return Explanation(
        f"Step: load K/V block {step.j}",
        text,
        r"dK_j = 0,\quad dV_j = 0 \quad \text{(on chip)}",
        numbers,
        row,
    )


TILE_FORMULA = (
    r"\begin{aligned} S_{ij} &= \tau\, Q_i K_j^T, \quad P_{ij} = e^{S_{ij} - L_i} \\ "
    r"dV_j &\leftarrow dV_j + P_{ij}^T dO_i \\ dP_{ij} &= dO_i V_j^T \\ "
    r"dS_{ij} &= P_{ij} \circ (dP_{ij} - D_i) \\ "
    r"dQ_i &\leftarrow dQ_i + \tau\, dS_{ij} K_j \ \text{(HBM)} \\ "
    r"dK_j &\leftarrow dK_j + \tau\, dS_{ij}^T Q_i \end{aligned}"
)


def _tile(trace: BackwardTrace, step: BwdTileStep, r: int, row: int) -> Explanation:
    masked = (
        " The tile crosses the causal diagonal: masked scores are -inf, so P = 0 there and "
        "they add nothing."
        if step.tile_kind == "partial"
        else ""
    )
    text = (
        f"**Query block {step.i} into the gradients of K/V block {step.j}.** Q_i, dO_i, L_i "
        "and D_i are read from HBM. The scores are recomputed and P comes back exactly from "
        "the saved logsumexp L_i (no running max, no second pass: the forward stored no P). "
        f"dV_j and dK_j grow on chip; dQ_i's share is added in HBM.{masked}"
    )
    c = int(np.argmax(np.abs(step.ds[r])))  # the key whose dS is largest in this row
    lse, delta = float(trace.lse[row]), float(trace.delta[row])
    key = step.cols.start + c
    dq_add = float(step.dq_add[r, 0])
    numbers = lines(
        rf"L_{{{row}}} &= {num(lse)},\quad D_{{{row}}} = {num(delta)}",
        rf"S_{{{row},{key}}} &= {num(step.s[r, c])},\quad P_{{{row},{key}}} = e^{{S - L}} = "
        rf"{num(step.p[r, c])}",
        rf"dP_{{{row},{key}}} &= {num(step.dp[r, c])}",
        rf"dS_{{{row},{key}}} &= {num(step.p[r, c])} \cdot ({num(step.dp[r, c])} - "
        rf"{term(delta)}) = {num(step.ds[r, c])}",
        rf"\textstyle\sum_{{c \in j}} P_{{{row},c}} &= {num(step.p[r].sum())}",
        rf"dQ_{{{row},0}} &\mathrel{{+}}= {num(dq_add)} \to {num(step.dq[r, 0])}",
    )
    return Explanation(
        f"Step: tile (Q block {step.i}, K/V block {step.j})", text, TILE_FORMULA, numbers, row
    )


def _write(step: BwdWriteStep, row: int) -> Explanation:
    text = (
        f"**Write dK and dV of block {step.j}.** Every query block that sees these keys has "
        "added its share on chip; the finished gradients go to HBM once. dQ needed no write: "
        "its rows were added to in HBM at every tile."
    )
    key = step.cols.start
    numbers = lines(
        rf"dK_{{{key},0}} &= {num(step.dk[0, 0])}", rf"dV_{{{key},0}} &= {num(step.dv[0, 0])}"
    )
    formula = r"dK_j,\ dV_j \to \text{HBM (once per K/V block)}"
    return Explanation(f"Step: write dK/dV block {step.j}", text, formula, numbers, row)


def explain_step(trace: BackwardTrace, k: int, row: int = 0) -> Explanation:
    """What step ``k`` does, its formula and numbers. ``row``: at a tile step, the offset of
    the query row inside the Q block (clipped to it; the numbers of the tile's key with the
    largest |dS| in that row); at the delta step the global row."""
    step = trace.steps[k]
    if isinstance(step, BwdTileStep):
        r = min(max(row, 0), len(step.rows) - 1)
        return _tile(trace, step, r, step.rows.start + r)
    if isinstance(step, BwdLoadStep):
        return _load(step, row)
    if isinstance(step, BwdWriteStep):
        return _write(step, row)
    return _delta(trace, min(max(row, 0), trace.n_q - 1))
