"""Finding 8 in headless Chromium: chart text at least 16 px with contrast >= 4.5:1 (WCAG AA)
in the light and the dark theme, and a visible switch between them that the charts follow."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import chart_text_problems, screenshot, wait_for_charts

pytestmark = pytest.mark.browser


PAGES = {"stepper": ("/?step=7", 6), "fa1": ("/fa1", 3), "debugger": ("/debugger", 3)}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", list(PAGES))
def test_chart_text_is_large_and_contrasted_in_both_themes(
    browser: object, server_url: str, screenshots: Path, scheme: str, name: str
) -> None:
    path, charts = PAGES[name]
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 720}, color_scheme=scheme
    )
    page = context.new_page()
    try:
        page.goto(f"{server_url}{path}")
        wait_for_charts(page, charts)
        page.wait_for_timeout(800)
        found = chart_text_problems(page)
        screenshot(page, screenshots / f"theme_{name}_{scheme}.png")
        assert not found, "\n".join(found[:25]) + f"\n... {len(found)} in all"
    finally:
        context.close()
