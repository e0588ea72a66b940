"""The GPU page's long work, off the request path: the doctor's checks and the CPU sweep.

Each runs as a child process (``python -m flashviz.gpu.doctor --json``,
``python -m flashviz.perf.cpu_sweep_job``) on ``flashviz.app.jobs.SLOT``, one job at a time
per server: its memory is returned when it ends, and the server's Python keeps answering
clicks meanwhile. The checks run once per server process. Each CPU sweep click may use
``SWEEP_CPU_S`` of CPU; every size measured is kept in the server's cache, keyed by (n, d),
so a later click measures only what is missing.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import flashviz
from flashviz.app.cached import CACHE
from flashviz.app.jobs import SLOT, Job
from flashviz.core.measurement import CpuResult
from flashviz.gpu.doctor import FAILED, Check
from flashviz.lab.budget import TIME_BUDGET

ROOT = Path(flashviz.__file__).resolve().parents[1]
SWEEP_CPU_S = TIME_BUDGET  # server CPU one click may use, as for a problem
DOCTOR_TIMEOUT_S = 180.0
DOCTOR_LABEL, SWEEP_LABEL = "Checking the GPU layers", "CPU sweep"
_checks: list[Check] = []  # the doctor's checks, once per process
_measured_ns: set[int] = set()  # sizes some click has measured (at some d)


@dataclasses.dataclass(frozen=True)
class SweepState:
    """Where the sizes of one sweep stand: measured, too costly for a click, not yet run."""

    results: list[CpuResult]
    over_budget: dict[int, float]  # n -> predicted CPU seconds, above SWEEP_CPU_S
    pending: list[int]


def checks() -> list[Check] | None:
    """The doctor's checks, or None before they have run in this process."""
    return list(_checks) or None


def start_checks(owner: str) -> Job | None:
    """Run the doctor in a child process, unless a job runs (None)."""
    return SLOT.try_start(DOCTOR_LABEL, owner, _doctor)


def _child(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", *args]


def _doctor(job: Job) -> None:
    job.status = "in a separate process, once for this server"
    try:
        done = subprocess.run(
            _child(["flashviz.gpu.doctor", "--json"]),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=DOCTOR_TIMEOUT_S,
        )
        found = [Check(**c) for c in json.loads(done.stdout)]
    except (subprocess.TimeoutExpired, ValueError, TypeError) as exc:
        detail = f"the check process did not report ({type(exc).__name__})"
        found = [Check("doctor", FAILED, detail, "run python -m flashviz.gpu.doctor to see why")]
    _checks[:] = found


def _key(n: int, d: int) -> tuple:
    return ("cpu sweep", n, d)


def _over_key(n: int, d: int) -> tuple:
    return ("cpu sweep over budget", n, d)


def sweep_state(ns: Sequence[int], d: int) -> SweepState:
    results, over, pending = [], {}, []
    for n in sorted(set(ns)):
        hit, value = CACHE.lookup(_key(n, d))
        over_hit, predicted_s = CACHE.lookup(_over_key(n, d))
        if hit:
            results.append(value[0])
        elif over_hit:
            over[n] = predicted_s
        else:
            pending.append(n)
    return SweepState(results, over, pending)


def start_sweep(ns: Sequence[int], d: int, owner: str) -> Job | None:
    """Measure the sizes of ``ns`` not measured yet in a child process within ``SWEEP_CPU_S``;
    None while another job runs."""
    todo = sweep_state(ns, d).pending
    return SLOT.try_start(f"{SWEEP_LABEL}, d = {d}", owner, lambda job: _sweep(job, todo, d, owner))


def _sweep(job: Job, ns: Sequence[int], d: int, owner: str) -> None:
    costs = []
    for m in sorted(_measured_ns):  # what earlier clicks measured at this d, if still kept
        hit, value = CACHE.lookup(_key(m, d))
        if hit:
            costs.append(f"{m}={value[1]}")
    args = ["flashviz.perf.cpu_sweep_job", "--d", str(d), "--ns", *map(str, ns),
            "--cpu-budget", str(SWEEP_CPU_S), "--costs", *costs]  # fmt: skip
    job.status = "starting"
    with subprocess.Popen(_child(args), cwd=ROOT, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        for done, text in enumerate(child.stdout, start=1):
            line = json.loads(text)
            n = line["n"]
            if "result" in line:
                _measured_ns.add(n)
                CACHE.store(_key(n, d), (CpuResult(**line["result"]), line["cpu_s"]), owner)
                job.status = f"n = {n} measured"
            elif line["predicted_s"] > SWEEP_CPU_S:
                CACHE.store(_over_key(n, d), line["predicted_s"], owner)
            job.fraction = done / len(ns)
    if child.returncode:
        raise RuntimeError(f"the sweep process ended with code {child.returncode}")
