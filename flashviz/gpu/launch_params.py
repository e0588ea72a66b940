"""Compile-time sizes and launch geometry of ``kernels/flash_attention.cu``.

The one place that decides them, shared by the CuPy launcher (``flashviz.gpu.launcher``), the NVRTC
compile check (``flashviz.gpu.nvrtc``) and the CPU emulation tests. Plain Python: no CuPy.
The same for the tensor-core kernel ``kernels/flash_attention_tc.cu`` at the
end: ``TcConfig``, ``tc_config``, ``tc_blocks``, ``tc_kernel_source``, ``tc_bits``,
``tc_call``, ``prepare_tc_call``.

Head dims: the kernel is compiled for the head dims in ``KERNEL_HEAD_DIMS``; any other
d <= 128 runs on the next larger one (``padded_head_dim``): the shared tiles get zero
columns past d, which add nothing to q k^T, and o's extra columns are never written.
flash-attn pads the same way (to 32, 64, 96, 128, ...).

Block sizes: static shared memory is limited to 48 KiB a block, and the tiles grow with
the head dim, so the larger pairs of ``KERNEL_BLOCKS`` fit only small head dims (the
paper's B_c = ceil(M / 4d) has the same cause); ``kernel_blocks(d)`` lists those that fit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from flashviz.core.checks import check_block, check_problem
from flashviz.core.kernel_files import KERNEL_PATH, TC_KERNEL_PATH
from flashviz.core.masking import causal_offset
from flashviz.core.precision import get_precision

KERNEL_HEAD_DIMS = (16, 32, 64, 96, 128)
KERNEL_BLOCKS = ((64, 64), (64, 32), (32, 64), (32, 32))  # (block_q, block_kv), best first
THREADS_PER_ROW = 16  # threads sharing a group of rows (they split its columns)
ROWS_PER_THREAD = 4  # rows of S and O each thread owns
SHARED_LIMIT_BYTES = 48 * 1024  # static __shared__ limit per block
FLOAT_BYTES = 4
PAD = 1  # spare float per shared row, as in the .cu


@dataclass(frozen=True)
class KernelConfig:
    """Compile-time sizes of one kernel build; ``defines`` become its ``#define`` lines."""

    head_dim: int  # HEAD_DIM: d padded up to one of KERNEL_HEAD_DIMS
    block_q: int
    block_kv: int
    num_threads: int
    threads_per_row: int = THREADS_PER_ROW

    @property
    def defines(self) -> dict[str, int]:
        return {
            "BLOCK_Q": self.block_q,
            "BLOCK_KV": self.block_kv,
            "HEAD_DIM": self.head_dim,
            "NUM_THREADS": self.num_threads,
            "THREADS_PER_ROW": self.threads_per_row,
        }

    @property
    def shared_bytes(self) -> int:
        return shared_bytes(self.head_dim, self.block_q, self.block_kv, self.threads_per_row)


def shared_bytes(head_dim: int, block_q: int, block_kv: int, threads_per_row: int) -> int:
    """Static shared memory of the kernel: the four ``__shared__`` arrays of the .cu."""
    q_i = block_q * (head_dim + PAD)
    kv_j = block_kv * (head_dim + PAD)
    p_ij = block_q * (block_kv + PAD)
    row_part = block_q * threads_per_row
    return FLOAT_BYTES * (q_i + kv_j + p_ij + row_part)


def padded_head_dim(d: int) -> int:
    """The compiled HEAD_DIM that runs head dim d: the smallest of KERNEL_HEAD_DIMS >= d."""
    d = check_block("d", d)
    for head_dim in KERNEL_HEAD_DIMS:
        if head_dim >= d:
            return head_dim
    raise ValueError(f"d must be at most {KERNEL_HEAD_DIMS[-1]} for the CUDA kernel, got {d}")


def kernel_blocks(d: int) -> tuple[tuple[int, int], ...]:
    """The (block_q, block_kv) pairs of KERNEL_BLOCKS whose tiles fit for head dim d."""
    head_dim = padded_head_dim(d)
    return tuple(
        (bq, bkv)
        for bq, bkv in KERNEL_BLOCKS
        if shared_bytes(head_dim, bq, bkv, THREADS_PER_ROW) <= SHARED_LIMIT_BYTES
    )


def kernel_config(d: int, block_q: int, block_kv: int) -> KernelConfig:
    """Validate (d, block_q, block_kv) and return the build that runs them."""
    head_dim = padded_head_dim(d)
    block_q = check_block("block_q", block_q)
    block_kv = check_block("block_kv", block_kv)
    if block_q % ROWS_PER_THREAD or block_q * THREADS_PER_ROW // ROWS_PER_THREAD > 1024:
        raise ValueError(
            f"block_q must be a multiple of {ROWS_PER_THREAD} and at most "
            f"{1024 * ROWS_PER_THREAD // THREADS_PER_ROW}, got {block_q}"
        )
    if block_kv % THREADS_PER_ROW:
        raise ValueError(f"block_kv must be a multiple of {THREADS_PER_ROW}, got {block_kv}")
    config = KernelConfig(
        head_dim=head_dim,
        block_q=block_q,
        block_kv=block_kv,
        num_threads=block_q * THREADS_PER_ROW // ROWS_PER_THREAD,
    )
    if config.shared_bytes > SHARED_LIMIT_BYTES:
        raise ValueError(
            f"block_q = {block_q}, block_kv = {block_kv} need {config.shared_bytes} bytes of "
            f"shared memory at head dim {head_dim}, over the {SHARED_LIMIT_BYTES}-byte limit; "
            f"pairs that fit d = {d}: {kernel_blocks(d)}"
        )
    return config


def offered_configs() -> list[KernelConfig]:
    """Every build the app offers: each of KERNEL_HEAD_DIMS with each pair that fits it."""
    return [kernel_config(d, *blocks) for d in KERNEL_HEAD_DIMS for blocks in kernel_blocks(d)]


def kernel_source(config: KernelConfig, source: str | None = None) -> str:
    """The .cu text with the config's ``#define`` lines prepended.

    A ``#line`` directive keeps compiler messages pointing at the lines of the .cu file.
    ``source`` replaces the file's text (to compile a modified copy).
    """
    text = KERNEL_PATH.read_text() if source is None else source
    defines = "".join(f"#define {name} {value}\n" for name, value in config.defines.items())
    return f'{defines}#line 1 "kernels/{KERNEL_PATH.name}"\n{text}'


def launch_params(
    config: KernelConfig | TcConfig, n_q: int, n_k: int, batch_heads: int
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(grid, block): one block of NUM_THREADS per (query block, batch*head), for either
    kernel."""
    n_q = check_block("n_q", n_q)
    check_block("n_k", n_k)
    batch_heads = check_block("batch_heads", batch_heads)
    if batch_heads > 65535:
        raise ValueError(f"batch_heads must be at most 65535 (grid.y limit), got {batch_heads}")
    grid = (-(-n_q // config.block_q), batch_heads, 1)
    return grid, (config.num_threads, 1, 1)


@dataclass(frozen=True)
class KernelCall:
    """Everything one launch needs besides the arrays: build, geometry, scalar arguments."""

    config: KernelConfig | TcConfig
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    lead: tuple[int, ...]  # leading (batch, head) dims of q; their product is grid.y
    n_q: int
    n_k: int
    d: int
    scale: float
    causal: bool
    causal_offset: int  # row r sees key c iff c <= r + causal_offset

    @property
    def batch_heads(self) -> int:
        return self.grid[1]

    @property
    def scalars(self) -> tuple[np.int32, np.int32, np.int32, np.float32, np.int32, np.int32]:
        """The kernel's scalar arguments (n_q, n_k, d, scale, causal, causal_offset).

        NumPy scalars, because CuPy would pass a Python int as long long and a float as double.
        """
        i32 = np.int32
        return (
            i32(self.n_q),
            i32(self.n_k),
            i32(self.d),
            np.float32(self.scale),
            i32(self.causal),
            i32(self.causal_offset),
        )


def prepare_call(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    block_q: int | None = None,
    block_kv: int | None = None,
) -> tuple[KernelCall, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Validate a problem; return its KernelCall and q, k, v as contiguous float32 (bh, n, d).

    ``block_q``/``block_kv`` default to the first pair of ``kernel_blocks(d)``.
    """
    prob = check_problem(q, k, v, scale, causal_align, causal=causal)
    n_q, n_k, d = prob.n_q, prob.n_k, prob.d
    default_q, default_kv = kernel_blocks(d)[0]
    config = kernel_config(
        d, default_q if block_q is None else block_q, default_kv if block_kv is None else block_kv
    )
    lead = prob.q.shape[:-2]
    batch_heads = int(np.prod(lead, dtype=np.int64))
    grid, block = launch_params(config, n_q, n_k, batch_heads)
    arrays = tuple(
        np.ascontiguousarray(x.reshape(batch_heads, x.shape[-2], d), dtype=np.float32)
        for x in (prob.q, prob.k, prob.v)
    )
    call = KernelCall(
        config,
        grid,
        block,
        lead,
        n_q,
        n_k,
        d,
        prob.scale,
        bool(causal),
        causal_offset(n_q, n_k, causal_align),
    )
    return call, arrays


# --- The tensor-core kernel, kernels/flash_attention_tc.cu ----------------------------------
#
# Float16 / bfloat16 inputs (passed as their raw 16 bits), float32 o and lse. Each warp owns
# 16 query rows (FA2's split-Q), so NUM_THREADS = 32 * BLOCK_Q / 16; BLOCK_KV is a multiple
# of 16 (the k of the P~ V mma) and so is HEAD_DIM (every one of KERNEL_HEAD_DIMS is).
# Shared tiles are rows of 32-bit words (two 16-bit elements) with TC_PAD_WORDS spare words.

TC_BLOCKS = ((128, 64), (64, 64), (64, 32))  # (block_q, block_kv), best first
TC_PRECISIONS = {"float16": 0, "bfloat16": 1}  # precision -> INPUT_BF16
TC_ROWS_PER_WARP = 16  # the m of mma.m16n8k16
TC_K = 16  # the k of mma.m16n8k16: BLOCK_KV and HEAD_DIM are multiples of it
TC_PAD_WORDS = 4  # spare 32-bit words a shared row, as in the .cu
WORD_BYTES = 4


@dataclass(frozen=True)
class TcConfig:
    """Compile-time sizes of one build of the tensor-core kernel."""

    head_dim: int  # HEAD_DIM: d padded up to one of KERNEL_HEAD_DIMS
    block_q: int
    block_kv: int
    precision: str  # "float16" or "bfloat16"

    @property
    def num_threads(self) -> int:
        return 32 * self.block_q // TC_ROWS_PER_WARP  # one warp per 16 query rows

    @property
    def defines(self) -> dict[str, int]:
        return {
            "BLOCK_Q": self.block_q,
            "BLOCK_KV": self.block_kv,
            "HEAD_DIM": self.head_dim,
            "NUM_THREADS": self.num_threads,
            "INPUT_BF16": TC_PRECISIONS[self.precision],
        }

    @property
    def shared_bytes(self) -> int:
        return tc_shared_bytes(self.head_dim, self.block_q, self.block_kv)


def tc_shared_bytes(head_dim: int, block_q: int, block_kv: int) -> int:
    """Static shared memory of the tensor-core kernel: q_s, k_s (rows of HEAD_DIM / 2 + pad
    words) and vt_s (V transposed: HEAD_DIM rows of BLOCK_KV / 2 + pad words)."""
    q_k = (block_q + block_kv) * (head_dim // 2 + TC_PAD_WORDS)
    vt = head_dim * (block_kv // 2 + TC_PAD_WORDS)
    return WORD_BYTES * (q_k + vt)


def tc_blocks(d: int) -> tuple[tuple[int, int], ...]:
    """The (block_q, block_kv) pairs of TC_BLOCKS whose tiles fit for head dim d."""
    head_dim = padded_head_dim(d)
    return tuple(b for b in TC_BLOCKS if tc_shared_bytes(head_dim, *b) <= SHARED_LIMIT_BYTES)


def tc_config(d: int, block_q: int, block_kv: int, precision: str) -> TcConfig:
    """Validate (d, block_q, block_kv, precision); return the tensor-core build that runs them."""
    head_dim = padded_head_dim(d)
    block_q = check_block("block_q", block_q)
    block_kv = check_block("block_kv", block_kv)
    if precision not in TC_PRECISIONS:
        raise ValueError(
            f"precision must be one of {list(TC_PRECISIONS)} for the tensor-core kernel, "
            f"got {precision!r}"
        )
    if block_q % TC_ROWS_PER_WARP or block_q > 1024 * TC_ROWS_PER_WARP // 32:
        raise ValueError(
            f"block_q must be a multiple of {TC_ROWS_PER_WARP} (one warp each) and at most "
            f"{1024 * TC_ROWS_PER_WARP // 32}, got {block_q}"
        )
    if block_kv % TC_K:
        raise ValueError(f"block_kv must be a multiple of {TC_K}, got {block_kv}")
    config = TcConfig(head_dim, block_q, block_kv, precision)
    if config.shared_bytes > SHARED_LIMIT_BYTES:
        raise ValueError(
            f"block_q = {block_q}, block_kv = {block_kv} need {config.shared_bytes} bytes of "
            f"shared memory at head dim {head_dim}, over the {SHARED_LIMIT_BYTES}-byte limit; "
            f"pairs that fit d = {d}: {tc_blocks(d)}"
        )
    return config


def offered_tc_configs() -> list[TcConfig]:
    """Every tensor-core build: each head dim with each pair that fits it, in each precision."""
    return [
        tc_config(d, *blocks, precision)
        for d in KERNEL_HEAD_DIMS
        for blocks in tc_blocks(d)
        for precision in TC_PRECISIONS
    ]


def tc_kernel_source(config: TcConfig, source: str | None = None) -> str:
    """kernels/flash_attention_tc.cu (or ``source``) with the config's ``#define`` lines."""
    text = TC_KERNEL_PATH.read_text() if source is None else source
    defines = "".join(f"#define {name} {value}\n" for name, value in config.defines.items())
    return f'{defines}#line 1 "kernels/{TC_KERNEL_PATH.name}"\n{text}'


def tc_bits(x: np.ndarray, precision: str) -> np.ndarray:
    """``x`` rounded to ``precision``'s storage type (to nearest even, as
    ``flashviz.core.precision.store``), as its raw 16 bits: contiguous uint16, same shape."""
    storage = get_precision(precision).storage
    with np.errstate(over="ignore"):  # out of range -> inf, as on the GPU
        return np.ascontiguousarray(np.asarray(x).astype(storage)).view(np.uint16)


def tc_call(call: KernelCall, precision: str) -> KernelCall:
    """The tensor-core launch of ``call``'s problem (same shapes, scale and mask) in
    ``precision``, with the first pair of ``tc_blocks(d)``: how the GPU sweep runs it."""
    config = tc_config(call.d, *tc_blocks(call.d)[0], precision)
    grid, block = launch_params(config, call.n_q, call.n_k, call.batch_heads)
    return replace(call, config=config, grid=grid, block=block)


def prepare_tc_call(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    precision: str,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    block_q: int | None = None,
    block_kv: int | None = None,
) -> tuple[KernelCall, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``prepare_call`` for the tensor-core kernel: q, k, v rounded to ``precision`` (to
    nearest even, as ``flashviz.core.precision.store``) and returned as their raw 16 bits,
    contiguous uint16 (bh, n, d). ``block_q``/``block_kv`` default to ``tc_blocks(d)[0]``."""
    prob = check_problem(q, k, v, scale, causal_align, causal=causal)
    n_q, n_k, d = prob.n_q, prob.n_k, prob.d
    default_q, default_kv = tc_blocks(d)[0]
    config = tc_config(
        d,
        default_q if block_q is None else block_q,
        default_kv if block_kv is None else block_kv,
        precision,
    )
    lead = prob.q.shape[:-2]
    batch_heads = int(np.prod(lead, dtype=np.int64))
    grid, block = launch_params(config, n_q, n_k, batch_heads)
    arrays = tuple(
        tc_bits(x.reshape(batch_heads, x.shape[-2], d), precision) for x in (prob.q, prob.k, prob.v)
    )
    call = KernelCall(
        config, grid, block, lead, n_q, n_k, d, prob.scale, bool(causal),
        causal_offset(n_q, n_k, causal_align),
    )  # fmt: skip
    return call, arrays
