"""The FA1 vs FA2 page with no browser (AppTest): every control, the data behind the views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from flashviz.app.pages.fa1 import CHART_DS, CHART_MS
from flashviz.core import costs
from flashviz.core.accuracy import max_error
from flashviz.core.reference import attention_reference
from flashviz.figures.fa1_fa2 import DONE_CODE, NOW
from flashviz.lab.fa_compare import compare
from flashviz.lab.patterns import PATTERNS, make_inputs
from tests.support import decode, spec

ROOT = Path(__file__).resolve().parents[2]
PAGE = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + (
    "from flashviz.app.pages import fa1\nfa1.render()\n"
)


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def page() -> AppTest:
    return _run(AppTest.from_string(PAGE, default_timeout=60))


def _charts(at: AppTest) -> dict[str, dict]:
    return {c.key: spec(c.proto.spec) for c in at.get("plotly_chart")}


def _title(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("### Position "))


def _expected(**kw: object):
    """The page's problem (by default random pattern, seed 0), recorded by the library."""
    p = {"n_q": 16, "n_k": 16, "d": 8, "block_q": 4, "block_kv": 4, "causal": False,
         "causal_align": "bottom_right", "pattern": "random", "seed": 0, **kw}  # fmt: skip
    q, k, v = make_inputs(p["pattern"], p["n_q"], p["n_k"], p["d"], p["seed"])
    return compare(q, k, v, block_q=p["block_q"], block_kv=p["block_kv"], causal=p["causal"],
                   causal_align=p["causal_align"])  # fmt: skip


def _check_results(at: AppTest, cmp, causal: bool = False, align: str = "bottom_right") -> None:
    """The green verdict names each pair's errors against the reference, and the table
    holds both runs' HBM bytes, their formulas and their non-matmul FLOPs."""
    q, k, v = cmp.fa2.q, cmp.fa2.k, cmp.fa2.v
    o_ref, lse_ref = attention_reference(q, k, v, causal=causal, causal_align=align)
    pairs = {"FA1 vs reference": (cmp.fa1, o_ref, lse_ref),
             "FA2 vs reference": (cmp.fa2, o_ref, lse_ref),
             "FA1 vs FA2": (cmp.fa1, cmp.fa2.o, cmp.fa2.lse)}  # fmt: skip
    shown = [
        f"{name}: max |dO| = {max_error(run.o, o):.1e}, max |dL| = {max_error(run.lse, lse):.1e}"
        for name, (run, o, lse) in pairs.items()
    ]
    (ok,) = at.success
    assert ok.value == "Same output: " + "; ".join(shown) + (
        " (float64 inputs, tolerance 1e-10; rows that see no key: O = 0, L = -inf)."
    )
    args = (q.shape[0], k.shape[0], q.shape[1], cmp.fa2.block_q, cmp.fa2.block_kv, causal, align)
    table = at.dataframe[0].value
    counts = (cmp.fa1_counts, cmp.fa2_counts)
    assert list(table["run"]) == ["FA1", "FA2"]
    assert list(table["HBM bytes read"]) == [c.reads[-1] for c in counts]
    assert list(table["HBM bytes written"]) == [c.writes[-1] for c in counts]
    assert list(table["formula (costs.fa1_hbm / fa2_hbm)"]) == [
        costs.fa1_hbm(*args).total, costs.fa2_hbm(*args).total]  # fmt: skip
    assert list(table["steps = formula"]) == [True, True]
    assert list(table["non-matmul FLOPs"]) == [c.flops[-1] for c in counts]


def _grids(at: AppTest) -> tuple[np.ndarray, np.ndarray]:
    heats = [t for t in _charts(at)["fa1_chart_orders"]["data"] if t["type"] == "heatmap"]
    return tuple(decode(h["z"]) for h in heats)  # type: ignore[return-value]


def test_defaults_render_every_view(page):
    assert not page.error
    assert set(_charts(page)) == {"fa1_chart_orders", "fa1_chart_counters", "fa1_chart_hbm_n"}
    cmp = _expected()
    assert _title(page) == (
        f"### Position 0 of {cmp.last_position('step')} (step): FA1 at step 0 of "
        f"{cmp.fa1_counts.n_steps - 1}, FA2 at step 0 of {cmp.fa2_counts.n_steps - 1}"
    )
    assert page.success and page.success[0].value.startswith("Same output")
    table = page.dataframe[0].value
    assert list(table["steps = formula"]) == [True, True]
    assert list(table["HBM bytes read"]) == [costs.fa1_hbm(16, 16, 8, 4, 4).reads,
                                             costs.fa2_hbm(16, 16, 8, 4, 4).reads]  # fmt: skip
    assert list(table["non-matmul FLOPs"]) == [cmp.fa1_counts.flops[-1], cmp.fa2_counts.flops[-1]]
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["naive attention HBM"] == f"{costs.naive_hbm(16, 16, 8).total / 1024:.2f} KiB"
    assert metrics["FA1 HBM so far"] == f"{cmp.fa1_counts.writes[0] / 1024:.2f} KiB"  # init


def test_buttons_and_slider_move_both_runs(page):
    cmp = _expected()
    last = cmp.last_position("step")
    page.button(key="fa1_next").click()
    _run(page)
    assert page.session_state["fa1_step"] == 1
    assert "FA1 at step 1 " in _title(page) and "FA2 at step 1 " in _title(page)
    page.button(key="fa1_last").click()
    _run(page)
    assert page.session_state["fa1_step"] == last
    page.button(key="fa1_prev").click()
    _run(page)
    assert page.session_state["fa1_step"] == last - 1
    page.button(key="fa1_first").click()
    _run(page)
    assert page.session_state["fa1_step"] == 0
    page.slider(key="fa1_step").set_value(6)
    _run(page)
    g1, g2 = _grids(page)
    k1, k2 = cmp.indices(6, "step")
    assert ((g1 == DONE_CODE) | (g1 == NOW)).sum() == cmp.fa1_counts.tiles[k1]
    assert ((g2 == DONE_CODE) | (g2 == NOW)).sum() == cmp.fa2_counts.tiles[k2]
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["FA1 non-matmul FLOPs"] == f"{int(cmp.fa1_counts.flops[k1]):,}"
    assert metrics["FA2 non-matmul FLOPs"] == f"{int(cmp.fa2_counts.flops[k2]):,}"


def test_align_by_tiles_shows_the_same_number_of_tiles(page):
    cmp = _expected()
    page.radio(key="fa1_align").set_value("tiles")
    _run(page)
    assert page.slider(key="fa1_step").max == cmp.tiles_total
    for t in (1, 5, cmp.tiles_total):
        page.slider(key="fa1_step").set_value(t)
        _run(page)
        g1, g2 = _grids(page)
        assert ((g1 == DONE_CODE) | (g1 == NOW)).sum() == t
        assert ((g2 == DONE_CODE) | (g2 == NOW)).sum() == t
    # FA1 walks down column 0, FA2 along row 0: after 4 tiles they differ
    page.slider(key="fa1_step").set_value(4)
    _run(page)
    g1, g2 = _grids(page)
    assert (g1[:, 0] != 1).all() and (g2[0, :] != 1).all() and not np.array_equal(g1, g2)


def test_on_chip_size_m_sets_fa1_blocks(page):
    page.radio(key="fa1_block_mode").set_value("sram")
    _run(page)
    page.number_input(key="fa1_sram").set_value(256)  # d = 8: B_c = 8, B_r = 8
    _run(page)
    assert not page.error
    assert any("B_c = ceil(M / 4d) = 8, B_r = min(B_c, d) = 8" in c.value
               for c in page.sidebar.caption)  # fmt: skip
    table = page.dataframe[0].value
    assert table["HBM bytes read"][0] == costs.fa1_hbm(16, 16, 8, 8, 8).reads
    page.number_input(key="fa1_sram").set_value(4096)  # B_c = 128 > n_k: clamped
    _run(page)
    assert any("clamped" in c.value for c in page.sidebar.caption)
    page.number_input(key="fa1_sram").set_value(0)
    _run(page)
    assert any("`M`" in e.value for e in page.error)


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_every_pattern(page, pattern):
    page.selectbox(key="fa1_pattern").set_value(pattern)
    _run(page)
    assert not page.error
    _check_results(page, _expected(pattern=pattern))


def test_causal_both_alignments_and_a_new_problem_restarts(page):
    page.slider(key="fa1_step").set_value(5)
    _run(page)
    page.number_input(key="fa1_n_q").set_value(13)
    page.number_input(key="fa1_n_k").set_value(7)
    page.number_input(key="fa1_block_q").set_value(3)
    page.number_input(key="fa1_block_kv").set_value(2)
    page.toggle(key="fa1_causal").set_value(True)
    _run(page)
    assert page.session_state["fa1_step"] == 0  # a new problem starts at the start
    for align in ("bottom_right", "top_left"):
        page.radio(key="fa1_causal_align").set_value(align)
        page.number_input(key="fa1_seed").set_value(3)
        _run(page)
        assert not page.error
        cmp = _expected(n_q=13, n_k=7, block_q=3, block_kv=2, causal=True, causal_align=align,
                        seed=3)  # fmt: skip
        page.button(key="fa1_last").click()
        _run(page)
        assert page.session_state["fa1_step"] == cmp.last_position("step")
        _check_results(page, cmp, causal=True, align=align)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("fa1_n_q", 0, "`n_q` must be at least 1"),
        ("fa1_block_kv", 40, "`block_kv` = 40 is larger than `n_k`"),
        ("fa1_d", 300, "`head_dim` = 300 is above"),
        ("fa1_n_k", 100_000, "too large to trace step by step"),
    ],
)
def test_invalid_inputs_give_clear_errors(page, key, value, message):
    page.number_input(key=key).set_value(value)
    _run(page)
    assert any(message in e.value for e in page.error), [e.value for e in page.error]
    assert "fa1_chart_hbm_n" in _charts(page)  # the chart over n does not need the problem


def test_chart_over_n_follows_d_m_and_causal(page):
    for d in CHART_DS:
        page.selectbox(key="fa1_chart_d").set_value(d)
        _run(page)
        title = _charts(page)["fa1_chart_hbm_n"]["layout"]["title"]["text"]
        assert f"d = {d}," in title
    for m in CHART_MS:
        page.select_slider(key="fa1_chart_m").set_value(m)
        _run(page)
        fig = _charts(page)["fa1_chart_hbm_n"]
        assert f"M = {m:,}" in fig["layout"]["title"]["text"]
        lines = {t["name"]: decode(t["y"]) for t in fig["data"]}
        b_r, b_c = costs.fa1_block_sizes(m, CHART_DS[-1])
        ns = decode(fig["data"][0]["x"]).astype(int)
        expect = [costs.fa1_hbm(n, n, CHART_DS[-1], min(b_r, n), min(b_c, n), itemsize=1).total
                  for n in ns]  # fmt: skip
        np.testing.assert_array_equal(lines["FA1 (exact)"], expect)
    page.toggle(key="fa1_chart_causal").set_value(True)
    _run(page)
    fig = _charts(page)["fa1_chart_hbm_n"]
    fa1 = decode(next(t for t in fig["data"] if t["name"] == "FA1 (exact)")["y"])
    assert fa1[-1] < expect[-1]  # the mask skips tiles
