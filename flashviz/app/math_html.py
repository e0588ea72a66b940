"""The explanations' Markdown and TeX as HTML with MathML, for parts the browser swaps in
itself (``flashviz.app.stepper.step_view``'s text parts): no server round trip, so the
text changes in the same frame as the charts.

TeX goes through ``latex2mathml``; Chromium, Firefox and Safari draw MathML natively. An
``aligned`` block becomes a two-column table aligned at its ``&``, one row per line. The
Markdown is the explanations' own subset: ``**bold**``, `` `code` `` and ``$math$``;
everything else is text, escaped.
"""

from __future__ import annotations

import functools
import html
import re

from latex2mathml.converter import convert

_ALIGNED = re.compile(r"^\s*\\begin\{aligned\}(.*)\\end\{aligned\}\s*$", re.DOTALL)
# A minus that starts a number (after "(", "=", ",", "&" or at the start) is a sign, not a
# subtraction ("{" too): braced, MathML draws it as a prefix, without the spaces of a binary minus.
_SIGN = re.compile(r"(^|[(=,&\[{])((?:\s|\\ )*)-\s*(\d[\d.]*(?:e[-+]?\d+)?|\\infty)")
_LOG = '<mi>log</mi><mspace width="0.1667em"></mspace>'
_INLINE = re.compile(r"\*\*([^*]+)\*\*|`([^`]+)`|\$([^$]+)\$")  # one pass, no nesting


@functools.lru_cache(maxsize=4096)  # our own TeX: a bounded set of short strings per problem
def math(tex: str, display: bool = False) -> str:
    """One TeX expression as a MathML element (no ``aligned``: see ``tex_html``)."""
    if not tex.strip():
        return ""
    out = convert(_SIGN.sub(r"\1\2{-\3}", tex.strip()))
    out = out.replace("<mi>log</mi>", _LOG)  # a thin space after it, as TeX puts one
    return out.replace('display="inline"', 'display="block"') if display else out


def tex_html(tex: str) -> str:
    """A displayed formula: an ``aligned`` block as a table aligned at ``&``, else one
    centred MathML block; class ``fv-math``, each line's TeX in ``data-tex``."""
    m = _ALIGNED.match(tex)
    if m is None:
        return f'<div class="fv-math" data-tex="{html.escape(tex)}">{math(tex, True)}</div>'
    rows = []
    for line in (part.strip() for part in m.group(1).split(r"\\")):
        if not line:
            continue
        left, amp, right = line.partition("&")
        tex_attr = f'data-tex="{html.escape(line)}"'
        if amp:
            cells = f'<td class="fv-lhs">{math(left)}</td><td class="fv-rhs">{math(right)}</td>'
        else:
            cells = f'<td class="fv-rhs" colspan="2">{math(line)}</td>'
        rows.append(f"<tr {tex_attr}>{cells}</tr>")
    return f'<table class="fv-math fv-aligned"><tbody>{"".join(rows)}</tbody></table>'


def _inline(m: re.Match[str]) -> str:
    bold, code, tex = m.groups()
    if bold is not None:
        return f"<b>{html.escape(bold)}</b>"
    if code is not None:
        return f"<code>{html.escape(code)}</code>"
    return math(tex)


def markdown_html(text: str) -> str:
    """The explanations' Markdown subset as HTML: text escaped, ``**b**``, `` `c` ``, ``$t$``."""
    out, at = [], 0
    for m in _INLINE.finditer(text):
        out += [html.escape(text[at : m.start()]), _inline(m)]
        at = m.end()
    out.append(html.escape(text[at:]))
    return "".join(out)
