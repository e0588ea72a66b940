"""The CPU emulator's mma.sync.m16n8k16 against the PTX ISA, lane by lane.

Source: NVIDIA, "Parallel Thread Execution ISA" (version 9.0), section 9.7.14.5.8, "Matrix
Fragments for mma.m16n8k16 with floating point type" (docs.nvidia.com/cuda/
parallel-thread-execution/#warp-level-matrix-fragment-mma-16816-float; 9.7.13.4.8 in older
versions, 9.7.16.5.8 in 9.4). For .f16 / .bf16 A and B and .f32 C / D it says, with

    groupID           = %laneid >> 2
    threadID_in_group = %laneid % 4

* A (16 x 16): four .f16x2 registers holding a0 .. a7, "low to high";
    row = groupID for ai where 0 <= i < 2 || 4 <= i < 6, groupID + 8 otherwise
    col = (threadID_in_group * 2) + (i & 0x1) for i < 4, the same + 8 for i >= 4
* B (16 x 8): two .f16x2 registers holding b0 .. b3, low to high;
    row = (threadID_in_group * 2) + (i & 0x1) for i < 2, the same + 8 for i >= 2
    col = groupID
* C, D (16 x 8, .f32): four .f32 registers c0 .. c3;
    row = groupID for i < 2, groupID + 8 for i >= 2
    col = (threadID_in_group * 2) + (i & 0x1)

"Low to high": a0 in bits 0-15 of the first register, a1 in bits 16-31, a2 in the second
register, and so on. The packing instruction's own rule (PTX ISA, "cvt": for .f16x2 and
.bf16x2 "the value converted from input a is stored in the upper half of d and the value
converted from input b is stored in the lower half") is what the kernel's pack_rn(lo, hi)
relies on when it issues cvt with (hi, lo).

``ISA_TABLE`` below is that text as data, computed here from the formulas above and
nowhere else (not from the emulator's a_element / b_element / c_element, which a compiled
probe, tests/gpu/cuda_emulation/mma_probe.cpp, reads out for comparison). A handful of
entries are also written out by hand from the figures (79, 81, 83) as a check on the
transcription itself.
"""

from __future__ import annotations

import shutil

import ml_dtypes
import numpy as np
import pytest

from tests.gpu.cuda_emulation import emu
from tests.gpu.cuda_emulation.mma_probe import probe

if shutil.which(emu.CXX) is None:
    pytest.skip(f"{emu.CXX} (C++20) is needed to run the emulator", allow_module_level=True)

STORAGE = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
A_SLOTS, B_SLOTS, C_SLOTS = range(0, 8), range(8, 12), range(12, 16)


def _isa_table() -> np.ndarray:
    """(32, 16, 2): for each lane, a0..a7, b0..b3, c0..c3 -> (row, col), from the ISA text."""
    table = np.zeros((32, 16, 2), dtype=np.int32)
    for laneid in range(32):
        group_id, thread_id_in_group = laneid >> 2, laneid % 4
        for i in range(8):  # A
            row = group_id if (0 <= i < 2 or 4 <= i < 6) else group_id + 8
            col = thread_id_in_group * 2 + (i & 0x1) + (0 if i < 4 else 8)
            table[laneid, i] = row, col
        for i in range(4):  # B
            row = thread_id_in_group * 2 + (i & 0x1) + (0 if i < 2 else 8)
            table[laneid, 8 + i] = row, group_id
        for i in range(4):  # C, D
            row = group_id if i < 2 else group_id + 8
            table[laneid, 12 + i] = row, thread_id_in_group * 2 + (i & 0x1)
    return table


ISA_TABLE = _isa_table()

# Read off the figures by hand: (lane, slot) -> (row, col).
FROM_THE_FIGURES = {
    (0, 0): (0, 0), (0, 1): (0, 1), (0, 2): (8, 0), (0, 3): (8, 1),
    (0, 4): (0, 8), (0, 5): (0, 9), (0, 6): (8, 8), (0, 7): (8, 9),
    (5, 0): (1, 2), (5, 7): (9, 11),
    (31, 0): (7, 6), (31, 3): (15, 7), (31, 4): (7, 14), (31, 7): (15, 15),
    (0, 8): (0, 0), (0, 9): (1, 0), (0, 10): (8, 0), (0, 11): (9, 0),
    (6, 8): (4, 1), (31, 11): (15, 7),
    (0, 12): (0, 0), (0, 15): (8, 1), (13, 12): (3, 2), (31, 15): (15, 7),
}  # fmt: skip


@pytest.fixture(scope="module")
def emulator():
    return probe()


def test_the_table_matches_the_figures_and_covers_each_element_once():
    for (lane, slot), rc in FROM_THE_FIGURES.items():
        assert tuple(ISA_TABLE[lane, slot]) == rc, (lane, slot)
    for slots, shape in ((A_SLOTS, (16, 16)), (B_SLOTS, (16, 8)), (C_SLOTS, (16, 8))):
        seen = np.zeros(shape, dtype=int)
        for lane in range(32):
            for slot in slots:
                seen[tuple(ISA_TABLE[lane, slot])] += 1
        assert (seen == 1).all()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane", range(32))
def test_the_emulator_maps_every_element_as_the_isa(emulator, lane):
    got = emulator.fragment_map()[lane]
    names = [f"a{i}" for i in range(8)] + [f"b{i}" for i in range(4)] + [f"c{i}" for i in range(4)]
    wrong = [
        f"{name}: emulator {tuple(g)}, ISA {tuple(w)}"
        for name, g, w in zip(names, got, ISA_TABLE[lane], strict=True)
        if tuple(g) != tuple(w)
    ]
    assert not wrong, f"lane {lane}: " + "; ".join(wrong)


def _bits(x: np.ndarray, precision: str) -> np.ndarray:
    with np.errstate(over="ignore"):  # 1e5 -> float16 inf, as cvt.rn gives
        rounded = np.ascontiguousarray(x.astype(STORAGE[precision]))
    return rounded.view(np.uint16).astype(np.uint32)


def registers(a: np.ndarray, b: np.ndarray, c: np.ndarray, precision: str, table=ISA_TABLE):
    """Each lane's A, B registers and C values, built from the table (low half first)."""
    a_bits, b_bits = _bits(a, precision), _bits(b, precision)
    ra = np.zeros((32, 4), dtype=np.uint32)
    rb = np.zeros((32, 2), dtype=np.uint32)
    rc = np.zeros((32, 4), dtype=np.float32)
    for lane in range(32):
        for r in range(4):
            lo, hi = (tuple(table[lane, 2 * r + h]) for h in (0, 1))
            ra[lane, r] = a_bits[lo] | (a_bits[hi] << 16)
        for r in range(2):
            lo, hi = (tuple(table[lane, 8 + 2 * r + h]) for h in (0, 1))
            rb[lane, r] = b_bits[lo] | (b_bits[hi] << 16)
        for i in range(4):
            rc[lane, i] = c[tuple(table[lane, 12 + i])]
    return ra, rb, rc


def gather_d(d_lanes: np.ndarray, table=ISA_TABLE) -> np.ndarray:
    """The 16 x 8 D from each lane's four values, placed by the table."""
    d = np.full((16, 8), np.nan, dtype=np.float32)
    for lane in range(32):
        for i in range(4):
            d[tuple(table[lane, 12 + i])] = d_lanes[lane, i]
    return d


@pytest.mark.timeout(60)
@pytest.mark.parametrize("precision", list(STORAGE))
def test_small_integers_give_the_exact_product(emulator, rng, precision):
    """Integers |x| <= 8: every product and sum is exact, so D must equal A B + C exactly."""
    a, b = rng.integers(-8, 9, (16, 16)), rng.integers(-8, 9, (16, 8))
    c = rng.integers(-100, 101, (16, 8))
    d = gather_d(emulator.mma(precision == "bfloat16", *registers(a, b, c, precision)))
    np.testing.assert_array_equal(d, (a @ b + c).astype(np.float32))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("precision", list(STORAGE))
def test_random_inputs_match_numpy(emulator, rng, precision):
    """Random 16-bit A, B and float32 C: D = A B + C with float32 accumulation.

    Products of two 16-bit floats are exact in float32, so D is the float64 product up to
    the 17 roundings of a float32 sum: |error| <= 17 u32 (|C| + |A| |B|).
    """
    dtype = STORAGE[precision]
    a = rng.standard_normal((16, 16)).astype(dtype).astype(np.float64)
    b = rng.standard_normal((16, 8)).astype(dtype).astype(np.float64)
    c = rng.standard_normal((16, 8)).astype(np.float32).astype(np.float64)
    d = gather_d(emulator.mma(precision == "bfloat16", *registers(a, b, c, precision)))
    exact = a @ b + c
    bound = 17 * 2.0**-24 * (np.abs(c) + np.abs(a) @ np.abs(b))
    assert (np.abs(d - exact) <= bound).all()
    with pytest.raises(AssertionError):  # the comparison is not blind: A's transpose differs
        np.testing.assert_allclose(d, a.T @ b + c, rtol=0, atol=float(bound.max()))


@pytest.mark.timeout(60)
def test_a_layout_slip_gives_a_wrong_product(emulator, rng):
    """Registers built with a0/a1 swapped with a2/a3 (rows g and g+8): D is wrong."""
    slipped = ISA_TABLE.copy()
    slipped[:, [0, 1, 2, 3]] = ISA_TABLE[:, [2, 3, 0, 1]]
    a, b = rng.integers(-8, 9, (16, 16)), rng.integers(-8, 9, (16, 8))
    c = np.zeros((16, 8))
    d = gather_d(emulator.mma(False, *registers(a, b, c, "float16", table=slipped)))
    assert not np.array_equal(d, (a @ b).astype(np.float32))


@pytest.mark.parametrize("precision", list(STORAGE))
@pytest.mark.parametrize(
    ("lo", "hi"),
    [(1.0, -2.0), (0.1, 3.14159), (1 + 2**-11, 1 + 3 * 2**-11), (1 + 2**-8, 1 + 3 * 2**-8),
     (1e5, -1e-8), (2.0**-20, 0.0)],
)  # fmt: skip
def test_pack_puts_lo_in_the_lower_half_rounded_to_nearest_even(emulator, precision, lo, hi):
    """pack_rn(lo, hi) is cvt.rn.{f16x2,bf16x2}.f32 d, hi, lo: hi (input a) in the upper half.

    1 + 2^-11 and 1 + 3 * 2^-11 are float16 ties (round to even: 1 and 1 + 2^-9), the same
    with 2^-8 for bfloat16; 1e5 overflows float16 to inf; 2^-20 is a float16 subnormal.
    """
    bits = [int(_bits(np.array([x], np.float32), precision)[0]) for x in (lo, hi)]
    assert emulator.pack(precision == "bfloat16", lo, hi) == bits[0] | (bits[1] << 16)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("lane_mask", [1, 2, 4, 16, 31])
def test_shfl_xor_reads_lane_xor_mask(emulator, lane_mask):
    values = np.arange(32, dtype=np.int32) * 10 + 7
    got = emulator.shfl_xor(values, lane_mask)
    np.testing.assert_array_equal(got, values[np.arange(32) ^ lane_mask])
