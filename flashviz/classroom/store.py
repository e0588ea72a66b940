"""The room store of this process: in memory, or in Redis when ``FLASHVIZ_ROOMS_URL`` is set.

``RoomStore`` is what the app needs of a store; ``MemoryStore`` and ``RedisStore`` are the
two. ``room_store()`` makes the process's one store on first use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Protocol

from flashviz.classroom.memory_store import MemoryStore
from flashviz.classroom.room import RoomState, Tally
from flashviz.classroom.signals import RoomSignals

URL_VARIABLE = "FLASHVIZ_ROOMS_URL"


class RoomStore(Protocol):
    signals: RoomSignals  # wakes this process's followers when a room changes

    def create(self) -> tuple[str, str]: ...
    def version(self, code: str) -> int | None: ...
    def state(self, code: str) -> RoomState | None: ...
    def is_lead(self, code: str, token: str) -> bool: ...
    def publish(self, code: str, token: str, params: Mapping[str, str]) -> int: ...
    def follow(self, code: str, session: str) -> int: ...
    def beat(self, code: str, session: str) -> bool: ...
    def followers(self, code: str) -> int: ...
    def ask(
        self, code: str, token: str, prompt: str, choices: Sequence[str], right: int
    ) -> int: ...
    def answer(self, code: str, session: str, question_id: int, choice: int) -> bool: ...
    def tally(self, code: str) -> Tally | None: ...
    def reveal(self, code: str, token: str) -> None: ...


_made: list[RoomStore] = []
_lock = threading.Lock()


def make_store(url: str | None) -> RoomStore:
    """A Redis store for a ``redis://`` URL, else a memory store."""
    if not url:
        return MemoryStore()
    from flashviz.classroom.redis_store import RedisStore  # redis only when asked for

    return RedisStore(url)


def room_store() -> RoomStore:
    """This process's store (``FLASHVIZ_ROOMS_URL`` read once)."""
    with _lock:
        if not _made:
            _made.append(make_store(os.environ.get(URL_VARIABLE)))
        return _made[0]
