"""The stepper's precision selector and bug-zoo switch, through the real app (AppTest)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from flashviz.app.widgets.safe_text import shown
from flashviz.core.precision import PRECISIONS
from flashviz.io.bounded_read import UploadError
from flashviz.io.uploads import load_qkv, qkv_digest
from flashviz.lab.bugzoo import BUGS
from flashviz.lab.divergence import first_diverging_step
from flashviz.lab.problem import build_trace
from flashviz.lab.problem_spec import ProblemSpec
from tests.app.step_view_driver import enabled, move, send, step_charts, step_text
from tests.app.test_stepper_page import correct_verdict, run_app, step_title, verdict_numbers

# Causal with n_q > n_k (empty rows), a spiky pattern (rising maxima) and logits near 1e3.
BITING = dict(n_q=12, n_k=9, head_dim=4, block_q=4, block_kv=3, causal=True, scale=400.0)
# The high rescale threshold bites where a max rises by 11.1 to 13.9, not by hundreds
BITING_FOR = {"threshold_too_high_f16": {**BITING, "scale": 5.0}}


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_each_precision_runs_and_is_judged_by_its_own_tolerance(precision: str) -> None:
    at = run_app(precision=precision, step=3)
    assert not at.error
    assert at.session_state["precision"] == precision
    verdict = correct_verdict(at)
    assert verdict_numbers(ProblemSpec(precision=precision)) in verdict
    assert (precision != "float64") == (
        f"Inputs in {precision}: the tolerance is twice the error of naive" in verdict
    )


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_each_bug_is_recorded_and_its_first_diverging_step_is_pointed_out(bug: str) -> None:
    biting = BITING_FOR.get(bug, BITING)
    spec = ProblemSpec(**biting, bug=bug)
    expected = first_diverging_step(build_trace(spec), build_trace(ProblemSpec(**biting)))
    assert expected is not None, "the showcase problem must make every bug bite"
    at = run_app(**biting, bug=bug, step=0)
    assert at.session_state["bug"] == bug
    if expected > 0:
        banner = step_text(at, "bug")
        assert "fv-warning" in banner and f"leaves the correct one at step {expected}" in banner
        assert f'data-goto="{expected}">Go to step {expected}</button>' in banner
        send(at, expected)  # what the banner's button does in the browser
        assert not at.exception
    else:
        at.run()
    assert at.session_state["step"] == expected
    assert step_title(at).startswith(f"### Step {expected} ")
    banner = step_text(at, "bug")
    assert "fv-error" in banner and "first bites" in banner
    assert any("as the bug" in e.value for e in at.error)  # the final verdict is red


def test_a_bug_that_does_not_bite_says_so() -> None:
    at = run_app(bug="mask_1e4")  # no mask, moderate scores: -1e4 never matters
    banner = step_text(at, "bug")
    assert "fv-info" in banner and "never changes the result" in banner


def test_bad_precision_or_bug_in_the_url_is_ignored_with_a_warning() -> None:
    at = run_app(precision="float8", bug="typo")
    assert at.session_state["precision"] == "float64" and at.session_state["bug"] == "none"
    assert sum("Ignored URL parameter" in w.value for w in at.warning) == 2


def test_uploaded_tensors_are_traced_and_can_be_downloaded(rng) -> None:
    q, k, v = rng.standard_normal((10, 3)), rng.standard_normal((7, 3)), rng.standard_normal((7, 3))
    buf = io.BytesIO()
    np.savez(buf, q=q, k=k, v=v)
    at = run_app(block_q=4, block_kv=4)
    at.get_by_key("upload_qkv").set_value(("mine.npz", buf.getvalue(), "application/octet-stream"))
    at.run()
    assert not at.error
    state = at.session_state
    assert (state["n_q"], state["n_k"], state["head_dim"]) == (10, 7, 3)
    assert state["upload"] == qkv_digest(q, k, v) and state["block_kv"] == 4
    assert at.number_input(key="n_q").disabled
    assert any("uploaded tensors" in i.value for i in at.info)
    assert "upload" not in at.query_params
    move(at, "last")
    spec = ProblemSpec(n_q=10, n_k=7, head_dim=3, block_q=4, block_kv=4, upload=state["upload"])
    assert verdict_numbers(spec, (q, k, v)) in correct_verdict(at)
    assert at.get_by_key("download_trace").label == "Download the trace (.npz)"
    at.get_by_key("upload_qkv").set_value(None)
    at.run()
    assert not at.exception and at.session_state["upload"] == ""
    assert not at.number_input(key="n_q").disabled


def test_a_bad_upload_shows_its_message_and_keeps_the_pattern() -> None:
    at = run_app()
    at.get_by_key("upload_qkv").set_value(("bad.npz", b"not a numpy file", "application/zip"))
    at.run()
    assert not at.exception
    with pytest.raises(UploadError) as refused:
        load_qkv(b"not a numpy file", "bad.npz")
    said = str(refused.value)  # in the main area (above the steps) and in the sidebar
    assert [shown(e.value) for e in at.error] == [
        f"Your file was not used: {said} The steps below are the generated problem of the "
        "sidebar's settings.",
        said,
    ]
    assert at.session_state["upload"] == "" and not at.number_input(key="n_q").disabled
    trace = build_trace(ProblemSpec())  # the default pattern's problem, still shown
    assert step_title(at).startswith(f"### Step 0 of {len(trace.steps) - 1}: load q")
    assert verdict_numbers(ProblemSpec()) in correct_verdict(at)


def test_quiz_mode_holds_next_until_the_step_is_answered_or_revealed() -> None:
    at = run_app(step=1)
    at.toggle(key="quiz_mode").set_value(True).run()
    assert not at.exception
    assert not enabled(at, "next") and not enabled(at, "last")
    assert enabled(at, "prev") and at.button(key="btn_play").disabled
    at.button(key="quiz_reveal").click().run()
    assert enabled(at, "next")
    move(at, "next")
    assert at.session_state["step"] == 2 and not enabled(at, "next")
    at.toggle(key="quiz_mode").set_value(False).run()
    assert enabled(at, "next")


def test_png_export_button_renders_the_views_of_the_step() -> None:
    """A tile step shows four charts (tile map, tile, stats, accumulator), a write three; the
    button's label is the same at both (nothing on the page changes but the step's parts)."""
    for step, views in ((1, 4), (5, 3)):
        at = run_app(step=step)
        assert len(step_charts(at)) == views
        assert at.button(key="png_render").label == "Render this step's views as PNG (zip)"


@pytest.mark.parametrize(
    "value,precision,message",
    [(1e300, "float64", "overflow float64"), (1e5, "float16", "beyond the range of float16")],
)
def test_uploads_beyond_the_precisions_range_get_a_message(value, precision, message) -> None:
    x = np.full((4, 2), value)
    buf = io.BytesIO()
    np.savez(buf, q=x, k=x, v=np.ones((4, 2)))
    at = run_app(block_q=2, block_kv=2, precision=precision)
    at.get_by_key("upload_qkv").set_value(("big.npz", buf.getvalue(), "application/octet-stream"))
    at.run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]


def test_switching_the_bug_starts_the_quiz_afresh() -> None:
    at = run_app(step=0)
    at.toggle(key="quiz_mode").set_value(True).run()
    at.button(key="quiz_reveal").click().run()
    assert enabled(at, "next")
    at.selectbox(key="bug").set_value("no_max").run()
    assert not at.exception
    assert not enabled(at, "next")  # a new run: its steps are not revealed
