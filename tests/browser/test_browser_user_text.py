"""User text on screen: a URL value or a file name holding a backtick, a markdown link and
an image shows as the characters typed; no link or image appears in the app's message."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from .helpers import assert_no_exception, wait_for_text

pytestmark = pytest.mark.browser

HOSTILE = "`x`[link](https://evil.example/)![img](https://evil.example/i.png)<b>b</b>"
MORE = " www.evil.example a@evil.example :red[r] :material/home: $x^2$ **b**"
MARKUP = "a, img, b, strong, em, code, span[style], [data-testid='stIconMaterial'], .katex"
WARNING = "[data-testid='stAlertContentWarning']"
ERROR = "[data-testid='stAlertContentError']"


def markup_inside(page: object, selector: str) -> dict:
    """Links, images and bold elements inside the alerts, and their texts."""
    return page.evaluate(  # type: ignore[attr-defined]
        f"""[...document.querySelectorAll("{selector}")].map(a => ({{
            text: a.innerText,
            markup: [...a.querySelectorAll("{MARKUP}")].map(e => e.outerHTML),
        }}))"""
    )


def test_a_hostile_url_value_renders_as_literal_text(page: object, server_url: str) -> None:
    page.goto(f"{server_url}/?n_q={quote(HOSTILE)}&pattern={quote(MORE)}&step=2")  # type: ignore[attr-defined]
    wait_for_text(page, "Ignored URL parameter pattern")
    alerts = markup_inside(page, WARNING)
    ignored = [a for a in alerts if a["text"].startswith("Ignored URL parameter")]
    assert len(ignored) == 2
    for alert, value in zip(ignored, (HOSTILE, MORE), strict=True):
        assert alert["markup"] == [], alert
        assert value[:40] in alert["text"].replace("\u2060", "")  # the characters typed
    assert page.locator("img[src*='evil.example'], a[href*='evil.example']").count() == 0  # type: ignore[attr-defined]
    assert_no_exception(page)


def test_a_hostile_file_name_renders_as_literal_text(page: object, server_url: str) -> None:
    page.goto(server_url)  # type: ignore[attr-defined]
    page.get_by_text("Your own tensors").click()  # type: ignore[attr-defined]
    file = {"name": HOSTILE + ".npz", "mimeType": "application/octet-stream", "buffer": b"no"}
    dropzone = page.locator("[data-testid='stFileUploaderDropzoneInput']").first  # type: ignore[attr-defined]
    dropzone.set_input_files(files=[file])
    wait_for_text(page, "is neither an .npz")
    (alert,) = markup_inside(page, ERROR)
    assert alert["markup"] == [], alert
    assert HOSTILE[:40] in alert["text"].replace("\u2060", "")
    assert page.locator("img[src*='evil.example'], a[href*='evil.example']").count() == 0  # type: ignore[attr-defined]
    assert_no_exception(page)
