"""In headless Chromium at 1280x720 with the sidebar open: on the lab pages no
two texts inside a chart overlap and no colour bar covers a panel (debugger's "bites at
chunk" labels, precision axis titles), metric labels are not cut off (FA1), and the
stepper's verdict uses icons, not emoji that render as boxes without an emoji font."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .helpers import chart_overlaps, screenshot, wait_until_settled

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PAGES = {"backward": 4, "fa1": 3, "debugger": 3, "precision": 5, "causal": 2, "split_kv": 4}
CUT_LABELS = """() => [...document.querySelectorAll('[data-testid=stMetricLabel] p,'
  + ' [data-testid=stMetricLabel] div')]
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"""
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf]")


def _open(browser: Browser, url: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(url)
    return page


@pytest.mark.parametrize("name", list(PAGES))
def test_lab_pages_have_no_overlapping_chart_text_or_cut_labels(
    browser: Browser, server_url: str, screenshots: Path, name: str
) -> None:
    page = _open(browser, f"{server_url}/{name}")
    try:
        page.wait_for_function(
            f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {PAGES[name]}",
            timeout=120_000,
        )
        wait_until_settled(page)  # the rest of the page
        found = chart_overlaps(page)
        cut = page.evaluate(CUT_LABELS)
        screenshot(page, screenshots / f"page_{name}_1280.png")
        assert not found, "\n".join(found[:20]) + f"\n... {len(found)} in all"
        assert not cut, f"metric labels cut off: {cut}"
    finally:
        page.context.close()


def test_verdict_uses_icons_not_emoji(browser: Browser, server_url: str) -> None:
    page = _open(browser, f"{server_url}/?step=1")
    try:
        page.get_by_text("Correct: the tiled run matches", exact=False).wait_for(timeout=60_000)
        alerts = page.locator("[data-testid=stAlert]").all_inner_texts()
        assert not [a for a in alerts if EMOJI.search(a)], alerts
    finally:
        page.context.close()
