"""FlashAttention-4's softmax: lazy rescaling and software exp2 (``flashviz.core.fa4``,
``flashviz.core.exp2``).

Any rescale threshold gives FA2's output within the tolerance rule (float64 reference,
uneven sizes, causal both ways, masks; hypothesis); the rescales done and skipped are
counted exactly on rows built for it; a threshold whose P~ overflows float16 is refused
with why; the polynomial exp2's error is within its stated bound, in float32 ulps and
after rounding to 16 bits.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz import flash_attention, record_trace
from flashviz.core.exp2 import EXP2_COEFFS, POLY_REL_ERROR, exp2_poly, exp_impl, ulps
from flashviz.core.fa4 import FA4_THRESHOLD, check_rescale_threshold
from flashviz.masks import sliding_window
from tests.support import assert_matches_reference


@given(
    n_q=st.integers(1, 40), n_k=st.integers(1, 40), d=st.integers(1, 9),
    block_q=st.integers(1, 12), block_kv=st.integers(1, 12),
    threshold=st.floats(0, 64), causal=st.booleans(),
    align=st.sampled_from(["bottom_right", "top_left"]),
    dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_any_threshold_gives_fa2s_output(n_q, n_k, d, block_q, block_kv, threshold, causal,
                                         align, dtype, seed):  # fmt: skip
    rng = np.random.default_rng(seed)
    print("seed", seed)
    q, k, v = (rng.standard_normal((2, n, d)).astype(dtype) * 3 for n in (n_q, n_k, n_k))
    o, lse = flash_attention(q, k, v, block_q=block_q, block_kv=block_kv, causal=causal,
                             causal_align=align, rescale_threshold=threshold)  # fmt: skip
    assert_matches_reference(o, lse, q, k, v, causal=causal, causal_align=align)


def test_a_threshold_under_a_mask_and_in_a_trace(rng):
    q, k, v = (rng.standard_normal((n, 8)) * 4 for n in (37, 53, 53))
    mod = sliding_window(9)
    o, lse = flash_attention(q, k, v, block_q=8, block_kv=8, mask_mod=mod,
                             rescale_threshold=FA4_THRESHOLD)  # fmt: skip
    r, c = np.arange(37)[:, None], np.arange(53)[None, :]
    assert_matches_reference(o, lse, q, k, v, mask=(c <= r) & (r - c <= 9))
    trace = record_trace(q, k, v, block_q=8, block_kv=8, mask_mod=mod, rescale_threshold=8)
    np.testing.assert_allclose(trace.o, o, rtol=0, atol=1e-12)
    assert trace.hooks.rescale_threshold == 8


def _one_row(tile_maxima: list[float], threshold: float | None):
    """One query (q = 1, d = 1, scale 1) over one key per tile: s_j = the tile's max."""
    s = np.array(tile_maxima)[:, None]
    return record_trace(np.ones((1, 1)), s, np.ones_like(s), block_q=1, block_kv=1, scale=1.0,
                        rescale_threshold=threshold)  # fmt: skip


def test_rescales_done_and_skipped_are_counted_exactly():
    """Threshold 2 (log2 units: the max may rise by 2 ln 2 = 1.386 before a rescale):
    maxima 0, 1, 2, 10, 11, 11.3: tile 0 sets the max (no rescale), tile 1 rises by 1
    (kept: stale), tile 2 by 2 from the stale 0 (rescaled), tile 3 by 8 (rescaled), tiles 4
    and 5 by 1 and 1.3 from 10 (kept, kept)."""
    trace = _one_row([0, 1, 2, 10, 11, 11.3], 2.0)
    tiles = trace.tile_steps()
    assert [bool(t.stale[0]) for t in tiles] == [False, True, False, False, True, True]
    assert [bool(t.rescaled[0]) for t in tiles] == [False, False, True, True, False, False]
    assert [float(t.m[0]) for t in tiles] == [0, 0, 2, 10, 10, 10]
    assert float(tiles[-1].p.max()) == pytest.approx(np.exp(1.3))  # P~ above 1: the headroom
    fa2 = _one_row([0, 1, 2, 10, 11, 11.3], None)
    assert [bool(t.rescaled[0]) for t in fa2.tile_steps()] == [False, True, True, True, True, True]
    assert not any(t.stale.any() for t in fa2.tile_steps())
    np.testing.assert_allclose(trace.o, fa2.o, rtol=1e-14)
    np.testing.assert_allclose(trace.lse, fa2.lse, rtol=1e-14)


def test_threshold_zero_is_fa2_bit_for_bit(rng):
    q, k, v = (rng.standard_normal((n, 5)) * 3 for n in (23, 31, 31))
    a = flash_attention(q, k, v, block_q=4, block_kv=4, causal=True)
    b = flash_attention(q, k, v, block_q=4, block_kv=4, causal=True, rescale_threshold=0)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_a_threshold_too_high_for_the_16_bit_type_is_refused_with_why(rng, precision):
    q, k, v = (rng.standard_normal((n, 4)) for n in (8, 8, 8))
    options = {"block_q": 4, "block_kv": 4, "precision": precision}
    if precision == "float16":
        with pytest.raises(ValueError, match=r"too high for float16.*largest 65504.*at most 15"):
            record_trace(q, k, v, rescale_threshold=16, **options)
    record_trace(q, k, v, rescale_threshold=15, **options)  # 2^15 fits both
    record_trace(q, k, v, rescale_threshold=64, block_q=4, block_kv=4)  # float64: no rounding


@pytest.mark.parametrize("bad", [-1, 64.5, float("nan"), float("inf"), True, "8"])
def test_bad_thresholds_are_refused(bad):
    with pytest.raises(ValueError, match="rescale_threshold must be a number in"):
        check_rescale_threshold(bad)


# --- software exp2 ----------------------------------------------------------------------------


@pytest.mark.parametrize("degree", list(EXP2_COEFFS))
def test_the_polynomials_error_is_within_its_bound(degree):
    f = np.linspace(0, 1, 100_003, endpoint=False)
    rel = np.abs(exp2_poly(f, degree) / np.exp2(f) - 1)
    assert rel.max() <= POLY_REL_ERROR[degree]
    assert rel.max() > POLY_REL_ERROR[degree] / 2  # the bound is tight, not loose
    # across the integer parts too: 2^n p(f), the same relative error
    x = np.linspace(-30, 10, 100_003)
    assert (np.abs(exp2_poly(x, degree) / np.exp2(x) - 1) <= POLY_REL_ERROR[degree]).all()


def test_the_cubic_in_ulps_float32_and_after_rounding_to_16_bits():
    """The cubic is ~10^3 float32 ulps off, and within one ulp once rounded to a 16-bit type
    (its 8.6e-5 relative error is a tenth of float16's ulp): where FA4 uses it."""
    x = np.linspace(-14, 8, 50_001).astype(np.float32)
    exact = np.exp2(x.astype(np.float64))
    got = exp2_poly(x, 3)
    assert got.dtype == np.float32
    assert 100 < ulps(got, exact, np.float32).max() < 2000
    for storage in (np.float16, ml_dtypes.bfloat16):
        assert ulps(got, exact, storage).max() <= 1


def test_exp2_edges_and_names():
    x = np.array([-np.inf, np.nan, 0.0, 1.0, -1.0, 3.0, -2000.0], dtype=np.float32)
    got = exp2_poly(x, 3)
    np.testing.assert_array_equal(got[[0, 2, 3, 4, 5, 6]], [0, 1, 2, 0.5, 8, 0])
    assert np.isnan(got[1])
    assert exp_impl("exact") is np.exp
    np.testing.assert_allclose(exp_impl("poly5")(np.array([1.0])), [np.e], rtol=1e-7)
    with pytest.raises(ValueError, match="exp_impl must be one of"):
        exp_impl("poly9")
    # integers are numbers to exponentiate, 16-bit floats computed in float32
    np.testing.assert_allclose(exp_impl("poly5")(np.array([1, 2])), np.exp([1, 2]), rtol=1e-7)
    assert exp2_poly(np.array([1.5], dtype=ml_dtypes.bfloat16)).dtype == np.float32
    # ulps: 0 where both round alike, infinities included; inf against a finite value: inf
    assert ulps(np.array([np.inf, 7e4]), np.array([np.inf, 7e4]), np.float16).tolist() == [0, 0]
    assert ulps(np.array([1.0]), np.array([np.inf]), np.float16).tolist() == [np.inf]
    with pytest.raises(ValueError, match="degree must be one of"):
        exp2_poly(x, 0)


@pytest.mark.parametrize("impl", ["poly3", "poly5"])
def test_a_run_with_the_software_exp_stays_within_its_error(rng, impl):
    """The output moves by about the polynomial's relative error, no more."""
    q, k, v = (rng.standard_normal((n, 8)) for n in (30, 45, 45))
    ref_o, ref_lse = flash_attention(q, k, v, block_q=8, block_kv=8)
    o, lse = flash_attention(q, k, v, block_q=8, block_kv=8, exp_impl=impl)
    rel = POLY_REL_ERROR[int(impl[-1])]
    assert np.abs(o - ref_o).max() <= 4 * rel * np.abs(v).max()
    assert np.abs(lse - ref_lse).max() <= 4 * rel
    assert np.abs(o - ref_o).max() > 0  # it is used


def test_the_headroom_is_counted_where_o_could_overflow():
    """A stale max lets P~ reach 2^threshold: v that fits FA2's accumulator can overflow
    float32's with a high threshold, which is refused instead of a silent inf."""
    from flashviz.gpu.launch_params import SCALAR

    q = np.ones((4, 1), np.float32)
    k = np.concatenate([np.zeros(10), np.full(90, 44.0)])[:, None].astype(np.float32)
    v = np.full((100, 1), 1e30, np.float32)
    o, _ = flash_attention(q, k, v, block_q=4, block_kv=10, scale=1.0)  # FA2: fits
    assert np.isfinite(o).all()
    for run in (
        lambda: flash_attention(q, k, v, block_q=4, block_kv=10, scale=1.0, rescale_threshold=64),
        lambda: record_trace(q, k, v, block_q=4, block_kv=10, scale=1.0, rescale_threshold=64),
        lambda: SCALAR.prepare(q, k, v, block_q=32, block_kv=32, scale=1.0, rescale_threshold=64),
    ):
        with pytest.raises(ValueError, match=r"P~ up to 1\.845e\+19 with a stale max"):
            run()
