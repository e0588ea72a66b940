"""A class follows its lecturer: the sidebar's Class panel, following, and publishing.

The lecturer presses "Start a class" (``flashviz.classroom``: a room with a code and a secret
lead token, kept in the lecturer's session only, never in the projected URL). After each of
the lecturer's runs, ``publish_view`` stores the view, the page and its URL parameters, in
the room. A student opens ``?room=<code>``: each run of the student's script applies the
lecturer's view as if the student had opened the lecturer's link (the kept page state is
read again from the URL, the lecturer's page switched to). Between runs the student's
browser waits on the room (``frontend/room_follow.js`` holds a request to
``flashviz.app.room_routes`` open; no script runs meanwhile): a new step the step panel
holds is shown at once in the browser, anything else reruns the script. "Explore on my
own" stops applying; "Follow again" applies the lecturer's view at once. Nothing a student
sends changes the room: only the session holding the token publishes.
"""

from __future__ import annotations

import functools
import io
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import segno
import streamlit as st

from flashviz.app.room_routes import room_path
from flashviz.app.stepper.step_view import AHEAD
from flashviz.app.widgets.page_state import SEEN, STORE, URL_OBSERVER, URL_READ
from flashviz.app.widgets.safe_text import plain_message
from flashviz.classroom.codes import clean_code
from flashviz.classroom.room import RoomError, publishable
from flashviz.classroom.store import room_store

ROLE = "_class_role"  # session state: Lead, Follow or absent
PAGE = "_class_page"  # session state: the url path of the page this run draws
MESSAGE = "_class_message"  # a message for the next run (the room ended, a bad link, ...)
COUNT_S = 2.0  # the lecturer's follower count is refreshed this often
FOLLOW_AHEAD = 4  # steps beyond the next two a follower's step panel holds
ROOM_PARAM, LEAD_PARAM, PAGE_PARAM = "room", "lead", "page"
HIDDEN_PARAM = "tally_hidden"  # in a room's view: the question whose tally the stage hides
HIDDEN = "_class_tally_hidden"  # session state: that question's id (the lecturer's, applied)
_watch = st.components.v2.component(
    "flashviz.room_follow",
    js=(Path(__file__).parent / "frontend" / "room_follow.js").read_text(encoding="utf-8"),
)


@dataclass
class Lead:
    code: str
    token: str
    synced: bool = True  # False: a lead link opened here, the room's view not yet applied


@dataclass
class Follow:
    code: str
    session: str
    seen: int | None = None  # the room version applied last
    exploring: bool = False
    view: dict[str, str] = field(default_factory=dict)  # the lecturer's parameters applied


MAX_TRIES = 6  # joins, and answers, one session may send a minute
TRIES = "_class_tries"  # session state: kind -> times of the last tries


def within_tries(kind: str, now: float | None = None) -> bool:
    """Whether this session may try ``kind`` again (at most ``MAX_TRIES`` a minute): a
    flood of joins or answers from one session stops here, before the store."""
    now = time.monotonic() if now is None else now
    tries = st.session_state.setdefault(TRIES, {}).setdefault(kind, [])
    tries[:] = [t for t in tries if now - t < 60.0]
    if len(tries) >= MAX_TRIES:
        return False
    tries.append(now)
    return True


def role() -> Lead | Follow | None:
    found = st.session_state.get(ROLE)
    return found if isinstance(found, Lead | Follow) else None


def _say(message: str) -> None:
    st.session_state[MESSAGE] = message


def _read_url() -> None:
    """``?room=<code>`` follows a class; ``&lead=<token>`` (the lead link) leads it. The
    parameters leave the lecturer's URL at once: a projected address bar shows no token."""
    params = st.query_params
    if ROOM_PARAM not in params:
        return
    typed, token = params.get(ROOM_PARAM, ""), params.get(LEAD_PARAM)
    current = role()
    if token is None and isinstance(current, Follow) and current.code == typed:
        return  # following already: the room stays in the URL, so a reload rejoins
    store, code = room_store(), clean_code(typed)
    try:
        alive = code is not None and store.state(code) is not None
        leads = alive and token is not None and store.is_lead(code or "", token)
    except RoomError as err:
        alive = leads = False
        _say(str(err))
    if LEAD_PARAM in params:
        del params[LEAD_PARAM]
    if not alive or code is None:
        del params[ROOM_PARAM]
        _say(f"There is no class {typed[:32]} (it may have ended); the app works on its own.")
        return
    if token is not None and not leads:
        _say("That lead link is not valid for this class; you follow it as a student.")
    if leads and token is not None:
        del params[ROOM_PARAM]
        st.session_state[ROLE] = Lead(code, token, synced=False)
        return
    if not within_tries("join"):
        del params[ROOM_PARAM]
        _say("Too many tries to join a class; wait a minute. The app works on its own.")
        return
    follow = Follow(code, secrets.token_hex(8))
    try:
        store.follow(code, follow.session)  # counted at once; a full room says so
    except RoomError as err:
        del params[ROOM_PARAM]
        _say(str(err))
        return
    st.session_state[ROLE] = follow


def _apply(code: str, pages: dict[str, Any], current: Any, keep_room: bool) -> dict[str, str]:
    """Bring the room's view into this session: its parameters, then its page (``room`` in
    the URL for a follower, so that a reload rejoins). Returns the view applied, with its
    version under ``"version"`` (empty: the room has ended)."""
    state = room_store().state(code)
    if state is None:
        st.session_state.pop(ROLE, None)
        _say(f"Class {code} has ended; the app works on its own.")
        return {}
    view = dict(state.params)
    params = dict(view)
    path = params.pop(PAGE_PARAM, "")
    st.session_state[HIDDEN] = params.pop(HIDDEN_PARAM, None)
    if keep_room:
        params[ROOM_PARAM] = code
    ss = st.session_state
    ss[STORE], ss[SEEN], ss[URL_READ] = {}, {}, False  # the page reads the URL again
    st.query_params.from_dict(params)
    target = pages.get(path)
    if target is not None and target.url_path != current.url_path:
        st.switch_page(target, query_params=params)
    return {**view, "version": str(state.version)}


def _changed() -> None:
    """The room moved where the page cannot follow by itself: this run applies it."""


def _wait_on_room(follow: Follow) -> None:
    """The browser's side of following: wait on the room, move or rerun (room_follow.js)."""
    _watch(
        key="class_room_watch",
        data={
            "url": room_path(follow.code),
            "code": follow.code,
            "follower": follow.session,
            "version": follow.seen,
            "params": follow.view,
            "exploring": follow.exploring,
        },
        on_changed_change=_changed,
    )


@st.fragment(run_every=COUNT_S)
def _follower_count(lead: Lead) -> None:
    try:
        count = room_store().followers(lead.code)
    except RoomError as err:
        st.caption(plain_message(err))
        return
    st.markdown(f"**{count}** following")


def class_badge(now: Lead | Follow) -> None:
    """Presentation mode's step bar: the room code and, for its lecturer, how many follow."""
    if isinstance(now, Lead):
        _lead_badge(now)
    else:
        st.markdown(f"Following class **{now.code}**")


@st.fragment(run_every=COUNT_S)
def _lead_badge(lead: Lead) -> None:
    try:
        count: int | str = room_store().followers(lead.code)
    except RoomError:
        count = "?"
    st.markdown(f"Class **{lead.code}** · **{count}** following")


def in_class() -> Lead | Follow | None:
    """This session's role in a class: leading, following (not exploring), or none."""
    now = role()
    return None if isinstance(now, Follow) and now.exploring else now


def _start() -> None:
    try:
        code, token = room_store().create()
    except RoomError as err:
        _say(str(err))
        return
    st.session_state[ROLE] = Lead(code, token)


def _end() -> None:
    st.session_state.pop(ROLE, None)
    st.query_params.pop(ROOM_PARAM, None)


def _explore(follow: Follow, exploring: bool) -> None:
    follow.exploring = exploring
    if not exploring:
        follow.seen = None  # apply the lecturer's view at once


def _join(typed: str) -> None:
    st.query_params[ROOM_PARAM] = typed.strip()[:32]


@functools.lru_cache(maxsize=32)  # a lecturer's every rerun draws it; links are short
def qr_png(link: str) -> bytes:
    """``link`` as a QR code PNG (segno), modules large enough to scan across a hall."""
    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="png", scale=10, border=2)
    return buffer.getvalue()


def _lead_panel(lead: Lead) -> None:
    base = st.context.url.split("?")[0] if st.context.url else ""
    link = f"{base}?{ROOM_PARAM}={lead.code}"
    st.markdown(f"Class code **{lead.code}**")
    st.code(link, language=None)
    st.image(qr_png(link), caption="Scan to follow", width="stretch")
    _follower_count(lead)
    with st.expander("Lead link (keep it secret)"):
        st.caption("Open it on another device to lead this class from there.")
        st.code(f"{base}?{ROOM_PARAM}={lead.code}&{LEAD_PARAM}={lead.token}", language=None)
    st.button("End the class", on_click=_end, key="class_end")


def _follow_panel(follow: Follow) -> None:
    st.markdown(f"Following class **{follow.code}**")
    if follow.exploring:
        st.button("Follow again", on_click=_explore, args=(follow, False), key="class_follow")
    else:
        st.button("Explore on my own", on_click=_explore, args=(follow, True), key="class_explore")
    st.button("Leave the class", on_click=_end, key="class_leave")


def class_panel(pages: dict[str, Any], current: Any) -> None:
    """Before the page runs: read a room link, apply the lecturer's view if it moved, draw
    the sidebar's Class panel and a follower's banner. ``pages``: url path -> page."""
    _read_url()
    st.session_state[PAGE] = current.url_path
    lead = isinstance(role(), Lead)
    st.session_state[URL_OBSERVER] = publish_view if lead else None  # steps in fragments too
    message = st.session_state.pop(MESSAGE, None)
    if message:
        st.warning(plain_message(message))
    now = role()
    st.session_state[AHEAD] = FOLLOW_AHEAD if isinstance(now, Follow) else 0
    try:
        if isinstance(now, Follow):
            room_store().follow(now.code, now.session)  # counted again if it had lapsed
        if isinstance(now, Follow) and not now.exploring:  # every run shows the lecturer's
            view = _apply(now.code, pages, current, keep_room=True)
            now.seen = int(view.pop("version")) if view else None
            now.view = view
        elif isinstance(now, Lead) and not now.synced:
            now.synced = True  # a lead link: carry on from the room's view
            _apply(now.code, pages, current, keep_room=False)
    except RoomError as err:  # the store is gone (Redis): the page goes on as it is
        st.warning(plain_message(err))
    now = role()
    with st.sidebar.expander("Class", expanded=now is not None):
        if isinstance(now, Lead):
            _lead_panel(now)
        elif isinstance(now, Follow):
            _follow_panel(now)
        else:
            st.button("Start a class", on_click=_start, key="class_start")
            typed = st.text_input("Join a class", max_chars=32, key="class_code",
                                  placeholder="code, e.g. K7HRW")  # fmt: skip
            st.button("Follow", on_click=_join, args=(typed,), key="class_join")
    if isinstance(now, Follow):
        state = "exploring on your own" if now.exploring else "following the lecturer"
        if st.query_params.get("present") != "true":  # presentation mode: in the step bar
            st.info(f"Following class {now.code}: {state}.", icon=":material/groups:")
        with st.sidebar:  # mounted where it takes no room on the page (hidden on a stage)
            _wait_on_room(now)


def publish_view() -> None:
    """The lecturer's view, its page and URL parameters, to the room: after each run of the
    page, and whenever ``mirror_url`` changes the URL (a step inside a fragment)."""
    lead = role()
    if not isinstance(lead, Lead):
        return
    shown = st.query_params.to_dict()
    params = publishable({k: v for k, v in shown.items() if k not in (ROOM_PARAM, LEAD_PARAM)})
    params[PAGE_PARAM] = str(st.session_state.get(PAGE, ""))
    if st.session_state.get(HIDDEN) is not None:
        params[HIDDEN_PARAM] = str(st.session_state[HIDDEN])
    try:
        room_store().publish(lead.code, lead.token, params)
    except RoomError as err:
        st.sidebar.caption(plain_message(err))
