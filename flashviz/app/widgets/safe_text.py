"""Show text a user supplied (a URL value, a file name, a text box) as literal text.

Streamlit renders alerts, captions and labels as markdown: a backtick, ``[text](url)`` or
``![](url)`` in a value would become live markup inside the app's own message. Every such
string goes through ``user_text`` (or a whole message holding one, through
``plain_message``): cut to a length, control characters replaced, and every ASCII
punctuation character backslash-escaped, which CommonMark renders as the character itself.
So markdown, HTML, Streamlit's ``:icon:`` / ``:color[...]`` shortcodes and LaTeX ``$``
show as the characters typed. GitHub-style autolinks (``https://``, ``www.``, ``a@b.c``)
are found in the rendered text, after escapes: an invisible word joiner (U+2060) after
each ``:``, ``@`` and ``www`` breaks them, so no link is made.
"""

from __future__ import annotations

import re
import string
import unicodedata

ELLIPSIS = "\u2026"
JOINER = "\u2060"  # WORD JOINER: invisible, breaks "https://", "www." and "a@b" apart
_PUNCTUATION = frozenset(string.punctuation)
_WWW = re.compile("www", re.IGNORECASE)
MAX_VALUE_CHARS = 60  # a URL value or a file name
MAX_MESSAGE_CHARS = 600  # a whole message that quotes user text


def _literal(ch: str) -> str:
    if ch in ":@":
        return "\\" + ch + JOINER
    if ch in _PUNCTUATION:
        return "\\" + ch
    if unicodedata.category(ch)[0] in "CZ" and ch != " ":  # newlines, tabs, bidi controls
        return " " if ch.isspace() else "\ufffd"
    return ch


def user_text(value: object, limit: int = MAX_VALUE_CHARS) -> str:
    """``value`` as markdown that renders as its own characters, at most ``limit`` of them."""
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + ELLIPSIS
    escaped = "".join(_literal(ch) for ch in text)
    return _WWW.sub(lambda m: m.group(0) + JOINER, escaped)


def plain_message(message: object) -> str:
    """A whole message (e.g. an upload error naming the file) shown as plain text."""
    return user_text(message, MAX_MESSAGE_CHARS)


def url_warning(name: str, value: str, reason: object) -> str:
    """The warning for a URL parameter that was ignored, with the value shown literally."""
    return (
        f"Ignored URL parameter {user_text(name)} = {user_text(value)}\\: "
        f"{user_text(reason, 200)}\\."
    )


def shown(markdown: str) -> str:
    """What a reader sees of ``markdown`` made by ``user_text``: the escapes removed."""
    out, escaped = [], False
    for ch in markdown.replace(JOINER, ""):
        if escaped or ch != "\\":
            out.append(ch)
            escaped = False
        else:
            escaped = True
    return "".join(out)
