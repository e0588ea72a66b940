"""Page: FlashAttention-2's backward pass, tile by tile (K/V blocks outside).

The run and its numbers come from ``flashviz.lab.backward`` (one recorded float64 backward
of the problem the other pages share, dO drawn from the same seed), the figures from
``flashviz.figures.backward``. A step change (buttons, slider, the Play timer) reruns only
the step panel fragment. Widget keys start with ``bwd_``; the problem's URL parameters are
the stepper's (``n_q``, ``n_k``, ``head_dim``, ...), the step is ``bwd_step``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import streamlit as st

from flashviz.app.backward_code_view import ALL, PHASE_KEY, backward_code_section
from flashviz.app.cached import cached
from flashviz.app.widgets.charts import chart
from flashviz.app.widgets.page_shell import page_shell
from flashviz.app.widgets.page_state import mirror_url, page_fields
from flashviz.app.widgets.play import SPEEDS, Player
from flashviz.app.widgets.problem import problem_fields, problem_keys, problem_widgets
from flashviz.app.widgets.problem_errors import problem_errors_view
from flashviz.app.widgets.step_controls import step_controls
from flashviz.core.backward_trace import BwdTileStep
from flashviz.figures.backward import (
    backward_tile_map_figure,
    dq_figure,
    grads_figure,
    on_chip_figure,
    scores_figure,
)
from flashviz.lab.backward import (
    DO_STREAM,
    BackwardRun,
    delta_check,
    dq_adds_after,
    dq_adds_total,
    dq_after,
    explain_step,
    on_chip,
    progress,
    rows_added,
    run_backward,
    step_title,
    tile_order,
    tile_states,
)
from flashviz.lab.backward_code_view import STEP_PHASES
from flashviz.lab.problem import problem_errors
from flashviz.lab.problem_spec import ProblemSpec

PAGE = "backward"  # its budget in flashviz.lab.problem
PROBLEM = problem_keys("bwd_", head_dim="bwd_d")  # ProblemSpec field -> this page's widget
PAGE_DEFAULTS = {"bwd_step": 0, "bwd_row": 0, "bwd_speed": "1 step/s", PHASE_KEY: ALL}
FIELDS = [
    *problem_fields(PROBLEM),
    *page_fields(
        PAGE_DEFAULTS,
        choices={"bwd_speed": tuple(SPEEDS), PHASE_KEY: (ALL, *STEP_PHASES["tile"])},
        local=("bwd_speed", PHASE_KEY),
    ),
]
STEP_FIELDS = [f for f in FIELDS if f.key in ("bwd_step", "bwd_row")]
PLAYER = Player("bwd_step", prefix="bwd_")

INTRO = r"""
The forward saved only **O** and the logsumexp **L** (n_q numbers), never the n_q x n_k
matrix P. Given **dO**, the gradient of the loss with respect to O, the backward needs

$P = \mathrm{softmax}(S)$, $dV = P^T dO$, $dP = dO\,V^T$,
$dS = P \circ (dP - D)$ with $D_i = \mathrm{rowsum}(dP_i \circ P_i)$,
$dQ = \tau\, dS\,K$, $dK = \tau\, dS^T Q$.

FlashAttention-2's backward (Dao 2023, Algorithm 2) walks the tiles with the **K/V blocks
outside**: K_j and V_j are loaded once, dK_j and dV_j grow **on chip** while every query
block i passes, then go to HBM once. Each tile **recomputes** S_ij and gets P_ij =
exp(S_ij - L_i) exactly from the saved L (extra FLOPs instead of n_q x n_k stored numbers).
dQ_i receives one **addition in HBM** per tile (an atomic add on a GPU, since every K/V
block adds to the same rows). D is computed once, before the loops, as
rowsum(dO * O): the same number, from two arrays already in HBM.
"""


@cached(spinner="Recording the backward ...")
def _run(spec: ProblemSpec) -> BackwardRun:
    return run_backward(spec)


def _controls() -> tuple[ProblemSpec, list[str]]:
    """The problem's widgets in the sidebar; returns the spec and what is wrong with it."""
    st.sidebar.header("Problem (backward)")
    spec = problem_widgets(PROBLEM)
    return spec, problem_errors(spec, PAGE)


def _kib(n_bytes: int) -> str:
    return f"{n_bytes / 1024:.1f} KiB"


def _counters(run: BackwardRun, k: int) -> None:
    p = progress(run, k)
    cols = [*st.columns(3), *st.columns(3)[:2]]  # two rows: five in one cut the labels
    cols[0].metric("tiles done", f"{p.tiles_done} / {p.tiles_total}")
    cols[1].metric(
        "HBM so far (FA2 backward)",
        _kib(p.hbm_bytes),
        help=f"The whole backward moves {_kib(p.hbm_bytes_total)} (float32, 4 bytes a "
        "number): D once, K_j and V_j in and dK_j, dV_j out once per K/V block, and per "
        "tile Q_i, dO_i, L_i, D_i read and dQ_i read and written.",
    )
    cols[2].metric(
        "naive backward moves",
        _kib(p.naive_hbm_bytes),
        help="Standard attention's backward reads the stored P (n_q x n_k) and writes and "
        "reads dP and dS: about 7 numbers per score. FA2's moves about (4d + 2) / block_kv "
        "per score, so it moves less only once block_kv > (4d + 2) / 7.",
    )
    cols[3].metric(
        "FLOPs so far",
        f"{p.flops:,}",
        help=f"Of the whole backward's {p.flops_total:,} (10 d per tile entry, masked "
        f"entries included); {p.recompute_flops:,} of them so far recompute S = Q K^T.",
    )
    cols[4].metric(
        "P not stored",
        _kib(p.memory_saved),
        help="The n_q x n_k matrix P that standard attention keeps from the forward for "
        "its backward; FA2 recomputes it from L instead.",
    )


def _row_offset(run: BackwardRun, k: int) -> int:
    """The chosen row inside the Q block (slider ``bwd_row``, shown when a block has more
    than one row)."""
    t, ss = run.trace, st.session_state
    ss.bwd_row = min(max(int(ss.get("bwd_row", 0)), 0), t.block_q - 1)
    if t.block_q > 1:
        st.slider("query row inside the Q block (for the numbers)", 0, t.block_q - 1,
                  key="bwd_row")  # fmt: skip
    return int(ss.bwd_row)


def _explanation(run: BackwardRun, k: int, r: int) -> int:
    """The step in words, its formula and one row's numbers; returns that row."""
    e = explain_step(run.trace, k, r)
    st.markdown(f"#### {e.title}")
    st.markdown(e.text)
    st.latex(e.formula)
    st.caption(f"With the numbers of query row {e.row}:")
    st.latex(e.numbers)
    return e.row


def _delta_section(run: BackwardRun, row: int) -> None:
    c = delta_check(run.trace, row)
    st.markdown(f"#### Why D_i = rowsum(dO_i * O_i) (row {row})")
    a, b = st.columns(2)
    a.metric(f"rowsum(dO * O), row {row}", f"{c.from_o:.10g}", help="d products: what FA2 uses")
    b.metric(f"rowsum(dP * P), row {row}", f"{c.from_p:.10g}",
             help=f"{run.trace.n_k} keys: dP and P over the whole row")  # fmt: skip
    st.caption(
        "dS = P * (dP - D) needs D_i = rowsum(dP_i * P_i), a sum over every key of the row, "
        "which no tile holds. Because O_i = P_i V, it equals dO_i . O_i = sum_c P_ic "
        "(dO_i . v_c): d products from dO and O, both in HBM, computed once before the loops. "
        "The two numbers above differ by rounding only."
    )


def _figures(run: BackwardRun, k: int) -> None:
    t = run.trace
    step = t.steps[k]
    if isinstance(step, BwdTileStep):
        chart(scores_figure(step), key="bwd_chart_scores")
        chart(grads_figure(step), key="bwd_chart_grads")
    grads = on_chip(t, k)
    if grads is None:
        st.info("No K/V block on chip yet: D is computed first, for every row.")
    else:
        chart(on_chip_figure(*grads, step.cols, step.j, k), key="bwd_chart_on_chip")
    dq = dq_figure(dq_after(t, k), dq_adds_after(t, k), dq_adds_total(t), rows_added(t, k), k)
    chart(dq, key="bwd_chart_dq")
    st.caption(
        "dQ lives in HBM: every tile (i, j) adds tau dS_ij K_j to rows of Q block i, so a row "
        "receives one addition per K/V block it sees (hollow diamonds), spread over the whole "
        "run. dK_j and dV_j stay on chip for one column of tiles and are written once."
    )


def step_panel(load: Callable[[], BackwardRun]) -> None:
    """One step: controls, heading, counters, the tile map beside the explanation, the
    tile's heatmaps, the gradients, D_i and the code. ``load`` fetches the run from the
    cache: the fragment keeps the loader, not the run."""
    run = load()
    t = run.trace
    last = len(t.steps) - 1
    PLAYER.advance(last)
    k = step_controls("bwd_step", last, "bwd_", on_move=PLAYER.user_moved,
                      on_slide=PLAYER.slider_moved, slider=not PLAYER.playing())  # fmt: skip
    mirror_url(STEP_FIELDS)
    st.markdown(f"### {step_title(t, k)}")
    _counters(run, k)
    left, right = st.columns(2)
    with left:
        chart(backward_tile_map_figure(t, tile_states(t, k), tile_order(t), k), key="bwd_map")
    with right:
        row = _explanation(run, k, _row_offset(run, k))
    _figures(run, k)
    _delta_section(run, row)
    backward_code_section(t.steps[k].kind)


def _correctness(run: BackwardRun) -> None:
    st.subheader("Correctness against the float64 gradient")
    cols = st.columns(4)
    for col, name in zip(cols, ("dq", "dk", "dv"), strict=False):
        col.metric(f"max |{name} - {name}_ref|", f"{run.errors[name]:.2e}",
                   f"tolerance {run.tol:.0e}", delta_color="off", delta_arrow="off")  # fmt: skip
    cols[3].metric("verdict", "matches" if run.ok else "differs")
    message = (
        "The tiled backward (float64) matches `attention_backward_reference`, the gradient "
        "from the whole P in float64: the two differ by rounding only."
    )
    if run.ok:
        st.success(message)
    else:
        st.error("The tiled backward differs from the float64 gradient by more than the tolerance.")


@page_shell("The backward pass, tile by tile", FIELDS, INTRO, folded="What the backward computes")
def render() -> None:
    spec, errors = _controls()
    if errors:
        problem_errors_view(errors, spec, FIELDS, page=PAGE)
        return
    if st.session_state.get("_bwd_spec") not in (None, spec):
        st.session_state.bwd_step = 0  # a new problem starts at the start
        PLAYER.stop()
    st.session_state["_bwd_spec"] = spec
    run = _run(spec)
    st.caption(
        f"q, k, v: the {spec.pattern!r} pattern with seed {spec.seed}; dO: standard normal, "
        f"drawn with numpy.random.default_rng(({spec.seed}, {DO_STREAM})). float64 throughout."
    )
    every = PLAYER.controls()
    st.fragment(step_panel, run_every=every)(functools.partial(_run, spec))
    _correctness(run)
