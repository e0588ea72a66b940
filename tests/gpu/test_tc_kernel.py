"""kernels/flash_attention_tc.cu, the tensor-core kernel, without a GPU.

1. NVRTC (the pip wheel) compiles it for sm_80, sm_86, sm_89 and sm_90: no spills, no
   stack, registers that fit the block, and exactly the static shared memory of
   ``launch_params.TcConfig`` (<= 48 KiB).
2. The CPU emulator (cuda_emu_warp.h: one fiber per CUDA thread, mma.sync and
   __shfl_xor_sync as rendezvous of the warp's 32 threads, layouts pinned to the PTX ISA by
   test_mma_layout.py) runs the kernel's own source, and its o and lse are compared with
   ``record_steps(precision="float16" / "bfloat16")`` run on the same problem.
3. ThreadSanitizer finds no race; without either __syncthreads() it finds one.
4. Injected mistakes fail.

Tolerance: the project's rule (tests/support.py, flashviz.core.accuracy): a result computed
in precision P may be off a higher-precision reference by twice the error of another
computation in P, plus 4 ulps. Here:

* the reference is float64 attention on the inputs *as the kernel reads them* (rounded to
  float16 / bfloat16): rounding the inputs is the same for kernel and trace, and would
  otherwise swamp everything the kernel does;
* "the computation in P" is the trace, ``record_steps(precision=...)``: same inputs, float32
  state, float32 scores from exact 16-bit products, P~ rounded to the input type for P~ V
  and l summing the unrounded P~, i.e. the numbers the kernel is meant to produce, in the
  same tile order;
* the 4 ulps are float32's (the state type): every 16-bit effect (P~ rounding) is already
  in the trace's own error, which the rule doubles. What remains between kernel and trace
  is float32 summation order, and now and then a P~ that rounds the other way because its
  float32 value moved by an ulp (observed: kernel - trace <= 3e-5 in o for float16, where
  the trace's own error is ~1e-4).

bfloat16: ``tests.support.assert_matches_reference`` cannot be used as it is, because its
"naive in the inputs' dtype" would run NumPy matmuls in bfloat16 (ml_dtypes rounds every
partial sum to 8 bits, which no GPU does: tensor cores accumulate in float32), and
``np.finfo`` does not know bfloat16. The trace stands in for the naive run in both 16-bit
types alike, ulps come from float32, and bfloat16 data goes through ml_dtypes only to
round the inputs (``launch_params.prepare_tc_call``) and in ``record_trace`` itself.

Rows that see no key must give exactly o = 0 and lse = -inf, as the trace does; outputs
start as NaN, so a missed write shows.
"""

from __future__ import annotations

import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flashviz.core.accuracy import allowed_error, max_error
from flashviz.core.kernel_files import TC_KERNEL_PATH
from flashviz.core.precision import get_precision
from flashviz.core.reference import attention_reference
from flashviz.core.trace import record_steps
from flashviz.gpu.launch_params import (
    SHARED_LIMIT_BYTES,
    TENSOR_CORES,
    KernelConfig,
    kernel_source,
    kernel_text,
)
from tests.gpu.cuda_emulation import emu
from tests.gpu.on_demand import OnDemand
from tests.support import ROOT

PRECISIONS = ["float16", "bfloat16"]
EPS32 = float(np.finfo(np.float32).eps)
HAVE_CXX = shutil.which(emu.CXX) is not None
needs_cxx = pytest.mark.skipif(not HAVE_CXX, reason=f"{emu.CXX} (C++20) runs the kernel on the CPU")


# --- 1. NVRTC -----------------------------------------------------------------------------

# Head dims 64 and 128 (the common ones) with every block pair that fits, both precisions, on
# every arch (32 compiles); the other head dims with their largest pair on sm_80, to keep
# the file quick. All of them: python -m flashviz.gpu.nvrtc --tc.
COMPILE_JOBS = [
    (TENSOR_CORES.config(d, *blocks, precision), arch)
    for d in (64, 128)
    for blocks in TENSOR_CORES.fitting_blocks(d)
    for precision in PRECISIONS
    for arch in ("sm_80", "sm_86", "sm_89", "sm_90")
] + [
    (TENSOR_CORES.config(d, *TENSOR_CORES.fitting_blocks(d)[0], "float16"), "sm_80")
    for d in (16, 32, 96)
]


@pytest.fixture(scope="module")
def nvrtc_wheel() -> None:
    """NVRTC loaded; skips where NVIDIA ships no wheel of it."""
    if sys.platform not in ("linux", "win32"):
        pytest.skip(f"no NVRTC wheel for {sys.platform}")
    from flashviz.gpu.nvrtc import load_nvrtc

    load_nvrtc()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("config", "arch"),
    COMPILE_JOBS,
    ids=[f"d{c.head_dim}-{c.block_q}x{c.block_kv}-{c.precision}-{a}" for c, a in COMPILE_JOBS],
)
def test_compiles_without_spills(nvrtc_wheel, config, arch):
    from flashviz.gpu.nvrtc import compile_kernel

    result = compile_kernel(config, arch)  # each job compiled by its test only
    info = result.ptxas
    assert result.cubin[:4] == b"\x7fELF"
    assert (info.spill_stores, info.spill_loads, info.stack_bytes) == (0, 0, 0), result.log
    assert info.registers <= 255 and info.registers * config.num_threads <= 65536
    assert info.shared_bytes == config.shared_bytes <= SHARED_LIMIT_BYTES


def test_every_arch_compiles_head_dims_64_and_128():
    from flashviz.gpu.nvrtc import kernel_archs

    for d in (64, 128):
        for arch in kernel_archs(TENSOR_CORES):
            assert any(c.head_dim == d and a == arch for c, a in COMPILE_JOBS)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("precision", "kind"), [("float16", "f16"), ("bfloat16", "bf16")])
def test_the_ptx_has_the_tensor_core_instructions(nvrtc_wheel, precision, kind):
    """The GPU path is inline PTX (the emulator's stand-ins are only for host compilers):
    the kernel's PTX holds the mma.sync and cvt of its precision, and no other type's."""
    from flashviz.gpu.nvrtc import load_nvrtc

    nvrtc = load_nvrtc()
    source = kernel_source(TENSOR_CORES.config(64, 64, 32, precision))
    prog = nvrtc.createProgram(source, "kernel.cu", [], [])
    try:
        nvrtc.compileProgram(prog, ["-arch=compute_80", "-std=c++17"])
        ptx = nvrtc.getPTX(prog)
    finally:
        nvrtc.destroyProgram(prog)
    ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
    assert f"mma.sync.aligned.m16n8k16.row.col.f32.{kind}.{kind}.f32" in ptx
    assert f"cvt.rn.{kind}x2.f32" in ptx
    other = "bf16" if kind == "f16" else "f16"
    assert f".f32.{other}.{other}.f32" not in ptx
    assert "shfl.sync.bfly.b32" in ptx  # the quad's row max and row sum


def test_phase_markers_are_the_float32_kernels():
    import re

    from flashviz.core.kernel_files import KERNEL_PATH

    markers = re.compile(r"// phase:(\w+)")
    assert markers.findall(TC_KERNEL_PATH.read_text()) == markers.findall(KERNEL_PATH.read_text())


# --- 2. the CPU emulation against the trace -----------------------------------------------

CASES = {  # id: (n_q, n_k, d, lead, causal, align, (block_q, block_kv))
    "uneven": (20, 37, 40, (), False, "bottom_right", (32, 32)),
    "causal-bottom-right": (70, 150, 64, (), True, "bottom_right", (32, 32)),
    "causal-top-left": (50, 90, 64, (), True, "top_left", (32, 32)),
    "empty-rows": (37, 20, 64, (), True, "bottom_right", (32, 32)),  # rows 0-16 see no key
    "empty-blocks": (100, 37, 64, (), True, "bottom_right", (32, 32)),  # blocks 0, 1: none
    "multi-head": (33, 50, 32, (2, 3), True, "bottom_right", (32, 16)),
    "head-dim-128": (40, 70, 128, (), True, "top_left", (64, 32)),
    "offered-blocks": (130, 150, 64, (), False, "bottom_right", (128, 64)),
    "page-blocks": (90, 100, 64, (), True, "bottom_right", (64, 64)),  # the page's default
    "padded-head-dim": (45, 60, 100, (), False, "bottom_right", (64, 32)),  # 100 -> 128
}


@pytest.fixture(scope="module")
def libs() -> OnDemand[KernelConfig, Path]:
    """The CPU build of each config, made when a test first needs it."""
    if not HAVE_CXX:
        pytest.skip(f"{emu.CXX} (C++20) runs the kernel on the CPU")
    return OnDemand(lambda config: emu.build(emu.Build(config)))


def run_kernel(libs: dict, q, k, v, **options) -> tuple[np.ndarray, np.ndarray]:
    call, bits = TENSOR_CORES.prepare(q, k, v, **options)
    o, lse = emu.run(libs[call.config], call, bits)
    nan = "an output is NaN: never written (outputs start as NaN) or computed as NaN"
    assert not np.isnan(o).any() and not np.isnan(lse).any(), nan
    return o, lse


def trace_outputs(q, k, v, *, precision, block_q, block_kv, **mask):
    """record_trace on each head: o (..., n_q, d), lse (..., n_q) in float32."""
    o = np.zeros(q.shape, dtype=np.float32)
    lse = np.zeros(q.shape[:-1], dtype=np.float32)
    for head in np.ndindex(q.shape[:-2]):
        t = record_steps(
            q[head], k[head], v[head], block_q=block_q, block_kv=block_kv,
            precision=precision, **mask,
        )  # fmt: skip
        o[head], lse[head] = t.o, t.lse
    return o, lse


def check_outputs(o, lse, q, k, v, *, precision, block_q, block_kv, **mask) -> None:
    """The kernel's o and lse against the trace, under the rule above."""
    t_o, t_lse = trace_outputs(q, k, v, precision=precision, block_q=block_q,
                               block_kv=block_kv, **mask)  # fmt: skip
    stored = [x.astype(get_precision(precision).storage).astype(np.float64) for x in (q, k, v)]
    ref_o, ref_lse = attention_reference(*stored, **mask)
    empty = np.isneginf(t_lse)
    assert (np.isneginf(lse) == empty).all(), "rows that see no key: lse = -inf, the others finite"
    assert (o[empty] == 0).all(), "rows that see no key must give o = 0"
    for name, got, trace, ref in (("o", o, t_o, ref_o), ("lse", lse, t_lse, ref_lse)):
        err = max_error(got, ref)
        tol = allowed_error(ref, trace, EPS32)
        trace_err = max_error(trace, ref)
        assert err <= tol, f"{name} error {err:.3e} > tolerance {tol:.3e} (trace {trace_err:.3e})"


def check(libs: dict, q, k, v, *, precision, block_q, block_kv, **mask):
    """Run the kernel on the CPU, check it against the trace; return o, lse."""
    options = {"precision": precision, "block_q": block_q, "block_kv": block_kv, **mask}
    o, lse = run_kernel(libs, q, k, v, **options)
    check_outputs(o, lse, q, k, v, **options)
    return o, lse


def _inputs(rng, n_q, n_k, d, lead=()):
    return tuple(rng.standard_normal((*lead, n, d)) for n in (n_q, n_k, n_k))


@needs_cxx
@pytest.mark.timeout(60)
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("case", CASES)
def test_matches_the_trace(libs, rng, case, precision):
    n_q, n_k, d, lead, causal, align, (bq, bkv) = CASES[case]
    q, k, v = _inputs(rng, n_q, n_k, d, lead)
    o, lse = check(libs, q, k, v, precision=precision, block_q=bq, block_kv=bkv, causal=causal,
                   causal_align=align)  # fmt: skip
    assert o.shape == (*lead, n_q, d) and lse.shape == (*lead, n_q)
    if case.startswith("empty"):
        seen = np.arange(n_q) + n_k - n_q >= 0
        assert np.isneginf(lse[~seen]).all() and np.isfinite(lse[seen]).all()
        assert (o[~seen] == 0).all() and (~seen).sum() == n_q - n_k


@needs_cxx
@pytest.mark.timeout(60)
def test_heads_are_independent(libs, rng):
    n_q, n_k, d, lead, causal, align, (bq, bkv) = CASES["multi-head"]
    q, k, v = _inputs(rng, n_q, n_k, d, lead)
    options = {"precision": "bfloat16", "block_q": bq, "block_kv": bkv, "causal": causal,
               "causal_align": align}  # fmt: skip
    o, lse = run_kernel(libs, q, k, v, **options)
    o_1, lse_1 = run_kernel(libs, q[1, 2], k[1, 2], v[1, 2], **options)
    # exact: the same compiled code (no BLAS, no reassociation at -O2, no atomics) runs the
    # same operations in the same order on the same rounded values of head (1, 2)
    np.testing.assert_array_equal(o[1, 2], o_1)
    np.testing.assert_array_equal(lse[1, 2], lse_1)


# --- 3. injected mistakes -----------------------------------------------------------------
# Each is a plausible bug, with the failure it must cause, on one problem built to make all
# of them bite, in float16: a row max from the wrong fragment row is harmless in exact
# arithmetic (softmax does not depend on the shift), and shows only when exp(s - m) leaves
# the range of P~'s type, which float16's 65504 makes reachable with moderate scores.

WRONG_O = r"^o error \S+ > tolerance "
NAN = "^an output is NaN"
MUTANTS = {  # name: (kernel text, its mutation, the failure it causes)
    "no rescale of the accumulator": (
        "o_acc[n][e] *= alpha[e >> 1];", "o_acc[n][e] *= 1.0f;", WRONG_O),
    # rows that see no key: exp(-inf - (-inf)) = NaN
    "no -inf guard": ("m_new[h] == NEG_INF ? 0.0f : m_new[h]", "m_new[h]", NAN),
    # row g takes the max of row g + 8 and the other way round
    "wrong fragment row for the row max": (
        "fmaxf(s[n][2 * h], s[n][2 * h + 1])",
        "fmaxf(s[n][2 * (h ^ 1)], s[n][2 * (h ^ 1) + 1])", f"{NAN}|{WRONG_O}"),
    # two lanes of a quad end up with one max, the other two with another
    "row max over lane pairs only": (
        "            part = fmaxf(part, __shfl_xor_sync(FULL_WARP, part, 2));\n", "", WRONG_O),
    "P~ halves swapped": (
        "pack_rn(s[2 * kk][0], s[2 * kk][1])", "pack_rn(s[2 * kk][1], s[2 * kk][0])", WRONG_O),
}  # fmt: skip
MUTANT_CONFIG = TENSOR_CORES.config(64, 32, 32, "float16")


@pytest.fixture(scope="module")
def mutant_libs(libs) -> OnDemand[str, dict[KernelConfig, Path]]:
    """Each mutant's build ({MUTANT_CONFIG: library}), made when its test first needs it."""
    source = kernel_text(TC_KERNEL_PATH)

    def build(name: str) -> dict[KernelConfig, Path]:
        old, new, _ = MUTANTS[name]
        assert source.count(old) == 1, f"mutant {name!r}: {old!r} is not in the kernel once"
        return {MUTANT_CONFIG: emu.build(emu.Build(MUTANT_CONFIG, source.replace(old, new)))}

    return OnDemand(build)


def biting_problem(rng) -> tuple[np.ndarray, ...]:
    """70 x 45, causal bottom-right, 32 x 32 tiles, float16: every mutant is certain to bite.

    * rows 0-24 see no key, in a block whose other rows do (the -inf guard);
    * a shared direction lifts every score of the second K/V tile by 10, so the max of the
      rows that see it (57-69) rises in the later tile and o_i must be rescaled;
    * another lifts every score of rows 8-15, 24-31, ... (row g + 8 of each warp's 16) by
      30: softmax does not change, but a row max taken from the wrong fragment row is 30
      off, and exp(s - m) leaves float16's range for P~ (e^30 > 65504, e^-30 rounds to 0);
    * a third lifts by 4 the scores of keys 0-3 of every 8 (lanes 0-1 of a quad hold them,
      lanes 2-3 keys 4-7), so a row max taken over lane pairs only is 4 too low in lanes
      2-3 and their keys weigh e^4 too much.
    """
    q, k, v = _inputs(rng, 70, 45, 64)
    # in the last three columns: the float32 sum q_i k_j meets its big, exact terms last
    q[:, -3], k[:32, -3], k[32:, -3] = 8.0, 0.0, 10.0  # s gains 8 * 10 / sqrt(64) = 10
    q[:, -2], k[:, -2] = np.where(np.arange(70) // 8 % 2 == 1, 30.0, 0.0), 8.0  # s gains 30
    q[:, -1], k[:, -1] = 8.0, np.where(np.arange(45) % 8 < 4, 4.0, 0.0)  # s gains 4
    s = (q @ k.T) / 8
    assert (s[57:, 32:].max(axis=1) > s[57:, :32].max(axis=1) + 3).all()
    # in most rows of each tile, the max of lanes 0-1's keys is above lanes 2-3's by 2 or
    # more (random scores take some of the 4; over 2,000 seeds, at least 93% of rows kept 2)
    lanes_01 = np.arange(45) % 8 < 4
    for keys in (slice(0, 32), slice(32, 45)):
        tile, lo = s[:, keys], lanes_01[keys]
        assert (tile[:, lo].max(axis=1) - tile[:, ~lo].max(axis=1) > 2).mean() > 0.5
    return q, k, v


@needs_cxx
@pytest.mark.timeout(60)
@pytest.mark.parametrize("mutant", MUTANTS)
def test_a_broken_kernel_fails(libs, mutant_libs, rng, mutant):
    q, k, v = biting_problem(rng)
    options = {"precision": "float16", "causal": True, "block_q": 32, "block_kv": 32}
    check(libs, q, k, v, **options)  # the correct kernel passes on these very inputs
    with pytest.raises(AssertionError, match=MUTANTS[mutant][2]):
        check(mutant_libs[mutant], q, k, v, **options)


PADDING_MUTANT = ("tile[x][w] = lo | (hi << 16);", "if (row < n) tile[x][w] = lo | (hi << 16);")


@needs_cxx
@pytest.mark.timeout(60)
def test_a_tile_padding_left_unzeroed_is_caught(libs, rng):
    """v's rows past n_k must be written as 0: P~ is 0 there, but 0 x NaN = NaN. On a GPU the
    unwritten words hold whatever was there; the emulator fills shared memory with NaN first
    (``emu.poison_call``), so the mutant fails, and would pass without that fill."""
    old, new = PADDING_MUTANT
    source = kernel_text(TC_KERNEL_PATH)
    assert source.count(old) == 1
    lib = emu.build(emu.Build(MUTANT_CONFIG, source.replace(old, new)))
    q, k, v = _inputs(rng, 40, 20, 64)  # one K/V tile, 12 of its 32 rows padding
    options = {"precision": "float16", "block_q": 32, "block_kv": 32}
    check(libs, q, k, v, **options)
    call, bits = TENSOR_CORES.prepare(q, k, v, **options)
    # first, freshly loaded: shared memory is zero (static storage) and the bug hides
    o, lse = emu.run(lib, call, bits, poison_shared=False)
    check_outputs(o, lse, q, k, v, **options)
    o, _ = emu.run(lib, call, bits)
    assert np.isnan(o).all()


# --- 4. ThreadSanitizer -------------------------------------------------------------------

RACE = "WARNING: ThreadSanitizer"
TSAN_CONFIG = TENSOR_CORES.config(
    64, 32, 32, "float16"
)  # 2 warps a block: races between warps show
SYNCS = [
    "__syncthreads();  // q_i, k_j and v_j are in shared memory",
    "__syncthreads();  // everyone is done with k_j and v_j",
]
TSAN_CASES = [  # (n_q, n_k, causal, align, precision): 70 x 50 bottom-right: 2 tiles in block 1
    (70, 50, True, "bottom_right", "float16"),
    (33, 90, False, "bottom_right", "bfloat16"),
]


def _tsan_works() -> bool:
    if not HAVE_CXX:
        return False
    probe = subprocess.run(
        [emu.CXX, "-fsanitize=thread", "-x", "c++", "-", "-o", "/dev/null"],
        input="int main() { return 0; }", capture_output=True, text=True,
    )  # fmt: skip
    return probe.returncode == 0


needs_tsan = pytest.mark.skipif(not _tsan_works(), reason="g++ with libtsan is needed")


@pytest.fixture(scope="module")
def tsan_programs() -> OnDemand[tuple[str | None, str], Path]:
    """(None, precision): the kernel's TSan program; (sync, "float16"): the kernel without
    that __syncthreads(). Each built when a test first needs it."""
    source = kernel_text(TC_KERNEL_PATH)

    def build(key: tuple[str | None, str]) -> Path:
        sync, precision = key
        if sync is None:
            return emu.build(emu.Build(TENSOR_CORES.config(64, 32, 32, precision), tsan=True))
        assert precision == "float16", "the programs without a __syncthreads() are float16"
        assert source.count(sync) == 1, f"{sync!r} is not in the kernel exactly once"
        text = source.replace(sync, "// removed:", 1)
        return emu.build(emu.Build(TSAN_CONFIG, text, tsan=True))

    return OnDemand(build)


def _run_tsan(exe, rng, n_q, n_k, causal, align, precision):
    q, k, v = _inputs(rng, n_q, n_k, 64)
    options = {"causal": causal, "causal_align": align}
    call, bits = TENSOR_CORES.prepare(
        q, k, v, precision=precision, block_q=32, block_kv=32, **options
    )
    o, lse, report = emu.run_tsan(exe, call, bits, timeout=100)
    return (q, k, v), options, o, lse, report


@needs_tsan
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("n_q", "n_k", "causal", "align", "precision"), TSAN_CASES)
def test_no_data_race(tsan_programs, rng, n_q, n_k, causal, align, precision):
    exe = tsan_programs[None, precision]
    qkv, options, o, lse, report = _run_tsan(exe, rng, n_q, n_k, causal, align, precision)
    assert RACE not in report, report
    assert not np.isnan(o).any() and not np.isnan(lse).any(), "an output was never written"
    check_outputs(o, lse, *qkv, precision=precision, block_q=32, block_kv=32, **options)


@needs_tsan
@pytest.mark.timeout(120)
@pytest.mark.parametrize("sync", SYNCS)
def test_a_missing_syncthreads_is_caught(tsan_programs, rng, sync):
    *_, report = _run_tsan(tsan_programs[sync, "float16"], rng, 70, 50, True, "bottom_right",
                           "float16")  # fmt: skip
    assert RACE in report, "no race reported without " + sync
    assert "kernels/flash_attention_tc.cu:" in report  # the report names the kernel's line


SPLIT_WARP = """
extern "C" __global__ void flash_attention_tc_fwd(const unsigned short* q, const unsigned short* k,
    const unsigned short* v, float* o, float* lse, const int*, const int*, const int*, const int*,
    const int*, float scale, int, int, int, int, int, int, int, int, int, int, int, int, int) {
    float x = float(threadIdx.x);
    if (threadIdx.x % 32 < 16) x = __shfl_xor_sync(0xffffffffu, x, 1);  // half of each warp
    __syncthreads();  // the other half waits here: neither can go on
    o[threadIdx.x] = x;
}
"""
RUN_IN_A_CHILD = """
import pickle, sys
from tests.gpu.cuda_emulation import emu
lib, call, bits = pickle.loads(sys.stdin.buffer.read())
emu.run(lib, call, bits, poison_shared=False)
"""


@needs_cxx
@pytest.mark.timeout(60)
def test_the_emulator_stops_a_launch_where_no_thread_can_go_on(rng):
    """Half a warp at a shuffle, the other half at __syncthreads() (undefined on a GPU): the
    fibers see that no thread can move and abort with a message instead of hanging."""
    q = rng.standard_normal((20, 16)).astype(np.float32)
    call, bits = TENSOR_CORES.prepare(q, q, q, precision="float16", block_q=64, block_kv=32)
    lib = emu.build(emu.Build(call.config, SPLIT_WARP))
    child = subprocess.run(
        [sys.executable, "-c", RUN_IN_A_CHILD], input=pickle.dumps((lib, call, bits)),
        capture_output=True, cwd=ROOT, timeout=50,
    )  # fmt: skip
    assert child.returncode == -signal.SIGABRT, child.stderr.decode()
    assert b"cuda_emu: deadlock in block 0,0: 128 threads wait at a barrier" in child.stderr
