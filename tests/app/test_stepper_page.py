"""The Streamlit app with no browser (AppTest): runs, steps, shows the trace, links work."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from flashviz.app.widgets.safe_text import shown
from flashviz.core.trace import TileStep
from flashviz.core.verdict import compare_with_reference
from flashviz.lab.patterns import PATTERNS
from flashviz.lab.problem import build_trace
from flashviz.lab.problem_spec import ProblemSpec
from tests.app.step_view_driver import move, parts, slide, step_charts, step_text, step_title
from tests.support import APP_SCRIPT, decode, spec

TIMEOUT = 60
APP = str(APP_SCRIPT)


def run_app(**params: object) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = str(value).lower() if isinstance(value, bool) else str(value)
    at.run()
    assert not at.exception, at.exception
    return at


def verdict_numbers(spec: ProblemSpec, uploaded: tuple[np.ndarray, ...] | None = None) -> str:
    """The errors and tolerance the correctness section shows for ``spec``."""
    v = compare_with_reference(build_trace(spec, uploaded))
    tol = f"{v.tol:.2g}" if v.tol == v.tol_lse else f"{v.tol:.2g} for O, {v.tol_lse:.2g} for L"
    return (
        f"max |O - O_ref| = {v.max_err_o:.2e}, max |L - L_ref| = {v.max_err_lse:.2e} "
        f"(tolerance {tol})"
    )


def correct_verdict(at: AppTest) -> str:
    """The one green verdict on the page."""
    (ok,) = [s.value for s in at.success if s.value.startswith("Correct: ")]
    return ok


def charts(at: AppTest) -> dict[str, dict]:
    """Every chart: the stepper's (drawn in the browser from its data) and st.plotly_chart's."""
    return {**step_charts(at), **{c.key: spec(c.proto.spec) for c in at.get("plotly_chart")}}


def test_defaults_render_every_view() -> None:
    at = run_app()
    assert not at.error
    assert step_title(at).startswith("### Step 0 of ")
    keys = set(charts(at))
    assert {
        "chart_tile_map",
        "chart_stats",
        "chart_accumulator",
        "chart_whole_run",
        "chart_errors",
    } <= keys
    assert verdict_numbers(ProblemSpec()) in correct_verdict(at)
    trace = build_trace(ProblemSpec())
    assert trace.grid == (4, 4)
    assert any(t.max_changed.any() for t in trace.tile_steps() if t.j > 0)  # a rescale


def test_buttons_and_slider_move_the_step() -> None:
    at = run_app()
    last = len(build_trace(ProblemSpec()).steps) - 1

    def shows(k: int) -> bool:
        return at.session_state["step"] == k and step_title(at).startswith(f"### Step {k} of ")

    move(at, "next")
    assert shows(1) and "K/V block 0" in step_title(at)
    move(at, "next")
    move(at, "prev")
    assert shows(1)
    move(at, "last")
    assert shows(last) and at.query_params["step"] == str(last)
    move(at, "first")
    assert shows(0)
    slide(at, 7)
    assert shows(7) and at.query_params["step"] == "7"


def test_tile_heatmap_is_the_traces_tile() -> None:
    at = run_app(step=3)
    step = build_trace(ProblemSpec()).steps[3]
    s_trace, p_trace = charts(at)["chart_tile"]["data"]
    s = decode(s_trace["z"])
    assert np.allclose(s, step.s, rtol=0, atol=0)
    assert np.array_equal(decode(p_trace["z"]), step.p)


@pytest.mark.parametrize("pattern", list(PATTERNS))
@pytest.mark.parametrize("align", ["bottom_right", "top_left"])
def test_patterns_alignments_ragged_blocks(pattern: str, align: str) -> None:
    """Two Next clicks from step 2 show step 4 of this problem: its heading, its tile's S
    and P~, and the green verdict with this run's errors."""
    problem = dict(
        pattern=pattern, causal=True, causal_align=align, n_q=11, n_k=7, block_q=4, block_kv=3,
        head_dim=5,
    )  # fmt: skip
    at = run_app(**problem, step=2)
    for _ in range(2):
        move(at, "next")
    assert not at.error
    spec = ProblemSpec(**problem)
    trace = build_trace(spec)
    step = trace.steps[4]
    assert at.session_state["step"] == 4
    heading = (
        f"### Step 4 of {len(trace.steps) - 1}: {step.kind.replace('_', ' ')}, Q block {step.i}"
    )
    tile = step_charts(at).get("chart_tile")
    if isinstance(step, TileStep):
        assert step_title(at) == f"{heading}, K/V block {step.j}"
        s_shown, p_shown = (decode(t["z"]) for t in tile["data"])
        assert np.array_equal(np.isnan(s_shown), np.isneginf(step.s))
        assert np.array_equal(s_shown[~np.isnan(s_shown)], step.s[np.isfinite(step.s)])
        assert np.array_equal(p_shown, step.p)
    else:
        assert step_title(at) == heading and tile is None
    assert verdict_numbers(spec) in correct_verdict(at)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"block_q": 40}, "larger than `n_q`"),
        ({"head_dim": 0}, "`head_dim` must be at least 1"),
        ({"n_q": 4096, "n_k": 4096}, "too large to trace"),
        ({"seed": -1}, "seed"),
    ],
)
def test_invalid_inputs_show_a_message(params: dict, message: str) -> None:
    at = run_app(**params)
    assert any(message in e.value for e in at.error)
    assert not at.get("plotly_chart") and not parts(at)


def test_too_large_suggests_a_size() -> None:
    at = run_app(n_q=4096, n_k=2048)
    assert any("Try n_q = " in e.value for e in at.error)


def test_query_params_restore_a_view() -> None:
    at = run_app(n_q=12, n_k=20, block_q=4, block_kv=5, causal=True, pattern="sink", step=5)
    assert at.session_state["n_q"] == 12 and at.session_state["pattern"] == "sink"
    assert at.session_state["step"] == 5
    trace = build_trace(
        ProblemSpec(n_q=12, n_k=20, block_q=4, block_kv=5, causal=True, pattern="sink")
    )
    step = trace.steps[5]
    assert step_title(at).startswith(f"### Step 5 of {len(trace.steps) - 1}")
    assert at.query_params["pattern"] == "sink" and at.query_params["step"] == "5"
    assert f"Q block {step.i}" in step_title(at)


def test_bad_url_parameter_is_ignored_with_a_warning() -> None:
    at = run_app(n_q="many", pattern="zigzag")
    warnings = [shown(w.value) for w in at.warning]
    assert warnings == [
        "Ignored URL parameter n_q = many: expected a whole number.",
        f"Ignored URL parameter pattern = zigzag: expected one of {', '.join(PATTERNS)}.",
    ]
    assert at.session_state["n_q"] == ProblemSpec().n_q


def test_tile_colour_scale_toggle_and_url() -> None:
    """The tile's S is on its own colour scale by default; the toggle (kept in
    the URL as ``tile_scale``) puts it on the tile map's, and a link restores either."""
    at = run_app(step=3)

    def s_range(at: AppTest) -> tuple[float, float]:
        s = step_charts(at)["chart_tile"]["data"][0]
        return s["zmin"], s["zmax"]

    z = decode(step_charts(at)["chart_tile"]["data"][0]["z"])
    assert s_range(at) == (np.nanmin(z), np.nanmax(z))
    assert at.toggle(key="tile_scale").value is True
    assert at.query_params["tile_scale"] == "true"
    at.toggle(key="tile_scale").set_value(False).run()
    assert not at.exception
    low, high = s_range(at)
    assert low == -high and high >= np.nanmax(np.abs(z))  # the map's symmetric scale
    assert at.query_params["tile_scale"] == "false" and at.session_state["step"] == 3
    linked = run_app(step=3, tile_scale=False)
    assert s_range(linked) == (low, high) and linked.toggle(key="tile_scale").value is False


def test_a_text_part_sends_each_distinct_text_once() -> None:
    """The code part's window covers seven steps but only three step kinds: three bodies,
    each step mapped to the one of its kind."""
    at = run_app(step=3)
    data = parts(at)["code"][1]
    trace = build_trace(ProblemSpec())
    assert len(data["texts"]) == 7 and len(data["bodies"]) == 3
    kinds = {trace.steps[int(s)].kind: i for s, i in data["texts"].items()}
    assert sorted(kinds.values()) == [0, 1, 2]
    assert all(kinds[trace.steps[int(s)].kind] == i for s, i in data["texts"].items())


def test_a_flexattention_mask_from_a_link_steps_over_its_tiles_only() -> None:
    """?mask=document&mask_size=6: the steps are the block mask's tiles, the causal toggle
    and its alignment are off while the mask is chosen, the verdict is against the masked
    reference; "none" gives the causal toggle back."""
    params = dict(n_q=16, n_k=16, block_q=4, block_kv=4, mask="document", mask_size=6, step=6)
    at = run_app(**params)
    assert not at.error
    masked = ProblemSpec(n_q=16, n_k=16, block_q=4, block_kv=4, mask="document", mask_size=6)
    trace = build_trace(masked)
    step = trace.steps[6]
    assert step_title(at).startswith(f"### Step 6 of {len(trace.steps) - 1}")
    assert f"Q block {step.i}" in step_title(at)
    assert len(trace.steps) < len(build_trace(ProblemSpec(n_q=16, n_k=16)).steps)  # skipped
    assert verdict_numbers(masked) in correct_verdict(at)
    assert at.toggle(key="causal").disabled and at.radio(key="causal_align").disabled
    assert not at.number_input(key="mask_size").disabled
    assert at.query_params["mask"] == "document"
    at.selectbox(key="mask").set_value("none").run()
    assert not at.toggle(key="causal").disabled and at.number_input(key="mask_size").disabled


def test_a_grouped_query_link_steps_that_head_and_says_so() -> None:
    """?group=4&head=2: the caption says which head of the group is stepped over the shared
    K/V; the verdict is that head's; the query head is enabled only with a group."""
    at = run_app(n_q=16, n_k=16, group=4, head=2)
    assert not at.error
    grouped = ProblemSpec(n_q=16, n_k=16, group=4, head=2)
    assert verdict_numbers(grouped) in correct_verdict(at)
    assert any("query head 2 of the 4 that share K/V head 0" in c.value for c in at.caption)
    assert not at.number_input(key="head").disabled
    assert at.query_params["group"] == "4" and at.query_params["head"] == "2"
    at.number_input(key="head").set_value(7).run()
    assert any("`head` must be between 0 and `group` - 1 = 3" in e.value for e in at.error)
    at.number_input(key="group").set_value(1).run()  # no group: query head 0, not chosen
    assert not at.error and at.number_input(key="head").disabled
    assert at.number_input(key="head").value == 0
    assert not any("Grouped-query attention" in c.value for c in at.caption)


def test_a_rescale_threshold_from_a_link_keeps_stale_maxima_and_says_so() -> None:
    """?rescale_threshold=8: the counters give rows rescaled and skipped, the verdict is
    green (the answer is FA2's), and a threshold too high for float16 gets a sentence."""
    last = len(build_trace(ProblemSpec()).steps) - 1
    at = run_app(rescale_threshold=8, step=last)
    assert not at.error
    assert at.number_input(key="rescale_threshold").value == 8.0
    assert "rows rescaled / skipped" in step_text(at, "counters")
    assert "5 / 43" in step_text(at, "counters")
    assert verdict_numbers(ProblemSpec(rescale_threshold=8.0)) in correct_verdict(at)
    at.selectbox(key="precision").set_value("float16").run()
    at.number_input(key="rescale_threshold").set_value(16.0).run()
    assert any("too high for float16" in e.value for e in at.error)
