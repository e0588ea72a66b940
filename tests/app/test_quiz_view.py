"""Quiz mode and PNG download in a small Streamlit script (AppTest, no browser for the UI)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flashviz.app.widgets.safe_text import shown
from flashviz.lab.problem import build_trace
from flashviz.lab.problem_spec import ProblemSpec
from flashviz.lab.quiz import fmt, quiz_for

ROOT = Path(__file__).resolve().parents[2]
SPEC = ProblemSpec(n_q=11, n_k=7, block_q=4, block_kv=3, causal=True, pattern="spiky")
SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import streamlit as st
from flashviz.figures import figure_context, stats_figure, tile_figure
from flashviz.lab.problem import build_trace
from flashviz.lab.problem_spec import ProblemSpec
from flashviz.app.stepper.export_view import png_download
from flashviz.app.stepper.quiz_view import quiz_mode_toggle, quiz_section

ctx = figure_context(build_trace(ProblemSpec(**{spec!r})))
if quiz_mode_toggle():
    st.session_state["allowed"] = quiz_section(ctx, {k})
png_download({{"tile": tile_figure(ctx, 4), "stats": stats_figure(ctx, 4)}})
"""
TRACE = build_trace(SPEC)


def app(k: int) -> AppTest:
    spec = {f: getattr(SPEC, f) for f in ("n_q", "n_k", "block_q", "block_kv", "causal", "pattern")}
    at = AppTest.from_string(SCRIPT.format(root=str(ROOT), spec=spec, k=k), default_timeout=60)
    at.run()
    at.toggle(key="quiz_mode").set_value(True).run()
    assert not at.exception, at.exception
    return at


def rescale_step() -> int:
    """A tile step whose rescale question has rows that rise and rows that do not."""
    return next(
        n
        for n in range(len(TRACE.steps))
        if (q := quiz_for(TRACE, n)).rows and q.rows.answer and set(q.rows.options) - q.rows.answer
    )


def test_quiz_off_shows_nothing():
    at = AppTest.from_string(SCRIPT.format(root=str(ROOT), spec={}, k=1), default_timeout=60).run()
    assert not at.exception and not at.text_input and "allowed" not in at.session_state


def test_right_answers_unlock_the_step():
    k = rescale_step()
    quiz = quiz_for(TRACE, k)
    at = app(k)
    assert at.session_state["allowed"] is False
    assert any(
        m.value == f"#### Predict step {k}: tile ({TRACE.steps[k].i}, {TRACE.steps[k].j})"
        for m in at.markdown
    )
    for n, item in enumerate(quiz.numbers.items):
        at.text_input(key=f"quiz_{k}_{n}").input(fmt(item.expected))
    at.multiselect(key=f"quiz_{k}_rows").set_value(sorted(quiz.rows.answer))
    at.button(key="quiz_check").click().run()
    assert not at.exception
    n_items = len(quiz.numbers.items) + len(quiz.rows.options)
    assert len(at.success) == n_items and not at.error
    assert any(m.value == f"**{n_items} of {n_items} right.**" for m in at.markdown)
    assert at.session_state["allowed"] is True


def test_wrong_answers_get_reasons_per_row():
    k = rescale_step()
    quiz = quiz_for(TRACE, k)
    step = TRACE.steps[k]
    at = app(k)
    for n in range(len(quiz.numbers.items)):
        at.text_input(key=f"quiz_{k}_{n}").input("0")
    at.multiselect(key=f"quiz_{k}_rows").set_value(list(quiz.rows.options))  # all rescale?
    at.button(key="quiz_check").click().run()
    assert not at.exception
    errors = [shown(e.value) for e in at.error]
    assert any(e.startswith(f"row {step.rows.start}") and "you entered 0" in e for e in errors)
    assert any("wrongly picked" in e and "alpha = 1" in e for e in errors)
    assert at.session_state["allowed"] is True  # answered: Next may show the step


def test_reveal_without_answering_shows_the_answers():
    k = rescale_step()
    at = app(k)
    at.button(key="quiz_reveal").click().run()
    assert not at.exception and at.session_state["allowed"] is True
    (info,) = at.info
    assert info.value.startswith("The answers:") and "m_new" in info.value


def test_minus_infinity_for_rows_with_no_key():
    k = 1  # tile (0, 0) of a causal 11 x 7 problem: rows 0..3 see no key
    quiz = quiz_for(TRACE, k)
    at = app(k)
    for n, item in enumerate(quiz.numbers.items):
        at.text_input(key=f"quiz_{k}_{n}").input("-inf" if item.expected < -1e300 else "oops")
    at.button(key="quiz_check").click().run()
    assert not at.exception
    assert len(at.success) == sum(i.expected == float("-inf") for i in quiz.numbers.items) > 0


def test_load_step_and_end_of_run():
    at = app(0)
    for n, answer in enumerate(("-inf", "0", "0")):
        at.text_input(key=f"quiz_0_{n}").input(answer)
    at.button(key="quiz_check").click().run()
    assert len(at.success) == 3 and not at.error and at.session_state["allowed"] is True
    assert "**3 of 3 right.**" in [m.value for m in at.markdown]
    end = app(len(TRACE.steps))
    assert end.session_state["allowed"] is True and not end.text_input


def test_a_new_problem_clears_the_quiz_state():
    k = rescale_step()
    at = app(k)
    at.button(key="quiz_reveal").click().run()
    assert at.session_state["allowed"] is True
    at.session_state["_quiz_problem"] = ("another problem",)
    at.run()
    assert at.session_state["allowed"] is False


def test_png_download_without_browser_shows_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    at = app(0)
    at.button(key="png_render").click().run()
    assert not at.exception
    assert any("needs Chrome or Chromium" in e.value for e in at.error)


@pytest.mark.skipif(not shutil.which("chromium"), reason="no Chromium on this machine")
def test_png_download_renders_a_zip():
    at = app(0)
    at.button(key="png_render").click().run()
    assert not at.exception and not at.error
    (button,) = at.get("download_button")
    assert button.proto.label.startswith("Download flashviz_views.zip")
    assert any(c.value.startswith("Rendered 2 PNG(s) in ") for c in at.caption)


def test_a_typed_answer_is_quoted_as_literal_text():
    k = rescale_step()
    at = app(k)
    at.text_input(key=f"quiz_{k}_0").input("[x](https://evil.example)").run()
    at.button(key="quiz_check").click().run()
    assert not at.exception
    (bad,) = [e.value for e in at.error if "is not a number" in e.value]
    assert "'[x](https://evil.example)' is not a number" in shown(bad)
    assert "](" not in bad and "\\[x\\]" in bad
    assert at.text_input(key=f"quiz_{k}_0").max_chars == 40
