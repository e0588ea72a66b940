"""Wake the followers waiting on a room when its version moves.

A follower's browser holds one request open per room (``flashviz.app.room_routes``): the
request awaits ``RoomSignals.wait`` on the server's event loop and costs nothing until the
room changes. A store calls ``notify(code)`` after each change, from any thread (a
lecturer's script run, the Redis subscriber); every waiter of that room then answers at
once. The waiters are bounded (``MAX_WAITERS``): past that, ``wait`` refuses at once and
the browser asks again later.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

MAX_WAITERS = 2000  # open follower requests of one process, all rooms together


class TooManyWaitersError(RuntimeError):
    """The process holds ``MAX_WAITERS`` open requests already."""


class RoomSignals:
    def __init__(self, max_waiters: int = MAX_WAITERS) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}
        self._count = 0
        self._max = max_waiters

    @property
    def waiting(self) -> int:
        with self._lock:
            return self._count

    def notify(self, code: str) -> None:
        """Room ``code`` changed: answer everyone waiting on it (thread-safe)."""
        with self._lock:
            woken = self._waiters.pop(code, set())
            self._count -= len(woken)
        for loop, future in woken:
            loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, code: str, timeout_s: float, moved: Callable[[], Awaitable[bool]]) -> bool:
        """Until room ``code`` changes (True) or ``timeout_s`` passes (False). ``moved()``
        says whether it has changed already; it is asked once this waiter listens, so a
        change between the two is not missed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._lock:
            if self._count >= self._max:
                raise TooManyWaitersError(f"{self._max} followers are waiting already")
            self._waiters.setdefault(code, set()).add(entry)
            self._count += 1
        try:
            if await moved():
                return True
            await asyncio.wait_for(future, timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                waiters = self._waiters.get(code)
                if waiters is not None and entry in waiters:
                    waiters.discard(entry)
                    self._count -= 1
                    if not waiters:
                        del self._waiters[code]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
