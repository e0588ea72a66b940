"""flashviz.lab.progress: counters per step, and derived data that never outlives its trace."""

from __future__ import annotations

import gc
import weakref

import numpy as np

from flashviz import record_trace
from flashviz.core import costs
from flashviz.core.trace import TileStep
from flashviz.lab.progress import progress


def test_counters_add_up_to_the_whole_run(make_qkv) -> None:
    q, k, v = make_qkv(37, 50, 8)
    trace = record_trace(q, k, v, block_q=8, block_kv=16, causal=True)
    first, last = progress(trace, 0), progress(trace, len(trace.steps) - 1)
    assert first.tiles_done == 0 and last.tiles_done == last.tiles_total
    assert last.tiles_total == sum(isinstance(s, TileStep) for s in trace.steps)
    assert last.hbm_bytes == last.hbm_bytes_total
    assert last.hbm_bytes_total == costs.fa2_hbm(37, 50, 8, 8, 16, causal=True, itemsize=4).total
    hbm = [progress(trace, i).hbm_bytes for i in range(len(trace.steps))]
    assert np.all(np.diff(hbm) >= 0)


def test_a_released_trace_is_collected(make_qkv) -> None:
    """progress() keeps no trace alive: its per-trace sums go with the trace."""
    q, k, v = make_qkv(64, 64, 16)
    traces = [record_trace(q, k, v, block_q=8, block_kv=8) for _ in range(3)]
    for trace in traces:
        progress(trace, 5)
    refs = [weakref.ref(t) for t in traces]
    del trace, traces
    gc.collect()
    assert all(ref() is None for ref in refs)
