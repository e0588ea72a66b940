"""One background job at a time per server process, for work too long for a click.

The GPU page's doctor check and CPU sweep run here (each in a child process of its own, so
their memory is returned when they end and Python in the server is not slowed). A click that
finds the slot busy is told so; whoever waits sees the running job's progress.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Job:
    """A running or finished job; ``work`` updates ``fraction`` and ``status`` as it goes."""

    label: str
    owner: str
    started: float = field(default_factory=time.monotonic)
    fraction: float = 0.0
    status: str = ""
    finished: bool = False
    error: str | None = None

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


class JobSlot:
    """At most one job running; ``try_start`` refuses while one does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.job: Job | None = None

    def running(self) -> Job | None:
        job = self.job
        return job if job is not None and not job.finished else None

    def try_start(self, label: str, owner: str, work: Callable[[Job], None]) -> Job | None:
        """Run ``work(job)`` on a thread and return the job, or None while another runs."""
        with self._lock:
            if self.running() is not None:
                return None
            job = self.job = Job(label, owner)
        threading.Thread(target=self._run, args=(job, work), name=label, daemon=True).start()
        return job

    def wait(self, timeout_s: float) -> bool:
        """Block until no job runs (for scripts and tests); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.running() is not None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    @staticmethod
    def _run(job: Job, work: Callable[[Job], None]) -> None:
        try:
            work(job)
        except Exception as exc:  # shown to whoever looks: the slot must free up
            job.error = f"{type(exc).__name__}: {exc}"
        finally:
            job.fraction, job.finished = 1.0, True


SLOT = JobSlot()
