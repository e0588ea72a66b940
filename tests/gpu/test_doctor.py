"""``python -m flashviz.gpu.doctor``: one line per layer, ok / missing / failed / skipped, fixes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flashviz.gpu import doctor
from flashviz.gpu.launch_params import TENSOR_CORES
from flashviz.gpu.nvrtc import ARCHS, kernel_archs

cupy = pytest.importorskip("cupy")
HAS_DRIVER = cupy.cuda.runtime.driverGetVersion() != 0


@pytest.mark.skipif(HAS_DRIVER, reason="this machine has an NVIDIA driver")
def test_on_this_machine_one_clear_line_says_there_is_no_driver():
    run = subprocess.run([sys.executable, "-m", "flashviz.gpu.doctor"], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == 1 and "Traceback" not in run.stderr
    lines = run.stdout.splitlines()
    layers = [line.split("  ")[0].strip() for line in lines[: len(doctor.LAYERS)]]
    assert layers == list(doctor.LAYERS)
    status = {layer: line[15:].split()[0] for layer, line in zip(layers, lines, strict=False)}
    assert status == {
        "CuPy": "ok", "NVRTC": "ok", "cuBLAS": "ok", "CUDA headers": "ok",
        "NVIDIA driver": "missing", "GPU device": "skipped", "NVRTC compile": "ok",
        "kernel launch": "skipped", "cuBLAS matmul": "skipped", "flash kernel": "skipped",
    }  # fmt: skip
    (driver,) = [line for line in lines if line.startswith("NVIDIA driver")]
    assert (
        "no NVIDIA driver on this machine" in driver and "fix: install the NVIDIA driver" in driver
    )
    (compiled,) = [line for line in lines if line.startswith("NVRTC compile")]
    assert all(f"{arch} " in compiled for arch in ARCHS)  # every architecture flashviz builds
    tensor_cores = compiled.split("the tensor-core kernel for ")[1]
    assert [part.split()[0] for part in tensor_cores.split(", ")] == list(
        kernel_archs(TENSOR_CORES)
    )
    no_driver = "NVIDIA driver: no NVIDIA driver on this machine (libcuda not found)"
    assert lines[-1] == f"GPU timings: not available: {no_driver}"


def test_without_cupy_every_layer_is_listed_with_the_install_fix(monkeypatch):
    for name in ("cupy", "cupy_backends.cuda.libs.cublas", "cupy._core"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    checks = doctor.run_checks()
    assert [c.layer for c in checks] == list(doctor.LAYERS)
    assert checks[0].status == doctor.MISSING and checks[0].fix == doctor.INSTALL
    assert all(c.status == doctor.SKIPPED for c in checks[4:])
    assert "pip install -r requirements-gpu.txt" in checks[0].line()


def test_old_cupy_is_reported_with_the_upgrade(monkeypatch):
    monkeypatch.setattr(cupy, "__version__", "13.6.0")
    check, _ = doctor.check_cupy()
    assert check.status == doctor.FAILED and "cupy-cuda12x>=14" in check.fix


def test_headers_of_another_cuda_version_fail(monkeypatch, tmp_path):
    (tmp_path / "cuda_runtime.h").write_text("")
    (tmp_path / "cuda_runtime_api.h").write_text("#define CUDART_VERSION 13000\n")
    monkeypatch.setattr(doctor, "cupy_header_dir", lambda: str(tmp_path))
    check = doctor.check_headers()
    assert check.status == doctor.FAILED and "CUDA 13.0 headers" in check.detail
    assert "nvidia-cuda-runtime-cu12" in check.fix


def test_ok_lines_carry_no_fix():
    line = doctor.Check("CuPy", doctor.OK, "CuPy 14.2.0", fix="never shown").line()
    assert line == "CuPy           ok       CuPy 14.2.0"


def test_a_turing_gpu_compiles_only_the_float32_kernel():
    check = doctor.check_compile(["sm_75"])
    assert check.status == doctor.OK
    assert (
        "sm_75 " in check.detail
        and "no tensor-core kernel (it needs sm_80 or newer)" in check.detail
    )


def test_an_ampere_gpu_compiles_both_kernels():
    check = doctor.check_compile(["sm_86"])
    assert check.status == doctor.OK
    assert check.detail.startswith("the kernel compiles for sm_86 ")
    assert "; the tensor-core kernel for sm_86 " in check.detail
