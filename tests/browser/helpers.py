"""What every browser test does on a page: wait for charts, text or a heading, check that
no exception box is shown, and save a full-page screenshot."""

from __future__ import annotations

from pathlib import Path

CHART = ".js-plotly-plot"
EXCEPTION = "[data-testid='stException']"
ALERT_ERROR = "[data-testid='stAlertContentError']"
NAV_LINK = "[data-testid='stSidebarNavLink']"


def wait_for_charts(page: object, count: int, timeout_ms: int = 60_000) -> None:
    """Wait until exactly ``count`` charts are drawn (a rerun briefly shows old and new)."""
    page.wait_for_function(  # type: ignore[attr-defined]
        f"document.querySelectorAll('{CHART} .main-svg').length >= {count}"
        f" && document.querySelectorAll('{CHART}').length === {count}",
        timeout=timeout_ms,
    )


def wait_for_text(page: object, text: str, timeout_ms: int = 30_000) -> None:
    """Wait until ``text`` is somewhere on the page."""
    page.wait_for_function(  # type: ignore[attr-defined]
        f"document.body.innerText.includes({text!r})", timeout=timeout_ms
    )


def wait_for_heading(page: object, text: str, timeout_ms: int = 30_000) -> None:
    """Wait until an h3 heading contains ``text``."""
    page.wait_for_function(  # type: ignore[attr-defined]
        f"[...document.querySelectorAll('h3')].some(h => h.innerText.includes({text!r}))",
        timeout=timeout_ms,
    )


def step_heading(page: object) -> str:
    """The text of the stepper's "Step k of n: ..." heading ('' when none is shown)."""
    return page.evaluate(  # type: ignore[attr-defined]
        "[...document.querySelectorAll('h3')].map(h => h.innerText)"
        ".find(t => t.startsWith('Step ')) || ''"
    )


def go_to_page(page: object, title: str, timeout_ms: int = 60_000) -> None:
    """Click the sidebar link of the page ``title`` and wait until that page has run."""
    page.locator(NAV_LINK, has_text=title).first.click()  # type: ignore[attr-defined]
    page.wait_for_timeout(300)  # type: ignore[attr-defined]  # let the rerun start
    page.wait_for_function(  # type: ignore[attr-defined]
        "document.querySelector('[data-testid=\"stApp\"]')"
        "?.getAttribute('data-test-script-state') === 'notRunning'",
        timeout=timeout_ms,
    )


def assert_no_exception(page: object) -> None:
    assert page.locator(EXCEPTION).count() == 0  # type: ignore[attr-defined]


def screenshot(page: object, path: Path) -> None:
    """Let the charts settle, save a full-page screenshot at ``path``, check no exception."""
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    assert_no_exception(page)
