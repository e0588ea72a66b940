"""In headless Chromium: every frame of the whole-run animation draws every panel,
in the app and in the exported offline HTML opened from disk. A heatmap is drawn as an
<image> inside the SVG: the test counts its painted pixels after moving to a middle frame
(slider) and after playing a few frames. Its title, buttons and slider label do not
overlap at 1280x720, also when the title is long (a sampled run)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .helpers import CHART, chart_overlaps, screenshot, wait_for_charts, wait_until_settled

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

# The whole-run chart's heatmap image: painted pixels (alpha > 0), -1 when there is none.
HEATMAP_PIXELS = """async (gd) => {
  const img = gd.querySelector('g.hm image');
  if (!img) return -1;
  const el = new Image();
  el.src = img.getAttribute('href') || img.getAttribute('xlink:href');
  await el.decode();
  const c = document.createElement('canvas');
  c.width = el.naturalWidth; c.height = el.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(el, 0, 0);
  const px = ctx.getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
  return n;
}"""
SLIDER_VALUE = """(gd) => gd.querySelector('.slider-container .slider-label')?.textContent || ''"""


def _move_slider_to_middle(page: Page, chart: Locator) -> str:
    box = chart.locator(".slider-rail-rect").bounding_box()
    assert box is not None, "the animation's slider is not shown"
    page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2)
    wait_until_settled(page)  # the frame it moved to is drawn
    return chart.evaluate(SLIDER_VALUE)


def _play_a_few_frames(page: Page, chart: Locator) -> str:
    chart.locator(".updatemenu-button", has_text="Play").click()
    page.wait_for_timeout(1800)  # 400 ms a frame
    chart.locator(".updatemenu-button", has_text="Pause").click()
    wait_until_settled(page)
    return chart.evaluate(SLIDER_VALUE)


def _check_frames(page: Page, chart: Locator) -> None:
    at = _move_slider_to_middle(page, chart)
    assert at.startswith("after step") and "write" not in at, at  # a frame in mid-block
    pixels = chart.evaluate(HEATMAP_PIXELS)
    assert pixels > 0, f"no heatmap drawn at the middle frame ({at})"
    at = _move_slider_to_middle(page, chart)  # back to a known frame, then play on
    played_to = _play_a_few_frames(page, chart)
    assert played_to != at, "Play did not move the animation"
    assert chart.evaluate(HEATMAP_PIXELS) > 0, f"no heatmap after playing ({played_to})"


def test_whole_run_frames_draw_the_output_heatmap_in_app_and_offline_html(
    page: Page, server_url: str, screenshots: Path, tmp_path: Path
) -> None:
    page.goto(f"{server_url}/?step=1")
    chart = page.locator(CHART, has_text="The whole run").first
    chart.locator(".slider-rail-rect").wait_for(timeout=60_000)
    chart.scroll_into_view_if_needed()
    _check_frames(page, chart)
    screenshot(page, screenshots / "whole_run_middle_frame.png")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download the animation").click()
    html = tmp_path / "flashviz_whole_run.html"
    download.value.save_as(html)
    page.goto(html.as_uri())
    wait_for_charts(page, 1)
    _check_frames(page, page.locator(CHART).first)
    page.screenshot(path=str(screenshots / "whole_run_offline_html.png"))


def test_whole_run_title_buttons_and_labels_do_not_overlap_at_1280(
    browser: Browser, server_url: str, screenshots: Path
) -> None:
    """n = 512 in blocks of 64: 'The whole run, 80 frames, every 8th row: press Play' once
    ran under the Play / Pause buttons."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        page.goto(f"{server_url}/?n_q=512&n_k=512&head_dim=64&block_q=64&block_kv=64&step=1")
        chart = page.locator(CHART, has_text="The whole run").first
        chart.locator(".slider-rail-rect").wait_for(timeout=90_000)
        chart.scroll_into_view_if_needed()
        wait_until_settled(page)
        found = [f for f in chart_overlaps(page) if f.startswith("The whole run")]
        screenshot(page, screenshots / "whole_run_512_1280.png")
        assert not found, "\n".join(found)
    finally:
        context.close()
