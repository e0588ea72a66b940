"""In headless Chromium, at 1280x720 with the sidebar open and at 1920x1080: inside every
stepper chart no two texts overlap by more than 2 px and no colour bar covers another
panel; the first screen shows the step buttons with the tile map at 1280 and with all four
step charts at 1920 (three columns), back to two columns when the window narrows; a load
step shows the initial state m = -inf, l = 0; the tile map's on-chip bars (Q block right of
the map, K/V block above it) touch the map; at n = 512 in blocks of 64 the S tile shows its
contrast and each m / l column is >= 40 px wide."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .helpers import (
    CHART,
    chart_overlaps,
    clipped_chart_text,
    cut_text,
    screenshot,
    wait_for_charts,
    wait_for_heading,
    wait_until_settled,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PROBLEMS = {  # name: (query, step, charts)
    "default tile": ("", 7, 6),
    "n=64 d=16 blocks 8": ("n_q=64&n_k=64&head_dim=16&block_q=8&block_kv=8", 3, 6),
    "12x9 causal bug": (
        "n_q=12&n_k=9&head_dim=4&block_q=4&block_kv=3&causal=true&scale=400&bug=no_rescale_o",
        5,
        6,
    ),
}


CASES = [  # each problem at one or two sizes: lean, and every size seen
    ("default tile", 1280, 720),
    ("default tile", 1920, 1080),
    ("n=64 d=16 blocks 8", 1280, 720),
    ("12x9 causal bug", 1400, 900),
]


_BARS = """(maxGapPx) => {
  const found = [];
  document.querySelectorAll('.js-plotly-plot').forEach((gd) => {
    const title = gd.querySelector('.gtitle')?.textContent || '';
    const map = gd.querySelector('.heatmaplayer image');
    if (!title.startsWith('Tile map') || !map || map.getBoundingClientRect().width === 0) return;
    const m = map.getBoundingClientRect();
    gd.querySelectorAll('.shapelayer path').forEach((e) => {
      // style.CURRENT: Okabe-Ito orange, drawn darker on the light paper (charts.ON_LIGHT)
      if (!['rgb(230, 159, 0)', 'rgb(184, 110, 0)'].includes(getComputedStyle(e).fill)) return;
      const r = e.getBoundingClientRect();
      const right = r.top >= m.top - 1 && r.bottom <= m.bottom + 1;  // beside the rows: Q_i
      const gap = right ? r.left - m.right : m.top - r.bottom;      // else above: K_j, V_j
      if (gap < 0 || gap > maxGapPx)
        found.push(`${title}: an on-chip bar is ${gap.toFixed(0)} px from the map`);
    });
  });
  return found;
}"""


def detached_bars(page: Page, max_gap_px: float = 12.0) -> list[str]:
    """The tile map's on-chip bars that do not sit next to the map (a map narrowed to square
    cells once left its Q bar at the far right of the plot area)."""
    return page.evaluate(_BARS, max_gap_px)


HALF_INDEX_TICKS = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(g => (g.querySelector('.gtitle')?.textContent || '').startsWith('Tile ('))
  .flatMap(g => [...g.querySelectorAll('.xtick text, .ytick text')].map(t => t.textContent))
  .filter(t => /^-?\\d+\\.5$/.test(t))"""  # a key or query index between two whole ones


CUT_LEGEND_TEXT = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(g => g.checkVisibility() && g.querySelector('.legend .bg'))
  .flatMap(g => { const box = g.querySelector('.legend .bg').getBoundingClientRect();
    const items = [...g.querySelectorAll('.legend .traces')].map(e => e.getBoundingClientRect());
    return [...g.querySelectorAll('.legend .traces')].flatMap((e, k) => {
      const text = e.querySelector('.legendtext'), r = text.getBoundingClientRect();
      const next = items.find((b, n) => n > k && Math.abs(b.top - items[k].top) < 2);
      return r.right > (next ? next.left : box.right) + 1 ? [text.textContent] : []; }); })"""
# a legend entry whose text runs under the next entry or past the legend's edge (cut)


def _assert_first_screen_shows_the_buttons_and_the_tile_map(page: Page, height: int) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    assert page.locator("[data-testid=stSidebar]").is_visible()
    next_button = page.get_by_role("button", name="Next").first.bounding_box()
    tile_map = page.locator(CHART, has_text="Tile map").first.bounding_box()
    assert next_button is not None and next_button["y"] + next_button["height"] <= height
    assert tile_map is not None and height - tile_map["y"] >= 250, (next_button, tile_map)


FOUR_CHARTS = """() => [...document.querySelectorAll('.fv-chart')].map(e => {
  const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"""


def _assert_first_screen_shows_the_buttons_and_the_four_charts(
    page: Page, width: int, height: int
) -> None:
    """The wide layout (the window reported its width, the server drew three columns): the
    step buttons and the tile map, tile, statistics and accumulator all on the first screen,
    sidebar open; narrowed to 1280, the page goes back to two columns."""
    page.wait_for_function(
        f"[...document.querySelectorAll('.fv-chart')].every(e => "
        f"e.getBoundingClientRect().bottom <= {height})",
        timeout=30_000,
    )
    wait_until_settled(page)
    page.evaluate("window.scrollTo(0, 0)")
    assert page.locator("[data-testid=stSidebar]").is_visible()
    next_button = page.get_by_role("button", name="Next").first.bounding_box()
    assert next_button is not None and next_button["y"] + next_button["height"] <= height
    boxes = page.evaluate(FOUR_CHARTS)
    assert len(boxes) == 4
    for left, top, right, bottom in boxes:
        assert left >= 0 and top >= 0 and right <= width and bottom <= height, boxes
    page.set_viewport_size({"width": 1280, "height": 720})
    page.wait_for_function(  # two columns again: the map's
        "[...document.querySelectorAll('.fv-chart')].some(e => "  # width is half the page's
        "e.getBoundingClientRect().width > 700)",
        timeout=30_000,
    )
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_function(
        f"[...document.querySelectorAll('.fv-chart')].every(e => "
        f"e.getBoundingClientRect().bottom <= {height})",
        timeout=30_000,
    )
    wait_until_settled(page)


@pytest.mark.parametrize(("problem", "width", "height"), CASES)
def test_no_text_or_colour_bar_overlaps_in_stepper_charts(
    browser: Browser, server_url: str, screenshots: Path, width: int, height: int, problem: str
) -> None:
    query, step, charts = PROBLEMS[problem]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        page.goto(f"{server_url}/?{query}&step={step}")
        wait_for_heading(page, f"Step {step} of")
        wait_for_charts(page, charts)
        wait_until_settled(page)
        found = chart_overlaps(page) + detached_bars(page)
        screenshot(page, screenshots / f"layout_{problem.replace(' ', '_')}_{width}.png")
        assert not found, "\n".join(found[:20]) + f"\n... {len(found)} in all"
        if (width, height) == (1280, 720):  # the first screen, sidebar open: Next and the map
            _assert_first_screen_shows_the_buttons_and_the_tile_map(page, height)
        if (width, height) == (1920, 1080):  # wide: Next and all four charts on screen
            _assert_first_screen_shows_the_buttons_and_the_four_charts(page, width, height)
            found = clipped_chart_text(page) + cut_text(page)
            assert not found, found
        assert page.evaluate(HALF_INDEX_TICKS) == []
        assert page.evaluate(CUT_LEGEND_TEXT) == []
    finally:
        context.close()


# --- at n = 512 (d = 64, blocks 64): the S tile's contrast, m / l columns ------

_HEATMAPS = """() => {
  const shown = [...document.querySelectorAll('.js-plotly-plot')]
    .filter(c => c.checkVisibility({visibilityProperty: true}));
  const chart = (t) => shown.find(c => (c.querySelector('.gtitle')?.textContent || '')
    .startsWith(t));
  const heat = (gd, i, name) => {
    const z = gd.calcdata[i][0].z, finite = z.flat().filter(Number.isFinite);
    const img = gd.querySelectorAll('.heatmaplayer image')[i];
    img.setAttribute('data-heatmap', name);
    return {zmin: gd._fullData[i].zmin, zmax: gd._fullData[i].zmax,
      lo: Math.min(...finite), hi: Math.max(...finite), cols: z[0].length,
      width: img.getBoundingClientRect().width};
  };
  const tile = chart('Tile ('), stats = chart('Running statistics');
  return {S: heat(tile, 0, 'S'), m: heat(stats, 0, 'm'), l: heat(stats, 1, 'l')};
}"""


def test_n512_tile_shows_contrast_and_m_l_columns_are_readable(
    browser: Browser, server_url: str, screenshots: Path
) -> None:
    """The S tile spans its colour scale (it looked blank on the tile map's) and shows it
    in pixels; each m / l column is at least 40 px wide (they were slivers); no overlaps."""
    import io

    import numpy as np
    from PIL import Image

    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        page.goto(f"{server_url}/?n_q=512&n_k=512&head_dim=64&block_q=64&block_kv=64&step=5")
        wait_for_heading(page, "Step 5 of")
        wait_for_charts(page, 6, timeout_ms=120_000)
        wait_until_settled(page)
        found = page.evaluate(_HEATMAPS)
        s = found["S"]
        assert (s["hi"] - s["lo"]) / (s["zmax"] - s["zmin"]) > 0.99, s  # spans the scale
        shot = page.locator("[data-heatmap=S]").screenshot()
        rgb = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), dtype=float)
        luminance = rgb @ [0.2126, 0.7152, 0.0722]
        assert luminance.std() > 15, luminance.std()  # 1.2 on the map's scale, 31 on its own
        for name in ("m", "l"):
            assert found[name]["width"] / found[name]["cols"] >= 40, found[name]
        overlaps = [o for o in chart_overlaps(page) if o.startswith(("Tile (", "Running"))]
        screenshot(page, screenshots / "layout_n512_blocks64_1280.png")
        assert not overlaps, "\n".join(overlaps[:20])
    finally:
        context.close()
