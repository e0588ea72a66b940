"""Latency a person feels: click on Next (or the Right arrow key) to the last change inside
any chart, in Chromium.

Starts the real app and a minimal Streamlit page (``tests/tools/latency_floor_app.py``: a fragment
redrawing two 4x4 Plotly heatmaps on a button click) side by side, and in headless Chromium
measures, for each click on Next, ``performance.now()`` from the click to the frame after
the last mutation inside any shown ``.js-plotly-plot`` (a MutationObserver; 300 ms of quiet
after the server's rerun ends a click; "the frame after": a timer queued from the next
``requestAnimationFrame``, which runs once that frame's style, layout and paint are done),
when the step heading changed, and the frame after the last change of anything shown in
the main area (the whole visible page settled). Clicks alternate between the two pages so
that both see the same machine load. On the app it also times the Right arrow key
(stepping in the browser, as in presentation mode). Prints the medians, the ratio app /
floor for each problem, and how many steps changed heading and charts together (in one
task: the same MutationObserver callback) and the whole page in one task.

Run: ``python tests/tools/measure_latency.py [--clicks 10] [--trace out.json]`` (needs chromium and
playwright). ``--trace`` writes a Chromium performance trace of the clicks (open it in
chrome://tracing or Perfetto). Not collected by pytest; the CI check is
``tests/timing/test_browser_latency.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

FLOOR_APP = ROOT / "tests" / "tools" / "latency_floor_app.py"
QUIET_MS = 300
PROBLEMS = {
    "default (16 x 16, d = 8, 4 x 4 tiles)": "",
    "n = 256 (d = 64, blocks 32)": "n_q=256&n_k=256&head_dim=64&block_q=32&block_kv=32",
}
VIEWPORT: ViewportSize = {"width": 1600, "height": 2600}

# A MutationObserver on the whole document: the times of the first and the last change
# inside a shown chart (or of a chart added or removed; attribute changes of the page around
# a chart are not the chart changing; charts drawn ahead into hidden divs are not shown),
# the first time an h3 reads the expected heading, and the first and last change of anything
# shown in the main area (the whole visible page: texts, sliders, counters, code too).
# Streamlit's bookkeeping during a rerun changes no pixel and is not counted: the stale
# marks of element containers (shown only if a run lasts over half a second), the ARIA
# value texts it sets again, the app's script state.
OBSERVE = """
() => {
  const lat = window.__lat = {start: 0, first: 0, last: 0, painted: 0, heading: 0, expect: null,
                              pageFirst: 0, pageLast: 0, pagePainted: 0};
  const shown = (el) => !!el && el.isConnected &&
    el.checkVisibility({visibilityProperty: true, opacityProperty: true});
  const inChart = (n) => {  // inside a chart that is shown (not one drawn ahead, hidden)
    const el = n && (n.nodeType === 1 ? n : n.parentElement);
    const chart = el && el.closest('.js-plotly-plot');
    return !!chart && shown(chart);
  };
  const hasChart = (n) => n.nodeType === 1 &&
    (n.matches('.js-plotly-plot') || !!n.querySelector('.js-plotly-plot'));
  const bookkeeping = (r, el) => r.type === 'attributes' &&
    (/^(data-stale|data-test-script-state|aria-)/.test(r.attributeName) ||
     (r.attributeName === 'class' && el.dataset.testid === 'stElementContainer'));
  const paint = (key) => requestAnimationFrame(() => setTimeout(() => {
    lat[key] = performance.now(); }));
  new MutationObserver((records) => {
    const now = performance.now();
    if (!lat.start) return;
    const main = document.querySelector('[data-testid=stMain]');
    let chart = false, page = false;
    for (const r of records) {
      const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      if (!chart && (inChart(r.target) ||
          (r.type === 'childList' && [...r.addedNodes, ...r.removedNodes].some(hasChart)))) {
        chart = true;
      }
      if (!page && main?.contains(el) && !bookkeeping(r, el) && shown(el) &&
          (r.type !== 'childList' || r.removedNodes.length > 0 ||
           [...r.addedNodes].some(n => shown(n.nodeType === 1 ? n : n.parentElement)))) {
        page = true;  // a node added hidden (a chart drawn ahead) is not seen
      }
    }
    if (chart) {
      lat.first = lat.first || now;
      lat.last = now;
      // the frame that shows it: after the next animation frame's style, layout and paint
      paint('painted');
    }
    if (page) {
      lat.pageFirst = lat.pageFirst || now;
      lat.pageLast = now;
      paint('pagePainted');
    }
    if (lat.expect && !lat.heading && [...document.querySelectorAll('h3')]
        .some(h => (h.innerText + ' ').startsWith(lat.expect + ' '))) lat.heading = now;
  }).observe(document.body, {subtree: true, childList: true, attributes: true,
                             characterData: true});
}
"""

# Step from inside the page, so the start time is the click (or key press) itself.
STEP = """
([expect, how]) => {
  const lat = window.__lat;
  lat.first = 0; lat.last = 0; lat.painted = 0; lat.heading = 0; lat.expect = expect;
  lat.pageFirst = 0; lat.pageLast = 0; lat.pagePainted = 0;
  // a page whose URL names the step: the server's rerun for this step has put it there
  const url = new URL(location.href).searchParams;
  lat.serverStep = url.has('step') ? String(Number(url.get('step')) + 1) : null;
  lat.start = performance.now();
  if (how === 'key') {
    document.body.dispatchEvent(
      new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true, cancelable: true}));
  } else {
    [...document.querySelectorAll('button')]
      .find(b => b.innerText.trim().endsWith('Next')).click();
  }
}
"""

# Settled: charts, heading and page quiet for QUIET_MS, and (where the URL names the step)
# the server's rerun for the step has put it in the URL and ended: whatever it changes counts.
SETTLED = f"""
() => {{
  const lat = window.__lat, now = performance.now();
  const state = document.querySelector('[data-testid=stApp]')?.dataset.testScriptState || '';
  return lat.painted > lat.last && lat.heading > 0 && now - lat.last >= {QUIET_MS}
    && now - lat.heading >= {QUIET_MS} && lat.pagePainted > lat.pageLast
    && now - lat.pageLast >= {QUIET_MS} && !['running', 'rerunRequested'].includes(state)
    && (lat.serverStep === null
        || new URL(location.href).searchParams.get('step') === lat.serverStep);
}}
"""


@dataclass
class Click:
    charts_ms: float  # start to the frame after the last chart mutation (painted)
    heading_ms: float  # start to the new heading
    first_chart_ms: float  # start to the first chart mutation
    last_chart_ms: float  # start to the last chart mutation
    page_ms: float  # start to the frame after the last change of anything shown (main area)
    first_page_ms: float  # start to the first change of anything shown
    last_page_ms: float  # start to the last change of anything shown

    @property
    def together(self) -> bool:
        """Heading and charts changed in one task (one MutationObserver callback)."""
        return self.heading_ms == self.first_chart_ms

    @property
    def once(self) -> bool:
        """Every shown chart changed in that one task (none again when the server answered)."""
        return self.first_chart_ms == self.last_chart_ms

    @property
    def page_once(self) -> bool:
        """Everything shown changed in one task: no text, slider or counter followed later."""
        return self.first_page_ms == self.last_page_ms


def step_heading(page: Page) -> str:
    """The text of the h3 that starts with "Step " ('' when there is none)."""
    return page.evaluate(
        "[...document.querySelectorAll('h3')].map(h => h.innerText)"
        ".find(t => t.startsWith('Step ')) || ''"
    )


def open_page(browser: Browser, url: str, charts: int) -> Page:
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(url)
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
        timeout=120_000,
    )
    page.wait_for_timeout(1000)
    page.evaluate(OBSERVE)
    return page


def step_next(page: Page, how: str = "click", timeout_ms: int = 30_000) -> Click:
    """Click Next (``how="key"``: press Right) once; wait until charts and heading have
    been quiet for 300 ms."""
    k = int(step_heading(page).split()[1])
    page.evaluate(STEP, [f"Step {k + 1}", how])
    page.wait_for_function(SETTLED, timeout=timeout_ms, polling=50)
    lat = page.evaluate("window.__lat")
    return Click(
        lat["painted"] - lat["start"],
        lat["heading"] - lat["start"],
        lat["first"] - lat["start"],
        lat["last"] - lat["start"],
        lat["pagePainted"] - lat["start"],
        lat["pageFirst"] - lat["start"],
        lat["pageLast"] - lat["start"],
    )


def alternate(
    browser: Browser, pages: list[tuple[str, int, str]], clicks: int
) -> list[list[Click]]:
    """``clicks`` steps on each (URL, chart count, "click" or "key") page, in turns."""
    opened = [open_page(browser, url, charts) for url, charts, _ in pages]
    for page, (_, _, how) in zip(opened, pages, strict=True):
        step_next(page, how)  # warm-up: the first step runs code paths for the first time
    timed: list[list[Click]] = [[] for _ in opened]
    for _ in range(clicks):
        for page, (_, _, how), times in zip(opened, pages, timed, strict=True):
            times.append(step_next(page, how))
    for page in opened:
        page.close()
    return timed


APP_CHARTS = 6  # tile map, tile, statistics, accumulator, whole run, errors
FLOOR_CHARTS = 2


def side_by_side(
    browser: Browser, app_url: str, floor_url: str, clicks: int, query: str = "", step: int = 1
) -> tuple[list[Click], list[Click], list[Click]]:
    """``clicks`` Next clicks on the app, Right keys on the app and Next clicks on the floor
    page, in turns: (app clicks, app keys, floor clicks)."""
    app = f"{app_url}/?{query}&step={step}"
    on_app, on_keys, on_floor = alternate(
        browser,
        [
            (app, APP_CHARTS, "click"),
            (app, APP_CHARTS, "key"),
            (f"{floor_url}/", FLOOR_CHARTS, "click"),
        ],
        clicks,
    )
    return on_app, on_keys, on_floor


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(label: str, on_app: list[Click], on_keys: list[Click], on_floor: list[Click]) -> str:
    a = median([c.charts_ms for c in on_app])
    h = median([c.heading_ms for c in on_app])
    key = median([c.charts_ms for c in on_keys])
    f = median([c.charts_ms for c in on_floor])
    together = sum(c.together for c in on_app + on_keys)
    once = sum(c.once for c in on_app + on_keys)
    page_once = sum(c.page_once for c in on_app + on_keys)
    pa, pk = median([c.page_ms for c in on_app]), median([c.page_ms for c in on_keys])
    pf = median([c.page_ms for c in on_floor])
    n = len(on_app) + len(on_keys)
    return (
        f"{label}: click to charts {a:.0f} ms (heading {h:.0f} ms), Right key {key:.0f} ms, "
        f"floor page {f:.0f} ms: ratio {a / f:.2f}x, key {key / f:.2f}x; whole page settled "
        f"{pa:.0f} ms, key {pk:.0f} ms, floor {pf:.0f} ms: ratio {pa / pf:.2f}x, key "
        f"{pk / pf:.2f}x; heading and charts in one task {together}/{n}, charts changed once "
        f"{once}/{n}, whole page changed once {page_once}/{n} (median of {len(on_app)})"
    )


@contextlib.contextmanager
def servers() -> Iterator[tuple[str, str]]:
    with streamlit_server() as app_url, streamlit_server(FLOOR_APP) as floor_url:
        yield app_url, floor_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--trace", help="write a Chromium performance trace of the run here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with servers() as (app_url, floor_url), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if args.trace:
            browser.start_tracing(path=args.trace, screenshots=False)
        for label, query in PROBLEMS.items():
            timed = side_by_side(browser, app_url, floor_url, args.clicks, query)
            print(report(label, *timed), flush=True)
        if args.trace:
            browser.stop_tracing()
        browser.close()


if __name__ == "__main__":
    main()
