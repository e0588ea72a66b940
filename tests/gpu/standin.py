"""A CPU stand-in for ``flashviz.gpu.device.Device``: the sweep's own code runs on it for real.

Flash runs the exact kernel source through the CPU emulation (tests/gpu/cuda_emulation), naive
runs ``naive_arrays`` with NumPy, and with ``tc`` set the tensor-core kernel runs in those
precisions through the warp emulation (off by default: it is the slowest row);
times are ``perf_counter`` medians and peaks come from tracemalloc. ``memory_bytes`` gives
the stand-in a device memory: an allocation beyond it raises ``StandInOutOfMemoryError``,
the stand-in's out-of-memory error, as CuPy's pool raises ``OutOfMemoryError``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flashviz.gpu.device import FLASH, NAIVE, TC_METHODS, Run, kernel_inputs, naive_arrays
from flashviz.gpu.launch_params import TENSOR_CORES, KernelCall
from flashviz.perf import cpu_bench
from tests.gpu.cuda_emulation import emu


class StandInOutOfMemoryError(MemoryError):
    """The stand-in device's memory is full."""


@dataclass
class CpuDevice:
    memory_bytes: int | None = None
    oom: tuple[type[BaseException], ...] = (StandInOutOfMemoryError,)
    freed: int = 0
    timed: list[str] = field(default_factory=list)
    broken: dict[str, Callable[[], Any]] = field(default_factory=dict)  # method -> replacement
    max_repeat: int | None = None  # caps warm-up and timed runs (the emulation is slow)
    max_warmup: int | None = None  # caps warm-up runs alone (a CPU run has nothing to warm)
    tc: tuple[str, ...] = ()  # precisions of the tensor-core kernel's rows (CupyDevice: both)

    def allocate(self, nbytes: int) -> None:
        if self.memory_bytes is not None and nbytes > self.memory_bytes:
            raise StandInOutOfMemoryError(f"out of memory allocating {nbytes:,} bytes")

    def to_device(self, x: np.ndarray) -> np.ndarray:
        self.allocate(x.nbytes)
        return x.copy()

    def to_host(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def runners(self, call: KernelCall, q: Any, k: Any, v: Any) -> dict[str, Callable[[], Any]]:
        def flash() -> Run:
            lib = emu.build(emu.Build(call.config))
            return lambda: emu.run(lib, call, (q, k, v))

        def naive() -> Run:
            def run() -> tuple[Any, Any]:
                self.allocate(2 * 4 * call.batch_heads * call.n_q * call.n_k)  # S and P
                with np.errstate(divide="ignore"):
                    return naive_arrays(np, call, q, k, v)

            return run

        def tensor_cores(precision: str) -> Callable[[], Run]:
            def make() -> Run:
                tc = TENSOR_CORES.call_like(call, precision)
                lib = emu.build(emu.Build(tc.config))
                bits = kernel_inputs(self, (q, k, v), TENSOR_CORES, precision)
                return lambda: emu.run(lib, tc, bits)

            return make

        found = {FLASH: flash, NAIVE: naive}
        found |= {TC_METHODS[p]: tensor_cores(p) for p in self.tc}
        return {m: self.broken.get(m, f) for m, f in found.items()}

    def time_ms(self, run: Run, warmup: int, repeat: int) -> float:
        if self.max_repeat is not None:
            warmup, repeat = min(warmup, self.max_repeat), min(repeat, self.max_repeat)
        if self.max_warmup is not None:
            warmup = min(warmup, self.max_warmup)
        for _ in range(warmup):
            run()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        self.timed.append(getattr(run, "__name__", "run"))
        return statistics.median(times) * 1e3

    def peak_bytes(self, run: Run) -> int:
        return cpu_bench.peak_bytes(run)

    def free(self) -> None:
        self.freed += 1
