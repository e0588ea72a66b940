"""The GPU sweep as a person reads it: a progress bar, a text table, the one-line summary,
and where naive attention beat the kernel (and why). Pure functions of ``BenchRow`` rows,
except ``gpu_sweep`` and ``run_gpu`` which run the sweep.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from flashviz.core.measurement import BenchRow, write_csv
from flashviz.gpu.device import FLASH, NAIVE, TC_METHODS, Device, GpuUnavailableError, gpu_device
from flashviz.gpu.sweep import sweep

METHOD_WIDTH = 24  # the method column; wider when a method's name is longer


def format_gpu_table(rows: Sequence[BenchRow]) -> str:
    """The GPU sweep's rows (``flashviz.core.measurement.BenchRow``) as a text table."""
    w = max([METHOD_WIDTH, *(len(r.method) for r in rows)])
    header = (
        f"{'method':<{w}} {'n':>6} {'d':>4} {'time ms':>9} {'peak MiB':>9} {'TFLOP/s':>8} "
        f"{'max err':>9}  status"
    )

    def num(x: float | None, fmt: str) -> str:
        return format("-", f">{fmt.split('.')[0]}") if x is None else format(x, fmt)

    lines = [header, "-" * len(header)]
    for r in rows:
        peak = None if r.peak_bytes is None else r.peak_bytes / 2**20
        detail = f" ({r.detail})" if r.detail else ""
        lines.append(
            f"{r.method:<{w}} {r.n:>6} {r.d:>4} {num(r.time_ms, '9.3f')} {num(peak, '9.1f')} "
            f"{num(r.tflops, '8.2f')} {num(r.max_err, '9.1e')}  {r.status}{detail}"
        )
    return "\n".join(lines)


def gpu_sweep(
    ns: Sequence[int], ds: Sequence[int], device: Device, **options: Any
) -> list[BenchRow]:
    """The GPU sweep with a progress bar on stderr that is cleared when it ends (``into``,
    if given, receives the rows as they are measured)."""

    total = len(ns) * len(ds)
    with tqdm(total=total, desc="GPU sweep", unit="size", file=sys.stderr, leave=False) as bar:
        return sweep(ns, ds, device=device,
                         progress=lambda done, _: bar.update(done - bar.n), **options)  # fmt: skip


HOW_TO_ENABLE = (
    "Install the GPU extras with `pip install -r requirements-gpu.txt` on a machine with an "
    "NVIDIA GPU; `python -m flashviz.gpu.doctor` checks each layer."
)


def run_gpu(args: argparse.Namespace, device: Device | None = None) -> int:
    """``--gpu``: the sweep's table on stdout; the CSV is written whatever happens."""

    rows: list = []
    try:
        if device is None:
            try:
                device = gpu_device()
            except GpuUnavailableError as exc:
                print(f"No GPU benchmark: {exc}. {HOW_TO_ENABLE}", file=sys.stderr)
                return 2
        gpu_sweep(args.n, [args.d], device, causal=args.causal, batch_heads=args.batch_heads,
                  seed=args.seed, into=rows)  # fmt: skip
        print(format_gpu_table(rows))
        return 0
    finally:
        if args.csv:
            write_csv(args.csv, rows, BenchRow)


def naive_faster(rows: Sequence[BenchRow]) -> list[tuple[int, int]]:
    """(n, d) where naive attention's time beat the flash kernel's (both measured)."""
    from flashviz.core.measurement import OK

    times = {(r.method, r.n, r.d): r.time_ms for r in rows
             if r.status == OK and r.time_ms is not None}  # fmt: skip
    return [(n, d) for (m, n, d), t in times.items()
            if m == NAIVE and t < times.get((FLASH, n, d), float("inf"))]  # fmt: skip


NAIVE_FASTER_WHY = (
    "naive attention hands its two matmuls to cuBLAS, which runs them near the fp32 peak, "
    "and at small n its n x n scores stay in the L2 cache, so the softmax's extra memory "
    "traffic costs little; flashviz's float32 kernel is scalar CUDA C (no tensor cores, a "
    "few rows per thread), so it wins only once naive's traffic (8 n^2 floats) dominates "
    "(the tensor-core rows are the kernel written for speed)"
)


def acceptance_summary(rows: Sequence[BenchRow], tests_ok: bool | None, seconds: float) -> str:
    """The one line ``--acceptance`` ends with."""
    from flashviz.core.measurement import OK, OUT_OF_MEMORY, WRONG

    counts = {s: sum(r.status == s for r in rows) for s in (OK, OUT_OF_MEMORY, WRONG)}
    errors = sum(r.status.startswith("error") for r in rows)
    tests = {None: "GPU tests not run", True: "GPU tests passed", False: "GPU tests FAILED"}
    both = [(r.n, r.d) for r in rows if r.method == FLASH and r.status == OK
            and any(o.method == NAIVE and o.status == OK and (o.n, o.d) == (r.n, r.d)
                    for o in rows)]  # fmt: skip
    ms = {(r.method, r.n, r.d): r.time_ms for r in rows if r.status == OK}
    compare = ""
    if both:
        n, d = max(both)
        tc = "".join(f", tensor cores {p} {ms[m, n, d]:.3g} ms" for p, m in TC_METHODS.items()
                     if (m, n, d) in ms)  # fmt: skip
        compare = (f"; at n = {n}, d = {d}: flash {ms[FLASH, n, d]:.3g} ms{tc}, "
                   f"naive {ms[NAIVE, n, d]:.3g} ms")  # fmt: skip
    return (f"acceptance: {tests[tests_ok]}; {len(rows)} rows: {counts[OK]} ok, "
            f"{counts[OUT_OF_MEMORY]} out of memory, {counts[WRONG]} wrong result, "
            f"{errors} error{compare}; {seconds:.0f} s")  # fmt: skip
