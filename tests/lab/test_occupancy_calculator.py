"""flashviz.lab.occupancy against NVIDIA's own occupancy calculator.

``cuda_occupancy.h`` (shipped in the CUDA runtime wheel that requirements-gpu.txt installs,
``nvidia-cuda-runtime-cu12``) is the header-only calculator behind
``cudaOccupancyMaxActiveBlocksPerMultiprocessor``. ``occupancy_calculator/occ_main.cpp``
calls it for each architecture of ``SM_LIMITS`` (its cudaDeviceProp-like fields from the
table, everything else the header decides: register and shared-memory granularity, warp
sub-partitions, resident-block limits, carveout sizes) on a grid of block sizes, register
counts and static shared-memory sizes, and the two must agree on the resident blocks and on
each limit's own count.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from flashviz.lab.occupancy import SM_LIMITS, occupancy

HARNESS = Path(__file__).parent / "occupancy_calculator" / "occ_main.cpp"
THREADS = (32, 64, 96, 128, 160, 256, 320, 384, 512, 640, 768, 1024)
REGISTERS = (0, 16, 24, 32, 37, 40, 48, 56, 64, 65, 72, 96, 128, 168, 200, 255, 256)
SHARED = (0, 1, 1000, 4096, 8192, 12288, 16384, 20000, 24576, 32768, 40000, 49152, 49153)
ORDER = ("threads", "registers", "shared memory", "blocks")  # the harness's columns 2-5


def header_dir() -> Path | None:
    try:
        import nvidia.cuda_runtime as runtime  # the CUDA runtime wheel (namespace package)
    except ImportError:
        return None
    include = Path(next(iter(runtime.__path__))) / "include"
    return include if (include / "cuda_occupancy.h").is_file() else None


@pytest.fixture(scope="module")
def calculator(tmp_path_factory) -> Path:
    include = header_dir()
    if include is None or shutil.which("g++") is None:
        pytest.skip("needs g++ and cuda_occupancy.h (pip install -r requirements-gpu.txt)")
    binary = tmp_path_factory.mktemp("occ") / "occ"
    cmd = ["g++", "-std=c++17", "-O1", f"-I{include}", str(HARNESS), "-o", str(binary)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return binary


@pytest.mark.parametrize("arch", list(SM_LIMITS))
def test_every_block_size_register_count_and_shared_size_agrees(calculator, arch):
    sm = SM_LIMITS[arch]
    major, minor = int(arch[3]), int(arch[4])
    cases = [(t, r, s) for t in THREADS for r in REGISTERS for s in SHARED]
    lines = "".join(
        f"{major} {minor} {sm.max_threads} {sm.shared_bytes} {sm.reserved_shared} {t} {r} {s}\n"
        for t, r, s in cases
    )
    out = subprocess.run([str(calculator)], input=lines, capture_output=True, text=True,
                         check=True, timeout=60).stdout.splitlines()  # fmt: skip
    assert len(out) == len(cases)
    mismatches = []
    for (threads, registers, shared), line in zip(cases, out, strict=True):
        blocks, *limits = (int(x) for x in line.split())
        nvidia = {name: None if n < 0 else n for name, n in zip(ORDER, limits, strict=True)}
        ours = occupancy(sm, threads, registers, shared)
        if ours.blocks != blocks or ours.by_limit != nvidia:
            mismatches.append((threads, registers, shared, blocks, nvidia, ours))
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ, e.g. {mismatches[:3]}"


def test_the_grid_reaches_every_limit():
    """Each limit is the only one that binds somewhere in the grid (so each is compared)."""
    seen = set()
    for sm in SM_LIMITS.values():
        for t in THREADS:
            for r in REGISTERS:
                for s in SHARED:
                    occ = occupancy(sm, t, r, s)
                    if occ.blocks and len(occ.limited_by) == 1:
                        seen.add(occ.limited_by[0])
    assert seen == set(ORDER)
