"""FlashAttention-1 recorded step by step: same output as FA2 and the reference, the HBM
bytes of costs.fa1_hbm exactly, more non-matmul FLOPs by the stated formula; the counters,
the alignment of the two runs, the HBM-over-n series and the figures."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz import attention_reference, flash_attention, record_trace
from flashviz.core import costs
from flashviz.core.checks import check_tiled_problem
from flashviz.core.masking import mask_offset, num_blocks
from flashviz.core.problem import TiledProblem
from flashviz.core.reference import masked_scores, softmax_rows
from flashviz.core.trace import TileStep, WriteStep
from flashviz.figures.fa1_fa2 import (
    DONE_CODE,
    NOW,
    SKIP,
    counters_figure,
    hbm_over_n_figure,
    loop_orders_figure,
    tile_order,
)
from flashviz.lab import fa1 as fa1_module
from flashviz.lab.fa1 import Fa1InitStep, Fa1LoadStep, Fa1TileStep, fa1_tile_flops, record_fa1
from flashviz.lab.fa_compare import (
    compare,
    fa2_counts,
    fa2_step_flops,
    flops_difference,
    hbm_over_n,
)
from tests.support import assert_matches_reference, decode, spec

ALIGNS = [(False, "bottom_right"), (True, "bottom_right"), (True, "top_left")]
SIZES = [  # n_q, n_k, d, block_q, block_kv: uneven, ragged, larger-than-n blocks
    (1, 1, 8, 1, 1),
    (7, 13, 1, 3, 5),
    (13, 7, 40, 5, 3),  # bottom-right causal: the first rows see no key
    (113, 203, 8, 16, 32),
    (128, 127, 64, 32, 8),
    (20, 9, 8, 64, 64),
]


def _ids(case: tuple) -> str:
    return "x".join(map(str, case))


@pytest.fixture(params=SIZES, ids=_ids)
def size(request):
    return request.param


@pytest.mark.parametrize(("causal", "align"), ALIGNS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_matches_reference_and_fa2(size, causal, align, dtype, make_qkv):
    n_q, n_k, d, bq, bkv = size
    q, k, v = make_qkv(n_q, n_k, d, dtype=dtype, magnitude=2.0)
    t = record_fa1(q, k, v, block_q=bq, block_kv=bkv, causal=causal, causal_align=align)
    assert t.o.dtype == dtype and t.o.shape == (n_q, d) and t.lse.shape == (n_q,)
    assert_matches_reference(t.o, t.lse, q, k, v, causal=causal, causal_align=align)
    o2, lse2 = flash_attention(q, k, v, block_q=bq, block_kv=bkv, causal=causal,
                               causal_align=align)  # fmt: skip
    assert_matches_reference(o2, lse2, q, k, v, causal=causal, causal_align=align)
    if dtype == np.float64:
        np.testing.assert_allclose(t.o, o2, rtol=0, atol=1e-12)
        np.testing.assert_allclose(t.lse, lse2, rtol=0, atol=1e-12)
        o_ref, _ = attention_reference(q, k, v, causal=causal, causal_align=align)
        np.testing.assert_allclose(t.o, o_ref, rtol=0, atol=1e-12)


def test_rows_that_see_no_key_give_zero_and_minus_inf(make_qkv):
    q, k, v = make_qkv(13, 5, 8)
    t = record_fa1(q, k, v, block_q=4, block_kv=2, causal=True)  # rows 0..7 see nothing
    empty = np.arange(13) < 8
    assert (t.o[empty] == 0).all() and np.isneginf(t.lse[empty]).all()
    assert (t.l[empty] == 0).all() and np.isneginf(t.m[empty]).all()
    assert np.isfinite(t.o).all() and np.isfinite(t.lse[~empty]).all()
    _, lse2 = flash_attention(q, k, v, block_q=4, block_kv=2, causal=True)
    np.testing.assert_array_equal(np.isneginf(t.lse), np.isneginf(lse2))


CASES = [  # n_q, n_k, d, block_q, block_kv, causal, align
    (29, 43, 6, 8, 12, False, "bottom_right"),
    (29, 43, 6, 8, 12, True, "bottom_right"),
    (43, 29, 6, 12, 8, True, "bottom_right"),
    (43, 29, 6, 5, 7, True, "top_left"),
    (9, 40, 3, 4, 6, True, "top_left"),  # K/V blocks no query row can see
]


@pytest.fixture(params=CASES, ids=_ids)
def case(request):
    return request.param


@pytest.fixture
def cmp(case, make_qkv):
    n_q, n_k, d, bq, bkv, causal, align = case
    q, k, v = make_qkv(n_q, n_k, d, magnitude=2.0)
    return compare(q, k, v, block_q=bq, block_kv=bkv, causal=causal, causal_align=align)


@pytest.mark.parametrize("itemsize", [2, 4, 8])
def test_hbm_bytes_of_the_steps_equal_the_cost_formulas(case, itemsize, make_qkv):
    n_q, n_k, d, bq, bkv, causal, align = case
    q, k, v = make_qkv(n_q, n_k, d)
    t1 = record_fa1(q, k, v, block_q=bq, block_kv=bkv, causal=causal, causal_align=align,
                    itemsize=itemsize)  # fmt: skip
    t2 = record_trace(q, k, v, block_q=bq, block_kv=bkv, causal=causal, causal_align=align)
    args = (n_q, n_k, d, bq, bkv, causal, align)
    assert sum(s.hbm.reads for s in t1.steps) == costs.fa1_hbm(*args, itemsize=itemsize).reads
    assert sum(s.hbm.writes for s in t1.steps) == costs.fa1_hbm(*args, itemsize=itemsize).writes
    c2 = fa2_counts(t2, itemsize)
    assert c2.reads[-1] == costs.fa2_hbm(*args, itemsize=itemsize).reads
    assert c2.writes[-1] == costs.fa2_hbm(*args, itemsize=itemsize).writes


def test_hbm_per_fa1_step(cmp):
    """init writes O, l, m; load reads K_j, V_j; a tile reads Q_i, O_i, l_i, m_i and writes
    O_i, l_i, m_i: (2d + 2) and (d + 2) numbers per row."""
    t, d = cmp.fa1, cmp.fa1.d
    for s in t.steps:
        if isinstance(s, Fa1InitStep):
            assert (s.hbm.reads, s.hbm.writes) == (0, 4 * t.n_q * (d + 2))
        elif isinstance(s, Fa1LoadStep):
            assert (s.hbm.reads, s.hbm.writes) == (4 * 2 * d * len(s.cols), 0)
        else:
            r = len(s.rows)
            assert (s.hbm.reads, s.hbm.writes) == (4 * r * (2 * d + 2), 4 * r * (d + 2))


def test_both_runs_hold_the_same_tiled_problem(cmp):
    fa1, fa2 = cmp.fa1, cmp.fa2
    assert isinstance(fa1, TiledProblem) and isinstance(fa2, TiledProblem)
    for x in ("q", "k", "v"):
        assert np.array_equal(getattr(fa1, x), getattr(fa2, x))
    names = ("block_q", "block_kv", "causal", "causal_align", "scale", "n_q", "n_k", "d")
    assert [getattr(fa1, x) for x in names] == [getattr(fa2, x) for x in names]
    assert (fa1.n_q, fa1.n_k, fa1.d) == (fa1.q.shape[0], fa1.k.shape[0], fa1.q.shape[1])
    assert fa1.offset == mask_offset(fa1.n_q, fa1.n_k, fa1.causal, fa1.causal_align)
    grid = num_blocks(fa1.n_q, fa1.block_q), num_blocks(fa1.n_k, fa1.block_kv)
    assert fa1.grid == fa2.grid == grid


def test_fa1_trace_is_the_problem_it_ran(rng):
    q, k, v = rng.standard_normal((9, 3)), rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    kw = {"block_q": 4, "block_kv": 2, "causal": True, "causal_align": "top_left", "scale": 0.7}
    problem = check_tiled_problem(q, k, v, **kw, two_d=True)
    fa1 = record_fa1(q, k, v, **kw)
    for name in ("scale", "causal", "causal_align", "block_q", "block_kv", "offset", "grid"):
        assert getattr(fa1, name) == getattr(problem, name), name
    with pytest.raises(ValueError, match="causal must be True or False"):
        record_fa1(q, k, v, **{**kw, "causal": "False"})


def test_fa1_loop_order_and_tiles(cmp):
    t = cmp.fa1
    n_j = t.grid[1]
    assert isinstance(t.steps[0], Fa1InitStep)
    loads = [s.j for s in t.steps if isinstance(s, Fa1LoadStep)]
    assert loads == list(range(n_j))  # every K/V block loaded once, in order
    order = [(s.j, s.i) for s in t.tile_steps()]
    assert order == sorted(order)  # K/V blocks outside, Q blocks inside
    executed = costs.executed_tiles(t.n_q, t.n_k, t.block_q, t.block_kv, t.causal,
                                    t.causal_align)  # fmt: skip
    assert {(s.rows, s.cols) for s in t.tile_steps()} == set(executed)
    assert len(t.tile_steps()) == len(executed)
    pos = 1
    for j in range(n_j):  # each tile follows the load of its K/V block
        assert isinstance(t.steps[pos], Fa1LoadStep) and t.steps[pos].j == j
        pos += 1
        while pos < len(t.steps) and isinstance(t.steps[pos], Fa1TileStep):
            assert t.steps[pos].j == j
            pos += 1
    assert pos == len(t.steps)


def _prefix_reference(t, rows: range, stop: int) -> tuple[np.ndarray, ...]:
    """Softmax attention of ``rows`` over keys [0, stop): O, lse, m, l."""
    s = masked_scores(t.q, t.k, scale=t.scale, offset=mask_offset(t.n_q, t.n_k, t.causal,
                      t.causal_align), dtype=np.float64)[rows.start : rows.stop, :stop]  # fmt: skip
    o, lse = softmax_rows(s, t.v[:stop])
    m = s.max(axis=1)
    with np.errstate(invalid="ignore"):
        l = np.where(np.isneginf(m), 0.0, np.exp(s - m[:, None]).sum(axis=1))
    return o, lse, m, l


def _assert_m_matches(found: np.ndarray, m: np.ndarray, msg: str = "") -> None:
    """m is a score: its rounding is relative to the products summed, not to m (~0 at times)."""
    fin = np.isfinite(m)
    np.testing.assert_array_equal(np.isneginf(found), np.isneginf(m), err_msg=msg)
    terms = np.abs(m[fin]).max(initial=1.0)
    np.testing.assert_allclose(found[fin], m[fin], rtol=0, atol=1e-13 * terms, err_msg=msg)


def check_fa1_invariants(t) -> None:
    """After every tile, O_i in HBM is the normalised attention over the keys seen so far,
    m_i their max and l_i the sum of exp(s - m); the state read is the state last written."""
    last: dict[int, Fa1TileStep] = {}
    for s in t.tile_steps():
        o, _, m, l = _prefix_reference(t, s.rows, s.cols.stop)
        tile = f"tile ({s.i}, {s.j})"
        np.testing.assert_allclose(
            s.o, o, rtol=0, atol=1e-12, err_msg=f"{tile}: O_i is not the attention so far"
        )
        _assert_m_matches(s.m, m, f"{tile}: m_i")
        np.testing.assert_allclose(s.l, l, rtol=1e-12, err_msg=f"{tile}: l_i")
        prev = last.get(s.i)
        if prev is None:
            assert (s.o_prev == 0).all() and (s.l_prev == 0).all() and np.isneginf(s.m_prev).all()
        else:
            for a, b in ((s.o_prev, prev.o), (s.l_prev, prev.l), (s.m_prev, prev.m)):
                np.testing.assert_array_equal(a, b)
            assert (s.m >= s.m_prev).all()
        for factor in (s.alpha, s.beta):
            assert ((factor >= 0) & (factor <= 1)).all()
        last[s.i] = s


def test_state_after_every_tile_is_attention_over_keys_seen(cmp):
    check_fa1_invariants(cmp.fa1)


def test_a_forgotten_denormalisation_is_caught(cmp, monkeypatch):
    """The invariant check can fail: FA1 without diag(l_i) before the rescale is wrong."""

    def merge_without_l(m_i, l_i, o_i, m_t, l_t, pv):
        m_new = np.maximum(m_i, m_t)
        a, b = fa1_module._exp_diff(m_i, m_new), fa1_module._exp_diff(m_t, m_new)
        l_new = a * l_i + b * l_t
        o_new = (a[:, None] * o_i + b[:, None] * pv) / np.where(l_new == 0, 1, l_new)[:, None]
        return m_new, l_new, o_new

    monkeypatch.setattr(fa1_module, "_merge", merge_without_l)
    t = cmp.fa1
    broken = record_fa1(t.q, t.k, t.v, block_q=t.block_q, block_kv=t.block_kv,
                        causal=t.causal, causal_align=t.causal_align)  # fmt: skip
    with pytest.raises(AssertionError, match=r"tile \(\d+, 1\): O_i is not the attention so far"):
        check_fa1_invariants(broken)  # the first tile is right (o_i = 0), the second is not
    for s in broken.tile_steps():  # only O is wrong: m_i and l_i do not depend on it
        _, _, m, l = _prefix_reference(t, s.rows, s.cols.stop)
        np.testing.assert_allclose(s.l, l, rtol=1e-12)  # l >= 1
        _assert_m_matches(s.m, m)


def test_flop_counts_per_tile_by_hand():
    # r = 2 rows, c = 3 keys, d = 4: FA1 4*6 + 9*2 + 4*8 = 74; FA2 4*6 + 5*2 + 2*8 = 50
    assert fa1_tile_flops(2, 3, 4) == 74
    q, k, v = (np.ones((n, 4)) for n in (2, 3, 3))
    t2 = record_trace(q, k, v, block_q=2, block_kv=3)
    load, tile, write = t2.steps
    assert fa2_step_flops(load, 4) == 0
    assert fa2_step_flops(tile, 4) == 50
    assert fa2_step_flops(write, 4) == 2 * 4 + 2 * 2  # O / l and L = m + log l
    with pytest.raises(TypeError, match="LoadStep, TileStep or WriteStep"):
        fa2_step_flops(object(), 4)  # type: ignore[arg-type]


def test_fa1_spends_more_non_matmul_flops_by_the_formula(cmp, case):
    n_q, n_k, d, bq, bkv, causal, align = case
    fa1_total = sum(s.flops for s in cmp.fa1.steps)
    fa2_total = sum(fa2_step_flops(s, d) for s in cmp.fa2.steps)
    assert cmp.fa1_counts.flops[-1] == fa1_total and cmp.fa2_counts.flops[-1] == fa2_total
    assert fa1_total - fa2_total == flops_difference(n_q, n_k, d, bq, bkv, causal, align)
    rows_in_tiles = sum(len(s.rows) for s in cmp.fa2.steps if isinstance(s, TileStep))
    assert fa1_total - fa2_total == (d + 2) * (2 * rows_in_tiles - n_q)
    if not causal:  # R = n_q T_c without a mask
        assert fa1_total - fa2_total == (d + 2) * n_q * (2 * num_blocks(n_k, bkv) - 1)
        assert fa1_total > fa2_total


def test_counts_are_cumulative_and_end_at_the_totals(cmp):
    for counts, steps in ((cmp.fa1_counts, cmp.fa1.steps), (cmp.fa2_counts, cmp.fa2.steps)):
        assert counts.n_steps == len(steps)
        for a in (counts.reads, counts.writes, counts.flops, counts.tiles):
            assert (np.diff(a) >= 0).all()
        assert counts.tiles[-1] == cmp.tiles_total == len(cmp.fa1.tile_steps())
    assert cmp.naive == costs.naive_hbm(cmp.fa2.n_q, cmp.fa2.n_k, cmp.fa2.d)


def test_alignment_by_step_and_by_tiles(cmp):
    n1, n2 = cmp.fa1_counts.n_steps, cmp.fa2_counts.n_steps
    assert cmp.last_position("step") == max(n1, n2) - 1
    for pos in range(cmp.last_position("step") + 1):
        assert cmp.indices(pos, "step") == (min(pos, n1 - 1), min(pos, n2 - 1))
    assert cmp.last_position("tiles") == cmp.tiles_total
    runs = ((cmp.fa1_counts, cmp.fa1.steps), (cmp.fa2_counts, cmp.fa2.steps))
    for t in range(cmp.tiles_total + 1):
        for (counts, steps), k in zip(runs, cmp.indices(t, "tiles"), strict=True):
            assert counts.tiles[k] == t  # t tiles done ...
            nxt = steps[k + 1] if k + 1 < len(steps) else None
            assert nxt is None or isinstance(nxt, (TileStep, Fa1TileStep))  # ... and no more
    assert cmp.indices(cmp.tiles_total, "tiles") == (n1 - 1, n2 - 1)
    assert isinstance(cmp.fa2.steps[n2 - 1], WriteStep)
    with pytest.raises(ValueError, match="pair_by must be one of"):
        cmp.indices(0, "rows")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"block_q": 0, "block_kv": 2}, "block_q"),
        ({"block_q": 2, "block_kv": 1.5}, "block_kv"),
        ({"block_q": 2, "block_kv": 2, "itemsize": 0}, "itemsize"),
        ({"block_q": 2, "block_kv": 2, "causal_align": "diagonal"}, "causal_align"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, match, make_qkv):
    q, k, v = make_qkv(4, 4, 2)
    with pytest.raises(ValueError, match=match):
        record_fa1(q, k, v, **kwargs)


def test_bad_shapes_name_the_argument(make_qkv):
    q, k, v = make_qkv(4, 5, 2)
    with pytest.raises(ValueError, match=r"q must have shape \(n, d\)"):
        record_fa1(q[None], k, v, block_q=2, block_kv=2)
    with pytest.raises(ValueError, match="v must have as many rows as k"):
        record_fa1(q, k, v[:3], block_q=2, block_kv=2)


@given(
    n_q=st.integers(1, 24),
    n_k=st.integers(1, 24),
    d=st.integers(1, 6),
    bq=st.integers(1, 30),
    bkv=st.integers(1, 30),
    mask=st.sampled_from(ALIGNS),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_fa1_equals_fa2_and_counts_hold(n_q, n_k, d, bq, bkv, mask, seed):
    causal, align = mask
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((n, d)) * 3 for n in (n_q, n_k, n_k))
    c = compare(q, k, v, block_q=bq, block_kv=bkv, causal=causal, causal_align=align)
    np.testing.assert_allclose(c.fa1.o, c.fa2.o, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.isneginf(c.fa1.lse), np.isneginf(c.fa2.lse))
    fin = np.isfinite(c.fa2.lse)
    np.testing.assert_allclose(c.fa1.lse[fin], c.fa2.lse[fin], rtol=0, atol=1e-12)
    args = (n_q, n_k, d, bq, bkv, causal, align)
    assert c.fa1_counts.reads[-1] + c.fa1_counts.writes[-1] == costs.fa1_hbm(*args).total
    assert c.fa2_counts.reads[-1] + c.fa2_counts.writes[-1] == costs.fa2_hbm(*args).total
    assert c.fa1_counts.flops[-1] - c.fa2_counts.flops[-1] == flops_difference(*args)


def test_hbm_over_n_equals_the_cost_functions():
    h = hbm_over_n([64, 100, 1024], 32, 4096)
    assert (h.block_q, h.block_kv) == costs.fa1_block_sizes(4096, 32) == (32, 32)
    series = (h.ns, h.naive, h.fa1, h.fa2, h.fa2_swapped, h.order_standard, h.order_flash)
    for n, naive, f1, f2, f2s, std, fl in zip(*series, strict=True):
        assert naive == costs.naive_hbm(n, n, 32, itemsize=1).total
        assert f1 == costs.fa1_hbm(n, n, 32, 32, 32, itemsize=1).total
        assert f2 == f2s == costs.fa2_hbm(n, n, 32, 32, 32, itemsize=1).total
        assert std == n * 32 + n * n and fl == pytest.approx(n * n * 32 * 32 / 4096)
    assert h.left_out == ()
    big = hbm_over_n([256, 2048], 64, 49152)  # B_r = 64, B_c = 192: swapping matters
    assert big.fa2_swapped[1] == costs.fa2_hbm(2048, 2048, 64, 192, 64, itemsize=1).total
    assert big.fa2_swapped[1] < big.fa2[1]
    few = hbm_over_n([128, 256, 512], 16, 1024, max_tiles=100)  # blocks 16 x 16
    assert few.ns == (128,) and few.left_out == (256, 512)
    with pytest.raises(ValueError, match="sram_elements"):
        hbm_over_n([128], 16, 0)
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        hbm_over_n([64, 0], 16, 1024)


def test_flash_is_far_below_naive_for_long_sequences():
    h = hbm_over_n([256, 4096, 16384], 64, 49152)
    ratios = [f / n for f, n in zip(h.fa1, h.naive, strict=True)]
    assert ratios[-1] < ratios[0] and ratios[-1] < 0.5
    growth = h.fa1[-1] / h.fa1[-2]  # n x 4: ~ 16x, as N^2 d^2 / M
    assert 14 < growth < 17


# ---- figures -------------------------------------------------------------------------


def test_figures_are_valid_plotly_at_every_position(cmp):
    for pair_by in ("step", "tiles"):
        for pos in range(cmp.last_position(pair_by) + 1):
            k1, k2 = cmp.indices(pos, pair_by)
            orders = loop_orders_figure(cmp, k1, k2)
            counters = counters_figure(cmp, k1, k2)
            go.Figure(orders.to_dict())
            go.Figure(counters.to_dict())
            flops = {t["name"]: decode(t["y"]) for t in spec(counters.to_json())["data"]
                     if t["xaxis"] == "x2"}  # fmt: skip
            assert flops["FA1 so far"].tolist() == [cmp.fa1_counts.flops[k1]]
            assert flops["FA2 so far"].tolist() == [cmp.fa2_counts.flops[k2]]
            notes = {(a.xref.split()[0], a.text) for a in orders.layout.annotations}
            for x, step, q_label in (
                ("x", cmp.fa1.steps[k1], "Q<sub>{i}</sub>O<sub>{i}</sub>l,m"),
                ("x2", cmp.fa2.steps[k2], "Q<sub>{i}</sub>"),
            ):
                if isinstance(step, (TileStep, Fa1TileStep)):  # its panel names the tile
                    assert (x, q_label.format(i=step.i)) in notes, (pos, step)
                    assert (x, f"K<sub>{step.j}</sub>V<sub>{step.j}</sub>") in notes, (pos, step)
    go.Figure(hbm_over_n_figure(hbm_over_n([128, 1024], 64, 16384)).to_dict())


def test_loop_orders_show_each_runs_state(cmp):
    grid = cmp.fa2.grid
    for k1, step in enumerate(cmp.fa1.steps):
        k2 = min(k1, cmp.fa2_counts.n_steps - 1)
        fig = spec(loop_orders_figure(cmp, k1, k2).to_json())
        heat1, heat2 = (t for t in fig["data"] if t["type"] == "heatmap")
        for heat, counts, steps, k in ((heat1, cmp.fa1_counts, cmp.fa1.steps, k1),
                                       (heat2, cmp.fa2_counts, cmp.fa2.steps, k2)):  # fmt: skip
            z = decode(heat["z"]).reshape(grid)
            order = tile_order(steps)
            assert ((z == DONE_CODE) | (z == NOW)).sum() == counts.tiles[k]
            assert (z != SKIP).sum() == len(order)
            if isinstance(steps[k], (TileStep, Fa1TileStep)):
                assert z[steps[k].i, steps[k].j] == NOW and (z == NOW).sum() == 1
                assert heat["text"][steps[k].i][steps[k].j] == str(counts.tiles[k])
            else:
                assert (z == NOW).sum() == 0
        chip = [s["name"] for s in fig["layout"]["shapes"]]
        if isinstance(step, Fa1TileStep):
            assert chip[:2] == ["Q block on chip", "K/V block on chip"]
        elif isinstance(step, Fa1LoadStep):
            assert chip[0] == "K/V block on chip"


def test_counter_bars_equal_the_counts(cmp):
    k1, k2 = cmp.indices(cmp.last_position("step") // 2, "step")
    bars = {(t["name"], t["xaxis"]): decode(t["y"])
            for t in spec(counters_figure(cmp, k1, k2).to_json())["data"]}  # fmt: skip
    for name, counts, k in (("FA1", cmp.fa1_counts, k1), ("FA2", cmp.fa2_counts, k2)):
        hbm = bars[f"{name} so far", "x"] * 1024
        np.testing.assert_allclose(hbm, [counts.reads[k], counts.writes[k]])
        hbm_total = bars[f"{name} whole run", "x"] * 1024
        np.testing.assert_allclose(hbm_total, [counts.reads[-1], counts.writes[-1]])
        assert bars[f"{name} so far", "x2"][0] == counts.flops[k]
        assert bars[f"{name} whole run", "x2"][0] == counts.flops[-1]
    naive = bars["naive (whole run)", "x"] * 1024
    np.testing.assert_allclose(naive, [cmp.naive.reads, cmp.naive.writes])


def test_hbm_over_n_figure_draws_the_series():
    h = hbm_over_n([128, 512, 2048], 64, 49152)
    lines = {t["name"]: decode(t["y"]) for t in spec(hbm_over_n_figure(h).to_json())["data"]}
    np.testing.assert_array_equal(lines["FA1 (exact)"], h.fa1)
    np.testing.assert_array_equal(lines["naive (exact)"], h.naive)
    assert any("Theorem 2" in name for name in lines)
