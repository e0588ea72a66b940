"""How many thread blocks of a kernel fit on one SM: the CUDA occupancy calculation.

The rules are those of NVIDIA's occupancy calculator as shipped in the CUDA toolkit
(``include/cuda_occupancy.h``, ``cudaOccMaxActiveBlocksPerMultiprocessor``), for a kernel
with static shared memory only and the default shared-memory carveout (the largest the SM
offers):

* **threads**: ``max_threads_per_sm / 32`` warp slots; a block takes ``ceil(threads / 32)``.
* **registers**: allocated per warp, ``regs_per_thread * 32`` rounded up to 256; the 65536
  registers of an SM sit in 4 sub-partitions of 16384, each holding whole warps, so
  ``blocks = 4 * floor(16384 / regs_per_warp) // warps_per_block``. A block whose warps,
  rounded up to a multiple of 4, would need more than 65536 registers cannot launch.
* **shared memory**: each block takes its static bytes plus the driver's reserved 1 KiB
  (sm_80 and later), rounded up to the allocation unit (128 bytes; 256 before sm_80), out of
  the SM's shared memory; a block over the 48 KiB static limit (plus the reserve) cannot
  launch.
* **blocks**: at most ``max_blocks_per_sm`` resident blocks.

The smallest of the four is the number of resident blocks; every limit that reaches it is
named (``Occupancy.limited_by``). Occupancy = resident warps / the SM's warp slots.
``tests/lab/test_occupancy_calculator.py`` compiles ``cuda_occupancy.h`` itself and checks
that it agrees, every limit's count, on every architecture here.

Per-architecture limits (``SM_LIMITS``): the CUDA C++ Programming Guide, "Technical
Specifications per Compute Capability", as returned by ``cudaGetDeviceProperties``
(``maxThreadsPerMultiProcessor``, ``maxBlocksPerMultiProcessor``, ``regsPerMultiprocessor``,
``sharedMemPerMultiprocessor``, ``reservedSharedMemPerBlock``): 2048 threads and 32 blocks
on sm_80 and sm_90, 1536 threads on sm_86 and sm_89 with 16 and 24 blocks, 1024 threads and
16 blocks on sm_75; shared memory per SM 164 KiB (sm_80), 100 KiB (sm_86, sm_89), 228 KiB
(sm_90), 64 KiB (sm_75).
"""

from __future__ import annotations

from dataclasses import dataclass

WARP = 32
REG_ALLOC_UNIT = 256  # registers, per warp (cudaOccRegAllocationGranularity)
SUB_PARTITIONS = 4  # cudaOccSubPartitionsPerMultiprocessor (sm_70 and later)
MAX_REGS_PER_THREAD = 256  # cudaOccRegAllocationMaxPerThread (sm_70 on; ptxas stops at 255)
STATIC_SHARED_LIMIT = 48 * 1024  # static __shared__ per block (sharedMemPerBlock)
KIB = 1024
LIMITS = ("threads", "registers", "shared memory", "blocks")


@dataclass(frozen=True)
class SmLimits:
    """One architecture's per-SM resources (cudaDeviceProp names in the comments)."""

    arch: str
    max_threads: int  # maxThreadsPerMultiProcessor
    max_blocks: int  # maxBlocksPerMultiProcessor
    shared_bytes: int  # sharedMemPerMultiprocessor (the largest carveout)
    reserved_shared: int  # reservedSharedMemPerBlock
    shared_unit: int  # shared memory allocation granularity
    registers: int = 65536  # regsPerMultiprocessor
    registers_per_block: int = 65536  # regsPerBlock

    @property
    def max_warps(self) -> int:
        return self.max_threads // WARP


SM_LIMITS: dict[str, SmLimits] = {
    "sm_75": SmLimits("sm_75", 1024, 16, 64 * KIB, 0, 256),
    "sm_80": SmLimits("sm_80", 2048, 32, 164 * KIB, KIB, 128),
    "sm_86": SmLimits("sm_86", 1536, 16, 100 * KIB, KIB, 128),
    "sm_89": SmLimits("sm_89", 1536, 24, 100 * KIB, KIB, 128),
    "sm_90": SmLimits("sm_90", 2048, 32, 228 * KIB, KIB, 128),
}
GPU_NAMES = {  # one GPU of each architecture, for labels
    "sm_75": "T4",
    "sm_80": "A100",
    "sm_86": "RTX 3090 / A10",
    "sm_89": "RTX 4090 / L4",
    "sm_90": "H100 / H200",
}


@dataclass(frozen=True)
class Occupancy:
    """Resident blocks of one kernel build on one SM, and what limits them."""

    blocks: int  # resident thread blocks per SM (0: the block cannot launch)
    warps: int  # resident warps per SM
    max_warps: int
    by_limit: dict[str, int | None]  # LIMITS -> blocks that limit alone allows (None: any)
    registers_per_warp: int  # allocated
    shared_per_block: int  # allocated, reserve included

    @property
    def fraction(self) -> float:
        return self.warps / self.max_warps

    @property
    def limited_by(self) -> tuple[str, ...]:
        """Every limit that allows no more than the resident blocks."""
        return tuple(name for name in LIMITS if self.by_limit[name] == self.blocks)

    def text(self) -> str:
        """'2 blocks (16 warps, 25%), limited by registers'."""
        if not self.blocks:
            return f"cannot launch: too many {' and '.join(self.limited_by)} per block"
        return (
            f"{self.blocks} block{'s' if self.blocks > 1 else ''} ({self.warps} warps, "
            f"{self.fraction:.0%}), limited by {' and '.join(self.limited_by)}"
        )


def _round_up(x: int, unit: int) -> int:
    return -(-x // unit) * unit


def occupancy(sm: SmLimits, threads: int, registers: int, shared_bytes: int) -> Occupancy:
    """Resident blocks per SM of a kernel with ``threads`` threads a block, ``registers``
    registers a thread (ptxas) and ``shared_bytes`` of static shared memory."""
    if threads < 1 or registers < 0 or shared_bytes < 0:
        raise ValueError(f"need threads >= 1, registers >= 0, shared bytes >= 0: {threads}, "
                         f"{registers}, {shared_bytes}")  # fmt: skip
    warps = -(-threads // WARP)
    by_threads = sm.max_warps // warps if threads <= 1024 else 0
    by_registers: int | None
    by_shared: int | None

    per_warp = _round_up(registers * WARP, REG_ALLOC_UNIT)
    launchable = (
        per_warp * _round_up(warps, SUB_PARTITIONS) <= sm.registers_per_block
        and registers <= MAX_REGS_PER_THREAD
    )
    if not launchable:
        by_registers = 0
    elif per_warp == 0:
        by_registers = None
    else:
        warps_per_sub = (sm.registers // SUB_PARTITIONS) // per_warp
        by_registers = warps_per_sub * SUB_PARTITIONS // warps

    shared = _round_up(shared_bytes + sm.reserved_shared, sm.shared_unit)
    if shared_bytes > STATIC_SHARED_LIMIT:
        by_shared = 0
    else:
        by_shared = sm.shared_bytes // shared if shared else None

    by_limit: dict[str, int | None] = {
        "threads": by_threads,
        "registers": by_registers,
        "shared memory": by_shared,
        "blocks": sm.max_blocks,
    }
    blocks = min(n for n in by_limit.values() if n is not None)
    return Occupancy(blocks, blocks * warps, sm.max_warps, by_limit, per_warp, shared)
