"""A mapping that makes each value the first time a test asks for it.

Module fixtures of compiled kernels return one: a test compiles only the builds it uses,
so pytest-xdist workers that each run a few tests of a module do not each compile all of
the module's builds.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class OnDemand(dict[K, V]):
    """``make(key)`` on the first lookup of ``key``, kept for the next ones."""

    def __init__(self, make: Callable[[K], V]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: K) -> V:
        value = self[key] = self._make(key)
        return value
