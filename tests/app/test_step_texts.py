"""The step panel's text parts: the explanations' Markdown and TeX as escaped HTML with MathML,
and one set of texts per step that says what that step is."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz.app.math_html import markdown_html, math, tex_html
from flashviz.app.stepper.step_texts import TextChoices, step_texts
from flashviz.figures import figure_context
from flashviz.lab.bugzoo import BUGS
from flashviz.lab.explain import explain
from flashviz.lab.problem import build_trace
from flashviz.lab.problem_spec import ProblemSpec
from flashviz.lab.progress import progress


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


@given(st.text(max_size=200).filter(lambda t: not set(t) & set("*`$")))
def test_text_without_markup_is_shown_as_typed(text: str) -> None:
    out = markdown_html(text)
    assert _text(out) == text
    assert "<" not in out.replace("&lt;", "")  # no tag of ours, none of the text's


def test_bold_code_and_math_become_tags_and_the_rest_is_escaped() -> None:
    out = markdown_html('**Fold** `o_i` <script>alert(1)</script> & $K_{0}$ "x"')
    assert out.startswith("<b>Fold</b> <code>o_i</code> &lt;script&gt;alert(1)&lt;/script&gt;")
    assert "&amp;" in out and "<math" in out and "<script>" not in out


def test_an_aligned_block_is_a_table_aligned_at_its_equals_signs() -> None:
    tex = (
        r"\begin{aligned} m_{1} &= \max(-\infty,\ -0.5) = -0.5 \\ &= 2 \\ "
        r"\ell &\leftarrow 3 \end{aligned}"
    )
    out = tex_html(tex)
    rows = re.findall(r"<tr data-tex=\"([^\"]*)\">", out)
    assert [html.unescape(r) for r in rows] == [
        r"m_{1} &= \max(-\infty,\ -0.5) = -0.5",
        "&= 2",
        r"\ell &\leftarrow 3",
    ]
    assert out.count('class="fv-lhs"') == 3 and out.count('class="fv-rhs"') == 3
    assert tex_html("O_i = 1").startswith('<div class="fv-math" data-tex="O_i = 1"><math')


def test_a_sign_is_drawn_as_a_prefix_not_as_a_subtraction() -> None:
    minus = "<mo>&#x02212;</mo>"
    signed = math("(-0.25) + (-3)")
    assert signed.count(f"<mrow>{minus}<mn>") == 2  # braced: a prefix minus with its number
    assert f"<mrow>{minus}" not in math("a - 3")  # a subtraction stays one
    assert f"<mrow>{minus}<mo>&#x0221E;</mo></mrow>" in math(r"\max(-\infty, 1)")


@pytest.mark.parametrize("bug", [None, *sorted(BUGS)])
def test_each_steps_texts_say_that_step(bug: str | None) -> None:
    spec = ProblemSpec(n_q=9, n_k=7, head_dim=3, block_q=4, block_kv=3, causal=True,
                       **({"bug": bug} if bug else {}))  # fmt: skip
    ctx = figure_context(build_trace(spec))
    trace = ctx.trace
    for k, step in enumerate(trace.steps):
        texts = step_texts(ctx, k, TextChoices(row=1, bug_at=2 if bug else None))
        e = explain(trace, k, 1)
        assert f'<h4 class="fv-title">{html.escape(e.title)}</h4>' in texts["explanation"]
        assert f'data-row="{e.row}"' in texts["explanation"]
        assert texts["explanation"].count("<math") >= 2  # the formula and the numbers
        p = progress(trace, k)
        assert f"{p.tiles_done} / {p.tiles_total}" in texts["counters"]
        assert ('class="fv-line fv-hl"' in texts["code"]) and "fv-error" not in texts["code"]
        if bug is None:
            assert texts["bug"] == ""
        else:
            kind = "warning" if k < 2 else "error"
            assert f"fv-alert fv-{kind}" in texts["bug"]
            assert ('data-goto="2"' in texts["bug"]) == (k < 2)
        assert step.kind in ("load_q", "tile", "write")
