"""The FA1 vs FA2 page in headless Chromium: charts render, Next moves both runs, the
alignment switch and the chart over n work, no exception box."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .helpers import (
    CHART,
    assert_no_exception,
    screenshot,
    wait_for_charts,
    wait_for_heading,
    wait_until_settled,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHARTS = 3  # loop orders, counters, HBM over n


def test_fa1_page_renders_steps_and_switches(
    page: Page, server_url: str, screenshots: Path
) -> None:
    page.goto(f"{server_url}/fa1")
    wait_for_charts(page, CHARTS)
    wait_for_heading(page, "FA1 at step 0 ")
    wait_until_settled(page)
    assert_no_exception(page)
    assert page.get_by_text("Same output: FA1 vs reference", exact=False).count() == 1

    for k in (1, 2, 3):  # FA1 to tile (1, 0), FA2 to tile (0, 2)
        page.get_by_role("button", name="Next").click()
        wait_for_heading(page, f"FA1 at step {k} ")
    wait_for_charts(page, CHARTS)
    wait_until_settled(page)  # the heading is drawn before the charts
    text = page.locator(CHART).first.text_content()
    assert text is not None, "the first chart has no text content"
    text = text.replace("\u200b", "")
    assert "K0V0" in text and "Q1O1" in text  # FA1 at tile (1, 0): K/V block 0 stays on chip
    assert "K2V2" in text and "Q0" in text  # FA2 at tile (0, 2): Q block 0 stays on chip
    screenshot(page, screenshots / "fa1_step3.png")

    page.get_by_text("same number of tiles done").click()
    wait_for_heading(page, "(tiles done)")
    wait_for_charts(page, CHARTS)
    page.get_by_role("button", name="Last").click()
    wait_for_heading(page, "Position 16 of 16 (tiles done)")  # 4 x 4 tiles
    wait_for_charts(page, CHARTS)
    screenshot(page, screenshots / "fa1_last_by_tiles.png")
