"""Page: FlashAttention-1 vs FlashAttention-2 on the same problem, side by side.

Both runs are recorded once per problem (``flashviz.app.fa1_model``); a step change reruns
only the step panel fragment (``step_panel_body``). Every widget key starts with ``fa1_``;
``fa1_align`` (a key and URL parameter, so kept) holds how the two runs are paired.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from flashviz.app.fa1_model import hbm_series, load_comparison
from flashviz.app.widgets.charts import chart
from flashviz.app.widgets.page_shell import page_shell
from flashviz.app.widgets.page_state import mirror_url, page_fields
from flashviz.app.widgets.problem import problem_fields, problem_keys, problem_widgets
from flashviz.app.widgets.problem_errors import problem_errors_view
from flashviz.app.widgets.step_controls import step_controls
from flashviz.core import costs
from flashviz.core.accuracy import max_error
from flashviz.core.reference import attention_reference
from flashviz.core.trace import LoadStep, Step, TileStep
from flashviz.figures.fa1_fa2 import counters_figure, hbm_over_n_figure, loop_orders_figure
from flashviz.lab.fa1 import Fa1InitStep, Fa1LoadStep, Fa1Step, Fa1TileStep
from flashviz.lab.fa_compare import Comparison, fa2_step_flops, flops_difference
from flashviz.lab.problem import problem_errors
from flashviz.lab.problem_spec import ProblemSpec

PROBLEM = problem_keys("fa1_", head_dim="fa1_d")  # ProblemSpec field -> this page's widget
PAGE_DEFAULTS = {  # this page's own widgets
    "fa1_block_mode": "blocks",
    "fa1_sram": 128,
    "fa1_align": "step",
    "fa1_step": 0,
    "fa1_chart_d": 64,
    "fa1_chart_m": 49152,
    "fa1_chart_causal": False,
}
BLOCK_MODES = {"blocks": "block sizes", "sram": "on-chip size M (FA1's rule)"}
PAIRING_LABELS = {"step": "same step number", "tiles": "same number of tiles done"}
CHART_NS = tuple(2**p for p in range(7, 15))  # 128 ... 16384
CHART_DS = (16, 32, 64, 128)
CHART_MS = {
    4096: "4,096 (16 KiB)",
    16384: "16,384 (64 KiB)",
    49152: "49,152 (192 KiB: one A100 SM)",
    131072: "131,072 (512 KiB)",
}
TOL = 1e-10  # float64 inputs: FA1, FA2 and the reference differ by rounding only
INTRO = """
**FlashAttention-1** (Dao et al. 2022, Algorithm 2): the outer loop walks **K/V blocks**,
the inner loop **Q blocks**. The softmax state O, l, m lives in **HBM**: every tile reads
Q_i, O_i, l_i, m_i and writes O_i, l_i, m_i back, and O_i is kept **normalised**, so each
tile de-normalises it (diag(l_i)) and normalises it again (diag(l_new)^-1).
**FlashAttention-2** (Dao 2023, Algorithm 1): the outer loop walks **Q blocks**; the state
stays **on chip** for the whole inner loop over K/V blocks, O is normalised **once** at the
end, and only O and L are written. Same tiles, same result, other order and other costs.
"""


FIELDS = [
    *problem_fields(PROBLEM, pattern="random"),
    *page_fields(
        PAGE_DEFAULTS,
        choices={"fa1_block_mode": tuple(BLOCK_MODES), "fa1_align": tuple(PAIRING_LABELS)},
        local=("fa1_chart_d", "fa1_chart_m", "fa1_chart_causal"),
    ),
]
STEP_FIELD = next(f for f in FIELDS if f.key == "fa1_step")


def _blocks(sb: DeltaGenerator) -> tuple[int, int]:
    """The block sizes, typed or from the on-chip size M by FA1's rule (1 x 1 while M or d
    is below 1)."""
    mode = sb.radio("blocks from", list(BLOCK_MODES), format_func=BLOCK_MODES.__getitem__,
                    key="fa1_block_mode", horizontal=True)  # fmt: skip
    ss = st.session_state
    if mode == "blocks":
        a, b = sb.columns(2)
        a.number_input("block_q (B_r)", step=1, key="fa1_block_q")
        b.number_input("block_kv (B_c)", step=1, key="fa1_block_kv")
        return int(ss.fa1_block_q), int(ss.fa1_block_kv)
    sb.number_input("M: numbers that fit on chip", step=16, key="fa1_sram")
    m, d = int(ss.fa1_sram), int(ss.fa1_d)
    if m < 1 or d < 1:
        return 1, 1
    b_r, b_c = costs.fa1_block_sizes(m, d)
    block_q, block_kv = min(b_r, max(int(ss.fa1_n_q), 1)), min(b_c, max(int(ss.fa1_n_k), 1))
    clamp = " (clamped to n_q, n_k)" if (block_q, block_kv) != (b_r, b_c) else ""
    sb.caption(f"B_c = ceil(M / 4d) = {b_c}, B_r = min(B_c, d) = {b_r}: "
               f"blocks {block_q} x {block_kv}{clamp}.")  # fmt: skip
    return block_q, block_kv


def _controls() -> tuple[ProblemSpec, list[str]]:
    """Problem widgets in the sidebar; returns the spec and what is wrong with it."""
    st.sidebar.header("Problem (FA1 vs FA2)")
    spec = problem_widgets(PROBLEM, blocks=_blocks)
    ss = st.session_state
    if ss.fa1_block_mode == "blocks":
        return spec, problem_errors(spec)
    m, d = int(ss.fa1_sram), spec.head_dim
    if m < 1 or d < 1:
        errors = [f"`M` and `head dim d` must be at least 1, got M = {m}, d = {d}."]
    else:
        errors = problem_errors(spec)
    if errors:  # the advice names block sizes: say which M gives them
        errors.append(f"In M mode the blocks come from M (and d): raise M, now {m}.")
    return spec, errors


def _kib(n_bytes: int) -> str:
    return f"{n_bytes / 1024:.2f} KiB"


def describe_fa1(step: Fa1Step) -> str:
    """One step of FA1 in words, with its HBM bytes and non-matmul FLOPs."""
    h = step.hbm
    if isinstance(step, Fa1InitStep):
        return f"**init**: O = 0, l = 0, m = -inf written to HBM ({_kib(h.writes)} written)."
    if isinstance(step, Fa1LoadStep):
        return (f"**load K<sub>{step.j}</sub>, V<sub>{step.j}</sub>** (outer loop): "
                f"{_kib(h.reads)} read; they stay on chip for the whole inner loop.")  # fmt: skip
    assert isinstance(step, Fa1TileStep)
    return (f"**tile ({step.i}, {step.j})**: read Q<sub>{step.i}</sub>, O<sub>{step.i}</sub>, "
            f"l<sub>{step.i}</sub>, m<sub>{step.i}</sub> ({_kib(h.reads)}); local max, P~, "
            "local sum; de-normalise, rescale and normalise O again; write O, l, m back "
            f"({_kib(h.writes)}). {step.flops:,} non-matmul FLOPs.")  # fmt: skip


def describe_fa2(step: Step, d: int) -> str:
    """One step of FA2 in words, with its HBM bytes and non-matmul FLOPs."""
    h, flops = costs.step_hbm(step, d), fa2_step_flops(step, d)
    if isinstance(step, LoadStep):
        return (f"**load Q<sub>{step.i}</sub>** (outer loop): {_kib(h.reads)} read; "
                "m = -inf, l = 0, O = 0 on chip, never in HBM.")  # fmt: skip
    if isinstance(step, TileStep):
        return (f"**tile ({step.i}, {step.j})**: read K<sub>{step.j}</sub>, "
                f"V<sub>{step.j}</sub> ({_kib(h.reads)}); rescale m, l, O on chip, "
                f"no normalisation, nothing written. {flops:,} non-matmul FLOPs.")  # fmt: skip
    return (f"**write O<sub>{step.i}</sub>, L<sub>{step.i}</sub>**: normalise once, "
            f"O / l and L = m + log l; {_kib(h.writes)} written. "
            f"{flops:,} non-matmul FLOPs.")  # fmt: skip


def _metrics(cmp: Comparison, k1: int, k2: int) -> None:
    c1, c2 = cmp.fa1_counts, cmp.fa2_counts
    cols = [*st.columns(3), *st.columns(3)[:2]]  # two rows: five in one cut the labels
    cols[0].metric("FA1 HBM so far", _kib(int(c1.reads[k1] + c1.writes[k1])),
                   help=f"whole run: {_kib(int(c1.reads[-1] + c1.writes[-1]))}")  # fmt: skip
    cols[1].metric("FA2 HBM so far", _kib(int(c2.reads[k2] + c2.writes[k2])),
                   help=f"whole run: {_kib(int(c2.reads[-1] + c2.writes[-1]))}")  # fmt: skip
    cols[2].metric("naive attention HBM", _kib(cmp.naive.total),
                   help="Standard attention writes S and P (n_q x n_k each) and reads them "
                   "back.")  # fmt: skip
    cols[3].metric("FA1 non-matmul FLOPs", f"{int(c1.flops[k1]):,}",
                   help=f"whole run: {int(c1.flops[-1]):,}")  # fmt: skip
    cols[4].metric("FA2 non-matmul FLOPs", f"{int(c2.flops[k2]):,}",
                   help=f"whole run: {int(c2.flops[-1]):,}")  # fmt: skip


def step_panel_body(load: Callable[[], Comparison]) -> None:
    cmp = load()  # from the cache: the fragment keeps the loader, not the runs
    pair_by = st.session_state.fa1_align
    last = cmp.last_position(pair_by)
    pos = step_controls("fa1_step", last, "fa1_", label="position")
    mirror_url([STEP_FIELD])
    k1, k2 = cmp.indices(pos, pair_by)
    n1, n2 = cmp.fa1_counts.n_steps, cmp.fa2_counts.n_steps
    what = "step" if pair_by == "step" else "tiles done"
    st.markdown(f"### Position {pos} of {last} ({what}): FA1 at step {k1} of {n1 - 1}, "
                f"FA2 at step {k2} of {n2 - 1}")  # fmt: skip
    left, right = st.columns(2)
    left.markdown("FA1: " + describe_fa1(cmp.fa1.steps[k1]), unsafe_allow_html=True)
    right.markdown("FA2: " + describe_fa2(cmp.fa2.steps[k2], cmp.fa2.d), unsafe_allow_html=True)
    chart(loop_orders_figure(cmp, k1, k2), key="fa1_chart_orders")
    _metrics(cmp, k1, k2)
    chart(counters_figure(cmp, k1, k2), key="fa1_chart_counters")


def _checks(cmp: Comparison, spec: ProblemSpec) -> None:
    st.subheader("Same output, different costs")
    o_ref, lse_ref = attention_reference(cmp.fa2.q, cmp.fa2.k, cmp.fa2.v, causal=spec.causal,
                                         causal_align=spec.causal_align)  # fmt: skip
    errors = {
        "FA1 vs reference": (max_error(cmp.fa1.o, o_ref), max_error(cmp.fa1.lse, lse_ref)),
        "FA2 vs reference": (max_error(cmp.fa2.o, o_ref), max_error(cmp.fa2.lse, lse_ref)),
        "FA1 vs FA2": (max_error(cmp.fa1.o, cmp.fa2.o), max_error(cmp.fa1.lse, cmp.fa2.lse)),
    }
    ok = all(e <= TOL for pair in errors.values() for e in pair)
    (st.success if ok else st.error)(
        ("Same output: " if ok else "Outputs differ: ")
        + "; ".join(f"{name}: max |dO| = {o:.1e}, max |dL| = {l:.1e}"
                    for name, (o, l) in errors.items())
        + f" (float64 inputs, tolerance {TOL:g}; rows that see no key: O = 0, L = -inf)."
    )  # fmt: skip
    args = (spec.n_q, spec.n_k, spec.head_dim, spec.block_q, spec.block_kv, spec.causal,
            spec.causal_align)  # fmt: skip
    runs = [("FA1", cmp.fa1_counts, costs.fa1_hbm(*args)),
            ("FA2", cmp.fa2_counts, costs.fa2_hbm(*args))]  # fmt: skip
    st.dataframe(
        {
            "run": [name for name, _, _ in runs],
            "HBM bytes read": [int(c.reads[-1]) for _, c, _ in runs],
            "HBM bytes written": [int(c.writes[-1]) for _, c, _ in runs],
            "formula (costs.fa1_hbm / fa2_hbm)": [f.total for _, _, f in runs],
            "steps = formula": [int(c.reads[-1] + c.writes[-1]) == f.total for _, c, f in runs],
            "non-matmul FLOPs": [int(c.flops[-1]) for _, c, _ in runs],
        },
        hide_index=True,
    )
    st.caption(
        f"FA1 spends (d + 2)(2R - n_q) = {flops_difference(*args):,} more non-matmul FLOPs, "
        "R being the rows summed over all tiles: per tile 2 r (d + 2) for de-normalising, "
        "rescaling with a second exponential and normalising O; FA2 pays r (d + 2) once "
        "per Q block for O / l and L. Counted per element operation on whole tiles; the "
        "matmuls (4 d per score) are the same for both."
    )


def _hbm_chart() -> None:
    st.subheader("HBM accesses as n and the on-chip size M vary")
    a, b, c = st.columns([1, 2, 1])
    d = a.selectbox("head dim d", CHART_DS, key="fa1_chart_d")
    m = b.select_slider("M: numbers on chip", list(CHART_MS), format_func=CHART_MS.get,
                        key="fa1_chart_m")  # fmt: skip
    causal = c.toggle("causal", key="fa1_chart_causal")
    h = hbm_series(CHART_NS, int(d), int(m), bool(causal))
    chart(hbm_over_n_figure(h), key="fa1_chart_hbm_n")
    note = ""
    if h.left_out:
        note = (f" n = {', '.join(map(str, h.left_out))} left out: more than 300,000 tiles to "
                "count with these blocks.")  # fmt: skip
    st.caption(
        "Exact counts (numbers moved, any precision) with FA1's blocks B_c = ceil(M / 4d), "
        "B_r = min(B_c, d), next to FA1 Theorem 2's orders (constants dropped). Naive grows "
        "as N^2; both flash runs as N^2 d^2 / M. Each run re-reads its inner loop's operand "
        "once per outer block (FA1: Q, O, l, m once per K/V block; FA2: K, V once per Q "
        "block), so the big block belongs outside: FA2 with B_r and B_c swapped moves the "
        "least. FA2's gains over FA1 are the deferred normalisation (fewer non-matmul FLOPs, "
        "no O, l, m round trips) and parallelism over Q blocks." + note
    )


@page_shell(
    "FA1 vs FA2: loop order and where the state lives", FIELDS, INTRO, folded="What differs"
)
def render() -> None:
    spec, errors = _controls()
    if errors:
        problem_errors_view(errors, spec, FIELDS)
    else:
        if st.session_state.get("_fa1_spec") not in (None, spec):
            st.session_state.fa1_step = 0  # a new problem starts at the start
        st.session_state["_fa1_spec"] = spec
        cmp = load_comparison(spec)
        st.radio("align the two runs by", list(PAIRING_LABELS), format_func=PAIRING_LABELS.get,
                 key="fa1_align", horizontal=True)  # fmt: skip
        st.fragment(step_panel_body)(functools.partial(load_comparison, spec))
        _checks(cmp, spec)
    _hbm_chart()
