"""The step view's JavaScript (``flashviz/app/stepper/frontend/step_view.js``) in Chromium,
alone: a part of an older run, rendered after the parts of a newer run, must not move the
view back. (Under a loaded server, Play once showed step 15 and then 14 again.)

The module is served over HTTP from its folder and ``render`` is called with the data the
server would send (the components-v2 ``render(component)`` contract), no Streamlit."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.browser
FRONTEND = ROOT / "flashviz" / "app" / "stepper" / "frontend"

HARNESS = """async () => {
  const m = await import('/step_view.js');
  const host = (id) => { const d = document.createElement('div'); d.id = id;
                         document.body.appendChild(d); return d; };
  const hosts = { buttons: host('b'), heading: host('h') };
  window.__render = (part, step, run) => m.render({
    data: { group: 'g', part, step, run, seq: null, last: 23, allowed: 23, keys: false,
            texts: Object.fromEntries([...Array(24).keys()].map((s) => [s, `Step ${s}`])) },
    parentElement: hosts[part], setStateValue: () => {},
  });
  window.__heading = () => document.querySelector('#h h3').textContent;
}"""


@pytest.fixture(scope="module")
def module_url(browser: object) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(FRONTEND))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def test_an_older_runs_part_does_not_move_the_view_back(page: object, module_url: str) -> None:
    page.goto(module_url)  # type: ignore[attr-defined]
    page.evaluate(HARNESS)  # type: ignore[attr-defined]
    show = page.evaluate  # type: ignore[attr-defined]
    show("() => { __render('buttons', 14, 1); __render('heading', 14, 1); }")
    assert show("() => __heading()") == "Step 14"
    show("() => { __render('buttons', 15, 2); __render('heading', 15, 2); }")
    assert show("() => __heading()") == "Step 15"
    show("() => __render('buttons', 14, 1)")  # run 1's part again, after run 2
    assert show("() => __heading()") == "Step 15"
    show("() => { __render('buttons', 16, 3); __render('heading', 16, 3); }")
    assert show("() => __heading()") == "Step 16"  # a newer run still moves it on
