"""Play in headless Chromium: it advances the step monotonically at every offered speed,
stops at the last step, pauses cleanly, and the slider agrees with the heading. The step
heading is recorded every 60 ms in the page itself."""

from __future__ import annotations

import itertools
import re

import pytest

from flashviz.app.stepper.step_panel import SPEEDS
from tests.browser.helpers import (
    assert_no_exception,
    step_heading,
    wait_for_heading,
    wait_until_settled,
)

LAST = 23  # default problem: 4 Q blocks x (load + 4 tiles + write) = 24 steps
RECORD = """() => {
  window.__steps = [];
  window.__timer = setInterval(() => {
    const h = [...document.querySelectorAll('h3')].map(e => e.innerText)
      .find(t => t.startsWith('Step '));
    if (h) window.__steps.push(parseInt(h.split(' ')[1]));
  }, 60);
}"""


def _set_speed(page: object, label: str) -> None:
    thumb = page.locator("input[type=range][aria-label='speed']")  # type: ignore[attr-defined]
    thumb.focus()
    page.keyboard.press("Home")  # type: ignore[attr-defined]
    for _ in range(list(SPEEDS).index(label)):
        page.keyboard.press("ArrowRight")  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        f"document.body.innerText.includes({label!r})", timeout=10_000
    )
    wait_until_settled(page)  # the rerun it started


def _recorded(page: object) -> list[int]:
    return page.evaluate("() => { clearInterval(window.__timer); return window.__steps; }")  # type: ignore[attr-defined]


def _slider_step(page: object) -> int:
    slider = page.locator("input[type=range][aria-label='step']")  # type: ignore[attr-defined]
    return int(slider.input_value())


@pytest.mark.parametrize(("speed", "start", "seconds"), [
    # paused mid-way (too slow to reach the end in the time, however loaded the machine)
    ("0.5 step/s", 2, 7), ("1 step/s", 2, 6),
    # played to the end: recorded until the last step, and a while after it
    ("2 steps/s", 12, None), ("4 steps/s", 14, None),
])  # fmt: skip
def test_play_is_monotonic_stops_at_the_end_and_slider_agrees(
    page: object, server_url: str, speed: str, start: int, seconds: float | None
) -> None:
    page.goto(f"{server_url}/?step={start}")  # type: ignore[attr-defined]
    wait_for_heading(page, f"Step {start} of {LAST}")
    _set_speed(page, speed)
    page.evaluate(RECORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Play").click()  # type: ignore[attr-defined]
    if seconds is None:  # to the end, however long a loaded machine takes; then it stays
        wait_for_heading(page, f"Step {LAST} of {LAST}", timeout_ms=90_000)
        page.wait_for_timeout(1500)  # type: ignore[attr-defined]
    else:
        page.wait_for_timeout(seconds * 1000)  # type: ignore[attr-defined]
    steps = _recorded(page)
    changes = [b for a, b in itertools.pairwise(steps) if b != a]
    print(speed, "steps seen:", sorted(set(steps)), "changes:", changes)
    assert all(b > a for a, b in itertools.pairwise(steps) if b != a), steps
    assert len(changes) >= 2, steps
    if seconds is None:  # stopped at the end: Play offered again
        assert steps[-1] == LAST, steps
        page.get_by_role("button", name="Play").wait_for(timeout=30_000)  # type: ignore[attr-defined]
    else:
        assert steps[-1] < LAST, steps
        page.get_by_role("button", name="Pause").click()  # type: ignore[attr-defined]
        page.get_by_role("button", name="Play").wait_for(timeout=30_000)  # type: ignore[attr-defined]
    wait_until_settled(page)  # the pause landed
    k = int(re.match(r"Step (\d+)", step_heading(page)).group(1))  # type: ignore[union-attr]
    page.wait_for_timeout(2000)  # type: ignore[attr-defined]  # paused: nothing moves
    assert step_heading(page).startswith(f"Step {k} of")
    assert _slider_step(page) == k
    assert_no_exception(page)
