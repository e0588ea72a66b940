"""The Masks page in AppTest: each mask's block map, fields, costs and dense mask agree with
the library; the block sizes and the Q block inspected change them; sizes beyond the
page's bounds get a message instead of a chart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from flashviz.core import costs
from flashviz.lab.mask_lab import DENSE_MAX, MASK_KINDS, mask_view
from tests.support import decode, spec

ROOT = Path(__file__).resolve().parents[2]
PAGE = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + (
    "from flashviz.app.pages import masks\nmasks.render()\n"
)
SIZES = ("n_q", "n_k", "block_q", "block_kv")


@pytest.fixture
def page() -> AppTest:
    return AppTest.from_string(PAGE, default_timeout=60).run()


def _values(at: AppTest) -> tuple[str, int, int, int, int, int]:
    ss = at.session_state
    return ss["masks_kind"], ss["masks_size"], *(ss[f"masks_{n}"] for n in SIZES)


def check_page(at: AppTest) -> None:
    """No exception or error; the metrics, the fields and the charts are the library's."""
    assert not at.exception and not at.error
    kind, size, n_q, n_k, block_q, block_kv = _values(at)
    view = mask_view(kind, size, n_q, n_k, block_q, block_kv)
    c, bm = view.costs, view.block_mask
    shown = {m.label: m.value for m in at.metric}
    assert shown["tiles full / partial / empty"] == (
        f"{c.full_tiles} / {c.partial_tiles} / {c.empty_tiles}"
    )
    assert shown["executed FLOPs"] == f"{c.executed_flops:,}"
    assert shown["useful FLOPs"] == f"{c.useful_flops:,}"
    assert shown["mask evaluations"] == f"{c.mask_evaluations:,}"
    table = at.dataframe[0].value
    assert table["kv_num_blocks"].tolist() == bm.kv_num_blocks[0, 0].tolist()
    assert table["full_kv_num_blocks"].tolist() == bm.full_kv_num_blocks[0, 0].tolist()
    charts = at.get("plotly_chart")
    block_map = spec(charts[0].proto.spec)["data"][0]
    np.testing.assert_array_equal(decode(block_map["z"]), bm.kinds[0, 0])
    assert len(charts) == (2 if max(n_q, n_k) <= DENSE_MAX else 1)
    if len(charts) == 2:
        np.testing.assert_array_equal(
            decode(spec(charts[1].proto.spec)["data"][0]["z"]), view.dense
        )
    assert f"create_block_mask({MASK_KINDS[kind].code.format(size=size)}" in at.code[-1].value


def test_the_default_sliding_window_agrees_with_the_library(page: AppTest) -> None:
    check_page(page)
    assert page.session_state["masks_kind"] == "sliding_window"


@pytest.mark.parametrize("kind", list(MASK_KINDS))
def test_every_mask_renders_its_block_mask(page: AppTest, kind: str) -> None:
    page.selectbox(key="masks_kind").set_value(kind).run()
    check_page(page)
    assert page.number_input(key="masks_size").disabled == (not MASK_KINDS[kind].size_label)


def test_larger_blocks_execute_more_of_the_hidden_entries(page: AppTest) -> None:
    small = costs.block_mask_costs(mask_view("sliding_window", 8, 32, 32, 4, 4).block_mask, 64)
    for name in ("block_q", "block_kv"):
        page.number_input(key=f"masks_{name}").set_value(4)
    page.run()
    check_page(page)
    assert page.metric[1].value == f"{small.executed_flops:,}"
    page.number_input(key="masks_block_q").set_value(16).run()
    check_page(page)
    assert int(page.metric[1].value.replace(",", "")) > small.executed_flops


def test_the_q_block_inspected_shows_its_row_of_the_fields(page: AppTest) -> None:
    page.slider(key="masks_row").set_value(1).run()
    check_page(page)
    bm = mask_view(*_values(page)).block_mask
    listed = bm.kv_indices[0, 0, 1, : bm.kv_num_blocks[0, 0, 1]].tolist()
    assert f"\nkv_indices[0, 0, 1, :{len(listed)}] = {listed}\n" in page.code[0].value
    band = spec(page.get("plotly_chart")[0].proto.spec)["layout"]["shapes"][0]
    assert (band["y0"], band["y1"]) == (0.5, 1.5)


def test_a_long_sequence_draws_the_block_map_only(page: AppTest) -> None:
    for name, value in zip(SIZES, (4096, 4096, 128, 64), strict=True):
        page.number_input(key=f"masks_{name}").set_value(value)
    page.number_input(key="masks_size").set_value(256).run()
    check_page(page)
    assert any(f"drawn up to {DENSE_MAX} x {DENSE_MAX}" in c.value for c in page.caption)


def test_too_many_tiles_or_too_long_get_a_message_and_no_chart(page: AppTest) -> None:
    for name, value in zip(SIZES, (4096, 4096, 1, 1), strict=True):
        page.number_input(key=f"masks_{name}").set_value(value)
    page.run()
    assert not page.exception
    assert "Use larger blocks" in page.error[0].value
    assert not page.get("plotly_chart")
    page.number_input(key="masks_n_q").set_value(5000).run()
    assert "n_q must be between 1 and 4096" in page.error[0].value
