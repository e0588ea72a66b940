"""Compile CUDA source with NVRTC, no GPU needed, and read ptxas's resource report.

CuPy's ``RawModule`` asks for a device before compiling; NVRTC itself does not. This
module calls NVRTC at the low level (CuPy's binding ``cupy_backends.cuda.libs.nvrtc``),
compiles to a cubin for a named architecture with ``-Xptxas=-v`` and parses the report
(registers, spills, shared memory). Compile errors raise ``KernelCompileError`` whose
message is NVRTC's log: ``kernels/flash_attention.cu(LINE): error: ...``.

NVRTC comes from the pip wheel ``nvidia-cuda-nvrtc-cu12``; CuPy >= 14 finds it by itself
(cuda-pathfinder). If it does not (CuPy 13), ``load_nvrtc`` preloads the wheel's library
with ctypes: ``lib/libnvrtc.so.12`` on Linux, ``bin/nvrtc64_120_0.dll`` on Windows.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

from flashviz.core.kernel_files import KERNEL_NAME
from flashviz.gpu.launch_params import SCALAR, TENSOR_CORES, Kernel, KernelConfig, kernel_source

ARCHS = ("sm_75", "sm_80", "sm_86", "sm_89", "sm_90")
BASE_OPTIONS = ("-std=c++17",)


class KernelCompileError(RuntimeError):
    """NVRTC rejected the source; the message is its log (file(line): error: ...)."""


@dataclass(frozen=True)
class PtxasInfo:
    """ptxas's report for one kernel on one architecture."""

    registers: int
    spill_stores: int  # bytes
    spill_loads: int  # bytes
    stack_bytes: int
    shared_bytes: int


@dataclass(frozen=True)
class Compiled:
    arch: str
    cubin: bytes
    log: str
    ptxas: PtxasInfo


WHEEL_LIBRARY = {
    "linux": ("lib", "libnvrtc.so.12"),
    "win32": ("bin", "nvrtc64_120_0.dll"),
}


def wheel_library(paths: list[str] | None = None, platform: str = sys.platform) -> Path | None:
    """NVRTC's shared library inside the ``nvidia-cuda-nvrtc-cu12`` wheel, if installed."""
    folder, name = WHEEL_LIBRARY.get(platform, WHEEL_LIBRARY["linux"])
    for entry in sys.path if paths is None else paths:
        lib = Path(entry) / "nvidia" / "cuda_nvrtc" / folder / name
        if lib.is_file():
            return lib
    return None


def nvrtc_path() -> str | None:
    """Where the NVRTC library CuPy uses lives (cuda-pathfinder's answer), if it says."""
    try:
        from cuda.pathfinder import load_nvidia_dynamic_lib

        return load_nvidia_dynamic_lib("nvrtc").abs_path
    except Exception:
        found = wheel_library()
        return None if found is None else str(found)


@cache
def load_nvrtc() -> ModuleType:
    """CuPy's NVRTC binding, working; raises RuntimeError saying what is missing."""
    try:
        from cupy_backends.cuda.libs import nvrtc
    except ImportError as exc:
        raise RuntimeError(f"CuPy is not installed (pip install cupy-cuda12x): {exc}") from exc
    try:
        nvrtc.getVersion()
    except Exception:
        lib = wheel_library()
        if lib is None:
            raise RuntimeError(
                "NVRTC is missing: pip install -r requirements-gpu.txt (nvidia-cuda-nvrtc-cu12)"
            ) from None
        if sys.platform == "win32":
            os.add_dll_directory(str(lib.parent))
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
        nvrtc.getVersion()
    return nvrtc


_PTXAS = {
    "registers": r"Used (\d+) registers",
    "spill_stores": r"(\d+) bytes spill stores",
    "spill_loads": r"(\d+) bytes spill loads",
    "stack_bytes": r"(\d+) bytes stack frame",
}


def parse_ptxas(log: str, kernel: str = KERNEL_NAME) -> PtxasInfo:
    """Registers, spills, stack and shared memory of ``kernel`` from a ``-Xptxas=-v`` log."""
    start = log.find(f"Compiling entry function '{kernel}'")
    if start < 0:
        raise ValueError(f"no ptxas report for kernel {kernel!r} in the log:\n{log}")
    section = log[start:]
    values = {}
    for field, pattern in _PTXAS.items():
        found = re.search(pattern, section)
        if found is None:
            raise ValueError(f"no {field} in the ptxas report:\n{section}")
        values[field] = int(found.group(1))
    smem = re.search(r"(\d+) bytes smem", section)
    return PtxasInfo(**values, shared_bytes=int(smem.group(1)) if smem else 0)


def compile_source(
    source: str,
    arch: str,
    *,
    name: str = "kernel.cu",
    kernel: str = KERNEL_NAME,
    options: tuple[str, ...] = BASE_OPTIONS,
) -> Compiled:
    """Compile ``source`` to a cubin for ``arch`` (e.g. "sm_80") with ``-Xptxas=-v`` added."""
    if not re.fullmatch(r"sm_\d+", arch):
        raise ValueError(f"arch must look like 'sm_80', got {arch!r}")
    nvrtc = load_nvrtc()
    prog = nvrtc.createProgram(source, name, [], [])
    try:
        try:
            nvrtc.compileProgram(prog, [f"-arch={arch}", *options, "-Xptxas=-v"])
        except nvrtc.NVRTCError:
            log = nvrtc.getProgramLog(prog).rstrip("\x00")
            raise KernelCompileError(f"{arch}: {log.strip()}") from None
        log = nvrtc.getProgramLog(prog).rstrip("\x00")
        return Compiled(arch, nvrtc.getCUBIN(prog), log, parse_ptxas(log, kernel))
    finally:
        nvrtc.destroyProgram(prog)


def kernel_archs(kernel: Kernel, archs: Sequence[str] = ARCHS) -> tuple[str, ...]:
    """The architectures of ``archs`` that ``kernel`` builds for (from its ``min_arch``)."""
    return tuple(a for a in archs if int(a.removeprefix("sm_")) >= kernel.min_arch)


def compile_kernel(config: KernelConfig, arch: str, source: str | None = None) -> Compiled:
    """Compile the config's kernel (or a modified ``source`` of it) for one config."""
    return compile_source(kernel_source(config, source), arch, kernel=config.kernel.entry)


def resource_table(kernel: Kernel = SCALAR) -> list[tuple[KernelConfig, str, PtxasInfo]]:
    """ptxas's report for every build of ``kernel`` the app offers, on each of its archs."""
    return [
        (c, arch, compile_kernel(c, arch).ptxas)
        for c in kernel.offered_configs()
        for arch in kernel_archs(kernel)
    ]


def main(argv: list[str] | None = None) -> None:
    """`python -m flashviz.gpu.nvrtc [--tc]`: registers, spills and shared memory of every
    build (``--tc``: of the tensor-core kernel)."""
    tc = "--tc" in (sys.argv[1:] if argv is None else argv)
    input_column = "input    " if tc else ""
    print(f"HEAD_DIM BLOCK_Q BLOCK_KV threads {input_column}arch   regs spill(st/ld) smem")
    for c, arch, info in resource_table(TENSOR_CORES if tc else SCALAR):
        print(
            f"{c.head_dim:8} {c.block_q:7} {c.block_kv:8} {c.num_threads:7} "
            f"{f'{c.precision:9}' if tc else ''}{arch:6}"
            f"{info.registers:5} {info.spill_stores:6}/{info.spill_loads:<6} {info.shared_bytes:6}"
        )


if __name__ == "__main__":
    main()
