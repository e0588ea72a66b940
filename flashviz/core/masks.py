"""Masks as FlexAttention defines them: ``mask_mod(b, h, q_idx, kv_idx) -> visible``.

A mask function takes the batch and head indices and NumPy index arrays of queries and
keys (any shapes that broadcast: a column of query rows against a row of key columns) and
returns booleans, True where query ``q_idx`` may see key ``kv_idx``. The built-in ones
follow PyTorch's FlexAttention and attention-gym; a user's own Python function of the
same signature works the same way, and ``and_masks`` / ``or_masks`` combine them.

Each built-in mask also carries its ``MaskSpec`` (``mask_spec``): a kind and its integer
parameters, which is how the CUDA kernels take it (they cannot call Python); ``and_masks``
of a causal mask and one other built-in has one too. A user's own mask has none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from flashviz.core.masking import causal_offset

Index = Any  # an integer or a NumPy integer array
MaskMod = Callable[[Index, Index, Index, Index], Any]


# The kinds of element mask the CUDA kernels evaluate (kernels/attention_mask.cuh), with
# their codes, passed to the kernels as #defines (MASK_<NAME>): a = params[0], b, c after it.
MASK_KINDS = {
    "all": 0,  # every key
    "window": 1,  # |q - kv| <= a
    "prefix_lm": 2,  # kv < a or kv <= q
    "document": 3,  # q and kv in the same document (the starts)
    "chunked": 4,  # q // a == kv // a
    "global": 5,  # q < a or kv < a or (|q - kv| <= b and (c == 0 or kv <= q))
}


@dataclass(frozen=True)
class MaskSpec:
    """A built-in mask as the CUDA kernels take it: ``kind`` (one of ``MASK_KINDS``) with its
    integer ``params`` and document ``starts``, AND ``kv_idx <= q_idx + causal_offset``
    unless that is None."""

    kind: str = "all"
    params: tuple[int, ...] = ()
    starts: tuple[int, ...] = ()
    causal_offset: int | None = None


def mask_spec(mod: MaskMod | None) -> MaskSpec | None:
    """The ``MaskSpec`` of a built-in mask (no mask: ``MaskSpec()``); None for any other."""
    if mod is None:
        return MaskSpec()
    spec = getattr(mod, "spec", None)
    return spec if isinstance(spec, MaskSpec) else None


def _with_spec(mod: MaskMod, spec: MaskSpec | None) -> MaskMod:
    mod.spec = spec  # type: ignore[attr-defined]
    return mod


def mask_entries(mod: MaskMod, rows: range, cols: range, b: int = 0, h: int = 0) -> np.ndarray:
    """``mod`` evaluated on queries ``rows`` x keys ``cols`` of batch b, head h: booleans of
    shape (len(rows), len(cols)), True where the query sees the key."""
    q_idx = np.arange(rows.start, rows.stop)[:, None]
    kv_idx = np.arange(cols.start, cols.stop)[None, :]
    seen = mod(np.int64(b), np.int64(h), q_idx, kv_idx)
    return np.broadcast_to(np.asarray(seen, dtype=bool), (len(rows), len(cols)))


def causal(n_q: int | None = None, n_k: int | None = None, align: str = "top_left") -> MaskMod:
    """Query r sees key c iff ``c <= r + offset``: offset 0 ("top_left", PyTorch's
    ``is_causal``) or ``n_k - n_q`` ("bottom_right", flash-attn >= 2.1, which needs the
    sizes)."""
    if align not in ("top_left", "bottom_right"):
        raise ValueError(f"align must be 'top_left' or 'bottom_right', not {align!r}")
    if align == "bottom_right" and (n_q is None or n_k is None):
        raise ValueError("a bottom-right causal mask needs n_q and n_k")
    offset = causal_offset(n_q or 0, n_k or 0, align)

    def causal_mask(b: Index, h: Index, q_idx: Index, kv_idx: Index) -> Any:
        return kv_idx <= q_idx + offset

    return _with_spec(causal_mask, MaskSpec(causal_offset=offset))


def sliding_window(window: int, causal: bool = True) -> MaskMod:
    """Keys at most ``window`` positions before the query (and, when not causal, after it)."""
    _positive("window", window, allow_zero=True)

    def sliding_window_mask(b: Index, h: Index, q_idx: Index, kv_idx: Index) -> Any:
        near = np.abs(q_idx - kv_idx) <= window
        return near & (kv_idx <= q_idx) if causal else near

    spec = MaskSpec("window", (int(window),), causal_offset=0 if causal else None)
    return _with_spec(sliding_window_mask, spec)


def prefix_lm(prefix_len: int) -> MaskMod:
    """Every query sees the first ``prefix_len`` keys (the prefix, bidirectional), and the
    keys up to itself (causal) after them."""
    _positive("prefix_len", prefix_len, allow_zero=True)

    def prefix_lm_mask(b: Index, h: Index, q_idx: Index, kv_idx: Index) -> Any:
        return (kv_idx < prefix_len) | (kv_idx <= q_idx)

    return _with_spec(prefix_lm_mask, MaskSpec("prefix_lm", (int(prefix_len),)))


def document(offsets: Sequence[int]) -> MaskMod:
    """Packed sequences: ``offsets`` are the documents' starts (the first is 0, increasing);
    a query sees the keys of its own document only. Combine with ``causal()`` for causal
    documents."""
    starts = np.asarray(offsets, dtype=np.int64)
    if starts.ndim != 1 or starts.size == 0 or starts[0] != 0 or np.any(np.diff(starts) <= 0):
        raise ValueError("offsets must start at 0 and increase")

    def document_mask(b: Index, h: Index, q_idx: Index, kv_idx: Index) -> Any:
        doc_q = np.searchsorted(starts, q_idx, side="right")
        doc_kv = np.searchsorted(starts, kv_idx, side="right")
        return doc_q == doc_kv

    return _with_spec(document_mask, MaskSpec("document", starts=tuple(int(x) for x in starts)))


def chunked(chunk: int) -> MaskMod:
    """Local attention in fixed chunks: a query sees the keys of its own chunk of ``chunk``
    positions. Combine with ``causal()`` for causal chunks (as Llama 4 does)."""
    _positive("chunk", chunk)

    def chunked_mask(b: Index, h: Index, q_idx: Index, kv_idx: Index) -> Any:
        return (q_idx // chunk) == (kv_idx // chunk)

    return _with_spec(chunked_mask, MaskSpec("chunked", (int(chunk),)))


def global_tokens(n_global: int, window: int, causal: bool = True) -> MaskMod:
    """The first ``n_global`` tokens see and are seen by every token; the others see a
    sliding ``window``."""
    _positive("n_global", n_global, allow_zero=True)
    local = sliding_window(window, causal=causal)

    def global_tokens_mask(b: Index, h: Index, q_idx: Index, kv_idx: Index) -> Any:
        return (q_idx < n_global) | (kv_idx < n_global) | local(b, h, q_idx, kv_idx)

    spec = MaskSpec("global", (int(n_global), int(window), int(causal)))
    return _with_spec(global_tokens_mask, spec)


def and_masks(*mods: MaskMod) -> MaskMod:
    """Visible where every mask is (no mask: everything visible)."""

    def and_mask(b: Index, h: Index, q_idx: Index, kv_idx: Index) -> Any:
        seen: Any = True
        for mod in mods:
            seen = seen & mod(b, h, q_idx, kv_idx)
        return seen

    return _with_spec(and_mask, _and_specs([mask_spec(mod) for mod in mods]))


def or_masks(*mods: MaskMod) -> MaskMod:
    """Visible where any mask is (no mask: nothing visible)."""

    def or_mask(b: Index, h: Index, q_idx: Index, kv_idx: Index) -> Any:
        seen: Any = False
        for mod in mods:
            seen = seen | mod(b, h, q_idx, kv_idx)
        return seen

    return _with_spec(or_mask, mask_spec(mods[0]) if len(mods) == 1 else None)


def _and_specs(specs: list[MaskSpec | None]) -> MaskSpec | None:
    """The spec of the masks' AND: causal bounds combine (the smallest offset), and at most
    one of them may have another kind; else None."""
    if any(spec is None for spec in specs):
        return None
    kinds = [spec for spec in specs if spec is not None and spec.kind != "all"]
    if len(kinds) > 1:
        return None
    offsets = [s.causal_offset for s in specs if s is not None and s.causal_offset is not None]
    combined = kinds[0] if kinds else MaskSpec()
    return replace(combined, causal_offset=min(offsets) if offsets else None)


def _positive(name: str, value: int, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '>= 1'}, got {value}")
