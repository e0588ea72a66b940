"""flashviz: FlashAttention-2, tile by tile, with the numbers.

Public API:

- ``attention_reference``: float64 softmax attention, the oracle;
- ``naive_attention``: the same in the inputs' precision (the baseline a user writes);
- ``flash_attention``: tiled FlashAttention-2 forward in NumPy;
- ``record_trace``: the same algorithm for one head, recording every step;
- ``attention_backward_reference``: the float64 gradient (dq, dk, dv) of softmax attention;
- ``naive_attention_backward``: the same in the inputs' precision (the standard backward);
- ``flash_attention_backward``: FlashAttention-2's tiled backward (Algorithm 2) in NumPy;
- ``record_backward_trace``: the backward for one head, recording every step;
- ``split_kv_attention``: split-KV decoding (Flash-Decoding), the keys split into chunks
  whose partial results are merged by ``merge_states`` (``merge_outputs`` for (o, lse));
- ``flashviz.costs``: FLOPs, on-chip bytes, HBM traffic, memory saving;
- ``flashviz.masks``: FlexAttention's ``mask_mod`` functions and ``create_block_mask``, which
  every function above except split-KV takes (``mask_mod=`` or ``block_mask=``), with
  grouped-query attention (k and v with fewer heads than q).
"""

import numpy as np

from flashviz.core import costs
from flashviz.core import trace as _trace
from flashviz.core.backward import (
    attention_backward_reference,
    flash_attention_backward,
    naive_attention_backward,
)
from flashviz.core.backward_trace import (
    BackwardTrace,
    BwdLoadStep,
    BwdStep,
    BwdTileStep,
    BwdWriteStep,
    record_backward_trace,
)
from flashviz.core.block_mask import BlockMask
from flashviz.core.flash import DEFAULT_BLOCK_KV, DEFAULT_BLOCK_Q, flash_attention
from flashviz.core.masks import MaskMod
from flashviz.core.merge import State, merge_outputs, merge_states
from flashviz.core.reference import attention_reference, naive_attention
from flashviz.core.split_kv import DEFAULT_SPLIT_BLOCK_KV, SplitPartial, split_kv_attention
from flashviz.core.trace import LoadStep, Step, TileStep, Trace, WriteStep
from flashviz.lab.bugzoo import bug_hooks


def record_trace(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    block_q: int,
    block_kv: int,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    precision: str | None = None,
    bug: str | None = None,
    mask_mod: MaskMod | None = None,
    block_mask: BlockMask | None = None,
    rescale_threshold: float | None = None,
    exp_impl: str | None = None,
) -> Trace:
    """Run FlashAttention-2 on one head (q (n_q, d), k and v (n_k, d)) and record each step.

    ``flashviz.core.trace.record_steps`` with the mistake ``bug`` (None, or a key of
    ``flashviz.lab.bugzoo.BUGS`` such as "no_rescale_o") in the update: the core takes the
    mistake's hooks, the bug zoo knows them by name. ``rescale_threshold`` and ``exp_impl``:
    FlashAttention-4's softmax (``flashviz.core.fa4``).
    """
    return _trace.record_steps(
        q,
        k,
        v,
        block_q=block_q,
        block_kv=block_kv,
        causal=causal,
        causal_align=causal_align,
        scale=scale,
        precision=precision,
        hooks=bug_hooks(bug),
        mask_mod=mask_mod,
        block_mask=block_mask,
        rescale_threshold=rescale_threshold,
        exp_impl=exp_impl,
    )


__all__ = [
    "DEFAULT_BLOCK_KV",
    "DEFAULT_BLOCK_Q",
    "DEFAULT_SPLIT_BLOCK_KV",
    "BackwardTrace",
    "BwdLoadStep",
    "BwdStep",
    "BwdTileStep",
    "BwdWriteStep",
    "LoadStep",
    "SplitPartial",
    "State",
    "Step",
    "TileStep",
    "Trace",
    "WriteStep",
    "attention_backward_reference",
    "attention_reference",
    "costs",
    "flash_attention",
    "flash_attention_backward",
    "merge_outputs",
    "merge_states",
    "naive_attention",
    "naive_attention_backward",
    "record_backward_trace",
    "record_trace",
    "split_kv_attention",
]
