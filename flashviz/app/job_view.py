"""A background job on screen: its progress, redrawn twice a second; the page reruns when it
ends, so whoever waits sees the result without a click."""

from __future__ import annotations

import streamlit as st

from flashviz.app.jobs import Job

POLL_S = 0.5


def follow(job: Job, key: str) -> None:
    """Show ``job``'s progress until it finishes, then rerun the page."""

    @st.fragment(run_every=POLL_S)
    def progress() -> None:
        if job.finished:
            st.rerun(scope="app")
        status = f": {job.status}" if job.status else ""
        st.progress(job.fraction, text=f"{job.label}{status} ({job.seconds:.0f} s so far)")

    with st.container(key=key):
        progress()
