"""Page state that survives navigation and reload, shared between pages with the same fields.

Streamlit drops the session-state value of every widget that a run did not draw, so a page
left for another one comes back with empty widgets. Each page therefore lists its fields
(``Field``: a name in one shared store, the page's widget key, a default) and calls
``keep(fields)`` before drawing its widgets: a value a widget (or a callback) changed since
the last ``keep`` goes into the store, then the page's widget keys are set from the store.
Pages whose fields have the same name (``n_q`` on the stepper and ``fa1_n_q`` on the FA1
page) thus share one problem. On a session's first page, values come from the URL; after
drawing, ``mirror_url(fields)`` writes the page's values back into it, so a reload or a
shared link restores the same view (``flashviz.app.widgets.page_shell`` does both around a
page's content).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import streamlit as st

from flashviz.app.widgets.safe_text import url_warning

STORE = "_kept"  # name -> value: the shared store (not a widget key, so never dropped)
SEEN = "_kept_seen"  # widget key -> value it had at the last keep(): spots changes
FIELDS = "_kept_fields"  # widget key -> Field, of every page that ran in this session
URL_READ = "_kept_url_read"
URL_OBSERVER = "_kept_url_observer"  # a callable told when mirror_url changed the URL
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
WHOLE = re.compile(r"[+-]?[0-9]{1,18}")  # ASCII digits only: int() also reads other scripts'
DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")


@dataclass(frozen=True)
class Field:
    """One value a page keeps. ``name``: in the shared store and the URL; ``widget``: the
    page's session-state key ('' = the name); ``choices``: allowed strings (for a list, its
    items); ``url``: False keeps it out of links (uploads, long text); ``bounds``: the
    smallest and largest number the page's widget takes (a link's value outside is refused);
    ``url_when_default``: False leaves the URL without it while it has its default value."""

    name: str
    default: object
    widget: str = ""
    choices: tuple[str, ...] = ()
    url: bool = True
    bounds: tuple[float, float] | None = None
    url_when_default: bool = True

    @property
    def key(self) -> str:
        return self.widget or self.name

    def parse(self, text: str) -> object:
        """The URL text as this field's type; ValueError with a reason if it is not one."""
        default = self.default
        if isinstance(default, bool):
            if text.lower() not in TRUE + FALSE:
                raise ValueError("expected true or false")
            return text.lower() in TRUE
        if isinstance(default, int):
            if not WHOLE.fullmatch(text.strip()):
                raise ValueError(f"expected a whole number{self._range()}")
            return self._within(int(text))
        if isinstance(default, float):
            value = float(text) if len(text) <= 40 and DECIMAL.fullmatch(text.strip()) else math.nan
            if not math.isfinite(value):
                raise ValueError(f"expected a number{self._range()}")
            return self._within(value)
        if isinstance(default, list):
            items = [t for t in text.split(",") if t]
            bad = [t for t in items if t not in self.choices]
            if bad:
                raise ValueError(f"expected items from {', '.join(self.choices)}")
            return items
        if self.choices and text not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}")
        return text

    def _range(self) -> str:
        return "" if self.bounds is None else f" from {self.bounds[0]:g} to {self.bounds[1]:g}"

    def _within(self, value: float) -> float:
        if self.bounds is not None and not self.bounds[0] <= value <= self.bounds[1]:
            kind = "a whole number" if isinstance(value, int) else "a number"
            raise ValueError(f"expected {kind}{self._range()}")
        return value

    def text(self, value: object) -> str:
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, list):
            return ",".join(map(str, value))
        return str(value)


def page_fields(
    defaults: Mapping[str, object],
    *,
    choices: Mapping[str, tuple[str, ...]] | None = None,
    local: tuple[str, ...] = (),
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> list[Field]:
    """A page's own fields from its widget keys' defaults, named by their keys (the fields
    pages share: ``flashviz.app.widgets.problem.problem_fields``); ``local`` keys stay out
    of the URL; ``bounds`` are the (min, max) of bounded widgets."""
    choices, bounds = choices or {}, bounds or {}
    return [
        Field(k, v, widget=k, choices=tuple(choices.get(k, ())), url=k not in local,
              bounds=bounds.get(k))
        for k, v in defaults.items()
    ]  # fmt: skip


def _remember() -> None:
    """Store every kept widget value that changed since the last keep()."""
    ss = st.session_state
    store, seen = ss[STORE], ss[SEEN]
    for key, field in ss[FIELDS].items():
        if key in ss and (key not in seen or ss[key] != seen[key]):
            store[field.name] = ss[key]


def _from_url(page_fields: Sequence[Field]) -> list[str]:
    """The session's first page: its fields from the URL. Returns one warning per bad one."""
    warnings = []
    for f in page_fields:
        if not f.url or f.name not in st.query_params:
            continue
        text = st.query_params[f.name]
        try:
            st.session_state[STORE][f.name] = f.parse(text)
        except ValueError as err:
            warnings.append(url_warning(f.name, text, err))  # the value shown literally
    return warnings


def keep(page_fields: Sequence[Field]) -> list[str]:
    """Before a page draws its widgets: store what changed, then set the page's widget keys
    from the store (defaults for names never seen). Returns warnings for bad URL values."""
    ss = st.session_state
    for name in (STORE, SEEN, FIELDS):
        if name not in ss:
            ss[name] = {}
    ss[FIELDS].update({f.key: f for f in page_fields})
    _remember()
    warnings = []
    if not ss.get(URL_READ):
        ss[URL_READ] = True
        warnings = _from_url(page_fields)
    store = ss[STORE]
    for f in page_fields:
        value = store.setdefault(f.name, f.default)
        ss[f.key] = value  # every run: a value set here outlives its widget's clean-up
        ss[SEEN][f.key] = value
    return warnings


def put(page_fields: Iterable[Field], values: dict[str, object]) -> None:
    """Set values by name (a preset, a suggested size): store and widget keys together.
    Call from a callback, before the widgets are drawn."""
    ss = st.session_state
    for f in page_fields:
        if f.name in values:
            ss[STORE][f.name] = ss[f.key] = values[f.name]


def mirror_url(page_fields: Iterable[Field]) -> None:
    """Write the page's current values into the URL (only what changed: no churn); the
    session's ``URL_OBSERVER``, if any (a lecturer's class), is told of a change."""
    ss = st.session_state
    changed = False
    for f in page_fields:
        if f.url and f.key in ss:
            if not f.url_when_default and ss[f.key] == f.default:
                if f.name in st.query_params:
                    del st.query_params[f.name]
                    changed = True
                continue
            text = f.text(ss[f.key])
            if st.query_params.get(f.name) != text:
                st.query_params[f.name] = text
                changed = True
    observer = ss.get(URL_OBSERVER)
    if changed and callable(observer):
        observer()
