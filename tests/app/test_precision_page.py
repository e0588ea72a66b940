"""The Precision page in AppTest: it renders, every switch reruns without an exception, and
bad input gives an st.error, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from flashviz.core.precision import PRECISIONS
from flashviz.core.trace import record_steps
from flashviz.lab.patterns import PATTERNS, make_inputs
from flashviz.lab.precision_errors import error_breakdown
from flashviz.lab.underflow import UNDERFLOW_TYPES, problem_underflow
from tests.support import APP_SCRIPT, decode, spec

ROOT = Path(__file__).resolve().parents[2]
PAGE = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + (
    "from flashviz.app.pages import precision\nprecision.render()\n"
)
N_CHARTS = 6  # breakdown, per-row error, underflow, gap sweep, forms table, software exp2


@pytest.fixture
def page() -> AppTest:
    at = AppTest.from_string(PAGE, default_timeout=60)
    return at.run()


def _ok(at: AppTest, charts: int = N_CHARTS) -> None:
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == []
    assert len(at.get("plotly_chart")) == charts


def _markdown(at: AppTest, start: str) -> str:
    return next(m.value for m in at.markdown if m.value.startswith(start))


def test_default_page_renders_every_section(page):
    _ok(page)
    assert [h.value for h in page.header] == [
        "1. Where the error comes from",
        "2. Underflow: alpha and P\u0303",
        "3. The exp2 form real kernels use",
        "4. Software exp2 (FlashAttention-4)",
        "5. After FA2: what FA3 and FA4 changed",
    ]
    latex = [x.value for x in page.latex]
    assert any(r"\log_2 e" in x and "L^{(2)}" in x for x in latex)  # the exp2 form
    assert any(r"\ln \ell_i" in x for x in latex)  # the paper's form
    assert "inputs rounded" in _markdown(page, "With **float16")
    assert "underflow is not what makes the error" in _markdown(page, "With the state in float16")
    assert "agree to rounding" in _markdown(page, "Whole query block 0")


def test_breakdown_chart_shows_the_labs_numbers(page):
    chart = page.get("plotly_chart")[0]
    data = spec(chart.proto.spec)["data"]
    q, k, v = make_inputs("random", 64, 64, 32, 0)
    b = error_breakdown(q, k, v, precision="float16", block_q=16, block_kv=16)
    bars = decode(data[0]["y"])  # stage "inputs rounded", error panel, one bar per precision
    assert bars[list(PRECISIONS).index("float16")] == pytest.approx(b.stages[0].max_err_o)


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_every_precision(page, precision):
    page.selectbox(key="prec_precision").set_value(precision).run()
    _ok(page)
    verdict = _markdown(page, "With **" if precision != "float64" else "**float64")
    assert (precision == "float64") == ("baseline" in verdict)


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_every_pattern_with_causal_mask(page, pattern):
    """The float16 breakdown of this pattern under the mask: the stage table's errors and
    the final error in the verdict are the lab's numbers for the same inputs."""
    page.selectbox(key="prec_pattern").set_value(pattern)
    page.toggle(key="prec_causal").set_value(True).run()
    _ok(page)
    q, k, v = make_inputs(pattern, 64, 64, 32, 0)
    b = error_breakdown(q, k, v, precision="float16", block_q=16, block_kv=16, causal=True)
    table = page.dataframe[0].value
    assert list(table["max |O - O_ref|"]) == [f"{s.max_err_o:.3g}" for s in b.stages]
    assert list(table["max |L - L_ref|"]) == [f"{s.max_err_lse:.3g}" for s in b.stages]
    assert f"The final output is off by {b.final.max_err_o:.2g};" in _markdown(page, "With **")


def test_sizes_seed_and_logit_scale(page):
    for key, value in (
        ("prec_n_q", 37),
        ("prec_n_k", 23),
        ("prec_head_dim", 9),
        ("prec_block_q", 5),
        ("prec_block_kv", 7),
        ("prec_seed", 4),
        ("prec_logit_scale", 30.0),
    ):
        page.number_input(key=key).set_value(value).run()
        _ok(page)
    q, k, v = make_inputs("random", 37, 23, 9, 4)
    exact = record_steps(q, k, v, block_q=5, block_kv=7, scale=30.0 / 3)  # c / sqrt(d)
    expected = [problem_underflow(exact, name) for name in UNDERFLOW_TYPES]
    counts = page.dataframe[2].value  # underflow counts of this problem
    assert list(counts["type"]) == list(UNDERFLOW_TYPES)
    assert list(counts["P~ = 0"]) == [f"{c.p_zero} / {c.n_p}" for c in expected]
    assert list(counts["P~ subnormal"]) == [f"{c.p_subnormal} / {c.n_p}" for c in expected]
    assert list(counts["alpha = 0"]) == [f"{c.alpha_zero} / {c.n_alpha}" for c in expected]
    assert expected[0].name == "float16" and expected[0].p_zero > 0  # large logits underflow


def test_underflow_gap_slider_and_demo_controls(page):
    page.slider(key="prec_gap").set_value(30.0).run()
    _ok(page)
    assert [m.delta for m in page.metric] == ["0 (underflow)", "normal", "normal"]
    page.number_input(key="prec_demo_gap").set_value(5.0).run()
    _ok(page)
    assert "Nothing underflowed in float16" in _markdown(page, "With the state in float16")
    page.number_input(key="prec_demo_chunk").set_value(7).run()
    page.number_input(key="prec_demo_base").set_value(70000.0).run()
    _ok(page)
    assert "not finite" in _markdown(page, "With the state in float16")


def test_exp2_controls(page):
    page.selectbox(key="prec_q_block").set_value(2)
    page.selectbox(key="prec_row").set_value(5)
    page.selectbox(key="prec_tile").set_value(3).run()
    _ok(page)
    table = spec(page.get("plotly_chart")[-2].proto.spec)  # the forms table
    assert "Query row 37 at K/V tile 3" in table["layout"]["title"]["text"]
    page.radio(key="prec_form_dtype").set_value("float64").run()
    _ok(page)
    verdict = _markdown(page, "Whole query block 2")
    assert "float64 is 2.2e-16" in verdict


def test_exp2_choices_follow_the_problem(page):
    """Choices the new problem no longer has are clamped to its last block, row and tile."""
    page.selectbox(key="prec_q_block").set_value(3)
    page.selectbox(key="prec_tile").set_value(3).run()
    page.number_input(key="prec_n_q").set_value(20)
    page.number_input(key="prec_n_k").set_value(20).run()  # 2 query blocks (16 + 4), 2 tiles
    _ok(page)
    assert page.selectbox(key="prec_q_block").options == ["0", "1"]
    assert page.selectbox(key="prec_q_block").value == 1
    assert page.selectbox(key="prec_row").options == [str(r) for r in range(4)]
    assert page.selectbox(key="prec_tile").value == 1
    title = spec(page.get("plotly_chart")[-2].proto.spec)["layout"]["title"]["text"]
    assert title.startswith("Query row 16 at K/V tile 1 (keys 16 - 19)")


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("prec_block_q", 65, "`block_q` = 65 is larger than `n_q`"),
        ("prec_n_q", 0, "`n_q` must be at least 1"),
        ("prec_logit_scale", 0.0, "`logit scale c` must be in (0, 1000]"),
        ("prec_n_k", 100000, "too large to trace"),
    ],
)
def test_bad_problem_gives_an_error_and_keeps_the_rest(page, key, value, message):
    page.number_input(key=key).set_value(value).run()
    assert not page.exception
    assert any(message in e.value for e in page.error)
    assert len(page.get("plotly_chart")) == 3  # underflow, gap sweep, exp2: no problem needed
    assert len(page.header) == 4  # sections 2 to 5 still explain; section 1 is gone


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("prec_demo_gap", -1.0, "`gap` must be in [0, 200] (the max only rises)."),
        ("prec_demo_chunk", 0, "`chunk` must be in [1, 64]."),
        ("prec_demo_base", 1e9, "`base` must be a number in [-1e+06, 1e+06]."),
    ],
)
def test_bad_section_input_gives_an_error(page, key, value, message):
    page.number_input(key=key).set_value(value).run()
    assert not page.exception
    assert [e.value for e in page.error] == [message]
    assert len(page.get("plotly_chart")) == N_CHARTS - 1  # only the demo's gap sweep is gone


def test_query_block_that_sees_no_key(page):
    page.number_input(key="prec_n_k").set_value(16)
    page.number_input(key="prec_block_kv").set_value(8)
    page.toggle(key="prec_causal").set_value(True).run()  # 64 queries, 16 keys: rows 0-47 empty
    _ok(page, charts=N_CHARTS - 1)
    assert any("sees no key" in i.value for i in page.info)
    assert np.isfinite(decode(spec(page.get("plotly_chart")[1].proto.spec)["data"][0]["y"])).all()


def test_navigation_lists_the_precision_page():
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60).run()
    assert not at.exception
    assert any(p.get("url_pathname") == "precision" for p in at._registered_pages.values())


def test_software_exp2_and_after_fa2(page):
    """The cubic by default: 13.5 bits, hidden by 16-bit rounding; degree 2 is not; the
    After FA2 section gives the exp gap from its sources and links both lessons."""
    from flashviz.lab.exp2_lesson import exp2_errors

    cubic = _markdown(page, "Degree 3: 13.5 correct bits")
    assert f"{exp2_errors(3).max_ulps('float32'):,.0f} float32 ulps" in cubic
    assert "at most one ulp of float16" in cubic
    after = _markdown(page, "FlashAttention-2 leaves")
    assert "**254 matmul FLOPs per exp**" in after and "**571 FLOPs per exp**" in after
    assert "(/?rescale_threshold=8)" in after and "dbg_bugs=threshold_too_high_f16" in after
    (facts,) = [d for d in page.dataframe if "source" in d.value.columns]
    assert any("arXiv 2407.08608" in x for x in facts.value["source"])
    page.slider(key="prec_exp2_degree").set_value(2).run()
    _ok(page)
    assert "too few bits even for a 16-bit P~" in _markdown(page, "Degree 2: 8.9 correct bits")
