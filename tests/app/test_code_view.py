"""The code view: both sources drawn side by side, exactly the current phase's lines lit."""

from __future__ import annotations

import html
import os
import re
from html.parser import HTMLParser

import pytest

from flashviz.app.stepper.code_view import CONTEXT, code_html, source_html
from flashviz.lab import code_view
from flashviz.lab.code_view import (
    KERNEL_ONLY,
    STEP_PHASES,
    Source,
    highlight,
    inner_step_code,
    kernel_code,
    phase_spans,
)

SOURCES = (inner_step_code(), kernel_code())
CASES = [(kind, None) for kind in STEP_PHASES] + [("tile", p) for p in STEP_PHASES["tile"]]


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
        if self._stack and self._stack.pop().startswith("fv-line"):  # (the columns' ends)
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


def _bodies(drawn: str) -> list[str]:
    """The two sources' HTML in ``code_html``'s output (Python, then CUDA)."""
    parts = drawn.split('<div class="fv-code"')[1:]
    assert len(parts) == 2, drawn[:300]
    return ['<div class="fv-code"' + p for p in parts]


def _lit_lines(drawn: str) -> list[set[int]]:
    return [{n for n, (_, lit) in _parse(b).lines.items() if lit} for b in _bodies(drawn)]


def _captions(drawn: str) -> list[str]:
    return [html.unescape(re.sub("<[^>]+>", "", c)) for c in re.findall(
        r'<p class="fv-caption">(.*?)</p>', drawn)]  # fmt: skip


def _expected(kind: str, phase: str | None) -> list[set[int]]:
    return [{n for a, b in highlight(src, kind, phase) for n in range(a, b + 1)} for src in SOURCES]


@pytest.mark.parametrize(("kind", "phase"), CASES)
def test_each_step_kind_and_phase_lights_exactly_its_lines(kind, phase):
    drawn = code_html(kind, phase)
    assert "fv-error" not in drawn
    assert _lit_lines(drawn) == _expected(kind, phase)
    phases = STEP_PHASES[kind] if phase is None else (phase,)
    for src, h in zip(SOURCES, _bodies(drawn), strict=True):
        parsed = _parse(h)
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
            assert html.escape(code) in h


def test_a_kernel_only_phase_lights_the_kernel_and_says_why_python_has_none():
    drawn = code_html("write")
    py_lit, cu_lit = _lit_lines(drawn)
    a, b = phase_spans(SOURCES[1].text, "//")["reduce"]
    assert set(range(a, b + 1)) <= cu_lit and py_lit  # Python: normalize and lse only
    assert KERNEL_ONLY == ("reduce",)
    assert "reduce is the kernel's alone" in _captions(drawn)[0]
    assert all("kernel's alone" not in c for c in _captions(code_html("tile")))


def test_the_chosen_phase_applies_at_tile_steps_only():
    assert _lit_lines(code_html("tile", "alpha")) == _expected("tile", "alpha")
    assert _lit_lines(code_html("write", "alpha")) == _expected("write", None)
    assert _lit_lines(code_html("load_q", "alpha")) == _expected("load_q", None)


def test_whole_sources_shows_every_line():
    for src, h in zip(SOURCES, _bodies(code_html("load_q")), strict=True):
        parsed = _parse(h)
        assert parsed.gaps >= 1 and len(parsed.lines) < len(src.lines)
    for src, h in zip(SOURCES, _bodies(code_html("load_q", whole=True)), strict=True):
        parsed = _parse(h)
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


def test_a_missing_marker_gives_an_error_not_a_traceback(tmp_path, monkeypatch):
    broken = tmp_path / "flash_attention.cu"
    broken.write_text(kernel_code().text.replace("// phase:exp", "// exp"))
    monkeypatch.setattr(code_view, "KERNEL_PATH", broken)
    drawn = code_html("tile")
    assert drawn.startswith('<div class="fv-alert fv-error">') and "fv-code" not in drawn
    assert "no marker for exp" in drawn


def test_markers_bold_comments_dimmed_strings_kept():
    text = 'def f():\n    # phase:scores  a < b & c\n    s = "#" + x  # shape\n    return s'
    src = Source("f.py", text, (1, 2, 3, 4), "#")
    body = source_html(src, [(2, 4)])
    assert "<b>    # phase:scores  a &lt; b &amp; c</b>" in body
    assert 's = &quot;#&quot; + x  <span style="opacity: 0.6"># shape</span>' in body
    assert {n for n, (_, lit) in _parse(body).lines.items() if lit} == {2, 3, 4}


def test_an_edited_source_is_drawn_again(tmp_path, monkeypatch):
    """The drawing is cached per file version: an edit (new mtime) shows at the next call."""
    cu = tmp_path / "flash_attention.cu"
    cu.write_text(kernel_code().text)
    monkeypatch.setattr(code_view, "KERNEL_PATH", cu)
    assert "edited_line" not in _bodies(code_html("write"))[1]
    cu.write_text(cu.read_text().replace("// phase:normalize", "// phase:normalize edited_line"))
    stat = cu.stat()
    os.utime(cu, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    drawn = code_html("write")
    assert "fv-error" not in drawn and "edited_line" in _bodies(drawn)[1]
