"""The online-softmax debugger in headless Chromium: renders, a bug toggles, Next steps."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHART = ".js-plotly-plot"
EXCEPTION = "[data-testid='stException']"
ALERTS = "[data-testid='stAlertContentError']"


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


def test_debugger_renders_toggles_a_bug_and_steps(
    page: object, server_url: str, screenshots: Path
) -> None:
    page.goto(f"{server_url}/debugger")  # type: ignore[attr-defined]
    _wait_for_charts(page, 3)  # scores, state, estimate vs exact
    _wait_for_text(page, "first bites at chunk 1")
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    page.screenshot(path=str(screenshots / "debugger_default.png"), full_page=True)  # type: ignore[attr-defined]
    assert page.locator(EXCEPTION).count() == 0  # type: ignore[attr-defined]
    assert page.locator(ALERTS).count() == 2  # type: ignore[attr-defined]

    # toggle a bug on: "Do not subtract the max" does not bite on the increasing row ...
    page.locator("[data-testid='stMultiSelect'] input").click()  # type: ignore[attr-defined]
    page.get_by_role("option", name="Do not subtract the max").click()  # type: ignore[attr-defined]
    page.keyboard.press("Escape")  # type: ignore[attr-defined]
    _wait_for_text(page, "Do not subtract the max does not bite on this row")
    # ... so load the row where it does: scores near 1000, where exp(s) overflows
    page.get_by_role("button", name="Load a row where it bites (large logits)").click()  # type: ignore[attr-defined]
    _wait_for_text(page, "Do not subtract the max first bites at chunk 0")
    _wait_for_charts(page, 3)
    assert page.locator(EXCEPTION).count() == 0  # type: ignore[attr-defined]

    page.get_by_role("button", name="Next").click()  # type: ignore[attr-defined]
    _wait_for_text(page, "Chunk 1: keys 4-7")
    _wait_for_charts(page, 3)
    page.wait_for_function(  # type: ignore[attr-defined]
        "[...document.querySelectorAll('.gtitle')]"
        ".some(t => t.textContent.includes('chunk 1 (keys 4-7) is on chip'))",
        timeout=30_000,
    )
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    page.screenshot(path=str(screenshots / "debugger_no_max_step1.png"), full_page=True)  # type: ignore[attr-defined]
    assert page.locator(EXCEPTION).count() == 0  # type: ignore[attr-defined]
