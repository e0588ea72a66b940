"""Bad input: a ValueError or TypeError naming the argument and what was expected."""

from __future__ import annotations

import re
import tracemalloc
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz import (
    attention_reference,
    flash_attention,
    naive_attention,
    record_trace,
    split_kv_attention,
)
from flashviz.core.checks import (
    check_block,
    check_blocks,
    check_int,
    check_scores_fit,
    max_abs_score,
)

ENTRY_POINTS = [
    lambda q, k, v, **kw: attention_reference(q, k, v, **kw),
    lambda q, k, v, **kw: naive_attention(q, k, v, **kw),
    lambda q, k, v, **kw: flash_attention(q, k, v, **kw),
    lambda q, k, v, **kw: record_trace(q, k, v, block_q=4, block_kv=4, **kw),
]


def ok(n_q=5, n_k=6, d=3, dtype=np.float64):
    rng = np.random.default_rng(0)  # the values do not matter here, only shapes and dtypes
    return (
        rng.standard_normal((n_q, d)).astype(dtype),
        rng.standard_normal((n_k, d)).astype(dtype),
        rng.standard_normal((n_k, d)).astype(dtype),
    )


@pytest.mark.parametrize("call", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("mutate", "error", "pattern"),
    [
        (lambda q, k, v: (q[0], k, v), ValueError, r"q must have shape .*got shape \(3,\)"),
        (lambda q, k, v: (q, k[:, :2], v), ValueError, r"k must have head dim d = 3"),
        (lambda q, k, v: (q, k, v[:, :2]), ValueError, r"v must have head dim d = 3"),
        (lambda q, k, v: (q, k, v[:4]), ValueError, r"v must have as many rows as k"),
        (lambda q, k, v: (q[:0], k, v), ValueError, r"q must have at least one row"),
        (lambda q, k, v: (q, k[:, :0], v[:, :0]), ValueError, r"at least one row and one col"),
        (lambda q, k, v: (q.astype(int), k, v), TypeError, r"q must be a float32 or float64"),
        (lambda q, k, v: (q, k.astype(np.float16), v), TypeError, r"k must be a float32 or"),
        (lambda q, k, v: (q, k.astype(np.float32), v), TypeError, r"share one dtype"),
        (lambda q, k, v: (q, k, np.where(v > 0, np.nan, v)), ValueError, r"v must be finite"),
        (lambda q, k, v: (np.full_like(q, np.inf), k, v), ValueError, r"q must be finite"),
    ],
)
def test_bad_arrays(call, mutate, error, pattern):
    with pytest.raises(error, match=pattern):
        call(*mutate(*ok()))


def test_mismatched_leading_dims():
    q, k, v = ok()
    with pytest.raises(ValueError, match=r"k must have the same leading \(batch, head\) dims"):
        flash_attention(q[None].repeat(3, 0), k[None].repeat(2, 0), v[None].repeat(2, 0))


@pytest.mark.parametrize("call", ENTRY_POINTS)
def test_bad_options(call):
    q, k, v = ok()
    with pytest.raises(ValueError, match=r"causal_align must be one of"):
        call(q, k, v, causal=True, causal_align="top-left")
    with pytest.raises(ValueError, match=r"scale must be a finite real number"):
        call(q, k, v, scale=float("nan"))


UNHASHABLE_OR_ARRAYS = [
    np.array(["top_left"]), np.array(["top_left", "bottom_right"]), np.array("top_left"),
    ["top_left"], {"top_left": 1}, {"top_left"}, None, 0,
]  # fmt: skip


@pytest.mark.parametrize("call", [*ENTRY_POINTS, lambda q, k, v, **kw: split_kv_attention(
    q, k, v, num_splits=2, **kw)])  # fmt: skip
@pytest.mark.parametrize("align", UNHASHABLE_OR_ARRAYS, ids=repr)
def test_an_array_or_unhashable_causal_align_is_named(call, align):
    q, k, v = ok()
    with pytest.raises(ValueError, match=r"^causal_align must be one of"):
        call(q, k, v, causal=True, causal_align=align)


@pytest.mark.parametrize(
    ("option", "value"),
    [("bug", ["no_max"]), ("bug", {"no_max": 1}), ("bug", np.array("no_max")), ("bug", 3),
     ("precision", ["float32"]), ("precision", np.array(["float32"])), ("precision", {})],
    ids=repr,
)  # fmt: skip
def test_an_array_or_unhashable_name_is_named(option, value):
    q, k, v = ok()
    with pytest.raises(ValueError, match=rf"^{option} must be .*one of"):
        record_trace(q, k, v, block_q=4, block_kv=4, **{option: value})


@given(value=st.one_of(
    st.lists(st.text(max_size=3), max_size=2), st.dictionaries(st.text(max_size=2), st.none()),
    st.integers(), st.floats(), st.binary(max_size=4), st.text(max_size=12),
))  # fmt: skip
def test_no_option_value_escapes_as_another_error(value):
    """Whatever a caller passes as a named option, the error is a ValueError naming it."""
    q, k, v = ok()
    for option in ("causal_align", "bug", "precision"):
        kw = {option: value} | ({"causal": True} if option == "causal_align" else {})
        try:
            record_trace(q, k, v, block_q=4, block_kv=4, **kw)
        except ValueError as err:
            assert str(err).startswith(f"{option} must be"), err


@pytest.mark.parametrize("name", ["block_q", "block_kv"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True, "8"])
def test_bad_block_sizes(name, value):
    q, k, v = ok()
    with pytest.raises(ValueError, match=rf"{name} must be a positive integer"):
        flash_attention(q, k, v, **{name: value})
    kwargs = {"block_q": 4, "block_kv": 4, name: value}
    with pytest.raises(ValueError, match=rf"{name} must be a positive integer"):
        record_trace(q, k, v, **kwargs)


@pytest.mark.parametrize(
    ("value", "low", "high", "message"),
    [
        (2.0, 0, None, "k must be an integer, got 2.0"),
        (True, 0, None, "k must be an integer, got True"),
        (np.bool_(True), 0, None, "k must be an integer, got "),
        ("3", 0, None, "k must be an integer, got '3'"),
        (-1, 0, None, "k must be at least 0, got -1"),
        (np.int64(9), 1, 8, "k must be between 1 and 8, got 9"),
    ],
)
def test_check_int_names_the_argument_and_the_bound(value, low, high, message):
    with pytest.raises(ValueError, match=message):
        check_int("k", value, low, high)


def test_integer_checks_accept_numpy_integers_and_return_python_ints():
    for got in (check_int("k", np.int32(3), 0, 3), check_block("k", np.uint8(3))):
        assert got == 3 and type(got) is int
    assert check_blocks(a=1, b=np.int64(2)) == (1, 2)
    with pytest.raises(ValueError, match="b must be a positive integer, got 0"):
        check_blocks(a=1, b=0)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_bad_dropout(p):
    q, k, v = ok()
    with pytest.raises(ValueError, match=r"dropout_p must be a number in \[0, 1\)"):
        flash_attention(q, k, v, dropout_p=p)


def test_lists_are_not_floats():
    with pytest.raises(TypeError, match=r"q must be a float32 or float64 array, got dtype int"):
        flash_attention([[1, 2]], [[1.0, 2.0]], [[1.0, 2.0]])


# --- options that must neither pass silently nor fail obscurely ----------------------------


@pytest.mark.parametrize("call", ENTRY_POINTS)
@pytest.mark.parametrize("causal", ["False", "yes", 1, 0, None, 1.0])
def test_causal_must_be_a_bool(call, causal):
    """causal="False" is refused, not taken as true (a non-empty string is truthy)."""
    q, k, v = ok()
    with pytest.raises(ValueError, match=r"causal must be True or False, got "):
        call(q, k, v, causal=causal)


@pytest.mark.parametrize("call", ENTRY_POINTS)
def test_numpy_bools_are_bools(call):
    q, k, v = ok()
    for numpy_flag, flag in ((np.True_, True), (np.False_, False)):
        got, want = call(q, k, v, causal=numpy_flag), call(q, k, v, causal=flag)
        np.testing.assert_array_equal(*(x[0] if isinstance(x, tuple) else x.o for x in (got, want)))


@pytest.mark.parametrize("seed", [1.5, "abc", True, 2.0, [1]])
def test_dropout_seed_must_be_an_integer(seed):
    q, k, v = ok()
    with pytest.raises(ValueError, match=r"seed must be an integer or None, got "):
        flash_attention(q, k, v, dropout_p=0.5, seed=seed)


def test_numpy_integer_seeds_match_python_ints():
    q, k, v = ok()
    a, _ = flash_attention(q, k, v, dropout_p=0.5, seed=np.int64(7))
    b, _ = flash_attention(q, k, v, dropout_p=0.5, seed=7)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("call", ENTRY_POINTS)
@pytest.mark.parametrize("dtype", [">f8", ">f4"])
def test_big_endian_arrays_give_the_native_result(call, dtype):
    q, k, v = ok(dtype=np.dtype(dtype).newbyteorder("="))
    native = call(q, k, v, causal=True)
    swapped = call(*(x.astype(dtype) for x in (q, k, v)), causal=True)
    for a, b in zip(native[:2] if isinstance(native, tuple) else (native.o, native.lse),
                    swapped[:2] if isinstance(swapped, tuple) else (swapped.o, swapped.lse),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("call", ENTRY_POINTS)
def test_a_fraction_scale_is_the_float_scale(call):
    q, k, v = ok()
    got, want = call(q, k, v, scale=Fraction(1, 3)), call(q, k, v, scale=1 / 3)
    for a, b in zip(*(x[:2] if isinstance(x, tuple) else (x.o, x.lse) for x in (got, want)),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"scale must be a finite real .*Decimal; convert it"):
        call(q, k, v, scale=Decimal("0.5"))
    with pytest.raises(ValueError, match=r"scale must be a finite real number"):
        call(q, k, v, scale=Fraction(10**400, 1))


OVERFLOWS = {  # how q, k, v and the scale are built (float64 unless said), the message
    "f32 scores 1e40": (dict(dtype=np.float32, qk=1e20), r"q k\^T overflow float32"),
    "scale 1e308": (dict(scale=1e308, qk=10.0), r"q k\^T overflow float64"),
    "q, k 1e300": (dict(qk=1e300), r"q k\^T overflow float64"),
    "v near the max": (dict(v=1.7e308), r"v has values up to 1\.7e\+308: the accumulator"),
}
OVERFLOWING = [attention_reference, flash_attention, record_trace]


@pytest.mark.parametrize("call", OVERFLOWING, ids=["reference", "flash", "trace"])
@pytest.mark.parametrize(("how", "pattern"), OVERFLOWS.values(), ids=OVERFLOWS.keys())
def test_overflowing_logits_raise_instead_of_nan(call, how, pattern):
    dtype = how.get("dtype", np.float64)
    if call is attention_reference and dtype == np.float32:
        pytest.skip("the reference computes in float64, where 1e40 is fine")
    q, k, v = ok()
    q, k = q * how.get("qk", 1.0), k * how.get("qk", 1.0)
    if "v" in how:
        v = v / np.abs(v).max() * how["v"]
    kw = {"block_q": 4, "block_kv": 4} if call is record_trace else {}
    with pytest.raises(ValueError, match=pattern):
        call(*(x.astype(dtype) for x in (q, k, v)), scale=how.get("scale"), **kw)


def test_naive_attention_checks_in_its_own_precision():
    q, k, v = (x.astype(np.float32) for x in ok())
    with pytest.raises(ValueError, match=r"overflow float32"):
        naive_attention(q * 1e20, k * 1e20, v)
    o, _ = attention_reference(q * 1e20, k * 1e20, v)  # 1e40 is fine in float64
    assert np.isfinite(o).all()


@given(
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64]),
    exponent=st.integers(-30, 310),
    scale=st.one_of(st.none(), st.floats(1e-300, 1e308)),
)
def test_any_finite_input_gives_finite_output_or_a_clear_error(data, dtype, exponent, scale):
    """Whatever the magnitude, never a silent NaN or inf: a finite answer or ValueError."""
    big = float(np.finfo(dtype).max)
    mag = min(10.0**exponent, big) if exponent < 309 else big
    shape = st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 3))
    n_q, n_k, d = data.draw(shape)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    q, k, v = (np.clip(rng.standard_normal((n, d)), -1, 1) * mag for n in (n_q, n_k, n_k))
    q, k, v = (x.astype(dtype) for x in (q, k, v))  # |x| <= mag <= the dtype's max
    for call in (attention_reference, flash_attention, naive_attention):
        try:
            o, lse = call(q, k, v, scale=scale, causal=True)
        except ValueError as err:  # names the type that overflows, and its largest value
            assert re.search(r"overflows? float(32|64) \(largest \d", str(err)), str(err)
        else:
            assert np.isfinite(o).all() and not np.isnan(lse).any()


def test_the_range_check_never_builds_the_score_matrix():
    """Scores that pass the cheap bound's doubt: checked a few rows at a time (O(chunk))."""
    n = 2048
    q = np.zeros((n, 2))
    k = np.zeros((n, 2))
    q[:, 0], k[:, 1] = 1e200, 1e200  # d max|q| max|k| overflows, every real score is 0
    tracemalloc.start()
    try:
        check_scores_fit(q, k, k, 1.0, np.float64)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20, f"peak {peak / 2**20:.1f} MiB (the matrix is 32 MiB)"
    assert max_abs_score(q, k, np.float64) == 0.0
    q[5, 1] = 1e200
    assert max_abs_score(q, k, np.float64) == np.inf


def test_huge_but_orthogonal_inputs_are_not_refused(rng):
    """The cheap bound doubts them (1e200 x 1e200); the exact scores are small: traced."""
    q, k, v = (rng.standard_normal((n, 3)) for n in (40, 30, 30))
    q[:, 0], k[:, 0], q[:, 1], k[:, 1] = 1e200, 0.0, 0.0, 1e200
    trace = record_trace(q, k, v, block_q=8, block_kv=8)
    o, lse = flash_attention(q, k, v)
    o_ref, lse_ref = attention_reference(q, k, v)
    np.testing.assert_allclose(trace.o, o_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(o, o_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lse, lse_ref, rtol=0, atol=1e-12)
