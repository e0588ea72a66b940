"""What is wrong with a problem, and the suggested size as one click."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from flashviz.app.widgets.page_state import Field, put
from flashviz.lab.budget import suggest_size
from flashviz.lab.problem_spec import ProblemSpec

SIZE_NAMES = ("n_q", "n_k", "block_q", "block_kv")


def suggested(spec: ProblemSpec, page: str = "stepper") -> dict[str, int] | None:
    """Sizes within ``page``'s limits close to ``spec``; None when its sizes are fine or
    unset."""
    now = tuple(getattr(spec, name) for name in SIZE_NAMES)
    if min(now) < 1:
        return None
    size = suggest_size(spec, page)
    return None if size == now else dict(zip(SIZE_NAMES, size, strict=True))


def problem_errors_view(
    errors: Sequence[str], spec: ProblemSpec, fields: Sequence[Field], page: str = "stepper"
) -> None:
    """One error box per problem, then a button that applies the size suggested for
    ``page`` (a page of ``flashviz.lab.budget.PAGES``)."""
    for e in errors:
        st.error(e)
    size = suggested(spec, page)
    if size is not None:
        st.button(
            "Use the suggested size: n_q = {n_q}, n_k = {n_k}, block_q = {block_q}, "
            "block_kv = {block_kv}".format(**size),
            key="btn_suggested_size",
            icon=":material/auto_fix_high:",
            on_click=put,
            args=(fields, size),
        )
