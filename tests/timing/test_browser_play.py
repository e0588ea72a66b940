"""Play in headless Chromium: it advances the step monotonically at every offered speed,
stops at the last step, pauses cleanly, and the slider agrees with the heading. Each speed
plays in a page of its own, all at once (as students in a class would); each page records
its step heading every 60 ms in the page itself."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from flashviz.app.stepper.step_panel import SPEEDS
from tests.browser.helpers import (
    assert_no_exception,
    step_heading,
    wait_for_heading,
    wait_until_settled,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

LAST = 23  # default problem: 4 Q blocks x (load + 4 tiles + write) = 24 steps
RECORD = """() => {
  window.__steps = [];
  window.__timer = setInterval(() => {
    const h = [...document.querySelectorAll('h3')].map(e => e.innerText)
      .find(t => t.startsWith('Step '));
    if (h) window.__steps.push(parseInt(h.split(' ')[1]));
  }, 60);
}"""


@dataclass
class Play:
    speed: str
    start: int
    seconds: float | None  # paused after this long; None: played to the end
    page: Page
    clicked: float = 0.0
    steps: list[int] = field(default_factory=list)


PLAYS: list[tuple[str, int, float | None]] = [  # a Play's speed, start and seconds
    # paused mid-way (too slow to reach the end in the time, however loaded the machine)
    ("0.5 step/s", 2, 7), ("1 step/s", 2, 6),
    # played to the end: recorded until the last step, and a while after it
    ("2 steps/s", 18, None), ("4 steps/s", 16, None),
]  # fmt: skip
AFTER_THE_END_S = 1.5  # recorded this long after the last step at least: it stays there
PAUSED_S = 2.0  # paused this long: nothing moves (the slowest speed steps every 2 s)


def _set_speed(page: Page, label: str) -> None:
    """Move the speed slider to ``label`` (the rerun it starts: ``_speed_set``)."""
    thumb = page.locator("input[type=range][aria-label='speed']")
    thumb.focus()
    page.keyboard.press("Home")
    for _ in range(list(SPEEDS).index(label)):
        page.keyboard.press("ArrowRight")


def _speed_set(page: Page, label: str) -> None:
    page.wait_for_function(f"document.body.innerText.includes({label!r})", timeout=10_000)
    wait_until_settled(page)  # the rerun it started


def _recorded(page: Page) -> list[int]:
    return page.evaluate("() => { clearInterval(window.__timer); return window.__steps; }")


def _slider_step(page: Page) -> int:
    slider = page.locator("input[type=range][aria-label='step']")
    return int(slider.input_value())


@pytest.fixture
def plays(browser: Browser) -> Iterator[list[Play]]:
    contexts = [browser.new_context(viewport={"width": 1600, "height": 2600}) for _ in PLAYS]
    try:
        yield [Play(*p, page=c.new_page()) for p, c in zip(PLAYS, contexts, strict=True)]
    finally:
        for c in contexts:
            c.close()


def test_play_is_monotonic_stops_at_the_end_and_slider_agrees_at_every_speed(
    plays: list[Play], server_url: str
) -> None:
    for p in plays:  # the pages load at once
        p.page.goto(f"{server_url}/?step={p.start}")
    for p in plays:  # the speeds set at once too
        wait_for_heading(p.page, f"Step {p.start} of {LAST}")
        _set_speed(p.page, p.speed)
    for p in plays:
        _speed_set(p.page, p.speed)
        p.page.evaluate(RECORD)
    for p in plays:
        p.page.get_by_role("button", name="Play").click()
        p.clicked = time.monotonic()
    paused = [(p.seconds, p) for p in plays if p.seconds is not None]
    for seconds, p in sorted(paused, key=lambda sp: sp[0]):
        time.sleep(max(0.0, p.clicked + seconds - time.monotonic()))
        p.steps = _recorded(p.page)
        p.page.get_by_role("button", name="Pause").click()
    for p in plays:  # to the end, however long a loaded machine takes; then it stays there
        if p.seconds is None:
            wait_for_heading(p.page, f"Step {LAST} of {LAST}", timeout_ms=90_000)
            time.sleep(AFTER_THE_END_S)
            p.steps = _recorded(p.page)
    for p in plays:
        changes = [b for a, b in itertools.pairwise(p.steps) if b != a]
        print(p.speed, "steps seen:", sorted(set(p.steps)), "changes:", changes)
        assert all(b > a for a, b in itertools.pairwise(p.steps) if b != a), (p.speed, p.steps)
        assert len(changes) >= 2, (p.speed, p.steps)
        if p.seconds is None:  # stopped at the end
            assert p.steps[-1] == LAST, (p.speed, p.steps)
        else:
            assert p.steps[-1] < LAST, (p.speed, p.steps)
    shown = {}
    for p in plays:  # Play offered again: stopped at the end, or the pause landed
        p.page.get_by_role("button", name="Play").wait_for(timeout=30_000)
        wait_until_settled(p.page)
        heading = re.match(r"Step (\d+)", step_heading(p.page))
        assert heading, f"{p.speed}: no step heading shown"
        shown[p.speed] = int(heading.group(1))
    time.sleep(PAUSED_S)
    for p in plays:
        k = shown[p.speed]
        assert step_heading(p.page).startswith(f"Step {k} of"), p.speed
        assert _slider_step(p.page) == k, p.speed
        assert_no_exception(p.page)
