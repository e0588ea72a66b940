"""The emulator's warp instructions one at a time (mma_probe.cpp, built for the CPU).

``probe`` builds mma_probe.cpp: the emulator's mma.m16n8k16 fragment maps, one mma on
registers the caller builds, pack_rn and __shfl_xor_sync, each callable from Python
(tests/gpu/test_mma_layout.py pins them to the PTX ISA).
"""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import numpy as np

from tests.gpu.cuda_emulation import emu
from tests.gpu.cuda_emulation.emu import BASE_FLAGS, BUILD_DIR, CXX, HERE

WARP_HEADERS = ("cuda_emu.h", "cuda_emu_warp.h")


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
