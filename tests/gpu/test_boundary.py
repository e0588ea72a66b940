"""Each device adapter, called on a machine with no NVIDIA driver, must get as far as the
first call that needs a device and fail there with CuPy's CUDA error, never with a Python
error before it (CuPy reads ``func.__name__`` before it creates its events, for one).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from flashviz.gpu import doctor
from flashviz.gpu.device import (
    FLASH,
    NAIVE,
    TC_METHODS,
    CupyDevice,
    GpuUnavailableError,
    free_cached,
)
from flashviz.gpu.launch_params import SCALAR, TENSOR_CORES
from flashviz.gpu.launcher import run_flash, run_naive
from flashviz.gpu.sweep import benchmark

cupy = pytest.importorskip("cupy")
from cupy_backends.cuda.api.driver import CUDADriverError  # noqa: E402
from cupy_backends.cuda.api.runtime import CUDARuntimeError  # noqa: E402

CUDA_ERRORS = (CUDARuntimeError, CUDADriverError)
NO_DRIVER = "^cudaErrorInsufficientDriver: "  # the status CuPy's runtime gives without libcuda
NO_GPU_REASON = "^NVIDIA driver: no NVIDIA driver on this machine"  # doctor's first bad layer
HAS_DRIVER = cupy.cuda.runtime.driverGetVersion() != 0
pytestmark = pytest.mark.skipif(HAS_DRIVER, reason="this machine has an NVIDIA driver")

Q = np.zeros((2, 8, 16), np.float32)
CALL, ARRAYS = SCALAR.prepare(Q, Q, Q)


@pytest.fixture
def device() -> CupyDevice:
    return CupyDevice()  # made without touching the device


def test_time_ms_gets_to_the_device_with_a_partial(device):
    """Defect 1: cupyx.profiler.benchmark needs name= for a callable without __name__."""
    from cupyx.profiler import benchmark

    with pytest.raises(AttributeError, match="__name__"):  # the trap: read before any event
        benchmark(functools.partial(np.zeros, 3), ())
    with pytest.raises(CUDA_ERRORS, match=NO_DRIVER):
        device.time_ms(functools.partial(np.zeros, 3), 1, 1)


def test_copies_get_to_the_device(device):
    with pytest.raises(CUDA_ERRORS, match=NO_DRIVER):
        device.to_device(ARRAYS[0])
    with pytest.raises(CUDA_ERRORS, match=NO_DRIVER):
        device.to_host(ARRAYS[0])


def test_flash_runner_compiles_on_the_device(device):
    make_flash = device.runners(CALL, *ARRAYS)[FLASH]
    with pytest.raises(CUDA_ERRORS, match=NO_DRIVER) as failure:
        make_flash()
    # it fails in the compile (RawModule asks for the device), not in a call before it
    assert "compiled_kernel" in [entry.name for entry in failure.traceback], failure.traceback


def test_tensor_core_runners_compile_on_the_device(device):
    """The tensor-core rows get as far as compiling their kernel (before copying inputs)."""
    found = device.runners(CALL, *ARRAYS)
    for method in TC_METHODS.values():
        with pytest.raises(CUDA_ERRORS, match=NO_DRIVER) as failure:
            found[method]()
        assert "compiled_kernel" in [entry.name for entry in failure.traceback], failure.traceback


def test_peak_bytes_gets_to_the_device(device):
    with pytest.raises(CUDA_ERRORS, match=NO_DRIVER):
        device.peak_bytes(functools.partial(cupy.empty, 4))


def test_free_gets_to_the_device(device):
    with pytest.raises(CUDA_ERRORS, match=NO_DRIVER):
        device.free()


def test_free_releases_torch_cache_too():
    """Defect 6: PyTorch's cached blocks are released between sizes."""
    released = []

    class TorchCuda:
        @staticmethod
        def empty_cache() -> None:
            released.append(True)

    with pytest.raises(CUDA_ERRORS, match=NO_DRIVER):  # then CuPy's pool, which needs the device
        free_cached(cupy, type("Torch", (), {"cuda": TorchCuda}))
    assert released == [True]


def test_benchmark_on_this_machine_gives_error_rows_not_a_traceback(device):
    rows = benchmark(64, 16, device=device, repeat=1, check_rows=8, seed=0)
    assert [r.method for r in rows] == [FLASH, NAIVE]
    assert all(r.status.startswith("error: CUDARuntimeError: cudaErrorInsufficientDriver")
               for r in rows), rows  # fmt: skip


def test_doctor_device_checks_get_to_the_device():
    for check in (lambda: doctor.launch_trivial(cupy), lambda: doctor.tiny_matmul(cupy),
                  doctor.flash_matches):  # fmt: skip
        with pytest.raises(CUDA_ERRORS, match=NO_DRIVER):
            check()


def test_runs_refuse_with_the_reason_after_validating(make_qkv):
    q, k, v = make_qkv(8, 8, 16, dtype=np.float32)
    with pytest.raises(GpuUnavailableError, match=NO_GPU_REASON):
        run_flash(q, k, v)
    with pytest.raises(GpuUnavailableError, match=NO_GPU_REASON):
        run_naive(q, k, v, causal=True)
    with pytest.raises(GpuUnavailableError, match=NO_GPU_REASON):
        benchmark(64, 16)
    with pytest.raises(ValueError, match="block_kv"):  # bad arguments are reported first
        run_flash(q, k, v, block_kv=24)
    with pytest.raises(GpuUnavailableError, match=NO_GPU_REASON):
        run_flash(q, k, v, kernel=TENSOR_CORES, precision="bfloat16", causal=True)
    with pytest.raises(ValueError, match="precision"):
        run_flash(q, k, v, kernel=TENSOR_CORES, precision="float32")
    with pytest.raises(ValueError, match="block_kv"):
        run_flash(q, k, v, kernel=TENSOR_CORES, block_kv=24)


def test_masked_grouped_runs_refuse_with_the_reason_after_validating(make_qkv):
    """A built-in mask with grouped K/V heads gets as far as the device; a mask_mod the
    kernels cannot evaluate is refused before it, with what to run instead."""
    from flashviz.gpu.launch_params import UnsupportedMaskError
    from flashviz.masks import sliding_window

    q, _, _ = make_qkv(40, 50, 16, lead=(4,), dtype=np.float32)
    _, k, v = make_qkv(40, 50, 16, lead=(2,), dtype=np.float32)
    for kernel, precision in ((SCALAR, None), (TENSOR_CORES, "float16")):
        with pytest.raises(GpuUnavailableError, match=NO_GPU_REASON):
            run_flash(q, k, v, kernel=kernel, precision=precision, mask_mod=sliding_window(8))
        with pytest.raises(UnsupportedMaskError, match=r"flashviz\.flash_attention"):
            run_flash(q, k, v, kernel=kernel, precision=precision,
                      mask_mod=lambda b, h, q_idx, kv_idx: q_idx % 2 == kv_idx % 2)  # fmt: skip
    with pytest.raises(GpuUnavailableError, match=NO_GPU_REASON):
        run_naive(q, k, v, mask_mod=sliding_window(8))
