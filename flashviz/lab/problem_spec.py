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
MAX_GROUP = 8  # query heads per K/V head the app offers (Llama 3 70B: 8)


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
    place of the causal toggle). ``group`` query heads share one K/V head (grouped-query
    attention, 1: none); the run traced is query head ``head`` of the group, whose q is the
    pattern's with seed ``seed + head`` over the group's one k and v. ``rescale_threshold``:
    FlashAttention-4's lazy rescaling (log2 units; 0 is FA2's rule, ``flashviz.core.fa4``).
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
    group: int = 1
    head: int = 0
    rescale_threshold: float = 0.0

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


def gqa_note(spec: ProblemSpec) -> str | None:
    """What a grouped-query problem steps (None without one)."""
    if spec.group == 1:
        return None
    return (
        f"Grouped-query attention: query head {spec.head} of the {spec.group} that share K/V "
        f"head 0. The K and V tiles stepped here are the same for all {spec.group} query heads "
        "(a kernel that runs a group's heads together loads each once); q_i, the scores, "
        "m_i, l_i and o_i are this head's. Change the query head to step another head of "
        "the group over the same K/V tiles."
    )
