"""Every page's cached work under one memory budget for the whole server process.

``@cached()`` works like Streamlit's ``st.cache_resource``: the value is computed once per
arguments and the same object is handed back (nothing mutates it). Arguments whose name
starts with an underscore are not part of the key, as in Streamlit; arrays are keyed by a
digest of their data. All entries of all pages and sessions live in one ``ByteLRU``:

- ``FLASHVIZ_CACHE_MIB`` (default 1024): the bytes all caches together may hold; the least
  recently used entries are evicted beyond it, whoever stored them.
- ``FLASHVIZ_SESSION_CACHE_MIB`` (default 320): one session's share; a session that stores more
  loses its own least recently used entries first (and is told so once). It must hold one
  problem's work (``flashviz.lab.budget.MEMORY_BUDGET``, 256 MiB) or the largest problems
  are recomputed on every rerun.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Hashable
from typing import Any, Generic, ParamSpec, TypeVar

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from flashviz.app.byte_lru import ByteLRU, Stored, array_key

BUDGET_ENV, SHARE_ENV = "FLASHVIZ_CACHE_MIB", "FLASHVIZ_SESSION_CACHE_MIB"
DEFAULT_BUDGET_MIB, DEFAULT_SHARE_MIB = 1024, 320
_TOLD = "_cache_share_told"

P = ParamSpec("P")
R = TypeVar("R")


def mib_setting(name: str, default: int, environ: dict[str, str] | None = None) -> int:
    """A positive whole number of MiB from the environment variable ``name``, or ``default``."""
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number of MiB (at least 1), got {raw!r}")
    return int(raw)


def _make_cache() -> ByteLRU:
    budget = mib_setting(BUDGET_ENV, DEFAULT_BUDGET_MIB)
    share = min(mib_setting(SHARE_ENV, DEFAULT_SHARE_MIB), budget)
    return ByteLRU(budget * 2**20, share * 2**20)


CACHE = _make_cache()


class Cached(Generic[P, R]):
    """A function whose values live in ``CACHE``, keyed by its name and its arguments (those
    whose name starts with an underscore left out); ``clear()`` drops its entries."""

    def __init__(self, fn: Callable[P, R], spinner: str | None) -> None:
        functools.update_wrapper(self, fn)
        self._fn, self._spinner = fn, spinner
        self._name = f"{fn.__module__}.{fn.__qualname__}"
        self._signature = inspect.signature(fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        key = (self._name, *(_hashable(v) for k, v in bound.arguments.items() if k[0] != "_"))

        def compute() -> R:
            if self._spinner is None:
                return self._fn(*args, **kwargs)
            with st.spinner(self._spinner):
                return self._fn(*args, **kwargs)

        value, stored = CACHE.get_or_compute(key, compute, session_id())
        if stored is not None:
            _tell(stored)
        return value

    def clear(self) -> None:
        CACHE.discard(lambda key: isinstance(key, tuple) and key[0] == self._name)


def cached(spinner: str | None = None) -> Callable[[Callable[P, R]], Cached[P, R]]:
    """Cache the decorated function's values in ``CACHE``; ``spinner`` is shown while one is
    computed. The cached function's ``clear()`` drops its entries."""

    def decorate(fn: Callable[P, R]) -> Cached[P, R]:
        return Cached(fn, spinner)

    return decorate


def _hashable(value: Any) -> Hashable:
    if isinstance(value, np.ndarray):
        return array_key(value)
    if isinstance(value, list | tuple):
        return (type(value).__name__, *(_hashable(v) for v in value))
    if isinstance(value, dict):
        return ("dict", *((k, _hashable(v)) for k, v in sorted(value.items())))
    hash(value)  # anything else must be hashable: a TypeError here is a programming error
    return value


def session_id() -> str:
    """The running session's id ("no session" outside a Streamlit run)."""
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else "no session"


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


def _tell(stored: Stored) -> None:
    """Say once per session that its share is full, and whenever a result is too large to keep."""
    if not stored.kept:
        st.toast(
            f"This result ({_mib(stored.nbytes)}) is larger than one session's share of the "
            f"server's cache ({_mib(CACHE.share)}): it is recomputed on every change.",
            icon=":material/memory:",
        )
    elif stored.evicted_own and not st.session_state.get(_TOLD):
        st.session_state[_TOLD] = True
        st.toast(
            f"This session's share of the server's memory is full ({_mib(CACHE.share)} of "
            f"{_mib(CACHE.budget)} for the whole class): the problems you opened longest ago "
            "were dropped and are recomputed if you go back to them.",
            icon=":material/memory:",
        )
