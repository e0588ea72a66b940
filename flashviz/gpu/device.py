"""The GPU as a device: compile and bind a kernel launch, copy, time, measure memory, free.

Every line that needs a GPU is in the adapter ``CupyDevice`` (with CuPy; PyTorch for the
SDPA rows, when present). The single runs (``flashviz.gpu.launcher``) and the benchmark
(``flashviz.gpu.sweep``) are plain Python that works with any ``Device``: the tests give
them a CPU stand-in (NumPy for naive, the CPU emulation of the kernels for flash) and call
each adapter on a machine without a driver, where it must fail with CuPy's CUDA error.
The method names (``FLASH``, ``NAIVE``, ``TC_METHODS``, the SDPA rows) are the rows of a
sweep and the keys of ``Device.runners``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from flashviz.core.reference import softmax_rows
from flashviz.gpu.launch_params import (
    TENSOR_CORES,
    Kernel,
    KernelCall,
    KernelConfig,
    kernel_source,
)
from flashviz.gpu.nvrtc import KernelCompileError

FLASH, NAIVE = "flash (CUDA kernel)", "naive (CuPy)"


TC_METHODS = {p: f"flash (tensor cores, {p})" for p in TENSOR_CORES.precisions}


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


def sdpa_method(backend: str) -> str:
    return f"PyTorch SDPA ({backend.split('_')[0]})"


def sdpa_shape(call: KernelCall) -> tuple[int, int, int, int]:
    """(batch, heads, n, d) = (1, bh, n, d): SDPA's fused kernels need 4-D inputs (3-D
    inputs fall back to the math backend)."""
    return (1, call.batch_heads, call.n_q, call.d)


def sdpa_plan(call: KernelCall) -> list[tuple[str, str, str]]:
    """(method, backend, dtype) rows for PyTorch SDPA; none when its causal mask differs,
    or under a FlexAttention mask or grouped K/V heads (SDPA's rows run neither).

    PyTorch's ``is_causal`` is top-left; flashviz's default is bottom-right; they agree
    only when n_q == n_k.
    """
    if call.mask.mod is not None or call.group > 1 or (call.causal and call.n_q != call.n_k):
        return []
    return [(sdpa_method(backend), backend, dtype) for backend, dtype in SDPA_BACKENDS]


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
def compiled_kernel(config: KernelConfig) -> Any:
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
    matrices FlashAttention never stores. Rows with no key give o = 0, lse = -inf. Grouped
    K/V heads are repeated for their query heads; the mask is the call's, dense.
    """
    f32 = np.float32
    if call.group > 1:
        k3, v3 = xp.repeat(k3, call.group, axis=0), xp.repeat(v3, call.group, axis=0)
    s = xp.matmul(q3, k3.transpose(0, 2, 1)) * f32(call.scale)  # (bh, n_q, n_k)
    seen = call.mask.dense(call.n_q, call.n_k)
    if seen is not None:
        s = xp.where(xp.asarray(seen), s, f32(-np.inf))
    return softmax_rows(s, v3, xp=xp)


def flash_launch(xp: Any, kernel: Any, call: KernelCall, q3: Any, k3: Any, v3: Any) -> Run:
    """The kernel's launch and nothing else (outputs allocated from the memory pool). Both
    kernels take (q, k, v, o, lse, the mask's arrays, scalars): float32 q, k, v for the
    scalar one, their raw 16 bits (uint16) for the tensor-core one; o and lse are float32;
    the mask's int32 arrays are copied to the device here, before the launch is timed."""
    o_shape, lse_shape = (call.batch_heads, call.n_q, call.d), (call.batch_heads, call.n_q)
    args = (q3, k3, v3)
    lists = tuple(xp.asarray(x) for x in call.arrays)

    def run() -> tuple[Any, Any]:
        o, lse = xp.empty(o_shape, dtype=np.float32), xp.empty(lse_shape, dtype=np.float32)
        kernel(call.grid, call.block, (*args, o, lse, *lists, *call.scalars))
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
        self.oom: tuple[type[BaseException], ...] = (cupy.cuda.memory.OutOfMemoryError,)
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
            FLASH: lambda: flash_launch(cp, compiled_kernel(call.config), call, q, k, v),
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
        compiled = compiled_kernel(other.config)
        return flash_launch(self.cp, compiled, other, *kernel_inputs(self, qkv, kernel, precision))

    def _sdpa(self, call: KernelCall, qkv: tuple, backend: str, dtype: str) -> Run:
        torch = self.torch
        assert torch is not None, "the SDPA rows exist only with PyTorch"
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

        run.torch = True  # type: ignore[attr-defined]  # peak_bytes reads torch's counters
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
