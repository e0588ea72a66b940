"""What FlashAttention-3 and -4 changed after FA2, and why: the public figures, with sources.

``FACTS`` holds each figure once, with where it was published; ``exp_gap`` derives the
ratio of tensor-core throughput to exp throughput that drives both papers' softmax work.
"""

from __future__ import annotations

from typing import NamedTuple


class Fact(NamedTuple):
    what: str
    value: str
    source: str  # where it is published (a paper or the code)


FA3_PAPER = "Shah et al., FlashAttention-3, arXiv 2407.08608 (2024)"
FA4_SOURCE = "flash-attn, flash_attn/cute (FlashAttention-4 for Blackwell)"
FACTS = (
    Fact("H100 SXM5 dense float16 matmul", "989 TFLOP/s", FA3_PAPER),
    Fact("H100 SXM5 special functions (exp)", "3.9 TFLOP/s", FA3_PAPER),
    Fact("FA2 on H100", "about 35% of peak", FA3_PAPER),
    Fact("FA3 on H100, float16", "up to 740 TFLOP/s (75%), 1.5-2.0x FA2", FA3_PAPER),
    Fact("B200 tensor cores against H100", "2.25x faster; the exp units are not", FA4_SOURCE),
    Fact("FA4 on B200, bfloat16", "up to 1,605 TFLOP/s (71%)", FA4_SOURCE),
    Fact("FA4's rescale threshold", "8 (log2 units) for 16-bit inputs, 0 for FP8", FA4_SOURCE),
)
H100_MATMUL_TFLOPS, H100_EXP_TFLOPS, B200_SPEEDUP = 989.0, 3.9, 2.25


def exp_gap() -> tuple[float, float]:
    """Matmul FLOPs per exp on H100, and on B200 (tensor cores 2.25x, exp units the same)."""
    h100 = H100_MATMUL_TFLOPS / H100_EXP_TFLOPS
    return h100, h100 * B200_SPEEDUP
