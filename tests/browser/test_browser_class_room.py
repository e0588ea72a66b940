"""A class in real Chromium: a lecturer and two students in separate browser contexts.

The lecturer starts a class from the sidebar; the students open the room link; the
lecturer's steps reach both students' screens; a student exploring on their own stays put
while the class moves on, and "Follow again" brings the lecturer's view back; a student's
own clicks never move the lecturer; a class question gets a live tally and each student
their result; the lead token never appears in the lecturer's address bar; a hostile room
code in a link is shown literally with a normal app. How fast the students follow, and
two processes sharing a real Redis serving one class: tests/timing/test_browser_class_follow.py."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from .class_pages import open_page, start_class
from .helpers import (
    assert_no_exception,
    chart_overlaps,
    chart_text_problems,
    screenshot,
    step_heading,
    wait_for_heading,
    wait_until_settled,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture
def lecture(browser: Browser, server_url: str) -> Iterator[tuple[Page, str, list[Page]]]:
    """A lecturer at step 2 with a class started, and two students following it."""
    lecturer = open_page(browser, f"{server_url}/?step=2")
    pages = [lecturer]
    try:
        code = start_class(lecturer)
        students = [open_page(browser, f"{server_url}/?room={code}") for _ in range(2)]
        pages += students
        for student in students:
            wait_for_heading(student, "Step 2 of")
            student.get_by_text(f"Following class {code}").first.wait_for(timeout=30_000)
        yield lecturer, code, students
    finally:
        for page in pages:
            page.context.close()


def _class_question(lecturer: Page, students: list[Page]) -> None:
    """The lecturer asks about the next step; each student answers; the live tally counts
    them; after the reveal each student sees whether they were right."""
    lecturer.get_by_role("button", name="Ask the class about the next step").click()
    lecturer.get_by_text("0 answered").wait_for(timeout=15_000)
    for n, student in enumerate(students):
        student.get_by_text("Class question:").wait_for(timeout=20_000)
        student.locator("[class*='st-key-class_choice_'] [role=radiogroup] label").nth(n).click()
        student.get_by_role("button", name="Send my answer").click()
        student.get_by_text("Answer sent:").wait_for(timeout=15_000)
    lecturer.get_by_text("2 answered").wait_for(timeout=20_000)  # the live tally
    lecturer.get_by_role("button", name="Reveal the answer").click()
    lecturer.get_by_text("the right answer in green").wait_for(timeout=20_000)
    for student in students:
        student.get_by_text(re.compile(r"^(Right: |Not this time: )")).wait_for(timeout=20_000)
        assert_no_exception(student)


# The bar's parts, each inside its column: none cut off, none over another.
BAR_PARTS = """() => [...document.querySelectorAll('.st-key-present_bar [data-testid=stColumn]')]
  .map((c) => { const r = c.getBoundingClientRect();
    return {x0: r.left, x1: r.right, text: c.innerText.trim(),
            cut: [...c.querySelectorAll('p, button, h3')].some((e) => e.scrollWidth
              > e.clientWidth + 1 && getComputedStyle(e).textOverflow !== 'ellipsis')};
  })"""


BAR_OFFSET = """() => document.querySelector('.st-key-present_bar').getBoundingClientRect().top
  - document.querySelector('[data-testid=stMainBlockContainer]').getBoundingClientRect().top"""
# The lower half of the stage (the question in place of the charts) holds all it shows:
# nothing scrolls inside it.
FITS = """() => [...document.querySelectorAll('[data-testid=stVerticalBlock]')]
  .filter((e) => e.scrollHeight > e.clientHeight + 2 && e.clientHeight > 200)
  .map((e) => `${e.scrollHeight} > ${e.clientHeight}`)"""


def _presentation_with_a_live_tally(
    lecturer: Page, code: str, students: list[Page], screenshots: Path
) -> None:
    """At a projector's 1280 x 720: the step bar says the class code and how many follow;
    the revealed question's tally gives way to the charts; Ask puts a new question's live
    tally in place of the bottom charts, legible from the back row; the students' answers
    count in; Reveal colours the right one; Charts brings the charts back."""
    lecturer.set_viewport_size({"width": 1280, "height": 720})
    lecturer.locator("[data-testid=stSidebar]").get_by_text("Presentation mode").click()
    bar = lecturer.locator(".st-key-present_bar")
    bar.get_by_text(f"Class {code} · 2 following").wait_for(timeout=20_000)
    parts = lecturer.evaluate(BAR_PARTS)
    assert not any(p["cut"] for p in parts), parts
    for left, right in itertools.pairwise(parts):
        assert left["x1"] <= right["x0"] + 1, parts  # side by side, not over each other
    assert max(p["x1"] for p in parts) <= 1280
    for student in students:  # a student's stage: the class in its bar, nothing above it
        student_bar = student.locator(".st-key-present_bar")
        student_bar.get_by_text(f"Following class {code}").wait_for(timeout=20_000)
        assert student.evaluate(BAR_OFFSET) < 12  # px below the (letterboxed) stage's top
    bar.get_by_role("button", name="Charts").click()  # the question asked before: revealed
    lecturer.wait_for_function("document.querySelectorAll('.fv-chart').length === 4")
    bar.get_by_role("button", name="Ask").click()
    tally = lecturer.locator(".js-plotly-plot").filter(has_text="answered")
    tally.get_by_text("0 answered", exact=False).wait_for(timeout=20_000)
    for n, student in enumerate(students):  # on their own stage, in place of the charts
        student.locator("[class*='st-key-class_choice_'] [role=radiogroup] label").nth(n).click()
        student.get_by_role("button", name="Send my answer").click()
    tally.get_by_text("2 answered", exact=False).wait_for(timeout=20_000)  # live, unasked
    assert lecturer.locator(".fv-chart").count() == 2  # the top row stays
    assert chart_text_problems(lecturer, min_px=16.0) == []  # the back row reads the tally
    assert chart_overlaps(lecturer) == []
    box = tally.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 720 and box["width"] >= 1000
    bar.get_by_role("button", name="Reveal").click()
    tally.get_by_text("the right answer in green", exact=False).wait_for(timeout=20_000)
    screenshot(lecturer, screenshots / "lecture_tally.png")
    for student in students:  # each sees the result and the class's answers, on the stage
        student.get_by_text(re.compile(r"^(Right: |Not this time: )")).wait_for(timeout=20_000)
        student.locator(".js-plotly-plot").filter(has_text="the right answer").wait_for()
        wait_until_settled(student)
        assert student.evaluate(FITS) == []
    assert lecturer.evaluate(FITS) == []
    bar.get_by_role("button", name="Charts").click()
    lecturer.wait_for_function("document.querySelectorAll('.fv-chart').length === 4")
    assert_no_exception(lecturer)


def test_students_follow_explore_answer_and_see_the_lecture_presented(
    lecture: tuple[Page, str, list[Page]], screenshots: Path
) -> None:
    lecturer, code, students = lecture
    assert "lead=" not in lecturer.url and "room=" not in lecturer.url  # nothing to copy
    lecturer.get_by_text("2 following").wait_for(timeout=15_000)
    qr = lecturer.locator("[data-testid=stSidebar] [data-testid=stImage] img")
    assert lecturer.get_by_text("Scan to follow").is_visible()
    assert qr.evaluate("i => i.complete && i.naturalWidth") >= 250  # the QR code, drawn
    for k in (3, 4):  # how fast: tests/timing/test_browser_class_follow.py, run alone
        wait_until_settled(lecturer)
        lecturer.get_by_role("button", name="Next").first.click()
        wait_for_heading(lecturer, f"Step {k} of")
        for student in students:
            wait_for_heading(student, f"Step {k} of", timeout_ms=20_000)
    for student in students:
        assert_no_exception(student)
        assert f"room={code}" in student.url
    # one student explores: the class does not move with them, nor they with the class
    explorer, follower = students
    explorer.get_by_role("button", name="Explore on my own").click()
    explorer.get_by_role("button", name="Follow again").wait_for(timeout=15_000)
    wait_until_settled(explorer)
    explorer.get_by_role("button", name="Next").first.click()
    wait_for_heading(explorer, "Step 5 of")
    time.sleep(1.5)  # longer than a poll: the lecturer's view stays where it was
    assert step_heading(lecturer).startswith("Step 4 of")
    assert step_heading(follower).startswith("Step 4 of")
    wait_until_settled(lecturer)
    lecturer.get_by_role("button", name="Previous").first.click()
    wait_for_heading(lecturer, "Step 3 of")
    wait_for_heading(follower, "Step 3 of", timeout_ms=20_000)
    assert step_heading(explorer).startswith("Step 5 of")  # exploring: not moved
    explorer.get_by_role("button", name="Follow again").click()
    wait_for_heading(explorer, "Step 3 of", timeout_ms=20_000)
    _class_question(lecturer, students)
    _presentation_with_a_live_tally(lecturer, code, students, screenshots)


def test_a_room_link_that_does_not_exist_is_shown_literally(
    browser: Browser, server_url: str
) -> None:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    try:
        for code in ("<img src=x onerror=alert(1)>", "[x](https://evil.example)"):
            page.goto(f"{server_url}/?room={quote(code)}&step=2")
            wait_for_heading(page, "Step 2 of")
            alert = page.get_by_text("There is no class")
            alert.wait_for(timeout=30_000)
            assert code in alert.inner_text().replace("\u2060", "")  # the characters typed
            assert page.locator("img[src=x]").count() == 0
            assert page.locator("a[href*=evil]").count() == 0
            assert "room=" not in page.url
            assert_no_exception(page)
    finally:
        page.context.close()
