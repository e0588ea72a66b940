"""CPU benchmark: tiled FlashAttention-2 against naive attention, measured in one run.

For each n it times both on the same float inputs (median of ``repeat`` runs, after one
warm-up), measures each one's peak memory with ``tracemalloc`` (NumPy reports its buffers
to it) in a separate run, checks both against the float64 reference, and formats a table
with the ratios. Peak memory counts everything the call allocates, output included.
The command line is ``python -m flashviz.bench`` (``flashviz/bench.py``).
"""

from __future__ import annotations

import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
from tqdm import tqdm

from flashviz.core.accuracy import max_error
from flashviz.core.block_mask import create_block_mask
from flashviz.core.flash import DEFAULT_BLOCK_KV, DEFAULT_BLOCK_Q, flash_attention
from flashviz.core.masks import sliding_window
from flashviz.core.measurement import CpuResult
from flashviz.core.reference import attention_reference, naive_attention

T = TypeVar("T")


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes allocated while ``fn`` runs (tracemalloc; NumPy buffers included)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(
    n: int,
    d: int,
    *,
    dtype: str = "float32",
    block_q: int = DEFAULT_BLOCK_Q,
    block_kv: int = DEFAULT_BLOCK_KV,
    causal: bool = False,
    repeat: int = 3,
    seed: int = 0,
    window: int | None = None,
) -> CpuResult:
    """Time and measure naive and tiled attention at one size, on the same inputs. With
    ``window``, both under FlexAttention's causal ``sliding_window(window)``: the tiled run
    with its block mask (built once, before the timing), naive attention with the mask."""
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((n, d)).astype(dtype) for _ in range(3))
    mod = None if window is None else sliding_window(window)
    blocks = None if mod is None else create_block_mask(mod, None, None, n, n, (block_q, block_kv))

    def naive() -> tuple[np.ndarray, np.ndarray]:
        return naive_attention(q, k, v, causal=causal, mask_mod=mod)

    def flash() -> tuple[np.ndarray, np.ndarray]:
        return flash_attention(
            q, k, v, block_q=block_q, block_kv=block_kv, causal=causal, block_mask=blocks
        )

    o_ref, _ = attention_reference(q, k, v, causal=causal, mask_mod=mod)
    return compare(n, d, naive, flash, lambda out: max_error(out[0], o_ref), repeat)


def compare(
    n: int,
    d: int,
    naive: Callable[[], T],
    flash: Callable[[], T],
    error: Callable[[T], float],
    repeat: int,
) -> CpuResult:
    """Median times, peak memory (separate runs) and errors (``error`` of one more run's
    output) of two methods, each called with no argument on the same inputs."""
    return CpuResult(
        n=n,
        d=d,
        naive_s=median_seconds(naive, repeat),
        flash_s=median_seconds(flash, repeat),
        naive_peak=peak_bytes(naive),
        flash_peak=peak_bytes(flash),
        naive_err=error(naive()),
        flash_err=error(flash()),
    )


def sweep(
    ns: Sequence[int],
    d: int,
    *,
    progress: bool = True,
    measure_one: Callable[..., CpuResult] = measure,
    desc: str = "CPU sweep",
    **kwargs: object,
) -> list[CpuResult]:
    """``measure_one`` (the forward's ``measure`` by default) for every n, with a progress
    bar on stderr."""
    results = []
    for n in tqdm(ns, desc=desc, unit="size", disable=not progress, file=sys.stderr):
        results.append(measure_one(n, d, **kwargs))
    return results


def format_table(results: Sequence[CpuResult]) -> str:
    header = (
        f"{'n':>6} {'d':>4} {'naive ms':>10} {'flash ms':>10} {'time ratio':>11} "
        f"{'naive MiB':>10} {'flash MiB':>10} {'mem ratio':>10} {'naive err':>10} {'flash err':>10}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.n:>6} {r.d:>4} {r.naive_s * 1e3:>10.1f} {r.flash_s * 1e3:>10.1f} "
            f"{r.time_ratio:>10.2f}x {r.naive_peak / 2**20:>10.2f} {r.flash_peak / 2**20:>10.2f} "
            f"{r.memory_ratio:>10.1%} {r.naive_err:>10.1e} {r.flash_err:>10.1e}"
        )
    return "\n".join(lines)
