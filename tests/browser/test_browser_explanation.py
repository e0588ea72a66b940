"""In headless Chromium at 1280x720 with the sidebar open: the worked numbers under the
explanation fit their box (nothing cut off on the right), and with a bug switched on the
shown equations hold for the shown numbers (each drawn line's TeX, kept beside its MathML,
read back and evaluated)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .helpers import screenshot, wait_for_charts, wait_for_heading, wait_until_settled

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

OVERFLOWING = """() => [...document.querySelectorAll('[data-testid=stMain] .fv-math')]
  .filter(e => e.scrollWidth > e.clientWidth + 3
    || e.getBoundingClientRect().right > e.parentElement.getBoundingClientRect().right + 3
    || [...e.querySelectorAll('math')].some(m => m.getBoundingClientRect().right
         > e.parentElement.getBoundingClientRect().right + 3))
  .map(e => e.dataset.tex || [...e.querySelectorAll('tr')].map(r => r.dataset.tex).join(' | '))"""
# Each drawn formula's TeX: a table's lines joined as an aligned block's lines are.
TEX = r"""() => [...document.querySelectorAll('[data-testid=stMain] .fv-math')]
  .map(e => e.dataset.tex || [...e.querySelectorAll('tr')].map(r => r.dataset.tex)
    .join(' \\\\ '))"""
SUBS = [
    (r"\\mathrm\{e\}", "e"), (r"\\times", "*"), (r"-\\infty", "-inf"), (r"\\infty", "inf"),
    (r"\\max\(", "max("), (r"\\log\s*([-\d.e]+)", r"log(\1)"), (r"e\^\{([^}]*)\}", r"exp(\1)"),
    (r"\\ ", " "), (r"&", ""),
]  # fmt: skip


def _value(text: str) -> float:
    for pattern, repl in SUBS:
        text = re.sub(pattern, repl, text)
    env = {"max": max, "exp": math.exp, "log": math.log, "inf": math.inf}
    return float(eval(text, {"__builtins__": {}}, env))  # our own TeX


def equations(tex: str) -> list[tuple[str, float, float]]:
    """(line, left value, right value) of each 'name = expression = number' line."""
    body = re.sub(r"\\(begin|end)\{aligned\}", "", tex)
    found: list[tuple[str, float, float]] = []
    merged: list[str] = []
    for line in re.split(r"\\\\|,\\quad", body):  # '&= result' continues the line above
        if line.strip().startswith("&=") and merged:
            merged[-1] += " " + line.strip()[1:]
        else:
            merged.append(line)
    for line in merged:
        parts = [p.strip() for p in line.split("=")]
        if len(parts) < 3 or "text" in line:
            continue
        try:
            found.append((line.strip(), _value(parts[-2]), _value(parts[-1])))
        except (SyntaxError, NameError, TypeError, ValueError, OverflowError):
            continue
    return found


def _page(browser: Browser, url: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(url)
    return page


@pytest.mark.parametrize(
    "step", [0, 3, 5]
)  # a load (q_r's numbers), a tile whose max rises, a write
def test_worked_numbers_fit_their_box_at_1280(
    browser: Browser, server_url: str, screenshots: Path, step: int
) -> None:
    page = _page(browser, f"{server_url}/?step={step}")
    try:
        wait_for_heading(page, f"Step {step} of")
        wait_for_charts(page, 6 if step == 3 else 5)  # no tile chart at a load or a write
        wait_until_settled(page)
        assert page.evaluate(OVERFLOWING) == []
        screenshot(page, screenshots / f"explanation_step{step}_1280.png")
    finally:
        page.context.close()


# A bug of o's update and one of l's (tests/app/test_step_texts.py checks every bug's text)
@pytest.mark.parametrize("bug", ["no_rescale_o", "stale_l"])
def test_with_a_bug_on_the_shown_equations_hold(
    browser: Browser, server_url: str, screenshots: Path, bug: str
) -> None:
    page = _page(browser, f"{server_url}/?step=3&bug={bug}")  # row 0's max rises at step 3
    try:
        wait_for_heading(page, "Step 3 of")
        wait_for_charts(page, 6)
        wait_until_settled(page)
        shown = [eq for tex in page.evaluate(TEX) for eq in equations(tex)]
        assert len(shown) >= 4, shown
        for line, left, right in shown:
            assert math.isclose(left, right, rel_tol=2e-3, abs_tol=2e-3), line
        assert page.get_by_text("What the correct update gives").count() == 1
        assert page.evaluate(OVERFLOWING) == []
        screenshot(page, screenshots / f"explanation_bug_{bug}.png")
    finally:
        page.context.close()
