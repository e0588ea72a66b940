"""'Export for class': render the current views as PNG (one file, or a zip of several)."""

from __future__ import annotations

import time
from collections.abc import Callable

import plotly.graph_objects as go
import streamlit as st

from flashviz.io.export import ExportError, figures_png, png_zip


def png_download(
    figs: dict[str, go.Figure] | Callable[[], dict[str, go.Figure]],
    *,
    count: int | None = None,
    label: str | None = None,
    file_stem: str = "flashviz_views",
) -> None:
    """A button that renders ``figs`` to PNG in headless Chromium, then a download button.

    The download button appears in the run of the click and stays until the next rerun
    (downloading does not rerun the app); a failure shows ``st.error`` with what to install.
    ``figs`` may be a function that builds them once the button is clicked; ``count`` then
    says how many there will be, or ``label`` names them.
    """
    if label is None:
        n = count if count is not None else len(figs) if isinstance(figs, dict) else None
        if n is None:
            raise TypeError("figures built on a click need count or label")
        label = "Render PNG" if n == 1 else f"Render {n} views as PNG (zip)"
    if not st.button(
        label,
        key="png_render",
        icon=":material/image:",
        help="Renders the current views in a headless Chromium (kaleido); takes a few seconds.",
    ):
        return
    if callable(figs):  # built only when asked for (the step panel's are JSON until then)
        figs = figs()
    started = time.perf_counter()
    try:
        with st.spinner("Rendering with headless Chromium ..."):
            pngs = figures_png(figs)
    except (ExportError, ValueError) as err:
        st.error(str(err), icon=":material/error:")
        return
    elapsed = time.perf_counter() - started
    if len(pngs) == 1:
        ((name, data),) = pngs.items()
        file_name, mime = f"{file_stem}_{name}.png", "image/png"
    else:
        data, file_name, mime = png_zip(pngs), f"{file_stem}.zip", "application/zip"
    st.download_button(
        f"Download {file_name} ({len(data) / 1024:.0f} KiB)",
        data=data,
        file_name=file_name,
        mime=mime,
        on_click="ignore",
        key="png_download",
        icon=":material/download:",
    )
    st.caption(f"Rendered {len(pngs)} PNG(s) in {elapsed:.1f} s.")
