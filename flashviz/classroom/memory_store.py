"""Rooms in this process: a dict behind one lock (every Streamlit session is a thread).

The default store: nothing to install. A follower waits on ``signals`` for the room's next
version and asks for its state only when the version moved. Idle rooms are
dropped when a room is created or looked up after ``ROOM_IDLE_S``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from flashviz.classroom.codes import new_code, new_token, tokens_match
from flashviz.classroom.room import (
    FOLLOWER_S,
    MAX_FOLLOWERS,
    MAX_ROOMS,
    ROOM_IDLE_S,
    Question,
    RoomError,
    RoomState,
    Tally,
    checked_choice,
    checked_params,
    checked_question,
)
from flashviz.classroom.signals import RoomSignals


@dataclass
class _Room:
    token: str
    state: RoomState
    touched: float
    followers: dict[str, float] = field(default_factory=dict)  # session -> last seen
    answers: dict[str, int] = field(default_factory=dict)  # session -> choice


class MemoryStore:
    """Rooms of one process. ``clock`` is injectable for the expiry tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rooms: dict[str, _Room] = {}
        self.signals = RoomSignals()  # the followers waiting on a room's next version

    def _room(self, code: str) -> _Room | None:
        """The live room ``code`` (call with the lock held)."""
        room = self._rooms.get(code)
        if room is not None and self._clock() - room.touched > ROOM_IDLE_S:
            del self._rooms[code]
            return None
        return room

    def _led(self, code: str, token: str) -> _Room:
        room = self._room(code)
        if room is None:
            raise RoomError(f"room {code} does not exist or has expired")
        if not tokens_match(token, room.token):
            raise RoomError("only the lecturer of this room can do that")
        room.touched = self._clock()
        return room

    def create(self) -> tuple[str, str]:
        """A new room: (code, lead token)."""
        with self._lock:
            for code in list(self._rooms):
                self._room(code)  # drops the expired ones
            if len(self._rooms) >= MAX_ROOMS:
                raise RoomError(f"this server holds {MAX_ROOMS} classes already; try later")
            code = new_code()
            while code in self._rooms:
                code = new_code()
            token = new_token()
            self._rooms[code] = _Room(token, RoomState(1, ()), self._clock())
            return code, token

    def version(self, code: str) -> int | None:
        with self._lock:
            room = self._room(code)
            return None if room is None else room.state.version

    def state(self, code: str) -> RoomState | None:
        with self._lock:
            room = self._room(code)
            return None if room is None else room.state

    def is_lead(self, code: str, token: str) -> bool:
        with self._lock:
            room = self._room(code)
            return room is not None and tokens_match(token, room.token)

    def publish(self, code: str, token: str, params: Mapping[str, str]) -> int:
        """The lecturer's view changed: store it; returns the new version (unchanged views
        keep theirs, so followers do not rerun for nothing)."""
        shown = checked_params(params)
        with self._lock:
            room = self._led(code, token)
            changed = shown != room.state.params
            if changed:
                room.state = replace(room.state, version=room.state.version + 1, params=shown)
            version = room.state.version
        if changed:
            self.signals.notify(code)
        return version

    def follow(self, code: str, session: str) -> int:
        """``session`` follows the room (called on every poll); returns the follower count."""
        with self._lock:
            room = self._room(code)
            if room is None:
                raise RoomError(f"room {code} does not exist or has expired")
            now = self._clock()
            room.followers = {s: t for s, t in room.followers.items() if now - t <= FOLLOWER_S}
            if session not in room.followers and len(room.followers) >= MAX_FOLLOWERS:
                raise RoomError(f"room {code} is full ({MAX_FOLLOWERS} students)")
            room.followers[session] = now
            room.touched = now
            return len(room.followers)

    def beat(self, code: str, session: str) -> bool:
        """A follower's browser says it is still there: refreshes a follower the room
        counts (joined by ``follow``), adds none; False when ``session`` is not counted."""
        with self._lock:
            room = self._room(code)
            if room is None:
                raise RoomError(f"room {code} does not exist or has expired")
            now = self._clock()
            seen = room.followers.get(session)
            if seen is None or now - seen > FOLLOWER_S:
                return False
            room.followers[session] = now
            room.touched = now
            return True

    def followers(self, code: str) -> int:
        with self._lock:
            room = self._room(code)
            if room is None:
                return 0
            now = self._clock()
            return sum(now - t <= FOLLOWER_S for t in room.followers.values())

    def ask(self, code: str, token: str, prompt: str, choices: Sequence[str], right: int) -> int:
        """Ask the class a question (replacing the last one); returns its id."""
        prompt, shown = checked_question(prompt, choices, right)
        with self._lock:
            room = self._led(code, token)
            last = room.state.question
            question = Question((last.id if last else 0) + 1, prompt, shown, right)
            room.answers = {}
            room.state = replace(room.state, version=room.state.version + 1, question=question)
        self.signals.notify(code)
        return question.id

    def answer(self, code: str, session: str, question_id: int, choice: int) -> bool:
        """A student's answer; False when the session answered this question already."""
        with self._lock:
            room = self._room(code)
            if room is None:
                raise RoomError(f"room {code} does not exist or has expired")
            checked_choice(room.state.question, question_id, choice)
            if session in room.answers:
                return False
            room.answers[session] = choice
            return True

    def tally(self, code: str) -> Tally | None:
        with self._lock:
            room = self._room(code)
            if room is None or room.state.question is None:
                return None
            question = room.state.question
            counts = [0] * len(question.choices)
            for choice in room.answers.values():
                counts[choice] += 1
            return Tally(question, tuple(counts))

    def reveal(self, code: str, token: str) -> None:
        with self._lock:
            room = self._led(code, token)
            question = room.state.question
            if question is None:
                raise RoomError("no question is asked")
            room.state = replace(
                room.state,
                version=room.state.version + 1,
                question=replace(question, revealed=True),
            )
        self.signals.notify(code)
