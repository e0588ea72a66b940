"""Legible at the sizes a student picks, in headless Chromium at 1280 px with the sidebar
open and in presentation mode at 1280 x 720: at 64 x 96 with blocks 16 / 32 and causal (a
tile step where maxima rise) and at the largest problem the stepper traces (512 x 512,
d = 256, tiles of 128 x 128: the tile map downsampled, long key labels), no
chart text overlaps another and none runs past its chart's edge (row and key labels thin
out, titles stay inside, no number shrinks below 16 px), and no text of the page is cut
short by its box."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from flashviz.lab.budget import MAX_HEAD_DIM

from .helpers import (
    chart_overlaps,
    chart_text_problems,
    clipped_chart_text,
    cut_text,
    wait_until_settled,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# Numbers Plotly shrank to fit their bar (a transform: their font size still reads 16 px):
# drawn less than 14 px high.
SHRUNK = """() => [...document.querySelectorAll('.js-plotly-plot .bartext')]
  .filter(t => t.checkVisibility({visibilityProperty: true}) && t.textContent.trim())
  .filter(t => t.getBoundingClientRect().height < 14)
  .map(t => `bar label "${t.textContent}" drawn `
    + `${t.getBoundingClientRect().height.toFixed(1)} px high`)"""
PROBLEMS = {
    "64x96 causal": "n_q=64&n_k=96&block_q=16&block_kv=32&causal=true&step=2",
    # the largest the stepper traces: 512 x 512 scores, d = 256, tiles of 128 x 128
    "largest": f"n_q=512&n_k=512&block_q=128&block_kv=128&head_dim={MAX_HEAD_DIM}&step=3",
}


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_no_chart_text_overlaps_or_is_cut(browser: Browser, server_url: str, problem: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        for mode, charts in (("", 6), ("&present=true", 4)):
            page.goto(f"{server_url}/?{PROBLEMS[problem]}{mode}")
            page.wait_for_function(
                f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
                timeout=90_000,
            )
            wait_until_settled(page)
            found = chart_overlaps(page) + clipped_chart_text(page) + cut_text(page)
            found += chart_text_problems(page) + page.evaluate(SHRUNK)  # none under 16 px
            assert not found, (mode or "normal", found)
    finally:
        context.close()
