"""The Precision page in headless Chromium: every chart and formula draws, and switching
the precision to bfloat16 reruns the breakdown without an exception."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHART = ".js-plotly-plot"
EXCEPTION = "[data-testid='stException']"
N_CHARTS = 5  # breakdown, per-row error, underflow, gap sweep, paper vs exp2 table


def _wait_for_charts(page: object, count: int, timeout_ms: int = 60_000) -> None:
    """Wait until exactly ``count`` charts are drawn (a rerun briefly shows old and new)."""
    page.wait_for_function(  # type: ignore[attr-defined]
        f"document.querySelectorAll('{CHART} .main-svg').length >= {count}"
        f" && document.querySelectorAll('{CHART}').length === {count}",
        timeout=timeout_ms,
    )


def _wait_for_text(page: object, text: str, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(  # type: ignore[attr-defined]
        f"document.body.innerText.includes({text!r})", timeout=timeout_ms
    )


def test_precision_page_renders_and_switches_to_bfloat16(
    page: object, server_url: str, screenshots: Path
) -> None:
    page.set_viewport_size({"width": 1600, "height": 6400})  # type: ignore[attr-defined]  # long page
    page.goto(f"{server_url}/precision")  # type: ignore[attr-defined]
    _wait_for_charts(page, N_CHARTS)
    _wait_for_text(page, "With float16 inputs, float32 state, the largest change comes from")
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    page.screenshot(path=str(screenshots / "precision_float16.png"), full_page=True)  # type: ignore[attr-defined]
    assert page.locator(EXCEPTION).count() == 0  # type: ignore[attr-defined]
    assert page.locator(".katex").count() >= 3  # type: ignore[attr-defined]  # both forms, alpha
    bars = page.locator(f"{CHART} .barlayer .point")  # type: ignore[attr-defined]
    assert bars.count() == 2 * 3 * 4  # two panels x three stages x four precisions
    assert page.locator(f"{CHART} .table").count() == 1  # type: ignore[attr-defined]

    page.locator("[data-testid='stSelectbox']").first.click()  # type: ignore[attr-defined]
    page.get_by_role("option", name="bfloat16 inputs, float32 state").click()  # type: ignore[attr-defined]
    _wait_for_text(page, "With bfloat16 inputs, float32 state, the largest change comes from")
    _wait_for_charts(page, N_CHARTS)
    _wait_for_text(page, "Error per row, bfloat16")
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    page.screenshot(path=str(screenshots / "precision_bfloat16.png"), full_page=True)  # type: ignore[attr-defined]
    assert page.locator(EXCEPTION).count() == 0  # type: ignore[attr-defined]
