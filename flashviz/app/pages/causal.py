"""Page: top-left (PyTorch) vs bottom-right (flash-attn) causal masks when n_q != n_k.

Widgets carry no ``value=``: their defaults (``ProblemSpec``'s, sizes from the first
example) are put into session state once, and a preset
writes all sizes at once. Every key starts with ``causal_``.
"""

from __future__ import annotations

import streamlit as st

from flashviz.app.cached import cached
from flashviz.app.widgets.charts import chart
from flashviz.app.widgets.page_shell import page_shell
from flashviz.app.widgets.page_state import page_fields, put
from flashviz.app.widgets.problem import problem_fields, problem_keys
from flashviz.figures.alignment import alignment_flops_figure, alignment_map_figure
from flashviz.lab.alignment import (
    ALIGN_LABELS,
    TILE_KINDS,
    Alignment,
    EmptyRowOutputs,
    analyse_both,
    empty_row_outputs,
    size_errors,
)

SIZES = ("n_q", "n_k", "block_q", "block_kv")
# (n_q, n_k, block_q, block_kv)
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "12 queries x 5 keys (bottom-right has empty rows)": (12, 5, 4, 2),
    "2 x 5 (bottom-right rows: 11110 / 11111)": (2, 5, 1, 2),
    "5 x 2 (bottom-right: rows 0-2 see no key)": (5, 2, 2, 1),
    "6 x 16 (fewer queries: a chunk of a longer sequence)": (6, 16, 2, 4),
    "8 x 8 (n_q = n_k: the two agree)": (8, 8, 4, 4),
}
CUSTOM = "custom"
FIRST = dict(zip(SIZES, next(iter(PRESETS.values())), strict=True))  # the first example
FIELDS = [
    *page_fields({"causal_preset": next(iter(PRESETS))}, local=("causal_preset",)),
    *problem_fields(problem_keys("causal_", (*SIZES, "head_dim", "seed")), **FIRST),
]
INTRO = (
    "When there are more queries than keys, or fewer, where does the causal diagonal go? "
    f"**{ALIGN_LABELS['top_left']}**: row r sees key c iff c <= r. "
    f"**{ALIGN_LABELS['bottom_right']}**: iff c <= r + n_k - n_q, so the last query "
    "sees every key. They agree when n_q = n_k."
)


def _apply_preset() -> None:
    preset = st.session_state.causal_preset
    if preset in PRESETS:
        put(FIELDS, dict(zip(SIZES, PRESETS[preset], strict=True)))


def _mark_custom() -> None:
    st.session_state.causal_preset = CUSTOM


def controls() -> None:
    ss = st.session_state
    sizes = tuple(ss[f"causal_{name}"] for name in SIZES)
    if PRESETS.get(ss.causal_preset, sizes) != sizes:  # sizes from another page or the URL
        ss.causal_preset = CUSTOM
    st.selectbox("Example", [*PRESETS, CUSTOM], key="causal_preset", on_change=_apply_preset)
    cols = st.columns(6)
    labels = ("n_q (queries)", "n_k (keys)", "block_q", "block_kv", "head dim d", "seed")
    for col, name, label in zip(cols, (*SIZES, "head_dim", "seed"), labels, strict=True):
        col.number_input(label, step=1, key=f"causal_{name}", on_change=_mark_custom)


@cached()
def cached_views(n_q: int, n_k: int, head_dim: int, block_q: int, block_kv: int):
    return analyse_both(n_q, n_k, head_dim, block_q, block_kv)


@cached()
def cached_outputs(
    n_q: int, n_k: int, head_dim: int, block_q: int, block_kv: int, align: str, seed: int
) -> EmptyRowOutputs:
    return empty_row_outputs(n_q, n_k, head_dim, block_q, block_kv, align, seed)


def flops_section(views: list[Alignment]) -> None:
    st.subheader("FLOPs: what skipping tiles saves")
    for a in views:
        f = a.flops
        st.markdown(f"**{a.label}**")
        cols = st.columns(4)
        kinds = " / ".join(str(a.count(kind)) for kind in TILE_KINDS)
        cols[0].metric("tiles full / partial / skipped", kinds)
        cols[1].metric(
            "executed FLOPs",
            f"{f.executed:,}",
            f"{f.executed / f.unmasked:.0%} of no mask",
            delta_color="off",
            delta_arrow="off",
        )
        cols[2].metric("saving vs no mask", f"{f.saving:.1%}")
        cols[3].metric(
            "useful FLOPs",
            f"{f.useful:,}",
            f"{f.wasted:,} wasted on masked entries",
            delta_color="off",
            delta_arrow="off",
        )
    chart(alignment_flops_figure(views), key="causal_flops")
    st.caption(
        f"Without a mask every tile runs: {views[0].flops.unmasked:,} FLOPs (4 n_q n_k d). "
        "With the mask, skipped tiles are never computed; partial tiles are computed whole "
        "and their masked entries set to -inf, so they cost FLOPs that do no useful work."
    )


def empty_rows_section(views: list[Alignment], head_dim: int, seed: int) -> None:
    st.subheader("Rows that see no key")
    st.markdown(
        "With bottom-right alignment and n_q > n_k, row r sees key c only if "
        "c <= r - (n_q - n_k), so the first n_q - n_k rows see nothing. Their softmax is "
        "over an empty set: flashviz returns **o = 0** and **lse = -inf** (the logsumexp "
        "of nothing, what `torch.logsumexp` gives for an all -inf row), never NaN: the "
        "kernel subtracts 0 instead of the running max while that max is still -inf. "
        "flash-attn's CUDA kernel stores **lse = +inf** for these rows instead, so that "
        "its backward's exp(S - L) is 0; to compare with it, map -inf to +inf. "
        "Top-left alignment never has empty rows: row r always sees key 0."
    )
    for a in views:
        if not len(a.empty_rows):
            st.info(f"{a.label}: every query row sees at least one key.")
            continue
        out = cached_outputs(a.n_q, a.n_k, head_dim, a.block_q, a.block_kv, a.causal_align, seed)
        st.markdown(
            f"**{a.label}**: rows {int(a.empty_rows[0])} to {int(a.empty_rows[-1])} see no "
            "key. Their o and lse from the float64 reference and from the tiled forward "
            f"(float32, blocks {a.block_q} x {a.block_kv}) on random inputs (seed {seed}):"
        )
        st.dataframe(out.table(), hide_index=True, key=f"causal_empty_{a.causal_align}")


@page_shell("Causal alignment", FIELDS, INTRO, caption=True)
def render() -> None:
    controls()
    ss = st.session_state
    n_q, n_k, block_q, block_kv, head_dim, seed = (
        int(ss[f"causal_{name}"]) for name in (*SIZES, "head_dim", "seed")
    )
    errors = size_errors(n_q, n_k, head_dim, block_q, block_kv, seed)
    for message in errors:
        st.error(message)
    if errors:
        return
    views = cached_views(n_q, n_k, head_dim, block_q, block_kv)
    chart(alignment_map_figure(views), key="causal_map")
    st.caption(
        "Each cell is one (query r, key c) score: dark if r sees c. Tiles are "
        f"block_q x block_kv = {block_q} x {block_kv}: full (green) tiles need no mask, "
        "partial (orange) tiles cross the diagonal and are masked element by element, "
        "skipped (blue, dashed) tiles are entirely masked and never computed."
    )
    flops_section(views)
    empty_rows_section(views, head_dim, seed)
