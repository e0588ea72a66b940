"""The route a follower's browser waits on (``flashviz.app.room_routes``), called as
Starlette calls it: it answers at once when the room moved, when the lecturer changes the
view, or after its hold with the same version; hostile codes, versions and follower ids
get a 400 or 404, never a traceback; nothing a follower sends changes the room; an
unreachable store or too many waiters get a 503 with a retry time."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from starlette.requests import Request

from flashviz.app import room_routes
from flashviz.app.room_routes import room_changes, room_path
from flashviz.classroom.memory_store import MemoryStore
from flashviz.classroom.signals import RoomSignals
from flashviz.classroom.store import make_store

FOLLOWER = "0123456789abcdef"


def _get(code: str, query: str) -> tuple[int, dict[str, object]]:
    scope = {
        "type": "http", "method": "GET", "path": room_path(code), "headers": [],
        "query_string": query.encode(), "path_params": {"code": code},
    }  # fmt: skip
    response = asyncio.run(room_changes(Request(scope)))
    assert response.headers["cache-control"] == "no-store"
    return response.status_code, json.loads(response.body)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    made = MemoryStore()
    monkeypatch.setattr(room_routes, "room_store", lambda: made)
    monkeypatch.setattr(room_routes, "HOLD_S", 0.3)
    return made


def test_a_moved_room_answers_at_once_with_its_view(store: MemoryStore) -> None:
    code, token = store.create()
    version = store.publish(code, token, {"step": "3", "n_q": "24"})
    status, body = _get(code, f"after=0&follower={FOLLOWER}")
    assert status == 200
    assert body == {"version": version, "params": {"n_q": "24", "step": "3"}}


def test_a_waiting_follower_hears_of_the_lecturers_click_at_once(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, token = store.create()
    version = store.publish(code, token, {"step": "3"})
    threading.Timer(0.1, store.publish, (code, token, {"step": "4"})).start()
    monkeypatch.setattr(room_routes, "HOLD_S", 5.0)
    started = time.perf_counter()
    status, body = _get(code, f"after={version}&follower={FOLLOWER}")
    assert status == 200 and body["params"] == {"step": "4"}
    assert time.perf_counter() - started < 2.0  # not the 5 s hold


def test_an_unchanged_room_answers_after_the_hold(store: MemoryStore) -> None:
    code, token = store.create()
    version = store.publish(code, token, {"step": "3"})
    started = time.perf_counter()
    status, body = _get(code, f"after={version}&follower={FOLLOWER}")
    assert status == 200 and body["version"] == version
    assert 0.25 < time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    "code",
    ["../../etc/passwd", "<script>alert(1)</script>", "**bold**", "A" * 10_000, "ZZZZZ", ""],
)
def test_a_hostile_or_unknown_room_code_is_not_found(store: MemoryStore, code: str) -> None:
    store.create()
    status, body = _get(code, f"after=0&follower={FOLLOWER}")
    assert status == 404 and "error" in body


@pytest.mark.parametrize(
    "query",
    [
        "after=-1&follower=0123456789abcdef",
        "after=1e9&follower=0123456789abcdef",
        f"after={'9' * 5000}&follower=0123456789abcdef",
        "after=1&follower=<script>",
        "after=1&follower=" + "a" * 5000,
        "after=1",
        "",
    ],
)
def test_a_hostile_query_is_a_bad_request(store: MemoryStore, query: str) -> None:
    code, _ = store.create()
    assert _get(code, query)[0] == 400


def test_a_beat_keeps_a_counted_follower_and_adds_no_made_up_one(store: MemoryStore) -> None:
    code, token = store.create()
    version = store.publish(code, token, {"step": "3"})
    made_up = [f"{n:016x}" for n in range(300)]  # a script filling the room with beats
    for follower in made_up:
        assert _get(code, f"after=0&follower={follower}&beat=1")[0] == 409
    assert store.followers(code) == 0
    store.follow(code, FOLLOWER)  # the student's script run counted it
    status, _ = _get(code, f"after=0&follower={FOLLOWER}&beat=1&step=9&lead={token}")
    assert status == 200 and store.followers(code) == 1
    state = store.state(code)  # nothing a follower sends changes the room
    assert state is not None and state.version == version and dict(state.params) == {"step": "3"}


def test_too_many_waiters_are_told_to_retry(store: MemoryStore) -> None:
    code, token = store.create()
    version = store.publish(code, token, {"step": "3"})
    store.signals = RoomSignals(max_waiters=0)
    status, body = _get(code, f"after={version}&follower={FOLLOWER}")
    assert status == 503 and body["retry_ms"] == room_routes.RETRY_MS


def test_an_unreachable_store_is_told_to_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = make_store("redis://127.0.0.1:1/0")  # nobody listens there
    monkeypatch.setattr(room_routes, "room_store", lambda: gone)
    status, body = _get("K7HRW", f"after=1&follower={FOLLOWER}&beat=1")
    assert status == 503 and "cannot be reached" in str(body["error"])
