"""The GPU sweep's own code, run for real on the CPU stand-in device (tests/gpu/standin.py).

Problem set-up, checking against the float64 reference, statuses, the out-of-memory path,
freeing between methods and sizes: everything but the device lines of ``CupyDevice``.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from flashviz.core.measurement import OK
from flashviz.core.precision import get_precision
from flashviz.gpu import device as gpu_device
from flashviz.gpu import sweep as gpu_sweep
from flashviz.gpu.device import FLASH, NAIVE, TC_METHODS, _peak_hook, flash_launch, kernel_inputs
from flashviz.gpu.launch_params import SCALAR, TENSOR_CORES
from flashviz.gpu.launcher import run_method
from flashviz.gpu.sweep import (
    ERROR_CHARS,
    benchmark,
    error_line,
    make_problem,
    method_dtype,
    naive_in,
    sweep,
)
from tests.gpu.standin import CpuDevice
from tests.support import assert_matches_reference

if shutil.which("g++") is None:
    pytest.skip("g++ (C++20) runs the kernel's CPU emulation", allow_module_level=True)

OPTIONS = {"warmup": 1, "repeat": 2, "check_rows": 32, "seed": 0}
pytestmark = pytest.mark.timeout(120)


def test_every_size_and_method_gets_a_checked_timed_row():
    device = CpuDevice()
    seen = []
    rows = sweep([64, 96], [16, 32], device=device, batch_heads=2, causal=True,
                     progress=lambda i, total: seen.append((i, total)), **OPTIONS)  # fmt: skip
    assert [(r.d, r.n, r.method) for r in rows] == [
        (d, n, m) for d in (16, 32) for n in (64, 96) for m in (FLASH, NAIVE)
    ]
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    for r in rows:
        assert r.status == OK, r
        assert r.time_ms > 0 and r.peak_bytes > 0 and r.tflops > 0 and r.max_err < 1e-5
    naive = {r.n: r.peak_bytes for r in rows if r.method == NAIVE and r.d == 16}
    assert naive[96] > naive[64] >= 2 * 4 * 2 * 64 * 64  # S and P, n x n each, per head
    assert device.freed == len(rows)  # caches released after every method (defect 6)


def test_out_of_memory_is_one_row_and_the_sweep_goes_on():
    # the budget holds the inputs and naive's S and P at n = 64 but not at n = 256
    device = CpuDevice(memory_bytes=2 * 4 * 128 * 128)
    rows = sweep([64, 256, 64], 16, device=device, **OPTIONS)
    status = [(r.n, r.method, r.status) for r in rows]
    assert status == [
        (64, FLASH, "ok"), (64, NAIVE, "ok"),
        (256, FLASH, "ok"), (256, NAIVE, "out of memory"),
        (64, FLASH, "ok"), (64, NAIVE, "ok"),
    ]  # fmt: skip
    oom = rows[3]
    assert oom.time_ms is None and oom.peak_bytes is None and oom.tflops is None


def test_inputs_that_do_not_fit_give_out_of_memory_rows():
    rows = benchmark(64, 16, device=CpuDevice(memory_bytes=1024), **OPTIONS)
    assert [(r.method, r.status) for r in rows] == [
        (FLASH, "out of memory"), (NAIVE, "out of memory")
    ]  # fmt: skip


def test_a_wrong_result_is_reported_and_not_timed():
    device = CpuDevice()
    right = device.runners  # the naive runner, perturbed after it ran

    def runners(call, q, k, v):
        found = right(call, q, k, v)
        naive = found[NAIVE]

        def off_by_a_bit():
            run = naive()
            return lambda: (run()[0] + np.float32(1e-3), run()[1])

        return {**found, NAIVE: off_by_a_bit}

    device.runners = runners
    rows = benchmark(64, 16, device=device, **OPTIONS)
    naive = rows[1]
    assert naive.status == "wrong result" and naive.detail.startswith("o error 1.00e-03 > ")
    assert naive.time_ms is None and naive.max_err == pytest.approx(1e-3, rel=1e-2)
    assert rows[0].status == "ok" and len(device.timed) == 1  # only flash was timed


def test_any_other_error_is_one_line_and_the_sweep_finishes():
    def cublas_failure():
        raise RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED\nsecond line of the message")

    device = CpuDevice(broken={NAIVE: cublas_failure})
    rows = sweep([64, 96], 16, device=device, **OPTIONS)
    assert [r.status for r in rows] == [
        "ok", "error: RuntimeError: CUBLAS_STATUS_EXECUTION_FAILED"
    ] * 2  # fmt: skip


def test_host_memory_error_in_the_float64_check_is_a_row(monkeypatch):
    def too_big(*args, **kwargs):
        raise MemoryError("Unable to allocate 8.00 GiB for an array")

    monkeypatch.setattr(gpu_sweep, "attention_reference", too_big)
    rows = benchmark(64, 16, device=CpuDevice(), **OPTIONS)
    expected = "error: MemoryError: Unable to allocate 8.00 GiB for an array"
    assert [r.status for r in rows] == [expected] * 2


def test_error_line_is_one_short_line():
    assert error_line(ValueError("")) == "error: ValueError"
    line = error_line(RuntimeError("x" * 500 + "\nnext"))
    assert len(line) == ERROR_CHARS and line.endswith("...") and "\n" not in line


def test_a_sweep_with_a_device_never_asks_for_availability(monkeypatch):
    """The driver queries of available() stay out of the benchmark (defect 3)."""

    def no(*args):
        raise AssertionError("available() called during the sweep")

    monkeypatch.setattr(gpu_device, "available", no)
    rows = benchmark(64, 16, device=CpuDevice(), **OPTIONS)
    assert all(r.status == "ok" for r in rows)


def test_the_timed_flash_callable_is_only_the_launch():
    """flash_launch's callable allocates the outputs and launches: nothing else (defect 3)."""
    calls = []

    class Recorder:
        def empty(self, shape, dtype):
            calls.append(("empty", shape))
            return np.empty(shape, dtype)

        def asarray(self, x):
            calls.append(("copy", x.shape))
            return x

    q = k = v = np.zeros((2, 8, 16), np.float32)
    call, _ = SCALAR.prepare(q, k, v)
    run = flash_launch(Recorder(), lambda *a: calls.append(("launch", a[:2])), call, q, k, v)
    assert calls == [("copy", x.shape) for x in call.arrays]  # the mask's arrays, untimed
    calls.clear()
    run()
    assert calls == [("empty", (2, 8, 16)), ("empty", (2, 8)), ("launch", (call.grid, call.block))]


def test_run_method_copies_back_in_the_callers_shape(make_qkv):
    q, k, v = make_qkv(40, 40, 16, lead=(2, 3), dtype=np.float32)
    call, arrays = SCALAR.prepare(q, k, v, causal=True)
    for method in (FLASH, NAIVE):
        o, lse = run_method(CpuDevice(), method, call, arrays)
        assert o.shape == q.shape and lse.shape == q.shape[:-1]
        assert_matches_reference(o, lse, q, k, v, causal=True)


def test_peak_hook_tracks_the_highest_point():
    cupy = pytest.importorskip("cupy")
    hook = _peak_hook(cupy)
    for event, size in (("malloc", 512), ("malloc", 256), ("free", 512), ("malloc", 128)):
        getattr(hook, f"{event}_postprocess")(mem_size=size)
    assert (hook.now, hook.peak) == (384, 768)


TC_ROWS = [TC_METHODS["float16"], TC_METHODS["bfloat16"]]


def test_tensor_core_rows_are_checked_against_naive_in_their_own_precision():
    """Each precision of the tensor-core kernel gets its row, run through its warp emulation
    on the inputs rounded to it, and is held to naive attention's error in that precision:
    more than float32's bound allows, so a row checked as float32 would be "wrong result"."""
    device = CpuDevice(tc=("float16", "bfloat16"))
    options = {**OPTIONS, "batch_heads": 2, "causal": True}
    rows = benchmark(96, 32, device=device, **options)
    assert [r.method for r in rows] == [FLASH, NAIVE, *TC_ROWS]
    assert all(r.status == OK and r.time_ms > 0 and r.tflops > 0 for r in rows), rows
    assert len(device.timed) == 4 and device.freed == 4
    problem = make_problem(96, 32, causal=True, batch_heads=2, block_q=None, block_kv=None,
                               check_rows=OPTIONS["check_rows"], seed=0)  # fmt: skip
    for row in rows[2:]:
        bounds = problem.bounds(method_dtype(row.method))
        assert max(problem.bounds("float32").values()) < row.max_err <= max(bounds.values())
    f16, bf16 = rows[2:]
    assert bf16.max_err > f16.max_err  # 8 bits of mantissa against 11


def test_tensor_core_inputs_are_the_bits_prepare_tc_call_gives(make_qkv):
    q, k, v = make_qkv(40, 24, 16, lead=(3,), dtype=np.float32)
    call, arrays = SCALAR.prepare(q, k, v, causal=True, causal_align="top_left", scale=0.7)
    for precision in ("float16", "bfloat16"):
        bits = kernel_inputs(CpuDevice(), arrays, TENSOR_CORES, precision)
        tc, want = TENSOR_CORES.prepare(q, k, v, precision=precision, causal=True,
                                       causal_align="top_left", scale=0.7)  # fmt: skip
        assert all(b.dtype == np.uint16 and (b == w).all() for b, w in zip(bits, want, strict=True))
        assert TENSOR_CORES.call_like(call, precision) == tc


def test_run_method_runs_the_tensor_core_kernel_in_the_callers_shape(make_qkv):
    q, k, v = make_qkv(40, 40, 16, lead=(2, 3), dtype=np.float32)
    call, arrays = SCALAR.prepare(q, k, v, causal=True)
    for precision, method in TC_METHODS.items():
        o, lse = run_method(CpuDevice(tc=(precision,)), method, call, arrays)
        assert o.shape == q.shape and lse.shape == q.shape[:-1]
        naive_o, naive_lse = naive_in(precision, arrays, slice(None), call)
        tol = 4 * get_precision(precision).eps  # a few units of the 16-bit type
        np.testing.assert_allclose(o.reshape(naive_o.shape), naive_o, rtol=0, atol=tol)
        np.testing.assert_allclose(lse.reshape(naive_lse.shape), naive_lse, rtol=0, atol=tol)
