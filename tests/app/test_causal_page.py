"""The causal-alignment page in AppTest: defaults, every preset and input, invalid sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from flashviz.app.pages.causal import CUSTOM, PRESETS
from flashviz.lab.alignment import (
    ALIGN_LABELS,
    ALIGNS,
    TILE_KINDS,
    analyse,
    empty_rows,
    flop_counts,
)
from tests.support import decode, spec

ROOT = Path(__file__).resolve().parents[2]
PAGE = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + (
    "from flashviz.app.pages import causal\ncausal.render()\n"
)
INPUTS = ("n_q", "n_k", "block_q", "block_kv", "head_dim", "seed")


@pytest.fixture
def page() -> AppTest:
    return AppTest.from_string(PAGE, default_timeout=60).run()


def sizes(at: AppTest) -> dict[str, int]:
    return {name: at.number_input(key=f"causal_{name}").value for name in INPUTS}


def metrics(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def check_page(at: AppTest) -> None:
    """No exception or error; maps, metrics and empty-row tables agree with the logic."""
    assert not at.exception and not at.error
    s = sizes(at)
    n_q, n_k, d, b_q, b_kv = s["n_q"], s["n_k"], s["head_dim"], s["block_q"], s["block_kv"]
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    layout = spec(charts[0].proto.spec)["layout"]
    band = [sh for sh in layout["shapes"] if sh["name"] == "empty rows"]
    for k, align in enumerate(ALIGNS):
        rows = empty_rows(n_q, n_k, align)
        panel = [sh for sh in band if sh["xref"] == ("x" if k == 0 else "x2")]
        assert len(panel) == (1 if len(rows) else 0)
    shown = metrics(at)
    for k, align in enumerate(ALIGNS):
        f = flop_counts(n_q, n_k, d, b_q, b_kv, align)
        a = analyse(n_q, n_k, d, b_q, b_kv, align)
        block = shown[4 * k : 4 * k + 4]
        kinds = [int(x) for x in block[0][1].split(" / ")]
        assert kinds == [a.count(kind) for kind in TILE_KINDS]
        assert block[1] == ("executed FLOPs", f"{f.executed:,}")
        assert block[2] == ("saving vs no mask", f"{f.saving:.1%}")
        assert block[3] == ("useful FLOPs", f"{f.useful:,}")
    labels = [m.value for m in at.markdown if m.value.startswith("**")]
    assert labels[:2] == [f"**{ALIGN_LABELS[a]}**" for a in ALIGNS]
    with_empty = [a for a in ALIGNS if len(empty_rows(n_q, n_k, a))]
    assert len(at.dataframe) == len(with_empty)
    for table, align in zip(at.dataframe, with_empty, strict=True):
        df = table.value
        assert df["query row r"].tolist() == empty_rows(n_q, n_k, align).tolist()
        assert (df["max |o_r| flashviz"] == 0).all() and (df["max |o_r| reference"] == 0).all()
        assert set(df["lse flashviz"]) == {"-inf"}
        assert set(df["lse flash-attn stores"]) == {"+inf"}
    assert len(at.info) == 2 - len(with_empty)


def test_default_is_uneven_with_empty_rows(page) -> None:
    check_page(page)
    s = sizes(page)
    assert s["n_q"] != s["n_k"]
    assert len(empty_rows(s["n_q"], s["n_k"], "bottom_right")) > 0
    top, bottom = metrics(page)[0], metrics(page)[4]
    assert top[1] != bottom[1]  # the two alignments give different tile counts


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset(page, preset) -> None:
    page.selectbox(key="causal_preset").set_value(preset).run()
    n_q, n_k, b_q, b_kv = PRESETS[preset]
    s = sizes(page)
    assert (s["n_q"], s["n_k"], s["block_q"], s["block_kv"]) == (n_q, n_k, b_q, b_kv)
    check_page(page)
    top, bottom = metrics(page)[:4], metrics(page)[4:]
    if n_q == n_k:  # the two agree
        assert [v for _, v in top] == [v for _, v in bottom]
    else:
        assert [v for _, v in top] != [v for _, v in bottom]


@pytest.mark.parametrize(
    ("name", "value"),
    [("n_q", 9), ("n_k", 13), ("block_q", 5), ("block_kv", 3), ("head_dim", 40), ("seed", 7)],
)
def test_every_input_reruns_and_marks_custom(page, name, value) -> None:
    page.number_input(key=f"causal_{name}").set_value(value).run()
    assert page.selectbox(key="causal_preset").value == CUSTOM
    assert sizes(page)[name] == value
    check_page(page)


def test_custom_then_preset_restores_its_sizes(page) -> None:
    page.number_input(key="causal_n_q").set_value(3).run()
    page.selectbox(key="causal_preset").set_value(next(iter(PRESETS))).run()
    assert sizes(page)["n_q"] == next(iter(PRESETS.values()))[0]
    check_page(page)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"n_q": 0}, "`n_q` must be at least 1"),
        ({"n_k": -3}, "`n_k` must be at least 1"),
        ({"block_q": 0}, "`block_q` must be at least 1"),
        ({"block_kv": 0}, "`block_kv` must be at least 1"),
        ({"head_dim": 0}, "`head_dim` must be at least 1"),
        ({"seed": -1}, "`seed` must be a non-negative"),
        ({"n_q": 500}, "at most 128"),
        ({"n_q": 128, "n_k": 128, "block_q": 1, "block_kv": 1}, "too many to outline"),
        ({"head_dim": 4096}, "`head_dim` = 4096"),
    ],
)
def test_invalid_sizes_give_an_error_not_a_traceback(page, values, fragment) -> None:
    for name, value in values.items():
        page.number_input(key=f"causal_{name}").set_value(value)
    page.run()
    assert not page.exception
    assert any(fragment in e.value for e in page.error), [e.value for e in page.error]
    assert len(page.get("plotly_chart")) == 0


def test_fixed_input_recovers(page) -> None:
    page.number_input(key="causal_block_q").set_value(0).run()
    assert page.error
    page.number_input(key="causal_block_q").set_value(3).run()
    check_page(page)


def test_map_data_is_the_mask(page) -> None:
    """The bottom-right panel's cells are the definition c <= r + n_k - n_q."""
    data = spec(page.get("plotly_chart")[0].proto.spec)["data"]
    z = decode(data[1]["z"]).reshape(12, 5)
    r, c = np.arange(12)[:, None], np.arange(5)[None, :]
    assert np.array_equal(z.astype(bool), c <= r + 5 - 12)
