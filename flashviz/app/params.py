"""The problem fields every page shares (defaults from ``ProblemSpec``, allowed values), the
stepper's fields, and the URL query parameters that mirror them.

A link carries every problem field (``n_q``, ``n_k``, ``head_dim``, ``block_q``,
``block_kv``, ``causal``, ``causal_align``, ``scale``, ``seed``, ``pattern``,
``precision``, ``bug``), ``step`` and ``tile_scale`` (the tile's colour scale), so
opening it restores the same view. Uploaded tensors cannot travel in a link: ``upload``
(their digest) stays out of the URL. The values live in
``flashviz.app.kept``'s store, shared with the other pages that have the same fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields

import streamlit as st

from flashviz.app.kept import Field, keep
from flashviz.core.checks import CAUSAL_ALIGNS
from flashviz.core.precision import PRECISIONS
from flashviz.lab.bugzoo import BUGS
from flashviz.lab.patterns import PATTERNS
from flashviz.lab.problem_spec import NO_BUG, ProblemSpec

DEFAULTS = asdict(ProblemSpec())
LOCAL_ONLY = ("upload",)  # state that a link cannot carry
TILE_SCALE = "tile_scale"  # stepper toggle: S coloured on the tile's own range
CHOICES = {
    "causal_align": CAUSAL_ALIGNS,
    "pattern": tuple(PATTERNS),
    "precision": tuple(PRECISIONS),
    "bug": (NO_BUG, *BUGS),
}


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


# presentation mode (flashviz/app/stepper/presentation.py): in a link only while it is on
PRESENT = Field("present", False, url_when_default=False)
STEPPER_FIELDS = [
    *problem_fields({name: name for name in DEFAULTS}),
    Field("step", 0),
    Field("row", 0, url=False),
    Field("speed", "1 step/s", url=False),
    PRESENT,
    Field(TILE_SCALE, True),  # the tile's S on its own colour scale (else the tile map's)
]


def init_state() -> list[str]:
    """Before the sidebar: the stepper's fields from the shared store (on a session's first
    page, from the URL). Returns warnings for bad URL parameters."""
    return keep(STEPPER_FIELDS)


def spec_from_state() -> ProblemSpec:
    return ProblemSpec(**{f.name: st.session_state[f.name] for f in fields(ProblemSpec)})


def sync_query_params(values: dict[str, object]) -> None:
    """Mirror ``values`` into the URL (only what changed, so the URL does not churn)."""
    for key, value in values.items():
        if key in LOCAL_ONLY:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if st.query_params.get(key) != text:
            st.query_params[key] = text
