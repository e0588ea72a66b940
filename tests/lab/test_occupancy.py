"""The occupancy calculator against worked examples.

* CUDA C++ Best Practices Guide, "Calculating Occupancy": on compute capability 7.0, a
  kernel with 37 registers a thread reaches 75 % occupancy with 128-thread blocks (12
  resident blocks) and 63 % with 320-thread blocks (4 blocks).
* The register rule of cuda_occupancy.h (cudaOccMaxBlocksPerSMRegsLimit): 64 registers is
  the most a 1024-thread block may use (64 x 32 = 2048 a warp, x 32 warps = 65536); at 65,
  2080 rounds up to 2304 a warp and the launch fails ("too many resources requested").
* The shared-memory rule (cudaOccMaxBlocksPerSMSmemLimit): 48 KiB static + 1 KiB reserved =
  50176 bytes a block: 3 blocks in sm_80's 164 KiB, 2 in sm_86's 100 KiB, 4 in sm_90's 228.
* The SM limits themselves (CUDA C++ Programming Guide, technical specifications per compute
  capability): warp slots 64 / 48 / 48 / 64 and 32 / 16 / 24 / 32 blocks on sm_80 / 86 /
  89 / 90.
"""

from __future__ import annotations

import pytest

from flashviz.lab.occupancy import SM_LIMITS, SmLimits, occupancy

VOLTA = SmLimits("sm_70", 2048, 32, 96 * 1024, 0, 256)  # compute capability 7.0


def test_best_practices_guide_128_thread_blocks() -> None:
    occ = occupancy(VOLTA, 128, 37, 0)
    assert (occ.blocks, occ.warps) == (12, 48)
    assert occ.fraction == 0.75
    assert occ.limited_by == ("registers",)
    assert occ.registers_per_warp == 1280  # 37 x 32 = 1184, rounded up to 256s


def test_best_practices_guide_320_thread_blocks() -> None:
    occ = occupancy(VOLTA, 320, 37, 0)
    assert (occ.blocks, occ.warps) == (4, 40)
    assert occ.fraction == 40 / 64  # 62.5 %: the guide's "63%"


@pytest.mark.parametrize("arch", list(SM_LIMITS))
def test_64_registers_is_the_most_a_1024_thread_block_may_use(arch: str) -> None:
    sm = SM_LIMITS[arch]
    fits, over = occupancy(sm, 1024, 64, 0), occupancy(sm, 1024, 65, 0)
    assert fits.by_limit["registers"] == 1 and fits.blocks == 1
    assert over.blocks == 0 and over.limited_by == ("registers",)
    assert "cannot launch" in over.text()


@pytest.mark.parametrize(
    ("arch", "blocks"), [("sm_80", 3), ("sm_86", 2), ("sm_89", 2), ("sm_90", 4)]
)
def test_48_kib_of_static_shared_memory(arch: str, blocks: int) -> None:
    occ = occupancy(SM_LIMITS[arch], 128, 32, 48 * 1024)
    assert occ.shared_per_block == 50176
    assert occ.blocks == blocks and occ.limited_by == ("shared memory",)


def test_over_48_kib_of_static_shared_memory_cannot_launch() -> None:
    occ = occupancy(SM_LIMITS["sm_90"], 128, 32, 48 * 1024 + 4)
    assert occ.blocks == 0 and occ.limited_by == ("shared memory",)


@pytest.mark.parametrize(
    ("arch", "warps", "blocks"),
    [("sm_75", 32, 16), ("sm_80", 64, 32), ("sm_86", 48, 16), ("sm_89", 48, 24), ("sm_90", 64, 32)],
)
def test_sm_limits(arch: str, warps: int, blocks: int) -> None:
    sm = SM_LIMITS[arch]
    assert (sm.max_warps, sm.max_blocks, sm.registers) == (warps, blocks, 65536)
    # one-warp blocks with few registers: the block count is the limit
    occ = occupancy(sm, 32, 16, 0)
    assert occ.blocks == blocks and "blocks" in occ.limited_by


def test_thread_slots_limit_on_sm_86() -> None:
    """1536 threads a SM: six 256-thread blocks, 100 %, though registers would allow eight."""
    occ = occupancy(SM_LIMITS["sm_86"], 256, 32, 0)
    assert occ.by_limit["registers"] == 8
    assert (occ.blocks, occ.fraction, occ.limited_by) == (6, 1.0, ("threads",))


def test_every_limit_that_binds_is_named() -> None:
    occ = occupancy(SM_LIMITS["sm_90"], 128, 32, 0)  # 16 by threads, 16 by registers
    assert occ.blocks == 16 and occ.limited_by == ("threads", "registers")
    assert occ.text() == "16 blocks (64 warps, 100%), limited by threads and registers"


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="threads >= 1"):
        occupancy(SM_LIMITS["sm_80"], 0, 32, 0)
