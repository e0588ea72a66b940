"""In headless Chromium: a page keeps its problem, step and URL when the
user visits every other page and comes back, and after a reload (starting from the stepper's
own path, ``/stepper``); the pages share one problem; changing only the precision or the bug
keeps the step."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from .helpers import (
    ALERT_ERROR,
    assert_no_exception,
    go_to_page,
    screenshot,
    step_heading,
    wait_for_heading,
    wait_until_settled,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

PROBLEM = {"n_q": "20", "n_k": "12", "head_dim": "4", "block_q": "4", "block_kv": "4",
           "seed": "3", "pattern": "random"}  # fmt: skip
PAGES = ("Backward pass", "FA1 vs FA2", "Causal alignment", "Masks", "Online-softmax debugger",
         "Precision", "Split-KV decoding", "GPU timings", "Inside the kernel")  # fmt: skip
SHARED_PAGES = ("Backward pass", "FA1 vs FA2", "Causal alignment", "Masks", "Precision")  # n_q


def _params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def _n_q_shown(page: Page) -> str:
    box = page.locator("input[aria-label^='n_q']").first
    box.wait_for(timeout=30_000)
    return box.input_value()


def test_round_trip_through_every_page_keeps_problem_step_and_url(
    page: Page, server_url: str, screenshots: Path
) -> None:
    query = "&".join(f"{k}={v}" for k, v in PROBLEM.items())
    page.goto(f"{server_url}/stepper?{query}&step=5")  # the stepper by name: the same page as /
    wait_for_heading(page, "Step 5 of")
    assert page.get_by_text("Page not found").count() == 0
    before = _params(page.url)
    assert before.items() >= {**PROBLEM, "step": "5"}.items()
    for title in PAGES:
        go_to_page(page, title)
        if title in SHARED_PAGES:  # one problem shared between the pages
            assert _n_q_shown(page) == PROBLEM["n_q"], title
        assert_no_exception(page)
    go_to_page(page, "Stepper")
    wait_for_heading(page, "Step 5 of")
    assert page.locator(ALERT_ERROR).count() == 0
    assert _n_q_shown(page) == PROBLEM["n_q"]
    page.wait_for_function(
        "new URLSearchParams(location.search).get('step') === '5'", timeout=10_000
    )
    assert _params(page.url) == before
    page.reload()
    wait_for_heading(page, "Step 5 of")
    assert _params(page.url) == before
    screenshot(page, screenshots / "navigation_back_at_step5.png")


def test_fa1_and_debugger_keep_their_step_across_pages_and_reload(
    page: Page, server_url: str
) -> None:
    page.goto(f"{server_url}/fa1")
    wait_for_heading(page, "FA1 at step 0 ")
    for k in (1, 2):
        page.get_by_role("button", name="Next").click()
        wait_for_heading(page, f"FA1 at step {k} ")
    page.reload()
    wait_for_heading(page, "FA1 at step 2 ")
    go_to_page(page, "Online-softmax debugger")
    wait_for_heading(page, "Chunk 0:")
    page.get_by_role("button", name="Next").click()
    wait_for_heading(page, "Chunk 1:")
    go_to_page(page, "FA1 vs FA2")
    wait_for_heading(page, "FA1 at step 2 ")
    go_to_page(page, "Online-softmax debugger")
    wait_for_heading(page, "Chunk 1:")
    page.reload()
    wait_for_heading(page, "Chunk 1:")
    assert_no_exception(page)


def _choose(page: Page, label: str, option: str) -> None:
    page.locator(f"input[aria-label='{label}']").click()
    page.get_by_role("option", name=option).first.click()


def test_precision_or_bug_change_keeps_the_step(page: Page, server_url: str) -> None:
    page.goto(f"{server_url}/?step=7")
    wait_for_heading(page, "Step 7 of")
    _choose(page, "precision", "bfloat16 inputs")
    page.wait_for_function(
        "new URLSearchParams(location.search).get('precision') === 'bfloat16'", timeout=30_000
    )
    wait_until_settled(page)
    assert step_heading(page).startswith("Step 7 of")
    _choose(page, "bug zoo: inject a mistake", "Forget to rescale O")
    page.wait_for_function(
        "new URLSearchParams(location.search).get('bug') === 'no_rescale_o'", timeout=30_000
    )
    wait_until_settled(page)
    assert step_heading(page).startswith("Step 7 of")


def test_too_large_suggestion_is_one_click(page: Page, server_url: str) -> None:
    page.goto(f"{server_url}/?n_q=4096&n_k=4096&block_q=4&block_kv=4")
    button = page.get_by_role("button", name="Use the suggested size")
    button.wait_for(timeout=30_000)
    message = page.locator(ALERT_ERROR).first.inner_text()
    assert "= 16,777,216 scores, up to 1,050,624 steps" in message, message  # counts grouped
    button.click()
    wait_for_heading(page, "Step 0 of")
    wait_until_settled(page)
    assert page.locator(ALERT_ERROR).count() == 0
    assert int(_params(page.url)["n_q"]) * int(_params(page.url)["n_k"]) <= 512 * 512
