"""One step on screen at a time, in headless Chromium: a click on Next, a drag of the step
slider and the bug banner's "Go to step" each change every part of the step (heading,
slider, explanation and worked numbers, counters, code, bug banner) in the task of the
input itself, read back in that same task; the server's answer then changes none of them.
A step beyond the window of steps the browser holds changes nothing until the server's
answer brings it, and then every part at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flashviz.lab.explain import explain
from flashviz.lab.problem import build_trace
from flashviz.lab.problem_spec import ProblemSpec
from flashviz.lab.progress import progress

from .helpers import assert_no_exception, wait_for_charts, wait_until_settled

if TYPE_CHECKING:
    from playwright.sync_api import Page

# What the page shows of each step part (read synchronously, right after the input).
READ = """() => {
  const text = (sel) => document.querySelector(sel)?.innerText.trim() ?? null;
  return {
    heading: [...document.querySelectorAll('h3')].map(h => h.innerText)
      .find(t => t.startsWith('Step ')) ?? null,
    slider: document.querySelector('input.fv-range[aria-label=step]')?.value ?? null,
    label: text('.fv-slider-label'),
    title: text('.fv-title'),
    row: document.querySelector('.fv-explanation')?.dataset.row ?? null,
    tiles: text('.fv-metric-value'),
    lit: document.querySelectorAll('.fv-text-code .fv-line.fv-hl').length,
    code: text('.fv-text-code .fv-caption'),
    bug: text('.fv-text-bug'),
  };
}"""
NEXT = "() => { document.querySelector('.fv-button[data-move=next]').click(); return (%s)(); }"
SLIDE = """(to) => { const s = document.querySelector('input.fv-range[aria-label=step]');
  s.value = String(to); s.dispatchEvent(new Event('input', {bubbles: true}));
  return (%s)(); }"""
GO = "() => { document.querySelector('.fv-text-bug [data-goto]').click(); return (%s)(); }"
SPEC = ProblemSpec(bug="no_rescale_o")  # a bug on: its banner is a step part too


def _expected(k: int) -> dict[str, object]:
    trace = build_trace(SPEC)
    last = len(trace.steps) - 1
    e = explain(trace, k, 0)
    p = progress(trace, k)
    return {
        "slider": str(k),
        "label": f"step {k} of {last}",
        "title": e.title,
        "row": str(e.row),
        "tiles": f"{p.tiles_done} / {p.tiles_total}",
    }


def _check(shown: dict[str, Any], k: int) -> None:
    """``shown``: what READ returned (the browser's JSON)."""
    assert shown["heading"].startswith(f"Step {k} of"), shown
    for name, value in _expected(k).items():
        assert shown[name] == value, (name, shown)
    assert shown["lit"] > 0, shown  # the step's phase is lit in the code


def _server_at(page: Page, k: int) -> None:
    page.wait_for_function(
        f"new URL(location.href).searchParams.get('step') === '{k}'", timeout=30_000
    )
    wait_until_settled(page)


def test_next_slider_and_go_to_step_change_every_part_at_once(page: Page, server_url: str) -> None:
    page.goto(f"{server_url}/?step=0&bug=no_rescale_o")
    wait_for_charts(page, 5)
    wait_until_settled(page)
    before = page.evaluate(f"({READ})()")
    _check(before, 0)
    assert "Still right at this step" in before["bug"] and "Go to step 2" in before["bug"]
    assert "load" in before["code"] or "init" in before["code"], before

    shown = page.evaluate(NEXT % READ)
    _check(shown, 1)
    assert shown["code"] != before["code"]  # a tile step's phases, not the load's
    _server_at(page, 1)
    assert page.evaluate(f"({READ})()") == shown

    shown = page.evaluate(SLIDE % READ, 3)
    _check(shown, 3)  # within the window the browser holds: at once
    assert "Past step 2" in shown["bug"]
    _server_at(page, 3)
    assert page.evaluate(f"({READ})()") == shown

    # beyond the window: nothing moves until the server's answer, then everything at once
    stayed = page.evaluate(SLIDE % READ, 9)
    assert stayed["slider"] == "9"  # the thumb where it was dragged; the rest still at 3
    _check({**stayed, "slider": "3"}, 3)
    page.wait_for_function(
        "[...document.querySelectorAll('h3')].some(h => h.innerText.startsWith('Step 9 of'))",
        timeout=30_000,
    )
    _check(page.evaluate(f"({READ})()"), 9)
    _server_at(page, 9)

    page.evaluate(SLIDE % READ, 0)
    _server_at(page, 0)
    shown = page.evaluate(GO % READ)
    _check(shown, 2)
    assert "first bites" in shown["bug"]
    _server_at(page, 2)
    assert page.evaluate(f"({READ})()") == shown
    assert_no_exception(page)
