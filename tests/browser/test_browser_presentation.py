"""Presentation mode in headless Chromium at 1280x720 (``?present=true``): the sidebar and
controls are gone, the step bar and the four charts fit the screen, Left / Right step and
Home / End jump, and the charts keep their place and size from step to step."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import chart_overlaps, screenshot, step_heading, wait_for_heading, wait_until_settled

BOXES = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(e => e.offsetParent !== null && e.getBoundingClientRect().width > 0)
  .map(e => { const r = e.getBoundingClientRect();
    return [Math.round(r.left), Math.round(r.top), Math.round(r.width), Math.round(r.height)];
  })"""  # the shown charts (the step view keeps a hidden div per cached step)


def _charts(page: object, count: int) -> list[tuple[int, ...]]:
    page.wait_for_function(  # type: ignore[attr-defined]
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {count}",
        timeout=60_000,
    )
    wait_until_settled(page)
    return sorted({tuple(b) for b in page.evaluate(BOXES)})  # type: ignore[attr-defined]


@pytest.fixture
def projector(browser: object, server_url: str) -> Iterator[object]:
    """A 1280 x 720 page in presentation mode at step 7."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        page.goto(f"{server_url}/?present=true&step=7")
        wait_for_heading(page, "Step 7 of")
        yield page
    finally:
        context.close()


def test_presentation_fits_1280x720_steps_with_keys_without_layout_jumps(
    projector: object, screenshots: Path
) -> None:
    page = projector
    boxes = _charts(page, 4)
    screenshot(page, screenshots / "presentation_step7.png")
    assert not page.locator("[data-testid=stSidebar]").is_visible()
    assert len(boxes) == 4
    for left, top, width, height in boxes:  # all four on one screen
        assert left >= 0 and top >= 0 and left + width <= 1280 and top + height <= 720
    assert not chart_overlaps(page)
    page.keyboard.press("ArrowRight")
    wait_for_heading(page, "Step 8 of")
    assert _charts(page, 4) == boxes  # same place, same size
    page.keyboard.press("ArrowLeft")
    wait_for_heading(page, "Step 7 of")
    page.keyboard.press("Home")
    wait_for_heading(page, "Step 0 of")
    page.keyboard.press("End")
    wait_for_heading(page, "Step 23 of")
    shown = _charts(page, 3)  # the last step is a write: no tile chart, its place kept
    assert set(shown) <= set(boxes) and step_heading(page).startswith("Step 23 of")
    page.wait_for_function(  # the URL follows the step
        "new URLSearchParams(location.search).get('step') === '23'", timeout=30_000
    )


def test_leave_returns_to_the_full_page_and_a_reload_stays_there(projector: object) -> None:
    page = projector
    assert not page.locator("[data-testid=stSidebar]").is_visible()
    page.get_by_role("button", name="Leave").click()
    title = page.get_by_role("heading", name="FlashAttention-2, tile by tile")
    title.wait_for(timeout=30_000)
    page.wait_for_function(  # present gone from the URL, the step kept
        "!new URLSearchParams(location.search).has('present') && "
        "new URLSearchParams(location.search).get('step') === '7'",
        timeout=30_000,
    )
    wait_until_settled(page)
    for part in ("stSidebar", "stHeader"):
        assert page.locator(f"[data-testid={part}]").is_visible(), part
    assert page.get_by_role("button", name="Play").first.is_visible()
    assert step_heading(page).startswith("Step 7 of")
    page.reload()
    wait_for_heading(page, "Step 7 of")
    title.wait_for(timeout=30_000)
    assert page.locator("[data-testid=stSidebar]").is_visible()
