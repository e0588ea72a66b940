"""A class in real Chromium: the pages the class-room browser and timing tests share."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from .helpers import SHOWN_TILE_LABEL, wait_for_heading

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


def open_page(browser: Browser, url: str) -> Page:
    """``url`` in a browser context of its own: a person of their own, a session of their own."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(url)
    return page


def start_class(lecturer: Page) -> str:
    """The lecturer, at step 2, starts a class from the sidebar; returns its code."""
    wait_for_heading(lecturer, "Step 2 of")
    lecturer.locator("[data-testid=stSidebar]").get_by_text("Class", exact=True).click()
    lecturer.get_by_role("button", name="Start a class").click()
    lecturer.get_by_text(re.compile(r"^Class code [A-Z0-9]{5}$")).wait_for(timeout=30_000)
    return lecturer.get_by_text(re.compile(r"^Class code ")).inner_text().split()[-1]


def published(lecturer: Page, step: int) -> float:
    """When the lecturer's server run for ``step`` ended (it writes the step into the URL,
    and publishes it to the room in the same run): a follower's delay counts from there."""
    lecturer.wait_for_function(
        f"new URLSearchParams(location.search).get('step') === '{step}'", timeout=30_000
    )
    return time.monotonic()


def wait_for_step(page: Page, step: int, tile_label: str, timeout_ms: int = 20_000) -> None:
    """Until ``page`` shows ``step`` in its heading and its charts (their tile map's K/V label
    is ``tile_label``, the lecturer's)."""
    page.wait_for_function(
        f"""() => [...document.querySelectorAll('h3')].some(h => h.innerText.includes(
                'Step {step} of')) && ({SHOWN_TILE_LABEL})() === {tile_label!r}""",
        timeout=timeout_ms,
    )
