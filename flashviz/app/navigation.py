"""The app's pages. Add a page: write ``pages/<name>.py`` with ``render()`` and add its row to
``PAGES``."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from flashviz.app.pages import (
    backward,
    causal,
    debugger,
    fa1,
    gpu,
    inside_kernel,
    masks,
    precision,
    split_kv,
)
from flashviz.app.pages import stepper as stepper_page

# (render, title, url path, icon), in the sidebar's order, after the stepper
PAGES: list[tuple[Callable[[], None], str, str, str]] = [
    (backward.render, "Backward pass", "backward", ":material/undo:"),
    (fa1.render, "FA1 vs FA2", "fa1", ":material/swap_horiz:"),
    (causal.render, "Causal alignment", "causal", ":material/change_history:"),
    (masks.render, "Masks", "masks", ":material/grid_view:"),
    (debugger.render, "Online-softmax debugger", "debugger", ":material/bug_report:"),
    (precision.render, "Precision", "precision", ":material/tune:"),
    (split_kv.render, "Split-KV decoding", "split_kv", ":material/call_split:"),
    (gpu.render, "GPU timings", "gpu", ":material/speed:"),
    (inside_kernel.render, "Inside the kernel", "inside_kernel", ":material/memory:"),
]


def pages() -> list:
    """The stepper (the default page, at ``/``), the pages of ``PAGES``, and ``/stepper``, a
    hidden alias that sends a link to the stepper with its parameters."""
    stepper = st.Page(
        stepper_page.render,
        title="Stepper",
        url_path="home",  # reserved, not served: the default page lives at "/"
        default=True,
        icon=":material/grid_on:",
    )

    def stepper_by_name() -> None:
        """``/stepper``: the default page lives at ``/``; go there with the link's parameters."""
        st.switch_page(stepper, query_params=st.query_params.to_dict())

    return [
        stepper,
        *(
            st.Page(render, title=title, url_path=path, icon=icon)
            for render, title, path, icon in PAGES
        ),
        st.Page(stepper_by_name, title="Stepper", url_path="stepper", visibility="hidden"),
    ]
