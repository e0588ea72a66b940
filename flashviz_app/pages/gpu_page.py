"""Page: GPU timings of the CUDA kernel against naive attention, or CPU numbers without one."""

from __future__ import annotations

import dataclasses

import streamlit as st

from flashviz import bench, gpu
from flashviz.figures.benchmarks import cpu_benchmark_figure, gpu_benchmark_figure
from flashviz.launch import KERNEL_HEAD_DIMS, kernel_blocks
from flashviz.nvrtc import KernelCompileError
from flashviz.roofline import KNOWN_GPUS, expect, naive_out_of_memory_n

SIZES = (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
CPU_SIZES = (256, 512, 1024, 2048, 4096)


@st.cache_resource(show_spinner="Looking for a GPU ...")
def gpu_status() -> tuple[bool, str]:
    return gpu.available()


def sweep_with_progress(ns: list[int], run_one, label: str) -> list:
    bar = st.progress(0.0, text=label)
    rows = []
    for done, n in enumerate(ns, start=1):
        rows += run_one(n)
        bar.progress(done / len(ns), text=f"{label}: n = {n} done")
    bar.empty()
    return rows


def expectations_section(d: int, ns: list[int]) -> None:
    st.subheader("What to expect, and why")
    spec = st.selectbox(
        "GPU for the estimate", KNOWN_GPUS, format_func=lambda g: g.name, index=2, key="gpu_spec"
    )
    rows = [expect(n, d, spec) for n in ns]
    st.dataframe(
        {
            "n": [e.n for e in rows],
            "GFLOP": [round(e.flops / 1e9, 2) for e in rows],
            "naive HBM MB": [round(e.naive_bytes / 1e6, 1) for e in rows],
            "flash HBM MB": [round(e.flash_bytes / 1e6, 1) for e in rows],
            "naive >= ms": [round(e.naive_ms, 4) for e in rows],
            "flash >= ms": [round(e.flash_ms, 4) for e in rows],
            "naive peak MiB": [round(e.naive_peak_bytes / 2**20, 1) for e in rows],
            "flash peak MiB": [round(e.flash_peak_bytes / 2**20, 1) for e in rows],
        },
        hide_index=True,
    )
    st.markdown(
        f"Both methods do the same 4 n^2 d FLOPs. Naive attention also streams the n x n "
        f"matrices S and P through memory about 8 times, so it is memory-bound: its time "
        f"grows with n^2 bytes at {spec.bandwidth_gbs:.0f} GB/s, and it holds two n x n "
        f"arrays at once, so on this GPU's {spec.memory_gib:.0f} GiB it runs out of memory "
        f"near n = {naive_out_of_memory_n(d, spec):,}. FlashAttention-2 keeps each tile on "
        f"chip: it moves only Q, K, V and O, is bound by FLOPs ({spec.fp32_tflops} TFLOP/s "
        "fp32 peak without tensor cores) and its memory grows linearly in n. The times are "
        "lower bounds (roofline); real kernels reach a fraction of the peak."
    )


def gpu_section(device: str) -> None:
    st.success(f"GPU: {device}")
    cols = st.columns(4)
    d = cols[0].selectbox("head dim d", KERNEL_HEAD_DIMS, index=2, key="gpu_d")
    blocks = cols[1].selectbox(
        "blocks (q x kv)",
        kernel_blocks(d),
        key="gpu_blocks",
        format_func=lambda b: f"{b[0]} x {b[1]}",
    )
    causal = cols[2].checkbox("causal", key="gpu_causal")
    batch_heads = cols[3].number_input("batch x heads", 1, 64, 1, key="gpu_bh")
    ns = st.multiselect("sequence lengths n", SIZES, default=list(SIZES[:5]), key="gpu_ns")
    if st.button("Run the GPU sweep", key="gpu_run", type="primary") and ns:
        try:
            rows = sweep_with_progress(
                sorted(ns),
                lambda n: gpu.benchmark(
                    n,
                    d,
                    causal=causal,
                    batch_heads=int(batch_heads),
                    block_q=blocks[0],
                    block_kv=blocks[1],
                ),
                "GPU sweep",
            )
        except KernelCompileError as exc:
            st.error(f"The kernel did not compile: {exc}")
            return
        except Exception as exc:  # a driver error must not become a traceback
            st.error(f"The GPU sweep stopped: {type(exc).__name__}: {exc}")
            return
        st.plotly_chart(gpu_benchmark_figure(rows), width="stretch")
        st.dataframe([dataclasses.asdict(r) for r in rows], hide_index=True)
    expectations_section(d, sorted(ns) or list(SIZES[:5]))


@st.cache_data(show_spinner=False, max_entries=8)
def cpu_sweep(ns: tuple[int, ...], d: int) -> list[bench.CpuResult]:
    return [bench.measure(n, d, repeat=3) for n in ns]


def cpu_section(reason: str) -> None:
    st.warning(f"No GPU here: {reason}.")
    st.markdown(
        "To time the CUDA kernel, run flashviz on a Linux or Windows machine with an NVIDIA "
        "GPU and install the GPU extras:"
    )
    st.code(
        "pip install -r requirements-gpu.txt\npython -m flashviz.bench --gpu --csv gpu.csv",
        language="bash",
    )
    st.subheader("Meanwhile, on this CPU: tiled NumPy vs naive NumPy")
    cols = st.columns(2)
    ns = cols[0].multiselect(
        "sequence lengths n", CPU_SIZES, default=list(CPU_SIZES[:4]), key="cpu_ns"
    )
    d = cols[1].selectbox("head dim d", (16, 32, 64, 128), index=2, key="cpu_d")
    if st.button("Run the CPU sweep", key="cpu_run", type="primary") and ns:
        results = sweep_with_progress(sorted(ns), lambda n: cpu_sweep((n,), d), "CPU sweep")
        st.plotly_chart(cpu_benchmark_figure(results), width="stretch")
        st.code(bench.format_table(results), language="text")
        st.caption(
            "Same as `python -m flashviz.bench`: medians of 3 runs after a warm-up; "
            "peak memory from tracemalloc, output included."
        )
    expectations_section(64, list(SIZES[:5]))


def render() -> None:
    st.title("GPU timings")
    st.caption(
        "The same FlashAttention-2 tiles as a CUDA kernel (kernels/flash_attention.cu), "
        "timed against naive attention on the same inputs after both are checked "
        "against the float64 reference."
    )
    ok, reason = gpu_status()
    if ok:
        gpu_section(reason)
    else:
        cpu_section(reason)
