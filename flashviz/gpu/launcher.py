"""Run the CUDA kernels of ``kernels/`` once on a GPU with CuPy: o and lse as NumPy.

``run_flash`` launches a kernel (``SCALAR``, float32; ``TENSOR_CORES``, float16 / bfloat16
on tensor cores) on (..., n, d) inputs, ``run_naive`` naive attention with CuPy on the same
inputs; both prepare the call (shapes, scale, mask) with ``Kernel.prepare`` and run it on
``flashviz.gpu.device``'s ``gpu_device()``, which says why when there is no GPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flashviz.core.block_mask import BlockMask
from flashviz.core.masks import MaskMod
from flashviz.gpu.device import NAIVE, Device, compiled_kernel, flash_launch, gpu_device
from flashviz.gpu.launch_params import (
    SCALAR,
    Kernel,
    KernelCall,
)


def run_method(
    device: Device, method: str, call: KernelCall, arrays: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Copy (bh, n, d) inputs to ``device``, run one method once, copy o and lse back."""
    o, lse = device.runners(call, *(device.to_device(x) for x in arrays))[method]()()
    return to_callers_shape(device, call, o, lse)


def to_callers_shape(
    device: Device, call: KernelCall, o: Any, lse: Any
) -> tuple[np.ndarray, np.ndarray]:
    """o and lse copied to the host in the caller's shape: (..., n_q, d) and (..., n_q)."""
    o_h, lse_h = device.to_host(o), device.to_host(lse)
    return o_h.reshape(*call.lead, call.n_q, call.d), lse_h.reshape(*call.lead, call.n_q)


def run_flash(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    kernel: Kernel = SCALAR,
    precision: str | None = None,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    block_q: int | None = None,
    block_kv: int | None = None,
    mask_mod: MaskMod | None = None,
    block_mask: BlockMask | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A CUDA kernel (``SCALAR``: float32; ``TENSOR_CORES``: inputs rounded to ``precision``,
    "float16" or "bfloat16", float32 state, sm_80 or newer) on (..., n, d) inputs; o and lse
    as float32 NumPy. The mask: ``causal``, or a built-in ``mask_mod`` or ``block_mask`` of
    ``flashviz.masks``; k and v may have fewer heads (grouped-query attention)."""
    call, arrays = kernel.prepare(q, k, v, precision=precision, causal=causal,
                                  causal_align=causal_align, scale=scale, block_q=block_q,
                                  block_kv=block_kv, mask_mod=mask_mod,
                                  block_mask=block_mask)  # fmt: skip
    device = gpu_device()
    o, lse = flash_launch(device.cp, compiled_kernel(call.config), call,
                          *(device.to_device(x) for x in arrays))()  # fmt: skip
    return to_callers_shape(device, call, o, lse)


def run_naive(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    mask_mod: MaskMod | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Naive attention with CuPy on the same inputs, in float32; o and lse as NumPy."""
    call, arrays = SCALAR.prepare(q, k, v, causal=causal, causal_align=causal_align, scale=scale,
                                  mask_mod=mask_mod)  # fmt: skip
    return run_method(gpu_device(), NAIVE, call, arrays)
