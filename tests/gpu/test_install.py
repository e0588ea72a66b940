"""The GPU install brings what CuPy needs beside the driver (defect 2), from pip wheels.

On a machine with only the NVIDIA driver, CuPy needs cuBLAS for ``cupy.matmul`` and, with
NVRTC >= 12.2, the CUDA runtime headers for every compile. This machine has a system
toolkit (nvcc 13 under /usr/local/cuda) that users do not have: the headers must come
from site-packages, not from it.
"""

from __future__ import annotations

import site
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from flashviz.gpu import doctor
from flashviz.gpu.nvrtc import load_nvrtc

ROOT = Path(__file__).resolve().parents[2]
if sys.platform not in ("linux", "win32"):
    pytest.skip(f"no CUDA wheels for {sys.platform}", allow_module_level=True)


def requirements() -> dict[str, Requirement]:
    lines = (ROOT / "requirements-gpu.txt").read_text().splitlines()
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {r.name: r for r in reqs}


def test_requirements_bring_cublas_and_the_runtime_headers_with_nvrtc():
    reqs = requirements()
    assert reqs["cupy-cuda12x"].specifier.contains("14.0")
    assert not reqs["cupy-cuda12x"].specifier.contains("13.6")  # 13 does not find the DLL
    toolkit = reqs["cuda-toolkit"]  # NVIDIA's metapackage: one CUDA version for all three
    assert {"cublas", "cudart", "nvrtc"} <= toolkit.extras
    assert toolkit.specifier.contains("12.9.2") and not toolkit.specifier.contains("13.0")


def test_cublas_imports():
    from cupy_backends.cuda.libs import cublas  # noqa: F401 - loads libcublasLt.so.12


def test_cupy_compiles_with_the_pip_headers_at_the_nvrtc_version():
    include = doctor.cupy_header_dir()
    assert include is not None, "CuPy finds no cuda_runtime.h"
    site_dirs = [Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]]
    assert any(Path(include).resolve().is_relative_to(s) for s in site_dirs), include
    assert doctor.header_version(include) == tuple(load_nvrtc().getVersion())
    doctor.compile_with_cupy_headers("sm_80")  # cuda_runtime.h and CuPy's float16.cuh


def test_doctor_packages_are_ok_here():
    checks = {c.layer: c for c in doctor.run_checks(compile_without_device=False)}
    for layer in ("CuPy", "NVRTC", "cuBLAS", "CUDA headers"):
        assert checks[layer].status == doctor.OK, checks[layer]
    assert "pip wheel" in checks["CUDA headers"].detail
