"""Build a kernel of kernels/ for the CPU (cuda_emu.h, or cuda_emu_warp.h) and run it.

``build`` writes the kernel source of a config (``launch_params.kernel_source``: the same
text NVRTC compiles) into ``build/cuda_emulation/`` and compiles it with g++ and harness.cpp
into a shared library, or with ThreadSanitizer and tsan_main.cpp into a program. What differs
between the kernels comes from their ``Kernel`` (entry point, input type) and ``EMULATORS``
(the emulator header and its launch: warp-level instructions need cuda_emu_warp.h). Builds
are named by a hash of everything that goes into them, so a build is reused only while
nothing changed; a file lock per build makes test processes running at once (pytest-xdist)
wait for one g++ instead of each running its own. For the shared libraries, the emulator's
headers (most of a build's g++ time) are parsed once into a precompiled header
(``precompiled_header``): the library g++ writes is the same, byte for byte, with or without
it. (A TSan build gains nothing from one: its program's second file, tsan_main.cpp, would
have to parse it too.) ``run`` launches the kernel with the grid and block of
``Kernel.prepare``.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no emulation builds there (ucontext), so no lock is needed
    fcntl = None  # type: ignore[assignment]

import numpy as np

from flashviz.core.block_mask import causal_kinds
from flashviz.core.masks import MaskSpec
from flashviz.gpu.launch_params import (
    ARRAY_ARGUMENTS,
    SCALAR,
    SCALAR_ARGUMENTS,
    TENSOR_CORES,
    KernelCall,
    KernelConfig,
    KernelMask,
    kernel_source,
)

HERE = Path(__file__).resolve().parent
BUILD_DIR = HERE.parent.parent / "build" / "cuda_emulation"
CXX = os.environ.get("CXX", "g++")
BASE_FLAGS = ("-std=c++20", "-pthread", "-Wall", "-Wno-unknown-pragmas", f"-I{HERE}")
LIB_FLAGS = ("-O2", "-shared", "-fPIC")
TSAN_FLAGS = ("-O1", "-g", "-fsanitize=thread")
HEADERS = (
    "cuda_emu.h",
    "cuda_emu_warp.h",
)  # every build hashes both: the warp one includes the other


# The emulator each kernel needs, by entry point: its header and launch function.
EMULATORS = {
    SCALAR.entry: ("cuda_emu.h", "launch"),
    TENSOR_CORES.entry: ("cuda_emu_warp.h", "launch_warps"),
}
NUM_LISTS, NUM_INTS = len(ARRAY_ARGUMENTS), len(SCALAR_ARGUMENTS) - 1  # after scale: ints
C_TYPES = {np.dtype(np.float32): ("float", ctypes.c_float),
           np.dtype(np.uint16): ("unsigned short", ctypes.c_uint16)}  # fmt: skip


@dataclass(frozen=True)
class Build:
    """One CPU build of a kernel: a config, optionally a modified source, plain or TSan."""

    config: KernelConfig
    source: str | None = None  # None: the kernel's .cu file
    tsan: bool = False

    @property
    def header(self) -> str:
        """The emulator's header: the first thing the harness includes (precompiled)."""
        return EMULATORS[self.config.kernel.entry][0]

    def flags(self) -> list[str]:
        return [*BASE_FLAGS, *(TSAN_FLAGS if self.tsan else LIB_FLAGS)]

    def command(self, kernel: Path, out: Path, pch: Path | None = None) -> list[str]:
        """g++'s command line; ``pch``: the header of ``precompiled_header``, included first."""
        files = [str(HERE / "harness.cpp")]
        if self.tsan:
            files.append(str(HERE / "tsan_main.cpp"))
        include = [] if pch is None else ["-include", str(pch)]
        header, launch = EMULATORS[self.config.kernel.entry]
        c_type = C_TYPES[np.dtype(self.config.kernel.input_dtype)][0]
        defines = [f'-DKERNEL_SOURCE="{kernel}"', f'-DEMU_HEADER="{header}"',
                   f"-DEMU_LAUNCH={launch}", f"-DKERNEL_ENTRY={self.config.kernel.entry}",
                   f"-DINPUT_T={c_type}", f"-DNUM_LISTS={NUM_LISTS}",
                   f"-DNUM_INTS={NUM_INTS}"]  # fmt: skip
        return [CXX, *self.flags(), *include, *defines, *files, "-o", str(out)]

    def text(self) -> str:
        """The kernel source g++ compiles (the text NVRTC would compile)."""
        return kernel_source(self.config, self.source)

    def key(self) -> str:
        parts = [self.text(), " ".join(self.command(Path(), Path()))]
        parts += [(HERE / f).read_text() for f in (*HEADERS, "harness.cpp", "tsan_main.cpp")]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """BUILD_DIR/locks/<name> held: one process at a time (others wait) builds ``name``."""
    (BUILD_DIR / "locks").mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    with open(BUILD_DIR / "locks" / name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def precompiled_header(header: str, flags: list[str]) -> Path:
    """``header`` (cuda_emu.h or cuda_emu_warp.h) precompiled with ``flags`` (or reused).

    Returns BUILD_DIR/pch_<header>_<hash>/<header>, a one-line header that includes the
    real one, next to its <header>.gch: g++ given ``-include`` of it reads the .gch instead
    (the real header's ``#pragma once`` then skips the harness's own #include of it), or,
    were the .gch ever unusable, the line itself. The hash covers the command and the
    headers; the ones of older versions of them are deleted (each is 50-90 MB)."""
    command = [CXX, *flags]
    parts = [header, " ".join(command), *((HERE / h).read_text() for h in HEADERS)]
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    stem = f"pch_{header}"  # pch_cuda_emu.h, pch_cuda_emu_warp.h: neither globs the other
    folder = BUILD_DIR / f"{stem}_{key}"
    wrapper, gch = folder / header, folder / f"{header}.gch"
    with locked(folder.name):
        if gch.exists():
            return wrapper
        for old in BUILD_DIR.glob(f"{stem}_*"):
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        folder.mkdir(parents=True)
        wrapper.write_text(f'#include "{HERE / header}"\n')
        partial = folder / f"partial_{gch.name}"
        done = subprocess.run(
            [*command, "-x", "c++-header", str(wrapper), "-o", str(partial)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"g++ failed to precompile {header}:\n{done.stderr}")
        partial.replace(gch)
    return wrapper


def build(spec: Build) -> Path:
    """Compile (or reuse) the build; returns the .so, or the program for a TSan build."""
    key = spec.key()
    out = BUILD_DIR / (f"tsan_{key}" if spec.tsan else f"flash_{key}.so")
    if out.exists():
        return out
    pch = None if spec.tsan else precompiled_header(spec.header, spec.flags())
    with locked(out.name):
        if out.exists():  # another process built it while this one waited
            return out
        kernel = BUILD_DIR / f"kernel_{key}.cu"
        kernel.write_text(spec.text())
        with tempfile.TemporaryDirectory(dir=BUILD_DIR) as tmp:
            partial = Path(tmp) / out.name
            done = subprocess.run(spec.command(kernel, partial, pch), capture_output=True,
                                  text=True)  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"g++ failed for {spec.config}:\n{done.stderr}")
            partial.replace(out)  # atomic: a half-written build is never picked up
    return out


@cache
def _library(path: Path, element: type[ctypes._SimpleCData]) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    in_p, f32p = ctypes.POINTER(element), ctypes.POINTER(ctypes.c_float)
    i32p, u32 = ctypes.POINTER(ctypes.c_int), ctypes.c_uint
    lists = ctypes.POINTER(i32p)
    lib.run_kernel.argtypes = [in_p] * 3 + [f32p] * 2 + [lists, ctypes.c_float, i32p]
    lib.run_kernel.argtypes += [u32] * 3
    lib.run_kernel.restype = None
    return lib


def _outputs(call: KernelCall) -> tuple[np.ndarray, np.ndarray]:
    """o and lse poisoned with NaN: a missed write shows."""
    o = np.full((call.batch_heads, call.n_q, call.d), np.nan, dtype=np.float32)
    return o, np.full((call.batch_heads, call.n_q), np.nan, dtype=np.float32)


def _shaped(call: KernelCall, o: np.ndarray, lse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return o.reshape(*call.lead, call.n_q, call.d), lse.reshape(*call.lead, call.n_q)


def run(
    lib_path: Path, call: KernelCall, arrays: tuple[np.ndarray, ...], *, poison_shared: bool = True
) -> tuple[np.ndarray, ...]:
    """Launch the kernel on the CPU (``arrays``: q, k, v as ``Kernel.prepare`` gives them);
    returns o (..., n_q, d) and lse (..., n_q), float32, poisoned with NaN beforehand.

    With ``poison_shared`` (the default), a launch on NaN inputs goes first (``poison_call``).
    """
    kernel = call.config.kernel
    element = C_TYPES[np.dtype(kernel.input_dtype)][1]
    assert all(x.dtype == kernel.input_dtype and x.flags.c_contiguous for x in arrays)
    launch = _library(lib_path, element).run_kernel
    if poison_shared:
        pcall = poison_call(call)
        nan = np.full((1, max(pcall.n_q, pcall.n_k), pcall.d), np.nan, dtype=np.float32)
        _launch(launch, pcall, [kernel.inputs(nan, call.config.precision)] * 3, element)
    assert len(call.arrays) == NUM_LISTS and len(call.scalars) == 1 + NUM_INTS
    o, lse = _outputs(call)
    _launch(launch, call, arrays, element, o, lse)
    return _shaped(call, o, lse)


def poison_call(call: KernelCall) -> KernelCall:
    """One block of an unmasked problem exactly one tile in every direction.

    On a GPU, shared memory starts as whatever was there; here ``__shared__`` arrays are
    function statics, zero at first and then holding the last block's values. A launch of
    this call on NaN inputs writes NaN into every shared word the kernel ever writes, so a
    kernel that forgets to zero a tile's padding reads NaN here too, not a friendly 0.
    """
    config = call.config
    unmasked = KernelMask(causal_kinds(1, 1, 1, 1, None)[None, None], MaskSpec())
    return replace(
        call, grid=(1, 1, 1), lead=(1,), n_q=config.block_q, n_k=config.block_kv,
        d=config.head_dim, mask=unmasked, group=1, heads=1,
    )  # fmt: skip


def _launch(launch, call: KernelCall, arrays, element, o=None, lse=None) -> None:
    """``launch`` (the harness's run_kernel) with the call's geometry."""
    if o is None:
        o, lse = _outputs(call)
    ptrs = [x.ctypes.data_as(ctypes.POINTER(element)) for x in arrays]
    ptrs += [x.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) for x in (o, lse)]
    i32p = ctypes.POINTER(ctypes.c_int)
    lists = (i32p * NUM_LISTS)(*(x.ctypes.data_as(i32p) for x in call.arrays))
    scale, *ints = call.scalars
    int_args = np.asarray(ints, dtype=np.int32)
    grid, block = call.grid, call.block
    launch(*ptrs, lists, float(scale), int_args.ctypes.data_as(i32p), grid[0], grid[1], block[0])


def run_tsan(
    exe: Path, call: KernelCall, arrays: tuple[np.ndarray, ...], timeout: float
) -> tuple[np.ndarray, np.ndarray, str]:
    """Run a TSan build in its own process; returns o, lse and ThreadSanitizer's stderr."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        scale, *ints = call.scalars
        kv_heads = call.batch_heads // call.group
        header = [call.batch_heads, kv_heads, call.n_q, call.n_k, call.d, *call.grid[:2],
                  call.block[0], *(x.size for x in call.arrays)]  # fmt: skip
        with src.open("wb") as f:
            np.asarray(header, dtype=np.int32).tofile(f)
            np.asarray([scale], dtype=np.float32).tofile(f)
            np.asarray(ints, dtype=np.int32).tofile(f)
            for x in (*call.arrays, *arrays):
                x.tofile(f)
        env = {**os.environ, "TSAN_OPTIONS": "halt_on_error=0 report_signal_unsafe=0"}
        done = subprocess.run(
            [str(exe), str(src), str(dst)], capture_output=True, text=True, timeout=timeout, env=env
        )
        if done.returncode not in (0, 66):  # 66: TSan's exit code after a report
            raise RuntimeError(f"{exe.name} exited with {done.returncode}:\n{done.stderr}")
        out = np.fromfile(dst, dtype=np.float32)
    o, lse = _outputs(call)
    o.flat[:] = out[: o.size]
    lse.flat[:] = out[o.size :]
    return (*_shaped(call, o, lse), done.stderr)
