"""PNG export through kaleido and the system Chromium: real renders, sizes, clear errors."""

from __future__ import annotations

import io
import shutil
import sys
import time
import zipfile

import numpy as np
import plotly.graph_objects as go
import pytest

from flashviz.figures import figure_context, stats_figure, tile_figure, tile_map_figure
from flashviz.figures.style import CHANGED, CURRENT, PROB_SCALE
from flashviz.io.export import (
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    PNG_SIGNATURE,
    SCALE,
    ExportError,
    figure_size,
    figures_png,
    png_size,
    png_zip,
)
from flashviz.lab.problem import build_trace
from flashviz.lab.problem_spec import ProblemSpec

HAS_BROWSER = shutil.which("chromium") or shutil.which("google-chrome") or shutil.which("chrome")
needs_browser = pytest.mark.skipif(not HAS_BROWSER, reason="no Chromium/Chrome on this machine")
BAR = "#0072b2"  # the test chart's bars (set, so no template decides their colour)


def step_figures() -> dict[str, go.Figure]:
    ctx = figure_context(build_trace(ProblemSpec()))
    return {
        "tile_map": tile_map_figure(ctx, 3),
        "tile": tile_figure(ctx, 3),
        "stats": stats_figure(ctx, 3),
    }


def pixels(data: bytes) -> np.ndarray:
    """Decoded RGB pixels, via the browser-free PIL if present (else skip that check)."""
    image = pytest.importorskip("PIL.Image")
    return np.asarray(image.open(io.BytesIO(data)).convert("RGB"))


def painted(data: bytes, colour: str) -> np.ndarray:
    """Where the PNG has exactly ``colour`` ('#rrggbb'): a boolean image."""
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return (pixels(data) == rgb).all(axis=-1)


@needs_browser
def test_batch_of_step_views_renders_at_figure_size():
    figs = step_figures()
    bars = go.Bar(x=[1, 2], y=[3, 1], marker={"color": BAR, "line": {"width": 0}})
    figs["sized"] = go.Figure(bars, layout={"width": 333, "height": 222})
    started = time.perf_counter()
    pngs = figures_png(figs)  # scale SCALE = 2
    print(f"{len(figs)} figures in {time.perf_counter() - started:.2f} s")
    assert list(pngs) == list(figs)
    for name, data in pngs.items():
        assert data.startswith(PNG_SIGNATURE)
        width, height = figure_size(figs[name])
        assert png_size(data) == (SCALE * width, SCALE * height), name
    # what each view shows is drawn in its own colour
    assert painted(pngs["tile_map"], CURRENT).any()  # the current tile's outline
    assert painted(pngs["tile"], PROB_SCALE[-1][1]).any()  # P~ = 1 at each row's max
    assert painted(pngs["stats"], CHANGED).any()  # rows whose max rose at this step
    columns = painted(pngs["sized"], BAR).sum(axis=0)
    drawn = np.flatnonzero(columns)
    assert 2.8 < columns[drawn[0]] / columns[drawn[-1]] < 3.2  # bars of height 3 and 1
    assert figure_size(figs["sized"]) == (333, 222)
    assert figure_size(figs["tile"]) == (DEFAULT_WIDTH, figs["tile"].layout.height)
    assert figure_size(go.Figure()) == (DEFAULT_WIDTH, DEFAULT_HEIGHT)
    with zipfile.ZipFile(io.BytesIO(png_zip(pngs))) as archive:
        assert archive.namelist() == [f"{n}.png" for n in figs]
        assert archive.read("stats.png") == pngs["stats"]


def test_missing_browser_raises_a_clear_error(tmp_path):
    with pytest.raises(ExportError, match="needs Chrome or Chromium, and none was found at"):
        figures_png({"a": go.Figure()}, browser_path=tmp_path / "no-such-chromium")


def test_missing_browser_via_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    with pytest.raises(ExportError, match="apt-get install chromium"):
        figures_png({"a": go.Figure()})


def test_a_file_that_is_no_browser_fails_cleanly(tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(ExportError, match="PNG export failed"):
        figures_png({"a": go.Figure()}, browser_path=fake, timeout=20)


def test_missing_kaleido_raises_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "kaleido", None)  # `import kaleido` now fails
    with pytest.raises(ExportError, match=r"pip install 'kaleido>=1\.3'"):
        figures_png({"a": go.Figure()})


@pytest.mark.parametrize(
    ("figs", "message"),
    [
        ({}, "non-empty dict"),
        ([go.Figure()], "non-empty dict"),
        ({"a/b": go.Figure()}, "file-name safe"),
        ({"a": {"data": []}}, r"figs\['a'\] must be a plotly Figure"),
    ],
)
def test_bad_arguments(figs, message):
    with pytest.raises(ValueError, match=message):
        figures_png(figs)


def test_png_size_rejects_non_png():
    with pytest.raises(ValueError, match="must be a PNG"):
        png_size(b"GIF89a" + bytes(30))
