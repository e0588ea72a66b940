"""The CPU sweep within a CPU budget, as a child process: one JSON line per size.

    python -m flashviz.perf.cpu_sweep_job --d 64 --ns 256 512 1024 --cpu-budget 4 [--costs 256=0.02]

Sizes run in ascending order. A size runs only when the CPU time used so far plus its
predicted cost fits the budget: the cost of the largest smaller size already measured (here
or in ``--costs``, from earlier runs) times (n / m)^2 times ``MARGIN``; with none, the
smallest size of the sweep is measured first to calibrate. Lines:
``{"n", "d", "cpu_s", "result": {CpuResult fields}}`` for a measured size, then at most one
``{"n", "d", "predicted_s"}`` for the first size that did not fit (larger ones did not either).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence

from flashviz.core.measurement import CpuResult
from flashviz.perf.cpu_bench import measure

MARGIN = 1.25  # a larger n costs a little more than n^2 predicts (caches)
CALIBRATION_N = 256


def predicted(n: int, costs: dict[int, float]) -> float | None:
    """Predicted CPU seconds at ``n`` from the largest smaller measured size, or None."""
    below = [m for m in costs if m <= n]
    if not below:
        return None
    m = max(below)
    return costs[m] * (n / m) ** 2 * (MARGIN if m < n else 1.0)


def sweep_lines(
    ns: Sequence[int],
    d: int,
    budget_s: float,
    costs: dict[int, float],
    run: Callable[[int, int], CpuResult] = lambda n, d: measure(n, d, repeat=3),
    clock: Callable[[], float] = time.process_time,
) -> Iterator[dict]:
    """The lines of a budgeted sweep (see the module's docstring); ``clock`` is CPU seconds."""
    costs = dict(costs)
    used = 0.0
    ns = sorted(set(ns))
    if ns and predicted(ns[0], costs) is None and ns[0] > CALIBRATION_N:
        started = clock()
        run(CALIBRATION_N, d)
        costs[CALIBRATION_N] = clock() - started
        used += costs[CALIBRATION_N]
    for n in ns:
        guess = predicted(n, costs)
        if guess is not None and used + guess > budget_s:
            yield {"n": n, "d": d, "predicted_s": guess}
            return
        started = clock()
        result = run(n, d)
        costs[n] = clock() - started
        used += costs[n]
        yield {"n": n, "d": d, "cpu_s": costs[n], "result": dataclasses.asdict(result)}


def parse_costs(items: Sequence[str]) -> dict[int, float]:
    return {int(n): float(s) for n, s in (item.split("=") for item in items)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d", type=int, required=True)
    parser.add_argument("--ns", type=int, nargs="+", required=True)
    parser.add_argument("--cpu-budget", type=float, required=True)
    parser.add_argument("--costs", nargs="*", default=[], help="n=seconds measured before")
    args = parser.parse_args(argv)
    for line in sweep_lines(args.ns, args.d, args.cpu_budget, parse_costs(args.costs)):
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
