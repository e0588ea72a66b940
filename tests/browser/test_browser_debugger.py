"""The online-softmax debugger in headless Chromium at 1280 px with the sidebar open:
renders with no control's text cut short (pattern, bug chips, buttons, notes), a bug
toggles, a row where it bites loads, Next steps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .helpers import (
    assert_no_exception,
    cut_text,
    screenshot,
    wait_for_charts,
    wait_for_text,
    wait_until_settled,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ALERTS = "[data-testid='stAlertContentError']"


def test_debugger_renders_toggles_a_bug_and_steps(
    browser: Browser, server_url: str, screenshots: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1600})
    page = context.new_page()
    page.goto(f"{server_url}/debugger")
    wait_for_charts(page, 3)  # scores, state, estimate vs exact
    wait_for_text(page, "first bites at chunk 1")
    screenshot(page, screenshots / "debugger_default.png")
    assert page.locator(ALERTS).count() == 2

    # toggle a bug on: "Do not subtract the max" does not bite on the increasing row ...
    page.locator("[data-testid='stMultiSelect'] input").click()
    page.get_by_role("option", name="Do not subtract the max").click()
    page.keyboard.press("Escape")
    wait_for_text(page, "Do not subtract the max does not bite on this row")
    wait_until_settled(page)
    assert cut_text(page) == []  # three bug chips, a "Load a row" button, the notes
    # ... so load the row where it does: scores near 1000, where exp(s) overflows
    page.get_by_role("button", name="Load a row where it bites (large logits)").click()
    wait_for_text(page, "Do not subtract the max first bites at chunk 0")
    wait_for_charts(page, 3)
    assert_no_exception(page)

    page.get_by_role("button", name="Next").click()
    wait_for_text(page, "Chunk 1: keys 4-7")
    wait_for_charts(page, 3)
    page.wait_for_function(
        "[...document.querySelectorAll('.gtitle')]"
        ".some(t => t.textContent.includes('chunk 1 (keys 4-7) is on chip'))",
        timeout=30_000,
    )
    screenshot(page, screenshots / "debugger_no_max_step1.png")
    context.close()
