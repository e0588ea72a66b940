"""An older Streamlit than the floor gets a message that says what to upgrade."""

from __future__ import annotations

import re

import pytest
import streamlit
from streamlit.testing.v1 import AppTest

from flashviz.app import streamlit_version
from flashviz.app.streamlit_version import STREAMLIT_FLOOR, too_old_message
from tests.support import ROOT


def test_the_floor_is_the_one_requirements_txt_states() -> None:
    stated = re.search(r"^streamlit>=(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert stated and stated.group(1) == STREAMLIT_FLOOR


@pytest.mark.parametrize("version", ["1.50.0", "1.40.2", "0.89.0", "1.5.0"])
def test_an_older_version_is_told_what_to_upgrade(version: str) -> None:
    message = too_old_message(version)
    assert message and f"Streamlit {version}" in message and "pip install -U" in message


@pytest.mark.parametrize("version", [STREAMLIT_FLOOR, "1.67.0", "2.0.0", "1.99.1.dev20270101"])
def test_the_floor_and_newer_pass(version: str) -> None:
    assert too_old_message(version) is None


def test_the_app_stops_with_the_message_before_any_page(monkeypatch: pytest.MonkeyPatch) -> None:
    # the running Streamlit is real; the floor is raised above it
    monkeypatch.setattr(streamlit_version, "STREAMLIT_FLOOR", "99.0.0")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] == [too_old_message(streamlit.__version__)]
    assert not at.get("plotly_chart") and not at.button
