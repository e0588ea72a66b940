"""Both CUDA kernels under FlexAttention's masks and grouped-query attention, on the CPU.

The kernels' own sources run on the CPU emulation (tests/gpu/cuda_emulation) with every
built-in mask of ``flashviz.masks`` (alone and with a causal mask, as FlexAttention users
combine them), a block mask per batch and head, and K/V shared by 1, 2 or 3 query heads.
Each run's o and lse are checked against the float64 reference on the inputs as the kernel
reads them, by the rule of tests/gpu/test_tc_kernel.py: within twice the error of the trace
(``record_steps``, the same tiles in the kernel's precision) plus 4 float32 ulps; rows that
see no key give exactly o = 0 and lse = -inf. Then ThreadSanitizer runs a masked, grouped
problem, and mistakes injected into the kernels' mask and head handling must fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from flashviz import flash_attention
from flashviz.core.accuracy import allowed_error, max_error
from flashviz.core.kernel_files import KERNEL_PATH, TC_KERNEL_PATH
from flashviz.core.precision import get_precision
from flashviz.core.reference import attention_reference
from flashviz.core.trace import record_steps
from flashviz.gpu.launch_params import SCALAR, TENSOR_CORES, Kernel, kernel_text
from flashviz.masks import (
    EMPTY,
    BlockMask,
    MaskMod,
    and_masks,
    causal,
    chunked,
    create_block_mask,
    document,
    global_tokens,
    prefix_lm,
    sliding_window,
)
from tests.gpu.cuda_emulation import emu
from tests.gpu.on_demand import OnDemand
from tests.gpu.test_tc_kernel import needs_cxx, needs_tsan

pytestmark = needs_cxx

EPS32 = float(np.finfo(np.float32).eps)
KERNELS = {"float32": (SCALAR, None), "tensor cores": (TENSOR_CORES, "float16")}
N_Q, N_K, D = 70, 90, 40  # uneven: neither a multiple of the blocks; d padded to 64

# name: the mask_mod, given (n_q, n_k)
MASKS: dict[str, Callable[[int, int], MaskMod]] = {
    "sliding window": lambda n_q, n_k: sliding_window(13),
    "sliding window, both sides": lambda n_q, n_k: sliding_window(13, causal=False),
    "prefix-LM": lambda n_q, n_k: prefix_lm(20),
    "document": lambda n_q, n_k: document([0, 50]),
    "causal documents": lambda n_q, n_k: and_masks(causal(), document([0, 17, 40, 41, 64])),
    "chunked": lambda n_q, n_k: chunked(24),
    "causal chunks, bottom-right": lambda n_q, n_k: and_masks(
        causal(n_q, n_k, "bottom_right"), chunked(16)
    ),
    "global + window": lambda n_q, n_k: global_tokens(3, 10),
    "global + window, both sides": lambda n_q, n_k: global_tokens(3, 10, causal=False),
    "causal, top-left": lambda n_q, n_k: causal(),
}


@pytest.fixture(scope="module")
def libs() -> OnDemand[object, Path]:
    """The CPU build of each config, made when a test first needs it."""
    return OnDemand(lambda config: emu.build(emu.Build(config)))


def _inputs(
    rng, n_q: int, n_k: int, lead=(2, 4), group: int = 2, d: int = D
) -> tuple[np.ndarray, ...]:
    kv_lead = (*lead[:-1], lead[-1] // group)
    q = rng.standard_normal((*lead, n_q, d))
    return q, rng.standard_normal((*kv_lead, n_k, d)), rng.standard_normal((*kv_lead, n_k, d))


def run_kernel(libs, kernel: Kernel, q, k, v, **options) -> tuple[np.ndarray, np.ndarray]:
    call, arrays = kernel.prepare(q, k, v, **options)
    o, lse = emu.run(libs[call.config], call, arrays)
    nan = "an output is NaN: never written (outputs start as NaN) or computed as NaN"
    assert not np.isnan(o).any() and not np.isnan(lse).any(), nan
    return o, lse


def trace_outputs(q, k, v, *, precision, block_q, block_kv, mask_mod,
                  rescale_threshold=None) -> tuple[np.ndarray, ...]:  # fmt: skip
    """record_steps on each query head with its K/V head: o, lse in float32."""
    n_q, n_k, d = q.shape[-2], k.shape[-2], q.shape[-1]
    q3, k3, v3 = q.reshape(-1, n_q, d), k.reshape(-1, n_k, d), v.reshape(-1, n_k, d)
    group = len(q3) // len(k3)
    o, lse = np.zeros(q3.shape, dtype=np.float32), np.zeros(q3.shape[:-1], dtype=np.float32)
    for h in range(len(q3)):
        t = record_steps(q3[h], k3[h // group], v3[h // group], block_q=block_q,
                         block_kv=block_kv, precision=precision, mask_mod=mask_mod,
                         rescale_threshold=rescale_threshold)  # fmt: skip
        o[h], lse[h] = t.o, t.lse
    return o.reshape(q.shape), lse.reshape(q.shape[:-1])


def check(libs, kernel: Kernel, precision, q, k, v, *, block_q, block_kv, mask_mod,
          o=None, lse=None, rescale_threshold=None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Run the kernel (unless o and lse are given), check it against the trace recorded the
    same way (mask, FA4's threshold); return o, lse."""
    if o is None:
        o, lse = run_kernel(libs, kernel, q, k, v, precision=precision, block_q=block_q,
                            block_kv=block_kv, mask_mod=mask_mod,
                            rescale_threshold=rescale_threshold)  # fmt: skip
    storage = np.float32 if precision is None else get_precision(precision).storage
    stored = [x.astype(storage).astype(np.float64) for x in (q, k, v)]
    ref_o, ref_lse = attention_reference(*stored, mask_mod=mask_mod)
    t_o, t_lse = trace_outputs(*stored, precision=precision, block_q=block_q,
                               block_kv=block_kv, mask_mod=mask_mod,
                               rescale_threshold=rescale_threshold)  # fmt: skip
    empty = np.isneginf(ref_lse)
    assert (np.isneginf(lse) == empty).all(), "rows that see no key: lse = -inf, the others finite"
    assert (o[empty] == 0).all(), "rows that see no key must give o = 0"
    # kernel and trace sum q_i . k_j in different orders: an ulp of the largest score apart,
    # as tests/support.py's rule allows (an ulp of the largest score, times |v| for o)
    s_max = EPS32 * _largest_score(*stored)
    extras = {"o": s_max * float(np.abs(stored[2]).max()), "lse": s_max}
    for name, got, trace, ref in (("o", o, t_o, ref_o), ("lse", lse, t_lse, ref_lse)):
        err = max_error(got, ref)
        tol = allowed_error(ref, trace, EPS32, extra=extras[name])
        assert err <= tol, f"{name} error {err:.3e} > tolerance {tol:.3e}"
    return o, lse


def _largest_score(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> float:
    """max |q_i . k_j| / sqrt(d) over every query head and the K/V head it reads."""
    group = int(np.prod(q.shape[:-2])) // int(np.prod(k.shape[:-2]))
    q3, k3 = q.reshape(-1, *q.shape[-2:]), np.repeat(k.reshape(-1, *k.shape[-2:]), group, 0)
    return float(np.abs(q3 @ np.swapaxes(k3, -1, -2)).max()) / np.sqrt(q.shape[-1])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("kind", KERNELS)
def test_every_built_in_mask_with_grouped_heads(libs, rng, kind, mask):
    """(2, 4) query heads on (2, 2) K/V heads, 70 x 90, 32 x 32 tiles."""
    kernel, precision = KERNELS[kind]
    q, k, v = _inputs(rng, N_Q, N_K)
    check(libs, kernel, precision, q, k, v, block_q=32, block_kv=32,
          mask_mod=MASKS[mask](N_Q, N_K))  # fmt: skip


@pytest.mark.timeout(120)
@pytest.mark.parametrize("group", [1, 3])
@pytest.mark.parametrize("kind", KERNELS)
def test_grouped_query_ratios(libs, rng, kind, group):
    """3 query heads (one K/V head each, or all three on one), larger tiles: full tiles too."""
    kernel, precision = KERNELS[kind]
    q, k, v = _inputs(rng, 130, 150, lead=(3,), group=group)
    check(libs, kernel, precision, q, k, v, block_q=64, block_kv=32,
          mask_mod=sliding_window(40))  # fmt: skip


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KERNELS)
def test_rows_that_see_no_key(libs, rng, kind):
    """90 queries on 70 keys, causal bottom-right with a window of 30 keys both sides: rows
    0-19 see no key (the first Q block visits no tile)."""
    kernel, precision = KERNELS[kind]
    q, k, v = _inputs(rng, 90, 70, lead=(2,), group=1)
    mod = and_masks(causal(90, 70, "bottom_right"), sliding_window(30, causal=False))
    _, lse = check(libs, kernel, precision, q, k, v, block_q=16, block_kv=16, mask_mod=mod)
    assert np.isneginf(lse[:, :20]).all() and np.isfinite(lse[:, 20:]).all()


def _per_head_block_mask(mod: MaskMod) -> BlockMask:
    """The block mask of ``mod`` for (B, H) = (2, 4), with heads 1 and 3 of batch 1 made to
    skip their Q blocks' first visited tile: rows that differ by head, as a per-head block
    mask may (the kernels and the tiled forward both follow the lists, not the mask_mod)."""
    bm = create_block_mask(mod, 2, 4, N_Q, N_K, (32, 32))
    kinds = bm.kinds.copy()
    for h in (1, 3):
        for i in range(kinds.shape[2]):
            visited = np.flatnonzero(kinds[1, h, i] != EMPTY)
            if len(visited) > 1:
                kinds[1, h, i, visited[0]] = EMPTY
    return replace(bm, kinds=kinds)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KERNELS)
def test_a_block_mask_per_batch_and_head_is_read_by_its_heads(libs, rng, kind):
    """Each query head walks its own row of the lists: the heads whose row differs match the
    tiled forward with that block mask (and not the shared one), the others are exactly the
    shared run's."""
    kernel, precision = KERNELS[kind]
    q, k, v = _inputs(rng, N_Q, N_K)
    mod = and_masks(causal(), document([0, 17, 40, 41, 64]))
    options = {"precision": precision, "block_q": 32, "block_kv": 32}
    shared_o, shared_lse = run_kernel(libs, kernel, q, k, v, mask_mod=mod, **options)
    per_head = _per_head_block_mask(mod)
    o, lse = run_kernel(libs, kernel, q, k, v, block_mask=per_head, **options)
    same = [(b, h) for b in range(2) for h in range(4) if (b, h) not in ((1, 1), (1, 3))]
    for b, h in same:  # exact: the same compiled code on the same values and tiles
        np.testing.assert_array_equal(o[b, h], shared_o[b, h])
        np.testing.assert_array_equal(lse[b, h], shared_lse[b, h])
    storage = np.float32 if precision is None else get_precision(precision).storage
    stored = [x.astype(storage).astype(np.float64) for x in (q, k, v)]
    ref_o, _ = flash_attention(*stored, block_mask=per_head)  # float64, the same tiles
    for b, h in ((1, 1), (1, 3)):
        err = max_error(o[b, h], ref_o[b, h])
        assert err < 1e-2 if precision else err < 1e-5, (b, h, err)  # 16-bit P~: ~1e-3
        assert max_error(shared_o[b, h], ref_o[b, h]) > 10 * max(err, 1e-6)  # it differs


# --- ThreadSanitizer on a masked, grouped problem -------------------------------------------

RACE = "WARNING: ThreadSanitizer"


@needs_tsan
@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", KERNELS)
def test_no_data_race_under_a_mask(rng, kind):
    kernel, precision = KERNELS[kind]
    # the head dims of the other TSan tests (32 and 64): their programs are built already
    q, k, v = _inputs(rng, 50, 70, lead=(1, 2), d=32 if kernel is SCALAR else 64)
    mod = MASKS["causal documents"](50, 70)
    call, arrays = kernel.prepare(q, k, v, precision=precision, block_q=32, block_kv=32,
                                  mask_mod=mod)  # fmt: skip
    exe = emu.build(emu.Build(call.config, tsan=True))
    o, lse, report = emu.run_tsan(exe, call, arrays, timeout=150)
    assert RACE not in report, report
    assert not np.isnan(o).any() and not np.isnan(lse).any(), "an output was never written"
    check(libs=None, kernel=kernel, precision=precision, q=q, k=k, v=v, block_q=32,
          block_kv=32, mask_mod=mod, o=o, lse=lse)  # fmt: skip


# --- injected mistakes ----------------------------------------------------------------------
# Each is a plausible bug in the mask and head code, in the shared header or in a kernel; the
# problem is built so that each bites: a sliding window over 2 batches of grouped heads,
# whose Q blocks have full, partial and empty tiles.

WRONG = r"^(o|lse) error \S+ > tolerance |^rows that see no key"
MUTANTS = {  # name: (kernel text, its mutation)
    "a partial tile treated as full": (
        "return col < n_k && (full || mask_visible(mask, row, col));",
        "return col < n_k && (true || mask_visible(mask, row, col));",
    ),
    # one more full tile than listed: the row's first tile not listed as full (the
    # window's first tiles are empty for the later Q blocks) is visited as full
    "an empty tile visited": (
        "full_kv_num_blocks[at]};", "full_kv_num_blocks[at] + 1};",
    ),
    # the K/V head of query head h of batch 0, for every batch
    "the wrong K/V head": (
        "const int kv_head = head / group;", "const int kv_head = head % heads / group;",
    ),
}  # fmt: skip
MUTANT_BLOCKS = (32, 32)


@pytest.fixture(scope="module")
def mutant_libs() -> OnDemand[tuple[str, str], dict]:
    """Each (kernel, mutant)'s build ({config: library}), made when its test first needs it."""

    def build(key: tuple[str, str]) -> dict:
        kind, name = key
        kernel, precision = KERNELS[kind]
        config = kernel.config(D, *MUTANT_BLOCKS, precision)
        return {config: edited_build(config, *MUTANTS[name])}

    return OnDemand(build)


def edited_build(config, old: str, new: str) -> Path:
    """The CPU build of ``config``'s kernel with its one ``old`` text replaced by ``new``."""
    source = kernel_text(KERNEL_PATH if config.kernel is SCALAR else TC_KERNEL_PATH)
    assert source.count(old) == 1, f"{old!r} is not in the {config.kernel.name} kernel once"
    return emu.build(emu.Build(config, source.replace(old, new)))


# The header's mistakes (the tile lists, the element mask) are the same text in both kernels:
# one kernel shows they are caught; each kernel has its own K/V head line.
MUTANT_CASES = [("float32", name) for name in MUTANTS] + [("tensor cores", "the wrong K/V head")]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("kind", "mutant"), MUTANT_CASES)
def test_a_broken_kernel_fails(libs, mutant_libs, rng, kind, mutant):
    kernel, precision = KERNELS[kind]
    q, k, v = _inputs(rng, N_Q, N_K)
    bq, bkv = MUTANT_BLOCKS
    mod = sliding_window(13)
    kinds = create_block_mask(mod, None, None, N_Q, N_K, MUTANT_BLOCKS).to_string()
    assert all(set(row) - {" "} for row in kinds.splitlines())  # every Q block visits a tile
    assert " " in kinds.splitlines()[-1]  # the last Q block skips an empty tile
    check(libs, kernel, precision, q, k, v, block_q=bq, block_kv=bkv, mask_mod=mod)
    with pytest.raises(AssertionError, match=WRONG):
        check(mutant_libs[kind, mutant], kernel, precision, q, k, v, block_q=bq, block_kv=bkv,
              mask_mod=mod)  # fmt: skip
