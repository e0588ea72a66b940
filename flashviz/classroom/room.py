"""What a room holds, its limits, and the checks every store applies.

A room's state is the lecturer's view as URL query parameters (page, problem, step, row,
presentation: the app already reads and validates those for any link), a version that
grows with every change, and the class question, if one is asked. Followers compare
versions to learn of a change and then apply the parameters as if they had opened the
lecturer's link. Everything here is bounded: the parameters (``MAX_PARAMS`` of at most
``MAX_VALUE_CHARS``), a question (``MAX_CHOICES`` choices of ``MAX_CHOICE_CHARS``), the rooms
of a store (``MAX_ROOMS``), the followers of a room (``MAX_FOLLOWERS``), and the time a room
lives without a change or a follower (``ROOM_IDLE_S``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MAX_ROOMS = 100  # rooms a store holds at once
MAX_FOLLOWERS = 250  # students following one room
ROOM_IDLE_S = 3 * 3600  # a room nobody drove or followed for this long is gone
FOLLOWER_S = 20.0  # a follower counts while it asked for the room within this many seconds
MAX_PARAMS = 24  # query parameters of the lecturer's view
MAX_VALUE_CHARS = 120  # characters of one parameter's value
MAX_PROMPT_CHARS = 300
MAX_CHOICES = 6
MAX_CHOICE_CHARS = 80
_KEY = re.compile(r"[a-z][a-z0-9_]{0,23}")


class RoomError(ValueError):
    """A room cannot do what was asked; the message says why, ready to show to a user."""


class RoomUnavailableError(RoomError):
    """The store cannot be reached (Redis went away): rooms pause, the app goes on."""


@dataclass(frozen=True)
class Question:
    """A question the lecturer asks the class about the next step."""

    id: int  # grows with each question of the room
    prompt: str
    choices: tuple[str, ...]
    right: int  # index into choices
    revealed: bool = False


@dataclass(frozen=True)
class RoomState:
    """The lecturer's view as query parameters, its version, and the question asked."""

    version: int
    params: tuple[tuple[str, str], ...]
    question: Question | None = None


@dataclass(frozen=True)
class Tally:
    """The class's answers to the current question: a count per choice."""

    question: Question
    counts: tuple[int, ...]

    @property
    def answered(self) -> int:
        return sum(self.counts)


def checked_params(params: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The lecturer's parameters, sorted, after the size checks (a RoomError otherwise)."""
    if len(params) > MAX_PARAMS:
        raise RoomError(f"a room's view has at most {MAX_PARAMS} parameters, got {len(params)}")
    for key, value in params.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise RoomError(f"a room's view has an invalid parameter name {str(key)[:24]!r}")
        if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
            raise RoomError(f"the room's parameter {key} is too long or not text")
    return tuple(sorted(params.items()))


def publishable(params: Mapping[str, str]) -> dict[str, str]:
    """The parameters a room can carry (names and lengths within the limits), at most
    ``MAX_PARAMS`` of them: a view's odd parameter is left out rather than refused."""
    kept = {
        k: v
        for k, v in params.items()
        if isinstance(k, str)
        and _KEY.fullmatch(k)
        and isinstance(v, str)
        and len(v) <= MAX_VALUE_CHARS
    }
    return dict(sorted(kept.items())[:MAX_PARAMS])


def checked_question(
    prompt: str, choices: Sequence[str], right: int
) -> tuple[str, tuple[str, ...]]:
    """A question's prompt and choices after the size checks (a RoomError otherwise)."""
    if not isinstance(prompt, str) or not 0 < len(prompt) <= MAX_PROMPT_CHARS:
        raise RoomError(f"a question needs a prompt of 1 to {MAX_PROMPT_CHARS} characters")
    shown = tuple(choices)
    if not 2 <= len(shown) <= MAX_CHOICES or not all(
        isinstance(c, str) and 0 < len(c) <= MAX_CHOICE_CHARS for c in shown
    ):
        raise RoomError(
            f"a question needs 2 to {MAX_CHOICES} choices of 1 to {MAX_CHOICE_CHARS} characters"
        )
    if not isinstance(right, int) or not 0 <= right < len(shown):
        raise RoomError("the right answer must be one of the choices")
    return prompt, shown


def checked_choice(question: Question | None, question_id: int, choice: int) -> Question:
    """The open question an answer is for (a RoomError for a stale or bad answer)."""
    if question is None or question.id != question_id:
        raise RoomError("that question is no longer asked")
    if question.revealed:
        raise RoomError("the answer is already revealed")
    if not isinstance(choice, int) or not 0 <= choice < len(question.choices):
        raise RoomError("that is not one of the choices")
    return question
