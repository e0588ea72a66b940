"""Waiting followers are woken by a change of their room, and only of theirs; a change
between a follower's check and its wait is not missed; the waiters are bounded."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from flashviz.classroom.signals import RoomSignals, TooManyWaitersError


async def _never() -> bool:
    return False


async def _already() -> bool:
    return True


def test_a_change_wakes_every_waiter_of_its_room_only() -> None:
    signals = RoomSignals()

    async def scene() -> list[bool]:
        waits = [asyncio.create_task(signals.wait(code, 5.0, _never)) for code in "AAB"]
        await asyncio.sleep(0.05)
        assert signals.waiting == 3
        started = time.perf_counter()
        threading.Thread(target=signals.notify, args=("A",)).start()  # a script's thread
        woken = await asyncio.wait_for(asyncio.gather(*waits[:2]), 1.0)
        assert time.perf_counter() - started < 0.5
        assert not waits[2].done()
        waits[2].cancel()
        return list(woken)

    assert asyncio.run(scene()) == [True, True]
    assert signals.waiting == 0


def test_a_wait_times_out_and_leaves_nothing_behind() -> None:
    signals = RoomSignals()
    assert asyncio.run(signals.wait("A", 0.05, _never)) is False
    assert signals.waiting == 0


def test_a_change_before_the_wait_is_seen_at_once() -> None:
    signals = RoomSignals()
    started = time.perf_counter()
    assert asyncio.run(signals.wait("A", 5.0, _already)) is True
    assert time.perf_counter() - started < 0.5 and signals.waiting == 0


def test_the_waiters_are_bounded() -> None:
    signals = RoomSignals(max_waiters=2)

    async def scene() -> None:
        waits = [asyncio.create_task(signals.wait("A", 5.0, _never)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(TooManyWaitersError):
            await signals.wait("A", 5.0, _never)
        signals.notify("A")
        assert await asyncio.gather(*waits) == [True, True]

    asyncio.run(scene())
    assert signals.waiting == 0
