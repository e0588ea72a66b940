"""Problem widgets' keys, their defaults, and the URL query parameters that mirror them.

A link carries every widget key (``n_q``, ``n_k``, ``head_dim``, ``block_q``, ``block_kv``,
``causal``, ``causal_align``, ``scale``, ``seed``, ``pattern``, ``precision``, ``bug``) and
``step``, so opening it restores the same view. Uploaded tensors cannot travel in a link:
``upload`` (their digest) stays out of the URL.
"""

from __future__ import annotations

from dataclasses import asdict, fields

import streamlit as st

from flashviz.bugzoo import BUGS
from flashviz.checks import CAUSAL_ALIGNS
from flashviz.patterns import PATTERNS
from flashviz.precision import PRECISIONS
from flashviz.problem import NO_BUG, ProblemSpec

DEFAULTS = asdict(ProblemSpec())
LOCAL_ONLY = ("upload",)  # state that a link cannot carry
CHOICES = {
    "causal_align": CAUSAL_ALIGNS,
    "pattern": tuple(PATTERNS),
    "precision": tuple(PRECISIONS),
    "bug": (NO_BUG, *BUGS),
}
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse(key: str, text: str) -> object:
    """Convert one query parameter to its widget's type; ValueError with a reason if it fails."""
    default = DEFAULTS.get(key, 0)
    if isinstance(default, bool):
        if text.lower() not in TRUE + FALSE:
            raise ValueError("expected true or false")
        return text.lower() in TRUE
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if text not in CHOICES[key]:
        raise ValueError(f"expected one of {', '.join(CHOICES[key])}")
    return text


def init_state() -> list[str]:
    """Once per session: defaults, overridden by the URL. Returns warnings for bad params."""
    if st.session_state.get("_initialised"):
        return []
    st.session_state["_initialised"] = True
    warnings = []
    for key in [*DEFAULTS, "step"]:
        value: object = DEFAULTS.get(key, 0)
        if key in st.query_params and key not in LOCAL_ONLY:
            try:
                value = parse(key, st.query_params[key])
            except ValueError as err:
                warnings.append(f"Ignored URL parameter `{key}={st.query_params[key]}`: {err}.")
        st.session_state[key] = value
    return warnings


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
