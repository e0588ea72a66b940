"""Page: inside the CUDA kernels. For the float32 kernel (kernels/flash_attention.cu) and the
tensor-core kernel (kernels/flash_attention_tc.cu), one build (block sizes, head dim,
precision) on one architecture: who owns which entries of S_ij and O_i, what shared memory
holds, where the barriers and warp reductions fall among the phases, registers and shared
memory from ptxas, the occupancy they allow, and a tile-size explorer.

Numbers: ``flashviz.lab.inside_kernel`` (ownership from the kernels' index arithmetic, shared
arrays from their declarations, the timeline from their source), ``flashviz.lab.occupancy``
(CUDA's occupancy rules), ``flashviz.gpu.kernel_resources`` (ptxas, compiled now with NVRTC
or as recorded). Every key starts with ``inside_``.
"""

from __future__ import annotations

import streamlit as st

from flashviz.app.cached import cached
from flashviz.app.widgets.charts import chart
from flashviz.app.widgets.page_shell import page_shell
from flashviz.app.widgets.page_state import page_fields, put
from flashviz.figures.inside_kernel import (
    COLOUR_BY,
    explorer_figure,
    ownership_figure,
    timeline_figure,
)
from flashviz.gpu.kernel_resources import (
    Resources,
    build_config,
    ptxas_for,
    recorded_registers,
)
from flashviz.gpu.launch_params import (
    KERNEL_HEAD_DIMS,
    ROWS_PER_THREAD,
    TC_PRECISIONS,
    KernelConfig,
    kernel_named,
)
from flashviz.gpu.nvrtc import ARCHS, KernelCompileError, kernel_archs
from flashviz.lab.inside_kernel import KINDS, ownership, shared_buffers, timeline
from flashviz.lab.occupancy import GPU_NAMES, SM_LIMITS, STATIC_SHARED_LIMIT, occupancy
from flashviz.lab.tile_explorer import BLOCK_SIZES, explore

ALL_PAIRS = tuple(f"{q}x{kv}" for q in BLOCK_SIZES for kv in BLOCK_SIZES)
DEFAULTS: dict[str, object] = {
    "inside_kernel": "tensor cores",
    "inside_d": 64,
    "inside_blocks": "64x64",
    "inside_precision": "float16",
    "inside_arch": "sm_80",
    "inside_colour": "thread",
    "inside_thread": 0,
}
FIELDS = page_fields(
    DEFAULTS,
    choices={
        "inside_kernel": KINDS,
        "inside_blocks": ALL_PAIRS,
        "inside_precision": tuple(TC_PRECISIONS),
        "inside_arch": ARCHS,
        "inside_colour": COLOUR_BY,
    },
)

INTRO = """
The stepper shows FA2 on whole tiles; on a GPU a **thread block** runs one query block, and
its threads split every tile between them. This page shows, for one build of either kernel,
**which thread holds which entries** of S_ij and O_i (in registers), what the **shared
memory** holds, where the threads **wait for each other** (barriers, warp shuffles) among the
phases of the stepper, and how many thread blocks fit on one SM (**occupancy**) given the
registers and shared memory ptxas reports.
"""


def pairs(kind: str, d: int) -> list[str]:
    """The (block_q, block_kv) pairs the app offers for this kernel and head dim."""
    return [f"{q}x{kv}" for q, kv in kernel_named(kind).fitting_blocks(d)]


def archs(kind: str) -> tuple[str, ...]:
    return kernel_archs(kernel_named(kind))


@cached(spinner="Compiling with NVRTC...")
def cached_ptxas(config: KernelConfig, arch: str) -> Resources | None:
    return ptxas_for(config, arch)


def _settle() -> None:
    """Keep the block pair and the arch among those offered for the kernel and head dim."""
    ss = st.session_state
    kind, d = ss.inside_kernel, int(ss.inside_d)
    if d not in KERNEL_HEAD_DIMS:
        put(FIELDS, {"inside_d": 64})
        d = 64
    if ss.inside_blocks not in pairs(kind, d):
        put(FIELDS, {"inside_blocks": pairs(kind, d)[0]})
    if ss.inside_arch not in archs(kind):
        put(FIELDS, {"inside_arch": archs(kind)[0]})


def controls() -> None:
    ss = st.session_state
    kind = ss.inside_kernel
    a, b, c, d_col, e = st.columns([1.4, 1, 1, 1, 1])
    a.radio("kernel", KINDS, key="inside_kernel", horizontal=True)
    b.selectbox("head dim", KERNEL_HEAD_DIMS, key="inside_d")
    c.selectbox(
        "block_q x block_kv", pairs(kind, int(ss.inside_d)), key="inside_blocks",
        help="The pairs whose tiles fit the 48 KiB of static shared memory at this head dim.",
    )  # fmt: skip
    d_col.selectbox(
        "architecture", archs(kind), key="inside_arch",
        format_func=lambda a: f"{a} ({GPU_NAMES[a]})",
    )  # fmt: skip
    e.selectbox(
        "inputs", tuple(TC_PRECISIONS), key="inside_precision",
        disabled=kind == "float32", help="The tensor-core kernel reads float16 or bfloat16.",
    )  # fmt: skip


def config_now() -> KernelConfig:
    ss = st.session_state
    q, kv = (int(x) for x in ss.inside_blocks.split("x"))
    return build_config(ss.inside_kernel, int(ss.inside_d), q, kv, ss.inside_precision)


def ownership_section(kind: str, config: KernelConfig) -> None:
    st.subheader("1. Who owns what")
    ss = st.session_state
    a, b = st.columns(2)
    a.radio("colour by", COLOUR_BY, key="inside_colour", horizontal=True)
    last = config.num_threads - 1
    ss.inside_thread = min(max(int(ss.inside_thread), 0), last)
    b.number_input(f"outline thread (0-{last})", 0, last, step=1, key="inside_thread")
    thread = int(ss.inside_thread)
    defines = config.defines
    if kind == "float32":
        steps = (ROWS_PER_THREAD, config.block_kv)
        st.markdown(
            f"**{config.num_threads} threads**, {defines['THREADS_PER_ROW']} to a group of "
            f"{ROWS_PER_THREAD} rows: thread t owns rows row0 .. row0 + {ROWS_PER_THREAD - 1}, "
            f"row0 = {ROWS_PER_THREAD} (t / {defines['THREADS_PER_ROW']}), and every "
            f"{defines['THREADS_PER_ROW']}-th column from col0 = t % "
            f"{defines['THREADS_PER_ROW']}, in S_ij and in O_i alike. Row maxima and sums go "
            "through shared memory (row_part)."
        )
    else:
        steps = (16, 8)
        st.markdown(
            f"**{config.num_threads // 32} warps** of 32 lanes: warp w owns rows 16w .. "
            "16w + 15 (FA2's split-Q). Inside a warp, the **mma.sync m16n8k16 accumulator "
            "layout** of the PTX ISA: lane = 4 g + t (g = lane >> 2, t = lane % 4) owns rows "
            "g and g + 8 and, in each 8-column n-tile (white lines), columns 2t and 2t + 1. "
            "A row lives in the 4 lanes of one quad: its max and sum take two shuffles."
        )
    cols = st.columns(2)
    for col, matrix in zip(cols, ("S_ij", "O_i"), strict=True):
        own = ownership(kind, defines, matrix)
        fig = ownership_figure(own, ss.inside_colour, thread, *steps)
        chart(fig, key=f"inside_owner_{matrix}", container=col)
    st.caption(
        f"Thread {thread} is outlined. Hover a cell for its thread, warp, lane and register. "
        "O_i's columns past d (the head dim the build was padded from) are never written."
    )


def shared_section(kind: str, config: KernelConfig, smem: int | None) -> None:
    st.subheader("2. Shared memory")
    buffers = shared_buffers(kind, config.defines)
    rows = [
        {
            "array": b.name,
            "declaration (line)": f"{b.declaration} ({b.line})",
            "shape": " x ".join(map(str, b.dims)),
            "bytes": b.bytes,
            "holds": b.holds,
        }
        for b in buffers
    ]
    st.dataframe(rows, hide_index=True, key="inside_shared_table")
    total = sum(b.bytes for b in buffers)
    ptxas = f"; ptxas reports {smem} bytes" if smem is not None else ""
    st.markdown(
        f"**{total} bytes** ({total / 1024:.1f} KiB) of static shared memory a block, of the "
        f"{STATIC_SHARED_LIMIT // 1024} KiB a block may declare statically{ptxas}."
    )


def timeline_section(kind: str) -> None:
    st.subheader("3. Phases, barriers and warp reductions")
    tl = timeline(kind)
    chart(timeline_figure(tl), key="inside_timeline")
    rows = [
        {"line": e.line, "phase": e.phase or "(before init)", "kind": e.kind, "code": e.code,
         "why": e.note}
        for e in tl.events
        if e.kind in ("barrier", "shuffle")
    ]  # fmt: skip
    st.dataframe(rows, hide_index=True, key="inside_sync_table")
    if kind == "float32":
        st.caption(
            "The float32 kernel shares row maxima and sums through shared memory, so every "
            "exchange between threads is a block-wide __syncthreads()."
        )
    else:
        st.caption(
            "The tensor-core kernel's warps never exchange data: the only barriers guard "
            "the shared K/V tiles; a row's max (phase max) and sum (phase reduce) are "
            "reduced inside its quad with __shfl_xor_sync(.., 1) and (.., 2)."
        )


def occupancy_section(config: KernelConfig, arch: str, res: Resources | None) -> None:
    st.subheader("4. Registers, shared memory and occupancy")
    sm = SM_LIMITS[arch]
    if res is None:
        st.warning(
            "NVRTC is not installed and this build is not in the recorded table: no register "
            "count, so no occupancy (pip install -r requirements-gpu.txt)."
        )
        return
    info = res.ptxas
    st.caption(f"ptxas: {res.source}.")
    occ = occupancy(sm, config.num_threads, info.registers, info.shared_bytes)
    cols = st.columns(4)
    cols[0].metric("registers a thread", info.registers)
    cols[1].metric("spills (store / load bytes)", f"{info.spill_stores} / {info.spill_loads}")
    cols[2].metric("blocks a SM", occ.blocks)
    cols[3].metric("occupancy", f"{occ.fraction:.0%}", f"{occ.warps} of {occ.max_warps} warps",
                   delta_color="off", delta_arrow="off")  # fmt: skip
    st.markdown(f"**{arch} ({GPU_NAMES[arch]})**: {occ.text()}.")
    rows = [
        {"limit": "threads", "per SM": f"{sm.max_threads} threads ({sm.max_warps} warps)",
         "this block needs": f"{config.num_threads} threads",
         "blocks it allows": occ.by_limit["threads"]},
        {"limit": "registers", "per SM": f"{sm.registers} (4 x {sm.registers // 4})",
         "this block needs": f"{info.registers} a thread -> {occ.registers_per_warp} a warp",
         "blocks it allows": occ.by_limit["registers"]},
        {"limit": "shared memory", "per SM": f"{sm.shared_bytes // 1024} KiB",
         "this block needs": f"{info.shared_bytes} + {sm.reserved_shared} reserved -> "
         f"{occ.shared_per_block} bytes",
         "blocks it allows": occ.by_limit["shared memory"]},
        {"limit": "blocks", "per SM": f"{sm.max_blocks} blocks", "this block needs": "1",
         "blocks it allows": occ.by_limit["blocks"]},
    ]  # fmt: skip
    st.dataframe(rows, hide_index=True, key="inside_occupancy_table")
    st.caption(
        "CUDA's occupancy rules (cuda_occupancy.h): registers go to warps in units of 256, in "
        "4 sub-partitions of 16384; shared memory in units of 128 bytes (256 on sm_75) with "
        "1 KiB reserved a block on sm_80 and later; the largest shared-memory carveout. "
        "Limits per SM: CUDA C++ Programming Guide, technical specifications per compute "
        "capability."
    )


def explorer_section(kind: str, config: KernelConfig, arch: str, registers: int) -> None:
    st.subheader("5. Tile-size explorer")
    d = config.head_dim
    precision = st.session_state.inside_precision
    configs = [build_config(kind, d, q, kv, precision) for q in BLOCK_SIZES for kv in BLOCK_SIZES]
    builds = [(c.block_q, c.block_kv, c.defines) for c in configs]
    known = {**recorded_registers(configs, arch), (config.block_q, config.block_kv): registers}
    cells = explore(kind, builds, registers, SM_LIMITS[arch], known=known)
    chart(explorer_figure(cells, d, arch, registers), key="inside_explorer")
    st.caption(
        f"Each cell: the static shared memory of block_q x block_kv at head dim {d} (from the "
        "kernel's __shared__ declarations), and the thread blocks a SM then holds. Cells "
        "over 48 KiB cannot be compiled as written. The blocks use ptxas's register count "
        "where it is known (this build and the recorded ones the app offers); a ≈ marks "
        f"a cell that borrows this build's {registers} registers a thread, an estimate: "
        "ptxas's count changes with the sizes."
    )


@page_shell("Inside the kernel", FIELDS, INTRO)
def render() -> None:
    _settle()
    controls()
    ss = st.session_state
    kind, arch = ss.inside_kernel, ss.inside_arch
    config = config_now()
    try:
        res = cached_ptxas(config, arch)
    except KernelCompileError as err:
        st.error(f"NVRTC rejected the build: {err}")
        res = None
    ownership_section(kind, config)
    shared_section(kind, config, None if res is None else res.ptxas.shared_bytes)
    timeline_section(kind)
    occupancy_section(config, arch, res)
    if res is not None:
        explorer_section(kind, config, arch, res.ptxas.registers)
