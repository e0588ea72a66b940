"""The route a class's followers wait on: ``GET /api/flashviz/rooms/<code>``.

A follower's page (``frontend/room_follow.js``) asks ``?after=<version>&follower=<id>``;
the answer comes when the room's version differs from ``after``, at once or as soon as the
lecturer changes the view (``RoomSignals``), else after ``HOLD_S`` with the same version
(the page asks again). It carries the room's version and the lecturer's view (its URL
parameters, which any follower gets anyway): the page moves by itself when only the step
changed and it holds that step, and reruns its script otherwise. No script runs while a
follower waits, so an idle follower costs the server one request every ``HOLD_S``.
``beat=1`` also keeps the follower counted (the lecturer's follower count): only a
follower its script run counted (``RoomStore.follow``) can be, so a made-up id adds
nothing, and an id no longer counted gets a 409 (the page reruns, which counts it again).
Nothing a follower sends changes the room.

Answers: 200 ``{"version", "params"}``; 404 ``{"error"}`` for a room that does not exist or
has expired (the page reruns and says so); 409 for a follower not counted; 503
``{"error", "retry_ms"}`` while the store is unreachable or the process holds too many
waiting followers. Served through ``st.App(routes=...)`` (``app.py``), Streamlit's public
way to add routes.
"""

from __future__ import annotations

import asyncio
import re

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from flashviz.classroom.codes import clean_code
from flashviz.classroom.room import RoomError, RoomUnavailableError
from flashviz.classroom.signals import TooManyWaitersError
from flashviz.classroom.store import room_store

PATH = "/api/flashviz/rooms/{code}"
HOLD_S = 12.0  # a request waits this long at most (a follower counts for FOLLOWER_S = 20 s)
RETRY_MS = 2000  # how long a refused follower waits before it asks again
_FOLLOWER = re.compile(r"[0-9a-f]{16}")
_NO_STORE = {"Cache-Control": "no-store"}


def room_path(code: str) -> str:
    return PATH.format(code=code)


def _answer(body: dict[str, object], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=_NO_STORE)


async def room_changes(request: Request) -> JSONResponse:
    code = clean_code(str(request.path_params.get("code", "")))
    after = request.query_params.get("after", "")
    follower = request.query_params.get("follower", "")
    if code is None:
        return _answer({"error": "no such class"}, 404)
    if not after.isdigit() or len(after) > 12 or not _FOLLOWER.fullmatch(follower):
        return _answer({"error": "bad request"}, 400)
    store, seen = room_store(), int(after)

    async def moved() -> bool:
        return await asyncio.to_thread(store.version, code) != seen

    try:
        beat = request.query_params.get("beat") == "1"
        if beat and not await asyncio.to_thread(store.beat, code, follower):
            return _answer({"error": "not counted", "rejoin": True}, 409)
        await store.signals.wait(code, HOLD_S, moved)
        state = await asyncio.to_thread(store.state, code)
    except (RoomUnavailableError, TooManyWaitersError) as err:
        return _answer({"error": str(err), "retry_ms": RETRY_MS}, 503)
    except RoomError as err:
        return _answer({"error": str(err)}, 404)
    if state is None:
        return _answer({"error": f"class {code} has ended"}, 404)
    return _answer({"version": state.version, "params": dict(state.params)})


ROUTES = [Route(PATH, room_changes, methods=["GET"])]
