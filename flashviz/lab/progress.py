"""Counters for one step of a trace: tiles done, HBM bytes moved so far, on-chip bytes, and
the rows rescaled and the rescales skipped so far (FA4's lazy rescaling keeps a stale max).

The per-step sums are computed once per trace and live exactly as long as the trace (a
weak-keyed table): whoever caches the trace decides when both go, never this module.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np

from flashviz.core.costs import naive_hbm, sram_bytes, step_hbm
from flashviz.core.trace import TileStep, Trace

ITEMSIZE = 4  # bytes per number, as a float32 GPU kernel would move them


@dataclass(frozen=True)
class Progress:
    tiles_done: int
    tiles_total: int
    hbm_bytes: int  # moved by FlashAttention-2 up to and including this step
    hbm_bytes_total: int  # moved by the whole FlashAttention-2 run
    naive_hbm_bytes: int  # moved by standard attention (writes and reads S and P)
    sram_bytes: int  # on chip while one tile is processed
    rescales: int  # (row, tile) pairs rescaled so far (the max rose above one already held)
    rescales_skipped: int  # (row, tile) pairs whose max rose but was kept stale (FA4)
    rescales_total: int  # rescaled in the whole run
    rescales_skipped_total: int  # kept stale in the whole run


_CUMULATIVE: weakref.WeakKeyDictionary[Trace, tuple[np.ndarray, ...]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()  # sessions run in threads


def _cumulative(trace: Trace) -> tuple[np.ndarray, ...]:
    """Per step, cumulative: tiles done, HBM bytes moved, rows rescaled, rescales skipped;
    kept while ``trace`` is."""
    with _LOCK:
        found = _CUMULATIVE.get(trace)
    if found is None:
        tiles = np.cumsum([isinstance(s, TileStep) for s in trace.steps])
        hbm = np.cumsum([step_hbm(s, trace.d, ITEMSIZE).total for s in trace.steps])
        rescaled, skipped = (np.cumsum([_rows(s, name) for s in trace.steps])
                             for name in ("rescaled", "stale"))  # fmt: skip
        found = (tiles, hbm, rescaled, skipped)
        with _LOCK:
            _CUMULATIVE[trace] = found
    return found


def _rows(step: object, name: str) -> int:
    """A tile step's rows with flag ``name`` (rescaled, stale); 0 for other steps."""
    return int(getattr(step, name).sum()) if isinstance(step, TileStep) else 0


def progress(trace: Trace, step_index: int) -> Progress:
    """The counters after step ``step_index`` of ``trace``."""
    tiles, hbm, rescaled, skipped = _cumulative(trace)
    return Progress(
        tiles_done=int(tiles[step_index]),
        tiles_total=int(tiles[-1]),
        hbm_bytes=int(hbm[step_index]),
        hbm_bytes_total=int(hbm[-1]),
        naive_hbm_bytes=naive_hbm(trace.n_q, trace.n_k, trace.d, ITEMSIZE).total,
        sram_bytes=sram_bytes(trace.block_q, trace.block_kv, trace.d, ITEMSIZE).total,
        rescales=int(rescaled[step_index]),
        rescales_skipped=int(skipped[step_index]),
        rescales_total=int(rescaled[-1]),
        rescales_skipped_total=int(skipped[-1]),
    )
