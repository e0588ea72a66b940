"""FlashAttention-4's two softmax variations, as options of a run.

- **Lazy rescaling** (``rescale_threshold``, in log2 units): the running max m_i is kept
  unless a tile's max exceeds it by more than the threshold, so most tiles skip the rescale
  of l_i and o_i. The result stays exact: l_i and o_i share the same stale reference and
  the final o_i / l_i divides it out. The price is headroom: P~ = exp(s - m_i) reaches
  2^threshold instead of 1. flash-attn's Blackwell softmax uses 8 for 16-bit inputs.
- **Software exp2** (``exp_impl``): exp computed as 2^(x log2 e) with the fraction through
  a polynomial on the FMA units (``flashviz.core.exp2``).

Both are fields of the update's ``UpdateHooks`` (``flashviz.core.inner_step``), applied in
the one update: None keeps the run's own (FA2's: threshold 0, NumPy's exp).
"""

from __future__ import annotations

import numbers
from dataclasses import replace

import ml_dtypes

from flashviz.core.exp2 import exp_impl as make_exp
from flashviz.core.inner_step import UpdateHooks
from flashviz.core.precision import Precision

FA4_THRESHOLD = 8.0  # flash-attn's Blackwell softmax, 16-bit inputs (log2 units: P~ <= 256)
MAX_THRESHOLD = 64.0  # P~ <= 2^64 and l_i stay far inside float32 (2^128)


def check_rescale_threshold(threshold: object) -> float:
    """A threshold in [0, MAX_THRESHOLD] (log2 units)."""
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, numbers.Real)
        or not 0.0 <= float(threshold) <= MAX_THRESHOLD
    ):
        raise ValueError(
            f"rescale_threshold must be a number in [0, {MAX_THRESHOLD:g}] (log2 units; 0 is "
            f"FA2's rule, {FA4_THRESHOLD:g} FA4's), got {threshold!r}"
        )
    return float(threshold)


def check_threshold_fits(threshold: float, prec: Precision) -> None:
    """Refuse a threshold whose P~ (up to 2^threshold) overflows the type P~ is rounded to for
    the P~ V product (16-bit runs), with why and what fits."""
    if not prec.rounds_p:
        return
    top = float(ml_dtypes.finfo(prec.storage).max)
    if 2.0**threshold > top:
        fits = int(float.hex(top).split("p+")[1])  # the largest power of two below top
        raise ValueError(
            f"rescale_threshold {threshold:g} is too high for {prec.name}: with a stale max P~ "
            f"may reach 2^{threshold:g}, and P~ is rounded to {prec.name} (largest "
            f"{top:g}) for the P~ V product, where it overflows to inf; use at most {fits} "
            f"(FA4 uses {FA4_THRESHOLD:g} for 16-bit inputs)"
        )


def softmax_hooks(
    hooks: UpdateHooks, rescale_threshold: float | None = None, exp_impl: str | None = None
) -> UpdateHooks:
    """``hooks`` with FA4's threshold and exp given (None: the hooks' own)."""
    if rescale_threshold is not None:
        hooks = replace(hooks, rescale_threshold=check_rescale_threshold(rescale_threshold))
    if exp_impl is not None:
        hooks = replace(hooks, exp=make_exp(exp_impl))
    return hooks
