"""A real server under simulated students (``tests/tools/load_test.py``), small and bounded.

Loopback only, three sessions and a few dozen clicks. Checks that each session sees only
its own problem, and that one Next click at the default problem costs the server at most
30 ms of CPU (process CPU time from /proc, so a busy machine does not make it fail the way
a wall-clock bound would).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.browser.conftest import SERVER_PIDS, streamlit_server
from tests.tools.load_test import Session, drive, server_cpu_s

CPU_MS_PER_CLICK = 30.0  # server CPU per click at the default problem (README, "Serving a class")

T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a loop of its own thread: the browser tests' Playwright keeps an
    event loop running in this one for the whole session."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not Path("/proc/self/stat").exists(),
    reason="reads process CPU time from /proc",
)


@pytest.fixture(scope="module")
def app_server() -> Iterator[tuple[str, int]]:
    with streamlit_server() as url:
        yield url, SERVER_PIDS[url]


@pytest.mark.timeout(120)
def test_sessions_clicking_at_once_each_see_only_their_own_problem(
    app_server: tuple[str, int],
) -> None:
    url, pid = app_server
    result = _run(drive(url, pid, sessions=3, seconds=2.0, period_s=0.25))
    print(result.line())
    assert result.errors == []
    assert result.clicks >= 3 * 6


async def _cpu_per_click_ms(url: str, pid: int, clicks: int) -> float:
    async with Session(url, 16) as s:  # the default problem: 16 x 16, d = 8, 4 x 4 tiles
        for _ in range(3):  # warm-up: the first runs of each code path
            await s.click_next()
        cpu0 = server_cpu_s(pid)
        for _ in range(clicks):
            await s.click_next()
        cpu = server_cpu_s(pid) - cpu0
        assert s.errors == []
    return cpu * 1000 / clicks


@pytest.mark.timeout(120)
def test_a_next_click_costs_the_server_at_most_30_ms_of_cpu(
    app_server: tuple[str, int],
) -> None:
    url, pid = app_server
    ms = min(_run(_cpu_per_click_ms(url, pid, clicks=15)) for _ in range(2))
    print(f"server CPU per Next click at the default problem: {ms:.1f} ms")
    assert ms <= CPU_MS_PER_CLICK
