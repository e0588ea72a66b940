"""Time the CUDA kernels against naive attention (and PyTorch's SDPA) on a ``Device``.

``benchmark`` checks every method against ``attention_reference`` before timing it (on
the last ``check_rows`` query rows, which a square problem's reference gives exactly),
times it with the device (on a GPU ``cupyx.profiler.benchmark``: CUDA events, after
warm-up; medians) and measures the peak device memory it allocates (outputs included,
inputs not). The tensor-core kernel gets a row in float16 and one in bfloat16
(``TC_METHODS``): the same float32 problem, its inputs rounded to the 16-bit type on the
host (``Kernel.inputs``), checked against the same reference with the bound of naive
attention on those rounded inputs. Each (size, method) gets its own row and a status:
"ok", "out of memory", "wrong result" or "error: <one line>"; nothing a method raises (but
Ctrl-C) stops the sweep. ``sweep`` runs ``benchmark`` over sizes.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from flashviz.core.accuracy import allowed_error, max_error
from flashviz.core.costs import attention_flops
from flashviz.core.masking import mask_offset
from flashviz.core.measurement import OK, OUT_OF_MEMORY, WRONG, BenchRow
from flashviz.core.reference import attention_reference, softmax_attention
from flashviz.gpu.device import (
    FLASH,
    NAIVE,
    SDPA_BACKENDS,
    TC_METHODS,
    Device,
    Run,
    gpu_device,
    sdpa_method,
)
from flashviz.gpu.launch_params import (
    SCALAR,
    KernelCall,
)

ERROR_CHARS = 160  # "error: <one line>" is cut here


def error_line(exc: BaseException) -> str:
    """'error: <Type>: <first line of the message>', cut to ERROR_CHARS."""
    text = str(exc).strip().splitlines()
    line = f"error: {type(exc).__name__}" + (f": {text[0]}" if text else "")
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 3] + "..."


def error_bound(ref: np.ndarray, naive: np.ndarray) -> float:
    """Allowed error: twice naive attention's own error (in its precision), plus a few ulps."""
    return allowed_error(ref, naive, float(np.finfo(naive.dtype).eps))


def check_status(errors: dict[str, float], bounds: dict[str, float]) -> tuple[str, str]:
    """('ok', '') or ('wrong result', which output is wrong and by how much)."""
    bad = [f"{k} error {errors[k]:.2e} > {bounds[k]:.2e}" for k in errors if errors[k] > bounds[k]]
    return (OK, "") if not bad else (WRONG, "; ".join(bad))


def tflops(flops: int, time_ms: float) -> float:
    return flops / (time_ms * 1e-3) / 1e12


@dataclass
class TimedProblem:
    """One random (bh, n, d) problem a timing run computes, and what its results are checked
    against (the core's ``Problem`` is a tiled problem to trace)."""

    call: KernelCall
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray]
    tail: slice  # the query rows checked: the last ones, a bottom-right problem of their own
    ref: tuple[np.ndarray, np.ndarray]
    flops: int
    _bounds: dict[str, dict[str, float]] = field(default_factory=dict)

    def bounds(self, dtype: str) -> dict[str, float]:
        """Allowed errors of a method computing in ``dtype``: from naive attention in it."""
        if dtype not in self._bounds:
            o_n, lse_n = naive_in(dtype, self.arrays, self.tail, self.call)
            self._bounds[dtype] = {
                "o": error_bound(self.ref[0], o_n),
                "lse": error_bound(self.ref[1], lse_n),
            }
        return self._bounds[dtype]


def naive_in(
    dtype: str, arrays: tuple[np.ndarray, ...], tail: slice, call: KernelCall
) -> tuple[np.ndarray, np.ndarray]:
    """Naive attention on the ``tail`` query rows as a kernel in ``dtype`` computes it:
    float32 as is; float16/bfloat16 inputs rounded to it, float32 softmax state, P rounded
    to it for P V (as FlashAttention's kernels do)."""
    q, k, v = (x.astype(dtype).astype(np.float32) for x in arrays)
    q = q[:, tail]
    offset = mask_offset(q.shape[1], k.shape[1], call.causal, "bottom_right")
    p_dtype = None if dtype == "float32" else np.dtype(dtype)
    return softmax_attention(q, k, v, scale=call.scale, offset=offset, dtype=np.float32,
                             p_dtype=p_dtype)  # fmt: skip


def make_problem(
    n: int, d: int, *, causal: bool, batch_heads: int, block_q: int | None,
    block_kv: int | None, check_rows: int, seed: int | None,
) -> TimedProblem:  # fmt: skip
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((batch_heads, n, d), dtype=np.float32) for _ in range(3))
    call, arrays = SCALAR.prepare(q, k, v, causal=causal, block_q=block_q, block_kv=block_kv)
    tail = slice(max(0, n - check_rows), n)
    ref = attention_reference(q[:, tail], k, v, causal=causal)
    return TimedProblem(call, arrays, tail, ref, batch_heads * attention_flops(n, n, d, causal))


def measure(
    row: BenchRow,
    make_run: Callable[[], Run],
    check: Callable[[tuple[Any, Any]], dict[str, float]],
    bounds: Callable[[], dict[str, float]],
    device: Device,
    flops: int,
    *,
    warmup: int = 3,
    repeat: int = 20,
) -> BenchRow:
    """One method: bind it, run once and check; only if right, measure peak memory and time.

    Out of device memory gives an "out of memory" row; any other exception an
    "error: <one line>" row.
    """
    try:
        run = make_run()
        errors = check(run())
        status, detail = check_status(errors, bounds())
        row = replace(row, status=status, detail=detail, max_err=max(errors.values()))
        if status != OK:
            return row
        peak = device.peak_bytes(run)
        time_ms = device.time_ms(run, warmup, repeat)
        return replace(row, time_ms=time_ms, peak_bytes=peak, tflops=tflops(flops, time_ms))
    except device.oom:
        return replace(row, status=OUT_OF_MEMORY)
    except Exception as exc:
        return replace(row, status=error_line(exc))


def method_dtype(method: str) -> str:
    """The precision a method computes in (its inputs' type; the state is float32)."""
    dtypes = {sdpa_method(b): dt for b, dt in SDPA_BACKENDS}
    dtypes |= {m: p for p, m in TC_METHODS.items()}
    return dtypes.get(method, "float32")


def benchmark(
    n: int,
    d: int,
    *,
    device: Device | None = None,
    causal: bool = False,
    batch_heads: int = 1,
    block_q: int | None = None,
    block_kv: int | None = None,
    warmup: int = 3,
    repeat: int = 20,
    check_rows: int = 256,
    seed: int | None = None,
) -> list[BenchRow]:
    """Every method of ``device`` (default: the GPU) on one random (bh, n, d) problem.

    Never raises for a method's failure: each gets a row with its status.
    """
    dev: Device = gpu_device() if device is None else device
    base = BenchRow("", n, d, batch_heads, causal, status="not run")
    try:
        problem = make_problem(n, d, causal=causal, batch_heads=batch_heads, block_q=block_q,
                               block_kv=block_kv, check_rows=check_rows, seed=seed)  # fmt: skip
        on_device = tuple(dev.to_device(x) for x in problem.arrays)
        runners = dev.runners(problem.call, *on_device)
    except dev.oom:
        return [replace(base, method=m, status=OUT_OF_MEMORY) for m in (FLASH, NAIVE)]
    except Exception as exc:  # the host's MemoryError in the float64 check, a driver error
        return [replace(base, method=m, status=error_line(exc)) for m in (FLASH, NAIVE)]
    tail = problem.tail

    def check(out: tuple[Any, Any]) -> dict[str, float]:
        o, lse = out
        errors = {"o": max_error(dev.to_host(o[:, tail]), problem.ref[0])}
        if lse is not None:  # PyTorch's SDPA returns no lse
            errors["lse"] = max_error(dev.to_host(lse[:, tail]), problem.ref[1])
        return errors

    rows = []
    for method, make_run in runners.items():
        bounds = functools.partial(problem.bounds, method_dtype(method))
        rows.append(measure(replace(base, method=method), make_run, check, bounds, dev,
                            problem.flops, warmup=warmup, repeat=repeat))  # fmt: skip
        with contextlib.suppress(Exception):  # freeing a cache is best effort
            dev.free()
    return rows


def sweep(
    ns: Sequence[int],
    d: int | Sequence[int],
    *,
    progress: Callable[[int, int], None] | None = None,
    into: list[BenchRow] | None = None,
    **options: Any,
) -> list[BenchRow]:
    """``benchmark`` at each (d, n) (options passed on); ``progress(done, total)`` after each.
    Rows are appended to ``into`` (returned) as each size is measured, so a caller keeps
    what was measured when the sweep is interrupted."""
    ds = [d] if isinstance(d, int) else list(d)
    jobs = [(n, dd) for dd in ds for n in ns]
    rows: list[BenchRow] = [] if into is None else into
    for done, (n, dd) in enumerate(jobs, start=1):
        rows += benchmark(n, dd, **options)
        if progress is not None:
            progress(done, len(jobs))
    return rows
