"""Masks as FlexAttention defines them: mask functions and block masks.

``mask_mod(b, h, q_idx, kv_idx)`` functions (``flashviz.core.masks``) and the ``BlockMask``
that sorts every tile into full, partial and empty (``flashviz.core.block_mask``), with
PyTorch's names::

    from flashviz.masks import and_masks, causal, create_block_mask, sliding_window
    bm = create_block_mask(and_masks(causal(), sliding_window(256)), None, None, 4096, 4096,
                           block_size=(128, 64))
    bm.kv_num_blocks, bm.full_kv_indices, bm.sparsity(), print(bm.to_string())
"""

from flashviz.core.block_mask import EMPTY, FULL, PARTIAL, BlockMask, create_block_mask
from flashviz.core.masks import (
    MaskMod,
    and_masks,
    causal,
    chunked,
    document,
    global_tokens,
    or_masks,
    prefix_lm,
    sliding_window,
)

__all__ = [
    "EMPTY",
    "FULL",
    "PARTIAL",
    "BlockMask",
    "MaskMod",
    "and_masks",
    "causal",
    "chunked",
    "create_block_mask",
    "document",
    "global_tokens",
    "or_masks",
    "prefix_lm",
    "sliding_window",
]
