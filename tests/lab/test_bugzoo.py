"""The bug zoo: the correct variant is exact; each bug diverges where it first bites."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz import record_trace
from flashviz.core.inner_step import FA2, UpdateHooks, finalize, online_update
from flashviz.lab.bugzoo import (
    BUGS,
    FA2_TEX,
    LOG_OVERFLOW,
    LOG_TOL,
    LOG_UNDERFLOW,
    bug_hooks,
    bug_tex,
)
from flashviz.lab.row_debugger import debug_row, first_bad_chunk, first_bite
from tests.support import assert_equal_to_rounding

NEG = -np.inf
# (bug, row, chunk, first diverging step): chunks before it are exact, it is not.
CASES = [
    ("no_rescale_o", [1.0, 0.0, 0.5, 0.2, 3.0, 1.0], 2, 2),  # the max first rises at chunk 2
    ("no_rescale_l", [1.0, 0.0, 0.5, 0.2, 3.0, 1.0], 2, 2),
    ("wrong_sign", [1.0, 0.0, 0.5, 0.2, 3.0, 1.0], 2, 2),
    ("stale_l", [1.0, 0.0, 0.5, 0.2, 3.0, 1.0], 2, 1),  # bites at the second chunk
    ("no_max", [1.0, 2.0, 30.0, 3.0, 800.0, 1.0], 2, 2),  # exp(800) overflows
    ("mask_1e4", [-2e4, -2e4 + 1, -2e4, NEG, 1.0, 0.0], 2, 1),  # real scores below -1e4
    ("mask_5e4", [-6e4, -6e4 + 1, -6e4, NEG, 1.0, 0.0], 2, 1),
    ("mask_1e4", [NEG, NEG, 1.0, 2.0], 2, 0),  # a chunk with every key masked
    # the max rises by 12 > ln 65504 at chunk 2 and is kept: P~ = e^12 overflows float16
    ("threshold_too_high_f16", [0.0, 0.5, 12.5, 1.0, 30.0, 1.0], 1, 2),
    ("threshold_too_high_f16", [0.0, 15.0, 16.0], 1, None),  # rescaled past 13.9: no harm
    ("no_inf_guard", [1.0, 2.0, NEG, NEG, 0.5], 2, None),  # harmless once a key was seen
    ("no_inf_guard", [NEG, NEG, 1.0, 2.0], 2, 0),  # (-inf) - (-inf) = NaN
]


@pytest.mark.parametrize(("bug", "row", "chunk", "first"), CASES)
def test_bug_diverges_exactly_where_it_first_bites(rng, bug, row, chunk, first):
    values = rng.standard_normal((len(row), 3))
    correct = debug_row(row, chunk, values)
    buggy = debug_row(row, chunk, values, bug=bug)
    assert first_bad_chunk(correct) is None
    assert first_bad_chunk(buggy) == first
    bite = first_bite(bug, row, chunk)
    assert (bite.index if bite else None) == first
    for before in buggy[: first if first is not None else len(buggy)]:
        assert before.error <= 1e-9


def test_mask_5e4_survives_what_breaks_mask_1e4():
    row = [-2e4, -2e4 + 1, -2e4, NEG, 1.0, 0.0]
    assert first_bad_chunk(debug_row(row, 2, bug="mask_5e4")) is None


RISES = "when the running max rises after a chunk that had a key"
# key: (title, what the explanation says the bug computes, the condition bites_when names)
WORDS = {
    "no_rescale_o": ("Forget to rescale O", "o_i = o_i + p_ij v_j without alpha", RISES),
    "no_rescale_l": ("Forget to rescale l", "l_i = l_i + rowsum(p_ij) without alpha", RISES),
    "wrong_sign": ("Rescale with the wrong sign", "alpha = exp(m_new - m_i) >= 1", RISES),
    "no_max": (
        "Do not subtract the max",
        "p_ij = exp(s_ij) overflows",
        f"above ~{LOG_OVERFLOW:.1f} (exp overflows) or every score so far is below "
        f"~{LOG_UNDERFLOW:.1f}",
    ),
    "stale_l": (
        "Normalise every step with a stale l",
        "O_new = (alpha l_old O + P~ V) / l_new. Dropping l_old",
        "after one that left l != 1",
    ),
    "mask_1e4": (
        "-1e4 stands in for -inf",
        "Masked scores become -1e4 instead of -inf",
        f"not ~{LOG_TOL:.1f} above -1e4",
    ),
    "mask_5e4": ("-5e4 stands in for -inf", "The same with -5e4", f"not ~{LOG_TOL:.1f} above -5e4"),
    "threshold_too_high_f16": (
        "Rescale threshold too high for float16",
        "P~ stored in float16 for P~ V overflows to inf above 65504",
        "more than ln 65504 = 11.09 above the stale max",
    ),
    "no_inf_guard": (
        "No guard for a row with no key",
        "m = -inf, and s - m = (-inf) - (-inf) = NaN",
        "every key so far is masked",
    ),
}


def test_every_bug_has_a_case_and_an_explanation():
    """Each bug's words name what it changes, and the thresholds its ``reason`` tests."""
    assert {c[0] for c in CASES} == set(BUGS) == set(WORDS)
    for key, (title, computes, condition) in WORDS.items():
        b = BUGS[key]
        assert b.title == title
        assert computes in b.explanation, key
        assert condition in b.bites_when, key


@pytest.mark.parametrize("chunk", [1, 3, 7, 50])
def test_correct_variant_is_exact_on_random_rows(rng, chunk):
    row = rng.standard_normal(37) * 20
    row[rng.random(37) < 0.3] = NEG
    steps = debug_row(row, chunk, rng.standard_normal((37, 4)))
    assert max(st.error for st in steps) <= 1e-12
    assert [st.cols.start for st in steps] == list(range(0, 37, chunk))


@given(
    row=st.lists(st.one_of(st.floats(-1e5, 1e5), st.just(NEG)), min_size=1, max_size=40),
    chunk=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_correct_variant_is_exact_on_any_row(row, chunk, seed):
    values = np.random.default_rng(seed).standard_normal((len(row), 2))
    steps = debug_row(row, chunk, values)
    assert max(s.error for s in steps) <= 1e-12  # |v| ~ 1: a few ulps of float64
    assert all(np.isfinite(s.estimate).all() for s in steps)


@pytest.mark.parametrize("bug", [None, *BUGS])
def test_the_row_debugger_runs_the_tiled_inner_step(rng, bug):
    """One update: a one-row trace and the debugger on its scores agree: m, l and alpha bit
    for bit, the estimate to the rounding of P~ V."""
    q, k, v = (
        rng.standard_normal((1, 3)) * 3,
        rng.standard_normal((10, 3)),
        rng.standard_normal((10, 3)),
    )
    trace = record_trace(q, k, v, block_q=1, block_kv=4, bug=bug)
    assert trace.hooks is bug_hooks(bug) and trace.bug == bug
    tiles = trace.tile_steps()
    row = np.concatenate([t.s[0] for t in tiles])
    steps = debug_row(row, 4, v, bug)
    for chunk, tile in zip(steps, tiles, strict=True):
        # the same elementwise operations and sums over the tile's keys on the same scores
        np.testing.assert_array_equal(
            [chunk.m, chunk.l, chunk.alpha], [tile.m[0], tile.l[0], tile.alpha[0]]
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        o_last = finalize(tiles[-1].m, tiles[-1].l, tiles[-1].o, hooks=trace.hooks)[0][0]
        size = debug_row(row, 4, np.abs(v), bug)[-1].estimate  # the same run on |v|
    # P~ V_j is a matmul on the trace's copy of v in the trace and on v in the debugger: a
    # BLAS may sum its 4 terms in another order. Each term of the estimate passes through at
    # most 4 roundings in its tile's P~ V, 3 in each later tile (rescale, add, a division by
    # l for the bug that keeps o normalised) and 1 at the end, all relative to the same run
    # on |v|
    roundings = 4 + 3 * len(tiles) + 1
    assert_equal_to_rounding(steps[-1].estimate, o_last, roundings=roundings, scale=size)


def test_each_bug_is_one_object_with_its_hooks():
    for key, b in BUGS.items():
        assert b.key == b.hooks.name == key and b.hooks.quiet and b.hooks != FA2
        assert bug_hooks(key) is b.hooks and bug_tex(key) is b.tex
    assert bug_hooks(None) is FA2 and bug_tex(None) is FA2_TEX
    for lookup in (bug_hooks, bug_tex):
        with pytest.raises(ValueError, match="bug must be None or one of"):
            lookup("typo")


# A state whose max rises in rows 1-3 (row 0 has seen no key), no masked key ...
RISE = (
    np.array([-np.inf, 0.5, 0.5, 1.0]),
    np.array([0.0, 1.5, 2.0, 1.2]),
    np.array([[0.0, 0.0], [1.0, -1.0], [0.5, 2.0], [-0.3, 0.7]]),
    np.array([[2.0, 1.0, 3.0], [2.5, 0.0, 1.0], [1.5, 3.0, 2.0], [0.0, 4.0, 1.0]]),
)
# ... and one with masked keys: row 0 has no key at all yet, row 1's real scores are below
# -1e4 (above -5e4), row 2 has seen keys and one of its new keys is masked.
MASKED = (
    np.array([-np.inf, -np.inf, 1.0, 0.5]),
    np.array([0.0, 0.0, 1.5, 2.0]),
    np.array([[0.0, 0.0], [0.0, 0.0], [1.0, -1.0], [0.5, 2.0]]),
    np.array([[NEG, NEG, NEG], [-2e4, NEG, -2e4 + 1], [2.0, NEG, 0.5], [0.0, 1.0, 0.25]]),
)
V = np.array([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25]])


BITES = {  # the bugs each state makes bite
    "rise": {
        "no_rescale_o",
        "no_rescale_l",
        "wrong_sign",
        "no_max",
        "stale_l",
        "threshold_too_high_f16",
    },
    "masked": set(BUGS),
}


def _expected(bug, m, l, o, s, c):
    """The fields of the bug's update that its text says change, from its formula (``c``
    is the correct update from the same state); every other field equals the correct one."""
    if bug == "no_rescale_o":  # o_i = o_i + p_ij v_j
        return {"o_rescaled": o, "o_i": o + c.p_ij @ V}
    if bug == "no_rescale_l":  # l_i = l_i + rowsum(p_ij)
        return {"l_i": l + c.p_ij.sum(axis=-1)}
    if bug == "wrong_sign":  # alpha = exp(m_new - m_i)
        alpha = np.where(np.isneginf(m), 0, np.exp(c.m_i - m))
        o_rescaled = alpha[:, None] * o
        return {
            "alpha": alpha,
            "l_i": alpha * l + c.p_ij.sum(-1),
            "o_rescaled": o_rescaled,
            "o_i": o_rescaled + c.p_ij @ V,
        }
    if bug == "no_max":  # p_ij = exp(s_ij), m = 0
        p, alpha = np.exp(s), np.exp(m)
        o_rescaled = alpha[:, None] * o
        return {
            "m_i": np.zeros_like(m),
            "p_ij": p,
            "alpha": alpha,
            "l_i": alpha * l + p.sum(-1),
            "o_rescaled": o_rescaled,
            "o_i": o_rescaled + p @ V,
        }
    if bug == "stale_l":  # O_new = (alpha O + P~ V) / l_new
        return {"o_i": c.o_i / c.l_i[:, None]}
    if bug in ("mask_1e4", "mask_5e4"):  # the correct update with the stand-in for -inf
        stand_in = -1e4 if bug == "mask_1e4" else -5e4
        if not np.isneginf(s).any():
            return {}
        fa2 = online_update(m, l, o, np.where(np.isneginf(s), stand_in, s), V)
        return {f: x for f, x in fa2._asdict().items() if f != "s_ij"}
    if bug == "threshold_too_high_f16":  # FA4's update with threshold 20; P~ <= 65504 here
        fa4 = online_update(m, l, o, s, V, hooks=UpdateHooks(rescale_threshold=20.0))
        assert (fa4.p_ij < 65504).all()
        return {f: x for f, x in fa4._asdict().items() if f != "s_ij"}
    assert bug == "no_inf_guard"  # s - m = (-inf) - (-inf) = NaN where no key was ever seen
    dead = np.isneginf(c.m_i)
    if not dead.any():
        return {}
    fields = ("p_ij", "alpha", "l_i", "o_rescaled", "o_i")
    return {
        f: np.where(dead.reshape(-1, *[1] * (getattr(c, f).ndim - 1)), np.nan, getattr(c, f))
        for f in fields
    }


@pytest.mark.parametrize("case", ["rise", "masked"])
@pytest.mark.parametrize("bug", list(BUGS))
def test_each_bug_changes_exactly_what_its_text_says(bug, case):
    m, l, o, s = RISE if case == "rise" else MASKED
    hooks = BUGS[bug].hooks
    c = online_update(m, l, o, s, V)
    with hooks.errstate():
        b = online_update(m, l, o, s, V, hooks=hooks)
    with np.errstate(invalid="ignore", divide="ignore"):  # the formulas' own NaN
        want = _expected(bug, m, l, o, s, c)
    changed = {
        f for f in c._fields if not np.array_equal(getattr(b, f), getattr(c, f), equal_nan=True)
    }
    assert changed == {
        f for f, x in want.items() if not np.array_equal(x, getattr(c, f), equal_nan=True)
    }
    assert bool(changed) == (bug in BITES[case])
    for f, x in want.items():
        np.testing.assert_allclose(getattr(b, f), x, rtol=1e-15, atol=0, err_msg=f)
    np.testing.assert_array_equal(b.s_ij, s)  # a trace records the scores as masked


def test_only_stale_l_writes_its_accumulator_as_it_is():
    m, l, o, _ = RISE
    for key, b in BUGS.items():
        with b.hooks.errstate():
            out, _ = finalize(m, l, o, hooks=b.hooks)
        want = o if key == "stale_l" else finalize(m, l, o)[0]
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"scores": []}, "scores must be a non-empty 1-D row"),
        ({"scores": [1.0, np.nan]}, "scores must be finite or -inf"),
        ({"scores": [1.0, 2.0], "values": [1.0]}, r"values must be finite with shape \(2,\)"),
        ({"scores": [1.0, 2.0], "chunk": 0}, "chunk must be a positive integer"),
        ({"scores": [1.0, 2.0], "chunk": np.bool_(True)}, "chunk must be a positive integer"),
        ({"scores": [1.0, 2.0], "bug": "typo"}, "bug must be None or one of"),
    ],
)
def test_bad_input_is_named(kwargs, pattern):
    args = {"chunk": 2, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        debug_row(**args)


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (("typo", [1.0], 1), "bug must be one of"),
        ((None, [1.0], 1), "bug must be one of"),
        (("no_max", [[1.0]], 1), "scores must be a non-empty 1-D row"),
        (("no_max", [1.0, np.inf], 1), "scores must be finite or -inf"),
        (("no_max", [1.0], 0), "chunk must be a positive integer"),
    ],
)
def test_first_bite_bad_input_is_named(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        first_bite(*args)


# Rows on a grid of step 0.25 around an offset: a rise of the max is 0 or >= 0.25, every key
# within 6 of the max, so each mistake changes the result by 0 or far more than the
# tolerance; the offsets put the scores where exp overflows, underflows, or meets a stand-in.
@given(
    grid=st.lists(st.one_of(st.none(), st.integers(-12, 12)), min_size=1, max_size=30),
    chunk=st.integers(1, 9),
    offset=st.sampled_from([0.0, 1000.0, -2e4, -6e4]),
    seed=st.integers(0, 2**32 - 1),
)
def test_first_bite_predicts_the_first_bad_chunk(grid, chunk, offset, seed):
    row = np.array([-np.inf if g is None else offset + 0.25 * g for g in grid])
    values = np.random.default_rng(seed).standard_normal((row.size, 3))
    for bug in BUGS:
        bite = first_bite(bug, row, chunk)
        assert first_bad_chunk(debug_row(row, chunk, values, bug)) == (
            bite.index if bite else None
        ), bug


def test_first_bite_explains_with_the_numbers():
    row = [1.0, 0.0, 0.5, 0.2, 3.0, 1.0]
    assert "rose from 1 to 3" in first_bite("no_rescale_o", row, 2).reason
    assert "exp(m - m_prev) = 7.39" in first_bite("wrong_sign", row, 2).reason
    assert "l = 1.368" in first_bite("stale_l", row, 2).reason
    assert "(-inf) - (-inf) = NaN" in first_bite("no_inf_guard", [NEG, 1.0], 1).reason
    assert "outweigh" in first_bite("mask_1e4", [-3e4, NEG], 1).reason


def test_no_max_thresholds_are_where_exp_leaves_float64():
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(np.float64(LOG_OVERFLOW) + 1e-9))
    assert np.isfinite(np.exp(np.float64(LOG_OVERFLOW) - 1e-9))
    assert 0 < np.exp(LOG_UNDERFLOW) < np.finfo(np.float64).tiny  # subnormal
    values = np.array([[0.5], [1.0]])
    for row, first in [
        ([LOG_OVERFLOW - 1.0, 1.0], None),
        ([LOG_OVERFLOW + 1.0, 1.0], 0),
        ([LOG_OVERFLOW - 0.5, LOG_OVERFLOW - 0.5], 1),  # each exp is finite, their sum is not
        ([-700.0, -750.0], None),
        ([-750.0, -760.0], 0),  # every exp is 0
    ]:
        bite = first_bite("no_max", row, 1)
        assert (bite.index if bite else None) == first, row
        assert first_bad_chunk(debug_row(row, 1, values, "no_max")) == first, row
