"""The app's pages. Add a page: write ``pages/<name>.py`` with ``render()`` and list it here."""

from __future__ import annotations

import streamlit as st

from flashviz.app.pages import backward as backward_page
from flashviz.app.pages import causal as causal_page
from flashviz.app.pages import debugger as debugger_page
from flashviz.app.pages import fa1 as fa1_page
from flashviz.app.pages import gpu as gpu_page
from flashviz.app.pages import inside_kernel as inside_kernel_page
from flashviz.app.pages import precision as precision_page
from flashviz.app.pages import split_kv as split_kv_page
from flashviz.app.pages import stepper as stepper_page


def pages() -> list:
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
        st.Page(
            backward_page.render,
            title="Backward pass",
            url_path="backward",
            icon=":material/undo:",
        ),
        st.Page(fa1_page.render, title="FA1 vs FA2", url_path="fa1", icon=":material/swap_horiz:"),
        st.Page(
            causal_page.render,
            title="Causal alignment",
            url_path="causal",
            icon=":material/change_history:",
        ),
        st.Page(
            debugger_page.render,
            title="Online-softmax debugger",
            url_path="debugger",
            icon=":material/bug_report:",
        ),
        st.Page(
            precision_page.render, title="Precision", url_path="precision", icon=":material/tune:"
        ),
        st.Page(
            split_kv_page.render,
            title="Split-KV decoding",
            url_path="split_kv",
            icon=":material/call_split:",
        ),
        st.Page(gpu_page.render, title="GPU timings", url_path="gpu", icon=":material/speed:"),
        st.Page(
            inside_kernel_page.render,
            title="Inside the kernel",
            url_path="inside_kernel",
            icon=":material/memory:",
        ),
        st.Page(stepper_by_name, title="Stepper", url_path="stepper", visibility="hidden"),
    ]
