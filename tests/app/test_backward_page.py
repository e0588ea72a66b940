"""The backward page in AppTest: defaults, every control (and its URL parameter), the step
buttons, slider and Play, a link restores the view, invalid and hostile input give a
message (never a traceback), stepping to the end, the correctness panel."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flashviz.app.pages.backward import PROBLEM
from flashviz.core.backward_trace import BwdTileStep
from flashviz.lab.backward import dq_adds_total, progress, run_backward, step_title
from flashviz.lab.problem_spec import ProblemSpec
from tests.support import APP_SCRIPT, decode, spec

ROOT = Path(__file__).resolve().parents[2]
PAGE = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + (
    "from flashviz.app.pages import backward\nbackward.render()\n"
)
HOSTILE = "`x`[link](https://evil.example/)<b>b</b>:red[r]$x$"


def open_page(**params: object) -> AppTest:
    at = AppTest.from_string(PAGE, default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return at.run()


@pytest.fixture
def page() -> AppTest:
    return open_page()


def page_spec(at: AppTest) -> ProblemSpec:
    return ProblemSpec(**{name: at.session_state[key] for name, key in PROBLEM.items()})


def charts(at: AppTest) -> dict[str, dict]:
    return {c.key: spec(c.proto.spec) for c in at.get("plotly_chart")}


def heading(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("### Step "))


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def check_page(at: AppTest) -> None:
    """No exception or error; heading, counters, charts and verdict are the run's at the
    page's step."""
    assert not at.exception and not at.error, [e.value for e in at.error]
    run = run_backward(page_spec(at))
    t = run.trace
    k = int(at.session_state["bwd_step"])
    assert heading(at) == f"### {step_title(t, k)}"
    p, m = progress(run, k), metrics(at)
    assert m["tiles done"] == f"{p.tiles_done} / {p.tiles_total}"
    assert m["HBM so far (FA2 backward)"] == f"{p.hbm_bytes / 1024:.1f} KiB"
    assert m["FLOPs so far"] == f"{p.flops:,}"
    assert m["max |dq - dq_ref|"] == f"{run.errors['dq']:.2e}"
    assert m["verdict"] == "matches" and at.success
    figs = charts(at)
    tile = isinstance(t.steps[k], BwdTileStep)
    expected = {"bwd_map", "bwd_chart_dq"} | ({"bwd_chart_on_chip"} if k else set())
    expected |= {"bwd_chart_scores", "bwd_chart_grads"} if tile else set()
    assert set(figs) == expected
    assert figs["bwd_map"]["layout"]["title"]["text"].endswith(
        f"step {k}: tile ({t.steps[k].i}, {t.steps[k].j})" if tile else f"step {k}"
    )
    adds = decode(figs["bwd_chart_dq"]["data"][1]["x"])
    assert adds.tolist() == dq_adds_total(t).tolist()
    if tile:
        ds = decode(figs["bwd_chart_grads"]["data"][1]["z"])
        assert ds.tolist() == t.steps[k].ds.tolist()
    assert at.query_params["bwd_step"] == str(k)


def test_defaults(page) -> None:
    check_page(page)
    assert page.session_state["bwd_step"] == 0
    assert heading(page) == "### Step 0 of 24: D = rowsum(dO * O) for every row"
    assert any("default_rng((0, 1))" in c.value for c in page.caption)
    assert page.query_params["n_q"] == "16" and page.query_params["pattern"] == "spiky"
    m = metrics(page)
    assert m["rowsum(dO * O), row 0"] == m["rowsum(dP * P), row 0"]


def test_step_buttons_slider_and_the_end(page) -> None:
    page.button(key="bwd_next").click().run()
    assert page.session_state["bwd_step"] == 1
    check_page(page)
    page.button(key="bwd_next").click().run()  # the first tile
    check_page(page)
    assert "Step: tile (Q block 0, K/V block 0)" in [m.value[5:] for m in page.markdown]
    page.slider(key="bwd_step").set_value(10).run()
    check_page(page)
    page.button(key="bwd_prev").click().run()
    assert page.session_state["bwd_step"] == 9
    page.button(key="bwd_last").click().run()
    check_page(page)
    m = metrics(page)
    assert m["tiles done"] == "16 / 16"
    assert heading(page) == "### Step 24 of 24: write dK/dV block 3"
    page.button(key="bwd_first").click().run()
    assert page.session_state["bwd_step"] == 0
    check_page(page)


def test_play_steps_on_and_stops_at_the_end(page) -> None:
    page.button(key="bwd_last").click().run()
    page.button(key="bwd_prev").click().run()  # step 23
    page.select_slider(key="bwd_speed").set_value("4 steps/s").run()
    page.button(key="btn_bwd_play").click().run()  # continues from the step Previous set
    assert page.session_state["bwd_step"] == 23
    assert page.button(key="btn_bwd_play").label == "Pause"
    assert "bwd_step" not in [s.key for s in page.slider]  # hidden while playing
    page.run()  # a timer run: one step on
    assert page.session_state["bwd_step"] == 24
    assert page.button(key="btn_bwd_play").label == "Pause"
    page.run()  # the timer at the last step stops it
    assert page.session_state["bwd_step"] == 24
    assert page.button(key="btn_bwd_play").label == "Play"
    check_page(page)


def test_a_button_while_playing_moves_the_played_step(page) -> None:
    page.button(key="btn_bwd_play").click().run()
    assert page.session_state["bwd_step"] == 1
    page.button(key="bwd_first").click().run()  # continue from step 0
    assert page.session_state["bwd_step"] == 0
    page.run()
    assert page.session_state["bwd_step"] == 1
    page.button(key="btn_bwd_play").click().run()  # pause
    assert page.button(key="btn_bwd_play").label == "Play"
    check_page(page)


@pytest.mark.parametrize(
    ("key", "value", "param"),
    [("bwd_n_q", 9, "n_q"), ("bwd_n_k", 11, "n_k"), ("bwd_d", 5, "head_dim"),
     ("bwd_seed", 4, "seed"), ("bwd_block_q", 2, "block_q"), ("bwd_block_kv", 3, "block_kv")],
)  # fmt: skip
def test_every_number_input_reruns_and_goes_into_the_link(page, key, value, param) -> None:
    page.button(key="bwd_next").click().run()
    page.sidebar.number_input(key=key).set_value(value).run()
    assert page.query_params[param] == str(value)
    assert page.session_state["bwd_step"] == 0  # a new problem starts at the start
    check_page(page)


def test_pattern_causal_and_alignment(page) -> None:
    page.sidebar.selectbox(key="bwd_pattern").set_value("sink").run()
    check_page(page)
    page.sidebar.toggle(key="bwd_causal").set_value(True).run()
    check_page(page)
    page.sidebar.number_input(key="bwd_n_q").set_value(20).run()
    page.sidebar.radio(key="bwd_causal_align").set_value("top_left").run()
    check_page(page)
    params = page.query_params
    assert (params["pattern"], params["causal"], params["causal_align"]) == (
        "sink", "true", "top_left"
    )  # fmt: skip
    run = run_backward(page_spec(page))
    assert (run.trace.tile_kinds() == "skipped").any()
    page.button(key="bwd_last").click().run()
    check_page(page)


def test_the_row_and_the_code_phase(page) -> None:
    page.slider(key="bwd_step").set_value(2).run()
    page.slider(key="bwd_row").set_value(3).run()
    check_page(page)
    t = run_backward(page_spec(page)).trace
    step = t.steps[2]
    assert any(f"rowsum(dO * O), row {step.rows.start + 3}" == m.label for m in page.metric)
    page.radio(key="bwd_code_phase").set_value("ds").run()
    assert any("Highlighted: `ds`" in c.value for c in page.caption)
    page.toggle(key="bwd_code_whole").set_value(True).run()
    check_page(page)
    html = [h.proto.body for h in page.get("html")]
    assert any("phase:ds" in body and "fv-hl" in body for body in html)


def test_a_link_restores_the_view() -> None:
    at = open_page(n_q=12, n_k=8, head_dim=4, block_q=4, block_kv=4, causal=True,
                   pattern="random", seed=2, bwd_step=5, bwd_row=1)  # fmt: skip
    s = page_spec(at)
    assert (s.n_q, s.n_k, s.head_dim, s.causal, s.pattern, s.seed) == (
        12, 8, 4, True, "random", 2
    )  # fmt: skip
    assert at.session_state["bwd_step"] == 5 and at.session_state["bwd_row"] == 1
    check_page(at)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"n_q": HOSTILE}, "Ignored URL parameter n_q"),
        ({"pattern": HOSTILE}, "Ignored URL parameter pattern"),
        ({"bwd_step": "-1e9"}, "Ignored URL parameter bwd_step"),
    ],
)
def test_hostile_link_values_warn_literally(params, fragment) -> None:
    at = open_page(**params)
    assert not at.exception
    shown = [w.value for w in at.warning]
    assert any(fragment in w.replace("\\", "") for w in shown), shown
    assert all("<b>" not in w for w in shown)  # escaped, never markup
    check_page(at)


def test_a_step_beyond_the_end_is_clamped() -> None:
    at = open_page(bwd_step=10**9)
    assert at.session_state["bwd_step"] == 24
    check_page(at)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("bwd_n_q", 0, "`n_q` must be at least 1, got 0."),
        ("bwd_d", -3, "`head_dim` must be at least 1"),
        ("bwd_seed", -1, "`seed` must be a non-negative integer"),
        ("bwd_block_q", 99, "`block_q` = 99 is larger than `n_q` = 16"),
        ("bwd_d", 1000, "`head_dim` = 1000 is above 256"),
    ],
)
def test_invalid_input_gives_a_message_not_a_traceback(page, key, value, fragment) -> None:
    page.sidebar.number_input(key=key).set_value(value).run()
    assert not page.exception
    assert any(fragment in e.value for e in page.error), [e.value for e in page.error]
    assert not page.get("plotly_chart")


def test_a_too_big_problem_suggests_a_size_that_fits(page) -> None:
    page.sidebar.number_input(key="bwd_n_q").set_value(512).run()
    page.sidebar.number_input(key="bwd_n_k").set_value(512).run()
    page.sidebar.number_input(key="bwd_block_q").set_value(1).run()
    page.sidebar.number_input(key="bwd_block_kv").set_value(1).run()
    assert not page.exception
    (error,) = [e.value for e in page.error]
    assert "too large to trace step by step" in error and "Try n_q =" in error
    page.button(key="btn_suggested_size").click().run()
    check_page(page)
    assert page_spec(page).n_q * page_spec(page).n_k <= 512 * 512


def test_navigation_lists_the_backward_page_after_the_stepper() -> None:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60).run()
    assert not at.exception
    paths = [p.get("url_pathname") for p in at._registered_pages.values()]
    assert paths[:2] == ["", "backward"], paths  # the stepper is the default page, at /
