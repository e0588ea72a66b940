"""Stepping latency as a person feels it, against a minimal Streamlit page, side by side.

Each step is timed in the page (``tests/tools/measure_latency.py``: ``performance.now()`` from the
click, or the Right key, to the frame after the last change inside a shown chart),
alternating between the stepper and ``tests/tools/latency_floor_app.py`` (a fragment redrawing two
4x4 heatmaps), so that both see the same machine load. The bound is on the ratio of the
medians, not on milliseconds, so a busy CI machine slows both sides alike. The stepper steps
in the browser (``flashviz/app/stepper/step_view.py``): no server round trip before the
charts change, and everything else of the step (explanation, worked numbers, counters,
slider, code) changes in the same task; the whole visible page settles in that frame.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import streamlit_server
from tests.browser.helpers import SHOWN_TILE_LABEL, wait_for_charts, wait_for_heading
from tests.tools.measure_latency import FLOOR_APP, side_by_side, step_heading

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CLICKS = 5
RATIO_BOUND = 1.0  # the charts: at most the minimal page's time
KEY_RATIO_BOUND = 0.5  # arrow keys "well under" it
PAGE_RATIO_BOUND = 0.5  # the whole visible page settled: within half the minimal page's time

SERVER_STEP = "new URL(location.href).searchParams.get('step')"


@pytest.fixture(scope="module")
def floor_url(server_url: str) -> Iterator[str]:
    with streamlit_server(FLOOR_APP) as url:
        yield url


def test_a_step_is_faster_than_a_minimal_page_with_heading_and_charts_together(
    browser: Browser, server_url: str, floor_url: str
) -> None:
    on_app, on_keys, on_floor = side_by_side(browser, server_url, floor_url, CLICKS)
    app = statistics.median(c.charts_ms for c in on_app)
    key = statistics.median(c.charts_ms for c in on_keys)
    floor = statistics.median(c.charts_ms for c in on_floor)
    page = statistics.median(c.page_ms for c in on_app)
    page_key = statistics.median(c.page_ms for c in on_keys)
    page_floor = statistics.median(c.page_ms for c in on_floor)
    print(f"click to charts: stepper {app:.0f} ms, Right key {key:.0f} ms, minimal page "
          f"{floor:.0f} ms: ratio {app / floor:.2f}x, key {key / floor:.2f}x; whole page "
          f"settled: stepper {page:.0f} ms, Right key {page_key:.0f} ms, minimal page "
          f"{page_floor:.0f} ms: ratio {page / page_floor:.2f}x, "
          f"key {page_key / page_floor:.2f}x")  # fmt: skip
    assert app / floor <= RATIO_BOUND
    assert key / floor <= KEY_RATIO_BOUND
    assert page / page_floor <= PAGE_RATIO_BOUND
    assert page_key / page_floor <= PAGE_RATIO_BOUND
    for c in on_app + on_keys:
        assert c.heading_ms > 0 and c.charts_ms > 0  # every step changed both
        assert c.together, c  # heading and charts in one task: the same frame
        assert c.once, c  # the server's rerun did not redraw a chart showing that step
        # one step on screen at a time: explanation, numbers, counters, slider and code
        # changed in that same task, and nothing shown changed when the server answered
        assert c.page_once and c.first_page_ms == c.first_chart_ms, c


def test_charts_show_the_step_the_heading_names(page: Page, server_url: str) -> None:
    """After Next or Right, the shown tile map's current tile is the heading's tile, before
    and after the server has answered."""
    page.goto(f"{server_url}/?step=1")
    wait_for_charts(page, 6)
    for step in range(2, 6):
        if step % 2:
            page.keyboard.press("ArrowRight")
        else:
            page.get_by_role("button", name="Next").click()
        heading = step_heading(page)
        assert heading.startswith(f"Step {step} of"), heading
        j = re.search(r"K/V block (\d+)", heading)
        if j is not None:
            assert page.evaluate(SHOWN_TILE_LABEL) == f"K{j[1]}, V{j[1]}", heading
        page.wait_for_function(f"{SERVER_STEP} === '{step}'", timeout=30_000)
        wait_for_charts(page, 6 if j is not None else 5)
        assert step_heading(page) == heading
        if j is not None:
            assert page.evaluate(SHOWN_TILE_LABEL) == f"K{j[1]}, V{j[1]}", heading


def test_arrow_keys_step_and_home_end_jump_but_not_while_typing(
    page: Page, server_url: str
) -> None:
    page.goto(f"{server_url}/?step=3")
    wait_for_heading(page, "Step 3 of")
    last = int(step_heading(page).split()[3].rstrip(":"))
    for key, step in [("ArrowLeft", 2), ("ArrowRight", 3), ("End", last), ("Home", 0)]:
        page.keyboard.press(key)
        assert step_heading(page).startswith(f"Step {step} of")
        page.wait_for_function(f"{SERVER_STEP} === '{step}'", timeout=30_000)
    page.keyboard.press("ArrowLeft")  # nothing before step 0
    assert step_heading(page).startswith("Step 0 of")
    n_q = page.get_by_label("n_q (queries)")
    n_q.focus()
    page.keyboard.press("ArrowRight")  # moves the caret only
    page.keyboard.press("End")
    page.wait_for_timeout(500)
    assert step_heading(page).startswith("Step 0 of")


# Every text the step heading shows, in order (a MutationObserver on the page).
RECORD_HEADINGS = """() => {
  window.__headings = [];
  const read = () => [...document.querySelectorAll('h3')].map(h => h.innerText)
    .find(t => t.startsWith('Step ')) || '';
  new MutationObserver(() => {
    const t = read(), seen = window.__headings;
    if (t && seen[seen.length - 1] !== t) seen.push(t);
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""
FAST_CLICKS = """() => new Promise((done) => {
  const next = document.querySelector('.fv-button[data-move=next]');
  let n = 0;
  const click = () => { next.click(); if (++n < 12) setTimeout(click, 30); else done(); };
  click();
})"""


def test_fast_clicks_never_step_back_while_the_server_catches_up(
    page: Page, server_url: str
) -> None:
    """Twelve Next clicks 30 ms apart, faster than the server answers (its answers to older
    clicks land in between): the heading only goes forward, and the page and the URL end on
    the twelfth step."""
    page.goto(f"{server_url}/?step=1")
    wait_for_charts(page, 6)
    page.evaluate(RECORD_HEADINGS)
    page.evaluate("window.__fvStepLog = []")  # the view's log
    page.evaluate(FAST_CLICKS)
    try:  # twelve reruns queued behind each other: generous on a loaded machine
        page.wait_for_function(f"{SERVER_STEP} === '13'", timeout=90_000)
    except Exception as err:
        seen = page.evaluate(
            f"[{SERVER_STEP}, window.__headings, window.__fvStepLog, "
            "document.querySelector('[data-testid=stStatusWidget]')?.innerText ?? 'idle']"
        )
        raise AssertionError(
            f"server never reached step 13: URL step {seen[0]}, headings {seen[1]}, script "
            f"status {seen[3]!r}, the step view's moves and the server runs it saw: {seen[2]}"
        ) from err
    page.wait_for_timeout(1000)  # any late rerun lands
    steps = [int(h.split()[1]) for h in page.evaluate("window.__headings")]
    assert steps == sorted(steps) and steps[-1] == 13, steps
    heading = step_heading(page)
    j = re.search(r"K/V block (\d+)", heading)
    assert heading.startswith("Step 13 of") and j is not None
    assert page.evaluate(SHOWN_TILE_LABEL) == f"K{j[1]}, V{j[1]}"
