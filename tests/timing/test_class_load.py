"""A class under load, small and bounded (``tests/tools/class_load_test.py``): a lecturer's
clicks reach every follower within 1 s at p95, each from the steps the followers hold (no
script run for any of them). Two processes sharing Redis are the browser tests'
(``tests/browser/test_browser_class_room.py``); the figures for 100 and 200 followers are
the tool's, in the README."""

from __future__ import annotations

import pytest

from tests.timing.test_load import _run
from tests.tools.class_load_test import P95_BOUND_MS, run_class, servers

FOLLOWERS, CLICKS = 12, 3


@pytest.mark.timeout(120)
def test_followers_see_each_click_within_a_second_without_a_script_run() -> None:
    with servers(1, None) as urls:
        result = _run(run_class(urls, FOLLOWERS, CLICKS, period_s=0.7, idle_s=0.5))
    print(result.line())
    assert result.errors == []
    assert len(result.latencies_ms) == FOLLOWERS * CLICKS
    assert result.p95_ms <= P95_BOUND_MS
    assert result.reruns == 0  # every step shown from the steps the followers held
