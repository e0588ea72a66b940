"""What to expect from the GPU sweep before running it: a roofline estimate.

A kernel takes at least max(FLOPs / peak FLOP/s, bytes moved / memory bandwidth). Naive
attention materialises S and P (n x n each) and streams them through HBM several times
(write S, read it for the max, read and write for exp, read for the sum, read and write
to normalise, read P for P V: about 8 n^2 floats); FlashAttention-2 moves only Q, K, V
(K and V once per query block) and O. Both do the same 4 n^2 d matmul FLOPs. The fp32
peaks are for CUDA cores (no tensor cores): the flashviz kernel and CuPy's float32 matmul.

The tensor-core kernel (kernels/flash_attention_tc.cu, float16 / bfloat16 inputs, float32
accumulation) is bounded by the GPU's dense fp16/bf16 tensor-core peak instead, and by its
compulsory traffic: Q, K, V read once in 16 bits, O and lse written in float32. Its K and V
re-reads per query block are taken to hit L2 (FA2 counts on that): counted as HBM traffic
they would give block_q FLOP per byte (128 at d = 64), under the 150-300 FLOP per byte at
which these GPUs' tensor cores become the limit, and a bound that a real FA2 kernel beats.
"""

from __future__ import annotations

from flashviz.core.costs import attention_flops, fa2_hbm
from flashviz.core.measurement import Expectation, GpuSpec

FLOAT_BYTES = 4
NAIVE_PASSES = 8  # n x n float32 arrays streamed through HBM by a softmax written plainly
NAIVE_LIVE = 2  # n x n arrays alive at once at the peak (S and exp(S - m))


TC_INPUT_BYTES = 2  # float16 / bfloat16


# Tensor-core peaks: dense float16/bfloat16 with float32 accumulation, from NVIDIA's
# datasheets, which print them with 2:4 sparsity (halved here): A100 "FP16 Tensor Core
# 312 | 624* TFLOPS" (NVIDIA A100 Tensor Core GPU datasheet); H100 SXM and H200 SXM
# "FP16 Tensor Core 1,979 TFLOPS*" (H100 and H200 datasheets), so 989.5 dense. The T4
# (sm_75) has fp16 tensor cores (65 TFLOPS) but not mma.sync.m16n8k16, which the kernel
# needs (sm_80+): None. On Hopper the peak is wgmma's; mma.sync reaches well under it
# (FlashAttention-2 uses about 35% of an H100, per the FlashAttention-3 paper).
KNOWN_GPUS = (
    GpuSpec("NVIDIA T4", 8.1, 320, 16),
    GpuSpec("NVIDIA A100 SXM4 80GB", 19.5, 2039, 80, tc_tflops=312.0),
    GpuSpec("NVIDIA H100 SXM5 80GB", 67.0, 3350, 80, tc_tflops=989.5, tc_peak_needs_wgmma=True),
    GpuSpec("NVIDIA H200 SXM 141GB", 67.0, 4800, 141, tc_tflops=989.5, tc_peak_needs_wgmma=True),
)


def expect(
    n: int, d: int, gpu: GpuSpec, *, block_q: int = 64, block_kv: int = 64, batch_heads: int = 1
) -> Expectation:
    """Roofline lower bounds and memory of naive and flash attention, float32, n_q = n_k = n,
    and of the tensor-core kernel in float16 / bfloat16 (``tc_flash_*``)."""
    io = 4 * n * d + n  # q, k, v, o and lse
    flops = batch_heads * attention_flops(n, n, d)
    naive_bytes = batch_heads * FLOAT_BYTES * (io + NAIVE_PASSES * n * n)
    flash_bytes = batch_heads * fa2_hbm(n, n, d, block_q, block_kv).total
    tc_io = batch_heads * (TC_INPUT_BYTES * 3 * n * d + FLOAT_BYTES * (n * d + n))

    def ms(moved: int, tflops: float = gpu.fp32_tflops) -> float:
        return 1e3 * max(flops / (tflops * 1e12), moved / (gpu.bandwidth_gbs * 1e9))

    return Expectation(
        n=n,
        flops=flops,
        naive_bytes=naive_bytes,
        flash_bytes=flash_bytes,
        naive_ms=ms(naive_bytes),
        flash_ms=ms(flash_bytes),
        naive_peak_bytes=batch_heads * FLOAT_BYTES * (io + NAIVE_LIVE * n * n),
        flash_peak_bytes=batch_heads * FLOAT_BYTES * io,
        tc_flash_bytes=tc_io,
        tc_flash_ms=None if gpu.tc_tflops is None else ms(tc_io, gpu.tc_tflops),
        tc_flash_peak_bytes=tc_io,
    )


def naive_out_of_memory_n(d: int, gpu: GpuSpec, batch_heads: int = 1) -> int:
    """The smallest power-of-two n at which naive attention no longer fits in device memory."""
    n = 1024
    while expect(n, d, gpu, batch_heads=batch_heads).naive_peak_bytes <= gpu.memory_gib * 2**30:
        n *= 2
    return n
