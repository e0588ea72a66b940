"""A recorded trace as one ``.npz``, laid out to diff against your own kernel's m, l, o.

Your kernel loops over K/V blocks j inside each query block; dump its state after each j
into buffers indexed by (j, query row) and compare them with these arrays, entry by entry,
whatever the loop order or the launch grid. All names are lowercase; n_j = number of K/V
blocks, n_i = number of Q blocks. Every array is numeric, bool or unicode, so the file
loads with ``allow_pickle=False``.

Running state, after K/V block j was folded into query row r (``[j, r]``):

- ``m`` (n_j, n_q): running max m_r; ``l`` (n_j, n_q): running sum l_r; ``alpha`` (n_j, n_q):
  the rescale factor exp(m_prev - m) applied at that tile;
- ``o`` (n_j, n_q, d): the unnormalised accumulator o_r (divide by ``l`` for the output);
- ``row_ran`` (n_j, n_q) bool: whether tile (i(r), j) ran; where it did not (skipped by
  the causal mask) the entries above are NaN. Use this mask, not ``isnan``: a trace
  recorded with a bug (``bug``) may hold NaN where a tile ran.

Scores and probabilities of every tile that ran, at their global positions:

- ``s`` (n_q, n_k): scaled scores tau q_r . k_c (-inf where masked inside a tile);
  ``p`` (n_q, n_k): P~ = exp(s - m) with the m of that tile; ``tile_ran`` (n_i, n_j) bool.
  Entries of skipped tiles are NaN.

Final results: ``o_final`` (n_q, d) = O, ``lse_final`` (n_q,) = L = m + log l (natural log;
-inf for a row that sees no key), ``m_final`` and ``l_final`` (n_q,).

Steps, in execution order (what the app's step slider walks), n_steps of them:
``step_kind`` ("load_q", "tile" or "write"), ``step_i``, ``step_j`` (-1 unless a tile),
``step_rows`` and ``step_cols`` (n_steps, 2) as [start, stop) ((0, 0) cols unless a
tile), ``step_tile_kind`` ("full", "partial" or ""). ``step_state(arrays, t)`` rebuilds
step t's m, l, alpha and o from the arrays above.

The problem: ``q`` (n_q, d), ``k``, ``v`` (n_k, d) as the run saw them (rounded to the
precision's storage type, widened exactly to the state type), ``scale`` (tau), ``block_q``,
``block_kv``, ``causal``, ``causal_align``, ``mask`` (a FlexAttention mask: a built-in
mask's ``MaskSpec``, or the name of one's own mask_mod; "" without one), ``visible``
(n_q, n_k) bool (the keys each query sees, whatever the mask), ``precision``, ``bug`` (""
for the correct run) and ``format`` (``FORMAT``). Floats are in the run's state type
(float64, or float32 for the 16-bit and float32 precisions).

Diff one's own kernel (run on ``t["q"], t["k"], t["v"]`` with the same blocks)::

    t = np.load("flashviz_trace.npz", allow_pickle=False)
    mine_m = my_debug_m.reshape(t["m"].shape)   # m after each K/V block j, (n_j, n_q)
    ran = t["row_ran"]
    bad = ran & ~np.isclose(mine_m, t["m"], rtol=1e-6, atol=1e-6)
    print(np.argwhere(bad)[:5])                 # first (j, row) pairs where m differs

Kernels that keep the max of the unscaled scores (flash-attn's CUDA kernel does) compare
``mine_m * t["scale"]``; those in base 2 (exp2, Triton's tutorial) compare
``mine_m * ln(2)``. ``l`` and ``o`` do not depend on that choice.
"""

from __future__ import annotations

import io

import numpy as np

from flashviz.core.masks import mask_spec
from flashviz.core.trace import TileStep, Trace, WriteStep

FORMAT = "flashviz-trace-1"


def _nan(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    return np.full(shape, np.nan, dtype=dtype)


def _state_grids(trace: Trace, dtype: np.dtype) -> dict[str, np.ndarray]:
    """m, l, alpha (n_j, n_q), o (n_j, n_q, d), s and p (n_q, n_k), and where tiles ran."""
    n_i, n_j = trace.grid
    grids = {name: _nan((n_j, trace.n_q), dtype) for name in ("m", "l", "alpha")}
    grids["o"] = _nan((n_j, trace.n_q, trace.d), dtype)
    grids["s"], grids["p"] = (
        _nan((trace.n_q, trace.n_k), dtype),
        _nan((trace.n_q, trace.n_k), dtype),
    )
    grids["row_ran"] = np.zeros((n_j, trace.n_q), dtype=bool)
    grids["tile_ran"] = np.zeros((n_i, n_j), dtype=bool)
    for step in trace.tile_steps():
        r, c = slice(step.rows.start, step.rows.stop), slice(step.cols.start, step.cols.stop)
        for name in ("m", "l", "alpha", "o"):
            grids[name][step.j, r] = getattr(step, name)  # state after K/V block j
        grids["s"][r, c], grids["p"][r, c] = step.s, step.p
        grids["row_ran"][step.j, r] = True
        grids["tile_ran"][step.i, step.j] = True
    return grids


def _step_index(trace: Trace) -> dict[str, np.ndarray]:
    """Per step: kind, i, j, [start, stop) of rows and cols, tile kind."""
    return {
        "step_kind": np.array([s.kind for s in trace.steps], dtype="<U6"),
        "step_i": np.array([s.i for s in trace.steps], dtype=np.int64),
        "step_j": np.array(
            [s.j if isinstance(s, TileStep) else -1 for s in trace.steps], dtype=np.int64
        ),
        "step_rows": np.array([(s.rows.start, s.rows.stop) for s in trace.steps], np.int64),
        "step_cols": np.array(
            [
                (s.cols.start, s.cols.stop) if isinstance(s, TileStep) else (0, 0)
                for s in trace.steps
            ],
            dtype=np.int64,
        ).reshape(-1, 2),
        "step_tile_kind": np.array(
            [s.tile_kind if isinstance(s, TileStep) else "" for s in trace.steps],
            dtype="<U7",
        ),
    }


def _mask_name(trace: Trace) -> str:
    """The FlexAttention mask: a built-in one's MaskSpec, one's own mask_mod's name, or ""."""
    if trace.mask_mod is None:
        return ""
    spec = mask_spec(trace.mask_mod)
    if spec is None:
        return f"{getattr(trace.mask_mod, '__name__', 'mask_mod')} (a Python mask_mod)"
    return repr(spec)


def _visible(trace: Trace) -> np.ndarray:
    """(n_q, n_k) bool: the keys each query sees."""
    seen = trace.dense_visible()
    shape = (trace.n_q, trace.n_k)
    return np.ones(shape, dtype=bool) if seen is None else np.broadcast_to(seen, shape).copy()


def trace_arrays(trace: Trace) -> dict[str, np.ndarray]:
    """Every array of the export (see the module docstring for names and shapes)."""
    dtype = np.asarray(trace.o).dtype  # the state type
    writes = [s for s in trace.steps if isinstance(s, WriteStep)]
    finals = {name: np.empty(trace.n_q, dtype=dtype) for name in ("m_final", "l_final")}
    for w in writes:
        finals["m_final"][w.rows.start : w.rows.stop] = w.m
        finals["l_final"][w.rows.start : w.rows.stop] = w.l
    problem = {
        "q": trace.q.astype(dtype),
        "k": trace.k.astype(dtype),
        "v": trace.v.astype(dtype),
        "scale": np.array(trace.scale, dtype=np.float64),
        "block_q": np.array(trace.block_q, dtype=np.int64),
        "block_kv": np.array(trace.block_kv, dtype=np.int64),
        "causal": np.array(trace.causal, dtype=bool),
        "causal_align": np.array(trace.causal_align),
        "mask": np.array(_mask_name(trace)),
        "visible": _visible(trace),
        "precision": np.array(trace.precision),
        "bug": np.array(trace.bug or ""),
        "format": np.array(FORMAT),
    }
    return {
        **problem,
        **_state_grids(trace, dtype),
        "o_final": np.asarray(trace.o, dtype=dtype),
        "lse_final": np.asarray(trace.lse, dtype=dtype),
        **finals,
        **_step_index(trace),
    }


def trace_npz(trace: Trace, *, compressed: bool = True) -> bytes:
    """The trace as ``.npz`` bytes (``np.savez_compressed`` unless ``compressed=False``)."""
    buffer = io.BytesIO()
    # NumPy's stubs put savez's allow_pickle keyword beside its **kwds of arrays: mypy
    # cannot tell that no array of the dict is named "allow_pickle"
    save = np.savez_compressed if compressed else np.savez
    save(buffer, **trace_arrays(trace))  # type: ignore[arg-type]
    return buffer.getvalue()


def read_trace_npz(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an exported trace, loaded without pickle."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    if arrays.get("format") != FORMAT:
        raise ValueError(f"not a flashviz trace export (format {FORMAT!r} expected)")
    return arrays


def step_state(arrays: dict[str, np.ndarray], t: int) -> dict[str, object]:
    """Step t's kind, i, j, rows, cols and state m, l, alpha, o, as the trace holds them.

    For a "load_q" step the empty state (m = -inf, l = 0, o = 0); for a "tile" step the
    state after the tile (alpha its rescale factor); for a "write" step the final m, l and
    the normalised output rows o (alpha None everywhere but tiles).
    """
    kind, i, j = str(arrays["step_kind"][t]), int(arrays["step_i"][t]), int(arrays["step_j"][t])
    rows, cols = range(*arrays["step_rows"][t]), range(*arrays["step_cols"][t])
    r = slice(rows.start, rows.stop)
    dtype, d = arrays["o_final"].dtype, arrays["o_final"].shape[1]
    state: dict[str, object] = {"kind": kind, "i": i, "j": j, "rows": rows, "cols": cols}
    if kind == "load_q":
        m, l, o = (
            np.full(len(rows), -np.inf, dtype),
            np.zeros(len(rows), dtype),
            np.zeros((len(rows), d), dtype),
        )
        return {**state, "m": m, "l": l, "alpha": None, "o": o}
    if kind == "write":
        m, l, o = arrays["m_final"][r], arrays["l_final"][r], arrays["o_final"][r]
        return {**state, "m": m, "l": l, "alpha": None, "o": o, "lse": arrays["lse_final"][r]}
    return {
        **state,
        **{name: arrays[name][j, r] for name in ("m", "l", "alpha", "o")},
        "s": arrays["s"][r, cols.start : cols.stop],
        "p": arrays["p"][r, cols.start : cols.stop],
    }
