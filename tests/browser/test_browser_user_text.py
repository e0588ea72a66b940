"""Hostile input on screen: a URL value, a file name or a typed row holding a backtick, a
markdown link and an image shows as the characters typed (no link or image appears in the
app's message); a zip bomb and a costly URL are refused without growing the server."""

from __future__ import annotations

import zipfile
import zlib
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from tests.io.test_uploads import K, V, _compress_zeros, npy, npy_header_only, stored, zip_raw

from .conftest import SERVER_PIDS
from .helpers import assert_no_exception, wait_for_text, wait_until_settled

if TYPE_CHECKING:
    from playwright.sync_api import FilePayload, Page

HOSTILE = "`x`[link](https://evil.example/)![img](https://evil.example/i.png)<b>b</b>"
MORE = " www.evil.example a@evil.example :red[r] :material/home: $x^2$ **b**"
MARKUP = "a, img, b, strong, em, code, span[style], [data-testid='stIconMaterial'], .katex"
WARNING = "[data-testid='stAlertContentWarning']"
ERROR = "[data-testid='stAlertContentError']"


def markup_inside(page: Page, selector: str) -> dict:
    """Links, images and bold elements inside the alerts, and their texts."""
    return page.evaluate(
        f"""[...document.querySelectorAll("{selector}")].map(a => ({{
            text: a.innerText,
            markup: [...a.querySelectorAll("{MARKUP}")].map(e => e.outerHTML),
        }}))"""
    )


def test_a_hostile_url_value_renders_as_literal_text(page: Page, server_url: str) -> None:
    page.goto(f"{server_url}/?n_q={quote(HOSTILE)}&pattern={quote(MORE)}&step=2")
    wait_for_text(page, "Ignored URL parameter pattern")
    alerts = markup_inside(page, WARNING)
    ignored = [a for a in alerts if a["text"].startswith("Ignored URL parameter")]
    assert len(ignored) == 2
    for alert, value in zip(ignored, (HOSTILE, MORE), strict=True):
        assert alert["markup"] == [], alert
        assert value[:40] in alert["text"].replace("\u2060", "")  # the characters typed
    wait_until_settled(page)
    assert page.locator("img[src*='evil.example'], a[href*='evil.example']").count() == 0
    assert_no_exception(page)


@pytest.mark.parametrize(
    ("path", "query", "heading"),
    [
        ("/precision", "prec_gap=1e309", "Precision"),  # beyond the widget's bounds
        ("/debugger", "dbg_component=-5", "Online-softmax debugger"),
        ("/split_kv", "splitkv_splits=\u0661\u0662", "Split-KV"),  # Arabic-Indic digits
    ],
)
def test_an_out_of_range_url_value_is_ignored_with_a_warning_on_screen(
    page: Page, server_url: str, path: str, query: str, heading: str
) -> None:
    name, value = query.split("=")
    page.goto(f"{server_url}{path}?{name}={quote(value)}")
    wait_for_text(page, f"Ignored URL parameter {name}")
    wait_until_settled(page)
    warning = page.locator(WARNING, has_text=f"Ignored URL parameter {name}").first
    assert warning.is_visible()
    assert page.get_by_text(heading).first.is_visible()
    assert page.locator(ERROR, has_text=name).count() == 0
    assert_no_exception(page)


def test_a_hostile_file_name_renders_as_literal_text(page: Page, server_url: str) -> None:
    page.goto(server_url)
    page.get_by_text("Your own tensors").click()
    file: FilePayload = {
        "name": HOSTILE + ".npz",
        "mimeType": "application/octet-stream",
        "buffer": b"no",
    }
    dropzone = page.locator("[data-testid='stFileUploaderDropzoneInput']").first
    dropzone.set_input_files(files=[file])
    wait_for_text(page, "is neither an .npz")
    wait_for_text(page, "Your file was not used")  # also in the main area, above the steps
    wait_until_settled(page)
    alerts = markup_inside(page, ERROR)
    assert len(alerts) == 2, alerts  # the sidebar's and the main area's
    for alert in alerts:
        assert alert["markup"] == [], alert
        assert HOSTILE[:40] in alert["text"].replace("\u2060", "")
    main = page.locator("[data-testid=stMain] " + ERROR).first.bounding_box()
    heading = page.locator("h3", has_text="Step 0 of").first.bounding_box()
    assert main is not None and heading is not None and main["y"] < heading["y"]
    assert page.locator("img[src*='evil.example'], a[href*='evil.example']").count() == 0
    assert_no_exception(page)


def test_a_typed_row_is_capped_and_quoted_literally(page: Page, server_url: str) -> None:
    """The debugger's text box takes at most 131,072 characters (a longer paste is refused);
    a bad entry is quoted as the characters typed, cut to 40."""
    page.goto(f"{server_url}/debugger")
    wait_for_text(page, "Row of scores from")
    page.get_by_text("typed or pasted numbers").click()
    box = page.locator("textarea").first
    box.wait_for()
    before = box.input_value()
    box.fill("9" * 131_073)  # one paste past the cap: the box refuses it
    wait_until_settled(page)
    assert box.input_value() == before
    box.fill("9" * 131_072)  # at the cap: accepted, and answered at once
    box.press("Control+Enter")
    wait_for_text(page, "131,072 characters) is too large for float64")
    box.fill("1, " + HOSTILE)
    box.press("Control+Enter")
    wait_for_text(page, "is not a number")
    alerts = [a for a in markup_inside(page, ERROR) if "is not a number" in a["text"]]
    assert len(alerts) == 1 and alerts[0]["markup"] == [], alerts
    assert "entry 2 ('`x`[link](https://evil.example" in alerts[0]["text"].replace("\u2060", "")
    wait_until_settled(page)
    assert page.locator("img[src*='evil.example'], a[href*='evil.example']").count() == 0
    assert_no_exception(page)


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        line = next(x for x in f if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_a_zip_bomb_upload_is_refused_without_growing_the_server(
    page: Page, server_url: str
) -> None:
    """A 1 MiB .npz whose q declares 200 bytes but inflates to 256 MiB of zeros."""
    header = npy_header_only((5, 3))[:-16]
    deflate = zlib.compressobj(1, zlib.DEFLATED, -15)
    data = deflate.compress(header) + _compress_zeros(deflate, 256)
    bomb = zip_raw([("q.npy", zipfile.ZIP_DEFLATED, data, 200, 0),
                    stored("k.npy", npy(K)), stored("v.npy", npy(V))])  # fmt: skip
    assert len(bomb) < 2**21
    pid = SERVER_PIDS[server_url]
    page.goto(server_url)
    page.get_by_text("Your own tensors").click()
    dropzone = page.locator("[data-testid='stFileUploaderDropzoneInput']").first
    dropzone.wait_for(state="attached")
    before = _rss_mib(pid)
    file: FilePayload = {"name": "bomb.npz", "mimeType": "application/octet-stream", "buffer": bomb}
    dropzone.set_input_files(files=[file])
    wait_for_text(page, "unpacks to more than 20.0 MiB (it declares 200 bytes)")
    assert _rss_mib(pid) - before < 100, f"server grew from {before:.0f} to {_rss_mib(pid):.0f} MiB"
    assert_no_exception(page)


def test_a_costly_url_is_refused_at_once_with_a_size_that_fits(page: Page, server_url: str) -> None:
    page.goto(f"{server_url}/?n_q=16384&n_k=16&head_dim=256&block_q=64&block_kv=16")
    wait_for_text(page, "would cost the server about 579 MiB")
    wait_for_text(page, "Try n_q = 4096, n_k = 16, block_q = 64, block_kv = 16.")
    assert page.locator(".js-plotly-plot").count() == 0
    assert_no_exception(page)
