"""kernels/flash_attention.cu run on the CPU (tests/gpu/cuda_emulation) against the reference.

The kernel's own source, with the #defines of flashviz.gpu.launch_params, runs with one fiber
per CUDA thread (cuda_emu.h); grid, block and scalar arguments come from launch.prepare_call, as for
the GPU. Outputs are poisoned with NaN first, so a missed write shows. Tolerance: the
reference's own error (tests/support.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from flashviz.core.kernel_files import KERNEL_PATH
from flashviz.gpu.launch_params import SCALAR, KernelConfig, kernel_text
from tests.gpu.cuda_emulation import emu
from tests.gpu.on_demand import OnDemand
from tests.support import assert_matches_reference

if shutil.which(emu.CXX) is None:
    pytest.skip(
        f"{emu.CXX} (C++20) is needed to run the kernel on the CPU", allow_module_level=True
    )

MASKS = [(False, "bottom_right"), (True, "bottom_right"), (True, "top_left")]
RAGGED = [(1, 1), (7, 13), (113, 203), (65, 31), (64, 64)]
HEAD_DIMS = [8, 40, 59, 96, 111, 128]  # padded to 16, 64, 64, 96, 128, 128
D = 64


@pytest.fixture(scope="module")
def libs() -> OnDemand[KernelConfig, Path]:
    """The CPU build of each config, made when a test first needs it."""
    return OnDemand(lambda config: emu.build(emu.Build(config)))


def run_kernel(libs: dict, q, k, v, **options) -> tuple[np.ndarray, np.ndarray]:
    call, arrays = SCALAR.prepare(q, k, v, **options)
    o, lse = emu.run(libs[call.config], call, arrays)
    nan = "an output is NaN: never written (outputs start as NaN) or computed as NaN"
    assert not np.isnan(o).any() and not np.isnan(lse).any(), nan
    return o, lse


def check(libs: dict, q, k, v, **options) -> tuple[np.ndarray, np.ndarray]:
    o, lse = run_kernel(libs, q, k, v, **options)
    mask = {key: options[key] for key in ("causal", "causal_align", "scale") if key in options}
    assert_matches_reference(o, lse, q, k, v, **mask)
    return o, lse


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("n_q", "n_k"), RAGGED)
@pytest.mark.parametrize("blocks", SCALAR.fitting_blocks(D))
@pytest.mark.parametrize(("causal", "align"), MASKS)
def test_ragged_sizes_blocks_and_masks(libs, make_qkv, n_q, n_k, blocks, causal, align):
    q, k, v = make_qkv(n_q, n_k, D, dtype=np.float32)
    check(libs, q, k, v, causal=causal, causal_align=align, block_q=blocks[0], block_kv=blocks[1])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("d", HEAD_DIMS)
@pytest.mark.parametrize(("causal", "align"), MASKS)
def test_head_dims_padded(libs, make_qkv, d, causal, align):
    q, k, v = make_qkv(70, 45, d, lead=(2,), dtype=np.float32)
    check(libs, q, k, v, causal=causal, causal_align=align)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("n_q", "n_k"), [(5, 2), (100, 37), (37, 100)])
@pytest.mark.parametrize("align", ["bottom_right", "top_left"])
def test_rows_that_see_no_key(libs, make_qkv, n_q, n_k, align):
    """5 queries x 2 keys bottom-right: the top 3 rows see nothing; (100, 37): whole blocks."""
    q, k, v = make_qkv(n_q, n_k, D, dtype=np.float32)
    o, lse = check(libs, q, k, v, causal=True, causal_align=align, block_q=32, block_kv=32)
    empty = np.arange(n_q) + (n_k - n_q if align == "bottom_right" else 0) < 0
    assert np.isneginf(lse[empty]).all() and (o[empty] == 0).all()
    assert np.isfinite(lse[~empty]).all()
    if (n_q, n_k, align) == (5, 2, "bottom_right"):
        assert empty.tolist() == [True, True, True, False, False]


@pytest.mark.timeout(60)
def test_batch_and_heads(libs, make_qkv):
    q, k, v = make_qkv(50, 77, 32, lead=(2, 3), dtype=np.float32)
    o, lse = check(libs, q, k, v, causal=True, block_q=64, block_kv=64)
    assert o.shape == (2, 3, 50, 32) and lse.shape == (2, 3, 50)
    # each head is computed on its own: head (1, 2) alone gives the same numbers, exactly,
    # since the same compiled code (no BLAS, no reassociation at -O2, no atomics) runs the
    # same operations in the same order on the same float32 values of that head
    o_1, lse_1 = run_kernel(libs, q[1, 2], k[1, 2], v[1, 2], causal=True, block_q=64, block_kv=64)
    np.testing.assert_array_equal(o[1, 2], o_1)
    np.testing.assert_array_equal(lse[1, 2], lse_1)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scale", [0.01, 0.3, 2.0])
def test_custom_scale_and_large_logits(libs, make_qkv, scale):
    """Logits up to ~100s: only the running max keeps exp() finite."""
    q, k, v = make_qkv(97, 130, D, dtype=np.float32, magnitude=4.0)
    check(libs, q, k, v, scale=scale, causal=True, block_q=32, block_kv=32)


@pytest.mark.timeout(60)
def test_float64_inputs_are_computed_in_float32(libs, make_qkv):
    q, k, v = make_qkv(33, 40, D, dtype=np.float64)
    o, lse = run_kernel(libs, q, k, v, block_q=32, block_kv=32)
    assert o.dtype == np.float32
    assert_matches_reference(o, lse, *(x.astype(np.float32) for x in (q, k, v)))


# Each mutant is a plausible bug; the checks above must catch every one of them, each with
# the failure it causes: (kernel text, its mutation, the check's message).
WRONG_O = r"^o error \S+ > tolerance "
MUTANTS = {
    "no rescale of o_i": ("o_i[a][b] *= alpha[a];", "(void)alpha[a];", WRONG_O),
    # rows that see no key: exp(-inf - (-inf)) = NaN
    "no -inf guard": ("m_new[a] == NEG_INF ? 0.0f : m_new[a]", "m_new[a]", "^an output is NaN"),
    "mask off by one": ("col > row + mask.causal_offset", "col >= row + mask.causal_offset",
                        WRONG_O),
    "normalised by the first share of l only": ("l_i[a] += row_part", "l_i[a] = row_part",
                                                WRONG_O),
    "one tile too few": ("p + f < tiles.n_partial + tiles.n_full;",
                         "p + f < tiles.n_partial + tiles.n_full - 1;", WRONG_O),
}  # fmt: skip


@pytest.fixture(scope="module")
def mutant_libs() -> OnDemand[str, dict[KernelConfig, Path]]:
    """Each mutant's build ({config: library}), made when its test first needs it."""
    config = SCALAR.config(D, 32, 32)
    source = kernel_text(KERNEL_PATH)

    def build(name: str) -> dict[KernelConfig, Path]:
        old, new, _ = MUTANTS[name]
        assert source.count(old) == 1, f"mutant {name!r}: {old!r} is not in the kernel once"
        return {config: emu.build(emu.Build(config, source=source.replace(old, new)))}

    return OnDemand(build)


def biting_problem(make_qkv) -> tuple[np.ndarray, ...]:
    """70 x 45, causal bottom-right, 32 x 32 tiles: every mutant is certain to bite.

    Rows 0-24 see no key (the -inf guard), rows 57-69 see both K/V tiles (one tile too
    few), and a shared direction lifts every score of the second tile by 10 (noise ~1), so
    each of those rows' max rises in the later tile and o_i must be rescaled.
    """
    q, k, v = make_qkv(70, 45, D, dtype=np.float32)
    q[:, 0], k[:32, 0], k[32:, 0] = 8.0, 0.0, 10.0  # s_ij gains 8 * 10 / sqrt(64) = 10
    s = (q @ k.T) / np.sqrt(D)
    rows = slice(57, 70)
    assert (s[rows, 32:].max(axis=1) > s[rows, :32].max(axis=1) + 3).all()
    return q, k, v


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mutant", MUTANTS)
def test_a_broken_kernel_fails(libs, mutant_libs, make_qkv, mutant):
    q, k, v = biting_problem(make_qkv)
    options = {"causal": True, "block_q": 32, "block_kv": 32}
    check(libs, q, k, v, **options)  # the correct kernel passes on these very inputs
    with pytest.raises(AssertionError, match=MUTANTS[mutant][2]):
        check(mutant_libs[mutant], q, k, v, **options)


EARLY_EXIT = """
extern "C" __global__ void flash_attention_fwd(const float* q, const float* k, const float* v,
    float* o, float* lse, const int*, const int*, const int*, const int*, const int*, float scale,
    int n_q, int, int, int, int, int, int, int, int, int, int, int, int) {
    __shared__ float buf[NUM_THREADS];
    if (threadIdx.x >= n_q) return;  // leaves the block: the others must not wait for it
    buf[threadIdx.x] = q[threadIdx.x];
    __syncthreads();
    o[threadIdx.x] = buf[n_q - 1 - threadIdx.x];
}
"""


@pytest.mark.timeout(30)
def test_emulator_threads_that_return_early_do_not_block_the_others(rng):
    """The harness itself: a thread that returns drops out of the block's barrier."""
    q = rng.standard_normal((20, 1)).astype(np.float32)
    call, arrays = SCALAR.prepare(q, q, q, block_q=32, block_kv=32)  # 1 block of 128 threads
    lib = emu.build(emu.Build(call.config, source=EARLY_EXIT))
    o, _ = emu.run(lib, call, arrays)  # 108 threads return before __syncthreads()
    np.testing.assert_array_equal(o[:, 0], q[::-1, 0])
