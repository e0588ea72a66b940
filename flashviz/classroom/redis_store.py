"""Rooms in Redis, so that several Streamlit processes serve one room together.

Set ``FLASHVIZ_ROOMS_URL=redis://host:port/db``. A room is a hash ``fvroom:<code>`` (token,
version, the view's parameters and the question as JSON), its followers a sorted set
(session -> last seen) and the answers to each question a hash (session -> choice); every
key expires ``ROOM_IDLE_S`` after the room's last change or follower. Each change is
published on ``CHANNEL`` as "<code> <version>": one subscriber thread a process keeps the
versions its followers ask for in memory (no round trip) and wakes the followers waiting
on that room (``signals``); a version
not confirmed by Redis for ``VERSION_S`` is read again, so a lost message delays a follower
by seconds, never forever. The token is compared in Python in constant time. When Redis
cannot be reached every call raises ``RoomUnavailableError``: the room pauses with a
message, the app goes on.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any, ParamSpec, TypeVar

import redis

from flashviz.classroom.codes import new_code, new_token, tokens_match
from flashviz.classroom.room import (
    FOLLOWER_S,
    MAX_FOLLOWERS,
    MAX_ROOMS,
    ROOM_IDLE_S,
    Question,
    RoomError,
    RoomState,
    RoomUnavailableError,
    Tally,
    checked_choice,
    checked_params,
    checked_question,
)
from flashviz.classroom.signals import RoomSignals

CHANNEL = "fvrooms:changed"
ROOMS = "fvrooms"  # sorted set: code -> created (to bound the number of rooms)
VERSION_S = 3.0  # a cached version is trusted this long without a message
TIMEOUT_S = 1.0  # a Redis call that takes longer counts as Redis gone
UNAVAILABLE = "The class server (Redis) cannot be reached: following is paused, the app works on."

P = ParamSpec("P")
R = TypeVar("R")


def _reachable(method: Callable[P, R]) -> Callable[P, R]:
    """Redis errors become ``RoomUnavailableError`` with a message for the page."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except redis.RedisError as exc:
            raise RoomUnavailableError(UNAVAILABLE) from exc

    return call


def _text(value: object) -> str | None:
    """A value read from Redis as text (the client decodes; its types allow bytes too)."""
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _key(code: str, part: str = "") -> str:
    return f"fvroom:{code}{':' + part if part else ''}"


def _question(text: str | None) -> Question | None:
    if not text:
        return None
    data = json.loads(text)
    return Question(
        data["id"], data["prompt"], tuple(data["choices"]), data["right"], data["revealed"]
    )


class RedisStore:
    """Rooms in the Redis at ``url``, shared by every process that points at it."""

    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S, health_check_interval=10,
        )  # fmt: skip
        self._versions: dict[str, tuple[int, float]] = {}  # code -> (version, confirmed at)
        self._lock = threading.Lock()
        self._listener: Any = None
        self.signals = RoomSignals()  # this process's waiting followers

    # --- the subscriber: versions pushed by Redis ---------------------------------------

    def _on_change(self, message: dict[str, Any]) -> None:
        code, _, version = str(message["data"]).partition(" ")
        with self._lock:
            self._versions[code] = (int(version), time.monotonic())
        self.signals.notify(code)

    def _on_error(self, exc: BaseException, pubsub: Any, thread: Any) -> None:
        """Redis went away under the subscriber: forget the versions, retry after a pause."""
        with self._lock:
            self._versions.clear()
        time.sleep(1.0)

    def _listen(self) -> None:
        if self._listener is not None and self._listener.is_alive():
            return
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(**{CHANNEL: self._on_change})
        self._listener = pubsub.run_in_thread(
            sleep_time=0.2, daemon=True, exception_handler=self._on_error
        )

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        self._redis.close()

    # --- rooms ---------------------------------------------------------------------------

    def _touch(self, pipe: Any, code: str) -> None:
        for part in ("", "followers"):
            pipe.expire(_key(code, part), ROOM_IDLE_S)

    def _changed(self, pipe: Any, code: str) -> None:
        """Bump the version, publish it, keep the room alive (in ``pipe``)."""
        pipe.hincrby(_key(code), "version", 1)
        self._touch(pipe, code)

    def _publish(self, code: str) -> int:
        version = int(self._redis.hget(_key(code), "version") or 0)
        self._redis.publish(CHANNEL, f"{code} {version}")
        with self._lock:
            self._versions[code] = (version, time.monotonic())
        self.signals.notify(code)  # this process's followers at once, the others by Redis
        return version

    def _led(self, code: str, token: str) -> None:
        expected = _text(self._redis.hget(_key(code), "token"))
        if expected is None:
            raise RoomError(f"room {code} does not exist or has expired")
        if not tokens_match(token, expected):
            raise RoomError("only the lecturer of this room can do that")

    @_reachable
    def create(self) -> tuple[str, str]:
        now = time.time()
        self._redis.zremrangebyscore(ROOMS, "-inf", now - ROOM_IDLE_S)
        for member in self._redis.zrange(ROOMS, 0, -1):
            old = _text(member) or ""
            if not self._redis.exists(_key(old)):
                self._redis.zrem(ROOMS, old)
        if self._redis.zcard(ROOMS) >= MAX_ROOMS:
            raise RoomError(f"this server holds {MAX_ROOMS} classes already; try later")
        token = new_token()
        code = new_code()
        while not self._redis.hsetnx(_key(code), "token", token):
            code = new_code()
        with self._redis.pipeline() as pipe:
            pipe.hset(_key(code), mapping={"version": 1, "params": "[]", "question": ""})
            self._touch(pipe, code)
            pipe.zadd(ROOMS, {code: now})
            pipe.execute()
        return code, token

    @_reachable
    def version(self, code: str) -> int | None:
        self._listen()
        with self._lock:
            cached = self._versions.get(code)
        if cached is not None and time.monotonic() - cached[1] < VERSION_S:
            return cached[0]
        version = self._redis.hget(_key(code), "version")
        if version is None:
            return None
        with self._lock:
            self._versions[code] = (int(version), time.monotonic())
        return int(version)

    @_reachable
    def state(self, code: str) -> RoomState | None:
        data = self._redis.hgetall(_key(code))
        if not data or "version" not in data:
            return None
        params = tuple(tuple(p) for p in json.loads(data["params"]))
        return RoomState(int(data["version"]), params, _question(data.get("question")))  # type: ignore[arg-type]

    @_reachable
    def is_lead(self, code: str, token: str) -> bool:
        expected = _text(self._redis.hget(_key(code), "token"))
        return expected is not None and tokens_match(token, expected)

    @_reachable
    def publish(self, code: str, token: str, params: Mapping[str, str]) -> int:
        shown = json.dumps([list(p) for p in checked_params(params)])
        self._led(code, token)
        if self._redis.hget(_key(code), "params") == shown:
            return int(self._redis.hget(_key(code), "version") or 0)
        with self._redis.pipeline() as pipe:
            pipe.hset(_key(code), "params", shown)
            self._changed(pipe, code)
            pipe.execute()
        return self._publish(code)

    @_reachable
    def follow(self, code: str, session: str) -> int:
        followers, now = _key(code, "followers"), time.time()
        if not self._redis.exists(_key(code)):
            raise RoomError(f"room {code} does not exist or has expired")
        with self._redis.pipeline() as pipe:
            pipe.zremrangebyscore(followers, "-inf", now - FOLLOWER_S)
            pipe.zscore(followers, session)
            pipe.zcard(followers)
            _, seen, count = pipe.execute()
        if seen is None and count >= MAX_FOLLOWERS:
            raise RoomError(f"room {code} is full ({MAX_FOLLOWERS} students)")
        with self._redis.pipeline() as pipe:
            pipe.zadd(followers, {session: now})
            pipe.zcard(followers)
            self._touch(pipe, code)
            return int(pipe.execute()[1])

    @_reachable
    def beat(self, code: str, session: str) -> bool:
        followers, now = _key(code, "followers"), time.time()
        if not self._redis.exists(_key(code)):
            raise RoomError(f"room {code} does not exist or has expired")
        seen = self._redis.zscore(followers, session)
        if seen is None or now - float(seen) > FOLLOWER_S:
            return False
        with self._redis.pipeline() as pipe:
            pipe.zadd(followers, {session: now}, xx=True)  # only one the room counts
            self._touch(pipe, code)
            pipe.execute()
        return True

    @_reachable
    def followers(self, code: str) -> int:
        return int(self._redis.zcount(_key(code, "followers"), time.time() - FOLLOWER_S, "+inf"))

    @_reachable
    def ask(self, code: str, token: str, prompt: str, choices: Sequence[str], right: int) -> int:
        prompt, shown = checked_question(prompt, choices, right)
        self._led(code, token)
        last = _question(_text(self._redis.hget(_key(code), "question")))
        question = Question((last.id if last else 0) + 1, prompt, shown, right)
        with self._redis.pipeline() as pipe:
            pipe.hset(_key(code), "question", json.dumps(asdict(question)))
            self._changed(pipe, code)
            pipe.execute()
        self._publish(code)
        return question.id

    @_reachable
    def answer(self, code: str, session: str, question_id: int, choice: int) -> bool:
        state = self.state(code)
        if state is None:
            raise RoomError(f"room {code} does not exist or has expired")
        checked_choice(state.question, question_id, choice)
        answers = _key(code, f"answers:{question_id}")  # one hash a question: no stale answer
        first = bool(self._redis.hsetnx(answers, session, choice))
        self._redis.expire(answers, ROOM_IDLE_S)
        return first

    @_reachable
    def tally(self, code: str) -> Tally | None:
        state = self.state(code)
        if state is None or state.question is None:
            return None
        counts = [0] * len(state.question.choices)
        for choice in self._redis.hvals(_key(code, f"answers:{state.question.id}")):
            counts[int(choice)] += 1
        return Tally(state.question, tuple(counts))

    @_reachable
    def reveal(self, code: str, token: str) -> None:
        self._led(code, token)
        question = _question(_text(self._redis.hget(_key(code), "question")))
        if question is None:
            raise RoomError("no question is asked")
        with self._redis.pipeline() as pipe:
            pipe.hset(_key(code), "question", json.dumps(asdict(replace(question, revealed=True))))
            self._changed(pipe, code)
            pipe.execute()
        self._publish(code)
