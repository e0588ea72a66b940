"""The CUDA kernels of ``kernels/``, described once: compile-time sizes and launch geometry.

Each kernel is one ``Kernel``: its file and entry point, the precisions it is built for,
the (block_q, block_kv) pairs it offers, the threads a block needs, its static shared
memory, the rules its blocks follow, its extra ``#define`` lines, and how its inputs are
prepared on the host. ``SCALAR`` (``kernels/flash_attention.cu``: float32, every thread
owns rows of S and O) and ``TENSOR_CORES`` (``kernels/flash_attention_tc.cu``: float16 /
bfloat16 inputs on ``mma.m16n8k16``, float32 state) are its two instances; a further kernel
is one more instance. A ``KernelConfig`` is one build of one kernel, a ``KernelCall`` one
launch. The one place that decides them, shared by the CuPy launcher
(``flashviz.gpu.device``), the NVRTC compile check (``flashviz.gpu.nvrtc``) and the CPU
emulation tests. Plain Python: no CuPy.

Head dims: the kernels are compiled for the head dims in ``KERNEL_HEAD_DIMS``; any other
d <= 128 runs on the next larger one (``padded_head_dim``): the shared tiles get zero
columns past d, which add nothing to q k^T, and o's extra columns are never written.
flash-attn pads the same way (to 32, 64, 96, 128, ...).

Block sizes: static shared memory is limited to 48 KiB a block, and the tiles grow with
the head dim, so the larger pairs fit only small head dims (the paper's B_c = ceil(M / 4d)
has the same cause); ``Kernel.fitting_blocks(d)`` lists those that fit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from flashviz.core.block_mask import BlockMask, causal_kinds, create_block_mask, kv_lists
from flashviz.core.checks import check_block, check_scores_fit, check_tiled_problem
from flashviz.core.fa4 import check_rescale_threshold, check_threshold_fits
from flashviz.core.inner_step import LN2
from flashviz.core.kernel_files import KERNEL_NAME, KERNEL_PATH, TC_KERNEL_NAME, TC_KERNEL_PATH
from flashviz.core.masks import MASK_KINDS, MaskMod, MaskSpec, mask_entries, mask_spec
from flashviz.core.precision import get_precision
from flashviz.core.problem import TiledProblem

KERNEL_HEAD_DIMS = (16, 32, 64, 96, 128)
MASK_DEFINES = {f"MASK_{kind.upper()}": code for kind, code in MASK_KINDS.items()}
SHARED_LIMIT_BYTES = 48 * 1024  # static __shared__ limit per block
MAX_THREADS = 1024  # threads a block may have


@dataclass(frozen=True)
class Kernel:
    """One CUDA kernel: what the launcher, NVRTC and the emulation need to know of it."""

    name: str  # as the app shows it
    path: Path  # the .cu file
    entry: str  # its extern "C" __global__ function
    precisions: tuple[str, ...]  # the input precisions it is built for, default first
    min_arch: int  # the oldest compute capability it builds for (75: sm_75)
    blocks: tuple[tuple[int, int], ...]  # (block_q, block_kv) it offers, best first
    input_dtype: type[np.generic]  # the element type of q, k, v it reads
    threads: Callable[[int], int]  # NUM_THREADS of a block_q
    shared_bytes: Callable[[int, int, int], int]  # static shared memory of (HEAD_DIM, bq, bkv)
    block_rules: Callable[[int, int], str | None]  # why (bq, bkv) cannot be built, or None
    extra_defines: Callable[[KernelConfig], dict[str, int]]  # #defines beyond the sizes
    inputs: Callable[[np.ndarray, str], np.ndarray]  # (bh, n, d) q, k or v as it reads them

    def __reduce__(self) -> tuple[Callable[[str], Kernel], tuple[str]]:
        """Pickled by name: the one instance of ``KERNELS`` with this name."""
        return kernel_named, (self.name,)

    def fitting_blocks(self, d: int) -> tuple[tuple[int, int], ...]:
        """The (block_q, block_kv) pairs of ``blocks`` whose tiles fit for head dim d."""
        head_dim = padded_head_dim(d)
        return tuple(
            b for b in self.blocks if self.shared_bytes(head_dim, *b) <= SHARED_LIMIT_BYTES
        )

    def config(
        self,
        d: int,
        block_q: int,
        block_kv: int,
        precision: str | None = None,
        rescale_threshold: float = 0.0,
    ) -> KernelConfig:
        """Validate (d, block_q, block_kv, precision, FA4's rescale threshold); return the
        build that runs them (``precision`` None: the kernel's first)."""
        head_dim = padded_head_dim(d)
        block_q = check_block("block_q", block_q)
        block_kv = check_block("block_kv", block_kv)
        precision = self.precisions[0] if precision is None else precision
        if precision not in self.precisions:
            raise ValueError(
                f"precision must be one of {list(self.precisions)} for the {self.name} kernel, "
                f"got {precision!r}"
            )
        broken = self.block_rules(block_q, block_kv)
        if broken is not None:
            raise ValueError(broken)
        threshold = check_rescale_threshold(rescale_threshold)
        check_threshold_fits(threshold, get_precision(precision))
        config = KernelConfig(self, head_dim, block_q, block_kv, precision, threshold)
        if config.shared_bytes > SHARED_LIMIT_BYTES:
            raise ValueError(
                f"block_q = {block_q}, block_kv = {block_kv} need {config.shared_bytes} bytes "
                f"of shared memory at head dim {head_dim}, over the {SHARED_LIMIT_BYTES}-byte "
                f"limit; pairs that fit d = {d}: {self.fitting_blocks(d)}"
            )
        return config

    def offered_configs(self) -> list[KernelConfig]:
        """Every build the app offers: each head dim with each pair that fits it, in each
        precision."""
        return [
            self.config(d, *blocks, precision)
            for d in KERNEL_HEAD_DIMS
            for blocks in self.fitting_blocks(d)
            for precision in self.precisions
        ]

    def prepare(
        self,
        q: np.ndarray,
        k: np.ndarray,
        v: np.ndarray,
        *,
        precision: str | None = None,
        causal: bool = False,
        causal_align: str = "bottom_right",
        scale: float | None = None,
        block_q: int | None = None,
        block_kv: int | None = None,
        mask_mod: MaskMod | None = None,
        block_mask: BlockMask | None = None,
        rescale_threshold: float | None = None,
    ) -> tuple[KernelCall, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Validate a problem; return its KernelCall and q, k, v as this kernel reads them,
        contiguous (bh, n, d) (``inputs``; k and v may have fewer heads: grouped-query
        attention). ``block_q``/``block_kv`` default to the block mask's, else the first
        pair of ``fitting_blocks(d)``. The mask: ``causal``, or a built-in ``mask_mod`` or
        ``block_mask`` of ``flashviz.masks`` (``kernel_mask``). ``rescale_threshold``: FA4's
        lazy rescaling, compiled in (None: FA2's rule)."""
        d = np.shape(q)[-1] if np.ndim(q) else 0
        if block_q is None and block_kv is None and isinstance(block_mask, BlockMask):
            block_q, block_kv = block_mask.block_size
        default_q, default_kv = self.fitting_blocks(d)[0] if d else (None, None)
        prob = check_tiled_problem(
            q, k, v, block_q=default_q if block_q is None else block_q,
            block_kv=default_kv if block_kv is None else block_kv, causal=causal,
            causal_align=causal_align, scale=scale, mask_mod=mask_mod, block_mask=block_mask,
            grouped=True,
        )  # fmt: skip
        config = self.config(prob.d, prob.block_q, prob.block_kv, precision,
                             rescale_threshold or 0.0)  # fmt: skip
        # the kernels' state and o are float32; P~ reaches 2^threshold with a stale max
        check_scores_fit(prob.q, prob.k, prob.v, prob.scale, np.float32,
                         p_max=2.0**config.rescale_threshold)  # fmt: skip
        lead = prob.q.shape[:-2]
        batch_heads = prob.heads
        grid, block = launch_params(config, prob.n_q, prob.n_k, batch_heads)
        q3, k3, v3 = (
            self.inputs(x.reshape(-1, x.shape[-2], prob.d), config.precision)
            for x in (prob.q, prob.k, prob.v)
        )
        call = KernelCall(
            config, grid, block, lead, prob.n_q, prob.n_k, prob.d, prob.scale,
            kernel_mask(prob), prob.group, lead[-1] if lead else 1,
        )  # fmt: skip
        return call, (q3, k3, v3)

    def call_like(self, call: KernelCall, precision: str | None = None) -> KernelCall:
        """``call``'s problem (same shapes, scale and mask) on this kernel in ``precision``,
        with the first pair of ``fitting_blocks(d)``: how the GPU sweep runs it."""
        config = self.config(call.d, *self.fitting_blocks(call.d)[0], precision,
                             call.config.rescale_threshold)  # fmt: skip
        grid, block = launch_params(config, call.n_q, call.n_k, call.batch_heads)
        mask = call.mask.retiled(call.n_q, call.n_k, config.block_q, config.block_kv)
        return replace(call, config=config, grid=grid, block=block, mask=mask)


@dataclass(frozen=True)
class KernelConfig:
    """Compile-time sizes of one build of one kernel; ``defines`` become its ``#define``s."""

    kernel: Kernel
    head_dim: int  # HEAD_DIM: d padded up to one of KERNEL_HEAD_DIMS
    block_q: int
    block_kv: int
    precision: str  # the inputs' precision (one of kernel.precisions)
    rescale_threshold: float = 0.0  # FA4's lazy rescaling, log2 units (0: FA2's rule)

    @property
    def num_threads(self) -> int:
        return self.kernel.threads(self.block_q)

    @property
    def defines(self) -> dict[str, int | str]:
        return {
            "BLOCK_Q": self.block_q,
            "BLOCK_KV": self.block_kv,
            "HEAD_DIM": self.head_dim,
            "NUM_THREADS": self.num_threads,
            **self.kernel.extra_defines(self),
            **MASK_DEFINES,
            "RESCALE_MARGIN": rescale_margin(self.rescale_threshold),
        }

    @property
    def shared_bytes(self) -> int:
        return self.kernel.shared_bytes(self.head_dim, self.block_q, self.block_kv)

    def __repr__(self) -> str:
        return (
            f"KernelConfig({self.kernel.name}, head_dim={self.head_dim}, block_q={self.block_q}, "
            f"block_kv={self.block_kv}, {self.precision}"
            + (
                f", rescale_threshold={self.rescale_threshold:g})"
                if self.rescale_threshold
                else ")"
            )
        )


def rescale_margin(threshold: float) -> str:
    """FA4's threshold (log2 units) as the kernels compare with it: float32(threshold * ln 2),
    the value NumPy adds to a float32 m_i (``flashviz.core.inner_step``), as a C float
    literal that round-trips."""
    return f"{float(np.float32(threshold * LN2))!r}f"


def padded_head_dim(d: int) -> int:
    """The compiled HEAD_DIM that runs head dim d: the smallest of KERNEL_HEAD_DIMS >= d."""
    d = check_block("d", d)
    for head_dim in KERNEL_HEAD_DIMS:
        if head_dim >= d:
            return head_dim
    raise ValueError(f"d must be at most {KERNEL_HEAD_DIMS[-1]} for the CUDA kernel, got {d}")


_INCLUDE = re.compile(r'^#include "(\w+\.cuh)"[^\n]*$', re.M)


def kernel_text(path: Path) -> str:
    """A kernel's .cu text with each ``#include "<name>.cuh"`` of ``kernels/`` written in
    place, between ``#line`` directives, so that compiler messages name the file and line."""
    text = path.read_text()

    def header(match: re.Match[str]) -> str:
        line = text.count("\n", 0, match.start()) + 2  # the .cu's line after the #include
        included = (path.parent / match[1]).read_text()
        return f'#line 1 "kernels/{match[1]}"\n{included}#line {line} "kernels/{path.name}"'

    return _INCLUDE.sub(header, text)


def kernel_source(config: KernelConfig, source: str | None = None) -> str:
    """The kernel's text (``kernel_text``, or ``source``) with the config's ``#define`` lines
    prepended: what NVRTC, CuPy and the CPU emulation compile.

    A ``#line`` directive keeps compiler messages pointing at the lines of the .cu file.
    ``source`` replaces the text (to compile a modified copy of ``kernel_text``).
    """
    path = config.kernel.path
    text = kernel_text(path) if source is None else source
    defines = "".join(f"#define {name} {value}\n" for name, value in config.defines.items())
    return f'{defines}#line 1 "kernels/{path.name}"\n{text}'


def launch_params(
    config: KernelConfig, n_q: int, n_k: int, batch_heads: int
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(grid, block): one block of NUM_THREADS per (query block, batch*head)."""
    n_q = check_block("n_q", n_q)
    check_block("n_k", n_k)
    batch_heads = check_block("batch_heads", batch_heads)
    if batch_heads > 65535:
        raise ValueError(f"batch_heads must be at most 65535 (grid.y limit), got {batch_heads}")
    grid = (-(-n_q // config.block_q), batch_heads, 1)
    return grid, (config.num_threads, 1, 1)


# The kernels' arguments after q, k, v, o and lse, in order: the mask's arrays
# (KernelCall.arrays), then the scalars (KernelCall.scalars).
ARRAY_ARGUMENTS = ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices",
                   "doc_ids")  # fmt: skip
SCALAR_ARGUMENTS = ("scale", "n_q", "n_k", "d", "group", "heads", "mask_batches", "mask_heads",
                    "causal", "causal_offset", "mask_kind", "mask_a", "mask_b",
                    "mask_c")  # fmt: skip


class UnsupportedMaskError(ValueError):
    """A mask_mod the CUDA kernels cannot evaluate (not a built-in mask of flashviz.masks)."""


@dataclass(frozen=True, eq=False)
class KernelMask:
    """A mask as the kernels take it: the block mask's tile lists (which tiles each Q block
    visits, full or partial) and the built-in element mask of the partial tiles."""

    kinds: np.ndarray  # (B, H, Q blocks, K/V blocks) int8: TiledProblem.block_kinds
    spec: MaskSpec  # the element mask (causal: the offset alone; none: everything)
    mod: MaskMod | None = None  # the problem's mask_mod (None: causal or no mask)
    positions: int = 1  # positions doc_ids covers: the Q blocks' padded rows and the keys

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, KernelMask)
            and (self.spec, self.mod, self.positions) == (other.spec, other.mod, other.positions)
            and np.array_equal(self.kinds, other.kinds)
        )

    def __hash__(self) -> int:
        return hash((self.spec, self.positions, self.kinds.shape))

    @cached_property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """(kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices, doc_ids),
        contiguous int32: the kernels' array arguments after q, k, v, o, lse. doc_ids: each
        position's document (a document mask; else one 0)."""
        lists = (np.ascontiguousarray(x, dtype=np.int32) for x in kv_lists(self.kinds))
        if self.spec.kind != "document":
            return (*lists, np.zeros(1, dtype=np.int32))
        doc_ids = np.searchsorted(self.spec.starts, np.arange(self.positions), side="right")
        return (*lists, doc_ids.astype(np.int32))

    def scalars(self) -> tuple[int, ...]:
        """(mask_batches, mask_heads, causal, causal_offset, mask_kind, mask_a, mask_b,
        mask_c): the kernels' scalar arguments of the mask."""
        offset = self.spec.causal_offset
        # a window, prefix or chunk past every position means the same as one just past them:
        # clamped there, any size fits the kernels' int arguments
        a, b, c = (min(int(x), self.positions + 1) for x in (*self.spec.params, 0, 0, 0)[:3])
        return (*self.kinds.shape[:2], offset is not None, offset or 0,
                MASK_KINDS[self.spec.kind], a, b, c)  # fmt: skip

    def retiled(self, n_q: int, n_k: int, block_q: int, block_kv: int) -> KernelMask:
        """The same mask in tiles of (block_q, block_kv)."""
        if self.mod is None:
            kinds = causal_kinds(n_q, n_k, block_q, block_kv, self.spec.causal_offset)[None, None]
        else:
            batches, heads = self.kinds.shape[:2]
            kinds = create_block_mask(self.mod, batches if batches > 1 else None,
                                      heads if heads > 1 else None, n_q, n_k,
                                      (block_q, block_kv)).kinds  # fmt: skip
        return replace(self, kinds=kinds, positions=padded_positions(n_q, n_k, block_q))

    def dense(self, n_q: int, n_k: int) -> np.ndarray | None:
        """(n_q, n_k) booleans, True where a query sees a key (None: no mask): for naive
        attention. A built-in mask is the same for every batch and head."""
        if self.mod is not None:
            return mask_entries(self.mod, range(n_q), range(n_k))
        offset = self.spec.causal_offset
        if offset is None:
            return None
        return np.arange(n_k)[None, :] <= np.arange(n_q)[:, None] + offset


def kernel_mask(prob: TiledProblem) -> KernelMask:
    """The problem's mask as the kernels take it; UnsupportedMaskError for a mask_mod that is
    not a built-in mask of flashviz.masks (the kernels cannot call Python)."""
    spec = (
        mask_spec(prob.mask_mod)
        if prob.mask_mod is not None
        else MaskSpec(causal_offset=prob.offset)
    )
    if spec is None:
        raise UnsupportedMaskError(
            "the CUDA kernels evaluate the built-in masks of flashviz.masks (causal, "
            "sliding_window, prefix_lm, document, chunked, global_tokens, and and_masks of a "
            "causal mask with one other); this mask_mod is not one of them: run it with "
            "flashviz.flash_attention"
        )
    positions = padded_positions(prob.n_q, prob.n_k, prob.block_q)
    return KernelMask(prob.block_kinds(), spec, prob.mask_mod, positions)


def padded_positions(n_q: int, n_k: int, block_q: int) -> int:
    """Query rows of the Q blocks (the last one's padding rows too) or keys: what the element
    mask may be asked about."""
    return max(-(-n_q // block_q) * block_q, n_k)


@dataclass(frozen=True)
class KernelCall:
    """Everything one launch needs besides q, k and v: build, geometry, scalar arguments,
    the mask."""

    config: KernelConfig
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    lead: tuple[int, ...]  # leading (batch, head) dims of q; their product is grid.y
    n_q: int
    n_k: int
    d: int
    scale: float
    mask: KernelMask
    group: int = 1  # query heads per K/V head (grouped-query attention)
    heads: int = 1  # query heads per batch (q's last leading dim)

    @property
    def batch_heads(self) -> int:
        return self.grid[1]

    @property
    def causal(self) -> bool:
        """A causal problem (no other mask)."""
        return self.mask.mod is None and self.mask.spec.causal_offset is not None

    @property
    def causal_offset(self) -> int:
        """Row r sees key c iff c <= r + causal_offset (of a causal problem)."""
        return self.mask.spec.causal_offset or 0

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """The mask's int32 arrays, the kernels' arguments after q, k, v, o and lse."""
        return self.mask.arrays

    @property
    def scalars(self) -> tuple[np.float32 | np.int32, ...]:
        """The kernel's scalar arguments: scale, then n_q, n_k, d, group, heads and the mask's
        (``KernelMask.scalars``).

        NumPy scalars, because CuPy would pass a Python int as long long and a float as double.
        """
        ints = (self.n_q, self.n_k, self.d, self.group, self.heads, *self.mask.scalars())
        return (np.float32(self.scale), *(np.int32(x) for x in ints))


# --- The scalar kernel, kernels/flash_attention.cu ------------------------------------------
#
# Float32 throughout. THREADS_PER_ROW threads share a group of ROWS_PER_THREAD rows of S and
# O and split its columns, so NUM_THREADS = BLOCK_Q * THREADS_PER_ROW / ROWS_PER_THREAD.

THREADS_PER_ROW = 16  # threads sharing a group of rows (they split its columns)
ROWS_PER_THREAD = 4  # rows of S and O each thread owns
FLOAT_BYTES = 4
PAD = 1  # spare float per shared row, as in the .cu


def shared_bytes(head_dim: int, block_q: int, block_kv: int) -> int:
    """Static shared memory of the scalar kernel: the four ``__shared__`` arrays of the .cu."""
    q_i = block_q * (head_dim + PAD)
    kv_j = block_kv * (head_dim + PAD)
    p_ij = block_q * (block_kv + PAD)
    row_part = block_q * THREADS_PER_ROW
    return FLOAT_BYTES * (q_i + kv_j + p_ij + row_part)


def _scalar_rules(block_q: int, block_kv: int) -> str | None:
    if block_q % ROWS_PER_THREAD or block_q * THREADS_PER_ROW // ROWS_PER_THREAD > MAX_THREADS:
        return (
            f"block_q must be a multiple of {ROWS_PER_THREAD} and at most "
            f"{MAX_THREADS * ROWS_PER_THREAD // THREADS_PER_ROW}, got {block_q}"
        )
    if block_kv % THREADS_PER_ROW:
        return f"block_kv must be a multiple of {THREADS_PER_ROW}, got {block_kv}"
    return None


def float32_inputs(x: np.ndarray, precision: str) -> np.ndarray:
    """``x`` as contiguous float32 (the scalar kernel's only precision)."""
    return np.ascontiguousarray(x, dtype=np.float32)


SCALAR = Kernel(
    name="float32",
    path=KERNEL_PATH,
    entry=KERNEL_NAME,
    precisions=("float32",),
    min_arch=75,
    blocks=((64, 64), (64, 32), (32, 64), (32, 32)),
    input_dtype=np.float32,
    threads=lambda block_q: block_q * THREADS_PER_ROW // ROWS_PER_THREAD,
    shared_bytes=shared_bytes,
    block_rules=_scalar_rules,
    extra_defines=lambda config: {"THREADS_PER_ROW": THREADS_PER_ROW},
    inputs=float32_inputs,
)


# --- The tensor-core kernel, kernels/flash_attention_tc.cu ----------------------------------
#
# Float16 / bfloat16 inputs (passed as their raw 16 bits), float32 o and lse. Each warp owns
# 16 query rows (FA2's split-Q), so NUM_THREADS = 32 * BLOCK_Q / 16; BLOCK_KV is a multiple
# of 16 (the k of the P~ V mma) and so is HEAD_DIM (every one of KERNEL_HEAD_DIMS is).
# Shared tiles are rows of 32-bit words (two 16-bit elements) with TC_PAD_WORDS spare words.

TC_PRECISIONS = {"float16": 0, "bfloat16": 1}  # precision -> INPUT_BF16
TC_ROWS_PER_WARP = 16  # the m of mma.m16n8k16
TC_K = 16  # the k of mma.m16n8k16: BLOCK_KV and HEAD_DIM are multiples of it
TC_PAD_WORDS = 4  # spare 32-bit words a shared row, as in the .cu
WORD_BYTES = 4


def tc_shared_bytes(head_dim: int, block_q: int, block_kv: int) -> int:
    """Static shared memory of the tensor-core kernel: q_s, k_s (rows of HEAD_DIM / 2 + pad
    words) and vt_s (V transposed: HEAD_DIM rows of BLOCK_KV / 2 + pad words)."""
    q_k = (block_q + block_kv) * (head_dim // 2 + TC_PAD_WORDS)
    vt = head_dim * (block_kv // 2 + TC_PAD_WORDS)
    return WORD_BYTES * (q_k + vt)


def _tc_rules(block_q: int, block_kv: int) -> str | None:
    if block_q % TC_ROWS_PER_WARP or block_q > MAX_THREADS * TC_ROWS_PER_WARP // 32:
        return (
            f"block_q must be a multiple of {TC_ROWS_PER_WARP} (one warp each) and at most "
            f"{MAX_THREADS * TC_ROWS_PER_WARP // 32}, got {block_q}"
        )
    if block_kv % TC_K:
        return f"block_kv must be a multiple of {TC_K}, got {block_kv}"
    return None


def tc_bits(x: np.ndarray, precision: str) -> np.ndarray:
    """``x`` rounded to ``precision``'s storage type (to nearest even, as
    ``flashviz.core.precision.store``), as its raw 16 bits: contiguous uint16, same shape."""
    storage = get_precision(precision).storage
    with np.errstate(over="ignore"):  # out of range -> inf, as on the GPU
        return np.ascontiguousarray(np.asarray(x).astype(storage)).view(np.uint16)


TENSOR_CORES = Kernel(
    name="tensor cores",
    path=TC_KERNEL_PATH,
    entry=TC_KERNEL_NAME,
    precisions=tuple(TC_PRECISIONS),
    min_arch=80,  # mma.sync m16n8k16 with bfloat16
    blocks=((128, 64), (64, 64), (64, 32)),
    input_dtype=np.uint16,
    threads=lambda block_q: 32 * block_q // TC_ROWS_PER_WARP,  # one warp per 16 query rows
    shared_bytes=tc_shared_bytes,
    block_rules=_tc_rules,
    extra_defines=lambda config: {"INPUT_BF16": TC_PRECISIONS[config.precision]},
    inputs=tc_bits,
)

KERNELS = (SCALAR, TENSOR_CORES)


def kernel_named(name: str) -> Kernel:
    """The kernel of ``KERNELS`` called ``name`` ("float32", "tensor cores")."""
    found = next((k for k in KERNELS if k.name == name), None)
    if found is None:
        raise ValueError(f"kind must be one of {', '.join(k.name for k in KERNELS)}, got {name!r}")
    return found
