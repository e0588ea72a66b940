"""The stepper in headless Chromium: charts render, Next moves the tile, no exception box."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from .helpers import (
    assert_no_exception,
    screenshot,
    wait_for_charts,
    wait_for_heading,
    wait_until_settled,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page


def _step_title(page: Page) -> str:
    return page.evaluate(
        "[...document.querySelectorAll('h3')].map(h => h.innerText)"
        ".find(t => t.startsWith('Step ')) || ''"
    )


def test_page_renders_steps_and_has_no_exception(
    page: Page, server_url: str, screenshots: Path
) -> None:
    started = time.perf_counter()
    page.goto(f"{server_url}/?step=1")
    wait_for_charts(page, 6)  # tile map, tile, stats, accumulator, whole run, errors
    first_render_s = time.perf_counter() - started
    print(f"time to first render: {first_render_s:.2f} s")
    screenshot(page, screenshots / "stepper_step1.png")
    title = _step_title(page)
    assert "K/V block 0" in title
    assert page.get_by_text("Server time for this step").count() == 0  # a developer's number
    page.get_by_text("How to read this page").click()
    how = page.get_by_text("Current tile:", exact=False).first
    how.wait_for(timeout=10_000)
    assert "this tile's own colour scale" in how.inner_text()  # what the default shows
    toggle = page.get_by_label("S colour scale: this tile", exact=False)
    assert toggle.first.is_checked()

    page.get_by_role("button", name="Next").click()
    wait_for_heading(page, "K/V block 1")
    wait_for_charts(page, 6)
    screenshot(page, screenshots / "stepper_step2.png")
    assert "step=2" in page.url


def test_play_advances_the_step_on_its_own(page: Page, server_url: str) -> None:
    page.goto(f"{server_url}/?step=1")
    wait_for_charts(page, 6)
    wait_until_settled(page)
    before = _heading_top(page)
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(
        "[...document.querySelectorAll('h3')].some(h => /^Step [4-9]/.test(h.innerText))",
        timeout=30_000,
    )
    assert abs(_heading_top(page) - before) <= 2  # the bar standing in for the slider: no jump
    assert_no_exception(page)


def _heading_top(page: Page) -> float:
    return page.evaluate(
        "[...document.querySelectorAll('h3')].find(h => /^Step \\d/.test(h.innerText))"
        ".getBoundingClientRect().top + window.scrollY"
    )


def test_bug_switch_points_at_the_first_bad_step_and_code_is_highlighted(
    page: Page, server_url: str, screenshots: Path
) -> None:
    query = "n_q=12&n_k=9&head_dim=4&block_q=4&block_kv=3&causal=true&scale=400&bug=no_rescale_o"
    page.goto(f"{server_url}/?{query}&step=0")
    button = page.get_by_role("button", name="Go to step")
    button.wait_for(timeout=60_000)
    target = int(button.inner_text().split()[-1])
    button.click()
    page.wait_for_function(
        f"[...document.querySelectorAll('h3')].some(h => h.innerText.startsWith('Step {target} '))",
        timeout=30_000,
    )
    page.get_by_text("first bites", exact=False).first.wait_for(timeout=30_000)
    screenshot(page, screenshots / "stepper_bug.png")  # and the page has settled
    code = page.get_by_text("phase:accumulate", exact=False)
    assert code.count() >= 2  # the NumPy stepper and the CUDA kernel
