"""The GPU timings page in headless Chromium, on this machine without a GPU: the doctor's
checklist is on screen, the roofline expectation and the CPU sweep are charts, the CPU
numbers are a table (not a clipped text block), every chart's text is at least 16 px with
AA contrast (issue #9, finding 8), and no exception box appears."""

from __future__ import annotations

from pathlib import Path

import pytest

from flashviz.gpu import launcher as gpu

from .helpers import (
    CHART,
    assert_no_exception,
    chart_text_problems,
    screenshot,
    wait_for_charts,
    wait_for_text,
    wait_until_settled,
)

pytestmark = pytest.mark.skipif(gpu.available()[0], reason="this machine has a GPU")


def chart_titles(page: object) -> list[str]:
    return page.evaluate(  # type: ignore[attr-defined]
        f"[...document.querySelectorAll('{CHART} .gtitle')].map(t => t.textContent)"
    )


def test_gpu_page_shows_checklist_roofline_and_cpu_sweep_charts(
    page: object, server_url: str, screenshots: Path
) -> None:
    page.goto(f"{server_url}/gpu")  # type: ignore[attr-defined]
    wait_for_text(page, "No GPU here", timeout_ms=60_000)
    wait_for_charts(page, 1)
    assert "roofline" in chart_titles(page)[0]
    checklist = page.locator("[data-testid='stTable']").first  # type: ignore[attr-defined]
    text = checklist.inner_text()
    for layer in ("CuPy", "NVRTC", "cuBLAS", "CUDA headers", "NVIDIA driver", "flash kernel"):
        assert layer in text
    assert "no NVIDIA driver on this machine" in text and "install the NVIDIA driver" in text
    assert checklist.is_visible()

    page.get_by_role("button", name="Run the CPU sweep").click()  # type: ignore[attr-defined]
    wait_for_charts(page, 2, timeout_ms=120_000)
    assert chart_titles(page)[1].startswith("CPU: naive vs tiled attention")
    grid = page.locator("[data-testid='stDataFrame']")  # type: ignore[attr-defined]
    grid.first.wait_for(timeout=30_000)
    wait_until_settled(page)
    assert page.locator("[data-testid='stCode']", has_text="naive ms").count() == 0  # type: ignore[attr-defined]
    assert page.locator("[data-testid='stProgress']").count() == 0  # type: ignore[attr-defined]
    screenshot(page, screenshots / "gpu_page.png")
    assert_no_exception(page)
    problems = chart_text_problems(page)
    assert not problems, "\n".join(problems[:20])
