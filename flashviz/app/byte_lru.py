"""A cache with one budget in bytes: least recently used entries go first, each owner has a share.

Pure Python (no Streamlit): ``flashviz.app.cached`` puts every page's cache on one process-wide
``ByteLRU`` and names the session as the owner. An entry's size is ``deep_bytes`` of its value,
measured once when it is stored. Storing an entry evicts, in order: the owner's own least
recently used entries while the owner holds more than its share, then anyone's least recently
used entries while the cache holds more than its budget. An entry larger than the share is
returned but not kept. A hit touches the entry whoever stored it; entries are shared.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import sys
import threading
import types
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
from plotly.basedatatypes import BaseFigure


@dataclass
class _Entry:
    value: Any
    nbytes: int
    owner: str


@dataclass(frozen=True)
class Stored:
    """What storing one entry did: kept it or not, and how many of the owner's own were evicted."""

    kept: bool
    nbytes: int
    evicted_own: int


class ByteLRU:
    """Entries keyed by hashable keys, at most ``budget`` bytes in all, ``share`` per owner."""

    def __init__(self, budget: int, share: int) -> None:
        if not 0 < share <= budget:
            raise ValueError(f"need 0 < share <= budget, got share {share}, budget {budget}")
        self.budget, self.share = budget, share
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._owned: dict[str, int] = {}
        self._total = 0
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}

    @property
    def total_bytes(self) -> int:
        return self._total

    def owner_bytes(self, owner: str) -> int:
        return self._owned.get(owner, 0)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def lookup(self, key: Hashable) -> tuple[bool, Any]:
        """(True, value) and the entry becomes the most recently used, or (False, None)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            self._entries.move_to_end(key)
            return True, entry.value

    def store(self, key: Hashable, value: Any, owner: str) -> Stored:
        nbytes = deep_bytes(value)
        if nbytes > self.share:
            return Stored(kept=False, nbytes=nbytes, evicted_own=0)
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = _Entry(value, nbytes, owner)
            self._owned[owner] = self._owned.get(owner, 0) + nbytes
            self._total += nbytes
            evicted_own = self._evict(
                lambda e: e.owner == owner, lambda: self._owned[owner] > self.share
            )
            evicted = evicted_own + self._evict(lambda e: True, lambda: self._total > self.budget)
        if evicted:
            release_freed_memory()
        return Stored(kept=True, nbytes=nbytes, evicted_own=evicted_own)

    def get_or_compute(
        self, key: Hashable, compute: Callable[[], Any], owner: str
    ) -> tuple[Any, Stored | None]:
        """The cached value, or ``compute()`` stored; one computation per key at a time."""
        hit, value = self.lookup(key)
        if hit:
            return value, None
        with self._lock:
            key_lock = self._computing.setdefault(key, threading.Lock())
        with key_lock:
            hit, value = self.lookup(key)
            if hit:
                return value, None
            try:
                value = compute()
            finally:
                with self._lock:
                    self._computing.pop(key, None)
            return value, self.store(key, value, owner)

    def discard(self, which: Callable[[Hashable], bool]) -> None:
        """Drop every entry whose key ``which`` accepts."""
        with self._lock:
            for key in [k for k in self._entries if which(k)]:
                self._drop(key)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key)
        self._owned[entry.owner] -= entry.nbytes
        if not self._owned[entry.owner]:
            del self._owned[entry.owner]
        self._total -= entry.nbytes

    def _evict(self, whose: Callable[[_Entry], bool], too_much: Callable[[], bool]) -> int:
        """Drop the least recently used entries ``whose`` accepts (never the newest) while
        ``too_much()``; how many were dropped."""
        dropped = 0
        newest = next(reversed(self._entries))
        for key in list(self._entries):
            if not too_much():
                break
            if key != newest and whose(self._entries[key]):
                self._drop(key)
                dropped += 1
        return dropped


def deep_bytes(value: Any) -> int:
    """Bytes ``value`` holds: arrays by their buffers (each buffer once), containers, dataclass
    and plain objects by their parts, Plotly figures by their data, layout and frames."""
    seen: set[int] = set()
    total = 0
    stack = [value]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, np.ndarray):
            root = _root(obj)
            if id(root) not in seen:
                seen.add(id(root))
                total += root.nbytes
        elif isinstance(obj, BaseFigure):
            stack += [obj._data, obj._layout, [f._props for f in obj._frame_objs]]
        elif isinstance(obj, dict):
            stack += [*obj.keys(), *obj.values()]
        elif isinstance(obj, list | tuple | set | frozenset):
            stack += obj
        elif not callable(obj) and not isinstance(obj, types.ModuleType):
            stack += _attributes(obj)  # code, classes and modules are shared, not counted
    return total


def _root(array: np.ndarray) -> np.ndarray:
    """The array whose buffer ``array`` views (itself when it owns its data or views bytes)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _attributes(obj: object) -> list:
    parts = list(getattr(obj, "__dict__", {}).values())
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(obj, name):
                parts.append(getattr(obj, name))
    return parts


def array_key(array: np.ndarray) -> tuple:
    """A hashable stand-in for an array argument: dtype, shape and a digest of the data."""
    data = np.ascontiguousarray(array)
    return ("ndarray", data.dtype.str, data.shape, hashlib.blake2b(data.tobytes()).hexdigest())


def release_freed_memory() -> None:
    """Hand the heap's free pages back to the system (glibc ``malloc_trim``; elsewhere nothing):
    evicted entries made of many small arrays otherwise stay in the process's resident size."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _libc()
