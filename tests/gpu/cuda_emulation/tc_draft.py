"""DRAFT for issue #15 (not a test module, not wired in): build, compile and emulate
kernels/flash_attention_tc.cu.

    python -m tests.gpu.cuda_emulation.tc_draft compile    # NVRTC + ptxas -v table
    python -m tests.gpu.cuda_emulation.tc_draft emulate    # CPU runs vs record_trace

``TcConfig`` and ``tc_shared_bytes`` are what flashviz/gpu/launch_params.py would gain; the
emulation runs the kernel with harness_tc.cpp / cuda_emu_warp.h and compares o and lse with
``record_trace(precision=...)`` at the same block sizes, then checks that a few injected
mistakes (fragment layout, shuffle, rescale, packing) fail.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ml_dtypes
import numpy as np

from flashviz.core.masking import causal_offset
from flashviz.core.trace import record_trace
from flashviz.gpu.launch_params import KERNEL_HEAD_DIMS, SHARED_LIMIT_BYTES

HERE = Path(__file__).resolve().parent
TC_PATH = HERE.parent.parent.parent / "kernels" / "flash_attention_tc.cu"
TC_NAME = "flash_attention_tc_fwd"
TC_ARCHS = ("sm_80", "sm_86", "sm_89", "sm_90")  # mma.sync m16n8k16 bf16 needs sm_80
TC_BLOCKS = ((128, 64), (64, 64), (64, 32))  # (block_q, block_kv), best first
INPUTS = {"float16": (np.dtype(np.float16), 0), "bfloat16": (np.dtype(ml_dtypes.bfloat16), 1)}


def tc_shared_bytes(head_dim: int, block_q: int, block_kv: int) -> int:
    """q_s, k_s (rows of head_dim / 2 + 4 words) and vt_s (rows of block_kv / 2 + 4 words)."""
    return 4 * ((block_q + block_kv) * (head_dim // 2 + 4) + head_dim * (block_kv // 2 + 4))


@dataclass(frozen=True)
class TcConfig:
    head_dim: int
    block_q: int
    block_kv: int
    precision: str  # "float16" or "bfloat16"

    @property
    def num_threads(self) -> int:
        return 32 * self.block_q // 16  # one warp per 16 query rows

    @property
    def defines(self) -> dict[str, int]:
        return {
            "BLOCK_Q": self.block_q,
            "BLOCK_KV": self.block_kv,
            "HEAD_DIM": self.head_dim,
            "NUM_THREADS": self.num_threads,
            "INPUT_BF16": INPUTS[self.precision][1],
        }

    @property
    def shared_bytes(self) -> int:
        return tc_shared_bytes(self.head_dim, self.block_q, self.block_kv)

    def source(self, text: str | None = None) -> str:
        defines = "".join(f"#define {k} {v}\n" for k, v in self.defines.items())
        body = TC_PATH.read_text() if text is None else text
        return f'{defines}#line 1 "kernels/{TC_PATH.name}"\n{body}'


def tc_blocks(head_dim: int) -> list[tuple[int, int]]:
    return [b for b in TC_BLOCKS if tc_shared_bytes(head_dim, *b) <= SHARED_LIMIT_BYTES]


def offered() -> list[TcConfig]:
    return [
        TcConfig(hd, *blocks, precision)
        for hd in KERNEL_HEAD_DIMS
        for blocks in tc_blocks(hd)
        for precision in INPUTS
    ]


def compile_table() -> bool:
    from flashviz.gpu.nvrtc import compile_source

    ok = True
    print("HEAD_DIM BLOCK_Q BLOCK_KV threads input    arch   regs spill(st/ld) stack smem")
    for c in offered():
        for arch in TC_ARCHS:
            info = compile_source(c.source(), arch, kernel=TC_NAME).ptxas
            good = (info.spill_stores, info.spill_loads, info.stack_bytes) == (0, 0, 0)
            good = good and info.shared_bytes == c.shared_bytes <= SHARED_LIMIT_BYTES
            ok = ok and good
            print(
                f"{c.head_dim:8} {c.block_q:7} {c.block_kv:8} {c.num_threads:7} {c.precision:8} "
                f"{arch:6}{info.registers:5} {info.spill_stores:6}/{info.spill_loads:<6}"
                f"{info.stack_bytes:5} {info.shared_bytes:6}{'' if good else '  BAD'}",
                flush=True,
            )
    return ok


def build(config: TcConfig, text: str | None, out_dir: Path) -> ctypes.CDLL:
    kernel = out_dir / "kernel_tc.cu"
    kernel.write_text(config.source(text))
    lib = out_dir / "tc.so"
    flags = ["-std=c++20", "-pthread", "-Wall", "-Wno-unknown-pragmas", f"-I{HERE}", "-O1"]
    cmd = ["g++", *flags, "-shared", "-fPIC", f'-DKERNEL_SOURCE="{kernel}"']
    done = subprocess.run(
        [*cmd, str(HERE / "harness_tc.cpp"), "-o", str(lib)], capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(done.stderr)
    so = ctypes.CDLL(str(lib))
    u16, f32 = ctypes.POINTER(ctypes.c_uint16), ctypes.POINTER(ctypes.c_float)
    i32, u32 = ctypes.c_int, ctypes.c_uint
    so.run_flash_attention_tc.argtypes = [u16] * 3 + [f32] * 2 + [i32] * 3
    so.run_flash_attention_tc.argtypes += [ctypes.c_float, i32, i32] + [u32] * 3
    return so


def run_vs_trace(lib, config: TcConfig, n_q, n_k, d, causal, align, seed=0) -> float:
    """Largest |kernel - trace| over o and lse (inf if empty rows disagree or a NaN shows)."""
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((n, d)).astype(np.float32) for n in (n_q, n_k, n_k))
    dtype = INPUTS[config.precision][0]
    bits = [np.ascontiguousarray(x.astype(dtype)).view(np.uint16) for x in (q, k, v)]
    o = np.full((n_q, d), np.nan, np.float32)
    lse = np.full(n_q, np.nan, np.float32)
    ptr = [x.ctypes.data_as(ctypes.POINTER(ctypes.c_uint16)) for x in bits]
    ptr += [x.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) for x in (o, lse)]
    offset = causal_offset(n_q, n_k, align)
    grid_x = -(-n_q // config.block_q)
    scalars = (n_q, n_k, d, np.float32(1 / np.sqrt(d)), int(causal), offset)
    lib.run_flash_attention_tc(*ptr, *scalars, grid_x, 1, config.num_threads)
    trace = record_trace(
        q, k, v, block_q=config.block_q, block_kv=config.block_kv, causal=causal,
        causal_align=align, precision=config.precision,
    )  # fmt: skip
    if np.isnan(o).any() or np.isnan(lse).any():
        return float("inf")
    if (np.isneginf(lse) != np.isneginf(trace.lse)).any():
        return float("inf")
    seen = np.isfinite(trace.lse)
    lse_err = np.abs(lse[seen] - trace.lse[seen]).max(initial=0.0)
    return max(float(np.abs(o - trace.o).max()), float(lse_err))


CASES = [  # n_q, n_k, d, causal, align
    (20, 37, 64, False, "bottom_right"),
    (70, 150, 64, True, "bottom_right"),
    (37, 20, 64, True, "bottom_right"),  # 17 empty rows
    (130, 150, 40, True, "top_left"),
    (50, 100, 128, True, "top_left"),  # run by builds with HEAD_DIM 128 only
]
MUTANTS = {
    "A registers 1 and 2 of P~ swapped": (
        "pack_rn(s[2 * kk][2], s[2 * kk][3]),\n"
        "                                   pack_rn(s[2 * kk + 1][0], s[2 * kk + 1][1])",
        "pack_rn(s[2 * kk + 1][0], s[2 * kk + 1][1]),\n"
        "                                   pack_rn(s[2 * kk][2], s[2 * kk][3])",
    ),
    "row max over lane pairs only": (
        "            part = fmaxf(part, __shfl_xor_sync(FULL_WARP, part, 2));\n",
        "",
    ),
    "no diag(alpha) O": ("o_acc[n][e] *= alpha[e >> 1];", "o_acc[n][e] *= 1.0f;"),
    "P~ halves swapped": (
        "pack_rn(s[2 * kk][0], s[2 * kk][1])",
        "pack_rn(s[2 * kk][1], s[2 * kk][0])",
    ),
}
EMULATED = [
    TcConfig(64, 64, 64, "float16"),
    TcConfig(64, 64, 64, "bfloat16"),
    TcConfig(128, 64, 32, "float16"),
]
TOLERANCE = 1e-4  # observed: <= 7e-6 (float32 summation order, an occasional P~ rounding flip)


def emulate() -> bool:
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for i, config in enumerate(EMULATED):
            out = Path(tmp) / f"c{i}"
            out.mkdir()
            lib = build(config, None, out)
            for n_q, n_k, d, causal, align in CASES:
                if d > config.head_dim:
                    continue
                err = run_vs_trace(lib, config, n_q, n_k, d, causal, align)
                ok = ok and err <= TOLERANCE
                print(f"{config} n_q={n_q} n_k={n_k} d={d} {causal=} {align}: {err:.2e}")
        text = TC_PATH.read_text()
        for i, (name, (old, new)) in enumerate(MUTANTS.items()):
            assert text.count(old) == 1, name
            out = Path(tmp) / f"m{i}"
            out.mkdir()
            config = TcConfig(64, 64, 64, "float16")
            lib = build(config, text.replace(old, new), out)
            err = run_vs_trace(lib, config, 70, 150, 64, True, "bottom_right")
            ok = ok and err > TOLERANCE
            print(f"mistake {name!r}: {err:.2e} ({'caught' if err > TOLERANCE else 'MISSED'})")
    return ok


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    good = True
    if what in ("compile", "all"):
        good = compile_table() and good
    if what in ("emulate", "all"):
        good = emulate() and good
    sys.exit(0 if good else 1)
