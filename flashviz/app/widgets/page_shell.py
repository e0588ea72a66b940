"""What every page with kept state does around its own content, written once.

A page's ``render`` decorated with ``@page_shell(title, FIELDS, INTRO)`` (or its content
inside ``with page_shell(...):``) keeps the page's fields (``keep``: values from the shared
store, or from the URL on a session's first page), then draws the title, a warning per URL
parameter that was ignored and the introduction; then the page's content runs; when it
ends (a ``return`` too), the page's values go into the URL (``mirror_url``), so a reload or
a shared link restores the same view.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import streamlit as st

from flashviz.app.widgets.page_state import Field, keep, mirror_url


def _intro(text: str, folded: str, caption: bool) -> None:
    if folded:
        with st.expander(folded, expanded=False):
            st.markdown(text)
    elif caption:
        st.caption(text)
    elif text:
        st.markdown(text)


@contextmanager
def page_shell(
    title: str, fields: Sequence[Field], intro: str = "", *, folded: str = "", caption: bool = False
) -> Iterator[None]:
    """Keep ``fields``, draw ``title``, the URL warnings and ``intro`` (markdown; in a
    closed expander labelled ``folded`` when given, else as a ``caption`` when asked);
    after the page's content, mirror ``fields`` into the URL."""
    warnings = keep(fields)
    st.title(title)
    for w in warnings:
        st.warning(w)
    _intro(intro, folded, caption)
    yield
    mirror_url(fields)
