"""Page: where the error of a 16-bit FlashAttention-2 run comes from, and the exp2 form.

Five sections, one per lesson of the lab: the error breakdown (one effect at a time,
``flashviz.lab.precision_errors``), underflow of alpha and P~ (with one row run with its
whole state in float16, bfloat16 and float32, ``flashviz.lab.underflow``), the base-2
form real kernels use (``flashviz.lab.exp2_form``), FlashAttention-4's software exp2
(``flashviz.lab.exp2_lesson``) and what FA3 and FA4 changed after FA2
(``flashviz.lab.after_fa2``). Every widget key starts with
``prec_``; defaults go into session state once and widgets carry no ``value=``.
"""

from __future__ import annotations

import math
from dataclasses import astuple, replace

import numpy as np
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from flashviz.app.cached import cached
from flashviz.app.widgets.charts import chart
from flashviz.app.widgets.page_shell import page_shell
from flashviz.app.widgets.page_state import page_fields
from flashviz.app.widgets.problem import problem_fields, problem_keys
from flashviz.core.masking import num_blocks
from flashviz.core.precision import PRECISION_LABELS, PRECISIONS, get_precision
from flashviz.core.trace import record_steps
from flashviz.figures.precision import (
    STAGE_SHORT,
    breakdown_figure,
    exp2_error_figure,
    forms_table_figure,
    gap_sweep_figure,
    row_error_figure,
    underflow_figure,
)
from flashviz.lab.after_fa2 import (
    B200_SPEEDUP,
    FACTS,
    H100_EXP_TFLOPS,
    H100_MATMUL_TFLOPS,
    exp_gap,
)
from flashviz.lab.exp2_form import FormsRun, compare_forms, forms_table
from flashviz.lab.exp2_lesson import Exp2Errors, exp2_errors
from flashviz.lab.exp2_lesson import verdict as exp2_verdict
from flashviz.lab.patterns import PATTERNS
from flashviz.lab.precision_errors import STAGES, Breakdown, error_breakdown
from flashviz.lab.problem import problem_errors, spec_inputs
from flashviz.lab.problem_spec import ProblemSpec
from flashviz.lab.underflow import (
    UNDERFLOW_TYPES,
    ProblemUnderflow,
    StateRun,
    exp_neg,
    gap_sweep,
    jump_row,
    online_row,
    problem_underflow,
    underflow_limits,
)

PROBLEM = problem_keys("prec_", ("precision", "pattern", "n_q", "n_k", "head_dim", "block_q",
                                  "block_kv", "seed", "causal"))  # fmt: skip
GAP_RANGE = (0.0, 110.0)  # the underflow slider's gap
PAGE_DEFAULTS = {  # this page's own widgets
    "prec_logit_scale": 1.0,
    "prec_gap": 20.0,
    "prec_demo_base": 0.0,
    "prec_demo_gap": 20.0,
    "prec_demo_chunk": 16,
    "prec_q_block": 0,
    "prec_row": 0,
    "prec_tile": 1,  # the second tile: alpha and "m before" are not trivial there
    "prec_form_dtype": "float32",
    "prec_exp2_degree": 3,  # FA4's software exp2: a cubic
}
FIELDS = [  # a larger problem than the stepper's, in float16, so that rounding shows
    *problem_fields(PROBLEM, precision="float16", pattern="random", n_q=64, n_k=64,
                    head_dim=32, block_q=16, block_kv=16),
    *page_fields(PAGE_DEFAULTS, choices={"prec_form_dtype": ("float32", "float64")},
                 bounds={"prec_gap": GAP_RANGE, "prec_exp2_degree": (1, 5)}),
]  # fmt: skip
MAX_LOGIT_SCALE = 1000.0
MAX_DEMO_GAP = 200.0
MAX_DEMO_BASE = 1e6
DEMO_KEYS = 64  # keys in the demonstration row; the max jumps at key 40
SWEEP_GAPS = np.arange(0.0, 40.5, 0.5)
UNDERFLOW_GAPS = np.linspace(0.0, 110.0, 881)
STATE_TYPES = (*UNDERFLOW_TYPES, "float64")
INTRO = (
    "Real FlashAttention kernels read Q, K, V in float16 or bfloat16 and keep the softmax "
    "state in float32. This page shows where the resulting error comes from, why the "
    "state must stay float32, and the base-2 exponent form the kernels use."
)


# --- cached work ------------------------------------------------------------------------


@cached(spinner="Running the problem in every precision ...")
def _breakdowns(values: tuple) -> tuple[dict[str, Breakdown], list[ProblemUnderflow]]:
    spec = ProblemSpec(*values)
    q, k, v = spec_inputs(spec)
    runs = {p: error_breakdown(q, k, v, precision=p, **spec.tiling) for p in PRECISIONS}
    exact = record_steps(q, k, v, **spec.tiling)  # float64: P~ and alpha as they are
    return runs, [problem_underflow(exact, name) for name in UNDERFLOW_TYPES]


def breakdowns(spec: ProblemSpec) -> dict[str, Breakdown]:
    """The breakdown of every precision (the spec's own precision does not key the cache)."""
    return _breakdowns(astuple(replace(spec, precision="float64")))[0]


def underflow_counts(spec: ProblemSpec) -> list[ProblemUnderflow]:
    """P~ and alpha of the exact run rounded to each type of ``UNDERFLOW_TYPES``."""
    return _breakdowns(astuple(replace(spec, precision="float64")))[1]


@cached()
def demo_runs(base: float, gap: float, chunk: int) -> dict[str, StateRun]:
    scores, values = jump_row(n=DEMO_KEYS, base=base, gap=gap)
    return {name: online_row(scores, values, chunk, name) for name in STATE_TYPES}


@cached(spinner="Sweeping the gap ...")
def demo_sweep(base: float, chunk: int) -> dict[str, np.ndarray]:
    return gap_sweep(SWEEP_GAPS, chunk=chunk, n=DEMO_KEYS, base=base)


@cached()
def _forms(values: tuple, i: int, dtype: str) -> FormsRun:
    spec = ProblemSpec(*values)
    return compare_forms(*spec_inputs(spec), i=i, dtype=dtype, **spec.tiling)


# --- controls ---------------------------------------------------------------------------


def problem_controls() -> tuple[ProblemSpec | None, list[str]]:
    """The problem widgets; returns the spec (None when invalid) and what is wrong."""
    a, b, c = st.columns([2, 2, 1])
    a.selectbox(
        "Precision",
        list(PRECISIONS),
        format_func=PRECISION_LABELS.__getitem__,
        key="prec_precision",
        help="Storage type of Q, K, V (and of P~ for P~ V); the softmax state stays float32.",
    )
    b.selectbox("Input pattern", list(PATTERNS), format_func=PATTERNS.__getitem__,
                key="prec_pattern")  # fmt: skip
    c.toggle("causal mask", key="prec_causal")
    cols = st.columns(7)
    labels = ("n_q", "n_k", "head dim d", "block_q", "block_kv", "seed")
    names = ("n_q", "n_k", "head_dim", "block_q", "block_kv", "seed")
    for col, name, label in zip(cols[:6], names, labels, strict=True):
        col.number_input(label, step=1, key=f"prec_{name}")
    cols[6].number_input(
        "logit scale c",
        step=1.0,
        format="%.2f",
        key="prec_logit_scale",
        help="Softmax scale tau = c / sqrt(d): c > 1 makes large logits.",
    )
    ss = st.session_state
    c_scale = float(ss.prec_logit_scale)
    errors = []
    if not (math.isfinite(c_scale) and 0 < c_scale <= MAX_LOGIT_SCALE):
        errors.append(f"`logit scale c` must be in (0, {MAX_LOGIT_SCALE:g}], got {c_scale:g}.")
    d = int(ss.prec_head_dim)
    spec = ProblemSpec(
        n_q=int(ss.prec_n_q),
        n_k=int(ss.prec_n_k),
        head_dim=d,
        block_q=int(ss.prec_block_q),
        block_kv=int(ss.prec_block_kv),
        causal=bool(ss.prec_causal),
        scale=c_scale / math.sqrt(d) if d >= 1 and not errors else 0.0,
        seed=int(ss.prec_seed),
        pattern=ss.prec_pattern,
        precision=ss.prec_precision,
    )
    errors += problem_errors(spec, page="precision")  # 13 recorded runs: its own budget
    return (None if errors else spec), errors


# --- section 1: error breakdown --------------------------------------------------------


def breakdown_section(spec: ProblemSpec) -> None:
    st.header("1. Where the error comes from")
    st.markdown(
        "A 16-bit kernel differs from exact attention in three ways. Each run below adds one "
        "of them to an exact run and is measured against the float64 reference computed on "
        "the **original** float64 inputs:\n"
        f"1. **{STAGE_SHORT['inputs']}**: Q, K, V stored in the storage type (float16 keeps "
        "11 significant bits, bfloat16 8, float32 24); everything else in float64.\n"
        f"2. **{STAGE_SHORT['state']}**: the scores, m, l, O and all arithmetic in float32, "
        "as on a GPU.\n"
        f"3. **{STAGE_SHORT['p_round']}**: P\u0303 rounded to the storage type before the "
        "P\u0303 V matmul (tensor cores read 16-bit operands) while l sums the unrounded "
        "P\u0303, as flash-attn does. This run is exactly what the Stepper shows with this "
        "precision.\n\n"
        "The right panel shows how far each stage moves the output; errors of separate "
        "effects partly cancel, so the changes say which effect dominates."
    )
    all_runs = breakdowns(spec)
    chart(breakdown_figure(list(all_runs.values())))
    b = all_runs[spec.precision]
    effects = b.effects
    st.markdown(breakdown_verdict(b))
    st.dataframe(
        {
            "stage": [STAGE_SHORT[s.key] for s in b.stages],
            "applies": ["yes" if s.applies else "no such effect" for s in b.stages],
            "max |O - O_ref|": [f"{s.max_err_o:.3g}" for s in b.stages],
            "max |L - L_ref|": [f"{s.max_err_lse:.3g}" for s in b.stages],
            "change of O it makes": [f"{e:.3g}" for e in effects],
        },
        hide_index=True,
    )
    chart(row_error_figure(b))


def breakdown_verdict(b: Breakdown) -> str:
    """Which effect dominates for the chosen precision, in words, from the numbers."""
    if b.precision == "float64":
        return (
            f"**float64 everywhere** is the baseline: nothing is rounded to a smaller type, "
            f"and the output is off by {b.final.max_err_o:.2g}, float64's own rounding. Pick "
            "float16 or bfloat16 above to see the three effects."
        )
    prec = get_precision(b.precision)
    top = list(STAGES).index(b.dominant)
    return (
        f"With **{PRECISION_LABELS[b.precision]}**, the largest change comes from "
        f"**{STAGE_SHORT[b.dominant]}**: it moves O by up to {b.effects[top]:.2g} (machine "
        f"epsilon of {b.precision}: {prec.eps:.2g}). The final output is off by "
        f"{b.final.max_err_o:.2g}; naive attention in the same precision by "
        f"{b.naive_err_o:.2g}. Raise the logit scale: a score's rounding error grows with "
        "its size (about |s| eps), so the rounded inputs weigh more and more."
    )


# --- section 2: underflow ---------------------------------------------------------------


def _kind(value: float, tiny: float) -> str:
    return "0 (underflow)" if value == 0 else ("subnormal" if value < tiny else "normal")


def underflow_section(spec: ProblemSpec | None) -> None:
    st.header("2. Underflow: alpha and P\u0303")
    st.latex(
        r"\alpha = e^{\,m_{\mathrm{old}} - m_{\mathrm{new}}} = e^{-\mathrm{gap}},\qquad"
        r"\tilde P_{ij} = e^{\,s_{ij} - m_i} = e^{-\mathrm{gap}},\qquad \mathrm{gap} \ge 0"
    )
    limits = [underflow_limits(name) for name in UNDERFLOW_TYPES]
    st.dataframe(
        {
            "type": [lim.name for lim in limits],
            "smallest normal": [f"{lim.tiny:.3g}" for lim in limits],
            "smallest subnormal": [f"{lim.smallest_subnormal:.3g}" for lim in limits],
            "subnormal from gap": [f"{lim.gap_subnormal:.2f}" for lim in limits],
            "below smallest subnormal from gap": [
                f"{lim.gap_below_subnormal:.2f}" for lim in limits
            ],
            "rounds to 0 from gap": [f"{lim.gap_zero:.2f}" for lim in limits],
        },
        hide_index=True,
    )
    gap = st.slider("gap", *GAP_RANGE, step=0.5, key="prec_gap")
    chart(underflow_figure(limits, UNDERFLOW_GAPS, gap))
    cols = st.columns(len(limits))
    for col, lim in zip(cols, limits, strict=True):
        value = float(exp_neg(gap, lim.name))
        col.metric(
            f"exp(-{gap:g}) in {lim.name}",
            f"{value:.4g}",
            _kind(value, lim.tiny),
            delta_color="off",
            delta_arrow="off",
        )
    if spec is not None:
        problem_counts(spec)
    demo_section()


def problem_counts(spec: ProblemSpec) -> None:
    st.markdown(
        "**In this problem.** Every P\u0303 and alpha of the exact run, rounded to each type. "
        "*Erased weight*: the largest share of a row's softmax mass that rounding to 0 "
        "would remove. It is tiny by design: after subtracting the max, an entry that "
        "underflows weighs less than the type's smallest number relative to the row's "
        "largest entry, which weighs 1. Raise the logit scale c to see P\u0303 and alpha "
        "underflow."
    )
    counts = underflow_counts(spec)
    st.dataframe(
        {
            "type": [c.name for c in counts],
            "P~ subnormal": [f"{c.p_subnormal} / {c.n_p}" for c in counts],
            "P~ = 0": [f"{c.p_zero} / {c.n_p}" for c in counts],
            "weight erased by P~ = 0": [f"{c.p_zero_weight:.3g}" for c in counts],
            "alpha subnormal": [f"{c.alpha_subnormal} / {c.n_alpha}" for c in counts],
            "alpha = 0": [f"{c.alpha_zero} / {c.n_alpha}" for c in counts],
            "weight erased by alpha = 0": [f"{c.alpha_zero_weight:.3g}" for c in counts],
        },
        hide_index=True,
    )


def demo_section() -> None:
    st.subheader("Why the softmax state is float32: one row, the state in each type")
    st.markdown(
        f"A row of {DEMO_KEYS} scores, `base` + N(0, 1), whose max jumps by `gap` at key 40; "
        "values are multiples of 1/8 (exact in every type). The online softmax runs `chunk` "
        "keys at a time with its whole state (scores, m, l, o, alpha, P\u0303) in one type."
    )
    a, b, c = st.columns(3)
    a.number_input("base (logit level)", step=10.0, key="prec_demo_base")
    b.number_input("gap (jump of the max)", step=1.0, key="prec_demo_gap")
    c.number_input("chunk (keys per tile)", step=1, key="prec_demo_chunk")
    ss = st.session_state
    base, gap, chunk = float(ss.prec_demo_base), float(ss.prec_demo_gap), int(ss.prec_demo_chunk)
    errors = []
    if not (math.isfinite(base) and abs(base) <= MAX_DEMO_BASE):
        errors.append(f"`base` must be a number in [-{MAX_DEMO_BASE:g}, {MAX_DEMO_BASE:g}].")
    if not (math.isfinite(gap) and 0 <= gap <= MAX_DEMO_GAP):
        errors.append(f"`gap` must be in [0, {MAX_DEMO_GAP:g}] (the max only rises).")
    if not 1 <= chunk <= DEMO_KEYS:
        errors.append(f"`chunk` must be in [1, {DEMO_KEYS}].")
    for e in errors:
        st.error(e)
    if errors:
        return
    runs = demo_runs(base, gap, chunk)
    st.dataframe(
        {
            "state type": list(runs),
            "max |o - o_exact|": [_fmt_err(r.error) for r in runs.values()],
            "alpha = 0 (rescales)": [r.alpha_zero for r in runs.values()],
            "alpha subnormal": [r.alpha_subnormal for r in runs.values()],
            "P~ = 0 (entries)": [r.p_zero for r in runs.values()],
            "weight erased by underflow": [f"{r.erased_weight:.3g}" for r in runs.values()],
        },
        hide_index=True,
    )
    st.markdown(demo_verdict(runs))
    sweep = demo_sweep(base, chunk)
    fig = gap_sweep_figure(SWEEP_GAPS, sweep, underflow_limits("float16"), gap)
    chart(fig)


def _fmt_err(err: float) -> str:
    return "not finite (overflow)" if not math.isfinite(err) else f"{err:.3g}"


def demo_verdict(runs: dict[str, StateRun]) -> str:
    """The lesson of the demonstration, in words, from its numbers."""
    f16, f32 = runs["float16"], runs["float32"]
    eps16 = get_precision("float16").eps
    if not math.isfinite(f16.error):
        return (
            "With the state in float16 the output is **not finite**: a score above 65504 "
            "overflows to inf and inf - inf = NaN. float32 holds scores up to 3.4e38."
        )
    ratio = f16.error / max(f32.error, 1e-300)
    text = (
        f"With the state in float16 the output is off by **{f16.error:.2g}**, against "
        f"**{f32.error:.2g}** in float32 ({ratio:.0f}x). "
    )
    if f16.alpha_zero or f16.p_zero:
        text += (
            f"Underflow set {f16.alpha_zero} alpha and {f16.p_zero} P\u0303 entries to 0, "
            f"erasing {f16.erased_weight:.2g} of the softmax weight"
        )
        text += (
            f", far below float16's own rounding ({eps16:.2g}): underflow is not what makes "
            "the error. "
            if f16.erased_weight < eps16
            else ": here underflow is a real part of the error. "
        )
    else:
        text += "Nothing underflowed in float16 here. "
    return text + (
        "The error comes from rounding the scores, m, l and o to 11 significant bits, and "
        "it grows with the size of the scores (each power of 2 doubles the spacing of "
        "float16 numbers: raise `base`). bfloat16 does not round alpha to 0 before gap 92.9, "
        "but with 8 bits it is less precise still. Hence 16-bit inputs, float32 state."
    )


# --- section 3: the exp2 form -------------------------------------------------------------

PAPER_FORM = r"""\begin{aligned}
s_{ij} &= \tau\, q_i k_j^{\top} \\
m_i^{\mathrm{new}} &= \max\big(m_i,\ \mathrm{rowmax}(s_{ij})\big) \\
\tilde P_{ij} &= e^{\,s_{ij} - m_i^{\mathrm{new}}} \\
\alpha &= e^{\,m_i - m_i^{\mathrm{new}}} \\
\ell_i &= \alpha\, \ell_i + \mathrm{rowsum}(\tilde P_{ij}) \\
O_i &= \mathrm{diag}(\alpha)\, O_i + \tilde P_{ij} V_j \\
L_i &= m_i + \ln \ell_i
\end{aligned}"""

EXP2_FORM = r"""\begin{aligned}
s^{(2)}_{ij} &= q_i k_j^{\top} \cdot (\tau \log_2 e) \\
m_i^{(2)\mathrm{new}} &= \max\big(m^{(2)}_i,\ \mathrm{rowmax}(s^{(2)}_{ij})\big) \\
\tilde P_{ij} &= 2^{\,s^{(2)}_{ij} - m_i^{(2)\mathrm{new}}} \\
\alpha &= 2^{\,m^{(2)}_i - m_i^{(2)\mathrm{new}}} \\
\ell_i &= \alpha\, \ell_i + \mathrm{rowsum}(\tilde P_{ij}) \\
O_i &= \mathrm{diag}(\alpha)\, O_i + \tilde P_{ij} V_j \\
L^{(2)}_i &= m^{(2)}_i + \log_2 \ell_i, \qquad L_i = \ln 2 \cdot L^{(2)}_i
\end{aligned}"""


def exp2_section(spec: ProblemSpec | None) -> None:
    st.header("3. The exp2 form real kernels use")
    left, right = st.columns(2)
    left.markdown("**The paper's form** (FlashAttention-2, Algorithm 1)")
    left.latex(PAPER_FORM)
    right.markdown("**The exp2 form** (flash-attn, Triton)")
    right.latex(EXP2_FORM)
    st.markdown(
        "GPUs compute 2^x in one special-function instruction (`ex2.approx`); e^x costs a "
        "multiply by log\u2082 e first. Folding log\u2082 e into the softmax scale makes that "
        "multiply free: it happens once per score, inside the multiply that applies \u03c4 "
        "(flash-attn's `scale_softmax_log2`; Triton's tutorial sets "
        "`qk_scale = sm_scale * 1.44269504` and stores L in base 2). As "
        "e^x = 2^(x log\u2082 e), P\u0303, alpha, l and O are the same numbers in both forms; "
        "only the log-domain ones (s, m, L) are in base-2 units, and L = ln 2 \u00b7 L\u2082."
    )
    if spec is not None:
        forms_numbers(spec)


def _index_select(container: DeltaGenerator, label: str, n: int, key: str) -> int:
    """A choice among 0 .. n-1; a stored index the new problem no longer has is clamped."""
    ss = st.session_state
    if not 0 <= ss[key] < n:
        ss[key] = min(max(int(ss[key]), 0), n - 1)
    return int(container.selectbox(label, list(range(n)), key=key))


def forms_numbers(spec: ProblemSpec) -> None:
    """The numbers of one row and tile of the problem in both forms."""
    a, b, c, d = st.columns(4)
    d.radio("compute type", ("float32", "float64"), key="prec_form_dtype", horizontal=True)
    ss = st.session_state
    i = _index_select(a, "query block i", num_blocks(spec.n_q, spec.block_q), "prec_q_block")
    run = _forms(astuple(spec), i, ss.prec_form_dtype)
    row = _index_select(b, "row within the block", len(run.rows), "prec_row")
    if not run.natural:
        st.info(f"Query block {i} sees no key (causal mask): there is no tile to show.")
        return
    tile = _index_select(c, "K/V tile j", len(run.natural), "prec_tile")
    r = run.rows.start + row
    keys = f"keys {run.cols[tile].start} - {run.cols[tile].stop - 1}"
    title = f"Query row {r} at K/V tile {tile} ({keys}), {ss.prec_form_dtype}"
    chart(forms_table_figure(forms_table(run, row, tile), title))
    eps = float(np.finfo(ss.prec_form_dtype).eps)
    seen = np.isfinite(run.lse)
    with np.errstate(invalid="ignore"):
        d_lse = float(np.abs(run.lse - run.lse_from_base2)[seen].max(initial=0.0))
    st.markdown(
        f"Whole query block {i}: max |O - O\u2082| = {float(np.abs(run.o - run.o2).max()):.2g}, "
        f"max |L - ln 2 \u00b7 L\u2082| = {d_lse:.2g}; the machine epsilon of "
        f"{ss.prec_form_dtype} "
        f"is {eps:.2g}. The two forms agree to rounding."
    )


# --- section 4: FA4's software exp2 -------------------------------------------------------


@cached()
def _exp2_errors(degree: int) -> Exp2Errors:
    return exp2_errors(degree)


def software_exp2_section() -> None:
    st.header("4. Software exp2 (FlashAttention-4)")
    st.markdown(
        "On Blackwell the tensor cores got faster than the special-function unit that "
        "computes `ex2`, so FA4 computes part of its exponentials on the FMA units instead: "
        "2^x = 2^n \u00b7 2^f with n = floor(x) placed into the exponent bits and the fraction "
        "f in [0, 1) through a short polynomial (flash-attn's `ex2_emulation` uses a cubic). "
        "The polynomials here are flashviz's own fits with p(0) = 1; the runs take them "
        'as `exp_impl="poly3"` (`flashviz.core.exp2`).'
    )
    degree = st.slider("polynomial degree", 1, 5, key="prec_exp2_degree")
    e = _exp2_errors(int(degree))
    chart(exp2_error_figure(e))
    st.markdown(exp2_verdict(e))


# --- section 5: after FA2 ------------------------------------------------------------------


def after_fa2_section() -> None:
    st.header("5. After FA2: what FA3 and FA4 changed")
    h100, b200 = exp_gap()
    st.markdown(
        "FlashAttention-2 leaves the GPU's matmul units idle while the softmax runs. On H100 "
        f"a dense float16 matmul does {H100_MATMUL_TFLOPS:g} TFLOP/s and the exp unit "
        f"{H100_EXP_TFLOPS:g}: **{h100:.0f} matmul FLOPs per exp**. FA3 overlaps the softmax "
        "of one warpgroup with the matmuls of another (and loads with TMA, multiplies with "
        f"WGMMA). On B200 the tensor cores are {B200_SPEEDUP:g}x faster and the exp units are "
        f"not: about **{b200:.0f} FLOPs per exp**, so FA4 removes work from the softmax "
        "itself, with two tricks:\n\n"
        "- **Lazy rescaling**: keep the stale row max unless the new one is more than a "
        "threshold (8, in powers of two) above it; most tiles skip the rescale of l and o, "
        "and the final o / l divides the stale reference out. Step through it in the "
        "[Stepper with a threshold of 8](/?rescale_threshold=8) (rings on the tile map mark "
        "the skipped rescales), and see the mistake of a threshold too high for float16 in "
        "the [bug zoo](/debugger?dbg_bugs=threshold_too_high_f16&dbg_pattern=jump%20of%2012).\n"
        "- **Software exp2**: section 4 above."
    )
    st.dataframe(
        {"what": [f.what for f in FACTS], "figure": [f.value for f in FACTS],
         "source": [f.source for f in FACTS]},
        hide_index=True,
    )  # fmt: skip


@page_shell("Precision", FIELDS, INTRO)
def render() -> None:
    spec, errors = problem_controls()
    for e in errors:
        st.error(e)
    if spec is not None:
        breakdown_section(spec)
    underflow_section(spec)
    exp2_section(spec)
    software_exp2_section()
    after_fa2_section()
