"""The Precision page in headless Chromium: every chart and formula draws, and switching
the precision to bfloat16 reruns the breakdown without an exception."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .helpers import CHART, screenshot, wait_for_charts, wait_for_text

if TYPE_CHECKING:
    from playwright.sync_api import Page

N_CHARTS = 6  # breakdown, per-row error, underflow, gap sweep, forms table, software exp2


def test_precision_page_renders_and_switches_to_bfloat16(
    page: Page, server_url: str, screenshots: Path
) -> None:
    page.set_viewport_size({"width": 1600, "height": 6400})  # long page
    page.goto(f"{server_url}/precision")
    wait_for_charts(page, N_CHARTS)
    wait_for_text(page, "With float16 inputs, float32 state, the largest change comes from")
    screenshot(page, screenshots / "precision_float16.png")
    assert page.locator(".katex").count() >= 3  # both forms, alpha
    bars = page.locator(f"{CHART} .barlayer .point")
    assert bars.count() == 2 * 3 * 4  # two panels x three stages x four precisions
    assert page.locator(f"{CHART} .table").count() == 1

    page.locator("[data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name="bfloat16 inputs, float32 state").click()
    wait_for_text(page, "With bfloat16 inputs, float32 state, the largest change comes from")
    wait_for_charts(page, N_CHARTS)
    wait_for_text(page, "Error per row, bfloat16")
    screenshot(page, screenshots / "precision_bfloat16.png")
