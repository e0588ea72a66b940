"""Stepping latency as a person feels it, against a minimal Streamlit page, side by side.

Each Next click is timed in the page (``performance.now()`` from the click to the last
change inside any chart after 300 ms of quiet; ``tests/measure_latency.py``), alternating
between the stepper and ``tests/latency_floor_app.py`` (a fragment redrawing two 4x4
heatmaps), so that both see the same machine load. The bound is on the ratio of the
medians, not on milliseconds, so a busy CI machine slows both sides alike.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator

import pytest

from tests.measure_latency import FLOOR_APP, side_by_side, step_heading

from .conftest import streamlit_server

pytestmark = pytest.mark.browser

CLICKS = 5
# Issue #9's goal is 1.0x and is NOT met: Streamlit 1.67 rebuilds every st.plotly_chart on
# each step (its element id hashes the figure, whatever key= says), so four charts cannot
# beat a page with two tiny ones. Measured at the default problem on the 2-core machine
# shared with other jobs: 3.8-7.0x, higher the busier the machine (the heavier page
# suffers more). The bound is a regression guard with that margin: a chart drawn twice
# per click, or a stall, goes past it.
RATIO_BOUND = 12.0


@pytest.fixture(scope="module")
def floor_url(server_url: str) -> Iterator[str]:
    with streamlit_server(FLOOR_APP) as url:
        yield url


def test_a_step_costs_at_most_a_few_minimal_pages_and_charts_follow_the_heading(
    browser: object, server_url: str, floor_url: str
) -> None:
    on_app, on_floor = side_by_side(browser, server_url, floor_url, CLICKS)
    app = statistics.median(c.charts_ms for c in on_app)
    floor = statistics.median(c.charts_ms for c in on_floor)
    lag = statistics.median(c.charts_ms - c.heading_ms for c in on_app)
    print(f"click to charts: stepper {app:.0f} ms, minimal page {floor:.0f} ms, "
          f"ratio {app / floor:.2f}x; charts settle {lag:.0f} ms after the heading")  # fmt: skip
    assert app / floor <= RATIO_BOUND
    # Every click changed both the heading and at least one chart (no click lost).
    assert all(c.heading_ms > 0 and c.charts_ms > 0 for c in on_app)


def test_charts_show_the_step_the_heading_names(page: object, server_url: str) -> None:
    """After a Next click settles, the tile map's current tile is the heading's tile."""
    page.goto(f"{server_url}/?step=1")  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 6", timeout=60_000
    )
    for _ in range(3):
        page.get_by_role("button", name="Next").click()  # type: ignore[attr-defined]
        page.wait_for_timeout(300)  # type: ignore[attr-defined]
        page.wait_for_function(  # type: ignore[attr-defined]
            "document.querySelector('[data-testid=\"stApp\"]')"
            "?.getAttribute('data-test-script-state') === 'notRunning'",
            timeout=30_000,
        )
        page.wait_for_timeout(1000)  # type: ignore[attr-defined]
        heading = step_heading(page)
        j = heading.split("K/V block ")[1].split()[0] if "K/V block" in heading else None
        label = page.evaluate(  # type: ignore[attr-defined]
            "[...document.querySelectorAll('.js-plotly-plot .annotation-text')]"
            ".map(t => t.textContent.replaceAll('\\u200b', ''))"
            ".find(t => t.startsWith('K')) || ''"
        )
        if j is not None:
            assert label == f"K{j}, V{j}", (heading, label)
