"""One student cycling large problems across the pages, on a real server with a small cache
budget: the server's memory stays within the budget plus the one problem being computed, and
another student's Next clicks stay as quick as under the load test's bound meanwhile. In
Chromium, a student typing seeds into one page is told when their own share is full.

Each load is a new tab (a session of its own, ``tests/tools/load_test.py: open_page``), as when
a student edits the URL: only the server-wide budget bounds it, not the session's share.
Memory is the server's resident size from /proc (its peak, ``VmHWM``, measured from after
every page has been opened once, so the imports are not counted).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from flashviz.lab.budget import MEMORY_BUDGET
from tests.browser.conftest import SERVER_PIDS, _missing_browser, streamlit_server
from tests.browser.helpers import wait_for_heading
from tests.timing.test_load import _run
from tests.tools.load_test import Session, open_page, percentile

if TYPE_CHECKING:
    from playwright.sync_api import Browser

BUDGET_MIB, SHARE_MIB = 300, 256  # a session's share holds one problem's budget
# Another student's Next while the largest problems compute in the same process: a click
# can wait for a big NumPy call of theirs to let go of the GIL (p95 185-280 ms measured on
# the 2-core machine), so the bound is a responsive half second.
ATTACKED_P95_MS = 500.0
MIB = 2**20
BIG = "n_q=512&n_k=384&head_dim=256&block_q=32&block_kv=8&seed={seed}"
LOADS = [  # (page, query): each near one problem's budget, three seeds each
    ("", BIG + "&bug=no_rescale_o"),
    ("backward", "n_q=384&n_k=512&head_dim=256&block_q=128&block_kv=4&seed={seed}"),
    ("fa1", BIG),
    ("precision", "n_q=256&n_k=256&head_dim=128&block_q=32&block_kv=16&seed={seed}"),
]
SEEDS = (1, 2, 3)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not Path("/proc/self/status").exists(),
    reason="reads the server's memory from /proc",
)


def _mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


@pytest.fixture(scope="module")
def small_budget_server() -> Iterator[tuple[str, int]]:
    env = {"FLASHVIZ_CACHE_MIB": str(BUDGET_MIB), "FLASHVIZ_SESSION_CACHE_MIB": str(SHARE_MIB)}
    with streamlit_server(env=env) as url:
        yield url, SERVER_PIDS[url]


async def _attack_while_a_student_steps(url: str, pid: int) -> tuple[list[str], list[float]]:
    """The loads one after another while another session clicks Next every 0.25 s; the
    loads' exceptions and the other session's response times (ms)."""
    errors: list[str] = []
    done = asyncio.Event()

    async def attacker() -> None:
        for page, query in LOADS:
            for seed in SEEDS:
                run = await open_page(url, page, query.format(seed=seed))
                if run.exception:
                    errors.append(f"/{page}?{query.format(seed=seed)}: {run.exception}")
                print(f"/{page} seed {seed}: RSS {_mib(pid, 'VmRSS'):.0f} MiB", flush=True)
        done.set()

    async with Session(url, 16) as student:
        for _ in range(3):  # warm-up: the first runs of each code path
            await student.click_next()
        student.times_ms.clear()

        async def steps() -> None:
            while not done.is_set():
                await student.click_next()
                await asyncio.sleep(0.25)

        await asyncio.gather(attacker(), steps())
        errors += student.errors
    return errors, student.times_ms


@pytest.mark.timeout(240)
def test_large_problems_on_every_page_keep_the_server_within_its_budget(
    small_budget_server: tuple[str, int],
) -> None:
    url, pid = small_budget_server
    for page, _ in LOADS:  # every page once at its default problem: the imports
        _run(open_page(url, page, ""))
    base = _mib(pid, "VmRSS")
    errors, times_ms = _run(_attack_while_a_student_steps(url, pid))
    peak, end = _mib(pid, "VmHWM") - base, _mib(pid, "VmRSS") - base
    bound = BUDGET_MIB + MEMORY_BUDGET / MIB  # the cache, and the problem being computed
    p95 = percentile(times_ms, 95)
    print(
        f"server memory over {base:.0f} MiB: peak +{peak:.0f}, end +{end:.0f} MiB (bound "
        f"{bound:.0f}); the other student's Next: {len(times_ms)} clicks, p95 {p95:.0f} ms"
    )
    assert errors == []
    assert peak <= bound
    assert end <= BUDGET_MIB + 64  # what the cache holds, and little else, once it is over
    assert len(times_ms) >= 5 and p95 < ATTACKED_P95_MS


def test_a_student_typing_seeds_is_told_on_screen_when_their_share_is_full(
    small_budget_server: tuple[str, int], browser: Browser
) -> None:
    reason = _missing_browser()
    if reason:
        pytest.skip(reason)
    url, _ = small_budget_server
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        page.goto(f"{url}/backward?{LOADS[1][1].format(seed=1)}")
        wait_for_heading(page, "Step 0 of")
        box = page.locator("input[aria-label^='seed']").first
        box.fill("2")
        box.press("Enter")
        toast = page.get_by_test_id("stToast").filter(has_text="share of the server")
        toast.wait_for(timeout=60_000)
        text = toast.inner_text()
        assert f"{SHARE_MIB} MiB of {BUDGET_MIB} MiB" in text and "recomputed" in text, text
        box_ = toast.bounding_box()
        assert box_ is not None and box_["x"] >= 0 and box_["x"] + box_["width"] <= 1280
        assert box_["y"] >= 0 and box_["y"] + box_["height"] <= 720
    finally:
        context.close()
