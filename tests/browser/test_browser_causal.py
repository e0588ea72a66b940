"""The causal-alignment page in headless Chromium: both maps draw, a preset switches sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHART = ".js-plotly-plot"
EXCEPTION = "[data-testid='stException']"


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


def test_causal_page_renders_and_switches_preset(
    page: object, server_url: str, screenshots: Path
) -> None:
    page.goto(f"{server_url}/causal")  # type: ignore[attr-defined]
    _wait_for_charts(page, 2)  # the two masks, the FLOP bars
    _wait_for_text(page, "Causal masks for n_q = 12 queries, n_k = 5 keys")
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    page.screenshot(path=str(screenshots / "causal_default.png"), full_page=True)  # type: ignore[attr-defined]
    assert page.locator(EXCEPTION).count() == 0  # type: ignore[attr-defined]
    # both panels drawn: one heatmap per alignment, tile outlines among the shapes
    assert page.locator(f"{CHART} .hm").count() >= 2  # type: ignore[attr-defined]
    assert page.locator(f"{CHART} .shapelayer path").count() >= 18  # type: ignore[attr-defined]

    page.locator("[data-testid='stSelectbox']").first.click()  # type: ignore[attr-defined]
    page.get_by_role("option", name="5 x 2", exact=False).click()  # type: ignore[attr-defined]
    _wait_for_text(page, "Causal masks for n_q = 5 queries, n_k = 2 keys")
    _wait_for_charts(page, 2)
    _wait_for_text(page, "rows 0 to 2 see no key")
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    page.screenshot(path=str(screenshots / "causal_5x2.png"), full_page=True)  # type: ignore[attr-defined]
    assert page.locator(EXCEPTION).count() == 0  # type: ignore[attr-defined]
    assert page.locator("[data-testid='stDataFrame']").count() == 1  # type: ignore[attr-defined]
