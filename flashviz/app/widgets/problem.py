"""The attention problem the pages share (a ``ProblemSpec``): its fields, their widget keys
on a page, and the sidebar that draws them.

A page names its problem fields and their widget keys once (``problem_keys``): its
``Field`` declarations (``problem_fields``: defaults from ``ProblemSpec``, allowed values
from ``CHOICES``) and its sidebar (``problem_widgets``) both take that mapping. The fields
have the same name on every page, so the pages share one problem in
``flashviz.app.widgets.page_state``'s store and in the URL (``n_q``, ``head_dim``, ...),
whatever the page's widget keys (``bwd_n_q``, ``fa1_d``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, replace

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from flashviz.app.widgets.page_state import Field
from flashviz.core.checks import CAUSAL_ALIGNS
from flashviz.core.precision import PRECISION_LABELS, PRECISIONS
from flashviz.lab.alignment import ALIGN_LABELS
from flashviz.lab.bugzoo import BUGS
from flashviz.lab.mask_lab import MASK_KINDS
from flashviz.lab.patterns import PATTERNS
from flashviz.lab.problem_spec import NO_BUG, NO_MASK, ProblemSpec

DEFAULTS = asdict(ProblemSpec())
LOCAL_ONLY = ("upload",)  # state that a link cannot carry
CHOICES = {
    "causal_align": CAUSAL_ALIGNS,
    "pattern": tuple(PATTERNS),
    "precision": tuple(PRECISIONS),
    "bug": (NO_BUG, *BUGS),
    "mask": (NO_MASK, *MASK_KINDS),
}
# a page's problem fields, unless it names others
SHARED = ("pattern", "n_q", "n_k", "head_dim", "block_q", "block_kv", "causal", "causal_align",
          "seed")  # fmt: skip
FIXED_BY_UPLOAD = ("pattern", "n_q", "n_k", "head_dim", "seed")  # uploaded tensors set these

Row = str | tuple[str, str]  # one field across the sidebar, or two side by side
ROWS: tuple[Row, ...] = (
    "pattern",
    ("n_q", "n_k"),
    ("head_dim", "seed"),
    ("block_q", "block_kv"),
    "causal",
    "causal_align",
)
BLOCKS = ("block_q", "block_kv")  # the row a page may draw its own way (``problem_widgets``)
Blocks = Callable[[DeltaGenerator], tuple[int, int]]
LABELS = {
    "pattern": "Input pattern", "n_q": "n_q (queries)", "n_k": "n_k (keys)",
    "head_dim": "head dim d", "seed": "seed", "block_q": "block_q", "block_kv": "block_kv",
    "scale": "softmax scale (0 = 1/sqrt(d))", "causal": "causal mask",
    "causal_align": "causal alignment", "precision": "precision",
    "bug": "bug zoo: inject a mistake", "mask": "mask (FlexAttention)",
    "mask_size": "mask size", "group": "GQA group", "head": "query head",
    "rescale_threshold": "rescale threshold (FA4, log2 units)",
}  # fmt: skip
HELP = {
    "scale": "tau in S = tau Q K^T; 0 picks the usual 1/sqrt(d).",
    "causal_align": "Bottom-right: query r sees key c iff c <= r + n_k - n_q. Top-left: iff "
    "c <= r. They agree when n_q = n_k.",
    "precision": "Inputs stored in this type; m, l and o kept in float32 (float64 for the "
    "baseline). 16-bit runs round P~ to the input type for the P~ V matmul, as real kernels "
    "do. See the Precision page for where the error comes from.",
    "bug": "Record the run with a classic online-softmax mistake; the stepper points out the "
    "first step where it leaves the correct run.",
    "mask": "A FlexAttention mask in place of the causal toggle: the steps visit only its block "
    "mask's full and partial tiles (the Masks page shows the block mask).",
    "group": "Grouped-query attention: this many query heads share one K/V head (1: none).",
    "head": "The query head of the group to step: its own q over the group's k and v.",
    "rescale_threshold": "FlashAttention-4's lazy rescaling: the running max is kept unless a "
    "tile's max is more than this many powers of two above it (FA4 uses 8). 0 is FA2: rescale "
    "whenever the max rises. The result is the same; P~ may reach 2^threshold.",
}


def _bug_title(key: str) -> str:
    return "none (correct FlashAttention-2)" if key == NO_BUG else BUGS[key].title


SHOWN_AS: dict[str, Callable[[str], str]] = {  # how a choice field shows its values
    "pattern": PATTERNS.__getitem__,
    "causal_align": ALIGN_LABELS.__getitem__,
    "precision": PRECISION_LABELS.__getitem__,
    "bug": _bug_title,
    "mask": lambda key: "none (the causal toggle)" if key == NO_MASK else MASK_KINDS[key].label,
}


def problem_keys(prefix: str, names: Iterable[str] = SHARED, **keys: str) -> dict[str, str]:
    """``ProblemSpec`` field -> widget key on a page: ``prefix`` + the field's name, unless
    given by name (``head_dim="bwd_d"``)."""
    return {name: keys.get(name, prefix + name) for name in names}


def problem_fields(widgets: Mapping[str, str], **defaults: object) -> list[Field]:
    """A page's widgets for shared problem fields: ``widgets`` maps a ``ProblemSpec`` field
    name to the page's widget key; defaults are ``ProblemSpec``'s unless given by name (a
    page may start from another problem: the Precision page's is larger)."""
    unknown = set(widgets) - set(DEFAULTS) | set(defaults) - set(widgets)
    if unknown:
        raise ValueError(f"not problem fields of this page: {sorted(unknown)}")
    return [
        Field(name, defaults.get(name, DEFAULTS[name]), widget=key,
              choices=tuple(CHOICES.get(name, ())), url=name not in LOCAL_ONLY)
        for name, key in widgets.items()
    ]  # fmt: skip


def _field(box: DeltaGenerator, name: str, key: str, disabled: bool) -> None:
    """The widget of one problem field; its value is the session state's under ``key``."""
    label, help_ = LABELS[name], HELP.get(name)
    if name == "causal":
        box.toggle(label, key=key, disabled=disabled)
    elif name == "scale":
        box.number_input(label, step=0.05, format="%.4f", key=key, disabled=disabled, help=help_)
    elif name == "rescale_threshold":
        box.number_input(label, step=1.0, format="%.1f", key=key, disabled=disabled, help=help_)
    elif name not in CHOICES:
        box.number_input(label, step=1, key=key, disabled=disabled, help=help_)
    elif name == "causal_align":
        box.radio(label, list(CHOICES[name]), format_func=SHOWN_AS[name], key=key,
                  disabled=disabled, help=help_)  # fmt: skip
    else:
        value = box.selectbox(label, list(CHOICES[name]), format_func=SHOWN_AS[name], key=key,
                              disabled=disabled, help=help_)  # fmt: skip
        if name == "bug" and value != NO_BUG:
            box.caption(BUGS[value].explanation)


def problem_widgets(
    keys: Mapping[str, str],
    rows: Sequence[Row] = ROWS,
    *,
    disabled: Collection[str] = (),
    blocks: Blocks | None = None,
) -> ProblemSpec:
    """Draw the problem's widgets in the sidebar, one ``rows`` entry after another, and
    return the problem they hold now.

    ``keys`` maps each of the page's ``ProblemSpec`` fields to its widget key
    (``problem_keys``); a field the page does not have takes ``ProblemSpec``'s default.
    Widgets carry no ``value=``: the page's ``keep`` put the values in session state.
    ``disabled``: fields drawn but not editable (uploaded tensors set the sizes).
    ``blocks``, when given, draws the ``BLOCKS`` row its own way and returns the block
    sizes (FA1's blocks may come from the on-chip size instead)."""
    sb = st.sidebar
    block_sizes: tuple[int, int] | None = None
    pair: Sequence[DeltaGenerator] = ()  # consecutive pairs share one set of two columns
    for row in rows:
        if row == BLOCKS and blocks is not None:
            block_sizes, pair = blocks(sb), ()
        elif isinstance(row, str):
            _field(sb, row, keys[row], row in disabled)
            pair = ()
        else:
            pair = pair or sb.columns(2)
            for box, name in zip(pair, row, strict=True):
                _field(box, name, keys[name], name in disabled)
    ss = st.session_state
    spec = ProblemSpec(**{name: ss[key] for name, key in keys.items()})
    if block_sizes is not None:
        spec = replace(spec, block_q=block_sizes[0], block_kv=block_sizes[1])
    return spec
