"""Page: masks as FlexAttention defines them, and the block mask that makes them fast.

A mask (``flashviz.lab.mask_lab.MASK_KINDS``) over n_q x n_k with its block sizes; the
block map (every tile full, partial or empty) beside ``BlockMask``'s fields for the Q block
inspected, the dense mask with the tiles outlined, the sparsity, the FLOPs and the mask's
evaluations that full tiles save. Every key starts with ``masks_``; the sizes are the
problem the pages share.
"""

from __future__ import annotations

import streamlit as st

from flashviz.app.cached import cached
from flashviz.app.widgets.charts import chart
from flashviz.app.widgets.page_shell import page_shell
from flashviz.app.widgets.page_state import page_fields
from flashviz.app.widgets.problem import problem_fields, problem_keys
from flashviz.core.masking import num_blocks
from flashviz.figures.masks import block_map_figure, dense_mask_figure
from flashviz.lab.mask_lab import DENSE_MAX, MASK_KINDS, MAX_N, MaskView, mask_view, size_errors

SIZES = ("n_q", "n_k", "block_q", "block_kv")
FIELDS = [
    *page_fields(
        {"masks_kind": "sliding_window", "masks_size": 8, "masks_row": 3},
        choices={"masks_kind": tuple(MASK_KINDS)},
        bounds={"masks_size": (1, MAX_N), "masks_row": (0, MAX_N - 1)},
    ),
    *problem_fields(problem_keys("masks_", SIZES), n_q=32, n_k=32, block_q=8, block_kv=4),
]
INTRO = (
    "A mask says which keys each query may see: `mask_mod(b, h, q_idx, kv_idx)` in "
    "PyTorch's FlexAttention. Its **block mask** sorts the tiles before the kernel runs: a "
    "**full** tile (every entry visible) is computed without looking at the mask, a "
    "**partial** tile applies it entry by entry, an **empty** tile is never visited. The "
    "kernel's speed on a masked problem comes from that sort: it skips the empty tiles' "
    "loads and FLOPs, and the full tiles' mask work."
)
LESSON = (
    "**Why full tiles matter.** A partial tile costs the same matrix products as a full "
    "one, plus the mask: the mask's function is evaluated for each of its entries and the "
    "hidden scores set to -inf before the softmax. A full tile skips that work: the kernel "
    "knows from `full_kv_indices` that nothing in it is hidden. Larger blocks make fewer, "
    "coarser tiles: fewer of them are full or empty, so more FLOPs are spent on hidden "
    "entries; smaller blocks sort the mask more finely but give the GPU less work per tile. "
    "Change the block sizes above and watch the executed FLOPs and the evaluations move."
)


@cached()
def cached_view(kind: str, size: int, n_q: int, n_k: int, block_q: int, block_kv: int) -> MaskView:
    return mask_view(kind, size, n_q, n_k, block_q, block_kv)


def controls() -> tuple[str, int, int, int, int, int]:
    """The mask, its size and the sizes, as the widgets hold them."""
    ss = st.session_state
    left, right = st.columns([2, 1])
    left.selectbox(
        "Mask", list(MASK_KINDS), key="masks_kind", format_func=lambda k: MASK_KINDS[k].label
    )
    kind = ss.masks_kind
    size_label = MASK_KINDS[kind].size_label
    right.number_input(
        size_label or "size (this mask takes none)", step=1, key="masks_size",
        disabled=not size_label,
    )  # fmt: skip
    cols = st.columns(4)
    labels = ("n_q (queries)", "n_k (keys)", "block_q", "block_kv")
    for col, name, label in zip(cols, SIZES, labels, strict=True):
        col.number_input(label, step=1, key=f"masks_{name}")
    n_q, n_k, block_q, block_kv = (int(ss[f"masks_{name}"]) for name in SIZES)
    return kind, int(ss.masks_size), n_q, n_k, block_q, block_kv


def costs_section(view: MaskView) -> None:
    c, bm = view.costs, view.block_mask
    cols = st.columns(4)
    cols[0].metric("tiles full / partial / empty", f"{c.full_tiles} / {c.partial_tiles} / "
                   f"{c.empty_tiles}", f"{bm.sparsity():.1f}% never visited",
                   delta_color="off", delta_arrow="off")  # fmt: skip
    cols[1].metric("executed FLOPs", f"{c.executed_flops:,}",
                   f"{c.executed_flops / c.dense_flops:.0%} of every tile", delta_color="off",
                   delta_arrow="off")  # fmt: skip
    cols[2].metric("useful FLOPs", f"{c.useful_flops:,}",
                   f"{c.executed_flops - c.useful_flops:,} on hidden entries",
                   delta_color="off", delta_arrow="off")  # fmt: skip
    cols[3].metric("mask evaluations", f"{c.mask_evaluations:,}",
                   f"{c.evaluations_saved:,} saved by full tiles", delta_color="off",
                   delta_arrow="off")  # fmt: skip
    st.caption(
        f"FLOPs of the forward for head dim d = 64: 4 d per entry computed (Q K^T and P V). "
        f"Every tile, as without a block mask: {c.dense_flops:,}. HBM traffic of FA2 under "
        f"this block mask: {c.hbm.total:,} bytes in float32."
    )


def fields_section(view: MaskView, row: int) -> None:
    """BlockMask's fields for the Q block inspected."""
    bm = view.block_mask
    partial = bm.kv_indices[0, 0, row, : bm.kv_num_blocks[0, 0, row]].tolist()
    full = bm.full_kv_indices[0, 0, row, : bm.full_kv_num_blocks[0, 0, row]].tolist()
    st.markdown(f"**Q block {row}** visits the K/V blocks listed, and no other:")
    st.code(
        f"# partial tiles: the mask applied\n"
        f"kv_num_blocks[0, 0, {row}] = {len(partial)}\n"
        f"kv_indices[0, 0, {row}, :{len(partial)}] = {partial}\n"
        f"# full tiles: no mask evaluated\n"
        f"full_kv_num_blocks[0, 0, {row}] = {len(full)}\n"
        f"full_kv_indices[0, 0, {row}, :{len(full)}] = {full}",
        language=None,  # plain: the highlighter's comments miss 4.5:1 in the dark theme
    )


def table_section(view: MaskView) -> None:
    """BlockMask's fields for every Q block."""
    bm = view.block_mask
    rows = range(bm.kinds.shape[2])
    st.dataframe(
        {
            "Q block i": list(rows),
            "kv_num_blocks": bm.kv_num_blocks[0, 0].tolist(),
            "kv_indices (listed)": [
                str(bm.kv_indices[0, 0, i, : bm.kv_num_blocks[0, 0, i]].tolist()) for i in rows
            ],
            "full_kv_num_blocks": bm.full_kv_num_blocks[0, 0].tolist(),
            "full_kv_indices (listed)": [
                str(bm.full_kv_indices[0, 0, i, : bm.full_kv_num_blocks[0, 0, i]].tolist())
                for i in rows
            ],
        },
        hide_index=True,
        key="masks_fields",
    )
    st.caption(
        "PyTorch's names and layout (B, H, Q blocks, ...): each row of `kv_indices` lists its "
        "blocks first, in increasing order, then the others. The backward's K/V-outer loop "
        "reads the transpose: `q_num_blocks`, `q_indices`, `full_q_num_blocks`, "
        "`full_q_indices`."
    )


@page_shell("Masks", FIELDS, INTRO)
def render() -> None:
    kind, size, n_q, n_k, block_q, block_kv = controls()
    errors = size_errors(kind, size, n_q, n_k, block_q, block_kv)
    for message in errors:
        st.error(message)
    if errors:
        return
    view = cached_view(kind, size, n_q, n_k, block_q, block_kv)
    last = num_blocks(n_q, block_q) - 1
    ss = st.session_state
    ss.masks_row = min(max(int(ss.masks_row), 0), last)
    if last > 0:
        st.slider("Q block to inspect", 0, last, key="masks_row")
    row = int(ss.masks_row)
    costs_section(view)
    left, right = st.columns(2)
    with left:
        chart(block_map_figure(view.block_mask, row), key="masks_block_map")
    with right:
        fields_section(view, row)
    table_section(view)
    if view.dense is not None:
        chart(dense_mask_figure(view.dense, view.block_mask), key="masks_dense")
    else:
        st.caption(f"The mask entry by entry is drawn up to {DENSE_MAX} x {DENSE_MAX}.")
    st.markdown(LESSON)
    st.markdown("The same block mask in Python:")
    st.code(f"from flashviz.masks import *\n\nbm = {view.code}", language=None)
