"""Run kernels/flash_attention.cu (float32, scalar) and kernels/flash_attention_tc.cu (float16 /
bfloat16 on tensor cores) on a GPU with CuPy, and time them against naive attention.

The sweep's logic (problem set-up, checking against the float64 reference, statuses, rows)
is plain Python that works with any ``Device``; every line that needs a GPU is in the
adapter ``CupyDevice`` (compile and bind a launch, copy, time one callable, measure peak
memory, free memory) and in the PyTorch SDPA runner. The tests run the same sweep with a
CPU stand-in device (NumPy for naive, the CPU emulation of the kernel for flash) and call
each adapter on a machine without a driver, where it must fail with CuPy's CUDA error.

``benchmark`` checks every method against ``attention_reference`` before timing it (on
the last ``check_rows`` query rows, which a square problem's reference gives exactly),
times it with ``cupyx.profiler.benchmark`` (CUDA events, after warm-up; medians) and
measures the peak device memory it allocates (outputs included, inputs not). The
tensor-core kernel gets a row in float16 and one in bfloat16 (``TC_METHODS``): the same
float32 problem, its inputs rounded to the 16-bit type on the host (``tc_bits``), checked
against the same reference with the bound of naive attention on those rounded inputs. Each
(size, method) gets its own row and a status: "ok", "out of memory", "wrong result" or
"error: <one line>"; nothing a method raises (but Ctrl-C) stops the sweep.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from flashviz.core.accuracy import allowed_error, max_error
from flashviz.core.costs import attention_flops
from flashviz.core.masking import mask_offset
from flashviz.core.measurement import OK, OUT_OF_MEMORY, WRONG, BenchRow
from flashviz.core.reference import attention_reference, softmax_attention, softmax_rows
from flashviz.gpu.launch_params import (
    SCALAR,
    TENSOR_CORES,
    Kernel,
    KernelCall,
    KernelConfig,
    kernel_source,
)
from flashviz.gpu.nvrtc import KernelCompileError

FLASH, NAIVE = "flash (CUDA kernel)", "naive (CuPy)"
TC_METHODS = {p: f"flash (tensor cores, {p})" for p in TENSOR_CORES.precisions}
ERROR_CHARS = 160  # "error: <one line>" is cut here

# PyTorch SDPA backends (torch.nn.attention.SDPBackend names), each forced in its own row,
# with the dtype it runs in: FlashAttention-2 needs float16 or bfloat16.
SDPA_BACKENDS = (("MATH", "float32"), ("EFFICIENT_ATTENTION", "float32"),
                 ("FLASH_ATTENTION", "float16"))  # fmt: skip


class GpuUnavailableError(RuntimeError):
    """No usable GPU; the message says why (see ``available``)."""


def available() -> tuple[bool, str]:
    """(True, device description) or (False, why not), from ``flashviz.gpu.doctor``'s checks.

    True only when every layer up to "the flash kernel matches the reference" passed, so
    the app never offers a GPU that cannot run the kernel. Never raises.
    """
    from flashviz.gpu import doctor

    return doctor.gpu_ready(doctor.run_checks(compile_without_device=False))


def error_line(exc: BaseException) -> str:
    """'error: <Type>: <first line of the message>', cut to ERROR_CHARS."""
    text = str(exc).strip().splitlines()
    line = f"error: {type(exc).__name__}" + (f": {text[0]}" if text else "")
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 3] + "..."


def sdpa_method(backend: str) -> str:
    return f"PyTorch SDPA ({backend.split('_')[0]})"


def sdpa_shape(call: KernelCall) -> tuple[int, int, int, int]:
    """(batch, heads, n, d) = (1, bh, n, d): SDPA's fused kernels need 4-D inputs (3-D
    inputs fall back to the math backend)."""
    return (1, call.batch_heads, call.n_q, call.d)


def sdpa_plan(call: KernelCall) -> list[tuple[str, str, str]]:
    """(method, backend, dtype) rows for PyTorch SDPA; none when its causal mask differs.

    PyTorch's ``is_causal`` is top-left; flashviz's default is bottom-right; they agree
    only when n_q == n_k.
    """
    if call.causal and call.n_q != call.n_k:
        return []
    return [(sdpa_method(backend), backend, dtype) for backend, dtype in SDPA_BACKENDS]


# --- the device: CuPy (adapters) ----------------------------------------------------------

Run = Callable[[], tuple[Any, Any]]


class Device(Protocol):
    """What the sweep needs from a device; ``CupyDevice`` on a GPU, a CPU stand-in in tests."""

    oom: tuple[type[BaseException], ...]

    def to_device(self, x: np.ndarray) -> Any: ...
    def to_host(self, x: Any) -> np.ndarray: ...
    def runners(self, call: KernelCall, q: Any, k: Any, v: Any) -> dict[str, Callable[[], Run]]: ...
    def time_ms(self, run: Run, warmup: int, repeat: int) -> float: ...
    def peak_bytes(self, run: Run) -> int: ...
    def free(self) -> None: ...


@functools.cache
def _kernel(config: KernelConfig) -> Any:
    """The compiled kernel of one config (the scalar or the tensor-core kernel's); compiled
    once per config, on first use."""
    import cupy

    try:
        module = cupy.RawModule(code=kernel_source(config), options=("-std=c++17",))
        return module.get_function(config.kernel.entry)
    except cupy.cuda.compiler.CompileException as exc:
        raise KernelCompileError(str(exc)) from None


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
    return softmax_rows(s, v3, xp=xp)


def flash_launch(xp: Any, kernel: Any, call: KernelCall, q3: Any, k3: Any, v3: Any) -> Run:
    """The kernel's launch and nothing else (outputs allocated from the memory pool). Both
    kernels take (q, k, v, o, lse, scalars): float32 q, k, v for the scalar one, their raw
    16 bits (uint16) for the tensor-core one; o and lse are float32."""
    o_shape, lse_shape = (call.batch_heads, call.n_q, call.d), (call.batch_heads, call.n_q)
    args = (q3, k3, v3)

    def run() -> tuple[Any, Any]:
        o, lse = xp.empty(o_shape, dtype=np.float32), xp.empty(lse_shape, dtype=np.float32)
        kernel(call.grid, call.block, (*args, o, lse, *call.scalars))
        return o, lse

    return run


def kernel_inputs(
    device: Device, qkv: tuple[Any, ...], kernel: Kernel, precision: str
) -> tuple[Any, ...]:
    """Float32 q, k, v on ``device`` as ``kernel`` reads them in ``precision``: prepared on the
    host (``Kernel.inputs``, what ``Kernel.prepare`` does: for the tensor cores, rounded to
    their raw 16 bits), copied back. Untimed; CuPy has no bfloat16 to round with on the
    device."""
    return tuple(device.to_device(kernel.inputs(device.to_host(x), precision)) for x in qkv)


def _torch() -> Any | None:
    """PyTorch, when it is installed with CUDA; else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


@dataclass
class CupyDevice:
    """The GPU, through CuPy (and PyTorch for the SDPA rows, when present)."""

    sdpa: bool = True

    def __post_init__(self) -> None:
        import cupy

        self.cp = cupy
        self.torch = _torch() if self.sdpa else None
        self.oom = (cupy.cuda.memory.OutOfMemoryError,)
        if self.torch is not None:
            self.oom += (self.torch.cuda.OutOfMemoryError,)

    def to_device(self, x: np.ndarray) -> Any:
        return self.cp.asarray(x)

    def to_host(self, x: Any) -> np.ndarray:
        return self.cp.asnumpy(self.cp.asarray(x))  # a torch tensor via __cuda_array_interface__

    def runners(self, call: KernelCall, q: Any, k: Any, v: Any) -> dict[str, Callable[[], Run]]:
        """Method -> a factory that compiles and binds (untimed) and returns the launch."""
        cp = self.cp
        found: dict[str, Callable[[], Run]] = {
            FLASH: lambda: flash_launch(cp, _kernel(call.config), call, q, k, v),
            NAIVE: lambda: functools.partial(naive_arrays, cp, call, q, k, v),
        }
        for precision, method in TC_METHODS.items():
            found[method] = functools.partial(self._other, call, (q, k, v), TENSOR_CORES, precision)
        for method, backend, dtype in sdpa_plan(call) if self.torch is not None else ():
            found[method] = functools.partial(self._sdpa, call, (q, k, v), backend, dtype)
        return found

    def _other(self, call: KernelCall, qkv: tuple, kernel: Kernel, precision: str) -> Run:
        """``kernel`` on ``call``'s problem (``Kernel.call_like``: its default blocks);
        compiled first, then the inputs are prepared and copied."""
        other = kernel.call_like(call, precision)
        compiled = _kernel(other.config)
        return flash_launch(self.cp, compiled, other, *kernel_inputs(self, qkv, kernel, precision))

    def _sdpa(self, call: KernelCall, qkv: tuple, backend: str, dtype: str) -> Run:
        torch = self.torch
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.nn.functional import scaled_dot_product_attention

        q4, k4, v4 = (torch.as_tensor(x, device="cuda").to(getattr(torch, dtype))
                      .reshape(sdpa_shape(call)) for x in qkv)  # fmt: skip
        only = [getattr(SDPBackend, backend)]

        def run() -> tuple[Any, None]:
            # a new context each call: sdpa_kernel is a generator-based, single-use one
            with sdpa_kernel(only):
                o = scaled_dot_product_attention(
                    q4, k4, v4, is_causal=call.causal, scale=call.scale
                )
            return o.reshape(call.batch_heads, call.n_q, call.d), None

        run.torch = True  # type: ignore[attr-defined] - peak_bytes reads torch's counters
        return run

    def time_ms(self, run: Run, warmup: int, repeat: int) -> float:
        """Median of CUDA-event times (cupyx.profiler.benchmark) after ``warmup`` calls."""
        from cupyx.profiler import benchmark

        timing = benchmark(run, (), n_warmup=warmup, n_repeat=repeat, name="flashviz")
        return float(np.median(timing.gpu_times[0])) * 1e3

    def peak_bytes(self, run: Run) -> int:
        """Peak device bytes allocated while ``run`` runs (CuPy hook, or torch's stats)."""
        if self.torch is not None and getattr(run, "torch", False):
            torch = self.torch
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            run()
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - before
        with _peak_hook(self.cp) as hook:
            run()
            self.cp.cuda.Device().synchronize()
        return hook.peak

    def free(self) -> None:
        """Give cached blocks back: CuPy's pool, and PyTorch's cache (else naive CuPy runs
        out of memory sooner than it should)."""
        free_cached(self.cp, self.torch)


def free_cached(cp: Any, torch: Any | None) -> None:
    if torch is not None:
        torch.cuda.empty_cache()
    cp.get_default_memory_pool().free_all_blocks()


def _peak_hook(cp: Any) -> Any:
    """A CuPy memory hook that tracks the peak of bytes allocated while it is active."""

    class Peak(cp.cuda.MemoryHook):
        name = "flashviz_peak"

        def __init__(self) -> None:
            self.now = self.peak = 0

        def malloc_postprocess(self, **kw: Any) -> None:
            self.now += kw["mem_size"]
            self.peak = max(self.peak, self.now)

        def free_postprocess(self, **kw: Any) -> None:
            self.now -= kw["mem_size"]

    return Peak()


def gpu_device() -> CupyDevice:
    """The CuPy device, or GpuUnavailableError saying why there is none."""
    ok, reason = available()
    if not ok:
        raise GpuUnavailableError(reason)
    return CupyDevice()


# --- single runs ----------------------------------------------------------------------------


def run_method(
    device: Device, method: str, call: KernelCall, arrays: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Copy (bh, n, d) inputs to ``device``, run one method once, copy o and lse back."""
    o, lse = device.runners(call, *(device.to_device(x) for x in arrays))[method]()()
    return to_callers_shape(device, call, o, lse)


def to_callers_shape(device: Device, call: KernelCall, o: Any, lse: Any) -> tuple[np.ndarray, ...]:
    """o and lse copied to the host in the caller's shape: (..., n_q, d) and (..., n_q)."""
    o_h, lse_h = device.to_host(o), device.to_host(lse)
    return o_h.reshape(*call.lead, call.n_q, call.d), lse_h.reshape(*call.lead, call.n_q)


def run_flash(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    kernel: Kernel = SCALAR,
    precision: str | None = None,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    block_q: int | None = None,
    block_kv: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A CUDA kernel (``SCALAR``: float32; ``TENSOR_CORES``: inputs rounded to ``precision``,
    "float16" or "bfloat16", float32 state, sm_80 or newer) on (..., n, d) inputs; o and lse
    as float32 NumPy."""
    call, arrays = kernel.prepare(q, k, v, precision=precision, causal=causal,
                                  causal_align=causal_align, scale=scale, block_q=block_q,
                                  block_kv=block_kv)  # fmt: skip
    device = gpu_device()
    o, lse = flash_launch(device.cp, _kernel(call.config), call,
                          *(device.to_device(x) for x in arrays))()  # fmt: skip
    return to_callers_shape(device, call, o, lse)


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
    call, arrays = SCALAR.prepare(q, k, v, causal=causal, causal_align=causal_align, scale=scale)
    return run_method(gpu_device(), NAIVE, call, arrays)


# --- checking, measuring, reporting -------------------------------------------------------


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
    device = gpu_device() if device is None else device
    base = BenchRow("", n, d, batch_heads, causal, status="not run")
    try:
        problem = make_problem(n, d, causal=causal, batch_heads=batch_heads, block_q=block_q,
                               block_kv=block_kv, check_rows=check_rows, seed=seed)  # fmt: skip
        dev = tuple(device.to_device(x) for x in problem.arrays)
        runners = device.runners(problem.call, *dev)
    except device.oom:
        return [replace(base, method=m, status=OUT_OF_MEMORY) for m in (FLASH, NAIVE)]
    except Exception as exc:  # the host's MemoryError in the float64 check, a driver error
        return [replace(base, method=m, status=error_line(exc)) for m in (FLASH, NAIVE)]
    tail = problem.tail

    def check(out: tuple[Any, Any]) -> dict[str, float]:
        o, lse = out
        errors = {"o": max_error(device.to_host(o[:, tail]), problem.ref[0])}
        if lse is not None:  # PyTorch's SDPA returns no lse
            errors["lse"] = max_error(device.to_host(lse[:, tail]), problem.ref[1])
        return errors

    rows = []
    for method, make_run in runners.items():
        bounds = functools.partial(problem.bounds, method_dtype(method))
        rows.append(measure(replace(base, method=method), make_run, check, bounds, device,
                            problem.flops, warmup=warmup, repeat=repeat))  # fmt: skip
        with contextlib.suppress(Exception):  # freeing a cache is best effort
            device.free()
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
