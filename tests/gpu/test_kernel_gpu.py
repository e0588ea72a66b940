"""The GPU layer (device, single runs, sweep) without a GPU: availability reasons, checks,
result rows, the OOM path.

Only the launches themselves need a device; on a machine with one, the last test runs
the kernel and compares it with the reference.
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from flashviz.core.accuracy import max_error
from flashviz.gpu.device import (
    FLASH,
    NAIVE,
    SDPA_BACKENDS,
    TC_METHODS,
    _torch,
    available,
    naive_arrays,
    sdpa_method,
    sdpa_plan,
    sdpa_shape,
)
from flashviz.gpu.launch_params import SCALAR, TENSOR_CORES
from flashviz.gpu.launcher import run_flash, run_naive
from flashviz.gpu.sweep import (
    benchmark,
    check_status,
    error_bound,
    make_problem,
    method_dtype,
    tflops,
)
from tests.gpu.test_tc_kernel import CASES as TC_CASES
from tests.support import assert_matches_reference

HAS_GPU, WHY = available()


def test_available_never_raises_and_gives_a_reason():
    ok, reason = available()
    assert isinstance(ok, bool)
    if ok:  # the device, as the doctor's "GPU device" line gives it
        assert re.fullmatch(r".+ \(compute capability \d+\.\d+, \d+ GiB\)", reason), reason
    else:  # "<the first layer that is not ok>: <why>"; this machine: no driver
        layer, _, why = reason.partition(": ")
        assert layer in ("CuPy", "NVIDIA driver", "GPU device") and why, reason


def test_available_without_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy now raises ImportError
    ok, reason = available()
    assert not ok and reason.startswith("CuPy: cannot import cupy")


@pytest.mark.parametrize(
    ("driver", "count", "expected"),
    [
        (0, 1, "NVIDIA driver: no NVIDIA driver on this machine"),
        (11080, 1, "NVIDIA driver: the driver supports only CUDA 11.8"),
        (12040, 0, "GPU device: no CUDA device found"),
        (12040, RuntimeError("cudaErrorNoDevice"), "GPU device: RuntimeError: cudaErrorNoDevice"),
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
    ok, reason = available()
    assert not ok and reason.startswith(expected)


def test_ready_only_when_every_layer_is_ok():
    from flashviz.gpu.doctor import Check, gpu_ready

    device = Check("GPU device", "ok", "NVIDIA H100 (compute capability 9.0, 80 GiB)")
    fine = [Check("CuPy", "ok", "CuPy 14.2.0"), device, Check("flash kernel", "ok", "matches")]
    assert gpu_ready(fine) == (True, device.detail)
    wrong = [*fine[:2], Check("flash kernel", "failed", "o error 1e-2", "report it")]
    assert gpu_ready(wrong) == (False, "flash kernel: o error 1e-2")


def test_max_error():
    ref = np.array([1.0, -np.inf, 3.0])
    assert max_error(np.array([1.5, -np.inf, 3.0], np.float32), ref) == 0.5
    assert max_error(np.array([1.0, 0.0, 3.0]), ref) == np.inf  # -inf must match
    assert max_error(np.array([np.nan, -np.inf, 3.0]), ref) == np.inf


def test_error_bound_is_twice_naive_plus_a_floor_in_naives_precision():
    ref = np.array([2.0, -1.0])
    floor = 4 * np.finfo(np.float32).eps * 2.0
    assert error_bound(ref, ref.astype(np.float32)) == floor
    assert error_bound(ref, ref + 1e-6) == pytest.approx(2e-6 + 4 * np.finfo(float).eps * 2)
    half = error_bound(ref, ref.astype(np.float16))
    assert half == 4 * np.finfo(np.float16).eps * 2.0


def test_check_status():
    assert check_status({"o": 1e-7, "lse": 0.0}, {"o": 1e-6, "lse": 1e-6}) == ("ok", "")
    status, detail = check_status({"o": 1e-3, "lse": 0.0}, {"o": 1e-6, "lse": 1e-6})
    assert status == "wrong result" and detail.startswith("o error 1.00e-03")


def test_tflops():
    assert tflops(4 * 10**12, 1000.0) == pytest.approx(4.0)


def test_sdpa_gets_4d_inputs_and_each_backend_its_own_row():
    """Defect 4: 3-D inputs made SDPA fall back to its math backend."""
    q = np.zeros((3, 40, 16), np.float32)
    call, _ = SCALAR.prepare(q, q, q, causal=True)
    assert sdpa_shape(call) == (1, 3, 40, 16)
    plan = sdpa_plan(call)
    assert [(b, dt) for _, b, dt in plan] == [
        ("MATH", "float32"), ("EFFICIENT_ATTENTION", "float32"), ("FLASH_ATTENTION", "float16")
    ]  # fmt: skip
    methods = [m for m, _, _ in plan]
    assert methods == ["PyTorch SDPA (MATH)", "PyTorch SDPA (EFFICIENT)", "PyTorch SDPA (FLASH)"]
    assert [method_dtype(m) for m in methods] == ["float32", "float32", "float16"]
    assert method_dtype(FLASH) == method_dtype(NAIVE) == "float32"
    ragged, _ = SCALAR.prepare(q[:, :20], q, q, causal=True)  # is_causal is top-left: no rows
    assert sdpa_plan(ragged) == []


def test_tensor_core_rows_compute_in_their_precision():
    assert list(TC_METHODS) == ["float16", "bfloat16"]
    assert [method_dtype(m) for m in TC_METHODS.values()] == ["float16", "bfloat16"]
    problem = make_problem(64, 16, causal=False, batch_heads=2, block_q=None,
                               block_kv=None, check_rows=16, seed=1)  # fmt: skip
    assert problem.bounds("bfloat16")["o"] > 4 * problem.bounds("float16")["o"]


def test_float16_rows_are_checked_against_float16_naive_error():
    problem = make_problem(64, 16, causal=False, batch_heads=2, block_q=None,
                               block_kv=None, check_rows=16, seed=1)  # fmt: skip
    f32, f16 = problem.bounds("float32"), problem.bounds("float16")
    assert f16["o"] > 50 * f32["o"]  # float16's own error is ~2^13 times float32's


def test_naive_baseline_on_numpy_with_a_mask_and_grouped_heads(make_qkv):
    """The CuPy baseline's code with NumPy: K/V heads repeated for their query heads, the
    mask dense."""
    from flashviz.core.reference import attention_reference
    from flashviz.masks import and_masks, causal, document

    q, _, _ = make_qkv(40, 23, 16, lead=(4,), dtype=np.float32)
    _, k, v = make_qkv(40, 23, 16, lead=(2,), dtype=np.float32)
    mod = and_masks(causal(), document([0, 9, 30]))
    call, arrays = SCALAR.prepare(q, k, v, mask_mod=mod, scale=0.7)
    with np.errstate(divide="ignore"):
        o, lse = naive_arrays(np, call, *arrays)
    ref_o, ref_lse = attention_reference(*(x.astype(np.float64) for x in (q, k, v)),
                                         mask_mod=mod, scale=0.7)  # fmt: skip
    assert max_error(o.reshape(q.shape), ref_o) < 1e-5
    assert max_error(lse.reshape(q.shape[:-1]), ref_lse) < 1e-5


@pytest.mark.skipif(not HAS_GPU, reason=WHY)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["float32", "tensor cores"])
def test_on_a_gpu_the_kernels_run_every_mask_with_grouped_heads(rng, kind):
    """Real GPUs on the problems of tests/gpu/test_kernel_masks.py, held to the same rule."""
    from tests.gpu.test_kernel_masks import KERNELS, MASKS, N_K, N_Q, _inputs, check

    kernel, precision = KERNELS[kind]
    q, k, v = _inputs(rng, N_Q, N_K)
    for make_mask in MASKS.values():
        mod = make_mask(N_Q, N_K)
        o, lse = run_flash(q, k, v, kernel=kernel, precision=precision, block_q=32,
                           block_kv=32, mask_mod=mod)  # fmt: skip
        check(None, kernel, precision, q, k, v, block_q=32, block_kv=32, mask_mod=mod, o=o,
              lse=lse)  # fmt: skip


@pytest.mark.skipif(not HAS_GPU or _torch() is None, reason="needs a GPU and PyTorch")
def test_on_a_gpu_sdpa_rows_report_each_backend():
    rows = benchmark(512, 64, batch_heads=2, repeat=3)
    sdpa = [r for r in rows if r.method.startswith("PyTorch SDPA")]
    assert [r.method for r in sdpa] == [sdpa_method(b) for b, _ in SDPA_BACKENDS]
    assert all(r.status == "ok" for r in sdpa), sdpa  # MATH, EFFICIENT, FLASH on sm_80+


@pytest.mark.skipif(not HAS_GPU, reason=WHY)
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("causal", "align"), [(False, "bottom_right"), (True, "top_left")])
def test_on_a_gpu_the_kernel_matches_the_reference(make_qkv, causal, align):
    q, k, v = make_qkv(113, 203, 64, lead=(2,), dtype=np.float32)
    for run in (run_flash, run_naive):
        o, lse = run(q, k, v, causal=causal, causal_align=align)
        assert_matches_reference(o, lse, q, k, v, causal=causal, causal_align=align)
    rows = benchmark(256, 64, causal=causal, repeat=3)
    assert all(row.status == "ok" and row.time_ms > 0 for row in rows), rows


@pytest.mark.skipif(not HAS_GPU, reason=WHY)
@pytest.mark.timeout(120)
@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
@pytest.mark.parametrize("case", list(TC_CASES))
def test_on_a_gpu_the_tensor_core_kernel_matches_the_trace(rng, precision, case):
    """Real tensor cores on every problem the CPU emulation runs (tests/gpu/test_tc_kernel.py:
    uneven, both alignments, empty rows and blocks, several heads, head dims 64, 128 and a
    padded 100, each offered tile pair), held to the same rule."""
    from tests.gpu.test_tc_kernel import check_outputs

    n_q, n_k, d, lead, causal, align, (block_q, block_kv) = TC_CASES[case]
    q, k, v = (rng.standard_normal((*lead, n, d)) for n in (n_q, n_k, n_k))
    options = {"causal": causal, "causal_align": align, "block_q": block_q, "block_kv": block_kv}
    o, lse = run_flash(q, k, v, kernel=TENSOR_CORES, precision=precision, **options)
    check_outputs(o, lse, q, k, v, precision=precision, **options)


@pytest.mark.parametrize(
    ("causal", "align"), [(False, "bottom_right"), (True, "bottom_right"), (True, "top_left")]
)
def test_naive_baseline_on_numpy(make_qkv, causal, align):
    """The CuPy baseline's code, run with NumPy arrays: right, float32, empty rows 0."""
    q, k, v = make_qkv(40, 23, 16, lead=(3,), dtype=np.float32)
    call, arrays = SCALAR.prepare(q, k, v, causal=causal, causal_align=align, scale=0.7)
    with np.errstate(divide="ignore"):
        o, lse = naive_arrays(np, call, *arrays)
    assert o.dtype == lse.dtype == np.float32
    o, lse = o.reshape(q.shape), lse.reshape(q.shape[:-1])
    assert_matches_reference(o, lse, q, k, v, causal=causal, causal_align=align, scale=0.7)
