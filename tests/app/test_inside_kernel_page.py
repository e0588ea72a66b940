"""The "Inside the kernel" page in AppTest: defaults, both kernels, a link, bad links give a
message, the colour and outline controls, the numbers are the lab's, and without NVRTC the
recorded ptxas numbers with their provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from flashviz.gpu.kernel_resources import build_config, ptxas_for
from flashviz.lab.inside_kernel import ownership, shared_buffers
from flashviz.lab.occupancy import SM_LIMITS, occupancy
from tests.support import decode, spec

ROOT = Path(__file__).resolve().parents[2]
HEAD = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
PAGE = HEAD + "from flashviz.app.pages import inside_kernel\ninside_kernel.render()\n"
NO_NVRTC = HEAD + (
    "from unittest import mock\nfrom flashviz.gpu import kernel_resources\n"
    "from flashviz.app.pages import inside_kernel\ninside_kernel.cached_ptxas.clear()\n"
    "with mock.patch.object(kernel_resources, 'nvrtc_version', lambda: None):\n"
    "    inside_kernel.render()\n"
)
KEYS = ("inside_owner_S_ij", "inside_owner_O_i", "inside_timeline", "inside_explorer")


def open_page(script: str = PAGE, **params: object) -> AppTest:
    at = AppTest.from_string(script, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = str(value)
    return at.run()


def charts(at: AppTest) -> list[dict]:
    return [spec(c.proto.spec) for c in at.get("plotly_chart")]


def check_page(at: AppTest) -> None:
    """No exception or error; the page's numbers are the lab's for its build."""
    assert not at.exception and not at.error, [e.value for e in at.error]
    ss = at.session_state
    kind, arch = ss["inside_kernel"], ss["inside_arch"]
    q, kv = (int(x) for x in ss["inside_blocks"].split("x"))
    config = build_config(kind, ss["inside_d"], q, kv, ss["inside_precision"])
    figs = charts(at)
    assert len(figs) == 4
    for matrix, fig in zip(("S_ij", "O_i"), figs[:2], strict=True):
        own = ownership(kind, config.defines, matrix)
        z = decode(fig["data"][0]["z"])
        expected = {"thread": own.thread, "warp": own.warp, "lane": own.lane}[ss["inside_colour"]]
        np.testing.assert_array_equal(z, expected)
        assert fig["layout"]["title"]["text"].startswith(f"Who owns {matrix}")
    table = next(t.value for t in at.dataframe if "holds" in t.value.columns)
    buffers = shared_buffers(kind, config.defines)
    assert list(table["array"]) == [b.name for b in buffers]
    assert list(table["bytes"]) == [b.bytes for b in buffers]
    res = ptxas_for(config, arch)
    occ = occupancy(
        SM_LIMITS[arch], config.num_threads, res.ptxas.registers, res.ptxas.shared_bytes
    )
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["registers a thread"] == str(res.ptxas.registers)
    assert metrics["blocks a SM"] == str(occ.blocks)
    assert any(occ.text() in md.value for md in at.markdown)


def test_defaults() -> None:
    at = open_page()
    check_page(at)
    assert at.session_state["inside_kernel"] == "tensor cores"
    figs = charts(at)
    assert "tensor cores kernel" in figs[2]["layout"]["title"]["text"]
    assert "head dim 64 on sm_80" in figs[3]["layout"]["title"]["text"]
    sync = next(t.value for t in at.dataframe if "why" in t.value.columns)
    assert list(sync["kind"]).count("shuffle") == 4 and list(sync["kind"]).count("barrier") == 2
    assert at.query_params["inside_kernel"] == "tensor cores"


def test_float32_kernel_moves_to_a_pair_it_offers() -> None:
    at = open_page()
    at.radio(key="inside_kernel").set_value("float32").run()
    check_page(at)
    assert at.session_state["inside_blocks"] == "64x32"  # 64x64 does not fit d = 64
    sync = next(t.value for t in at.dataframe if "why" in t.value.columns)
    assert set(sync["kind"]) == {"barrier"} and len(sync) == 5


def test_a_link_opens_its_view() -> None:
    at = open_page(
        inside_kernel="float32", inside_d=128, inside_blocks="32x32", inside_arch="sm_75"
    )
    check_page(at)
    ss = at.session_state
    assert (ss["inside_d"], ss["inside_blocks"], ss["inside_arch"]) == (128, "32x32", "sm_75")


@pytest.mark.parametrize(
    "params",
    [
        {"inside_d": "abc"},
        {"inside_blocks": "999x1"},
        {"inside_arch": "sm_61"},
        {"inside_kernel": "<b>int8</b>"},
    ],
)
def test_bad_links_give_a_warning(params: dict) -> None:
    at = open_page(**params)
    check_page(at)
    assert at.warning, "a bad URL value is reported"


def test_a_pair_that_does_not_fit_settles_on_one_that_does() -> None:
    at = open_page(inside_blocks="256x256", inside_arch="sm_75")  # sm_75: no tensor-core build
    check_page(at)
    assert at.session_state["inside_blocks"] == "128x64"
    assert at.session_state["inside_arch"] == "sm_80"


def test_colour_and_outline() -> None:
    at = open_page()
    at.radio(key="inside_colour").set_value("lane").run()
    at.number_input(key="inside_thread").set_value(37).run()
    check_page(at)
    fig = charts(at)[1]  # O_i
    outline = fig["data"][1]
    own = ownership("tensor cores", build_config("tensor cores", 64, 64, 64).defines, "O_i")
    ys, xs = np.nonzero(own.thread == 37)
    assert (
        decode(outline["x"]).tolist() == xs.tolist()
        and decode(outline["y"]).tolist() == ys.tolist()
    )
    assert len(xs) == 2 * 64 // 4  # 2 rows, 2 of every 8 columns


def test_without_nvrtc_the_recorded_numbers_and_where_they_come_from() -> None:
    at = open_page(NO_NVRTC)
    assert not at.exception and not at.error
    assert any("recorded with NVRTC" in c.value for c in at.caption)
    assert len(charts(at)) == 4
