"""Run kernels/flash_attention.cu on a GPU with CuPy, and time it against naive attention.

Everything here works without a GPU except the calls that reach one: ``available`` says
why there is none; the launch geometry and arguments come from ``flashviz.launch`` (tested
on the CPU); result rows are plain dataclasses. CuPy and PyTorch are imported lazily and
PyTorch is optional (an extra "PyTorch SDPA" row when it has CUDA).

``benchmark`` checks every method against ``attention_reference`` before timing it (on the
last ``check_rows`` query rows, which a square problem's reference gives exactly), times it
with ``cupyx.profiler.benchmark`` (CUDA events, after warm-up; medians), and measures the
peak device memory it allocates (outputs included, inputs not). An out-of-memory error
becomes a row with status "out of memory at n = ...", not a crash.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from flashviz.accuracy import allowed_error, max_error
from flashviz.costs import attention_flops
from flashviz.launch import KERNEL_NAME, KernelCall, KernelConfig, kernel_source, prepare_call
from flashviz.nvrtc import KernelCompileError, load_nvrtc
from flashviz.reference import attention_reference, naive_attention

FLASH, NAIVE, TORCH = "flash (CUDA kernel)", "naive (CuPy)", "PyTorch SDPA"


class GpuUnavailableError(RuntimeError):
    """No usable GPU; the message says why (see ``available``)."""


@dataclass(frozen=True)
class BenchRow:
    """One method at one size. ``status`` is "ok" or says why there are no numbers."""

    method: str
    n: int
    d: int
    batch_heads: int
    causal: bool
    status: str
    time_ms: float | None = None
    peak_bytes: int | None = None
    tflops: float | None = None  # useful FLOPs (flashviz.costs) / median time
    max_err: float | None = None  # vs the float64 reference, o and lse


def available() -> tuple[bool, str]:
    """(True, device description) or (False, why not). Never raises."""
    try:
        import cupy
    except Exception as exc:
        return False, f"CuPy is not installed (pip install -r requirements-gpu.txt): {exc}"
    try:
        if cupy.cuda.runtime.driverGetVersion() == 0:
            return False, "no CUDA driver: this machine has no NVIDIA driver (libcuda)"
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"the CUDA driver is not usable: {exc}"
    if count == 0:
        return False, "no CUDA device found"
    try:
        load_nvrtc()
        props = cupy.cuda.runtime.getDeviceProperties(0)
    except Exception as exc:
        return False, str(exc)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    memory = props["totalGlobalMem"] / 2**30
    return True, f"{name} (compute capability {props['major']}.{props['minor']}, {memory:.0f} GiB)"


def _cupy() -> Any:
    ok, reason = available()
    if not ok:
        raise GpuUnavailableError(reason)
    import cupy

    return cupy


@functools.cache
def _kernel(config: KernelConfig) -> Any:
    """The compiled kernel of one config; compiled once per config, on first use."""
    cupy = _cupy()
    try:
        module = cupy.RawModule(code=kernel_source(config), options=("-std=c++17",))
        return module.get_function(KERNEL_NAME)
    except cupy.cuda.compiler.CompileException as exc:
        raise KernelCompileError(str(exc)) from None


def _flash_device(call: KernelCall, q3: Any, k3: Any, v3: Any) -> tuple[Any, Any]:
    cupy = _cupy()
    o = cupy.empty((call.batch_heads, call.n_q, call.d), dtype=cupy.float32)
    lse = cupy.empty((call.batch_heads, call.n_q), dtype=cupy.float32)
    _kernel(call.config)(call.grid, call.block, (q3, k3, v3, o, lse, *call.scalars))
    return o, lse


def naive_arrays(xp: Any, call: KernelCall, q3: Any, k3: Any, v3: Any) -> tuple[Any, Any]:
    """Naive attention with array module ``xp`` (CuPy here; NumPy in the tests), float32.

    S = scale Q K^T in full, masked; softmax over whole rows; O = P V: the n_q x n_k
    matrices FlashAttention never stores. Rows with no key give o = 0, lse = -inf.
    """
    f32 = np.float32
    s = xp.matmul(q3, k3.transpose(0, 2, 1)) * f32(call.scale)  # (bh, n_q, n_k)
    if call.causal:
        r = xp.arange(call.n_q, dtype=np.int32)[:, None]
        c = xp.arange(call.n_k, dtype=np.int32)[None, :]
        s = xp.where(c <= r + call.causal_offset, s, f32(-np.inf))
    m = s.max(axis=-1, keepdims=True)
    p = xp.exp(s - xp.where(xp.isneginf(m), f32(0), m))  # rows with no key: subtract 0
    del s
    l = p.sum(axis=-1, keepdims=True)
    o = xp.matmul(p, v3) / xp.where(l == 0, f32(1), l)
    return o, (m + xp.log(l))[..., 0]


def _naive_device(call: KernelCall, q3: Any, k3: Any, v3: Any) -> tuple[Any, Any]:
    return naive_arrays(_cupy(), call, q3, k3, v3)


def _torch_device(call: KernelCall, q3: Any, k3: Any, v3: Any) -> tuple[Any, None]:
    import torch
    from torch.nn.functional import scaled_dot_product_attention

    qt, kt, vt = (torch.as_tensor(x, device="cuda") for x in (q3, k3, v3))
    # is_causal is top-left (c <= r), the same as bottom-right when n_q == n_k
    return scaled_dot_product_attention(qt, kt, vt, is_causal=call.causal, scale=call.scale), None


def _host(call: KernelCall, o: Any, lse: Any) -> tuple[np.ndarray, np.ndarray]:
    cupy = _cupy()
    o_h, lse_h = cupy.asnumpy(o), cupy.asnumpy(lse)
    return o_h.reshape(*call.lead, call.n_q, call.d), lse_h.reshape(*call.lead, call.n_q)


def _run(
    device_fn: Callable[..., tuple[Any, Any]],
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Prepare the call (shapes, scale, mask), run ``device_fn`` on the GPU, copy back."""
    call, arrays = prepare_call(q, k, v, **options)
    cupy = _cupy()
    return _host(call, *device_fn(call, *(cupy.asarray(x) for x in arrays)))


def run_flash(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    block_q: int | None = None,
    block_kv: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The CUDA kernel on (..., n, d) inputs (computed in float32); o and lse as NumPy."""
    return _run(_flash_device, q, k, v, causal=causal, causal_align=causal_align,
                scale=scale, block_q=block_q, block_kv=block_kv)  # fmt: skip


def run_naive(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Naive attention with CuPy on the same inputs, in float32; o and lse as NumPy."""
    return _run(_naive_device, q, k, v, causal=causal, causal_align=causal_align, scale=scale)


# --- checking, measuring, reporting -------------------------------------------------------


def error_bound(ref: np.ndarray, naive32: np.ndarray) -> float:
    """Allowed error: twice float32 naive attention's own error, plus a few ulps."""
    return allowed_error(ref, naive32, float(np.finfo(np.float32).eps))


def check_status(errors: dict[str, float], bounds: dict[str, float]) -> str:
    """'ok', or which output is wrong and by how much."""
    bad = [f"{k} error {errors[k]:.2e} > {bounds[k]:.2e}" for k in errors if errors[k] > bounds[k]]
    return "ok" if not bad else "wrong result: " + "; ".join(bad)


def out_of_memory_row(row: BenchRow) -> BenchRow:
    """The row of a method that ran out of device memory at this size."""
    return replace(row, status=f"{row.method.split()[0]}: out of memory at n = {row.n}")


def tflops(flops: int, time_ms: float) -> float:
    return flops / (time_ms * 1e-3) / 1e12


def _peak_hook() -> Any:
    """A CuPy memory hook that tracks the peak of bytes allocated while it is active."""
    import cupy

    class Peak(cupy.cuda.MemoryHook):
        name = "flashviz_peak"

        def __init__(self) -> None:
            self.now = self.peak = 0

        def malloc_postprocess(self, **kw: Any) -> None:
            self.now += kw["mem_size"]
            self.peak = max(self.peak, self.now)

        def free_postprocess(self, **kw: Any) -> None:
            self.now -= kw["mem_size"]

    return Peak()


def _measure_peak(method: str, fn: Callable[[], object]) -> int:
    cupy = _cupy()
    if method == TORCH:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    with _peak_hook() as hook:
        fn()
        cupy.cuda.Device().synchronize()
    return hook.peak


def _torch_usable() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _oom_errors() -> tuple[type[BaseException], ...]:
    import cupy

    errors: list[type[BaseException]] = [cupy.cuda.memory.OutOfMemoryError]
    if _torch_usable():
        import torch

        errors.append(torch.cuda.OutOfMemoryError)
    return tuple(errors)


def benchmark(
    n: int,
    d: int,
    *,
    causal: bool = False,
    batch_heads: int = 1,
    block_q: int | None = None,
    block_kv: int | None = None,
    warmup: int = 3,
    repeat: int = 20,
    check_rows: int = 256,
    seed: int | None = None,
) -> list[BenchRow]:
    """Flash kernel, naive CuPy and (if present) PyTorch SDPA on one random (bh, n, d) problem."""
    cupy = _cupy()
    from cupyx.profiler import benchmark as cuda_benchmark

    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((batch_heads, n, d), dtype=np.float32) for _ in range(3))
    call, arrays = prepare_call(q, k, v, causal=causal, block_q=block_q, block_kv=block_kv)
    dev = tuple(cupy.asarray(x) for x in arrays)
    tail = slice(max(0, n - check_rows), n)  # last rows: a bottom-right problem of their own
    sub = (q[:, tail], k, v)
    o_ref, lse_ref = attention_reference(*sub, causal=causal)
    o_32, lse_32 = naive_attention(*sub, causal=causal)
    bounds = {"o": error_bound(o_ref, o_32), "lse": error_bound(lse_ref, lse_32)}
    flops = batch_heads * attention_flops(n, n, d, causal)

    def check(out: tuple[Any, Any]) -> dict[str, float]:
        o, lse = out
        errors = {"o": max_error(cupy.asnumpy(cupy.asarray(o)[:, tail]), o_ref)}
        if lse is not None:  # PyTorch's SDPA returns no lse
            errors["lse"] = max_error(cupy.asnumpy(lse[:, tail]), lse_ref)
        return errors

    def time_and_peak(method: str, run: Callable[[], object]) -> tuple[float, int]:
        peak = _measure_peak(method, run)
        timing = cuda_benchmark(run, (), n_warmup=warmup, n_repeat=repeat)
        return float(np.median(timing.gpu_times[0])) * 1e3, peak

    methods = {FLASH: _flash_device, NAIVE: _naive_device}
    if _torch_usable():
        methods[TORCH] = _torch_device
    rows = []
    for method, fn in methods.items():
        try:
            rows.append(
                measure(
                    BenchRow(method, n, d, batch_heads, causal, status="not run"),
                    functools.partial(fn, call, *dev),
                    check,
                    bounds,
                    functools.partial(time_and_peak, method),
                    flops,
                    _oom_errors(),
                )
            )
        finally:
            cupy.get_default_memory_pool().free_all_blocks()
    return rows


def measure(
    row: BenchRow,
    run: Callable[[], Any],
    check: Callable[[Any], dict[str, float]],
    bounds: dict[str, float],
    time_and_peak: Callable[[Callable[[], Any]], tuple[float, int]],
    flops: int,
    oom: tuple[type[BaseException], ...],
) -> BenchRow:
    """One method: run once and check (errors vs ``bounds``); only if right, time it.

    An exception of a type in ``oom`` (out of device memory) gives an out-of-memory row.
    """
    try:
        errors = check(run())
        row = replace(row, status=check_status(errors, bounds), max_err=max(errors.values()))
        if row.status != "ok":
            return row
        time_ms, peak = time_and_peak(run)
        return replace(row, time_ms=time_ms, peak_bytes=peak, tflops=tflops(flops, time_ms))
    except oom:
        return out_of_memory_row(row)


def sweep(
    ns: Sequence[int],
    d: int,
    *,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> list[BenchRow]:
    """``benchmark`` at each n (options passed on); ``progress(done, total)`` after each."""
    rows: list[BenchRow] = []
    for done, n in enumerate(ns, start=1):
        rows += benchmark(n, d, **options)
        if progress is not None:
            progress(done, len(ns))
    return rows
