"""Measure the stepper: server time of a step change, figure JSON per rerun (the window of
steps the browser holds, ``flashviz/app/stepper/step_view.py``), first render.

Run: ``python tests/tools/measure_app.py`` (the browser part needs chromium and playwright).
Prints one line per number; not collected by pytest.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP_SCRIPT = ROOT / "flashviz" / "app" / "script" / "main.py"
sys.path.insert(0, str(ROOT))
APP = str(APP_SCRIPT)

from tests.app.step_view_driver import enabled, move, window_bytes  # noqa: E402

N256 = {"n_q": 256, "n_k": 256, "head_dim": 64, "block_q": 32, "block_kv": 32}


def step_changes(params: dict, clicks: int = 30) -> tuple[list[float], list[float], list[int]]:
    """Click Next ``clicks`` times: fragment ms, AppTest rerun ms, stepper JSON bytes sent."""
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = str(value)
    at.run()
    inner, outer, sizes = [], [], []
    for _ in range(clicks):
        started = time.perf_counter()
        move(at, "next" if enabled(at, "next") else "first")
        outer.append((time.perf_counter() - started) * 1000)
        inner.append(at.session_state["_step_ms"])
        sizes.append(window_bytes(at))
    assert not at.exception
    return inner, outer, sizes


def first_render_s(runs: int = 3) -> list[float]:
    from tests.browser import conftest as b

    if b._missing_browser():
        return []
    from playwright.sync_api import sync_playwright

    times = []
    with b.streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=b.CHROMIUM, args=b.CHROMIUM_ARGS)
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1600, "height": 2600})
            started = time.perf_counter()
            page.goto(f"{url}/?step=1")
            page.wait_for_function(
                "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 6",
                timeout=60_000,
            )
            times.append(time.perf_counter() - started)
            page.close()
        browser.close()
    return times


def main() -> None:
    for label, params in (("default (16x16, 4x4 tiles)", {}), ("n=256, d=64, blocks 32", N256)):
        inner, outer, sizes = step_changes(params)
        print(
            f"{label}: step change median {statistics.median(inner):.1f} ms inside the fragment "
            f"(AppTest full rerun {statistics.median(outer):.1f} ms); stepper figure JSON per "
            f"rerun median {statistics.median(sizes) / 1000:.1f} kB, max {max(sizes) / 1000:.1f} kB"
        )
    times = first_render_s()
    if times:
        print(
            f"time to first render (browser, all 6 charts drawn): median "
            f"{statistics.median(times):.2f} s over {len(times)} loads "
            f"(first load: {times[0]:.2f} s)"
        )
    else:
        print("time to first render: skipped (no chromium/playwright)")


if __name__ == "__main__":
    main()
