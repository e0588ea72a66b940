"""The CPU sweep's child process keeps to its CPU budget (``flashviz/perf/cpu_sweep_job.py``):
a size runs only when its predicted cost fits what is left. Costs come from a fake clock: a
size costs ``scale * n^2`` seconds, as the sweep's work does."""

from __future__ import annotations

import json
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from flashviz.core.measurement import CpuResult
from flashviz.perf.cpu_sweep_job import CALIBRATION_N, MARGIN, predicted, sweep_lines
from tests.support import ROOT

SIZES = (256, 512, 1024, 2048, 4096)


class FakeCpu:
    """``run(n, d)`` advances the clock by ``scale * n^2`` seconds and records n."""

    def __init__(self, scale: float) -> None:
        self.now, self.scale, self.ran = 0.0, scale, []

    def clock(self) -> float:
        return self.now

    def run(self, n: int, d: int) -> CpuResult:
        self.now += self.scale * n * n
        self.ran.append(n)
        return CpuResult(n, d, 1.0, 1.0, 1, 1, 0.0, 0.0)


def _sweep(ns, budget, costs, cpu):  # type: ignore[no-untyped-def]
    return list(sweep_lines(ns, 64, budget, costs, run=cpu.run, clock=cpu.clock))


def test_a_size_that_would_pass_the_budget_is_not_run_and_neither_are_larger_ones() -> None:
    cpu = FakeCpu(scale=1 / 256**2)  # n = 256 costs 1 s, 512 costs 4 s
    lines = _sweep([256, 512, 1024], budget=4.0, costs={}, cpu=cpu)
    assert cpu.ran == [256]
    assert [line["n"] for line in lines] == [256, 512]
    assert lines[1]["predicted_s"] == 4.0 * MARGIN


def test_without_a_smaller_measured_size_it_calibrates_at_the_smallest_size_first() -> None:
    cpu = FakeCpu(scale=1 / 4096**2)  # n = 4096 costs 1 s
    lines = _sweep([4096], budget=4.0, costs={}, cpu=cpu)
    assert cpu.ran == [CALIBRATION_N, 4096] and lines[-1]["n"] == 4096 and "result" in lines[-1]


def test_earlier_clicks_costs_predict_the_next_size() -> None:
    cpu = FakeCpu(scale=1e-9)
    lines = _sweep([4096], budget=4.0, costs={2048: 3.5}, cpu=cpu)  # predicts 17.5 s
    assert cpu.ran == [] and lines == [{"n": 4096, "d": 64, "predicted_s": 3.5 * 4 * MARGIN}]


@given(
    scale_ms=st.floats(0.001, 50.0),
    budget=st.floats(0.5, 10.0),
    ns=st.lists(st.sampled_from(SIZES), min_size=1, max_size=5),
)
def test_a_sweep_never_uses_more_than_its_budget(scale_ms: float, budget: float, ns) -> None:  # type: ignore[no-untyped-def]
    """With costs that grow as n^2 (what the prediction assumes), the CPU used stays within
    the budget whenever the calibrating size alone fits it."""
    cpu = FakeCpu(scale=scale_ms / 1000 / 256**2)
    calibration = cpu.scale * CALIBRATION_N**2
    lines = _sweep(ns, budget, {}, cpu)
    if calibration <= budget:
        assert cpu.now <= budget + 1e-9
    measured = [line["n"] for line in lines if "result" in line]
    assert measured == sorted(set(ns))[: len(measured)]  # smallest first, none skipped between


def test_predicted_uses_the_largest_smaller_measured_size() -> None:
    assert predicted(1024, {256: 1.0, 512: 2.0}) == 2.0 * 4 * MARGIN
    assert predicted(512, {512: 2.0}) == 2.0
    assert predicted(256, {512: 2.0}) is None


def test_the_child_process_prints_one_json_line_per_size() -> None:
    args = ["--d", "16", "--ns", "64", "128", "--cpu-budget", "4"]
    command = [sys.executable, "-m", "flashviz.perf.cpu_sweep_job", *args]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(line["n"], line["d"]) for line in lines] == [(64, 16), (128, 16)]
    assert all(CpuResult(**line["result"]).n == line["n"] for line in lines)
