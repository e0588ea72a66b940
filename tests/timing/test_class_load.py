"""A class under load, small and bounded (``tests/tools/class_load_test.py``).

Two app processes share a real Redis, the lecturer on one, half the followers on each: the
lecturer's clicks reach every follower within 1 s at p95 (the followers on the lecturer's
process are woken by it, the others through Redis), and a step the followers hold takes
no script run. One process alone is the browser tests' and the tool's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.classroom.redis_server import redis_server
from tests.timing.test_load import _run
from tests.tools.class_load_test import P95_BOUND_MS, run_class, servers

FOLLOWERS, CLICKS = 16, 3


@pytest.mark.timeout(240)
def test_two_processes_sharing_redis_serve_one_class(tmp_path: Path) -> None:
    with redis_server(tmp_path) as rooms, servers(2, rooms) as urls:
        result = _run(run_class(urls, FOLLOWERS, CLICKS, period_s=0.7, idle_s=0.5))
    print(result.line())
    assert result.errors == []
    assert len(result.latencies_ms) == FOLLOWERS * CLICKS  # both processes' followers
    assert result.p95_ms <= P95_BOUND_MS
    assert result.reruns == 0
