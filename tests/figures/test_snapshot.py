"""What a person sees in every figure of a fixed set of problems and steps is unchanged.

Guards refactors that must not change a figure: every figure builder of
``flashviz.figures`` is called on fixed inputs and its JSON is compared with
``tests/figures/data/figure_snapshot.json``: the structure exactly (traces, keys, strings,
array shapes, where NaN and infinities are) and the numbers to the significant digits the
precision they were computed in deserves (``tests/figures/figure_numbers.py``), so that
another CPU's rounding (another BLAS kernel, another SIMD ``exp``) passes and a real change
fails. When a figure is meant to change, rewrite the file with
``FLASHVIZ_WRITE_SNAPSHOT=1 python -m pytest tests/figures/test_snapshot.py`` and say so in
the commit. The structure is Plotly's JSON, so the Plotly version is recorded with it
(requirements-dev.txt pins it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go
import pytest

from flashviz.app.widgets.charts import themed
from flashviz.core.measurement import BenchRow, CpuResult
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
from flashviz.lab.alignment import analyse_both
from flashviz.lab.exp2_form import compare_forms, forms_table
from flashviz.lab.fa_compare import compare, hbm_over_n
from flashviz.lab.precision_errors import error_breakdown
from flashviz.lab.problem import build_trace, spec_inputs
from flashviz.lab.problem_spec import ProblemSpec
from flashviz.lab.row_debugger import debug_row
from flashviz.lab.row_input import make_row, row_values
from flashviz.lab.underflow import (
    UNDERFLOW_TYPES,
    gap_sweep,
    jump_row,
    online_row,
    underflow_limits,
)
from flashviz.perf.roofline import KNOWN_GPUS, expect
from tests.figures.figure_numbers import Tolerance, figure_parts, mismatches

SNAPSHOT = Path(__file__).parent / "data" / "figure_snapshot.json"

# The tolerance a figure's numbers deserve, by the precision they were computed in. The
# problems are unit-scale: float64 rounding noise on them stays far below 1e-12. A value
# that passed through 16-bit rounding may land on the neighbouring 16-bit number when the
# float32 value before it moves by one ulp (probability about 2^-13 per value).
TOLERANCES = {
    "float64": Tolerance(digits=6, floor=1e-6),
    "float32": Tolerance(digits=5, floor=1.0),
    "float16": Tolerance(digits=3, floor=1.0),
    "bfloat16": Tolerance(digits=2, floor=1.0),
}
RECORDED_DIGITS = 8  # significant digits kept in the snapshot: more than any tolerance compares

Case = tuple[str, Callable[[], go.Figure]]  # (precision of its numbers, figure builder)

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


def _stepper_cases() -> dict[str, Case]:
    cases: dict[str, Callable[[], go.Figure]] = {}
    precision: dict[str, str] = {}
    for name, spec in SPECS.items():
        ctx = figure_context(build_trace(spec))
        last = len(ctx.trace.steps) - 1
        tiles = [k for k, step in enumerate(ctx.trace.steps) if isinstance(step, TileStep)]
        steps = {0, 1, 2, last // 2, last, tiles[0], tiles[len(tiles) // 2], tiles[-1]}
        tile_steps = {tiles[0], tiles[1], tiles[len(tiles) // 2], tiles[-1]}
        if name == "large":  # downsampled views: their first and last tiles (40 kB a figure)
            steps, tile_steps = {tiles[0], tiles[-1]}, {tiles[-1]}
        for k in sorted(steps):
            cases[f"{name}/tile_map/{k}"] = lambda c=ctx, k=k: tile_map_figure(c, k)
            cases[f"{name}/stats/{k}"] = lambda c=ctx, k=k: stats_figure(c, k, width=1200)
            cases[f"{name}/accumulator/{k}"] = lambda c=ctx, k=k: accumulator_figure(c, k)
        for k in sorted(tile_steps):
            cases[f"{name}/tile/{k}"] = lambda c=ctx, k=k: tile_figure(c, k, width=1200)
            cases[f"{name}/tile_fixed/{k}"] = lambda c=ctx, k=k: tile_figure(
                c, k, height=400, width=700, tile_scale=False
            )
        cases[f"{name}/errors"] = lambda c=ctx: error_figure(c)
        if name != "large":
            cases[f"{name}/whole_run"] = lambda c=ctx: whole_run_figure(c)
        precision |= {case: spec.precision for case in cases if case.startswith(f"{name}/")}
    ctx = figure_context(build_trace(SPECS["default"]))
    cases["default/whole_run/dark"] = lambda: themed(whole_run_figure(ctx), "dark")
    first_tile = next(k for k, st in enumerate(ctx.trace.steps) if isinstance(st, TileStep))
    cases["default/tile/dark"] = lambda: themed(tile_figure(ctx, first_tile, width=1200), "dark")
    return {case: (precision.get(case, "float64"), make) for case, make in cases.items()}


def _lab_cases() -> dict[str, Case]:
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
    # numbers that passed through 16-bit or float32 rounding; the rest are float64
    precision = {
        "precision/breakdown": "bfloat16",  # every precision's errors, bfloat16's the coarsest
        "precision/row_error/float16": "float16",
        "precision/row_error/bfloat16": "bfloat16",
        "precision/underflow": "bfloat16",  # exp(-gap) rounded to each 16-bit type
        "precision/gap_sweep": "bfloat16",  # a row's state kept in each 16-bit type
        "precision/forms": "float32",  # both forms of the inner step in float32
    }
    return {case: (precision.get(case, "float64"), make) for case, make in cases.items()}


def test_figures_match_the_snapshot() -> None:
    cases = {**_stepper_cases(), **_lab_cases()}
    assert len(cases) >= 150, f"the snapshot covers only {len(cases)} figures"
    found = {name: figure_parts(make()) for name, (_, make) in cases.items()}
    if os.environ.get("FLASHVIZ_WRITE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        figures = {name: parts.record(RECORDED_DIGITS) for name, parts in found.items()}
        lines = [f" {json.dumps(name)}: {json.dumps(figures[name])}" for name in sorted(figures)]
        head = f'{{"plotly": {json.dumps(plotly.__version__)}, "figures": {{\n'
        SNAPSHOT.write_text(head + ",\n".join(lines) + "\n}}\n")
        pytest.skip(f"wrote {len(found)} figures to {SNAPSHOT}")
    recorded = json.loads(SNAPSHOT.read_text())
    assert recorded["plotly"] == plotly.__version__, (
        f"the snapshot was taken with Plotly {recorded['plotly']}, this is {plotly.__version__}"
    )
    assert found.keys() == recorded["figures"].keys()
    changed = {}
    for name, parts in found.items():
        tol = TOLERANCES[cases[name][0]]
        if problems := mismatches(parts, recorded["figures"][name], tol):
            changed[name] = problems
    report = "\n".join(f"{name}: {'; '.join(p)}" for name, p in list(changed.items())[:20])
    assert not changed, f"{len(changed)} of {len(found)} figures changed:\n{report}"
