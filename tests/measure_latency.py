"""Latency a person feels: click on Next to the last change inside any chart, in Chromium.

Starts the real app and a minimal Streamlit page (``tests/latency_floor_app.py``: a fragment
redrawing two 4x4 Plotly heatmaps on a button click) side by side, and in headless Chromium
measures, for each click on Next, ``performance.now()`` from the click to the last mutation
inside any ``.js-plotly-plot`` after 300 ms of quiet (a MutationObserver), and when the step
heading changed. Clicks alternate between the two pages so that both see the same machine
load. Prints the medians and the ratio app / floor for each problem.

Run: ``python tests/measure_latency.py [--clicks 10] [--trace out.json]`` (needs chromium and
playwright). ``--trace`` writes a Chromium performance trace of the clicks (open it in
chrome://tracing or Perfetto); ``--react`` also times ``tests/latency_react_app.py``. Not
collected by pytest; the CI bound is ``tests/browser/test_browser_latency.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

FLOOR_APP = ROOT / "tests" / "latency_floor_app.py"
REACT_APP = ROOT / "tests" / "latency_react_app.py"
QUIET_MS = 300
PROBLEMS = {
    "default (16 x 16, d = 8, 4 x 4 tiles)": "",
    "n = 256 (d = 64, blocks 32)": "n_q=256&n_k=256&head_dim=64&block_q=32&block_kv=32",
}
VIEWPORT = {"width": 1600, "height": 2600}

# A MutationObserver on the whole document: the time of the last change inside a chart
# (or of a chart added or removed), and the first time an h3 reads the expected heading.
OBSERVE = """
() => {
  const lat = window.__lat = {start: 0, last: 0, heading: 0, expect: null};
  const inChart = (n) => {
    const el = n && (n.nodeType === 1 ? n : n.parentElement);
    return !!el && (!!el.closest('.js-plotly-plot') ||
      (el.querySelector && !!el.querySelector('.js-plotly-plot')));
  };
  new MutationObserver((records) => {
    const now = performance.now();
    if (!lat.start) return;
    for (const r of records) {
      if (inChart(r.target) || [...r.addedNodes, ...r.removedNodes].some(inChart)) {
        lat.last = now;
        break;
      }
    }
    if (lat.expect && !lat.heading && [...document.querySelectorAll('h3')]
        .some(h => h.innerText.startsWith(lat.expect))) lat.heading = now;
  }).observe(document.body, {subtree: true, childList: true, attributes: true,
                             characterData: true});
}
"""

# Click Next from inside the page, so the start time is the click itself.
CLICK = """
(expect) => {
  const lat = window.__lat;
  const next = [...document.querySelectorAll('button')]
    .find(b => b.innerText.trim().endsWith('Next'));
  lat.last = 0; lat.heading = 0; lat.expect = expect;
  lat.start = performance.now();
  next.click();
}
"""

SETTLED = f"""
() => {{
  const lat = window.__lat;
  return lat.last > 0 && lat.heading > 0 && performance.now() - lat.last >= {QUIET_MS}
    && performance.now() - lat.heading >= {QUIET_MS};
}}
"""


@dataclass
class Click:
    charts_ms: float  # click to the last chart mutation
    heading_ms: float  # click to the new heading


def step_heading(page: object) -> str:
    """The text of the h3 that starts with "Step " ('' when there is none)."""
    return page.evaluate(  # type: ignore[attr-defined]
        "[...document.querySelectorAll('h3')].map(h => h.innerText)"
        ".find(t => t.startsWith('Step ')) || ''"
    )


def open_page(browser: object, url: str, charts: int) -> object:
    page = browser.new_page(viewport=VIEWPORT)  # type: ignore[attr-defined]
    page.goto(url)
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
        timeout=120_000,
    )
    page.wait_for_timeout(1000)
    page.evaluate(OBSERVE)
    return page


def click_next(page: object, timeout_ms: int = 30_000) -> Click:
    """Click Next once and wait until charts and heading have been quiet for 300 ms."""
    k = int(step_heading(page).split()[1])
    page.evaluate(CLICK, f"Step {k + 1}")  # type: ignore[attr-defined]
    page.wait_for_function(SETTLED, timeout=timeout_ms, polling=50)  # type: ignore[attr-defined]
    lat = page.evaluate("window.__lat")  # type: ignore[attr-defined]
    return Click(lat["last"] - lat["start"], lat["heading"] - lat["start"])


def alternate(browser: object, pages: list[tuple[str, int]], clicks: int) -> list[list[Click]]:
    """``clicks`` Next clicks on each (URL, chart count) page, in turns: clicks per page."""
    opened = [open_page(browser, url, charts) for url, charts in pages]
    for page in opened:  # warm-up: the first click runs code paths for the first time
        click_next(page)
    timed: list[list[Click]] = [[] for _ in opened]
    for _ in range(clicks):
        for page, times in zip(opened, timed, strict=True):
            times.append(click_next(page))
    for page in opened:
        page.close()  # type: ignore[attr-defined]
    return timed


def side_by_side(
    browser: object, app_url: str, floor_url: str, clicks: int, start_step: int = 1
) -> tuple[list[Click], list[Click]]:
    """``clicks`` Next clicks on the app and on the floor page, alternating."""
    sep = "&" if "?" in app_url else "/?"
    on_app, on_floor = alternate(
        browser, [(f"{app_url}{sep}step={start_step}", 6), (floor_url, 2)], clicks
    )
    return on_app, on_floor


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextlib.contextmanager
def servers(react: bool) -> Iterator[tuple[str, str, str | None]]:
    with contextlib.ExitStack() as stack:
        app_url = stack.enter_context(streamlit_server())
        floor_url = stack.enter_context(streamlit_server(FLOOR_APP))
        react_url = stack.enter_context(streamlit_server(REACT_APP)) if react else None
        yield app_url, floor_url, react_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--trace", help="write a Chromium performance trace of the run here")
    parser.add_argument(
        "--react",
        action="store_true",
        help="also time tests/latency_react_app.py (the same charts by Plotly.react in place)",
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with servers(args.react) as (app_url, floor_url, react_url), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if args.trace:
            browser.start_tracing(path=args.trace, screenshots=False)
        for label, query in PROBLEMS.items():
            pages = [(f"{app_url}/?{query}&step=1", 6), (f"{floor_url}/", 2)]
            if react_url:
                pages.append((f"{react_url}/?{query}&step=1", 5))
            timed = alternate(browser, pages, args.clicks)
            on_app, on_floor = timed[0], timed[1]
            a = median([c.charts_ms for c in on_app])
            h = median([c.heading_ms for c in on_app])
            f = median([c.charts_ms for c in on_floor])
            gap = median([c.charts_ms - c.heading_ms for c in on_app])
            print(
                f"{label}: click to charts {a:.0f} ms (heading {h:.0f} ms, charts after heading "
                f"{gap:.0f} ms), floor page {f:.0f} ms: ratio {a / f:.2f}x "
                f"(median of {args.clicks})"
            )
            if react_url:
                r = median([c.charts_ms for c in timed[2]])
                print(f"  the same charts by Plotly.react in place: {r:.0f} ms, {r / f:.2f}x")
        if args.trace:
            browser.stop_tracing()
        browser.close()


if __name__ == "__main__":
    main()
