"""Page: GPU timings of the CUDA kernels against naive attention, or CPU numbers without one.

The sweep has a row per method: the scalar float32 kernel, the tensor-core kernel in float16
and in bfloat16, naive CuPy, and PyTorch SDPA's backends where PyTorch is installed.

Both cases show the doctor's checklist (``flashviz.gpu.doctor``: one line per layer, with the
fix) and the roofline expectation for a chosen GPU as a chart.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import streamlit as st

from flashviz.app import gpu_work
from flashviz.app.cached import session_id
from flashviz.app.job_view import follow
from flashviz.app.jobs import SLOT, Job
from flashviz.app.widgets.charts import chart
from flashviz.core.measurement import OUT_OF_MEMORY, BenchRow, CpuResult, GpuSpec
from flashviz.figures.benchmarks import (
    cpu_benchmark_figure,
    gpu_benchmark_figure,
    roofline_figure,
)
from flashviz.gpu import doctor, report
from flashviz.gpu.device import TC_METHODS, CupyDevice, Device
from flashviz.gpu.launch_params import KERNEL_HEAD_DIMS, SCALAR, TENSOR_CORES
from flashviz.gpu.sweep import benchmark
from flashviz.perf.roofline import KNOWN_GPUS, expect, naive_out_of_memory_n

ASKED = "_cpu_sweep_asked"  # session state: (sizes, d) of the last CPU sweep click
SIZES = (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
CPU_SIZES = (256, 512, 1024, 2048, 4096)


def sweep_with_progress(ns: Sequence[int], run_one: Callable[[int], list], label: str) -> list:
    """``run_one(n)`` for each n under a progress bar that is cleared whatever happens."""
    bar = st.progress(0.0, text=label)
    rows: list = []
    try:
        for done, n in enumerate(ns, start=1):
            rows += run_one(n)
            bar.progress(done / len(ns), text=f"{label}: n = {n} done")
    finally:
        bar.empty()
    return rows


def checklist_section(checks: Sequence[doctor.Check]) -> None:
    st.subheader("Is this machine ready? (`python -m flashviz.gpu.doctor`)")
    st.table(
        {
            "layer": [c.layer for c in checks],
            "status": [c.status for c in checks],
            "what was found": [c.detail for c in checks],
            "fix": [c.fix if c.status != doctor.OK else "" for c in checks],
        }
    )


def expectations_section(d: int, ns: list[int]) -> None:
    st.subheader("What to expect, and why")
    spec = st.selectbox(
        "GPU for the estimate", KNOWN_GPUS, format_func=lambda g: g.name, index=2, key="gpu_spec"
    )
    chart(roofline_figure([expect(n, d, spec) for n in ns], spec), key="gpu_roofline")
    st.markdown(
        f"Both methods do the same 4 n^2 d FLOPs. Naive attention also streams the n x n "
        f"matrices S and P through memory about 8 times, so it is memory-bound: its time "
        f"grows with n^2 bytes at {spec.bandwidth_gbs:.0f} GB/s, and it holds two n x n "
        f"arrays at once, so on this GPU's {spec.memory_gib:.0f} GiB it runs out of memory "
        f"near n = {naive_out_of_memory_n(d, spec):,}. FlashAttention-2 keeps each tile on "
        f"chip: it moves only Q, K, V and O, is bound by FLOPs ({spec.fp32_tflops} TFLOP/s "
        "fp32 peak without tensor cores) and its memory grows linearly in n. "
        + tensor_core_expectation(spec)
    )
    st.caption(
        f"d = {d}, float32, one head. The times are lower bounds (roofline). flashviz's "
        "kernel is scalar float32 CUDA C (no tensor cores, a few rows per thread), so it "
        "reaches only a fraction of the fp32 peak drawn in the throughput panel; cuBLAS's "
        "matmuls in the naive path come much closer to it."
    )


def tensor_core_expectation(spec: GpuSpec) -> str:
    """What the roofline says of the tensor-core kernel on ``spec`` (a sentence or two)."""
    if spec.tc_tflops is None:
        return (
            "The tensor-core kernel needs sm_80 or newer (mma.sync.m16n8k16), so this GPU "
            "has no line for it."
        )
    text = (
        f"The tensor-core kernel (float16 or bfloat16 inputs, float32 accumulation) is bound "
        f"by the tensor-core peak instead, {spec.tc_tflops:g} TFLOP/s dense, "
        f"{spec.tc_tflops / spec.fp32_tflops:.0f} times the fp32 one, and reads Q, K, V in "
        "half the bytes."
    )
    if spec.tc_peak_needs_wgmma:
        text += (
            " On Hopper only the warpgroup instruction (wgmma) reaches that peak; this kernel's "
            "mma.sync stays well under it (FlashAttention-2 reached about 35% of an H100, per "
            "the FlashAttention-3 paper), so read the line as a bound, not a target."
        )
    return text


def gpu_section(device_name: str, make_device: Callable[[], Device] = CupyDevice) -> None:
    st.success(f"GPU: {device_name}")
    cols = st.columns(4)
    d = cols[0].selectbox("head dim d", KERNEL_HEAD_DIMS, index=2, key="gpu_d")
    blocks = cols[1].selectbox(
        "blocks (q x kv), float32 kernel",
        SCALAR.fitting_blocks(d),
        key="gpu_blocks",
        format_func=lambda b: f"{b[0]} x {b[1]}",
    )
    causal = cols[2].checkbox("causal", key="gpu_causal")
    batch_heads = cols[3].number_input("batch x heads", 1, 64, 1, key="gpu_bh")
    ns = st.multiselect("sequence lengths n", SIZES, default=list(SIZES[:5]), key="gpu_ns")
    if st.button("Run the GPU sweep", key="gpu_run", type="primary") and ns:
        run_one = functools.partial(benchmark, d=d, device=make_device(), causal=causal,
                                    batch_heads=int(batch_heads), block_q=blocks[0],
                                    block_kv=blocks[1])  # fmt: skip
        rows = sweep_with_progress(sorted(ns), run_one, "GPU sweep")
        gpu_results(rows, d)
    expectations_section(d, sorted(ns) or list(SIZES[:5]))


def gpu_results(rows: Sequence[BenchRow], d: int) -> None:
    chart(gpu_benchmark_figure(rows), key="gpu_sweep")
    st.dataframe([dataclasses.asdict(r) for r in rows], hide_index=True)
    if any(r.method in TC_METHODS.values() for r in rows):
        block_q, block_kv = TENSOR_CORES.fitting_blocks(d)[0]
        st.caption(
            "flash (tensor cores, ...): kernels/flash_attention_tc.cu, mma.sync.m16n8k16 on "
            "the same inputs rounded to float16 or bfloat16, float32 accumulation, one warp "
            f"per 16 query rows, blocks {block_q} x {block_kv}. Each is checked against "
            "naive attention on those rounded inputs (twice its error), hence a larger max "
            "error than the float32 rows."
        )
    faster = report.naive_faster(rows)
    if faster:
        where = ", ".join(f"n = {n}" for n, _ in faster)
        st.info(f"Naive attention is faster here at {where}: {report.NAIVE_FASTER_WHY}.")
    if any(r.status == OUT_OF_MEMORY for r in rows):
        st.caption(
            "x = out of memory: naive attention holds the n x n scores S and P; the flash "
            "kernel never stores them."
        )


def cpu_table(results: Sequence[CpuResult]) -> dict[str, list]:
    """The CPU sweep as table columns (what ``cpu_bench.format_table`` prints)."""
    return {
        "n": [r.n for r in results],
        "d": [r.d for r in results],
        "naive ms": [round(r.naive_s * 1e3, 2) for r in results],
        "flash ms": [round(r.flash_s * 1e3, 2) for r in results],
        "time ratio (flash / naive)": [round(r.time_ratio, 2) for r in results],
        "naive peak MiB": [round(r.naive_peak / 2**20, 2) for r in results],
        "flash peak MiB": [round(r.flash_peak / 2**20, 2) for r in results],
        "memory ratio": [f"{r.memory_ratio:.1%}" for r in results],
        "naive max error": [f"{r.naive_err:.1e}" for r in results],
        "flash max error": [f"{r.flash_err:.1e}" for r in results],
    }


def cpu_section(reason: str, checks: Sequence[doctor.Check]) -> None:
    st.warning(f"No GPU here: {reason}.")
    checklist_section(checks)
    st.markdown(
        "To time the CUDA kernel, run flashviz on a Linux or Windows machine with an NVIDIA "
        "GPU and install the GPU extras; the acceptance run writes a CSV and a chart:"
    )
    st.code(
        "pip install -r requirements-gpu.txt\npython -m flashviz.gpu.doctor\n"
        "python -m flashviz.bench --gpu --acceptance",
        language="bash",
    )
    expectations_section(64, list(SIZES[:6]))
    st.subheader("Meanwhile, on this CPU: tiled NumPy vs naive NumPy")
    cols = st.columns(2)
    ns = cols[0].multiselect(
        "sequence lengths n", CPU_SIZES, default=list(CPU_SIZES[:4]), key="cpu_ns"
    )
    d = cols[1].selectbox("head dim d", (16, 32, 64, 128), index=2, key="cpu_d")
    if st.button("Run the CPU sweep", key="cpu_run", type="primary") and ns:
        st.session_state[ASKED] = (tuple(sorted(ns)), d)
        if gpu_work.sweep_state(ns, d).pending and not gpu_work.start_sweep(ns, d, session_id()):
            busy(SLOT.running())
    running = SLOT.running()
    if running is not None:
        follow(running, key="cpu_job")
    if ASKED in st.session_state:
        cpu_results(*st.session_state[ASKED])


def busy(job: Job | None) -> None:
    """What a click that finds the job slot taken is told."""
    what = "another job" if job is None else f"{job.label} ({job.fraction:.0%} done)"
    who = "you" if job is not None and job.owner == session_id() else "another session"
    st.info(
        f"The server is busy with {what}, started by {who}. It runs one such job at a "
        "time so that everyone's clicks stay quick: press the button again when it has "
        "finished.",
        icon=":material/hourglass_top:",
    )


def cpu_results(ns: tuple[int, ...], d: int) -> None:
    state = gpu_work.sweep_state(ns, d)
    if state.results:
        chart(cpu_benchmark_figure(state.results), key="gpu_cpu_sweep")
        st.dataframe(cpu_table(state.results), hide_index=True)
        st.caption(
            "Same as `python -m flashviz.bench`: medians of 3 runs after a warm-up; "
            "peak memory from tracemalloc, output included. Measured on this server in a "
            "separate process, each size once (kept for everyone who asks again)."
        )
    for n, seconds in state.over_budget.items():
        st.caption(
            f"n = {n} at d = {d} would take about {seconds:.0f} s of the server's CPU, more "
            f"than the {gpu_work.SWEEP_CPU_S:g} s one click may use: time it on your own "
            f"machine with `python -m flashviz.bench --n {n} --d {d}`."
        )
    if state.pending and SLOT.running() is None:
        sizes = ", ".join(f"n = {n}" for n in state.pending)
        st.caption(
            f"Not measured yet: {sizes} (one click may use {gpu_work.SWEEP_CPU_S:g} s of "
            "the server's CPU). Press the button again to measure them."
        )


def render() -> None:
    st.title("GPU timings")
    st.caption(
        "The same FlashAttention-2 tiles as CUDA kernels (kernels/flash_attention.cu: "
        "scalar float32, for reading; kernels/flash_attention_tc.cu: tensor cores in "
        "float16 and bfloat16, for speed), timed against naive attention on the same inputs "
        "after each is checked against the float64 reference."
    )
    checks = gpu_work.checks()
    if checks is None:
        job = gpu_work.start_checks(session_id()) or SLOT.running()
        if job is None:  # the checks ended between the two calls
            st.rerun()
        if job.label != gpu_work.DOCTOR_LABEL:
            st.info(
                "The GPU layers are checked, once for this server, after the job below.",
                icon=":material/hourglass_top:",
            )
        follow(job, key="doctor_job")
        return
    ok, reason = doctor.gpu_ready(checks)
    if ok:
        gpu_section(reason)
        checklist_section(checks)
    else:
        cpu_section(reason, checks)
