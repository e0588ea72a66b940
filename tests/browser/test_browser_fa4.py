"""FA4's softmax tricks in headless Chromium at 1280 x 720: from the Precision page's After
FA2 section, its link opens the Stepper with a rescale threshold of 8, where the tile map
rings the tiles whose rescale was skipped and the counters give rows rescaled / skipped;
the software exp2 lesson redraws for another degree. Readable, nothing overlaps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flashviz.lab.problem import build_trace
from flashviz.lab.problem_spec import ProblemSpec

from .helpers import (
    assert_no_exception,
    chart_overlaps,
    clipped_chart_text,
    go_to_page,
    screenshot,
    wait_for_heading,
    wait_for_text,
    wait_until_settled,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def test_from_after_fa2_to_a_run_with_skipped_rescales(
    browser: Browser, server_url: str, screenshots: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        page.goto(server_url)
        wait_for_heading(page, "Step 0 of")
        go_to_page(page, "Precision")
        wait_for_text(page, "5. After FA2: what FA3 and FA4 changed")
        wait_for_text(page, "Degree 3: 13.5 correct bits")
        page.get_by_role("slider", name="polynomial degree").focus()
        page.keyboard.press("ArrowLeft")  # degree 2
        wait_for_text(page, "Degree 2: 8.9 correct bits")
        wait_for_text(page, "Software exp2, degree 2")  # the chart's title redrawn too
        assert_no_exception(page)
        link = page.get_by_role("link", name="Stepper with a threshold of 8")
        if link.get_attribute("target") == "_blank":  # Streamlit opens a link in a new tab
            with context.expect_page() as opened:
                link.click()
            page = opened.value
        else:
            link.click()
        wait_for_heading(page, "Step 0 of 23")
        last = len(build_trace(ProblemSpec(rescale_threshold=8.0)).steps) - 1
        page.get_by_role("button", name="Last").first.click()
        wait_for_heading(page, f"Step {last} of {last}")
        wait_for_text(page, "rows rescaled / skipped")
        assert "5 / 43" in page.locator(".fv-metrics").first.inner_text()
        page.wait_for_function(  # the tile map shown (the stepper draws hidden ones ahead)
            "[...document.querySelectorAll('.js-plotly-plot .legendtext')].some(e =>"
            " e.textContent === 'rescale skipped' && e.checkVisibility())",
            timeout=30_000,
        )
        wait_until_settled(page)
        assert chart_overlaps(page) == [] and clipped_chart_text(page) == []
        assert "rescale_threshold=8" in page.url
        screenshot(page, screenshots / "stepper_fa4.png")
        assert_no_exception(page)
    finally:
        context.close()
