"""Presentation mode in headless Chromium (``?present=true``): the sidebar and controls are
gone; the step bar, the formula strip and the four quarters fill the screen at 1280x720,
1920x1080 and 3840x2160 with text for the back row; every chart shows its numbers where
they fit and a colour scale where they do not; Left / Right step and Home / End jump; the
quarters keep their place and size from step to step (load, tile, write), however the mode
was entered; Leave returns to the full page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from flashviz.core.trace import TileStep
from flashviz.lab.explain import num
from flashviz.lab.problem import build_trace
from flashviz.lab.problem_spec import ProblemSpec

from .helpers import chart_overlaps, screenshot, step_heading, wait_for_heading, wait_until_settled

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

BOXES = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(e => e.offsetParent !== null && e.getBoundingClientRect().width > 0)
  .map(e => { const r = e.getBoundingClientRect();
    return [Math.round(r.left), Math.round(r.top), Math.round(r.width), Math.round(r.height)];
  })"""  # the shown charts (the step view keeps a hidden div per cached step)


# The stage's parts: the step bar, the strip and the four quarters (a chart, or at a load
# or write step the tile quarter's note), as [left, top, width, height].
QUARTERS = """() => [document.querySelector('.st-key-present_bar'),
  document.querySelector('.st-key-present_strip'), ...document.querySelectorAll('.fv-chart')]
  .map(e => { const r = e.getBoundingClientRect();
    return [Math.round(r.left), Math.round(r.top), Math.round(r.width), Math.round(r.height)]; })"""
# Each shown chart's SVG texts (its title first), and whether it draws a colour bar.
CHART_TEXTS = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(c => c.checkVisibility({visibilityProperty: true}))
  .map(c => ({title: c.querySelector('.gtitle')?.textContent || '',
              texts: [...c.querySelectorAll('text')].map(t => t.textContent.trim())
                .filter(Boolean),
              colorbar: !!c.querySelector('.colorbar')}))"""
# The smallest font of any text shown on the stage, in screen px (the stage's scale
# applied): SVG texts, headings, buttons, table cells and the strip's formulas.
SMALLEST_FONT = """() => {
  const stage = document.querySelector('[data-testid=stMainBlockContainer]');
  const scale = stage.getBoundingClientRect().width / stage.offsetWidth;
  const shown = [...stage.querySelectorAll(
      '.js-plotly-plot text, h3, button, td, th, .fv-eq > math, .fv-stage-note h4')]
    .filter(e => e.checkVisibility({visibilityProperty: true}) && e.textContent.trim()
      && !e.closest('.hoverlayer'));
  let least = Infinity, which = '';
  for (const e of shown) {
    const px = parseFloat(getComputedStyle(e).fontSize) * scale;
    if (px < least) { least = px; which = e.textContent.trim().slice(0, 40); }
  }
  return [least, which, scale];
}"""


def _quarters(page: Page) -> list[list[int]]:
    """The stage's parts once drawn: the strip there and the four quarters in their boxes."""
    page.wait_for_function(
        "!!document.querySelector('.st-key-present_strip') && "
        "document.querySelectorAll('.fv-chart').length === 4 && "
        "[...document.querySelectorAll('.fv-chart')].every(e => e.offsetHeight > 0)",
        timeout=30_000,
    )
    wait_until_settled(page)
    return page.evaluate(QUARTERS)


def _present(browser: Browser, url: str, size: tuple[int, int], query: str) -> Page:
    w, h = size
    page = browser.new_context(viewport={"width": w, "height": h}).new_page()
    page.goto(f"{url}/?present=true&{query}")
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 4", timeout=60_000
    )
    wait_until_settled(page)
    return page


def _shown(value: float, fmt: str) -> str:
    """``value`` as Plotly's d3 format prints it: as Python's, but a number that rounds to
    zero loses its minus sign."""
    text = format(value, fmt)
    return text.lstrip("-") if float(text) == 0 else text


def _assert_numbers_shown(page: Page, k: int) -> None:
    """At tile step ``k`` of the default problem, read from the charts' SVG text: the tile's
    S and P~, m and alpha of the shown rows, and a scale where numbers do not fit."""
    step = build_trace(ProblemSpec()).steps[k]
    assert isinstance(step, TileStep), f"step {k} is a {type(step).__name__}"
    charts = {c["title"].split(" ")[0]: c for c in page.evaluate(CHART_TEXTS)}
    tile, stats, acc = charts["Tile"], charts["Running"], charts["Output"]
    for value in step.s.ravel():
        assert _shown(value, ".2f") in tile["texts"], (value, tile["texts"])
    for alpha, m in zip(step.alpha, step.m, strict=True):
        assert f"{alpha:.3f}" in stats["texts"]  # the bar's own text, formatted in Python
        assert _shown(m, ".1f") in stats["texts"] or _shown(m, ".2f") in stats["texts"]
    assert acc["colorbar"] or any(t.startswith("0.") for t in acc["texts"])
    assert charts[""]["colorbar"]  # the tile map: too many cells for numbers, its scale
    strip = page.evaluate("document.querySelector('.fv-strip').innerText")
    strip = "".join(strip.split()).replace("\u2212", "-")  # MathML: a node a line, a real minus
    assert num(float(step.m[0])) in strip and num(float(step.l[0])) in strip, strip


def _charts(page: Page, count: int) -> list[tuple[int, ...]]:
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {count}",
        timeout=60_000,
    )
    wait_until_settled(page)
    return sorted({tuple(b) for b in page.evaluate(BOXES)})


@pytest.fixture
def projector(browser: Browser, server_url: str) -> Iterator[Page]:
    """A 1280 x 720 page in presentation mode at step 7."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        page.goto(f"{server_url}/?present=true&step=7")
        wait_for_heading(page, "Step 7 of")
        yield page
    finally:
        context.close()


def test_presentation_fits_1280x720_steps_with_keys_without_layout_jumps(
    projector: Page, screenshots: Path
) -> None:
    page = projector
    boxes = _charts(page, 4)
    quarters = _quarters(page)
    screenshot(page, screenshots / "presentation_step7.png")
    _assert_numbers_shown(page, 7)
    assert not page.locator("[data-testid=stSidebar]").is_visible()
    assert len(boxes) == 4
    for left, top, width, height in boxes:  # all four on one screen
        assert left >= 0 and top >= 0 and left + width <= 1280 and top + height <= 720
    assert not chart_overlaps(page)
    page.keyboard.press("ArrowRight")
    wait_for_heading(page, "Step 8 of")
    assert _charts(page, 4) == boxes  # same place, same size
    page.keyboard.press("ArrowLeft")
    wait_for_heading(page, "Step 7 of")
    page.keyboard.press("Home")
    wait_for_heading(page, "Step 0 of")  # a load: its quarter says what is loaded
    assert _quarters(page) == quarters
    assert "Load Q" in page.evaluate("document.querySelector('.fv-stage-note').innerText")
    page.keyboard.press("End")
    wait_for_heading(page, "Step 23 of")
    shown = _charts(page, 3)  # the last step is a write: no tile chart, its place kept
    assert set(shown) <= set(boxes) and step_heading(page).startswith("Step 23 of")
    assert _quarters(page) == quarters
    note = page.evaluate("document.querySelector('.fv-stage-note').innerText")
    assert "normalise once" in note
    titles = [c["title"] for c in page.evaluate(CHART_TEXTS)]
    assert any(t.startswith("Written O of Q block 3: max |error|") and t.endswith("rounding")
               for t in titles), titles  # fmt: skip
    page.wait_for_function(  # the URL follows the step
        "new URLSearchParams(location.search).get('step') === '23'", timeout=30_000
    )


def test_leave_returns_to_the_full_page_and_the_sidebar_enters_the_same_stage(
    projector: Page,
) -> None:
    """Leave, then a reload, keep the full page; presentation entered again from the
    sidebar's switch draws the stage exactly as the link did, and steps without moving it."""
    page = projector
    expected = _quarters(page)  # entered from a link
    assert not page.locator("[data-testid=stSidebar]").is_visible()
    page.get_by_role("button", name="Leave").click()
    title = page.get_by_role("heading", name="FlashAttention-2, tile by tile")
    title.wait_for(timeout=30_000)
    page.wait_for_function(  # present gone from the URL, the step kept
        "!new URLSearchParams(location.search).has('present') && "
        "new URLSearchParams(location.search).get('step') === '7'",
        timeout=30_000,
    )
    wait_until_settled(page)
    for part in ("stSidebar", "stHeader"):
        assert page.locator(f"[data-testid={part}]").is_visible(), part
    assert page.get_by_role("button", name="Play").first.is_visible()
    assert step_heading(page).startswith("Step 7 of")
    page.reload()
    wait_for_heading(page, "Step 7 of")
    title.wait_for(timeout=30_000)
    assert page.locator("[data-testid=stSidebar]").is_visible()
    wait_until_settled(page)
    page.get_by_text("Presentation mode").click()
    assert _quarters(page) == expected
    page.keyboard.press("ArrowRight")
    wait_for_heading(page, "Step 8 of")
    assert _quarters(page) == expected


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160)])
def test_the_stage_fills_the_screen_with_text_for_the_back_row(
    browser: Browser, server_url: str, screenshots: Path, size: tuple[int, int]
) -> None:
    w, h = size
    page = _present(browser, server_url, size, "step=7")
    try:
        stage = page.evaluate(
            "(() => { const r = document.querySelector('[data-testid=stMainBlockContainer]')"
            ".getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()"
        )
        assert stage[0] >= -1 and stage[1] >= -1 and stage[2] >= 0.99 * w and stage[3] >= 0.99 * h
        bottoms = [y + hh for _, y, _, hh in _quarters(page)]
        assert max(bottoms) >= 0.95 * h and max(bottoms) <= h + 1  # to the foot, not past it
        least, which, scale = page.evaluate(SMALLEST_FONT)
        print(f"{w}x{h}: stage scale {scale:.2f}, smallest text {least:.1f} px ({which!r})")
        assert least >= 24 * w / 1920 - 0.01, (least, which)
        screenshot(page, screenshots / f"presentation_{w}x{h}.png")
        if w == 1920:
            _assert_numbers_shown(page, 7)
            assert not chart_overlaps(page)
            before = _quarters(page)
            for key, k in (("ArrowRight", 8), ("Home", 0), ("End", 23)):
                page.keyboard.press(key)
                wait_for_heading(page, f"Step {k} of")
                assert _quarters(page) == before, k
    finally:
        page.context.close()
