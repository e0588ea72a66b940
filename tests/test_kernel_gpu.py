"""flashviz.gpu without a GPU: availability reasons, checks, result rows, the OOM path.

Only the launches themselves need a device; on a machine with one, the last test runs
the kernel and compares it with the reference.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from accuracy import assert_matches_reference

from flashviz import gpu
from flashviz.launch import prepare_call

HAS_GPU, WHY = gpu.available()


def test_available_never_raises_and_gives_a_reason():
    ok, reason = gpu.available()
    assert isinstance(ok, bool) and reason
    if not ok:  # this machine: CuPy is installed, there is no driver
        assert "driver" in reason or "device" in reason or "CuPy" in reason


def test_available_without_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy now raises ImportError
    ok, reason = gpu.available()
    assert not ok and "CuPy is not installed" in reason


@pytest.mark.parametrize(
    ("driver", "count", "expected"),
    [
        (0, 1, "no CUDA driver"),
        (12040, 0, "no CUDA device found"),
        (12040, RuntimeError("cudaErrorInsufficientDriver"), "not usable"),
    ],
)
def test_available_reasons(monkeypatch, driver, count, expected):
    cupy = pytest.importorskip("cupy")

    def device_count() -> int:
        if isinstance(count, Exception):
            raise count
        return count

    monkeypatch.setattr(cupy.cuda.runtime, "driverGetVersion", lambda: driver)
    monkeypatch.setattr(cupy.cuda.runtime, "getDeviceCount", device_count)
    ok, reason = gpu.available()
    assert not ok and expected in reason


@pytest.mark.skipif(HAS_GPU, reason="a GPU is present")
def test_runs_refuse_with_the_reason_after_validating(make_qkv):
    q, k, v = make_qkv(8, 8, 16, dtype=np.float32)
    with pytest.raises(gpu.GpuUnavailableError, match=WHY.split(":")[0]):
        gpu.run_flash(q, k, v)
    with pytest.raises(gpu.GpuUnavailableError):
        gpu.run_naive(q, k, v, causal=True)
    with pytest.raises(gpu.GpuUnavailableError):
        gpu.benchmark(64, 16)
    with pytest.raises(ValueError, match="block_kv"):  # bad arguments are reported first
        gpu.run_flash(q, k, v, block_kv=24)


def test_max_error():
    ref = np.array([1.0, -np.inf, 3.0])
    assert gpu.max_error(np.array([1.5, -np.inf, 3.0], np.float32), ref) == 0.5
    assert gpu.max_error(np.array([1.0, 0.0, 3.0]), ref) == np.inf  # -inf must match
    assert gpu.max_error(np.array([np.nan, -np.inf, 3.0]), ref) == np.inf


def test_error_bound_is_twice_naive_plus_a_floor():
    ref = np.array([2.0, -1.0])
    floor = 4 * np.finfo(np.float32).eps * 2.0
    assert gpu.error_bound(ref, ref) == floor
    assert gpu.error_bound(ref, ref + 1e-6) == pytest.approx(2e-6 + floor)


def test_check_status():
    assert gpu.check_status({"o": 1e-7, "lse": 0.0}, {"o": 1e-6, "lse": 1e-6}) == "ok"
    status = gpu.check_status({"o": 1e-3, "lse": 0.0}, {"o": 1e-6, "lse": 1e-6})
    assert status.startswith("wrong result: o error 1.00e-03")


ROW = gpu.BenchRow(gpu.NAIVE, n=4096, d=64, batch_heads=1, causal=False, status="not run")


def test_tflops():
    assert gpu.tflops(4 * 10**12, 1000.0) == pytest.approx(4.0)


def _measure(run, errors, *, oom=(MemoryError,)):
    return gpu.measure(
        ROW, run, lambda _out: errors, {"o": 1e-6}, lambda _run: (2.0, 1234), 8 * 10**9, oom
    )


def test_measure_times_a_right_result():
    row = _measure(lambda: "out", {"o": 1e-7})
    assert (row.status, row.time_ms, row.peak_bytes, row.max_err) == ("ok", 2.0, 1234, 1e-7)
    assert row.tflops == pytest.approx(4.0)


def test_measure_does_not_time_a_wrong_result():
    row = _measure(lambda: "out", {"o": 1.0})
    assert row.status.startswith("wrong result") and row.max_err == 1.0
    assert row.time_ms is None and row.tflops is None


def test_out_of_memory_is_a_row_not_a_crash():
    cupy = pytest.importorskip("cupy")

    def run():
        raise cupy.cuda.memory.OutOfMemoryError(2**34, 2**30)

    row = _measure(run, {"o": 0.0}, oom=(cupy.cuda.memory.OutOfMemoryError,))
    assert row.status == "naive: out of memory at n = 4096"
    assert row.time_ms is None and row.peak_bytes is None
    assert gpu.out_of_memory_row(ROW).status == row.status
    with pytest.raises(ZeroDivisionError):  # other errors are not swallowed
        _measure(lambda: 1 / 0, {"o": 0.0})


def test_sweep_calls_benchmark_per_n_and_reports_progress(monkeypatch):
    calls, seen = [], []

    def fake_benchmark(n, d, **options):
        calls.append((n, d, options))
        return [gpu.BenchRow(gpu.FLASH, n, d, 1, False, "ok")]

    monkeypatch.setattr(gpu, "benchmark", fake_benchmark)
    rows = gpu.sweep([128, 256], 64, causal=True, progress=lambda i, total: seen.append((i, total)))
    assert [r.n for r in rows] == [128, 256]
    assert calls == [(128, 64, {"causal": True}), (256, 64, {"causal": True})]
    assert seen == [(1, 2), (2, 2)]


@pytest.mark.skipif(not HAS_GPU, reason=WHY)
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("causal", "align"), [(False, "bottom_right"), (True, "top_left")])
def test_on_a_gpu_the_kernel_matches_the_reference(make_qkv, causal, align):
    q, k, v = make_qkv(113, 203, 64, lead=(2,), dtype=np.float32)
    for run in (gpu.run_flash, gpu.run_naive):
        o, lse = run(q, k, v, causal=causal, causal_align=align)
        assert_matches_reference(o, lse, q, k, v, causal=causal, causal_align=align)
    rows = gpu.benchmark(256, 64, causal=causal, repeat=3)
    assert all(row.status == "ok" and row.time_ms > 0 for row in rows), rows


@pytest.mark.parametrize(
    ("causal", "align"), [(False, "bottom_right"), (True, "bottom_right"), (True, "top_left")]
)
def test_naive_baseline_on_numpy(make_qkv, causal, align):
    """The CuPy baseline's code, run with NumPy arrays: right, float32, empty rows 0."""
    q, k, v = make_qkv(40, 23, 16, lead=(3,), dtype=np.float32)
    call, arrays = prepare_call(q, k, v, causal=causal, causal_align=align, scale=0.7)
    with np.errstate(divide="ignore"):
        o, lse = gpu.naive_arrays(np, call, *arrays)
    assert o.dtype == lse.dtype == np.float32
    o, lse = o.reshape(q.shape), lse.reshape(q.shape[:-1])
    assert_matches_reference(o, lse, q, k, v, causal=causal, causal_align=align, scale=0.7)
