"""The GPU timings page in headless Chromium, on this machine without a GPU: the doctor's
checklist is on screen, the roofline expectation and the CPU sweep are charts, the CPU
numbers are a table (not a clipped text block), every chart's text is at least 16 px with
AA contrast, and no exception box appears."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from flashviz.gpu.device import available

from .helpers import (
    CHART,
    assert_no_exception,
    chart_overlaps,
    chart_text_problems,
    screenshot,
    wait_for_charts,
    wait_for_text,
    wait_until_settled,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.skipif(available()[0], reason="this machine has a GPU")


def chart_titles(page: Page) -> list[str]:
    return page.evaluate(
        f"[...document.querySelectorAll('{CHART} .gtitle')].map(t => t.textContent)"
    )


def test_gpu_page_shows_checklist_roofline_and_cpu_sweep_charts(
    page: Page, server_url: str, screenshots: Path
) -> None:
    page.goto(f"{server_url}/gpu")
    wait_for_text(page, "No GPU here", timeout_ms=60_000)
    wait_for_charts(page, 1)
    assert "roofline" in chart_titles(page)[0]
    checklist = page.locator("[data-testid='stTable']").first
    text = checklist.inner_text()
    for layer in ("CuPy", "NVRTC", "cuBLAS", "CUDA headers", "NVIDIA driver", "flash kernel"):
        assert layer in text
    assert "no NVIDIA driver on this machine" in text and "install the NVIDIA driver" in text
    assert checklist.is_visible()

    page.get_by_role("button", name="Run the CPU sweep").click()
    wait_for_charts(page, 2, timeout_ms=120_000)
    assert chart_titles(page)[1].startswith("CPU: naive vs tiled attention")
    grid = page.locator("[data-testid='stDataFrame']")
    grid.first.wait_for(timeout=30_000)
    wait_until_settled(page)
    assert page.locator("[data-testid='stCode']", has_text="naive ms").count() == 0
    assert page.locator("[data-testid='stProgress']").count() == 0
    screenshot(page, screenshots / "gpu_page.png")
    assert_no_exception(page)
    problems = chart_text_problems(page)
    assert not problems, "\n".join(problems[:20])


def _ask_for_a_sweep(page: Page, d: str, add: tuple[str, ...] = ()) -> None:
    """The sizes shown plus ``add`` at head dim ``d``, then Run."""
    box = page.locator("input[aria-label='sequence lengths n']")
    for n in add:
        box.click()
        box.press_sequentially(n)
        box.press("Enter")
        page.keyboard.press("Escape")
    head_dim = page.locator("input[aria-label^='head dim d']")
    head_dim.click()
    head_dim.press_sequentially(d)
    head_dim.press("Enter")
    wait_until_settled(page)  # the rerun with the new d is drawn
    page.get_by_role("button", name="Run the CPU sweep").click()


def test_a_second_student_asking_for_a_sweep_is_told_at_once_that_the_server_is_busy(
    browser: Browser, server_url: str, screenshots: Path
) -> None:
    first, second = (browser.new_context(viewport={"width": 1280, "height": 900}) for _ in "12")
    try:
        a, b = first.new_page(), second.new_page()
        for pg in (a, b):
            pg.goto(f"{server_url}/gpu")
            wait_for_text(pg, "No GPU here", timeout_ms=60_000)
            wait_until_settled(pg)
        _ask_for_a_sweep(a, "32", add=("4096",))  # d = 32, 16: no other test measures them
        # all five sizes: a few seconds of the server's CPU in its child process
        a.locator("[data-testid='stProgress']").first.wait_for(timeout=30_000)
        _ask_for_a_sweep(b, "16")
        busy = b.get_by_text("The server is busy with CPU sweep, d = 32")
        busy.wait_for(timeout=5_000)  # at once: the click does not wait for the sweep
        assert "started by another session" in busy.inner_text()
        b.locator("[data-testid='stProgress']").first.wait_for(timeout=5_000)  # the running job
        screenshot(b, screenshots / "gpu_page_busy.png")
        wait_for_charts(a, 2, timeout_ms=120_000)  # the first student's sweep arrives by itself
        wait_until_settled(a)
        assert not chart_overlaps(a), chart_overlaps(a)  # 1280 px: three panels' axis titles
        b.locator("[data-testid='stProgress']").first.wait_for(state="detached", timeout=30_000)
        assert_no_exception(a)
        assert_no_exception(b)
    finally:
        first.close()
        second.close()
