"""Page: split-KV decoding (Flash-Decoding). The keys cut into splits that run on separate
SMs, each split's online softmax in its own lane, the merge of their results, SM utilisation.

The numbers come from ``flashviz.lab.split_kv`` (a float32 run of
``flashviz.split_kv_attention`` on one random head, the merge of one row step by step, the
SM model). Widgets carry no ``value=``: their values live in session state
(``flashviz.app.widgets.page_state``) and in the URL. Every key starts with ``splitkv_``.
"""

from __future__ import annotations

import math

import streamlit as st

from flashviz.app.cached import cached
from flashviz.app.widgets.charts import chart
from flashviz.app.widgets.page_shell import page_shell
from flashviz.app.widgets.page_state import page_fields
from flashviz.app.widgets.step_controls import step_controls
from flashviz.figures.split_kv import lanes_figure, merge_figure, sm_figure, utilisation_figure
from flashviz.lab.split_kv import (
    CURVE_SPLITS,
    GPUS,
    MAX_HEADS,
    MAX_N_Q,
    MergeStep,
    SplitKvRun,
    UtilisationCurve,
    fa2_work,
    merge_steps,
    run_split_kv,
    schedule,
    size_errors,
    split_weights,
    split_work,
    utilisation_curve,
)

DEFAULTS: dict[str, object] = {
    "splitkv_n_q": 1,
    "splitkv_n_k": 3000,
    "splitkv_d": 64,
    "splitkv_splits": 8,
    "splitkv_block_kv": 128,
    "splitkv_heads": 4,
    "splitkv_gpu": "A100",
    "splitkv_causal": True,
    "splitkv_seed": 0,
    "splitkv_row": 0,
    "splitkv_step": 1,  # tiles done by each split: the first
    "splitkv_merge": 0,
}
FIELDS = page_fields(DEFAULTS, choices={"splitkv_gpu": tuple(GPUS)})
SIZES = ("n_q", "n_k", "d", "splits", "block_kv", "heads", "seed")
LABELS = (
    f"n_q (queries, 1-{MAX_N_Q})",
    "n_k (keys)",
    "head dim d",
    "splits",
    "block_kv",
    f"batch x heads (1-{MAX_HEADS})",
    "seed",
)

INTRO = """
A decoder produces one token at a time: **one query row** (or a few) against a **long key
sequence**. FA2 parallelises over query blocks, so a decoding step is one thread block per
head, and most SMs wait. **Split-KV** (Flash-Decoding) cuts the K/V blocks into **splits**
that run on separate SMs. Each split runs the same FA2 inner loop over its keys and writes
its own result (o_s, lse_s); a final **merge** rescales them to a common maximum:
lse = log sum_s exp(lse_s), o = sum_s exp(lse_s - lse) o_s. The merge is the online-softmax
update itself, applied to whole splits instead of single keys.
"""


def _fmt(x: float) -> str:
    return "-inf" if x == -math.inf else f"{x:.6g}"


def _tex(x: float) -> str:
    return r"-\infty" if x == -math.inf else f"{x:.6g}"


@cached()
def cached_run(
    n_q: int, n_k: int, d: int, splits: int, block_kv: int, causal: bool, seed: int
) -> SplitKvRun:
    return run_split_kv(n_q, n_k, d, splits, block_kv, causal, seed)


@cached()
def cached_curve(
    n_q: int, n_k: int, block_kv: int, offset: int | None, heads: int, sms: int, top: int
) -> UtilisationCurve:
    return utilisation_curve(n_q, n_k, block_kv, offset, heads, sms, top)


def controls() -> None:
    cols = st.columns(len(SIZES))
    for col, name, label in zip(cols, SIZES, LABELS, strict=True):
        col.number_input(label, step=1, key=f"splitkv_{name}")
    a, b = st.columns(2)
    a.selectbox("GPU", list(GPUS), key="splitkv_gpu", format_func=lambda g: f"{g} ({GPUS[g]} SMs)")
    b.checkbox("causal (bottom-right: the queries are the last tokens)", key="splitkv_causal")


def sm_section(run: SplitKvRun, heads: int, gpu: str) -> None:
    st.subheader("1. The keys split across the SMs")
    sms, splits = GPUS[gpu], len(run.partials)
    rows = [
        {
            "split s": p.s,
            "K/V blocks": f"{p.blocks.start}-{p.blocks.stop - 1}" if len(p.blocks) else "none",
            "keys": f"{p.cols.start}-{p.cols.stop - 1}" if len(p.cols) else "none",
            "tiles computed": len(p.m_steps),
        }
        for p in run.partials
    ]
    st.dataframe(
        rows, hide_index=True, key="splitkv_splits_table", height=min(300, 40 + 35 * splits)
    )
    fa2 = schedule(fa2_work(run.n_q, run.n_k, run.block_kv, run.offset, heads), sms)
    kv = schedule(split_work(run.n_q, run.n_k, run.block_kv, splits, run.offset, heads), sms)
    chart(sm_figure(fa2, kv, sms=sms, gpu=gpu, num_splits=splits), key="splitkv_sm")
    st.caption(
        f"Each bar is one thread block: FA2 runs one per head ({heads}) for the "
        f"{run.n_q} query row(s); split-KV runs one per head and split ({heads} x {splits}). "
        "An SM runs one thread block at a time, one time unit per K/V tile; when there are "
        "more thread blocks than SMs, they run in waves (colours). Splits beyond the K/V "
        "blocks, or hidden by the causal mask, compute nothing."
    )
    with st.expander("SM counts of the GPUs"):
        table = [{"GPU": g, "SMs": n} for g, n in GPUS.items()]
        st.dataframe(table, hide_index=True, key="splitkv_gpu_table")


def lanes_section(run: SplitKvRun, row: int) -> None:
    st.subheader("2. Each split's online softmax, in parallel lanes")
    last = max(run.work, default=0)  # tiles done by the longest split; 0: before any
    step = step_controls("splitkv_step", last, "splitkv_step_", label="tiles done by each split")
    chart(lanes_figure(run, row, step), key="splitkv_lanes")
    rows = []
    for p in run.partials:
        done = min(step, len(p.m_steps))
        m = float(p.m_steps[done - 1, row]) if done else -math.inf
        l = float(p.l_steps[done - 1, row]) if done else 0.0
        rows.append({"split s": p.s, "tiles done": done, "m": _fmt(m), "l": _fmt(l)})
    st.dataframe(
        rows, hide_index=True, key="splitkv_lanes_table", height=min(300, 40 + 35 * len(rows))
    )
    st.caption(
        "Every split starts from m = -inf, l = 0 and folds in its own tiles with the FA2 "
        "update (m = max(m, rowmax S), l = exp(m_old - m) l + rowsum exp(S - m)); the splits "
        "never see each other's keys, so their m differ until the merge."
    )


def merge_section(run: SplitKvRun, row: int) -> None:
    st.subheader("3. The merge, split by split")
    steps = merge_steps(run, row)
    k = step_controls("splitkv_merge", len(steps) - 1, "splitkv_merge_", label="merge step")
    chart(merge_figure(steps, split_weights(run, row), k), key="splitkv_merge_chart")
    st.markdown(
        f"Step {k}: the state of splits 0-{k - 1} merged so far, (m, l), merged with split "
        f"{steps[k].s}'s result as the state (lse_s, 1):"
        if k
        else f"Step 0: the empty state (m = -inf, l = 0), the merge's identity, merged with "
        f"split {steps[0].s}'s result as the state (lse_s, 1):"
    )
    st.latex(merge_tex(steps[k]))
    if k == len(steps) - 1:
        st.markdown(
            f"After the last split: **lse = {_fmt(float(run.lse[row]))}** and "
            "o = o_acc / l, the same as attention over all the keys (section 5)."
        )
    table = [
        {"step": st_.s, "m": _fmt(st_.m), "l": _fmt(st_.l), "alpha (so far)": _fmt(st_.alpha_prev),
         "alpha_s": _fmt(st_.alpha_s), "lse": _fmt(st_.lse)}
        for st_ in steps
    ]  # fmt: skip
    st.dataframe(
        table, hide_index=True, key="splitkv_merge_table", height=min(300, 40 + 35 * len(table))
    )


def merge_tex(step: MergeStep) -> str:
    """The merge step's equations with the row's numbers."""
    return (
        r"\begin{aligned}"
        rf"m &= \max(m_{{\text{{prev}}}}, \mathrm{{lse}}_s) = \max({_tex(step.m_prev)}, "
        rf"{_tex(step.lse_s)}) = {_tex(step.m)}\\"
        rf"\alpha_{{\text{{prev}}}} &= e^{{m_{{\text{{prev}}}} - m}} = {_tex(step.alpha_prev)}, "
        rf"\quad \alpha_s = e^{{\mathrm{{lse}}_s - m}} = {_tex(step.alpha_s)}\\"
        rf"\ell &= \alpha_{{\text{{prev}}}}\,\ell_{{\text{{prev}}}} + \alpha_s\,\ell_s"
        rf" = {_tex(step.alpha_prev)} \cdot {_tex(step.l_prev)} + {_tex(step.alpha_s)} \cdot "
        rf"{_tex(step.l_s)} = {_tex(step.l)}\\"
        rf"o &= \alpha_{{\text{{prev}}}}\,o_{{\text{{prev}}}} + \alpha_s\,o_s, \quad "
        rf"\mathrm{{lse}} = m + \log \ell = {_tex(step.lse)}"
        r"\end{aligned}"
    )


def utilisation_section(run: SplitKvRun, heads: int, gpu: str) -> None:
    st.subheader("4. SM utilisation: FA2 vs split-KV")
    splits = len(run.partials)
    curve = cached_curve(
        run.n_q, run.n_k, run.block_kv, run.offset, heads, GPUS[gpu], max(CURVE_SPLITS, splits)
    )
    chart(utilisation_figure(curve, splits, gpu), key="splitkv_util")
    st.caption(
        f"Busy SM time / ({GPUS[gpu]} SMs x the time until the last thread block ends). FA2 "
        f"keeps {curve.fa2:.0%} busy; more splits fill more SMs until the waves no longer "
        "come out even, or the splits run out of K/V blocks. The merge itself (a small "
        "kernel over n_q x splits numbers) is left out."
    )


def correctness_section(run: SplitKvRun) -> None:
    st.subheader("5. Correctness against attention_reference")
    cols = st.columns(3)
    for col, (name, err, tol) in zip(
        cols, (("o", run.max_err_o, run.tol_o), ("lse", run.max_err_lse, run.tol_lse)), strict=False
    ):
        col.metric(f"max |{name} - {name}_ref|", f"{err:.2e}", f"tolerance {tol:.2e}",
                   delta_color="off", delta_arrow="off")  # fmt: skip
    cols[2].metric("verdict", "matches" if run.ok else "differs")
    if run.ok:
        st.success(
            "float32 split-KV is within flash-attn's tolerance of the float64 reference "
            "(2 x the error of naive float32 attention + 4 ulps)."
        )
    else:
        st.error("Split-KV differs from the reference by more than the tolerance.")


@page_shell("Split-KV decoding", FIELDS, INTRO)
def render() -> None:
    controls()
    ss = st.session_state
    n_q, n_k, d, splits, block_kv, heads, seed = (int(ss[f"splitkv_{n}"]) for n in SIZES)
    errors = size_errors(n_q, n_k, d, splits, block_kv, heads, seed)
    for message in errors:
        st.error(message)
    if errors:
        return
    run = cached_run(n_q, n_k, d, splits, block_kv, bool(ss.splitkv_causal), seed)
    ss.splitkv_row = min(max(int(ss.splitkv_row), 0), n_q - 1)
    if n_q > 1:
        st.slider("query row shown", 0, n_q - 1, key="splitkv_row")
    row = int(ss.splitkv_row)
    gpu = ss.splitkv_gpu
    sm_section(run, heads, gpu)
    lanes_section(run, row)
    merge_section(run, row)
    utilisation_section(run, heads, gpu)
    correctness_section(run)
