"""The Masks page in headless Chromium at 1280 x 720 with the sidebar open: the block map
and the dense mask draw, readable and without overlaps or cut text; the problem the
stepper set carries over; a block size and another mask redraw the map, its fields and the
code; the Q block inspected moves the outline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .helpers import (
    CHART,
    assert_no_exception,
    chart_overlaps,
    chart_text_problems,
    clipped_chart_text,
    cut_text,
    go_to_page,
    screenshot,
    step_heading,
    wait_for_charts,
    wait_for_heading,
    wait_for_text,
    wait_until_settled,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


def _set_number(page: Page, label: str, value: int) -> None:
    box = page.locator(f"input[aria-label^='{label}']").first
    box.fill(str(value))
    box.press("Enter")


def test_masks_page_draws_the_block_mask_and_follows_its_controls(
    browser: Browser, server_url: str, screenshots: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        page.goto(f"{server_url}/?n_q=24&n_k=40&step=2")  # the stepper sets the problem
        wait_for_heading(page, "Step 2 of")
        go_to_page(page, "Masks")
        wait_for_charts(page, 2)
        wait_for_text(page, "K/V block j (4 keys)")  # the stepper's sizes carried over
        wait_for_text(page, "Q block i (4 rows)")
        wait_until_settled(page)
        assert chart_overlaps(page) == []
        assert clipped_chart_text(page) == []
        assert chart_text_problems(page, min_px=16.0) == []
        assert cut_text(page) == []
        assert page.locator(f"{CHART} .hm").count() == 2  # the block map, the dense mask
        screenshot(page, screenshots / "masks_page.png")

        _set_number(page, "block_kv", 8)
        wait_for_text(page, "K/V block j (8 keys)")
        page.get_by_text("kv_indices[0, 0, 3, :", exact=False).wait_for()
        size = page.locator("input[aria-label^='window']").first.input_value()
        page.locator("[data-testid=stSelectbox]").first.click()
        page.get_by_role("option", name="prefix-LM").click()
        page.get_by_text(f"prefix_lm({size})", exact=False).first.wait_for(timeout=30_000)
        wait_for_charts(page, 2)
        slider = page.locator("input[type=range][aria-label='Q block to inspect']")
        slider.focus()
        page.keyboard.press("Home")
        page.get_by_text("Q block 0 visits", exact=False).wait_for(timeout=30_000)
        wait_until_settled(page)
        assert chart_overlaps(page) == []
        assert "masks_kind=prefix_lm" in page.url and "block_kv=8" in page.url
        assert_no_exception(page)
    finally:
        context.close()


def test_the_stepper_with_a_sliding_window_steps_over_its_tiles_only(
    browser: Browser, server_url: str, screenshots: Path
) -> None:
    """A link to the stepper with a FlexAttention mask: Next walks the window's tiles only
    (Q block 2 folds K/V blocks 1 and 2, never 0 or 3), the verdict is green, the charts
    readable."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        link = "/?n_q=16&n_k=16&block_q=4&block_kv=4&mask=sliding_window&mask_size=4&step=8"
        page.goto(f"{server_url}{link}")
        wait_for_heading(page, "Step 8 of 14")  # 4 loads, 7 tiles, 4 writes: steps 0 to 14
        page.get_by_text("Correct: the tiled run matches", exact=False).wait_for(timeout=30_000)
        seen = []
        for _ in range(3):
            seen.append(step_heading(page))
            page.get_by_role("button", name="Next").first.click()
            page.wait_for_function(
                f"![...document.querySelectorAll('h3')].some(h => h.innerText === {seen[-1]!r})"
            )
        assert "Q block 2" in seen[0] and "K/V block 1" in seen[0], seen
        assert "K/V block 2" in seen[1] and "write" in seen[2].lower(), seen
        wait_until_settled(page)
        assert chart_overlaps(page) == []
        screenshot(page, screenshots / "stepper_sliding_window.png")
    finally:
        context.close()


def test_the_stepper_steps_one_query_head_of_a_group(
    browser: Browser, server_url: str, screenshots: Path
) -> None:
    """A link with a GQA group: the caption says which query head is stepped over the shared
    K/V head; another query head in the sidebar steps that head (its caption, a green
    verdict), on the same step of the same tiles."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        page.goto(f"{server_url}/?n_q=16&n_k=16&group=4&head=2&step=3")
        wait_for_heading(page, "Step 3 of")
        wait_for_text(page, "query head 2 of the 4 that share K/V head 0")
        heading = step_heading(page)
        _set_number(page, "query head", 1)
        wait_for_text(page, "query head 1 of the 4 that share K/V head 0")
        page.get_by_text("Correct: the tiled run matches", exact=False).wait_for(timeout=30_000)
        assert "head=1" in page.url
        wait_until_settled(page)
        assert step_heading(page) == heading  # the same tiles, stepped for another head
        assert chart_overlaps(page) == []
        screenshot(page, screenshots / "stepper_gqa_head.png")
        assert_no_exception(page)
    finally:
        context.close()
