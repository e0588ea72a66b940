"""Play / Pause for a page's step: a fragment's timer (``run_every``) that steps it on.

Shared by the stepper and the backward page. A ``Player`` names the session-state keys of
one page's play state: ``step`` (the step index), ``_<prefix>play`` (playing or not),
``_<prefix>play_step`` (the step counted while playing), ``_<prefix>user_moved`` (a button
press while playing), ``<prefix>speed`` (the speed widget) and ``btn_<prefix>play`` (the
button). The stepper's prefix is "".

While playing, the step is counted in ``_play_step``, not read back from the slider: a
timer rerun that starts before the browser drew the last step would carry the slider's old
value and step back. The page hides its slider while playing (``step_controls(...,
slider=not playing)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

SPEEDS = {"0.5 step/s": 2.0, "1 step/s": 1.0, "2 steps/s": 0.5, "4 steps/s": 0.25}


@dataclass(frozen=True)
class Player:
    step: str  # session-state key of the step index
    prefix: str = ""

    @property
    def playing_key(self) -> str:
        return f"_{self.prefix}play"

    @property
    def play_step_key(self) -> str:
        return f"_{self.prefix}play_step"

    @property
    def moved_key(self) -> str:
        return f"_{self.prefix}user_moved"

    @property
    def speed_key(self) -> str:
        return f"{self.prefix}speed"

    @property
    def button_key(self) -> str:
        return f"btn_{self.prefix}play"

    def playing(self) -> bool:
        return bool(st.session_state.get(self.playing_key, False))

    def stop(self) -> None:
        st.session_state[self.playing_key] = False

    def user_moved(self) -> None:
        """A step button or the slider moved the step (while playing: continue from it)."""
        st.session_state[self.moved_key] = True

    def slider_moved(self) -> None:
        """The step slider changed. While playing it is hidden, so a change is a stale value
        the browser sent before it drew the Play rerun (the first timer run can carry the
        slider's old step): keep the played step instead of stepping back."""
        ss = st.session_state
        if self.playing() and self.play_step_key in ss:
            ss[self.step] = ss[self.play_step_key]
        else:
            self.user_moved()

    def _toggle(self) -> None:
        st.session_state[self.playing_key] = not self.playing()

    def controls(self, disabled: bool = False) -> float | None:
        """Play/pause and speed; returns the fragment's timer interval (None when paused)."""
        playing = self.playing()
        a, b = st.columns([1, 3])
        a.button(
            "Pause" if playing else "Play",
            disabled=disabled,
            key=self.button_key,
            on_click=self._toggle,
            icon=":material/pause:" if playing else ":material/play_arrow:",
        )
        b.select_slider("speed", list(SPEEDS), key=self.speed_key, label_visibility="collapsed")
        return SPEEDS[st.session_state[self.speed_key]] if playing else None

    def advance(self, last: int) -> None:
        """In the fragment, before the step is drawn: while playing, one step on (the last
        step stops the timer with a full rerun)."""
        ss = st.session_state
        if not self.playing():
            ss.pop(self.play_step_key, None)
            return
        if ss.pop(self.moved_key, False):  # a button while playing: continue from there
            ss[self.play_step_key] = ss[self.step]
            return
        k = min(max(int(ss.get(self.play_step_key, ss[self.step])), 0), last)
        if k >= last:
            ss[self.step], ss[self.playing_key] = last, False
            ss.pop(self.play_step_key, None)
            st.rerun(scope="app")  # drop the timer
        ss[self.step] = ss[self.play_step_key] = k + 1
