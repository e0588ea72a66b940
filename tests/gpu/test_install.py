"""The GPU install brings what CuPy needs beside the driver (defect 2), from pip wheels.

On a machine with only the NVIDIA driver, CuPy needs cuBLAS for ``cupy.matmul`` and, with
NVRTC >= 12.2, the CUDA runtime headers for every compile. This machine has a system
toolkit (nvcc 13 under /usr/local/cuda) that users do not have: the headers must come
from site-packages, not from it.
"""

from __future__ import annotations

import ctypes
import os
import site
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from flashviz.gpu import doctor, nvrtc
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
    assert reqs["cupy-cuda12x"].specifier.contains("14.1")
    assert not reqs["cupy-cuda12x"].specifier.contains("14.0.1")  # finds no cuda_runtime.h
    assert not reqs["cupy-cuda12x"].specifier.contains("13.6")  # 13 does not find the DLL
    toolkit = reqs["cuda-toolkit"]  # NVIDIA's metapackage: one CUDA version for all three
    assert {"cublas", "cudart", "nvrtc"} <= toolkit.extras
    assert toolkit.specifier.contains("12.9.2") and not toolkit.specifier.contains("13.0")


def site_dirs() -> list[Path]:
    return [Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]]


def in_site_packages(path: str | Path) -> bool:
    return any(Path(path).resolve().is_relative_to(s) for s in site_dirs())


@pytest.mark.skipif(sys.platform != "linux", reason="finds libcublas.so.12 by its soname")
def test_cublas_imports():
    """The import loads the wheel's cuBLAS (not a system one), and it answers its version."""
    from cupy_backends.cuda.libs import cublas  # noqa: F401 - loads libcublasLt.so.12

    lib = ctypes.CDLL("libcublas.so.12", mode=os.RTLD_NOLOAD)  # OSError: it was not loaded
    version = []
    for prop in range(3):  # cublasGetProperty: MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
        value = ctypes.c_int()
        assert lib.cublasGetProperty(prop, ctypes.byref(value)) == 0  # CUBLAS_STATUS_SUCCESS
        version.append(value.value)
    wheel = metadata.version("nvidia-cublas-cu12")  # e.g. 12.9.2.10 for cuBLAS 12.9.2
    assert version == [int(x) for x in wheel.split(".")[:3]], (version, wheel)
    loaded = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
              if line.endswith("/libcublas.so.12")}  # fmt: skip
    assert loaded and all(in_site_packages(path) for path in loaded), loaded


def test_cupy_compiles_with_the_pip_headers_at_the_nvrtc_version(monkeypatch):
    include = doctor.cupy_header_dir()
    assert include is not None, "CuPy finds no cuda_runtime.h"
    assert in_site_packages(include), include
    assert doctor.header_version(include) == tuple(load_nvrtc().getVersion())
    compiles = []
    compile_source = nvrtc.compile_source

    def recorded(source: str, arch: str, **options) -> nvrtc.Compiled:
        compiles.append((source, options, compile_source(source, arch, **options)))
        return compiles[-1][-1]

    monkeypatch.setattr(nvrtc, "compile_source", recorded)
    doctor.compile_with_cupy_headers("sm_80")  # cuda_runtime.h and CuPy's float16.cuh
    assert len(compiles) == 1, "compile_with_cupy_headers compiled nothing"
    ((source, options, compiled),) = compiles
    assert "#include <cuda_runtime.h>" in source and "#include <cupy/float16.cuh>" in source
    assert f"-I{include}" in options["options"]  # CuPy's own options: the pip headers
    assert compiled.arch == "sm_80" and compiled.cubin[:4] == b"\x7fELF"
    assert "Compiling entry function 'scale' for 'sm_80'" in compiled.log
    assert compiled.ptxas.registers > 0


def test_doctor_packages_are_ok_here():
    checks = {c.layer: c for c in doctor.run_checks(compile_without_device=False)}
    for layer in ("CuPy", "NVRTC", "cuBLAS", "CUDA headers"):
        assert checks[layer].status == doctor.OK, checks[layer]
    assert "pip wheel" in checks["CUDA headers"].detail
