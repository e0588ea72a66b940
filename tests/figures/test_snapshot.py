"""Figure JSON of a fixed set of problems and steps is byte-identical to the recorded one.

Guards refactors that must not change what a person sees: every figure builder of
``flashviz.figures`` is called on fixed inputs and the SHA-256 of ``fig.to_json()`` is
compared with ``tests/data/figure_snapshot.json``. When a figure is meant to change, rewrite
the file with ``FLASHVIZ_WRITE_SNAPSHOT=1 python -m pytest tests/figures/test_snapshot.py``
and say so in the commit. The Plotly version is recorded with the hashes: the JSON is
Plotly's, so a different Plotly is a different snapshot (requirements-dev.txt pins it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go
import pytest

from flashviz.app.charts import themed
from flashviz.core.measurement import CpuResult
from flashviz.core.precision import PRECISIONS
from flashviz.core.trace import TileStep
from flashviz.figures import (
    accumulator_figure,
    figure_context,
    stats_figure,
    tile_figure,
    tile_map_figure,
)
from flashviz.figures.alignment import alignment_flops_figure, alignment_map_figure
from flashviz.figures.benchmarks import cpu_benchmark_figure, gpu_benchmark_figure, roofline_figure
from flashviz.figures.correctness import error_figure
from flashviz.figures.debugger import CORRECT, estimate_figure, scores_figure, state_figure
from flashviz.figures.fa1_fa2 import counters_figure, hbm_over_n_figure, loop_orders_figure
from flashviz.figures.precision import (
    breakdown_figure,
    forms_table_figure,
    gap_sweep_figure,
    row_error_figure,
    underflow_figure,
)
from flashviz.figures.whole_run import whole_run_figure
from flashviz.gpu.launcher import BenchRow
from flashviz.lab.alignment import analyse_both
from flashviz.lab.bugzoo import debug_row
from flashviz.lab.exp2_form import compare_forms, forms_table
from flashviz.lab.fa_compare import compare, hbm_over_n
from flashviz.lab.precision_errors import error_breakdown
from flashviz.lab.problem import ProblemSpec, build_trace, spec_inputs
from flashviz.lab.row_input import make_row, row_values
from flashviz.lab.underflow import (
    UNDERFLOW_TYPES,
    gap_sweep,
    jump_row,
    online_row,
    underflow_limits,
)
from flashviz.perf.roofline import KNOWN_GPUS, expect

SNAPSHOT = Path(__file__).parent / "data" / "figure_snapshot.json"

# Problems of the stepper: small and square, ragged causal both ways, a bug, low precision.
SPECS = {
    "default": ProblemSpec(),
    "ragged_causal_br": ProblemSpec(n_q=13, n_k=21, head_dim=5, block_q=4, block_kv=6,
                                    causal=True, pattern="random", seed=3),
    "ragged_causal_tl": ProblemSpec(n_q=21, n_k=13, head_dim=3, block_q=8, block_kv=4,
                                    causal=True, causal_align="top_left", pattern="sink"),
    "bug_no_rescale_o": ProblemSpec(n_q=8, n_k=24, head_dim=4, block_q=4, block_kv=4,
                                    bug="no_rescale_o", pattern="spiky", seed=7),
    "float16": ProblemSpec(n_q=16, n_k=16, head_dim=8, precision="float16", pattern="similar"),
    "large": ProblemSpec(n_q=512, n_k=512, head_dim=64, block_q=64, block_kv=64),
}  # fmt: skip


def _stepper_cases() -> dict[str, Callable[[], go.Figure]]:
    cases: dict[str, Callable[[], go.Figure]] = {}
    for name, spec in SPECS.items():
        ctx = figure_context(build_trace(spec))
        last = len(ctx.trace.steps) - 1
        tiles = [k for k, step in enumerate(ctx.trace.steps) if isinstance(step, TileStep)]
        for k in sorted({0, 1, 2, last // 2, last, tiles[0], tiles[len(tiles) // 2], tiles[-1]}):
            cases[f"{name}/tile_map/{k}"] = lambda c=ctx, k=k: tile_map_figure(c, k)
            cases[f"{name}/stats/{k}"] = lambda c=ctx, k=k: stats_figure(c, k, width=1200)
            cases[f"{name}/accumulator/{k}"] = lambda c=ctx, k=k: accumulator_figure(c, k)
        for k in sorted({tiles[0], tiles[1], tiles[len(tiles) // 2], tiles[-1]}):
            cases[f"{name}/tile/{k}"] = lambda c=ctx, k=k: tile_figure(c, k, width=1200)
            cases[f"{name}/tile_fixed/{k}"] = lambda c=ctx, k=k: tile_figure(
                c, k, height=400, width=700, tile_scale=False
            )
        cases[f"{name}/errors"] = lambda c=ctx: error_figure(c)
        if name != "large":
            cases[f"{name}/whole_run"] = lambda c=ctx: whole_run_figure(c)
    ctx = figure_context(build_trace(SPECS["default"]))
    cases["default/whole_run/dark"] = lambda: themed(whole_run_figure(ctx), "dark")
    first_tile = next(k for k, st in enumerate(ctx.trace.steps) if isinstance(st, TileStep))
    cases["default/tile/dark"] = lambda: themed(tile_figure(ctx, first_tile, width=1200), "dark")
    return cases


def _lab_cases() -> dict[str, Callable[[], go.Figure]]:
    cases: dict[str, Callable[[], go.Figure]] = {}
    views = analyse_both(13, 21, 8, 4, 6)
    cases["causal/map"] = lambda: alignment_map_figure(views)
    cases["causal/flops"] = lambda: alignment_flops_figure(views)

    for pattern in ("random", "large logits", "empty row"):
        scores = make_row(pattern, 37, 8, 5)
        values = row_values(scores.size, 3, 5)
        runs = {key: debug_row(scores, 8, values, None if key == CORRECT else key)
                for key in (CORRECT, "no_rescale_o", "no_max", "no_inf_guard")}  # fmt: skip
        for step in (0, 2, len(runs[CORRECT]) - 1):
            tag = f"debugger/{pattern}/{step}"
            cases[f"{tag}/scores"] = lambda s=scores, r=runs, t=step: scores_figure(
                s, r[CORRECT], t
            )
            cases[f"{tag}/state"] = lambda r=runs, t=step: state_figure(r, t, height=380)
            cases[f"{tag}/estimate"] = lambda r=runs, t=step: estimate_figure(
                r, t, component=1, height=440
            )

    spec = ProblemSpec(n_q=24, n_k=40, head_dim=8, block_q=8, block_kv=8, causal=True)
    q, k, v = spec_inputs(spec)
    runs = {p: error_breakdown(q, k, v, precision=p, **spec.tiling) for p in PRECISIONS}
    cases["precision/breakdown"] = lambda: breakdown_figure(list(runs.values()))
    for p in ("float16", "bfloat16"):
        cases[f"precision/row_error/{p}"] = lambda b=runs[p]: row_error_figure(b)
    limits = [underflow_limits(name) for name in UNDERFLOW_TYPES]
    gaps = np.linspace(0.0, 110.0, 881)
    cases["precision/underflow"] = lambda: underflow_figure(limits, gaps, 20.0)
    sweep_gaps = np.arange(0.0, 40.5, 0.5)
    sweep = gap_sweep(sweep_gaps, chunk=16, n=64, base=0.0)
    cases["precision/gap_sweep"] = lambda: gap_sweep_figure(
        sweep_gaps, sweep, underflow_limits("float16"), 20.0
    )
    scores, values = jump_row(n=64, base=0.0, gap=20.0)
    state_runs = {name: online_row(scores, values, 16, name) for name in UNDERFLOW_TYPES}
    assert state_runs  # online_row on every type runs; the page draws its numbers as text
    forms = compare_forms(q, k, v, i=1, dtype="float32", **spec.tiling)
    cases["precision/forms"] = lambda: forms_table_figure(forms_table(forms, 3, 1), "row 3")

    cmp = compare(q, k, v, **spec.tiling)
    n_steps = min(len(cmp.fa1.steps), len(cmp.fa2.steps))
    for k1, k2 in ((0, 0), (5, 7), (n_steps - 1, n_steps - 1)):
        cases[f"fa1/orders/{k1}/{k2}"] = lambda a=k1, b=k2: loop_orders_figure(cmp, a, b)
        cases[f"fa1/counters/{k1}/{k2}"] = lambda a=k1, b=k2: counters_figure(cmp, a, b)
    h = hbm_over_n(tuple(2**p for p in range(7, 15)), 64, 16384, True)
    cases["fa1/hbm_over_n"] = lambda: hbm_over_n_figure(h)

    gpu = KNOWN_GPUS[2]
    cases["gpu/roofline"] = lambda: roofline_figure([expect(n, 64, gpu) for n in (256, 1024)], gpu)
    rows = [
        BenchRow("naive", 1024, 64, 8, False, "ok", 1.5, 3 << 20, 12.0, 1e-6),
        BenchRow("flash", 1024, 64, 8, False, "ok", 0.75, 1 << 20, 24.0, 2e-6),
        BenchRow("naive", 65536, 64, 8, False, "out of memory"),
        BenchRow("flash", 65536, 64, 8, False, "wrong result", detail="o off by 1"),
    ]
    cases["gpu/sweep"] = lambda: gpu_benchmark_figure(rows)
    cpu = [CpuResult(n, 64, 1e-3 * n, 2e-3 * n, 8 * n * n, 64 * n, 1e-7, 2e-7) for n in (256, 512)]
    cases["gpu/cpu_sweep"] = lambda: cpu_benchmark_figure(cpu)
    return cases


def _digests() -> dict[str, str]:
    cases = {**_stepper_cases(), **_lab_cases()}
    return {
        name: hashlib.sha256(make().to_json().encode()).hexdigest() for name, make in cases.items()
    }


def test_figure_json_is_byte_identical_to_the_snapshot() -> None:
    found = _digests()
    if os.environ.get("FLASHVIZ_WRITE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        payload = {"plotly": plotly.__version__, "figures": found}
        SNAPSHOT.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"wrote {len(found)} figure digests to {SNAPSHOT}")
    recorded = json.loads(SNAPSHOT.read_text())
    assert recorded["plotly"] == plotly.__version__, (
        f"the snapshot was taken with Plotly {recorded['plotly']}, this is {plotly.__version__}"
    )
    assert len(found) >= 150, f"the snapshot covers only {len(found)} figures"
    assert found.keys() == recorded["figures"].keys()
    changed = sorted(name for name in found if found[name] != recorded["figures"][name])
    assert not changed, f"{len(changed)} of {len(found)} figures changed: {changed[:20]}"
