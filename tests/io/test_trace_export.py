"""Trace export: every step's state round-trips bit for bit; the layout means what it says."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz import record_trace
from flashviz.core.masking import mask_offset
from flashviz.core.trace import LoadStep, TileStep, Trace, WriteStep
from flashviz.io.trace_export import FORMAT, read_trace_npz, step_state, trace_npz

CASES = [  # n_q, n_k, d, block_q, block_kv, causal, causal_align, precision, bug
    (7, 13, 3, 3, 4, False, "bottom_right", None, None),
    (13, 7, 5, 4, 3, True, "bottom_right", None, None),  # rows that see no key
    (13, 7, 5, 4, 3, True, "top_left", None, None),
    (16, 16, 8, 4, 4, True, "bottom_right", "float16", None),  # float32 state
    (9, 11, 4, 2, 5, True, "bottom_right", "bfloat16", None),
    (10, 6, 2, 3, 2, True, "bottom_right", None, "no_inf_guard"),  # NaN where tiles ran
    (1, 1, 1, 1, 1, False, "bottom_right", None, None),
]


def trace_for(rng: np.random.Generator, case: tuple) -> Trace:
    n_q, n_k, d, b_q, b_kv, causal, align, precision, bug = case
    q, k, v = (rng.standard_normal((n, d)) * 2 for n in (n_q, n_k, n_k))
    return record_trace(
        q, k, v, block_q=b_q, block_kv=b_kv, causal=causal, causal_align=align,
        precision=precision, bug=bug,
    )  # fmt: skip


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)  # NaN == NaN here, -inf == -inf


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("compressed", [True, False])
def test_every_step_round_trips_bit_for_bit(rng, case, compressed) -> None:
    trace = trace_for(rng, case)
    arrays = read_trace_npz(trace_npz(trace, compressed=compressed))
    assert len(arrays["step_kind"]) == len(trace.steps)
    for t, step in enumerate(trace.steps):
        got = step_state(arrays, t)
        assert (got["kind"], got["i"], got["rows"]) == (step.kind, step.i, step.rows)
        for name in ("m", "l", "o"):
            assert_same(got[name], getattr(step, name))
        if isinstance(step, TileStep):
            assert (got["j"], got["cols"]) == (step.j, step.cols)
            assert arrays["step_tile_kind"][t] == step.tile_kind
            for name in ("alpha", "s", "p"):
                assert_same(got[name], getattr(step, name).astype(got["m"].dtype))
        else:
            assert got["j"] == -1 and got["alpha"] is None and len(got["cols"]) == 0
        if isinstance(step, WriteStep):
            assert_same(got["lse"], step.lse)
        if isinstance(step, LoadStep):
            assert np.isneginf(got["m"]).all() and not got["l"].any() and not got["o"].any()


@pytest.mark.parametrize("case", CASES)
def test_problem_and_final_results_round_trip(rng, case) -> None:
    trace = trace_for(rng, case)
    a = read_trace_npz(trace_npz(trace))
    for name in ("q", "k", "v"):
        assert_same(a[name], getattr(trace, name))
    assert_same(a["o_final"], trace.o)
    assert_same(a["lse_final"], trace.lse)
    assert a["scale"] == trace.scale and a["causal"] == trace.causal
    assert (a["block_q"], a["block_kv"]) == (trace.block_q, trace.block_kv)
    assert a["causal_align"] == trace.causal_align and a["precision"] == trace.precision
    assert a["bug"] == (trace.bug or "") and a["format"] == FORMAT
    assert_same(a["tile_ran"], trace.tile_kinds() != "skipped")


@pytest.mark.parametrize("case", [c for c in CASES if c[7] is None and c[8] is None])
def test_grids_are_the_running_state_after_each_kv_block(rng, case) -> None:
    """Independently of the steps: m[j, r] = max of row r's visible scores in blocks <= j,
    and o[j, r] / l[j, r] = softmax attention of row r over those keys."""
    trace = trace_for(rng, case)
    a = read_trace_npz(trace_npz(trace))
    offset = mask_offset(trace.n_q, trace.n_k, trace.causal, trace.causal_align)
    s = trace.scale * (trace.q @ trace.k.T)  # (n_q, n_k), state precision
    cols, rows = np.arange(trace.n_k), np.arange(trace.n_q)[:, None]
    seen = np.ones_like(s, bool) if offset is None else cols <= rows + offset
    tol = 1e-12  # float64 throughout (16-bit runs round P~, covered by the round trip)
    for j in range(trace.grid[1]):
        ran = a["row_ran"][j]
        i_of_row = np.arange(trace.n_q) // trace.block_q
        np.testing.assert_array_equal(ran, a["tile_ran"][i_of_row, j])
        assert np.isnan(a["m"][j, ~ran]).all() and np.isnan(a["o"][j, ~ran]).all()
        upto = seen & (cols < min((j + 1) * trace.block_kv, trace.n_k))
        s_seen = np.where(upto, s, -np.inf)[ran]
        np.testing.assert_allclose(a["m"][j, ran], s_seen.max(axis=1), rtol=tol, atol=tol)
        some = np.isfinite(s_seen).any(axis=1)
        w = np.exp(s_seen[some] - s_seen[some].max(axis=1, keepdims=True))
        want = (w / w.sum(axis=1, keepdims=True)) @ trace.v
        o_over_l = a["o"][j, ran][some] / a["l"][j, ran][some, None]
        np.testing.assert_allclose(o_over_l, want, rtol=tol, atol=tol)


def test_docstring_diff_recipe_finds_the_one_wrong_entry(rng) -> None:
    trace = trace_for(rng, CASES[1])
    t = np.load(io.BytesIO(trace_npz(trace)), allow_pickle=False)
    mine_m = t["m"].copy()  # a kernel that agrees everywhere ...
    j, r = np.argwhere(t["row_ran"] & np.isfinite(t["m"]))[-1]
    mine_m[j, r] += 1e-3  # ... but one entry
    ran = t["row_ran"]
    bad = ran & ~np.isclose(mine_m, t["m"], rtol=1e-6, atol=1e-6)
    assert np.argwhere(bad).tolist() == [[j, r]]


def test_read_refuses_other_npz() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, m=np.zeros(3))
    with pytest.raises(ValueError, match="not a flashviz trace export"):
        read_trace_npz(buffer.getvalue())


@given(
    n_q=st.integers(1, 20),
    n_k=st.integers(1, 20),
    d=st.integers(1, 6),
    block_q=st.integers(1, 8),
    block_kv=st.integers(1, 8),
    causal=st.booleans(),
    align=st.sampled_from(["bottom_right", "top_left"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_problem_round_trips(n_q, n_k, d, block_q, block_kv, causal, align, seed) -> None:
    rng = np.random.default_rng(seed)
    case = (n_q, n_k, d, block_q, block_kv, causal, align, None, None)
    trace = trace_for(rng, case)
    arrays = read_trace_npz(trace_npz(trace, compressed=False))
    for t, step in enumerate(trace.steps):
        got = step_state(arrays, t)
        for name in ("m", "l", "o"):
            assert_same(got[name], getattr(step, name))


def test_a_flexattention_mask_is_named_and_its_visible_keys_exported(rng) -> None:
    """``mask``: the built-in mask's MaskSpec (one's own mask_mod: its name); ``visible``:
    the keys each query sees, which are where the exported scores are finite."""
    from flashviz.masks import and_masks, causal, document

    q, k, v = (rng.standard_normal((n, 4)) for n in (12, 10, 10))
    mod = and_masks(causal(), document([0, 5]))
    a = read_trace_npz(trace_npz(record_trace(q, k, v, block_q=4, block_kv=4, mask_mod=mod)))
    assert str(a["mask"]) == "MaskSpec(kind='document', params=(), starts=(0, 5), causal_offset=0)"
    r, c = np.arange(12)[:, None], np.arange(10)[None, :]
    assert_same(a["visible"], (c <= r) & ((r >= 5) == (c >= 5)))
    ran = np.isfinite(a["p"])  # the entries of tiles that ran
    assert_same(np.isfinite(a["s"]) & ran, a["visible"] & ran)

    def every_other(b, h, q_idx, kv_idx):
        return (q_idx + kv_idx) % 2 == 0

    own = read_trace_npz(trace_npz(record_trace(q, k, v, block_q=4, block_kv=4,
                                                mask_mod=every_other)))  # fmt: skip
    assert str(own["mask"]) == "every_other (a Python mask_mod)"
    plain = read_trace_npz(trace_npz(record_trace(q, k, v, block_q=4, block_kv=4, causal=True)))
    assert str(plain["mask"]) == ""
    assert_same(plain["visible"], c <= r - 2)  # causal, bottom-right: offset 10 - 12
