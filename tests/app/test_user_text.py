"""Text a user controls (URL values, file names, typed rows) is shown literally, never as
markdown: a backtick, a link or an image in it must not become live markup in the app."""

from __future__ import annotations

import importlib
import re
from dataclasses import asdict
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from flashviz.app.stepper.state import STEPPER_FIELDS
from flashviz.app.widgets.safe_text import plain_message, shown, url_warning, user_text
from flashviz.lab.problem_spec import ProblemSpec
from tests.app.test_debugger_page import PAGE as DEBUGGER
from tests.app.test_stepper_page import TIMEOUT, run_app
from tests.support import APP_SCRIPT

HOSTILE = "`x`[link](https://evil.example/)![img](https://evil.example/i.png)<b>b</b>:red[r]$x$"
ROOT = Path(__file__).resolve().parents[2]
URL_FIELDS = [*(name for name in asdict(ProblemSpec()) if name != "upload"), "step"]


def assert_no_markup(markdown: str) -> None:
    """Every markdown-active character in ``markdown`` is backslash-escaped."""
    unescaped = re.findall(r"(?<!\\)[`\[\]()!<>*_$:]", markdown.replace("\\\\", ""))
    assert not unescaped, f"unescaped {unescaped} in {markdown!r}"


@given(st.text(max_size=60))
def test_user_text_shows_exactly_what_was_typed(text: str) -> None:
    md = user_text(text)
    if all(ch.isprintable() for ch in text):
        assert shown(md) == text
    assert "\n" not in md and "\r" not in md


def test_user_text_is_cut_and_escaped() -> None:
    assert user_text("a" * 100, 10) == "a" * 9 + "\u2026"
    assert user_text("[a](b)") == r"\[a\]\(b\)"
    assert len(plain_message("x" * 10**6)) == 600
    assert_no_markup(url_warning("n_q", HOSTILE, "expected a whole number"))


def test_every_url_parameter_is_shown_literally_in_its_warning() -> None:
    """One hostile value in every query parameter: one warning each, none with markup."""
    at = run_app(**dict.fromkeys(URL_FIELDS, HOSTILE))
    warnings = [w.value for w in at.warning if "Ignored URL parameter" in w.value]
    assert len(warnings) == len(URL_FIELDS) >= 13
    for name in URL_FIELDS:
        (warning,) = [w for w in warnings if shown(w).startswith(f"Ignored URL parameter {name} =")]
        assert shown(warning).startswith(f"Ignored URL parameter {name} = {HOSTILE[:20]}")
        assert_no_markup(warning)
    assert not at.error  # the defaults were kept: the problem is fine


@pytest.mark.parametrize(
    "value", ["1" * 5000, "9" * 19, "1e400", "nan", " ", "\u0663\u0664"], ids=ascii
)
def test_numbers_the_url_cannot_hold_are_ignored_with_a_short_warning(value: str) -> None:
    at = run_app(n_q=value, scale=value)
    warnings = [w.value for w in at.warning if "Ignored URL parameter" in w.value]
    cut = value if len(value) <= 60 else value[:59] + "\u2026"  # at most 60 characters
    assert f"Ignored URL parameter n_q = {cut}: expected a whole number." in map(shown, warnings)
    assert all(len(w) < 400 for w in warnings)
    assert at.session_state["n_q"] == ProblemSpec().n_q


def test_a_typed_row_is_quoted_literally_in_its_error() -> None:
    at = AppTest.from_string(DEBUGGER, default_timeout=TIMEOUT).run()
    at.radio(key="dbg_source").set_value("typed").run()
    at.text_area(key="dbg_text").set_value("1, " + HOSTILE).run()
    assert not at.exception
    (err,) = at.error
    assert shown(err.value).startswith("entry 2 ('`x`[link](https://evil.example")
    assert_no_markup(err.value)
    assert at.text_area(key="dbg_text").max_chars == 131_072


PAGES = ["causal", "debugger", "fa1", "masks", "precision"]


@pytest.mark.parametrize("name", PAGES)
def test_every_url_parameter_of_every_page_is_shown_literally(name: str) -> None:
    """Each page's own query parameters: a hostile value is refused, its warning literal."""
    page = importlib.import_module(f"flashviz.app.pages.{name}")
    url_fields = [f for f in page.FIELDS if f.url]
    script = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + (
        f"from flashviz.app.pages import {name}\n{name}.render()\n"
    )
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    for f in url_fields:
        at.query_params[f.name] = HOSTILE
    at.run()
    assert not at.exception
    warnings = [w.value for w in at.warning if "Ignored URL parameter" in w.value]
    assert len(warnings) == len(url_fields) > 0
    for warning in warnings:
        assert_no_markup(warning)
        assert HOSTILE[:30] in shown(warning)


PROBES = ["-5", "110.5", "1e308", "inf", "nan", "1e309", "\u0663"]  # -inf: as inf
ALL_PAGES = [
    "backward",
    "causal",
    "debugger",
    "fa1",
    "inside_kernel",
    "masks",
    "precision",
    "split_kv",
]


def _page_with_every_parameter(name: str, value: str) -> AppTest:
    """Page ``name`` ("stepper": the home page) opened with ``value`` in every query parameter."""
    if name == "stepper":
        fields = STEPPER_FIELDS
        at = AppTest.from_file(str(APP_SCRIPT), default_timeout=TIMEOUT)
    else:
        fields = importlib.import_module(f"flashviz.app.pages.{name}").FIELDS
        script = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + (
            f"from flashviz.app.pages import {name}\n{name}.render()\n"
        )
        at = AppTest.from_string(script, default_timeout=TIMEOUT)
    for f in fields:
        if f.url:
            at.query_params[f.name] = value
    return at.run()


@pytest.mark.parametrize("value", PROBES, ids=ascii)
@pytest.mark.parametrize("name", ["stepper", *ALL_PAGES])
def test_no_url_value_reaches_a_traceback(name: str, value: str) -> None:
    """A hostile student's numbers (negative, huge, inf, nan, beyond float, another
    script's digits) in every query parameter of every page: refused with the usual warning
    or clamped, never an exception."""
    at = _page_with_every_parameter(name, value)
    assert not at.exception, at.exception


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e309", "\u0663.5"], ids=ascii)
def test_a_number_that_is_not_finite_or_not_ascii_is_ignored(value: str) -> None:
    at = run_app(scale=value)
    warning = f"Ignored URL parameter scale = {value}: expected a number."
    assert warning in map(shown, at.warning.values)
    assert at.session_state["scale"] == ProblemSpec().scale
