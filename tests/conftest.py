"""Shared fixtures (fresh random inputs each run, with the seed printed for a replay), the
test tiers (applied by path) and the Hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from coverage import Coverage
from hypothesis import settings

# Tiers, by the folder under tests/ (README, "Tests"): -m unit is the fast loop for every
# change; timing runs alone, after the others, since other work on the CPU slows what it times.
TIERS = {
    "core": "unit", "lab": "unit", "io": "unit", "figures": "unit", "perf": "unit",
    "classroom": "unit",
    "app": "app", "gpu": "emulator", "browser": "browser", "timing": "timing", "cpus": "cpus",
}  # fmt: skip
TESTS = Path(__file__).parent
# --cov measures the GPU timings' code (README, "Set-up") while the tests of that code run
# (and while the tests are collected: the modules' own lines); during the other tests it is
# stopped: Python 3.11's trace hook, on in every frame and thread whatever .coveragerc
# includes, doubles the time of Python code.
COVERED = ("gpu/", "app/test_gpu_page.py", "test_bench.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(TESTS).parts
        item.add_marker(TIERS[folder[0]] if len(folder) > 1 else "unit")


@contextmanager
def _coverage_stopped(stop: bool) -> Iterator[None]:
    """Every running Coverage stopped (an xdist worker runs pytest-cov's and the one its
    subprocess hook started), then started again."""
    stopped = []
    while stop and (cov := Coverage.current()) is not None:
        cov.stop()
        stopped.append(cov)
    try:
        yield
    finally:
        for cov in reversed(stopped):
            cov.start()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    with _coverage_stopped(not item.path.relative_to(TESTS).as_posix().startswith(COVERED)):
        yield


# Hypothesis: "dev" (the default) for a quick loop, "ci" for the full run (README's command).
# Failures print the example and the blob that replays it.
settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=25, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator seeded afresh each time; the seed is printed (shown on failure)."""
    seed = int(np.random.SeedSequence().entropy % 2**32)
    print(f"rng seed: {seed}")
    return np.random.default_rng(seed)


@pytest.fixture
def make_qkv(rng: np.random.Generator) -> Callable[..., tuple[np.ndarray, ...]]:
    """make_qkv(n_q, n_k, d, lead=(), dtype=np.float64, magnitude=1.0) -> q, k, v."""

    def make(
        n_q: int,
        n_k: int,
        d: int,
        lead: tuple[int, ...] = (),
        dtype: type = np.float64,
        magnitude: float = 1.0,
    ) -> tuple[np.ndarray, ...]:
        q = rng.standard_normal((*lead, n_q, d)) * magnitude
        k = rng.standard_normal((*lead, n_k, d)) * magnitude
        v = rng.standard_normal((*lead, n_k, d))
        return tuple(x.astype(dtype) for x in (q, k, v))

    return make


# Scripts (README screenshots, latency and load measurements) and data, not tests.
collect_ignore = ["tools", "figures/data"]
