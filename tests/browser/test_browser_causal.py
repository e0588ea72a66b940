"""The causal-alignment page in headless Chromium: both maps draw, a preset switches sizes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .helpers import CHART, screenshot, wait_for_charts, wait_for_text

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_causal_page_renders_and_switches_preset(
    page: Page, server_url: str, screenshots: Path
) -> None:
    page.goto(f"{server_url}/causal")
    wait_for_charts(page, 2)  # the two masks, the FLOP bars
    wait_for_text(page, "Causal masks for n_q = 12 queries, n_k = 5 keys")
    screenshot(page, screenshots / "causal_default.png")
    # both panels drawn: one heatmap per alignment, tile outlines among the shapes
    assert page.locator(f"{CHART} .hm").count() >= 2
    assert page.locator(f"{CHART} .shapelayer path").count() >= 18

    page.locator("[data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name="5 x 2", exact=False).click()
    wait_for_text(page, "Causal masks for n_q = 5 queries, n_k = 2 keys")
    wait_for_charts(page, 2)
    wait_for_text(page, "rows 0 to 2 see no key")
    screenshot(page, screenshots / "causal_5x2.png")
    assert page.locator("[data-testid='stDataFrame']").count() == 1
