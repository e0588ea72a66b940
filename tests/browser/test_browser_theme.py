"""In headless Chromium: chart text at least 16 px with contrast >= 4.5:1 (WCAG AA) in the
light and the dark theme, chart buttons' labels 4.5:1 on their buttons and lines 3:1 on the
paper, every text of the page (labels, buttons, captions, the step view's parts) 4.5:1 on
what is behind it, and a visible Light / Dark switch (sidebar, presentation
mode's step bar) that turns the page and every chart dark and back, kept across pages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pytest

from .helpers import (
    chart_text_problems,
    control_contrast_problems,
    go_to_page,
    page_contrast_problems,
    screenshot,
    step_heading,
    wait_for_charts,
    wait_for_heading,
    wait_until_settled,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PAGES = {"stepper": ("/?step=7", 6), "fa1": ("/fa1", 3), "debugger": ("/debugger", 3),
         "split_kv": ("/split_kv?splitkv_heads=16", 4), "masks": ("/masks", 2)}  # fmt: skip


# The stepper in both themes; each other page in one (their charts take the same theme).
THEMED = [("stepper", "light"), ("stepper", "dark"), ("fa1", "dark"), ("debugger", "light"),
          ("split_kv", "dark"), ("masks", "dark")]  # fmt: skip


@pytest.mark.parametrize(("name", "scheme"), THEMED)
def test_chart_text_is_large_and_contrasted_in_both_themes(
    browser: Browser,
    server_url: str,
    screenshots: Path,
    scheme: Literal["light", "dark"],
    name: str,
) -> None:
    path, charts = PAGES[name]
    context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme=scheme)
    page = context.new_page()
    try:
        page.goto(f"{server_url}{path}")
        wait_for_charts(page, charts)
        wait_until_settled(page)
        found = chart_text_problems(page)
        screenshot(page, screenshots / f"theme_{name}_{scheme}.png")
        assert not found, "\n".join(found[:25]) + f"\n... {len(found)} in all"
        controls = control_contrast_problems(page)  # chart buttons 4.5:1, lines 3:1
        assert not controls, "\n".join(controls)
        texts = page_contrast_problems(page)  # the page's own text: labels, buttons, notes
        assert not texts, "\n".join(texts)
    finally:
        context.close()


# --- the visible Light / Dark switch (flashviz/app/widgets/theme_switch.py) ---------------------

COLOURS = """() => ({
  page: getComputedStyle(document.querySelector('.stApp')).backgroundColor,
  papers: [...new Set([...document.querySelectorAll('.js-plotly-plot')]
    .filter(c => c.checkVisibility({visibilityProperty: true}))
    .map(c => c.querySelector('.main-svg')?.style.background || 'none'))],
})"""
PAGE_BG = {"light": "rgb(255, 255, 255)", "dark": "rgb(23, 22, 20)"}  # Streamlit 1.67


def _wait_theme(page: Page, scheme: str, charts: int) -> None:
    """Wait until the page and the paper of each of the ``charts`` shown charts are
    ``scheme``'s background, then check their text (>= 16 px, >= 4.5:1)."""
    wait_for_charts(page, charts)
    bg = PAGE_BG[scheme]
    page.wait_for_function(
        f"(() => {{ const c = ({COLOURS})(); return c.page === {bg!r}"
        f" && c.papers.length === 1 && c.papers[0] === {bg!r}; }})()",
        timeout=30_000,
    )
    wait_until_settled(page)
    wait_for_charts(page, charts)
    assert page.evaluate(COLOURS) == {"page": bg, "papers": [bg]}
    found = chart_text_problems(page)
    assert not found, "\n".join(found[:25])


def test_switch_turns_page_and_charts_dark_and_back_kept_across_pages(
    browser: Browser, server_url: str, screenshots: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="light")
    page = context.new_page()
    switch = "[data-testid=stSidebar] button[data-theme={}]"
    try:
        page.goto(f"{server_url}/?step=7")
        _wait_theme(page, "light", 6)
        page.locator(switch.format("dark")).click()
        _wait_theme(page, "dark", 6)
        assert page.locator(switch.format("dark")).get_attribute("aria-pressed") == "true"
        assert not page.locator("[data-testid=stMainMenuPopover]").is_visible()
        screenshot(page, screenshots / "theme_switch_dark.png")
        go_to_page(page, "FA1 vs FA2")  # another page and back: still dark
        _wait_theme(page, "dark", 3)
        go_to_page(page, "Stepper")
        _wait_theme(page, "dark", 6)
        assert step_heading(page).startswith("Step 7 of")
        page.goto(f"{server_url}/fa1")  # a fresh load of another page's address too
        _wait_theme(page, "dark", 3)
        page.locator(switch.format("light")).click()
        _wait_theme(page, "light", 3)
        page.locator("[data-testid=stMainMenuButton]").click()  # the main menu: followed too
        page.locator("[data-testid='stMainMenuItem-theme-Dark']").click()
        page.keyboard.press("Escape")
        _wait_theme(page, "dark", 3)
        assert page.locator(switch.format("dark")).get_attribute("aria-pressed") == "true"
    finally:
        context.close()


def test_presentation_step_bar_has_the_switch(
    browser: Browser, server_url: str, screenshots: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="light")
    page = context.new_page()
    bar = ".st-key-present_bar button[data-theme={}]"
    try:
        page.goto(f"{server_url}/?present=true&step=7")
        _wait_theme(page, "light", 4)
        page.locator(bar.format("dark")).click()
        _wait_theme(page, "dark", 4)
        assert not page.locator("[data-testid=stMainMenuPopover]").is_visible()
        screenshot(page, screenshots / "theme_switch_presentation_dark.png")
        page.keyboard.press("ArrowRight")  # the keys still step
        wait_for_heading(page, "Step 8 of")
        page.locator(bar.format("light")).click()
        _wait_theme(page, "light", 4)
    finally:
        context.close()


def test_switch_without_the_main_menu_reloads_once_into_the_theme(
    browser: Browser, server_url: str
) -> None:
    """Should Streamlit's menu not be found, the switch writes Streamlit's stored choice
    for this address and reloads once; the page and the charts come back dark."""
    context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="light")
    page = context.new_page()
    try:
        page.goto(f"{server_url}/fa1")
        _wait_theme(page, "light", 3)
        page.evaluate(  # hide the menu from the switch
            "document.querySelector('[data-testid=stMainMenuButton]')"
            ".setAttribute('data-testid', 'hidden-menu')"
        )
        page.locator("[data-testid=stSidebar] button[data-theme=dark]").click()
        _wait_theme(page, "dark", 3)
        assert page.evaluate("sessionStorage.getItem('flashviz-theme-reloaded')") is None
    finally:
        context.close()
