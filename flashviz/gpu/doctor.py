"""Is this machine ready for the GPU timings? One line per layer, with the exact fix.

    python -m flashviz.gpu.doctor [--json]

Layers, bottom up: the Python packages (CuPy, NVRTC, cuBLAS, the CUDA headers CuPy
compiles with, and their versions), the NVIDIA driver and its CUDA version, the device
(name, compute capability, memory), NVRTC compiling the kernel (for this device, or for
every architecture flashviz builds when there is none), a trivial kernel launch, a tiny
cuBLAS matmul, and the flash kernel against the float64 reference on a small problem.
Each is "ok", "missing", "failed" or "skipped" (a layer below it is not ok).
``flashviz.gpu.device.available`` is ``gpu_ready(run_checks())``: the app offers the GPU only
when every layer passed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

OK, MISSING, FAILED, SKIPPED = "ok", "missing", "failed", "skipped"
LAYERS = ("CuPy", "NVRTC", "cuBLAS", "CUDA headers", "NVIDIA driver", "GPU device",
          "NVRTC compile", "kernel launch", "cuBLAS matmul", "flash kernel")  # fmt: skip
INSTALL = "pip install -r requirements-gpu.txt"
MIN_CUPY = (14, 0)  # finds NVRTC (Windows DLL included), cuBLAS and headers with cuda-pathfinder
MIN_DRIVER = 12000  # CUDA 12.0 (driver R525): CuPy for CUDA 12 loads cubins from any 12.x
FIXES = {
    "driver": "install the NVIDIA driver (R525 or newer, for CUDA 12) on a machine with an "
    "NVIDIA GPU; in a container, run it with the GPU passed through (docker --gpus all)",
    "device": "check that the GPU is visible (nvidia-smi) and that CUDA_VISIBLE_DEVICES "
    "does not hide it",
}


@dataclass(frozen=True)
class Check:
    """One layer's result; ``fix`` says exactly what to do when it is not ok."""

    layer: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> fix: {self.fix}" if self.fix and self.status != OK else ""
        return f"{self.layer:<14} {self.status:<8} {self.detail}{fix}"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _where(path: str) -> str:
    """'pip wheel: site-packages/...' for a path inside site-packages, else 'system: path'."""
    parts = Path(path).parts
    if "site-packages" in parts:
        return "pip wheel: " + "/".join(parts[parts.index("site-packages") :])
    return f"system: {path}"


def check_cupy() -> tuple[Check, Any]:
    try:
        import cupy
    except Exception as exc:
        return Check("CuPy", MISSING, f"cannot import cupy ({exc})", INSTALL), None
    version = tuple(int(x) for x in re.findall(r"\d+", cupy.__version__)[:2])
    if version < MIN_CUPY:
        fix = f"pip install -U 'cupy-cuda12x>={MIN_CUPY[0]}' ({INSTALL})"
        return Check("CuPy", FAILED, f"CuPy {cupy.__version__} is older than 14", fix), cupy
    return Check("CuPy", OK, f"CuPy {cupy.__version__}"), cupy


def check_nvrtc() -> Check:
    from flashviz.gpu.nvrtc import load_nvrtc, nvrtc_path

    try:
        major, minor = load_nvrtc().getVersion()
    except Exception as exc:
        return Check("NVRTC", MISSING, str(exc), INSTALL)
    path = nvrtc_path()
    where = f" ({_where(path)})" if path else ""
    return Check("NVRTC", OK, f"NVRTC {major}.{minor}{where}")


def check_cublas() -> Check:
    try:
        from cupy_backends.cuda.libs import cublas  # noqa: F401 - loads libcublas(Lt)
    except Exception as exc:
        return Check("cuBLAS", MISSING, f"{type(exc).__name__}: {exc}", INSTALL)
    version = _version("nvidia-cublas-cu12")
    return Check("cuBLAS", OK, f"cuBLAS {version or '(system)'} loads")


def cupy_header_dir() -> str | None:
    """The directory of cuda_runtime.h among the -I options CuPy compiles every kernel with."""
    from cupy._core import core

    for option in core.assemble_cupy_compiler_options(()):
        if option.startswith("-I") and (Path(option[2:]) / "cuda_runtime.h").is_file():
            return option[2:]
    return None


def header_version(include: str) -> tuple[int, int]:
    """(major, minor) of CUDART_VERSION in cuda_runtime_api.h (e.g. 12090 -> (12, 9))."""
    text = (Path(include) / "cuda_runtime_api.h").read_text()
    found = re.search(r"#define\s+CUDART_VERSION\s+(\d+)", text)
    if found is None:
        raise ValueError(f"no CUDART_VERSION in {include}/cuda_runtime_api.h")
    value = int(found.group(1))
    return value // 1000, value % 1000 // 10


def compile_with_cupy_headers(arch: str) -> None:
    """Compile a kernel that includes CuPy's float16 header and cuda_runtime.h with NVRTC
    and exactly CuPy's compiler options: what every CuPy elementwise compile needs."""
    from cupy._core import core

    from flashviz.gpu.nvrtc import compile_source

    source = (
        "#include <cuda_runtime.h>\n#include <cupy/float16.cuh>\n"
        'extern "C" __global__ void scale(const float* s, float k, float* out, int n) {\n'
        "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n  if (i < n) out[i] = s[i] * k;\n}\n"
    )
    compile_source(source, arch, kernel="scale", options=core.assemble_cupy_compiler_options(()))


def check_headers() -> Check:
    fix = f"{INSTALL} (brings nvidia-cuda-runtime-cu12 at the NVRTC wheel's version)"
    try:
        include = cupy_header_dir()
    except Exception as exc:
        return Check("CUDA headers", MISSING, f"{type(exc).__name__}: {exc}", fix)
    if include is None:
        return Check("CUDA headers", MISSING, "CuPy finds no cuda_runtime.h", fix)
    from flashviz.gpu.nvrtc import load_nvrtc

    try:
        version = header_version(include)
        nvrtc = tuple(load_nvrtc().getVersion())
        if version != nvrtc:
            detail = f"CUDA {version[0]}.{version[1]} headers in {include}, NVRTC is {nvrtc}"
            return Check("CUDA headers", FAILED, detail, fix)
        compile_with_cupy_headers("sm_80")
    except Exception as exc:
        return Check("CUDA headers", FAILED, f"{type(exc).__name__}: {exc}", fix)
    detail = f"CUDA {version[0]}.{version[1]} ({_where(include)})"
    return Check("CUDA headers", OK, detail)


def check_driver(cupy: Any) -> Check:
    try:
        version = cupy.cuda.runtime.driverGetVersion()
    except Exception as exc:
        return Check("NVIDIA driver", FAILED, f"{type(exc).__name__}: {exc}", FIXES["driver"])
    if version == 0:
        detail = "no NVIDIA driver on this machine (libcuda not found)"
        return Check("NVIDIA driver", MISSING, detail, FIXES["driver"])
    cuda = f"CUDA {version // 1000}.{version % 1000 // 10}"
    if version < MIN_DRIVER:
        return Check("NVIDIA driver", FAILED, f"the driver supports only {cuda}", FIXES["driver"])
    return Check("NVIDIA driver", OK, f"driver for {cuda}")


def check_device(cupy: Any) -> tuple[Check, str | None]:
    """The device's line and its architecture ("sm_86")."""
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count == 0:
            return Check("GPU device", MISSING, "no CUDA device found", FIXES["device"]), None
        props = cupy.cuda.runtime.getDeviceProperties(0)
    except Exception as exc:
        return Check("GPU device", FAILED, f"{type(exc).__name__}: {exc}", FIXES["device"]), None
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    memory = props["totalGlobalMem"] / 2**30
    cc = f"{props['major']}.{props['minor']}"
    detail = f"{name} (compute capability {cc}, {memory:.0f} GiB)"
    return Check("GPU device", OK, detail), f"sm_{props['major']}{props['minor']}"


def check_compile(archs: Sequence[str]) -> Check:
    """Both kernels: the float32 one for every arch, the tensor-core one where mma.sync's
    bfloat16 shapes exist (sm_80 and up: ``TENSOR_CORES.min_arch``)."""
    from flashviz.gpu.launch_params import SCALAR, TENSOR_CORES
    from flashviz.gpu.nvrtc import compile_kernel, kernel_archs

    config = SCALAR.config(64, *SCALAR.fitting_blocks(64)[0])
    tc = TENSOR_CORES.config(64, *TENSOR_CORES.fitting_blocks(64)[0], "bfloat16")
    tc_archs = kernel_archs(TENSOR_CORES, archs)
    try:
        infos = [compile_kernel(config, arch).ptxas for arch in archs]
        tc_infos = [compile_kernel(tc, arch).ptxas for arch in tc_archs]
    except Exception as exc:
        return Check("NVRTC compile", FAILED, f"{type(exc).__name__}: {exc}", INSTALL)
    registers = ", ".join(f"{a} {i.registers} registers" for a, i in zip(archs, infos, strict=True))
    detail = f"the kernel compiles for {registers}"
    if tc_archs:
        tc_registers = ", ".join(
            f"{a} {i.registers}" for a, i in zip(tc_archs, tc_infos, strict=True)
        )
        detail += f"; the tensor-core kernel for {tc_registers}"
    else:
        detail += "; no tensor-core kernel (it needs sm_80 or newer)"
    return Check("NVRTC compile", OK, detail)


def _device_check(layer: str, fn: Callable[[], str], fix: str) -> Check:
    try:
        return Check(layer, OK, fn())
    except Exception as exc:
        return Check(layer, FAILED, f"{type(exc).__name__}: {exc}", fix)


def launch_trivial(cupy: Any) -> str:
    kernel = cupy.RawKernel(
        'extern "C" __global__ void fill(int* x) { x[threadIdx.x] = threadIdx.x; }', "fill"
    )
    x = cupy.zeros(32, dtype=np.int32)
    kernel((1,), (32,), (x,))
    if not np.array_equal(cupy.asnumpy(x), np.arange(32)):
        raise RuntimeError(f"a 32-thread kernel wrote {cupy.asnumpy(x)}")
    return "a 32-thread kernel ran and wrote its thread ids"


def tiny_matmul(cupy: Any) -> str:
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    got = cupy.asnumpy(cupy.matmul(cupy.asarray(a), cupy.asarray(a.T)))
    if not np.allclose(got, a @ a.T):
        raise RuntimeError(f"4 x 4 matmul gave {got}")
    return "a 4 x 4 float32 matmul matches NumPy"


def flash_matches() -> str:
    from flashviz.core.accuracy import max_error
    from flashviz.gpu.device import FLASH, CupyDevice
    from flashviz.gpu.launcher import run_method
    from flashviz.gpu.sweep import TimedProblem, make_problem

    problem: TimedProblem = make_problem(67, 64, causal=True, batch_heads=2, block_q=None,
                                    block_kv=None, check_rows=67, seed=0)  # fmt: skip
    o, lse = run_method(CupyDevice(sdpa=False), FLASH, problem.call, problem.arrays)
    errors = (max_error(o, problem.ref[0]), max_error(lse, problem.ref[1]))
    bounds = problem.bounds("float32")
    if errors[0] > bounds["o"] or errors[1] > bounds["lse"]:
        raise RuntimeError(f"o error {errors[0]:.2e}, lse error {errors[1]:.2e} over {bounds}")
    return f"2 x 67 x 64, causal: o error {errors[0]:.1e}, lse error {errors[1]:.1e}"


def run_checks(*, compile_without_device: bool = True) -> list[Check]:
    """Every layer, bottom up; layers above a failed one are "skipped"."""
    from flashviz.gpu.nvrtc import ARCHS

    cupy_check, cupy = check_cupy()
    checks = [cupy_check, check_nvrtc(), check_cublas(), check_headers()]
    if cupy is None:
        return [*checks, *skipped(LAYERS[4:], "CuPy")]
    checks.append(check_driver(cupy))
    arch = None
    if checks[-1].status == OK:
        device, arch = check_device(cupy)
        checks.append(device)
    else:
        checks += skipped(("GPU device",), "NVIDIA driver")
    packages_ok = all(c.status == OK for c in checks[:4])
    if arch is not None or compile_without_device:
        checks.append(check_compile([arch] if arch else ARCHS))
    else:
        checks += skipped(("NVRTC compile",), "GPU device")
    if arch is None or not packages_ok or checks[-1].status != OK:
        below = next(c.layer for c in checks if c.status != OK)
        return [*checks, *skipped(("kernel launch", "cuBLAS matmul", "flash kernel"), below)]
    checks.append(_device_check("kernel launch", lambda: launch_trivial(cupy), FIXES["driver"]))
    checks.append(_device_check("cuBLAS matmul", lambda: tiny_matmul(cupy), INSTALL))
    fix = "report it with this output: the kernel is wrong on this GPU"
    checks.append(_device_check("flash kernel", flash_matches, fix))
    return checks


def skipped(layers: Sequence[str], below: str) -> list[Check]:
    return [Check(layer, SKIPPED, f"needs {below}") for layer in layers]


def gpu_ready(checks: Sequence[Check]) -> tuple[bool, str]:
    """(True, the device) when every layer is ok, else (False, the first problem)."""
    bad = next((c for c in checks if c.status != OK), None)
    if bad is not None:
        return False, f"{bad.layer}: {bad.detail}"
    return True, next(c.detail for c in checks if c.layer == "GPU device")


def main(argv: Sequence[str] | None = None) -> int:
    """The checklist as lines, or with ``--json`` as one JSON list (for the app's child process)."""
    as_json = "--json" in (sys.argv[1:] if argv is None else argv)
    checks = run_checks()
    if as_json:
        print(json.dumps([dataclasses.asdict(c) for c in checks]))
        return 0
    for check in checks:
        print(check.line())
    ok, reason = gpu_ready(checks)
    print(f"\nGPU timings: {'ready on ' + reason if ok else 'not available: ' + reason}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
