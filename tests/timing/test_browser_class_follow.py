"""How fast a class follows its lecturer, on the students' screens, with nothing else running.

A lecturer and two students in separate Chromium contexts, served by two app processes
sharing a real Redis (as behind the README's sticky proxy): the lecturer and one student on
the first, the other student on the second, both counted as following. Each delay counts
from the lecturer's run that publishes the step (the lecturer's URL takes the step in the
same run) to the slower student's heading and charts showing it. One process with its rooms
in memory: tests/timing/test_class_load.py (followers over Streamlit's own protocol).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from flashviz.classroom.store import URL_VARIABLE
from tests.browser.class_pages import open_page, published, start_class, wait_for_step
from tests.browser.conftest import streamlit_servers
from tests.browser.helpers import (
    SHOWN_TILE_LABEL,
    assert_no_exception,
    wait_for_heading,
    wait_until_settled,
)
from tests.classroom.redis_server import redis_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

FOLLOW_S = 1.0  # a follower's delay at most, as the README promises
CLICKS = 4


def _follow_delays(lecturer: Page, students: list[Page], code: str) -> list[float]:
    """The lecturer, at step 2 with ``students`` following, clicks Next ``CLICKS`` times;
    each click's delay until every student shows the step."""
    for student in students:
        wait_for_heading(student, "Step 2 of")
        student.get_by_text(f"Following class {code}").first.wait_for(timeout=30_000)
        wait_until_settled(student)
    delays = []
    for step in range(3, 3 + CLICKS):
        wait_until_settled(lecturer)
        lecturer.get_by_role("button", name="Next").first.click()
        clicked = published(lecturer, step)
        tile_label = lecturer.evaluate(SHOWN_TILE_LABEL)
        for student in students:
            wait_for_step(student, step, tile_label)
        delays.append(time.monotonic() - clicked)
    print("follow delays (s):", [round(d, 3) for d in delays])
    for page in (lecturer, *students):
        assert_no_exception(page)
    return delays


def test_two_students_on_two_processes_follow_a_lecturer_within_a_second(
    browser: Browser, server_url: str, tmp_path: Path
) -> None:
    del server_url  # its fixture skips the test without a browser (fails it in CI)
    with redis_server(tmp_path) as rooms, streamlit_servers(2, env={URL_VARIABLE: rooms}) as urls:
        lecturer = open_page(browser, f"{urls[0]}/?step=2")
        pages = [lecturer]
        try:
            code = start_class(lecturer)
            pages += [open_page(browser, f"{url}/?room={code}") for url in urls]
            lecturer.get_by_text("2 following").wait_for(timeout=15_000)
            delays = _follow_delays(lecturer, pages[1:], code)
            assert max(delays) <= FOLLOW_S, delays
        finally:
            for page in pages:
                page.context.close()
