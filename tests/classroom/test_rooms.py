"""Rooms, the same tests on both stores: in memory, and in a real Redis.

Codes and tokens, the lecturer alone driving, versions moving only on a change, followers
counted and bounded, class questions answered once per session and tallied, limits and
expiry, and (Redis) two processes seeing one room and Redis going away mid-class."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flashviz.classroom import memory_store, redis_store
from flashviz.classroom.codes import (
    ALPHABET,
    CODE_LENGTH,
    clean_code,
    is_token,
    new_code,
    new_token,
    tokens_match,
)
from flashviz.classroom.memory_store import MemoryStore
from flashviz.classroom.room import (
    FOLLOWER_S,
    MAX_PARAMS,
    MAX_VALUE_CHARS,
    ROOM_IDLE_S,
    RoomError,
    RoomUnavailableError,
)
from flashviz.classroom.store import RoomStore, make_store
from tests.classroom.redis_server import redis_server

VIEW = {"page": "stepper", "step": "7", "n_q": "16", "causal": "1"}
HOSTILE = [
    "", "x", "<script>alert(1)</script>", "**bold**", "a" * 10_000, "\u202eK7HRW", "K7HR\x00",
    "../../etc/passwd", "K7H\tRW", None, 12345,
]  # fmt: skip


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RoomStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    with redis_server(tmp_path) as url:
        made = make_store(url)
        yield made
        made.close()  # type: ignore[attr-defined]


def test_codes_are_short_unambiguous_and_typed_forgivingly() -> None:
    assert not set("0OD Q1IL2Z5S8BUV") & set(ALPHABET)
    codes = {new_code() for _ in range(200)}
    assert len(codes) > 190 and all(
        len(c) == CODE_LENGTH and set(c) <= set(ALPHABET) for c in codes
    )
    code = next(iter(codes))
    assert clean_code(f"  {code[:2].lower()}-{code[2:]} ") == code
    for typed in HOSTILE:
        assert clean_code(typed) is None, typed


def test_tokens_carry_128_bits_and_compare_only_whole() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100 and all(is_token(t) for t in tokens)
    token = tokens.pop()
    assert tokens_match(token, token)
    assert not tokens_match(token[:-1], token) and not tokens_match(token + "A", token)
    for given in HOSTILE:
        assert not tokens_match(given, token)


def test_the_lecturer_drives_and_versions_move_only_on_a_change(store: RoomStore) -> None:
    code, token = store.create()
    state = store.state(code)
    assert state is not None and state.version == 1 and state.params == ()
    assert store.is_lead(code, token) and not store.is_lead(code, new_token())
    v2 = store.publish(code, token, VIEW)
    assert v2 == 2 and store.version(code) == 2
    assert store.publish(code, token, dict(VIEW)) == 2  # the same view: no rerun for followers
    state = store.state(code)
    assert state is not None and dict(state.params) == VIEW
    assert store.publish(code, token, {**VIEW, "step": "8"}) == 3


@pytest.mark.parametrize("token", [*HOSTILE[:-2], "A" * 22])
def test_a_student_cannot_drive(store: RoomStore, token: str) -> None:
    code, lead = store.create()
    store.publish(code, lead, VIEW)
    with pytest.raises(RoomError, match="only the lecturer"):
        store.publish(code, token, {"step": "0"})
    with pytest.raises(RoomError, match="only the lecturer"):
        store.ask(code, token, "Which tile is next?", ["(0, 1)", "(1, 0)"], 0)
    state = store.state(code)
    assert state is not None and dict(state.params) == VIEW and state.question is None


def test_a_room_that_does_not_exist_says_so(store: RoomStore) -> None:
    assert store.state("K7HRW") is None and store.version("K7HRW") is None
    with pytest.raises(RoomError, match="does not exist or has expired"):
        store.follow("K7HRW", "s1")
    with pytest.raises(RoomError, match="does not exist or has expired"):
        store.publish("K7HRW", new_token(), VIEW)


@pytest.mark.parametrize(
    "view",
    [
        {f"k{i}": "1" for i in range(MAX_PARAMS + 1)},
        {"step": "9" * (MAX_VALUE_CHARS + 1)},
        {"Bad-Key": "1"},
        {"<b>": "1"},
    ],
    ids=["too many", "too long", "bad name", "markup name"],
)
def test_a_view_beyond_the_limits_is_refused(store: RoomStore, view: dict[str, str]) -> None:
    code, token = store.create()
    with pytest.raises(RoomError):
        store.publish(code, token, view)
    assert store.version(code) == 1


def test_followers_are_counted_once_and_bounded(
    store: RoomStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory_store, "MAX_FOLLOWERS", 3)
    monkeypatch.setattr(redis_store, "MAX_FOLLOWERS", 3)
    code, _ = store.create()
    assert [store.follow(code, s) for s in ("a", "b", "a", "c")] == [1, 2, 2, 3]
    with pytest.raises(RoomError, match=r"is full \(3 students\)"):
        store.follow(code, "d")
    assert store.follow(code, "b") == 3 and store.followers(code) == 3  # a follower polls on


def test_a_beat_keeps_a_counted_follower_and_adds_none(store: RoomStore) -> None:
    code, _ = store.create()
    assert store.beat(code, "made-up") is False and store.followers(code) == 0
    store.follow(code, "a")
    assert store.beat(code, "a") is True and store.followers(code) == 1
    with pytest.raises(RoomError, match="does not exist"):
        store.beat("ZZZZZ", "a")


def test_class_questions_one_answer_a_session_tallied_then_revealed(store: RoomStore) -> None:
    code, token = store.create()
    v = store.version(code)
    qid = store.ask(code, token, "Does m rise for row 3?", ["yes", "no"], 0)
    assert store.version(code) == (v or 0) + 1  # followers learn of the question
    assert store.answer(code, "s1", qid, 0) and store.answer(code, "s2", qid, 1)
    assert not store.answer(code, "s1", qid, 1)  # one answer per session
    for bad in (-1, 2, 99):
        with pytest.raises(RoomError, match="not one of the choices"):
            store.answer(code, "s3", qid, bad)
    with pytest.raises(RoomError, match="no longer asked"):
        store.answer(code, "s3", qid + 1, 0)
    tally = store.tally(code)
    assert tally is not None and tally.counts == (1, 1) and tally.answered == 2
    store.reveal(code, token)
    state = store.state(code)
    assert state is not None and state.question is not None and state.question.revealed
    with pytest.raises(RoomError, match="already revealed"):
        store.answer(code, "s3", qid, 0)
    qid2 = store.ask(code, token, "alpha for row 3?", ["1", "0.5", "0.25"], 2)
    assert qid2 == qid + 1
    tally = store.tally(code)
    assert tally is not None and tally.counts == (0, 0, 0)  # a new question starts empty


@pytest.mark.parametrize(
    ("prompt", "choices", "right"),
    [
        ("", ["a", "b"], 0),
        ("q", ["a"], 0),
        ("q", ["a", "b"], 2),
        ("q", ["a", ""], 0),
        ("q", [str(i) for i in range(7)], 0),
        ("q" * 301, ["a", "b"], 0),
    ],
)
def test_a_question_beyond_the_limits_is_refused(
    store: RoomStore, prompt: str, choices: list[str], right: int
) -> None:
    code, token = store.create()
    with pytest.raises(RoomError):
        store.ask(code, token, prompt, choices, right)


def test_rooms_per_store_are_bounded(store: RoomStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_store, "MAX_ROOMS", 2)
    monkeypatch.setattr(redis_store, "MAX_ROOMS", 2)
    store.create()
    store.create()
    with pytest.raises(RoomError, match="holds 2 classes already"):
        store.create()


def test_an_idle_room_expires_and_a_quiet_follower_stops_counting_till_it_rejoins() -> None:
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    code, token = store.create()
    store.follow(code, "a")
    now[0] += FOLLOWER_S + 1
    assert store.followers(code) == 0
    assert store.beat(code, "a") is False  # a lapsed follower is not kept by a beat
    store.follow(code, "a")  # the page's next run counts it again
    assert store.followers(code) == 1
    now[0] += ROOM_IDLE_S - FOLLOWER_S - 2
    assert store.version(code) == 1  # just alive
    now[0] += ROOM_IDLE_S + 1
    assert store.state(code) is None and not store.is_lead(code, token)


def test_redis_keys_expire_after_the_idle_time(tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        store = make_store(url)
        code, _ = store.create()
        store.follow(code, "a")
        client = store._redis  # type: ignore[attr-defined]
        for key in (f"fvroom:{code}", f"fvroom:{code}:followers"):
            assert 0 < client.ttl(key) <= ROOM_IDLE_S, key
        store.close()  # type: ignore[attr-defined]


def test_two_processes_share_a_room_and_a_change_arrives_within_a_second(tmp_path: Path) -> None:
    """Two stores on one Redis stand for two Streamlit processes: the lecturer's change
    reaches the other's follower poll through publish/subscribe."""
    with redis_server(tmp_path) as url:
        lecturer, student = make_store(url), make_store(url)
        code, token = lecturer.create()
        assert student.version(code) == 1  # subscribes; its cache holds version 1
        lecturer.publish(code, token, VIEW)
        start = time.monotonic()
        while student.version(code) != 2:
            assert time.monotonic() - start < 1.0, "the change did not arrive within 1 s"
            time.sleep(0.01)
        state = student.state(code)
        assert state is not None and dict(state.params) == VIEW
        for made in (lecturer, student):
            made.close()  # type: ignore[attr-defined]


def test_redis_going_away_mid_class_gives_a_message_not_a_crash(tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        store = make_store(url)
        code, token = store.create()
        store.follow(code, "a")
    start = time.monotonic()  # the server is stopped now
    for call in (
        lambda: store.version(code), lambda: store.state(code), lambda: store.follow(code, "a"),
        lambda: store.publish(code, token, VIEW), store.create,
    ):  # fmt: skip
        with pytest.raises(RoomUnavailableError, match="cannot be reached"):
            call()
    assert time.monotonic() - start < 15  # each call gives up after its timeout
    store.close()  # type: ignore[attr-defined]
