"""What to expect from the GPU sweep before running it: a roofline estimate.

A kernel takes at least max(FLOPs / peak FLOP/s, bytes moved / memory bandwidth). Naive
attention materialises S and P (n x n each) and streams them through HBM several times
(write S, read it for the max, read and write for exp, read for the sum, read and write
to normalise, read P for P V: about 8 n^2 floats); FlashAttention-2 moves only Q, K, V
(K and V once per query block) and O. Both do the same 4 n^2 d matmul FLOPs. The fp32
peaks are for CUDA cores (no tensor cores): the flashviz kernel and CuPy's float32 matmul.
"""

from __future__ import annotations

from flashviz.core.costs import attention_flops, fa2_hbm
from flashviz.core.measurement import Expectation, GpuSpec

FLOAT_BYTES = 4
NAIVE_PASSES = 8  # n x n float32 arrays streamed through HBM by a softmax written plainly
NAIVE_LIVE = 2  # n x n arrays alive at once at the peak (S and exp(S - m))


KNOWN_GPUS = (
    GpuSpec("NVIDIA T4", 8.1, 320, 16),
    GpuSpec("NVIDIA A100 SXM4 80GB", 19.5, 2039, 80),
    GpuSpec("NVIDIA H100 SXM5 80GB", 67.0, 3350, 80),
    GpuSpec("NVIDIA H200 SXM 141GB", 67.0, 4800, 141),
)


def expect(
    n: int, d: int, gpu: GpuSpec, *, block_q: int = 64, block_kv: int = 64, batch_heads: int = 1
) -> Expectation:
    """Roofline lower bounds and memory of naive and flash attention, float32, n_q = n_k = n."""
    io = 4 * n * d + n  # q, k, v, o and lse
    flops = batch_heads * attention_flops(n, n, d)
    naive_bytes = batch_heads * FLOAT_BYTES * (io + NAIVE_PASSES * n * n)
    flash_bytes = batch_heads * fa2_hbm(n, n, d, block_q, block_kv).total

    def ms(moved: int) -> float:
        return 1e3 * max(flops / (gpu.fp32_tflops * 1e12), moved / (gpu.bandwidth_gbs * 1e9))

    return Expectation(
        n=n,
        flops=flops,
        naive_bytes=naive_bytes,
        flash_bytes=flash_bytes,
        naive_ms=ms(naive_bytes),
        flash_ms=ms(flash_bytes),
        naive_peak_bytes=batch_heads * FLOAT_BYTES * (io + NAIVE_LIVE * n * n),
        flash_peak_bytes=batch_heads * FLOAT_BYTES * io,
    )


def naive_out_of_memory_n(d: int, gpu: GpuSpec, batch_heads: int = 1) -> int:
    """The smallest power-of-two n at which naive attention no longer fits in device memory."""
    n = 1024
    while expect(n, d, gpu, batch_heads=batch_heads).naive_peak_bytes <= gpu.memory_gib * 2**30:
        n *= 2
    return n
