"""The step view's JavaScript (``flashviz/app/stepper/frontend/step_view.js``) in Chromium,
alone: a move the server has not echoed is sent again (a component state update the
frontend dropped must not leave the server on an older step than the page shows).

The module is served over HTTP from its folder and ``render`` is called with the data the
server would send (the components-v2 ``render(component)`` contract), no Streamlit; the
fake ``setStateValue`` records what the page sends."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.support import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

FRONTEND = ROOT / "flashviz" / "app" / "stepper" / "frontend"

HARNESS = """async () => {
  const m = await import('/step_view.js');
  const host = (id) => { const d = document.createElement('div'); d.id = id;
                         document.body.appendChild(d); return d; };
  const hosts = { buttons: host('b'), heading: host('h') };
  window.__sent = [];
  window.__render = (part, step, seq) => m.render({
    data: { group: 'g', part, step, seq, last: 23, allowed: 23, keys: false,
            texts: Object.fromEntries([...Array(24).keys()].map((s) => [s, `Step ${s}`])) },
    parentElement: hosts[part], setStateValue: (name, value) => __sent.push(value),
  });
  window.__heading = () => document.querySelector('#h h3').textContent;
}"""


@pytest.fixture(scope="module")
def module_url(browser: Browser) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(FRONTEND))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def test_an_unanswered_move_is_sent_again_until_the_server_echoes_it(
    page: Page, module_url: str
) -> None:
    page.goto(module_url)
    page.evaluate(HARNESS)
    js = page.evaluate
    js("() => { __render('buttons', 7, null); __render('heading', 7, null); }")
    js("() => document.querySelector('.fv-button[data-move=next]').click()")
    assert js("() => __heading()") == "Step 8"
    first = js("() => __sent.slice()")
    assert [m["step"] for m in first] == [8]
    # no echo: sent again after the resend delay (3 s)
    page.wait_for_function("() => __sent.length >= 2", timeout=15_000)
    sent = js("() => __sent.slice()")
    print("sent:", sent)
    assert [m["step"] for m in sent] == [8, 8] and sent[1]["seq"] != sent[0]["seq"]
    js(f"() => __render('buttons', 8, {sent[1]['seq']!r})")  # the server echoes it
    page.wait_for_timeout(3500)  # longer than the resend delay
    assert len(js("() => __sent")) == 2  # echoed: nothing more is sent
    assert js("() => __heading()") == "Step 8"
