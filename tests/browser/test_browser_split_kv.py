"""The split-KV decoding page in headless Chromium: a link opens a view (its n_k, splits and
GPU in the controls and in the charts), the four charts are painted, the step buttons move
the lanes and the merge (charts, equations, URL), a reload keeps the view, the correctness
panel shows the run's numbers, no chart text overlaps, no exception box."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from flashviz.lab.split_kv import GPUS, merge_steps, run_split_kv

from .helpers import (
    CHART,
    assert_no_exception,
    chart_overlaps,
    screenshot,
    wait_for_charts,
    wait_for_text,
    wait_until_settled,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

N_K, SPLITS, HEADS, GPU = 2000, 5, 2, "T4"  # 16 K/V blocks of 128: splits of 4, 3, 3, 3, 3
LINK = (
    f"/split_kv?splitkv_n_k={N_K}&splitkv_splits={SPLITS}&splitkv_heads={HEADS}&splitkv_gpu={GPU}"
)
RUN = run_split_kv(1, N_K, 64, SPLITS, 128, True, 0)  # the page's defaults for the rest
STEPS = merge_steps(RUN, 0)
SM, LANES, MERGE, UTIL = (
    f"Thread blocks on the {GPUS[GPU]} SMs of the {GPU}",
    "Each split's online softmax",
    "The merge, split by split",
    f"SM utilisation on the {GPU}",
)

# what is painted in each visible chart: its title, its bars and its markers (SVG paths
# with a shape), its lines
PAINTED = """() => Object.fromEntries([...document.querySelectorAll('.js-plotly-plot')]
  .filter(g => g.checkVisibility({visibilityProperty: true}))
  .map(g => {
    const drawn = (sel) => [...g.querySelectorAll(sel)]
      .filter(p => (p.getAttribute('d') || '').length > 4).length;
    return [g.querySelector('.gtitle')?.textContent || '', {
      bars: drawn('.barlayer .point path'),
      markers: drawn('.scatterlayer .points path'),
      lines: drawn('.scatterlayer .js-line'),
    }];
  }))"""


def _painted(page: Page) -> dict[str, dict[str, int]]:
    """Chart title -> numbers of painted bars, markers and lines."""
    return page.evaluate(PAINTED)


def _chart(page: Page, title: str) -> dict[str, int]:
    (found,) = [v for t, v in _painted(page).items() if t.startswith(title)]
    return found


def _wait_title(page: Page, text: str) -> None:
    page.wait_for_function(
        f"[...document.querySelectorAll('{CHART} .gtitle')]"
        f".some(t => t.textContent.includes({text!r}))",
        timeout=60_000,
    )
    wait_for_charts(page, 4)


def _wait_param(page: Page, key: str, value: int) -> None:
    page.wait_for_function(
        f"new URLSearchParams(location.search).get({key!r}) === '{value}'", timeout=30_000
    )


def _click(page: Page, name: str, section: int) -> None:
    """Click the button ``name`` of section 0 (the lanes) or 1 (the merge); once the page
    has answered, the button is where it was (the page did not shift under the pointer)."""
    button = page.get_by_role("button", name=name).nth(section)
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box is not None, f"the button {name!r} is not shown"
    before = box["y"]
    button.click()
    wait_until_settled(page)
    box = button.bounding_box()
    assert box is not None, f"the button {name!r} is gone after the click"
    assert abs(box["y"] - before) <= 2, (name, section, before)


def _input(page: Page, label: str) -> str:
    return page.locator(f"input[aria-label^='{label}']").first.input_value()


def _slider_value(page: Page, label: str) -> str:
    slider = page.locator("[data-testid=stSlider]").filter(has_text=label).first
    return slider.get_by_test_id("stSliderThumbValue").inner_text()


def _katex(page: Page) -> str:
    return page.locator(".katex-html").first.inner_text()


def test_split_kv_link_charts_steps_and_correctness(
    page: Page, server_url: str, screenshots: Path
) -> None:
    page.goto(f"{server_url}{LINK}")
    _wait_title(page, SM)
    wait_for_text(page, "5. Correctness against attention_reference")
    wait_until_settled(page)  # the last chart painted
    assert_no_exception(page)

    # the link's values in the controls, in the URL and in the charts' data
    assert (_input(page, "n_k"), _input(page, "splits"), _input(page, "batch x heads")) == (
        str(N_K), str(SPLITS), str(HEADS)
    )  # fmt: skip
    params = dict(parse_qsl(urlsplit(page.url).query))
    assert params.items() >= {"splitkv_n_k": str(N_K), "splitkv_splits": str(SPLITS),
                              "splitkv_gpu": GPU, "splitkv_merge": "0"}.items()  # fmt: skip
    painted = _painted(page)
    assert sorted(painted) == sorted([
        f"{SM} (colour: wave)",
        f"{LANES}, in parallel: after tile 1",
        f"{MERGE}: step 0 merges split 0",
        f"{UTIL}: FA2 vs split-KV",
    ]), painted  # fmt: skip
    assert RUN.work == [4, 3, 3, 3, 3]
    # FA2: one thread block per head; split-KV: one per head and split
    assert _chart(page, SM)["bars"] == HEADS + HEADS * SPLITS
    assert _chart(page, LANES)["markers"] == 2 * SPLITS  # m and l after each split's tile 1
    assert _chart(page, MERGE)["bars"] == 2 * SPLITS  # lse_s and the weights
    assert _chart(page, MERGE)["markers"] == 1  # merged lse after split 0
    assert _chart(page, UTIL)["lines"] == 2 and _chart(page, UTIL)["markers"] == 1
    assert f"{STEPS[0].lse:.6g}" in _katex(page)

    # the correctness panel: the run's errors, tolerances and verdict
    metrics = page.locator("[data-testid=stMetric]").all_inner_texts()
    assert len(metrics) == 3, metrics
    assert f"{RUN.max_err_o:.2e}" in metrics[0] and f"tolerance {RUN.tol_o:.2e}" in metrics[0]
    assert f"{RUN.max_err_lse:.2e}" in metrics[1] and f"{RUN.tol_lse:.2e}" in metrics[1]
    assert "matches" in metrics[2]
    assert not chart_overlaps(page), chart_overlaps(page)
    screenshot(page, screenshots / "split_kv_link.png")

    # the lanes: Last shows every split's tiles, Previous one tile less
    _click(page, "Last", 0)
    _wait_title(page, "after tile 4")
    _wait_param(page, "splitkv_step", 4)  # the slider's number is the title's
    assert _slider_value(page, "tiles done by each split") == "4"
    assert _chart(page, LANES)["markers"] == 2 * sum(RUN.work)
    _click(page, "Previous", 0)
    _wait_title(page, "after tile 3")
    _wait_param(page, "splitkv_step", 3)
    assert _chart(page, LANES)["markers"] == 2 * 3 * SPLITS

    # the merge: Next merges split 1, Last the last split and gives the run's lse
    _click(page, "Next", 1)
    _wait_title(page, "step 1 merges split 1")
    _wait_param(page, "splitkv_merge", 1)
    assert _chart(page, MERGE)["markers"] == 2
    assert f"{STEPS[1].lse:.6g}" in _katex(page)
    _click(page, "Last", 1)
    _wait_title(page, f"step {SPLITS - 1} merges split {SPLITS - 1}")
    _wait_param(page, "splitkv_merge", SPLITS - 1)
    wait_for_text(page, f"After the last split: lse = {float(RUN.lse[0]):.6g}")
    assert _chart(page, MERGE)["markers"] == SPLITS
    assert f"{STEPS[-1].lse:.6g}" in _katex(page)
    assert not chart_overlaps(page), chart_overlaps(page)
    screenshot(page, screenshots / "split_kv_merged.png")

    # a reload restores the view from the URL: both steps, the sizes
    page.reload()
    _wait_title(page, f"step {SPLITS - 1} merges split {SPLITS - 1}")
    assert f"{LANES}, in parallel: after tile 3" in _painted(page)
    assert _input(page, "splits") == str(SPLITS)
    assert_no_exception(page)
