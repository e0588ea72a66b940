"""The benchmarks' command line: tiled FlashAttention-2 against naive attention, in one run.

    python -m flashviz.bench --n 512 1024 2048 4096 --d 64          # CPU, NumPy
    python -m flashviz.bench --backward --n 4096 --d 64     # CPU, the backward pass
    python -m flashviz.bench --gpu --n 1024 2048 4096 8192 --csv gpu.csv   # CUDA kernels
    python -m flashviz.bench --gpu --acceptance     # everything a GPU can check, < 5 min

CPU:
For each n it times both on the same float inputs (median of ``--repeat`` runs, after one
warm-up), measures each one's peak memory with ``tracemalloc`` (NumPy reports its buffers
to it) in a separate run, checks both against the float64 reference, and prints a table
with the ratios. Peak memory counts everything the call allocates, output included.
``--backward`` does the same for the backward pass (``flashviz.perf.backward_bench``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from flashviz.core.flash import DEFAULT_BLOCK_KV, DEFAULT_BLOCK_Q
from flashviz.core.measurement import OK, OUT_OF_MEMORY, BenchRow, write_csv
from flashviz.gpu.device import CupyDevice, Device
from flashviz.gpu.report import (
    NAIVE_FASTER_WHY,
    acceptance_summary,
    format_gpu_table,
    gpu_sweep,
    naive_faster,
    run_gpu,
)
from flashviz.gpu.sweep import error_line
from flashviz.perf.backward_bench import measure_backward
from flashviz.perf.cpu_bench import format_table, measure, sweep

ACCEPTANCE_NS = (512, 1024, 2048, 4096, 8192, 16384)
ACCEPTANCE_DS = (64, 128)
ACCEPTANCE_BATCH_HEADS = 8
GPU_TESTS = (
    "tests/gpu/test_kernel_gpu.py",
    "tests/gpu/test_doctor.py",
    "tests/gpu/test_install.py",
)
ROOT = Path(__file__).resolve().parents[2]


def acceptance(
    out_dir: str,
    device: Device | None = None,
    *,
    ns: Sequence[int] = ACCEPTANCE_NS,
    ds: Sequence[int] = ACCEPTANCE_DS,
    batch_heads: int = ACCEPTANCE_BATCH_HEADS,
    gpu_tests: bool = True,
    repeat: int = 10,
) -> int:
    """``--gpu --acceptance``: the doctor, the GPU tests, the sweep; CSV, PNG, one line.

    Exit code 0 when the tests passed and every row is ok or out of memory.
    """
    import subprocess

    from flashviz.gpu import doctor

    start = time.perf_counter()
    if device is None:
        checks = doctor.run_checks()
        print("\n".join(c.line() for c in checks), file=sys.stderr)
        ready, reason = doctor.gpu_ready(checks)
        if not ready:
            print(f"acceptance: no GPU ({reason}); nothing measured", file=sys.stderr)
            return 2
        device = CupyDevice()
    tests_ok = None
    if gpu_tests:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *GPU_TESTS]
        tests = subprocess.run(command, cwd=ROOT, check=False)
        tests_ok = tests.returncode == 0
    csv_path, png_path = Path(out_dir) / "gpu_acceptance.csv", Path(out_dir) / "gpu_acceptance.png"
    rows: list = []
    try:
        gpu_sweep(ns, ds, device, batch_heads=batch_heads, repeat=repeat, seed=0, into=rows)
    finally:
        write_csv(str(csv_path), rows, BenchRow)
    print(format_gpu_table(rows))
    wrote = [csv_path.name]
    try:
        from flashviz.figures.benchmarks import gpu_benchmark_figure
        from flashviz.io.export import figures_png

        fig = gpu_benchmark_figure(rows).update_layout(width=1500, height=520)
        png_path.write_bytes(figures_png({"gpu_acceptance": fig}, scale=1.0)["gpu_acceptance"])
        wrote.append(png_path.name)
    except Exception as exc:  # no Chromium for kaleido: the CSV still has every number
        wrote.append(f"no PNG ({error_line(exc)})")
    faster = naive_faster(rows)
    if faster:
        print(f"naive is faster at (n, d) = {faster}: {NAIVE_FASTER_WHY}")
    summary = acceptance_summary(rows, tests_ok, time.perf_counter() - start)
    print(f"{summary}; wrote {', '.join(wrote)} in {out_dir}")
    bad = any(r.status not in (OK, OUT_OF_MEMORY) for r in rows)
    return 0 if tests_ok is not False and not bad else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m flashviz.bench",
        description="Time tiled FlashAttention-2 (NumPy) against naive attention on the CPU. "
        "Ratios are flash / naive measured in the same run: time ratio < 1 means flash is "
        "faster; mem ratio is flash's peak memory as a share of naive's.",
    )
    parser.add_argument(
        "--n",
        type=int,
        nargs="+",
        default=[512, 1024, 2048, 4096],
        help="sequence lengths to sweep (n_q = n_k = n)",
    )
    parser.add_argument("--d", type=int, default=64, help="head dim (default 64)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--block-q", type=int, default=DEFAULT_BLOCK_Q)
    parser.add_argument("--block-kv", type=int, default=DEFAULT_BLOCK_KV)
    parser.add_argument("--causal", action="store_true", help="apply a causal mask")
    parser.add_argument(
        "--window",
        type=int,
        metavar="W",
        help="a causal sliding window of W keys (flashviz.masks.sliding_window) instead: the "
        "tiled run skips the empty tiles of its block mask, naive attention masks entry by entry",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--backward",
        action="store_true",
        help="time the backward pass (dQ, dK, dV) instead: flash_attention_backward "
        "against the standard backward, which keeps P; errors vs the float64 gradient",
    )
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="benchmark the CUDA kernels (scalar float32; tensor cores in float16 and "
        "bfloat16, sm_80+) against naive CuPy (and PyTorch SDPA if installed) instead; "
        "needs requirements-gpu.txt and an NVIDIA GPU",
    )
    parser.add_argument("--batch-heads", type=int, default=1, help="batch x heads (--gpu)")
    parser.add_argument(
        "--acceptance",
        action="store_true",
        help="with --gpu: the doctor, the GPU tests, and the sweep n = 512 ... 16384, "
        "d = 64 and 128, batch x heads 8, float32 (the tensor-core kernel in float16 and "
        "bfloat16); writes gpu_acceptance.csv and .png "
        "into --out and prints one summary line (a few minutes on a current GPU)",
    )
    parser.add_argument("--out", default=".", help="folder for --acceptance's files")
    parser.add_argument("--csv", metavar="PATH", help="also write the results as CSV")
    args = parser.parse_args(argv)
    if args.backward and args.gpu:
        parser.error("--backward is a CPU benchmark; the GPU sweep has no backward")
    if args.window is not None and (args.causal or args.backward or args.gpu):
        parser.error("--window is a CPU forward benchmark, causal already: drop --causal, "
                     "--backward and --gpu")  # fmt: skip
    if args.window is not None and args.window < 0:
        parser.error("--window must be 0 or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.gpu and args.acceptance:
        return acceptance(args.out)
    if args.gpu:
        return run_gpu(args)
    results = sweep(
        args.n,
        args.d,
        dtype=args.dtype,
        block_q=args.block_q,
        block_kv=args.block_kv,
        causal=args.causal,
        repeat=args.repeat,
        seed=args.seed,
        **({} if args.window is None else {"window": args.window}),
        measure_one=measure_backward if args.backward else measure,
        desc="CPU backward sweep" if args.backward else "CPU sweep",
    )
    print(format_table(results))
    if args.csv:
        write_csv(args.csv, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
