"""flashviz: FlashAttention-2, tile by tile, with the numbers.

Public API:

- ``attention_reference``: float64 softmax attention, the oracle;
- ``naive_attention``: the same in the inputs' precision (the baseline a user writes);
- ``flash_attention``: tiled FlashAttention-2 forward in NumPy;
- ``record_trace``: the same algorithm for one head, recording every step;
- ``flashviz.costs``: FLOPs, on-chip bytes, HBM traffic, memory saving.
"""

from flashviz.core import costs
from flashviz.core.flash import DEFAULT_BLOCK_KV, DEFAULT_BLOCK_Q, flash_attention
from flashviz.core.reference import attention_reference, naive_attention
from flashviz.core.trace import LoadStep, Step, TileStep, Trace, WriteStep, record_trace

__all__ = [
    "DEFAULT_BLOCK_KV",
    "DEFAULT_BLOCK_Q",
    "LoadStep",
    "Step",
    "TileStep",
    "Trace",
    "WriteStep",
    "attention_reference",
    "costs",
    "flash_attention",
    "naive_attention",
    "record_trace",
]
