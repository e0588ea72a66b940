"""Load test of a class: one lecturer stepping, many students following, over websockets.

No browser: each session speaks Streamlit's own protocol, as ``load_test.py`` does. The
lecturer opens the stepper, presses "Start a class", then clicks Next every ``--period``
seconds. Each follower opens ``?room=<code>`` and behaves as a browser does: it reruns every
fragment the server asks to rerun on a timer (``auto_rerun``), at its interval, and records
when the step heading of each new step arrives. A click's latency for a follower is from the
lecturer's click being sent to that follower receiving the new step's heading and charts
(one script run sends them together).

With ``--servers 2`` and ``--redis URL`` two app processes share the rooms through Redis:
the lecturer and half the followers on the first, the other half on the second.

Run: ``python tests/tools/class_load_test.py [--followers 10 50 100] [--clicks 10]``. It
prints per follower count: p50 / p95 / max latency, the server CPU per lecturer click (all
processes, every follower's work included) and the CPU of an idle follower (per second).
``tests/timing/test_class_load.py`` runs a small, bounded version in the suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.browser.conftest import SERVER_PIDS, streamlit_server  # noqa: E402
from tests.tools.load_test import (  # noqa: E402
    Run,
    Session,
    _read,
    percentile,
    server_cpu_s,
)

P95_BOUND_MS = 1000.0
CODE = re.compile(r"Class code \*\*([A-Z0-9]+)\*\*")
N = 24  # the lecturer's problem: 24 x 24, 4 x 4 tiles


class Lecturer(Session):
    """The stepper on an N x N problem, then "Start a class"; ``code``: the room's."""

    code = ""

    async def start_class(self) -> str:
        opened = await self._run(_rerun(self.query + f"&step={self.step}", self.page_hash))
        button = opened.buttons.get("class_start")
        if button is None:
            raise RuntimeError("no 'Start a class' button")
        msg = _rerun(self.query + f"&step={self.step}", self.page_hash)
        widget = msg.rerun_script.widget_states.widgets.add()
        widget.id, widget.trigger_value = button, True
        run = await self._run(msg)
        found = [m[1] for body in run.markdown if (m := CODE.search(body))]
        if not found:
            raise RuntimeError("starting a class showed no class code")
        self.code = found[0]
        return self.code


def _rerun(query: str, page_hash: str | None = None, fragment: str = "") -> BackMsg:
    msg = BackMsg()
    msg.rerun_script.query_string = query
    msg.rerun_script.page_script_hash = page_hash or ""
    msg.rerun_script.fragment_id = fragment
    return msg


@dataclass
class Follower:
    """A student's browser on ``?room=<code>``: answers the server's timers, keeps the URL
    and page the server sets, and notes when each step's heading arrived."""

    url: str
    code: str
    seen: dict[int, float] = field(default_factory=dict)  # step -> when its heading came
    timers: dict[str, float] = field(default_factory=dict)  # fragment id -> interval (s)
    errors: list[str] = field(default_factory=list)
    query: str = ""
    page_hash: str = ""
    _ws: ClientConnection | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def open(self) -> None:
        ws_url = self.url.replace("http://", "ws://") + "/_stcore/stream"
        self._ws = await connect(
            ws_url, subprotocols=[Subprotocol("streamlit")], max_size=None, compression=None
        )
        self.query = f"room={self.code}"
        await self._ws.send(_rerun(self.query).SerializeToString())
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._tick())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks)
        if self._ws is not None:
            await self._ws.close()

    async def _listen(self) -> None:
        assert self._ws is not None
        async for payload in self._ws:
            msg = ForwardMsg()
            msg.ParseFromString(payload)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = msg.new_session.page_script_hash
            elif kind == "page_info_changed":
                self.query = msg.page_info_changed.query_string
            elif kind == "auto_rerun":
                self.timers[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
            elif kind == "stop_auto_rerun":
                for fragment in msg.stop_auto_rerun.fragment_ids:
                    self.timers.pop(fragment, None)
            elif kind == "delta":
                run = Run()
                _read(msg, run)
                for step, _last in run.headings:
                    self.seen.setdefault(step, time.perf_counter())
                if run.exception:
                    self.errors.append(f"exception: {run.exception}")

    async def _tick(self) -> None:
        """The browser's ``run_every`` timers (one loop at the shortest interval asked)."""
        assert self._ws is not None
        due: dict[str, float] = {}
        while True:
            now = time.monotonic()
            for fragment, interval in list(self.timers.items()):
                if now >= due.setdefault(fragment, now + interval):
                    due[fragment] = now + interval
                    msg = _rerun(self.query, self.page_hash, fragment)
                    msg.rerun_script.is_auto_rerun = True
                    await self._ws.send(msg.SerializeToString())
            await asyncio.sleep(0.05)


@dataclass
class ClassResult:
    followers: int
    servers: int
    clicks: int
    latencies_ms: list[float]
    cpu_ms_per_click: float  # all servers, over the clicking phase
    idle_ms_per_follower_s: float  # server CPU per idle follower per second
    errors: list[str]

    @property
    def p95_ms(self) -> float:
        return percentile(self.latencies_ms, 95) if self.latencies_ms else float("inf")

    @property
    def sustained(self) -> bool:
        return not self.errors and self.p95_ms <= P95_BOUND_MS

    def line(self) -> str:
        lat = self.latencies_ms or [float("inf")]
        verdict = "sustained" if self.sustained else "NOT sustained"
        errors = f" ({len(self.errors)} errors: {self.errors[0]})" if self.errors else ""
        return (
            f"{self.followers:3d} followers on {self.servers} process(es): {self.clicks} clicks, "
            f"latency p50 {statistics.median(lat):.0f} ms, p95 {self.p95_ms:.0f} ms, max "
            f"{max(lat):.0f} ms; server CPU {self.cpu_ms_per_click:.0f} ms per click, "
            f"{self.idle_ms_per_follower_s:.2f} ms per idle follower per second: "
            f"{verdict}{errors}"
        )


async def run_class(
    urls: list[str], followers: int, clicks: int, period_s: float = 2.0, idle_s: float = 5.0
) -> ClassResult:
    """A lecturer on ``urls[0]`` starts a class; ``followers`` students join, spread over
    ``urls``; after an idle spell the lecturer clicks Next ``clicks`` times."""
    pids = [SERVER_PIDS[u] for u in urls]

    def cpu() -> float:
        return sum(server_cpu_s(p) for p in pids)

    lecturer = Lecturer(urls[0], N)
    async with lecturer:
        code = await lecturer.start_class()
        crowd = [Follower(urls[i % len(urls)], code) for i in range(followers)]
        try:
            for f in crowd:
                await f.open()
            await _until(lambda: all(0 in f.seen for f in crowd), 60.0)
            await asyncio.sleep(1.0)
            idle0, started = cpu(), time.perf_counter()
            await asyncio.sleep(idle_s)
            idle = (cpu() - idle0) / (time.perf_counter() - started)
            sent: dict[int, float] = {}
            cpu0 = cpu()
            for _ in range(clicks):
                sent[lecturer.step + 1] = time.perf_counter()
                await lecturer.click_next()
                step = lecturer.step
                await _until(lambda s=step: all(s in f.seen for f in crowd), 30.0)
                await asyncio.sleep(max(0.0, period_s - (time.perf_counter() - sent[step])))
            spent = cpu() - cpu0 - idle * period_s * clicks
        finally:
            for f in crowd:
                await f.close()
    latencies = [(f.seen[s] - t) * 1000 for f in crowd for s, t in sent.items() if s in f.seen]
    errors = [e for f in crowd for e in f.errors] + lecturer.errors
    missing = sum(s not in f.seen for f in crowd for s in sent)
    if missing:
        errors.append(f"{missing} (follower, step) pairs never arrived")
    return ClassResult(
        followers, len(urls), clicks, latencies, spent * 1000 / max(clicks, 1),
        idle * 1000 / max(followers, 1), errors,
    )  # fmt: skip


async def _until(done: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.02)


@contextlib.contextmanager
def servers(count: int, rooms_url: str | None) -> Iterator[list[str]]:
    """``count`` app processes, sharing ``rooms_url`` (Redis) when given."""
    env = {"FLASHVIZ_ROOMS_URL": rooms_url} if rooms_url else None
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(streamlit_server(env=env)) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--followers", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--period", type=float, default=2.0)
    parser.add_argument("--servers", type=int, default=1)
    parser.add_argument("--redis", default=None, help="redis:// URL shared by the servers")
    args = parser.parse_args()
    if args.servers > 1 and not args.redis:
        parser.error("several servers share rooms through Redis: give --redis")
    with servers(args.servers, args.redis) as urls:
        for n in args.followers:
            result = asyncio.run(run_class(urls, n, args.clicks, args.period))
            print(result.line(), flush=True)


if __name__ == "__main__":
    main()
