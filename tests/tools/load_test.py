"""Load test: simulated students clicking Next on one real server, through its websocket.

No browser: each session speaks Streamlit's own protocol (``BackMsg`` / ``ForwardMsg``
protobufs from ``streamlit.proto``) over the ``websockets`` client that ships with
Streamlit. A session opens the stepper on its own problem (its own ``n_q``), then clicks
Next once a second, as the browser does: a ``rerun_script`` BackMsg with the Next
button's trigger and the stepper fragment's id. Its response time is from the click to
``script_finished``. Every session checks that what comes back is its own problem (the
step heading's last step and the tile map's title), i.e. that sessions are isolated.

Run: ``python tests/tools/load_test.py [--sessions 5 10 20 40] [--seconds 20]`` starts
``streamlit run app.py`` on a free loopback port, drives it, and prints per session count:
clicks, p50 / p95 response, server CPU per click (from /proc), kB sent per click, and whether
p95 < 250 ms.
``tests/timing/test_load.py`` runs a small, bounded version in the suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flashviz.app.stepper.step_view import GROUP  # noqa: E402
from tests.browser.conftest import SERVER_PIDS, streamlit_server  # noqa: E402

P95_BOUND_MS = 250.0
RUN_TIMEOUT_S = 60.0  # a script run that answers later counts as an error
HEADING = re.compile(r"^Step (\d+) of (\d+)")
TILE_MAP_TITLE = re.compile(r'"Tile map: all (\d+) x (\d+) scores')
# A problem per session: n_q = n_k = 16 + 4 s, d = 8, 4 x 4 tiles: 24 + 10 s steps in all.
PROBLEM = "n_q={n}&n_k={n}&head_dim=8&block_q=4&block_kv=4"


def problem_size(index: int) -> int:
    return 16 + 4 * (index % 8)


def last_step(n: int, block: int = 4) -> int:
    """Last step index of an n x n problem, no mask: per Q block a load, its tiles, a write."""
    blocks = -(-n // block)
    return blocks * (blocks + 2) - 1


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its threads, from /proc (Linux)."""
    fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """What one script run sent back."""

    headings: list[tuple[int, int]] = field(default_factory=list)  # (step, last)
    tile_maps: list[tuple[int, int]] = field(default_factory=list)  # (n_q, n_k) in its title
    next_button: str | None = None  # widget id of Next
    fragment_id: str | None = None  # the fragment the Next button lives in
    page_hash: str | None = None
    exception: str | None = None
    received_bytes: int = 0  # websocket payload of the run's ForwardMsgs
    buttons: dict[str, str] = field(default_factory=dict)  # st.button key -> widget id
    markdown: list[str] = field(default_factory=list)  # bodies of st.markdown
    query: str | None = None  # the URL's query string as the run left it


def _read(msg: ForwardMsg, run: Run) -> None:
    """The stepper's parts are components (``flashviz/app/stepper/step_view.py``): their data holds
    the step shown, its heading and figure JSON; the buttons part takes the moves."""
    kind = msg.WhichOneof("type")
    if kind == "new_session":
        run.page_hash = msg.new_session.page_script_hash
    elif kind == "page_info_changed":
        run.query = msg.page_info_changed.query_string
    elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
        el = msg.delta.new_element
        which = el.WhichOneof("type")
        if which == "bidi_component":
            data = json.loads(el.bidi_component.json or "null")
            if not isinstance(data, dict) or data.get("group") != GROUP:
                return
            shown = str(data["step"])
            if data["part"] == "heading" and (m := HEADING.match(data["texts"][shown])):
                run.headings.append((int(m[1]), int(m[2])))
            elif data["part"] == "buttons":
                run.next_button = el.bidi_component.id
                run.fragment_id = msg.delta.fragment_id or None
            elif data["part"] == "tile_map" and (m := TILE_MAP_TITLE.search(data["figs"][shown])):
                run.tile_maps.append((int(m[1]), int(m[2])))  # a regex: parsing costs more
        elif which == "exception":
            run.exception = el.exception.message
        elif which == "button":
            run.buttons[el.button.id.rsplit("-", 1)[-1]] = el.button.id
        elif which == "markdown":
            run.markdown.append(el.markdown.body)


def stream(url: str) -> connect:
    """Streamlit's websocket of the app at ``url`` (``http://...``), opened as its frontend
    opens it: await it, or use it as an async context manager."""
    ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
    return connect(ws_url, subprotocols=[Subprotocol("streamlit")], max_size=None, compression=None)


async def script_run(ws: Any, msg: BackMsg, timeout_s: float = RUN_TIMEOUT_S) -> Run:
    """Send a BackMsg and collect ForwardMsgs until the script run finishes."""
    await ws.send(msg.SerializeToString())
    run = Run()
    async with asyncio.timeout(timeout_s):
        while True:
            payload = await ws.recv()
            run.received_bytes += len(payload)
            fwd = ForwardMsg()
            fwd.ParseFromString(payload)
            _read(fwd, run)
            if fwd.WhichOneof("type") == "script_finished":
                return run


class Session:
    """One simulated student: a websocket to the server, the stepper on its own problem."""

    def __init__(self, url: str, n: int) -> None:
        self.url = url
        self.n = n
        self.query = PROBLEM.format(n=n)
        self.page_hash: str | None = None
        self.next_button: str | None = None
        self.fragment_id: str | None = None
        self.step = 0
        self.times_ms: list[float] = []
        self.received_bytes: list[int] = []  # per click
        self.errors: list[str] = []
        self._ws: ClientConnection | None = None

    async def __aenter__(self) -> Session:
        self._ws = await stream(self.url)
        msg = BackMsg()
        msg.rerun_script.query_string = self.query + "&step=0"
        run = await self._run(msg)
        self.page_hash, self.next_button = run.page_hash, run.next_button
        self.fragment_id = run.fragment_id
        self._check(run, expect_step=0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._ws is not None, "the session was never opened"
        await self._ws.close()

    async def _run(self, msg: BackMsg, timeout_s: float = RUN_TIMEOUT_S) -> Run:
        return await script_run(self._ws, msg, timeout_s)

    def _check(self, run: Run, expect_step: int) -> None:
        if run.exception:
            self.errors.append(f"exception: {run.exception}")
        want = (expect_step, last_step(self.n))
        if run.headings != [want]:
            self.errors.append(f"heading {run.headings}, expected {[want]}")
        if run.tile_maps != [(self.n, self.n)]:
            self.errors.append(f"tile maps of {run.tile_maps}, expected {[(self.n, self.n)]}")
        if self.next_button is None or self.fragment_id is None:
            self.errors.append("no Next button inside a fragment")

    async def click_next(self) -> float:
        """Click Next as the browser does (``frontend/step_view.js``: the buttons part's
        state ``{"move": {"step", "seq"}}``); returns the response time in ms."""
        msg = BackMsg()
        rerun = msg.rerun_script
        rerun.query_string = self.query + f"&step={self.step}"
        rerun.page_script_hash = self.page_hash or ""
        rerun.fragment_id = self.fragment_id or ""
        widget = rerun.widget_states.widgets.add()
        widget.id = self.next_button or ""
        move = {"step": min(self.step + 1, last_step(self.n)), "seq": f"{self.n}.{self.step}"}
        widget.json_value = json.dumps({"move": move})
        started = time.perf_counter()
        run = await self._run(msg)
        elapsed = (time.perf_counter() - started) * 1000
        self.step = min(self.step + 1, last_step(self.n))
        self._check(run, expect_step=self.step)
        self.times_ms.append(elapsed)
        self.received_bytes.append(run.received_bytes)
        return elapsed


async def open_page(url: str, page: str, query: str, timeout_s: float = RUN_TIMEOUT_S) -> Run:
    """Open ``<url>/<page>?<query>`` as a new browser tab does: a session of its own, one run."""
    async with stream(url) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.page_name = page
        return await script_run(ws, msg, timeout_s)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


@dataclass
class Result:
    sessions: int
    clicks: int
    p50_ms: float
    p95_ms: float
    cpu_ms_per_click: float
    kb_per_click: float  # sent to the browser
    errors: list[str]

    @property
    def sustained(self) -> bool:
        return not self.errors and self.p95_ms < P95_BOUND_MS

    def line(self) -> str:
        verdict = "sustained" if self.sustained else "NOT sustained"
        errors = f" ({len(self.errors)} errors: {self.errors[0]})" if self.errors else ""
        return (
            f"{self.sessions:3d} sessions: {self.clicks} clicks, response p50 {self.p50_ms:.0f} "
            f"ms, p95 {self.p95_ms:.0f} ms, server CPU {self.cpu_ms_per_click:.1f} ms per click, "
            f"{self.kb_per_click:.0f} kB sent per click: {verdict}{errors}"
        )


async def drive(url: str, pid: int, sessions: int, seconds: float, period_s: float = 1.0) -> Result:
    """``sessions`` students, each clicking Next every ``period_s`` for ``seconds``."""
    async with contextlib.AsyncExitStack() as stack:
        opened = [
            await stack.enter_async_context(Session(url, problem_size(s))) for s in range(sessions)
        ]
        for s in opened:  # one warm-up click each (first run of each code path)
            await s.click_next()
            s.times_ms.clear()
            s.received_bytes.clear()
        cpu0 = server_cpu_s(pid)

        async def student(s: Session, offset: float) -> None:
            await asyncio.sleep(offset)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                started = time.monotonic()
                try:
                    await s.click_next()
                except TimeoutError:
                    s.errors.append(f"no answer to a click in {RUN_TIMEOUT_S:.0f} s")
                    return
                await asyncio.sleep(max(0.0, period_s - (time.monotonic() - started)))

        await asyncio.gather(*(student(s, period_s * n / sessions) for n, s in enumerate(opened)))
        cpu = server_cpu_s(pid) - cpu0
    times = [t for s in opened for t in s.times_ms]
    return Result(
        sessions=sessions,
        clicks=len(times),
        p50_ms=statistics.median(times),
        p95_ms=percentile(times, 95),
        cpu_ms_per_click=cpu * 1000 / len(times),
        kb_per_click=sum(b for s in opened for b in s.received_bytes) / 1000 / len(times),
        errors=[f"session n={s.n}: {e}" for s in opened for e in s.errors],
    )


@contextlib.contextmanager
def server() -> Iterator[tuple[str, int]]:
    """``streamlit run app.py`` on a free loopback port: (URL, PID)."""
    with streamlit_server() as url:
        yield url, SERVER_PIDS[url]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 5, 10, 20, 30, 40])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with server() as (url, pid):
        for n in args.sessions:
            result = asyncio.run(drive(url, pid, n, args.seconds))
            print(result.line(), flush=True)


if __name__ == "__main__":
    main()
