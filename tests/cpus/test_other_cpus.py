"""The core tests and the figure snapshot pass whatever BLAS kernel and SIMD path the CPU
selects.

The last bits of a matmul, an ``exp`` or a sum depend on the kernel OpenBLAS picks for the
CPU and on the SIMD code NumPy dispatches to; another machine picks others. So the core
tests and the figures' numbers run again here, in a fresh process each, with OpenBLAS
forced onto the kernels of other CPUs (``OPENBLAS_CORETYPE``) and with NumPy's AVX-512 code
switched off (``NPY_DISABLE_CPU_FEATURES``): a test that compares such floats exactly, or
a snapshot recorded on one machine, fails here.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support import ROOT

# OpenBLAS core types, with the CPU flag (/proc/cpuinfo) their kernels need (pni is SSE3):
# three kernel families, AVX-512, AVX2 with fused multiply-add, SSE3 without it (Sandybridge's
# AVX kernels would be a fourth, left out to keep the whole suite under 10 minutes).
CORE_TYPES = {"Haswell": "avx2", "SkylakeX": "avx512f", "Prescott": "pni"}
# The core's numbers, and the figures' numbers against the snapshot recorded on another CPU
# (the other figure tests check structure, the same on every CPU).
TESTS = ["tests/core", "tests/figures/test_snapshot.py", "tests/figures/test_figure_numbers.py"]


def _cpu_flags() -> set[str]:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return set()
    flags = next((ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("flags")), "")
    return set(flags.partition(":")[2].split())


def _avx512_targets() -> list[str]:
    """NumPy's dispatch targets that use AVX-512 (their names differ between NumPy versions)."""
    targets = np._core._multiarray_umath.__cpu_dispatch__  # type: ignore[attr-defined]
    return [t for t in targets if t.startswith("AVX512") or t == "X86_V4"]


def _current_core() -> str:
    """The core type OpenBLAS runs on in this process's environment ("Core: SkylakeX")."""
    env = {**os.environ, "OPENBLAS_VERBOSE": "2"}
    probe = subprocess.run([sys.executable, "-c", "import numpy"], env=env, capture_output=True)
    return (probe.stdout + probe.stderr).decode().strip().removeprefix("Core: ")


def _run_tests(env: dict[str, str], check: str) -> str:
    """Run ``TESTS`` with ``env``; ``check`` prints what the env selected."""
    # One OpenBLAS thread: the kernel family is what varies here (the main run covers
    # threaded sums), and a child beside the suite's workers would only oversubscribe.
    env = {**os.environ, "HYPOTHESIS_PROFILE": "dev", "OPENBLAS_NUM_THREADS": "1", **env}
    probe = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True)
    selected = (probe.stdout + probe.stderr).strip()
    print("selected:", selected)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *TESTS]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"{selected}\n{run.stdout[-6000:]}{run.stderr[-2000:]}"
    return selected


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 core types")
@pytest.mark.parametrize("core", CORE_TYPES)
def test_under_other_openblas_kernels(core: str) -> None:
    if CORE_TYPES[core] not in _cpu_flags():
        pytest.skip(f"this CPU has no {CORE_TYPES[core]}: it cannot run {core}'s kernels")
    if core == _current_core():
        pytest.skip(f"OpenBLAS runs on {core} here: the suite itself runs on it")
    env = {"OPENBLAS_CORETYPE": core, "OPENBLAS_VERBOSE": "2"}
    selected = _run_tests(env, "import numpy")
    # OpenBLAS names the kernels it loaded ("Core: Haswell"; Prescott loads Katmai's)
    assert selected.startswith("Core: "), f"OpenBLAS did not say which kernels it took: {selected}"


@pytest.mark.skipif(not _avx512_targets(), reason="this NumPy has no AVX-512 code to switch off")
def test_without_numpy_avx512() -> None:
    off = _avx512_targets()
    check = (
        "import numpy as np\n"
        "print(' '.join(k for k, on in np._core._multiarray_umath.__cpu_features__.items() if on))"
    )
    selected = _run_tests({"NPY_DISABLE_CPU_FEATURES": " ".join(off)}, check)
    assert not set(off) & set(selected.split()), f"still on: {set(off) & set(selected.split())}"
