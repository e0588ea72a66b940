"""The backward page in headless Chromium: a link opens a problem, Next steps through the
delta, load and tile steps, each chart is redrawn with that step's numbers (the tile map's
title, dS's cell numbers, dQ's additions), the URL follows the step, no chart text overlaps,
no exception box. The README's picture is ``python tests/tools/readme_screenshots.py
backward``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from flashviz.core.backward_trace import BwdTileStep
from flashviz.lab.backward import dq_adds_after, run_backward
from flashviz.lab.problem_spec import ProblemSpec

from .helpers import (
    CHART,
    assert_no_exception,
    chart_overlaps,
    screenshot,
    wait_for_charts,
    wait_for_heading,
    wait_until_settled,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

SPEC = ProblemSpec(n_q=8, n_k=8, head_dim=4, block_q=4, block_kv=4, causal=True, seed=1)
LINK = "/backward?n_q=8&n_k=8&head_dim=4&block_q=4&block_kv=4&causal=true&seed=1&pattern=spiky"
RUN = run_backward(SPEC)

# every visible chart's title and its SVG texts
TEXTS = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(g => g.checkVisibility({visibilityProperty: true}))
  .map(g => [g.querySelector('.gtitle')?.textContent || '',
             [...g.querySelectorAll('svg text')].map(t => t.textContent.trim())])"""


def _charts(page: Page) -> dict[str, list[str]]:
    """Chart title -> the texts drawn in it."""
    return dict(page.evaluate(TEXTS))


SHOWN = """(title) => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(g => g.checkVisibility({visibilityProperty: true}))
  .some(g => (g.querySelector('.gtitle')?.textContent || '').startsWith(title))"""


def _chart(page: Page, title: str) -> list[str]:
    """The texts of the chart titled ``title...``, once it is drawn: on a busy machine the
    page's charts are redrawn one after another."""
    page.wait_for_function(SHOWN, arg=title, timeout=30_000)
    (found,) = [texts for t, texts in _charts(page).items() if t.startswith(title)]
    return found


def _next(page: Page, k: int, charts: int) -> None:
    page.get_by_role("button", name="Next").click()
    wait_for_heading(page, f"Step {k} of {len(RUN.trace.steps) - 1}")
    page.wait_for_function(
        f"[...document.querySelectorAll('{CHART} .gtitle')]"
        f".some(t => t.textContent.includes('step {k}'))",
        timeout=60_000,
    )
    wait_for_charts(page, charts)
    page.wait_for_function(
        f"new URLSearchParams(location.search).get('bwd_step') === '{k}'", timeout=30_000
    )


def test_backward_link_steps_and_redraws(page: Page, server_url: str, screenshots: Path) -> None:
    page.goto(f"{server_url}{LINK}")
    wait_for_heading(page, "Step 0 of")
    wait_for_charts(page, 2)  # the delta step: the tile map and dQ
    assert_no_exception(page)
    params = dict(parse_qsl(urlsplit(page.url).query))
    assert params.items() >= {"n_q": "8", "causal": "true", "bwd_step": "0"}.items()
    assert _chart(page, "dQ in HBM after step 0: no addition")

    _next(page, 1, 3)  # load K/V block 0: dK_0, dV_0 = 0 join the charts
    assert _chart(page, "K/V block 0's gradients on chip after step 1")

    t = RUN.trace
    _next(page, 2, 5)  # the first tile: S, P, dP, dS
    step = t.steps[2]
    assert isinstance(step, BwdTileStep), type(step).__name__  # the first tile
    assert (step.i, step.j) == (0, 0)
    tile_map = _chart(page, "Tiles in the backward's order")
    assert "3" in tile_map  # the order numbers: 1, 2 in column 0, 3 at (1, 1)
    grads = _chart(page, "Tile (0, 0): the gradients of P and S")
    shown = {f"{x:.2f}" for x in step.ds.ravel()} | {f"{x:.1f}" for x in step.ds.ravel()}
    cells = [s for s in grads if s.replace("\u2212", "-") in shown]
    assert len(cells) >= step.ds.size, grads  # dP's and dS's cells carry their numbers
    dq = _chart(page, "dQ in HBM after step 2: rows 0-3 receive an addition")
    assert dq
    assert dq_adds_after(t, 2)[:4].tolist() == [1, 1, 1, 1]
    assert not chart_overlaps(page), chart_overlaps(page)
    screenshot(page, screenshots / "backward_tile.png")

    _next(page, 3, 5)  # tile (1, 0): Q block 1 adds to rows 4-7
    assert _chart(page, "dQ in HBM after step 3: rows 4-7 receive an addition")
    assert _chart(page, "Tile (1, 0): the gradients of P and S")
    assert not chart_overlaps(page), chart_overlaps(page)

    page.get_by_role("button", name="Last").click()
    wait_for_heading(page, f"Step {len(t.steps) - 1} of {len(t.steps) - 1}: write dK/dV")
    wait_for_charts(page, 3)
    wait_until_settled(page)
    text = page.locator("[data-testid=stMetric]").all_inner_texts()
    assert any(f"{len(t.tile_steps())} / {len(t.tile_steps())}" in m for m in text), text
    assert any(f"{RUN.errors['dk']:.2e}" in m for m in text) and any("matches" in m for m in text)
    assert not chart_overlaps(page), chart_overlaps(page)
    assert_no_exception(page)
