"""The code view: both sources drawn side by side, exactly the current phase's lines lit."""

from __future__ import annotations

import html
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flashviz.app.stepper.code_view import CONTEXT, source_html
from flashviz.lab.source_view import (
    KERNEL_ONLY,
    STEP_PHASES,
    Source,
    highlight,
    inner_step_code,
    kernel_code,
    phase_spans,
)

ROOT = Path(__file__).resolve().parents[2]
HEADER = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
SOURCES = (inner_step_code(), kernel_code())
CASES = [(kind, None) for kind in STEP_PHASES] + [
    (kind, phase) for kind, phases in STEP_PHASES.items() for phase in phases
]


class _Lines(HTMLParser):
    """Shown line -> (its text, highlighted?) in one source's HTML; line numbers left out."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[int, tuple[str, bool]] = {}
        self.gaps = 0
        self._stack: list[str] = []  # classes of the open elements
        self._line: tuple[int, bool] | None = None
        self._parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        self._stack.append(" ".join(classes))
        if "fv-line" in classes:
            self._line, self._parts = (int(a["data-line"]), "fv-hl" in classes), []
        self.gaps += "fv-gap" in classes

    def handle_endtag(self, tag):
        if self._stack.pop().startswith("fv-line"):
            n, lit = self._line
            self.lines[n] = ("".join(self._parts), lit)
            self._line = None

    def handle_data(self, data):
        if self._line is not None and self._stack[-1] != "fv-num":
            self._parts.append(data)


def _parse(body: str) -> _Lines:
    parser = _Lines()
    parser.feed(body)
    return parser


def _run(kind: str, phase: str | None) -> AppTest:
    script = HEADER + (
        "from flashviz.app.stepper.code_view import code_section\n"
        f"code_section({kind!r}, {phase!r})\n"
    )
    return AppTest.from_string(script, default_timeout=30).run()


def _lit_lines(at: AppTest) -> list[set[int]]:
    htmls = at.get("html")
    assert len(htmls) == 2
    return [{n for n, (_, lit) in _parse(h.proto.body).lines.items() if lit} for h in htmls]


def _expected(kind: str, phase: str | None) -> list[set[int]]:
    return [{n for a, b in highlight(src, kind, phase) for n in range(a, b + 1)} for src in SOURCES]


@pytest.mark.parametrize(("kind", "phase"), CASES)
def test_each_step_kind_and_phase_lights_exactly_its_lines(kind, phase):
    at = _run(kind, phase)
    assert not at.exception and not at.error
    htmls = at.get("html")
    assert _lit_lines(at) == _expected(kind, phase)
    phases = STEP_PHASES[kind] if phase is None else (phase,)
    for src, h in zip(SOURCES, htmls, strict=True):
        parsed = _parse(h.proto.body)
        spans = phase_spans(src.text, src.comment_prefix)
        for p in (p for p in phases if p in spans):  # a kernel-only phase: none in Python
            first_code = next(  # the first line after the marker that is not `#pragma`
                n
                for n in range(spans[p][0] + 1, spans[p][1] + 1)
                if not src.lines[n - 1].startswith("#")
            )
            text, lit = parsed.lines[first_code]
            assert lit and text == src.lines[first_code - 1]
            code = src.lines[first_code - 1].split(src.comment_prefix)[0].strip()
            assert html.escape(code) in h.proto.body
    # the radio offers one phase of a tile step; other steps have no radio
    assert [r.key for r in at.radio] == (["code_phase"] if kind == "tile" and not phase else [])


def test_a_kernel_only_phase_lights_the_kernel_and_says_why_python_has_none():
    at = _run("write", None)
    py_lit, cu_lit = _lit_lines(at)
    a, b = phase_spans(SOURCES[1].text, "//")["reduce"]
    assert set(range(a, b + 1)) <= cu_lit and py_lit  # Python: normalize and lse only
    assert KERNEL_ONLY == ("reduce",)
    assert "`reduce` is the kernel's alone" in at.caption[0].value
    at = _run("write", "reduce")
    py_lit, cu_lit = _lit_lines(at)
    assert py_lit == set() and cu_lit == set(range(a, b + 1))
    assert "`flashviz/core/inner_step.py` has no `reduce`: kernel only" in [
        c.value for c in at.caption
    ]
    at = _run("write", "normalize")  # a phase both have: no note
    assert all("kernel's alone" not in c.value for c in at.caption)


def test_the_radio_picks_one_phase_and_keeps_it_across_steps():
    script = HEADER + (
        "import streamlit as st\n"
        "from flashviz.app.stepper.code_view import code_section\n"
        "code_section(st.session_state.get('kind', 'tile'))\n"
    )
    at = AppTest.from_string(script, default_timeout=30).run()
    assert _lit_lines(at) == _expected("tile", None)
    at.radio(key="code_phase").set_value("alpha").run()
    assert not at.exception
    assert _lit_lines(at) == _expected("tile", "alpha")
    at.session_state["kind"] = "write"
    at.run()
    assert _lit_lines(at) == _expected("write", None) and not at.radio
    at.session_state["kind"] = "tile"
    at.run()
    assert at.radio(key="code_phase").value == "alpha"
    assert _lit_lines(at) == _expected("tile", "alpha")


def test_whole_sources_toggle_shows_every_line():
    at = _run("load_q", None)
    shown = [_parse(h.proto.body) for h in at.get("html")]
    for src, parsed in zip(SOURCES, shown, strict=True):
        assert parsed.gaps >= 1 and len(parsed.lines) < len(src.lines)
    at.toggle(key="code_whole").set_value(True).run()
    for src, h in zip(SOURCES, at.get("html"), strict=True):
        parsed = _parse(h.proto.body)
        assert parsed.gaps == 0
        assert [text for _, (text, _) in sorted(parsed.lines.items())] == src.lines


def test_context_window_and_escaping():
    src = kernel_code()
    ranges = highlight(src, "tile", "alpha")
    parsed = _parse(source_html(src, ranges, context=CONTEXT))
    ((a, b),) = ranges
    assert sorted(parsed.lines) == list(range(a - CONTEXT, b + CONTEXT + 1))
    assert parsed.gaps == 2
    body = source_html(src, ranges)
    assert "load_tile&lt;BLOCK_Q&gt;" in body and "<BLOCK_Q>" not in body
    assert "\n" not in body  # newlines would show as empty lines inside the pre box


def test_a_missing_marker_gives_an_error_not_a_traceback(tmp_path):
    broken = tmp_path / "flash_attention.cu"
    broken.write_text(kernel_code().text.replace("// phase:exp", "// exp"))
    script = HEADER + (
        "from unittest import mock\n"
        "from pathlib import Path\n"
        "from flashviz.lab import source_view\n"
        "from flashviz.app.stepper.code_view import code_section\n"
        f"with mock.patch.object(source_view, 'KERNEL_PATH', Path({str(broken)!r})):\n"
        "    code_section('tile')\n"
    )
    at = AppTest.from_string(script, default_timeout=30).run()
    assert not at.exception
    (error,) = at.error
    assert "no marker for exp" in error.value
    assert not at.get("html")


def test_markers_bold_comments_dimmed_strings_kept():
    text = 'def f():\n    # phase:scores  a < b & c\n    s = "#" + x  # shape\n    return s'
    src = Source("f.py", text, (1, 2, 3, 4), "#")
    body = source_html(src, [(2, 4)])
    assert "<b>    # phase:scores  a &lt; b &amp; c</b>" in body
    assert 's = &quot;#&quot; + x  <span style="opacity: 0.6"># shape</span>' in body
    assert {n for n, (_, lit) in _parse(body).lines.items() if lit} == {2, 3, 4}


def test_an_edited_source_is_drawn_again(tmp_path):
    """The drawing is cached per file version: an edit (new mtime) shows at the next run."""
    cu = tmp_path / "flash_attention.cu"
    cu.write_text(kernel_code().text)
    script = HEADER + (
        "from unittest import mock\n"
        "from pathlib import Path\n"
        "from flashviz.lab import source_view\n"
        "from flashviz.app.stepper.code_view import code_section\n"
        f"with mock.patch.object(source_view, 'KERNEL_PATH', Path({str(cu)!r})):\n"
        "    code_section('write')\n"
    )
    at = AppTest.from_string(script, default_timeout=30).run()
    assert "edited_line" not in at.get("html")[1].proto.body
    cu.write_text(cu.read_text().replace("// phase:normalize", "// phase:normalize edited_line"))
    stat = cu.stat()
    os.utime(cu, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    at.run()
    assert not at.exception and not at.error
    assert "edited_line" in at.get("html")[1].proto.body
