"""The split-KV lesson: the SM model (schedule, utilisation, work per thread block), the run
and its verdict, the merge of one row step by step, the page's input checks."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest

from flashviz import split_kv_attention
from flashviz.core.masking import mask_offset
from flashviz.lab.split_kv import (
    GPUS,
    MAX_HEADS,
    MAX_N_Q,
    MAX_SPLITS,
    MAX_THREAD_BLOCKS,
    MAX_TILES,
    Slot,
    fa2_work,
    merge_steps,
    run_split_kv,
    schedule,
    size_errors,
    split_weights,
    split_work,
    utilisation,
    utilisation_curve,
)
from tests.support import EXP_ULPS, assert_equal_to_rounding


def test_schedule_hands_blocks_in_order_to_the_first_free_sm():
    assert schedule([3, 3, 2, 0, 1], 2) == [
        Slot(0, 0, 0, 0, 3),
        Slot(1, 1, 0, 0, 3),
        Slot(2, 0, 1, 3, 5),  # SM 0 and 1 free at 3: the lower index first
        Slot(3, 1, 1, 3, 3),  # an empty split takes no time
        Slot(4, 1, 2, 3, 4),
    ]


@pytest.mark.parametrize("sms", [1, 3, 108])
def test_schedule_never_runs_two_blocks_on_one_sm_at_once(rng, sms):
    work = rng.integers(0, 9, size=int(rng.integers(1, 300))).tolist()
    slots = schedule(work, sms)
    assert [s.block for s in slots] == list(range(len(work)))
    assert [s.stop - s.start for s in slots] == work
    assert [s.start for s in slots] == sorted(s.start for s in slots)  # handed out in order
    for sm in range(sms):
        mine = [s for s in slots if s.sm == sm]
        assert [s.wave for s in mine] == list(range(len(mine)))
        assert all(a.stop <= b.start for a, b in pairwise(mine))


def test_utilisation_of_known_schedules():
    assert utilisation([24], 108) == 24 / (108 * 24)  # one block: 1 of 108 SMs
    assert utilisation([2] * 108, 108) == 1.0
    assert utilisation([2] * 109, 108) == 218 / (108 * 4)  # a second wave of one block
    assert utilisation([3, 3, 2], 3) == 8 / 9
    assert utilisation([0, 0], 4) == 0.0


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n_q", [1, 5])
def test_split_work_is_the_tiles_each_split_of_the_run_computes(causal, n_q):
    run = run_split_kv(n_q, 1000, 8, 6, 64, causal, 0)
    work = split_work(n_q, 1000, 64, 6, run.offset)
    assert work == run.work == [3, 3, 3, 3, 2, 2]  # 16 blocks: the larger splits first
    assert split_work(n_q, 1000, 64, 6, run.offset, heads=3) == work * 3
    assert split_work(n_q, 1000, 64, 20, run.offset) == [1] * 16 + [0] * 4


def test_split_work_skips_blocks_hidden_from_every_row():
    offset = mask_offset(4, 100, True, "top_left")  # rows 0-3 see keys 0-3 only
    assert split_work(4, 100, 10, 3, offset) == [1, 0, 0]
    assert fa2_work(4, 100, 10, offset) == [1]


def test_fa2_work_is_one_thread_block_per_query_block_and_head():
    assert fa2_work(1, 1000, 64, None) == [16]
    assert fa2_work(8, 1000, 64, None, heads=4) == [16] * 4
    assert fa2_work(300, 1000, 64, None) == [16] * 3  # query blocks of 128 rows


def test_utilisation_curve_is_the_utilisation_of_each_number_of_splits():
    curve = utilisation_curve(1, 3000, 128, None, 4, 108, 30)
    assert curve.splits.tolist() == list(range(1, 31))
    assert curve.fa2 == 4 / 108  # 4 heads: 4 thread blocks of 24 tiles each
    for s in (1, 8, 24, 30):
        want = utilisation(split_work(1, 3000, 128, s, None, 4), 108)
        assert curve.split_kv[s - 1] == want
    assert curve.split_kv[23] == 96 / 108  # 24 splits of one tile x 4 heads: one wave
    assert curve.split_kv.max() > 20 * curve.fa2


def test_the_run_is_split_kv_attention_with_its_reference():
    run = run_split_kv(3, 777, 16, 5, 50, True, 7)
    o, lse, partials = split_kv_attention(
        run.q, run.k, run.v, num_splits=5, block_kv=50, causal=True
    )
    assert run.q.dtype == np.float32 and run.q.shape == (3, 16) and run.k.shape == (777, 16)
    np.testing.assert_array_equal(run.o, o)
    np.testing.assert_array_equal(run.lse, lse)
    assert len(run.partials) == len(partials) == 5
    assert run.ok and 0 < run.max_err_o <= run.tol_o and run.max_err_lse <= run.tol_lse
    assert run.max_err_o == float(np.abs(run.o - run.o_ref).max())
    assert run.offset == 774 and run_split_kv(3, 777, 16, 5, 50, False, 7).offset is None


@pytest.mark.parametrize(("n_q", "n_k", "causal"), [(1, 900, False), (4, 500, True), (9, 7, True)])
def test_merge_steps_fold_the_splits_into_the_run_s_result(n_q, n_k, causal):
    run = run_split_kv(n_q, n_k, 8, 7, 64, causal, 3)
    for row in range(n_q):
        steps = merge_steps(run, row)
        assert [st.s for st in steps] == list(range(7))
        first = steps[0]
        assert (first.m_prev, first.l_prev, first.alpha_prev) == (-math.inf, 0.0, 0.0)
        for prev, st in zip([None, *steps], steps, strict=False):
            if prev is not None:
                assert (st.m_prev, st.l_prev) == (prev.m, prev.l)
            assert st.lse_s == float(run.partials[st.s].lse[row])
            assert st.l_s == (0.0 if st.lse_s == -math.inf else 1.0)
            assert st.m == max(st.m_prev, st.lse_s)
            if st.m > -math.inf:
                assert st.alpha_prev == pytest.approx(math.exp(st.m_prev - st.m), rel=1e-6)
                assert st.alpha_s == pytest.approx(math.exp(st.lse_s - st.m), rel=1e-6)
                assert st.l == pytest.approx(
                    st.alpha_prev * st.l_prev + st.alpha_s * st.l_s, rel=1e-6
                )
        # the combine step: the same merges give the same m and l; lse = m + log l takes the
        # log of a scalar here and of an array in the run (NumPy may take another path):
        # EXP_ULPS ulps of log l each, and each addition rounds once
        last = steps[-1]
        log_l = abs(math.log(last.l)) if last.l > 0 else 0.0
        assert_equal_to_rounding(
            np.float32(last.lse),
            run.lse[row],
            roundings=1,
            scale=2 * EXP_ULPS * log_l + (abs(last.lse) if math.isfinite(last.lse) else 0.0),
        )


def test_split_weights_are_each_split_s_share_of_the_row():
    run = run_split_kv(6, 4, 8, 4, 2, True, 3)  # bottom-right: rows 0-1 see no key
    assert [p.cols for p in run.partials] == [range(0, 2), range(2, 4), range(4, 4), range(4, 4)]
    for row in range(6):
        w = split_weights(run, row)
        assert w.shape == (4,) and (w >= 0).all()
        if row < 2:
            assert (w == 0).all()
            continue
        assert w.sum() == pytest.approx(1, rel=1e-6)
        assert (w[2:] == 0).all()  # splits 2 and 3 hold no key
        seen = 1 if row < 4 else 2  # row r sees keys 0 .. r - 2: split 1 from row 4 on
        assert (w[:seen] > 0).all() and (w[seen:] == 0).all()


GOOD = dict(n_q=1, n_k=3000, head_dim=64, num_splits=8, block_kv=128, heads=4, seed=0)


def test_good_sizes_have_no_errors():
    assert size_errors(**GOOD) == []
    top = dict(n_q=MAX_N_Q, num_splits=MAX_SPLITS, heads=MAX_THREAD_BLOCKS // MAX_SPLITS)
    assert size_errors(**(GOOD | top)) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_q": 0}, "`n_q` must be between 1 and 8, got 0."),
        ({"n_q": 9}, "`n_q` must be between 1 and 8, got 9."),
        ({"n_k": 0}, "`n_k` must be between 1 and 8192, got 0."),
        ({"n_k": 9000}, "`n_k` must be between 1 and 8192, got 9000."),
        ({"head_dim": 257}, "`head_dim` must be between 1 and 256, got 257."),
        ({"num_splits": 0}, "`num_splits` must be between 1 and 512, got 0."),
        ({"block_kv": 0}, "`block_kv` must be at least 1, got 0."),
        ({"heads": 33}, "`heads` must be between 1 and 32, got 33."),
        ({"seed": -1}, "`seed` must be a non-negative integer, got -1."),
        (
            {"n_k": 5, "num_splits": 6},
            "`num_splits` must be at most n_k = 5 (one key a split), got 6.",
        ),
        (
            {"n_k": 8192, "block_kv": 2},
            f"n_k = 8192 in blocks of 2 is 4096 K/V tiles, more than the {MAX_TILES} the "
            "lanes can draw: use block_kv >= 4.",
        ),
        (
            {"heads": MAX_HEADS, "num_splits": 200},
            "32 heads x 200 splits = 6400 thread blocks, more than the 4096 the SM chart can "
            "draw: use at most 128 splits.",
        ),
    ],
)
def test_each_bad_size_has_its_message(change, message):
    assert size_errors(**(GOOD | change)) == [message]


def test_gpu_table():
    assert GPUS["A100"] == 108 and GPUS["H100 SXM"] == 132
    assert all(isinstance(n, int) and 0 < n < 200 for n in GPUS.values())
