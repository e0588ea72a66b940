"""Load test of a class: one lecturer stepping, many students following, over websockets.

No browser: each session speaks Streamlit's own protocol, as ``load_test.py`` does. The
lecturer opens the stepper, presses "Start a class", then clicks Next every ``--period``
seconds. Each follower opens ``?room=<code>`` and then behaves as its browser's
``room_follow.js`` and ``step_view.js`` do: it waits on the room's route over HTTP; a new
step its step panel holds is shown at once (the time the route's answer arrives), and
told to the server when its window runs short; anything else reruns its script (the time
the new step's heading arrives). A click's latency for a follower is from the lecturer's
click being sent to that moment.

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
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import ClientConnection

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.browser.conftest import SERVER_PIDS, streamlit_servers  # noqa: E402
from tests.tools.load_test import (  # noqa: E402
    HEADING,
    Session,
    percentile,
    server_cpu_s,
    stream,
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
        if run.query:  # the URL as the app wrote it (the problem's every parameter), as a
            # browser keeps it for the next click
            self.query = "&".join(p for p in run.query.split("&") if not p.startswith("step="))
        return self.code


def _rerun(query: str, page_hash: str | None = None, fragment: str = "") -> BackMsg:
    msg = BackMsg()
    msg.rerun_script.query_string = query
    msg.rerun_script.page_script_hash = page_hash or ""
    msg.rerun_script.fragment_id = fragment
    return msg


class Http:
    """One keep-alive HTTP/1.1 connection for a follower's long polls (as a browser keeps)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str) -> tuple[int, dict[str, Any]]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, json.loads(await reader.readexactly(length))

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()


@dataclass
class Follower:
    """A student's browser on ``?room=<code>``, as ``room_follow.js`` and ``step_view.js``
    behave: it waits on the room's route; a new step whose figures it holds is shown at
    once (noted when the answer arrives: the browser's redraw is the browser tests'), and
    told to the server when fewer than ``ahead`` steps are left ahead; anything else reruns
    the script, and the step is noted when its heading arrives."""

    url: str
    code: str
    ahead: int
    seen: dict[int, float] = field(default_factory=dict)  # step -> when it was shown
    alone: int = 0  # steps shown with no script run
    reruns: int = 0  # steps that took a script run
    errors: list[str] = field(default_factory=list)
    query: str = ""
    page_hash: str = ""
    window: set[int] = field(default_factory=set)  # steps the step panel holds
    buttons: tuple[str, str] | None = None  # (widget id, fragment id) of the step buttons
    room: dict[str, Any] = field(default_factory=dict)  # room_follow.js's data
    version: int = 0
    view: dict[str, str] = field(default_factory=dict)
    _ws: ClientConnection | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def open(self) -> None:
        self._ws = await stream(self.url)
        self.query = f"room={self.code}"
        await self._ws.send(_rerun(self.query).SerializeToString())
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._wait())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks)
        if self._ws is not None:
            await self._ws.close()

    def _part(self, msg: ForwardMsg) -> None:
        el = msg.delta.new_element
        if el.WhichOneof("type") != "bidi_component":
            return
        data = json.loads(el.bidi_component.json or "null")
        if not isinstance(data, dict):
            return
        if "follower" in data:
            self.room = data
            if data["version"] is not None:
                self.version, self.view = int(data["version"]), dict(data["params"])
        elif data.get("part") == "heading":
            self.window = {int(s) for s in data["texts"]}
            step = int(data["step"])
            if HEADING.match(data["texts"][str(step)]):
                self.seen.setdefault(step, time.perf_counter())
        elif data.get("part") == "buttons":
            self.buttons = (el.bidi_component.id, msg.delta.fragment_id)

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
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                self._part(msg)
                if msg.delta.new_element.WhichOneof("type") == "exception":
                    self.errors.append(f"exception: {msg.delta.new_element.exception.message}")

    async def _wait(self) -> None:
        """room_follow.js's loop: ask, then move alone or rerun."""
        assert self._ws is not None
        while not self.room:
            await asyncio.sleep(0.05)
        http, beat = Http(self.url), 0.0
        try:
            while True:
                path = f"{self.room['url']}?after={self.version}&follower={self.room['follower']}"
                if time.monotonic() - beat > 5.0:
                    path, beat = path + "&beat=1", time.monotonic()
                status, body = await http.get(path)
                if status != 200:
                    self.errors.append(f"the room answered {status}: {body}")
                    await asyncio.sleep(2.0)
                    continue
                if body["version"] == self.version:
                    continue
                self.version, params = body["version"], body["params"]
                await self._follow(params)
        finally:
            await http.close()

    async def _follow(self, params: dict[str, str]) -> None:
        assert self._ws is not None
        rest = {k: v for k, v in params.items() if k != "step"}
        step = int(params.get("step", -1))
        alone = (
            rest == {k: v for k, v in self.view.items() if k != "step"}
            and params.get("step") != self.view.get("step")
            and step in self.window
        )
        if not alone:  # the trigger: the script applies the room's view
            self.reruns += 1
            await self._ws.send(_rerun(self.query, self.page_hash).SerializeToString())
            return
        self.alone += 1
        self.view = params
        self.seen.setdefault(step, time.perf_counter())
        if step + self.ahead not in self.window and self.buttons:  # tell the server
            widget_id, fragment = self.buttons
            msg = _rerun(self.query, self.page_hash, fragment)
            widget = msg.rerun_script.widget_states.widgets.add()
            widget.id = widget_id
            widget.json_value = json.dumps({"move": {"step": step, "seq": f"f.{step}"}})
            await self._ws.send(msg.SerializeToString())


@dataclass
class ClassResult:
    followers: int
    servers: int
    clicks: int
    latencies_ms: list[float]
    cpu_ms_per_click: float  # all servers, over the clicking phase
    idle_ms_per_follower_s: float  # server CPU per idle follower per second
    errors: list[str]
    reruns: int = 0  # (follower, click) pairs that took a script run, not a move alone

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
            f"{self.idle_ms_per_follower_s:.2f} ms per idle follower per second, "
            f"{self.reruns} script reruns: "
            f"{verdict}{errors}"
        )


async def run_class(
    urls: list[str],
    followers: int,
    clicks: int,
    period_s: float = 2.0,
    idle_s: float = 15.0,
    seed: int = 0,
) -> ClassResult:
    """A lecturer on ``urls[0]`` starts a class; ``followers`` students join, spread over
    ``urls``; after an idle spell the lecturer clicks Next ``clicks`` times."""
    pids = [SERVER_PIDS[u] for u in urls]

    def cpu() -> float:
        return sum(server_cpu_s(p) for p in pids)

    lecturer = Lecturer(urls[0], N)
    async with lecturer:
        code = await lecturer.start_class()
        draw = random.Random(seed)  # each follower's refill point, as step_view.js draws it
        crowd = [
            Follower(urls[i % len(urls)], code, ahead=draw.randint(1, 3)) for i in range(followers)
        ]
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
        idle * 1000 / max(followers, 1), errors, sum(f.reruns for f in crowd),
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
    with streamlit_servers(count, env=env) as urls:
        yield urls


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
