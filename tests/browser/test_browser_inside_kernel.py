"""The "Inside the kernel" page in headless Chromium: a link opens a view (kernel, head dim,
block pair, arch in the controls and chart titles), the four charts are painted, switching
to the float32 kernel redraws them (its shared arrays in the table, its pair in the URL),
chart text is at least 16 px and readable and does not overlap, no exception box."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flashviz.gpu.kernel_resources import build_config

from .helpers import (
    CHART,
    assert_no_exception,
    chart_overlaps,
    chart_text_problems,
    screenshot,
    wait_for_charts,
    wait_for_text,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

# shared bytes of the two builds shown (the tables are canvases: their text is not in the DOM)
TC_BYTES = build_config("tensor cores", 128, 64, 32).shared_bytes
F32_BYTES = build_config("float32", 128, 32, 32).shared_bytes
LINK = (
    "/inside_kernel?inside_kernel=tensor+cores&inside_d=128&inside_blocks=64x32&inside_arch=sm_90"
)


def _titles(page: Page) -> list[str]:
    return page.evaluate(
        f"[...document.querySelectorAll('{CHART} .gtitle')].map(t => t.textContent)"
    )


def _wait_title(page: Page, text: str) -> None:
    page.wait_for_function(
        f"[...document.querySelectorAll('{CHART} .gtitle')]"
        f".some(t => t.textContent.includes({text!r}))",
        timeout=60_000,
    )


def test_inside_kernel_page(page: Page, server_url: str, screenshots: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{server_url}{LINK}")
    wait_for_text(page, "Inside the kernel", timeout_ms=60_000)
    _wait_title(page, "Tile sizes at head dim 128 on sm_90")
    wait_for_charts(page, 4)
    titles = _titles(page)
    assert titles[0] == "Who owns S_ij (64 x 32)"
    assert titles[1] == "Who owns O_i (64 x 128)"
    assert "tensor cores kernel" in titles[2]
    heatmap_cells = page.evaluate(
        f"[...document.querySelectorAll('{CHART}')].slice(0, 2)"
        ".map(g => g.querySelectorAll('.heatmaplayer image, .heatmaplayer path').length)"
    )
    assert all(n > 0 for n in heatmap_cells), heatmap_cells
    wait_for_text(page, f"{TC_BYTES} bytes")
    wait_for_text(page, "limited by")
    screenshot(page, screenshots / "inside_kernel_tc.png")
    problems = chart_text_problems(page) + chart_overlaps(page)
    assert not problems, "\n".join(problems[:20])

    radio = page.locator("[data-testid='stRadio']").first
    radio.get_by_text("float32", exact=True).click()
    _wait_title(page, "float32 kernel")
    wait_for_charts(page, 4)
    wait_for_text(page, f"{F32_BYTES} bytes")
    page.wait_for_function(
        "new URLSearchParams(location.search).get('inside_kernel') === 'float32'", timeout=30_000
    )
    assert "Who owns O_i (32 x 128)" in _titles(page)[1]  # 32x32: the pair offered at d = 128
    screenshot(page, screenshots / "inside_kernel_float32.png")
    problems = chart_text_problems(page) + chart_overlaps(page)
    assert not problems, "\n".join(problems[:20])
    assert_no_exception(page)
