"""The oldest Streamlit flashviz runs on, checked before any page is imported: with an older
one a person sees what to upgrade, not a traceback from an API it lacks."""

from __future__ import annotations

import re

import streamlit as st

STREAMLIT_FLOOR = "1.67.0"  # the floor in requirements.txt (a test keeps them equal)


def _release(version: str) -> tuple[int, ...]:
    """The release numbers of a version string: '1.51.0' -> (1, 51, 0), '1.52.0.dev1' too."""
    return tuple(int(n) for n in re.findall(r"\d+", version.split("+")[0])[:3])


def too_old_message(version: str) -> str | None:
    """What to upgrade when Streamlit ``version`` is older than the floor; None otherwise."""
    if _release(version) >= _release(STREAMLIT_FLOOR):
        return None
    return (
        f"flashviz needs Streamlit {STREAMLIT_FLOOR} or newer; this is Streamlit {version}. "
        f"Upgrade it, then start the app again: pip install -U -r requirements.txt "
        f"(or pip install -U 'streamlit>={STREAMLIT_FLOOR}')."
    )


def stop_if_too_old() -> None:
    """Show the message and stop the script when the running Streamlit is too old."""
    if message := too_old_message(st.__version__):
        st.error(message)
        st.stop()
