"""Build and run the warp-level emulation (cuda_emu_warp.h) on the CPU.

``TcBuild`` is ``emu.Build`` for kernels/flash_attention_tc.cu (harness_tc.cpp, and
tsan_tc_main.cpp for ThreadSanitizer); ``emu.build`` compiles it, ``run`` and ``run_tsan``
launch it with the grid and block of ``launch_params.prepare_tc_call``.
``probe`` builds mma_probe.cpp: the emulator's mma.m16n8k16 fragment maps, one mma on
registers the caller builds, pack_rn and __shfl_xor_sync, each callable from Python
(tests/gpu/test_mma_layout.py pins them to the PTX ISA).
"""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from flashviz.gpu.launch_params import KernelCall, TcConfig, tc_kernel_source
from tests.gpu.cuda_emulation import emu
from tests.gpu.cuda_emulation.emu import BASE_FLAGS, BUILD_DIR, CXX, HERE, LIB_FLAGS, TSAN_FLAGS

WARP_HEADERS = ("cuda_emu.h", "cuda_emu_warp.h")
TC_FILES = ("harness_tc.cpp", "tsan_tc_main.cpp")


def _compile_cached(name: str, sources: list[str], flags: list[str], suffix: str = "") -> Path:
    """g++ the files in this folder into BUILD_DIR/<name>_<hash><suffix>, reused while nothing
    changed (the hash covers the command, the warp headers and the sources)."""
    command = [CXX, *BASE_FLAGS, *flags]
    parts = [" ".join(command)]
    parts += [(HERE / f).read_text() for f in (*WARP_HEADERS, *sources)]
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    out = BUILD_DIR / f"{name}_{key}{suffix}"
    if out.exists():
        return out
    with emu.locked(out.name), tempfile.TemporaryDirectory(dir=BUILD_DIR) as tmp:
        if out.exists():  # another process built it while this one waited
            return out
        partial = Path(tmp) / out.name
        files = [str(HERE / f) for f in sources]
        done = subprocess.run(
            [*command, *files, "-o", str(partial)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"g++ failed for {name}:\n{done.stderr}")
        partial.replace(out)
    return out


class Probe:
    """mma_probe.cpp, loaded: the emulator's warp instructions one at a time."""

    def __init__(self, path: Path) -> None:
        lib = ctypes.CDLL(str(path))
        ptr = np.ctypeslib.ndpointer
        lib.fragment_map.argtypes = [ptr(np.int32, flags="C_CONTIGUOUS")]
        lib.run_mma.argtypes = [
            ctypes.c_int,
            ptr(np.uint32, flags="C_CONTIGUOUS"),
            ptr(np.uint32, flags="C_CONTIGUOUS"),
            ptr(np.float32, flags="C_CONTIGUOUS"),
        ]
        lib.pack.argtypes = [ctypes.c_int, ctypes.c_float, ctypes.c_float]
        lib.pack.restype = ctypes.c_uint
        i32 = ptr(np.int32, flags="C_CONTIGUOUS")
        lib.run_shfl.argtypes = [i32, i32, ctypes.c_int]
        self._lib = lib

    def fragment_map(self) -> np.ndarray:
        """(32, 16, 2): lane, slot (a0-a7, b0-b3, c0-c3), (row, col)."""
        out = np.zeros((32, 16, 2), dtype=np.int32)
        self._lib.fragment_map(out)
        return out

    def mma(self, bf16: bool, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        """a (32, 4), b (32, 2) uint32 registers, c (32, 4) float32: each lane's D (32, 4)."""
        d = np.ascontiguousarray(c, dtype=np.float32).copy()
        a, b = (np.ascontiguousarray(x, dtype=np.uint32) for x in (a, b))
        assert a.shape == (32, 4) and b.shape == (32, 2) and d.shape == (32, 4)
        self._lib.run_mma(int(bf16), a, b, d)
        return d

    def pack(self, bf16: bool, lo: float, hi: float) -> int:
        return int(self._lib.pack(int(bf16), lo, hi))

    def shfl_xor(self, values: np.ndarray, lane_mask: int) -> np.ndarray:
        out = np.zeros(32, dtype=np.int32)
        self._lib.run_shfl(np.ascontiguousarray(values, dtype=np.int32), out, lane_mask)
        return out


@cache
def probe() -> Probe:
    path = _compile_cached("mma_probe", ["mma_probe.cpp"], ["-O1", "-shared", "-fPIC"], ".so")
    return Probe(path)


@dataclass(frozen=True)
class TcBuild:
    """One CPU build of the tensor-core kernel (``emu.build`` compiles it)."""

    config: TcConfig
    source: str | None = None  # None: kernels/flash_attention_tc.cu
    tsan: bool = False
    header = "cuda_emu_warp.h"

    def text(self) -> str:
        return tc_kernel_source(self.config, self.source)

    def flags(self) -> list[str]:
        return [*BASE_FLAGS, *(TSAN_FLAGS if self.tsan else LIB_FLAGS)]

    def command(self, kernel: Path, out: Path, pch: Path | None = None) -> list[str]:
        """g++'s command line (as ``emu.Build.command``)."""
        files = [str(HERE / "harness_tc.cpp")]
        if self.tsan:
            files.append(str(HERE / "tsan_tc_main.cpp"))
        include = [] if pch is None else ["-include", str(pch)]
        kernel_define = f'-DKERNEL_SOURCE="{kernel}"'
        return [CXX, *self.flags(), *include, kernel_define, *files, "-o", str(out)]

    def key(self) -> str:
        parts = [self.text(), " ".join(self.command(Path(), Path()))]
        parts += [(HERE / f).read_text() for f in (*WARP_HEADERS, *TC_FILES)]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


@cache
def _library(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    u16p, f32p = ctypes.POINTER(ctypes.c_uint16), ctypes.POINTER(ctypes.c_float)
    i32, u32 = ctypes.c_int, ctypes.c_uint
    lib.run_flash_attention_tc.argtypes = [u16p] * 3 + [f32p] * 2 + [i32] * 3
    lib.run_flash_attention_tc.argtypes += [ctypes.c_float, i32, i32] + [u32] * 3
    lib.run_flash_attention_tc.restype = None
    return lib


def run(
    lib_path: Path, call: KernelCall, bits: tuple[np.ndarray, ...], *, poison_shared: bool = True
) -> tuple[np.ndarray, ...]:
    """Launch the tensor-core kernel on the CPU (``bits``: prepare_tc_call's uint16 arrays);
    returns o (..., n_q, d) and lse (..., n_q), float32, poisoned with NaN beforehand. With
    ``poison_shared``, a launch on NaN inputs (0xFFFF: NaN in float16 and bfloat16) fills
    shared memory first (``emu.poison_call``)."""
    assert all(x.dtype == np.uint16 and x.flags.c_contiguous for x in bits)
    launch = _library(lib_path).run_flash_attention_tc
    if poison_shared:
        pcall = emu.poison_call(call)
        nan = np.full((1, max(pcall.n_q, pcall.n_k), pcall.d), 0xFFFF, dtype=np.uint16)
        emu._launch(launch, pcall, [nan] * 3, ctypes.c_uint16)
    o, lse = emu._outputs(call)
    emu._launch(launch, call, bits, ctypes.c_uint16, o, lse)
    return emu._shaped(call, o, lse)


def run_tsan(
    exe: Path, call: KernelCall, bits: tuple[np.ndarray, ...], timeout: float
) -> tuple[np.ndarray, np.ndarray, str]:
    """Run a TSan build of the tensor-core kernel in its own process (as ``emu.run_tsan``)."""
    return emu.run_tsan(exe, call, bits, timeout)
