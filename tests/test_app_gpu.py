"""The GPU timings page without a GPU: it says why, how to enable it, and shows CPU numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flashviz import gpu

ROOT = Path(__file__).resolve().parent.parent
PAGE = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + (
    "from flashviz_app.pages import gpu_page\ngpu_page.render()\n"
)

pytestmark = pytest.mark.skipif(gpu.available()[0], reason="this machine has a GPU")


@pytest.fixture
def page() -> AppTest:
    at = AppTest.from_string(PAGE, default_timeout=60)
    return at.run()


def test_no_gpu_says_why_and_how_to_enable(page):
    assert not page.exception
    (warning,) = page.warning
    assert warning.value.startswith("No GPU here: ") and gpu.available()[1] in warning.value
    assert any("requirements-gpu.txt" in c.value for c in page.code)
    assert len(page.dataframe) == 1  # the roofline expectations


def test_cpu_sweep_shows_measured_numbers(page):
    page.multiselect(key="cpu_ns").set_value([256, 512])
    page.selectbox(key="cpu_d").set_value(16)
    page.button(key="cpu_run").click().run()
    assert not page.exception
    (chart,) = page.get("plotly_chart")
    assert '"naive (NumPy)"' in chart.proto.spec and '"flash (NumPy, tiled)"' in chart.proto.spec
    table = next(c.value for c in page.code if "naive ms" in c.value)
    assert [line.split()[0] for line in table.splitlines()[2:]] == ["256", "512"]


def test_expectations_follow_the_chosen_gpu(page):
    page.selectbox(key="gpu_spec").set_value(
        next(g for g in page.selectbox(key="gpu_spec").options if "A100" in g)
    )
    page.run()
    assert not page.exception
    assert any("2039 GB/s" in m.value for m in page.markdown)


def test_navigation_lists_the_gpu_page():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert any(p.get("url_pathname") == "gpu" for p in at._registered_pages.values())
