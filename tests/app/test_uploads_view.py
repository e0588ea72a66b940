"""The upload widget in a running app (AppTest drives st.file_uploader) and the download."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from flashviz.app.cached import CACHE
from flashviz.app.stepper.uploads_view import parse_upload
from flashviz.app.widgets.safe_text import shown
from flashviz.io.bounded_read import MAX_UPLOAD_BYTES
from flashviz.io.uploads import QKVUpload

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (
    f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
    + """
import streamlit as st
from flashviz import record_trace
from flashviz.app.stepper.uploads_view import qkv_uploader, trace_download_button

arrays = qkv_uploader()
st.session_state["shapes"] = None if arrays is None else [a.shape for a in arrays]
if arrays is not None:
    trace_download_button(lambda: record_trace(*arrays, block_q=4, block_kv=4, causal=True))
"""
)


def npz(**arrays: np.ndarray) -> bytes:
    f = io.BytesIO()
    np.savez(f, **arrays)
    return f.getvalue()


def npy(x: np.ndarray, **kw: object) -> bytes:
    f = io.BytesIO()
    np.save(f, x, **kw)
    return f.getvalue()


def header_only(shape: tuple[int, ...]) -> bytes:
    """A .npy header announcing ``shape`` (float64) and no data."""
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        f, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    return f.getvalue()


@pytest.fixture
def app() -> AppTest:
    return AppTest.from_string(SCRIPT, default_timeout=60).run()


@pytest.fixture
def qkv(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "q": rng.standard_normal((6, 4)),
        "k": rng.standard_normal((9, 4)),
        "v": rng.standard_normal((9, 4)).astype(np.float32),
    }


def upload(app: AppTest, name: str, data: bytes) -> AppTest:
    app.get_by_key("upload_qkv").set_value((name, data, "application/octet-stream"))
    return app.run()


def test_nothing_uploaded_explains_formats_and_limit(app: AppTest) -> None:
    assert not app.exception and not app.error and not app.success
    assert app.session_state["shapes"] is None
    uploader = app.get_by_key("upload_qkv")
    assert sorted(uploader.allowed_type) == [".npy", ".npz"]
    text = " ".join(c.value for c in app.caption)
    assert "`q` (n_q, d)" in text and "(3, n, d)" in text and "20 MiB" in text
    assert "bfloat16" in text and "without pickle" in text
    assert not app.download_button


def test_valid_npz_shows_shapes_and_offers_the_trace(app: AppTest, qkv) -> None:
    upload(app, "mine.npz", npz(**qkv))
    assert not app.exception and not app.error
    (success,) = app.success
    assert shown(success.value).startswith("Loaded mine.npz: q (6, 4), k (9, 4), v (9, 4)")
    assert "float32, float64, converted to float64" in shown(success.value)
    assert app.session_state["shapes"] == [(6, 4), (9, 4), (9, 4)]
    (button,) = app.download_button
    assert button.key == "download_trace"
    app.get_by_key("upload_qkv").clear()
    app.run()
    assert app.session_state["shapes"] is None and not app.success and not app.download_button


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "obj.npz",
            npz(q=np.array([[None]] * 2, dtype=object), k=np.ones((2, 1)), v=np.ones((2, 1))),
            "holds Python objects",
        ),
        ("shape.npz", npz(q=np.ones(3), k=np.ones((2, 3)), v=np.ones((2, 3))), "got shape (3,)"),
        ("d.npz", npz(q=np.ones((2, 3)), k=np.ones((2, 2)), v=np.ones((2, 2))), "head dim d = 3"),
        (
            "nan.npz",
            npz(q=np.full((2, 2), np.nan), k=np.ones((2, 2)), v=np.ones((2, 2))),
            "'q' has 4 NaN or Inf entries, the first at index (0, 0)",
        ),
        ("big.npy", b"\x93NUMPY" + bytes(MAX_UPLOAD_BYTES), "uploads are limited to"),
        ("junk.npz", b"definitely not numpy", "neither an .npz (zip) nor a .npy"),
        ("row.npy", npy(np.ones(5)), "must stack q, k, v as one array of shape (3, n, d)"),
        ("wide.npy", header_only((0, 2**70)), "a dimension over 20,971,520"),
        ("deep.npy", header_only((1,) * 65), "has 65 dimensions; at most 4 are accepted"),
    ],
    ids=["object", "shape", "d", "nan", "big", "junk", "row", "(0, 2**70)", "65 dims"],
)
def test_bad_file_shows_its_message_not_a_traceback(app: AppTest, name, data, message) -> None:
    upload(app, name, data)
    assert not app.exception and not app.success and not app.download_button
    (error,) = app.error
    assert message in shown(error.value) and name in shown(error.value)
    assert app.session_state["shapes"] is None


def test_a_good_file_after_a_bad_one_replaces_the_error(app: AppTest, qkv) -> None:
    upload(app, "junk.npz", b"junk")
    (error,) = app.error
    assert shown(error.value).startswith("junk.npz is neither an .npz (zip) nor a .npy file")
    upload(app, "good.npz", npz(**qkv))
    assert not app.error
    (success,) = app.success
    assert shown(success.value).startswith("Loaded good.npz: q (6, 4), k (9, 4), v (9, 4)")
    assert app.session_state["shapes"] == [(6, 4), (9, 4), (9, 4)]


def test_parse_upload_returns_the_message_or_the_arrays(qkv) -> None:
    assert parse_upload(b"junk", "j.npz").startswith("j.npz is neither")
    good = parse_upload(npz(**qkv), "g.npz")
    assert isinstance(good, QKVUpload)
    np.testing.assert_array_equal(good.v, qkv["v"].astype(np.float64))


HOSTILE = "`x`[link](https://evil.example/)![img](https://evil.example/i.png)<b>b</b>"


@pytest.mark.parametrize("good", [True, False], ids=["loaded", "refused"])
def test_a_file_name_is_shown_as_literal_text(app: AppTest, qkv, good: bool) -> None:
    """A name with backticks, a markdown link and image: shown as typed, never as markup."""
    name = HOSTILE + ".npz"
    upload(app, name, npz(**qkv) if good else b"junk")
    (alert,) = app.success if good else app.error
    assert shown(alert.value).startswith(("Loaded " if good else "") + name[:40])
    assert_no_markup(alert.value)


def assert_no_markup(markdown: str) -> None:
    """Every markdown-active character in ``markdown`` is backslash-escaped."""
    unescaped = re.findall(r"(?<!\\)[`\[\]()!<>*_$:]", markdown.replace("\\\\", ""))
    assert not unescaped, f"unescaped {unescaped} in {markdown!r}"


def test_an_int8_upload_is_kept_compact_in_the_servers_cache(app: AppTest) -> None:
    """The parsed upload stays int8 (1 byte a number); float64 is made when traced."""
    q = np.arange(40 * 8, dtype=np.int8).reshape(40, 8)
    upload(app, "int8.npz", npz(q=q, k=q[:9], v=q[:9]))
    assert not app.exception
    (success,) = app.success
    assert shown(success.value).startswith("Loaded int8.npz: q (40, 8), k (9, 8), v (9, 8)")
    assert "int8, converted to float64" in shown(success.value)
    parsed = next(  # the newest upload of that name
        e.value
        for key, e in reversed(CACHE._entries.items())
        if key[0].endswith("uploads_view._parsed") and key[2] == "int8.npz"
    )
    assert parsed.q.dtype == np.int8 and parsed.q.nbytes == q.nbytes
    assert app.session_state["shapes"] == [(40, 8), (9, 8), (9, 8)]
