"""The problem a user sets up in the app, as plain values.

``ProblemSpec`` holds only plain values (ints, floats, strings), so it can key a cache and
round-trip through URL query parameters; ``flashviz.lab.problem`` validates it and records
its run, ``flashviz.lab.budget`` bounds what it may cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from flashviz.core.masking import num_blocks

NO_BUG = "none"
NO_MASK = "none"  # no FlexAttention mask: the causal toggle decides


class Tiling(TypedDict):
    """The keyword arguments every tiled run takes (``record_steps``, ``flash_attention``,
    ``record_backward_trace``, ``flashviz.lab.fa1.record_fa1``, ...)."""

    block_q: int
    block_kv: int
    causal: bool
    causal_align: str
    scale: float | None


@dataclass(frozen=True)
class ProblemSpec:
    """One attention head to trace. ``scale`` 0 means the default 1/sqrt(head_dim).

    ``precision`` is a key of ``flashviz.core.precision.PRECISIONS``; ``bug`` "none" or a key of
    ``flashviz.lab.bugzoo.BUGS``; ``upload`` the digest of uploaded tensors ("" for a pattern),
    in which case n_q, n_k and head_dim are the uploaded shapes. ``mask`` "none" or a key of
    ``flashviz.lab.mask_lab.MASK_KINDS`` (a FlexAttention mask sized by ``mask_size``, in
    place of the causal toggle).
    """

    n_q: int = 16
    n_k: int = 16
    head_dim: int = 8
    block_q: int = 4
    block_kv: int = 4
    causal: bool = False
    causal_align: str = "bottom_right"
    scale: float = 0.0
    seed: int = 0
    pattern: str = "spiky"
    precision: str = "float64"
    bug: str = NO_BUG
    upload: str = ""
    mask: str = NO_MASK
    mask_size: int = 8

    @property
    def tiling(self) -> Tiling:
        """The keyword arguments every tiled run of this problem takes."""
        return {
            "block_q": self.block_q,
            "block_kv": self.block_kv,
            "causal": self.causal and self.mask == NO_MASK,
            "causal_align": self.causal_align,
            "scale": self.scale_or_none,
        }

    @property
    def bug_or_none(self) -> str | None:
        return None if self.bug == NO_BUG else self.bug

    @property
    def scale_or_none(self) -> float | None:
        return None if self.scale == 0 else float(self.scale)

    @property
    def n_steps(self) -> int:
        """Upper bound on trace steps: per Q block one load, every K/V tile, one write."""
        return num_blocks(self.n_q, self.block_q) * (num_blocks(self.n_k, self.block_kv) + 2)

    @property
    def n_backward_steps(self) -> int:
        """Upper bound on backward trace steps: D once, then per K/V block one load, every
        Q tile, one write."""
        return 1 + num_blocks(self.n_k, self.block_kv) * (num_blocks(self.n_q, self.block_q) + 2)
