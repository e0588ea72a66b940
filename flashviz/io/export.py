"""PNG export of figures for class: every figure rendered by one headless Chromium (kaleido).

``figures_png({"tile_map": fig, ...})`` renders all figures in ONE kaleido call
(``kaleido.write_fig_from_object_sync``): one browser start-up (~2 s) for the whole batch,
instead of one per figure as ``fig.to_image`` would cost. Each PNG has the figure's
layout size (or ``DEFAULT_WIDTH`` x ``DEFAULT_HEIGHT`` when the layout leaves it to the
page) times ``scale``. ``png_zip`` packs several PNGs into one zip.

Without kaleido or without a Chromium-based browser, ``ExportError`` says what is missing
and how to install it; any other failure of the renderer is an ``ExportError`` too, so an
app can show the message instead of a traceback.
"""

from __future__ import annotations

import io
import re
import struct
import tempfile
import zipfile
from pathlib import Path

import plotly.graph_objects as go

DEFAULT_WIDTH = 900  # px, for figures whose width follows the page (Streamlit "stretch")
DEFAULT_HEIGHT = 500  # px, for figures without a layout height
SCALE = 2.0  # device pixels per layout pixel: sharp on a projector
TIMEOUT_S = 60.0  # per figure, after the browser has started
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

NO_KALEIDO = "PNG export needs kaleido 1.3 or newer: `pip install 'kaleido>=1.3'`."
NO_BROWSER = (
    "PNG export needs Chrome or Chromium, and none was found{where}. Install one "
    "(Debian/Ubuntu: `apt-get install chromium`; or `kaleido_get_chrome`) or point the "
    "BROWSER_PATH environment variable at it."
)
# On a loaded machine kaleido can pick the blank tab's JavaScript context instead of its
# page's (it waits for the first Runtime.executionContextCreated): its script is then missing.
KALEIDO_RACE = "kaleido_scopes is not defined"
ATTEMPTS = 3  # tries of one export when kaleido loses that race


class ExportError(RuntimeError):
    """A figure could not be exported; the message says why and what to do."""


def figure_size(fig: go.Figure) -> tuple[int, int]:
    """(width, height) in layout pixels that the PNG of ``fig`` gets (before ``scale``)."""
    return int(fig.layout.width or DEFAULT_WIDTH), int(fig.layout.height or DEFAULT_HEIGHT)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's header; ValueError if ``data`` is no PNG."""
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("data must be a PNG image (signature and IHDR chunk)")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _check_figs(figs: object) -> dict[str, go.Figure]:
    if not isinstance(figs, dict) or not figs:
        raise ValueError("figs must be a non-empty dict of name -> plotly Figure")
    for name, fig in figs.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise ValueError(f"figs names must be file-name safe ([A-Za-z0-9_.-]+), got {name!r}")
        if not isinstance(fig, go.Figure):
            raise ValueError(f"figs[{name!r}] must be a plotly Figure, got {type(fig).__name__}")
    return figs


def _opts(fig: go.Figure, scale: float) -> dict[str, object]:
    width, height = figure_size(fig)
    return {"format": "png", "width": width, "height": height, "scale": scale}


def figures_png(
    figs: dict[str, go.Figure],
    *,
    scale: float = SCALE,
    browser_path: str | Path | None = None,
    timeout: float = TIMEOUT_S,
) -> dict[str, bytes]:
    """PNG bytes of every figure, by name, rendered in one browser session.

    ``browser_path``: the Chrome/Chromium executable (None: kaleido's search, which honours
    the BROWSER_PATH environment variable and finds /usr/bin/chromium).
    """
    figs = _check_figs(figs)
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    try:
        import kaleido
        from kaleido.errors import ChromeNotFoundError
    except ImportError as err:
        raise ExportError(NO_KALEIDO) from err
    kopts: dict[str, object] = {"timeout": timeout, "mathjax": False}  # no CDN fetch offline
    if browser_path is not None:
        kopts["path"] = str(browser_path)
    with tempfile.TemporaryDirectory(prefix="flashviz_png_") as tmp:
        paths = {name: Path(tmp) / f"{n}.png" for n, name in enumerate(figs)}
        specs = [
            {
                "fig": fig.to_dict(),
                "path": paths[name],
                "opts": _opts(fig, scale),
            }
            for name, fig in figs.items()
        ]
        for attempt in range(ATTEMPTS):
            try:
                kaleido.write_fig_from_object_sync(specs, kopts=kopts, cancel_on_error=True)
                break
            except ChromeNotFoundError as err:
                where = f" at {browser_path}" if browser_path is not None else ""
                raise ExportError(NO_BROWSER.format(where=where)) from err
            except Exception as err:
                reason = " ".join(str(a) for a in err.args) or type(err).__name__
                if attempt < ATTEMPTS - 1 and KALEIDO_RACE in reason:
                    continue  # again, in a new browser
                raise ExportError(f"PNG export failed ({type(err).__name__}): {reason}") from err
        return {name: path.read_bytes() for name, path in paths.items()}


def png_zip(pngs: dict[str, bytes]) -> bytes:
    """One zip holding ``<name>.png`` for each entry."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in pngs.items():
            archive.writestr(f"{name}.png", data)
    return buffer.getvalue()
