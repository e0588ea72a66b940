"""Take the README's screenshot of every page: ``python tests/tools/readme_screenshots.py``,
or only the named ones: ``python tests/tools/readme_screenshots.py split_kv stepper``.

Starts ``streamlit run app.py`` on a free port, opens each page in headless Chromium,
waits for its charts, and writes ``docs/images/<page>.png`` (viewport-sized, not the
full page, so the README images stay small). Not collected by pytest.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Page, ViewportSize

OUT = ROOT / "docs" / "images"
# page url path (with query) -> (file name, number of charts to wait for)
PAGES = {
    "?step=3": ("stepper", 4),
    "?n_q=12&n_k=9&head_dim=4&block_q=4&block_kv=3&causal=true&scale=400&bug=no_rescale_o&step=5": (
        "stepper_bug",
        4,
    ),
    "backward?causal=true&bwd_step=9": ("backward", 5),
    "fa1": ("fa1_vs_fa2", 1),
    "causal": ("causal_alignment", 1),
    "debugger": ("debugger", 1),
    "precision": ("precision", 1),
    "split_kv?splitkv_heads=16": ("split_kv", 4),
    "gpu": ("gpu_timings", 1),
}
# presentation mode at a projector's 1280 x 720 and at 1920 x 1080 (the stage scaled 1.5x)
PRESENTATIONS: dict[str, tuple[str, int, ViewportSize]] = {
    "presentation": ("?present=true&step=3", 4, {"width": 1280, "height": 720}),
    "presentation_1920": ("?present=true&step=3", 4, {"width": 1920, "height": 1080}),
}


def _shoot(page: Page, address: str, name: str, charts: int) -> None:
    """Open ``address``, wait for ``charts`` drawn charts, write ``docs/images/<name>.png``."""
    page.goto(address)
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
        timeout=60_000,
    )
    page.wait_for_timeout(1500)
    page.screenshot(path=str(OUT / f"{name}.png"))
    print(f"wrote {OUT / f'{name}.png'}")


def main(names: Sequence[str] = ()) -> None:
    """Write the pictures ``names`` (file names without .png), every one when empty."""
    from playwright.sync_api import sync_playwright

    known = [name for name, _ in PAGES.values()] + list(PRESENTATIONS)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise SystemExit(f"unknown picture(s) {', '.join(unknown)}; known: {', '.join(known)}")
    wanted = set(names or known)
    OUT.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        for path, (name, charts) in PAGES.items():
            if name in wanted:
                _shoot(page, f"{url}/{path}", name, charts)
        for name, (path, charts, viewport) in PRESENTATIONS.items():
            if name in wanted:
                _shoot(browser.new_page(viewport=viewport), f"{url}/{path}", name, charts)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1:])
