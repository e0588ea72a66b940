"""Shared test helpers: tolerances from the reference's own error, Plotly figure JSON, the
repository root.

Tolerances taken from the reference's own error, as flash-attn's tests do:

An implementation computing in precision P passes when its error against a reference in
higher precision is at most twice the error of naive attention computed in P against the
same reference (flash-attn's rule), plus a floor made of two parts:

- a few ulps of the output, for cases where naive is exact (a single key);
- one ulp of the largest score times max |v|: a score off by one rounding moves the
  softmax weights by that much. With logits of 1e4 in float32 one ulp is 1e-3, and which
  matmul kernel rounds a score up or down is luck; on small problems the maximum error is
  over few entries and naive may be lucky. On unit-scale data this term is ~1e-7 and the
  2x rule decides.

The reference is float64 for float32 inputs and long double (80-bit on x86-64) for
float64 inputs.

Two runs of the same computation that differ only in how a library orders its sums (a
matmul batched or not, one BLAS kernel or another, an array copied or viewed) are compared
with ``assert_equal_to_rounding``: within a stated count of roundings of the magnitude the
values are computed from (``attention_rounding`` counts them for the tiled attention).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Required, TypedDict, Unpack

import numpy as np
from numpy.typing import ArrayLike

from flashviz.core.accuracy import allowed_error, max_error
from flashviz.core.masking import mask_offset
from flashviz.core.reference import masked_scores, softmax_rows, softmax_weights

ROOT = Path(__file__).resolve().parents[1]  # the repository
APP_SCRIPT = ROOT / "flashviz" / "app" / "script" / "main.py"  # run for each session


def higher_precision(dtype: np.dtype) -> type[np.floating]:
    return np.float64 if dtype == np.float32 else np.longdouble


def assert_matches_reference(
    o: np.ndarray,
    lse: np.ndarray,
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    scale: float | None = None,
    causal: bool = False,
    causal_align: str = "bottom_right",
    mask: np.ndarray | None = None,
) -> tuple[float, float]:
    """Check o and lse of an implementation run on q, k, v (their dtype) against the rule.
    ``mask``: visible entries (broadcasting against the scores), in place of the causal one;
    k and v have q's heads (repeat them for grouped-query attention)."""
    dtype = q.dtype
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    offset = mask_offset(q.shape[-2], k.shape[-2], causal, causal_align)
    hp = higher_precision(dtype)
    s_ref = masked_scores(q, k, scale=scale, offset=offset, dtype=hp, mask=mask)
    o_ref, lse_ref = softmax_rows(s_ref, v)
    o_naive, lse_naive = softmax_rows(
        masked_scores(q, k, scale=scale, offset=offset, dtype=dtype.type, mask=mask), v
    )
    eps = float(np.finfo(dtype).eps)
    s_max = float(np.abs(s_ref[np.isfinite(s_ref)]).max(initial=0.0))
    o_err, lse_err = max_error(o, o_ref), max_error(lse, lse_ref)
    o_tol = allowed_error(o_ref, o_naive, eps, extra=eps * s_max * float(np.abs(v).max()))
    lse_tol = allowed_error(lse_ref, lse_naive, eps, extra=eps * s_max)
    assert o.shape == o_ref.shape and lse.shape == lse_ref.shape
    assert o_err <= o_tol, f"o error {o_err:.3e} > tolerance {o_tol:.3e}"
    assert lse_err <= lse_tol, f"lse error {lse_err:.3e} > tolerance {lse_tol:.3e}"
    empty = np.isneginf(lse_ref)
    assert (o[empty] == 0).all(), "rows that see no key must give o = 0"
    return o_err, lse_err


# --- Two runs of one computation, summed in different orders ---

# NumPy's exp, exp2 and log (its own SIMD loops, SVML's on AVX-512, libm's) are within this
# many ulps of the exact value; an ulp of x is at most eps |x|.
EXP_ULPS = 4


def assert_equal_to_rounding(
    found: np.ndarray, expected: np.ndarray, *, roundings: ArrayLike, scale: ArrayLike
) -> None:
    """|found - expected| <= roundings * eps * scale, entry by entry.

    ``roundings``: how many roundings, each at most eps times ``scale``, separate the two
    values (both runs' together); ``scale``: the magnitude they are computed from (both may be
    arrays that broadcast to the values' shape). eps is that of the values' dtype. Entries
    that are not finite must be the same in both (-inf, NaN, where they are).
    """
    found, expected = np.asarray(found), np.asarray(expected)
    assert found.shape == expected.shape, f"shapes {found.shape} != {expected.shape}"
    assert found.dtype == expected.dtype, f"dtypes {found.dtype} != {expected.dtype}"
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(found[~finite], expected[~finite])
    assert np.isfinite(found[finite]).all(), "found is not finite where expected is"
    eps = float(np.finfo(found.dtype).eps)
    tol = np.broadcast_to(np.asarray(roundings) * eps * np.asarray(scale), found.shape)
    diff = np.abs(np.where(finite, found, 0).astype(float) - np.where(finite, expected, 0))
    over = np.where(finite, diff - tol, -np.inf)
    if over.size and over.max() > 0:
        at = np.unravel_index(np.argmax(over), over.shape)
        raise AssertionError(
            f"at {tuple(int(i) for i in at)}: {found[at]!r} vs {expected[at]!r}, "
            f"difference {diff[at]:.3e} > tolerance {tol[at]:.3e} "
            f"= {np.broadcast_to(roundings, found.shape)[at]:.4g} roundings of eps x "
            f"{np.broadcast_to(scale, found.shape)[at]:.4g}"
        )


def attention_rounding(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    block_kv: int,
    scale: float | None = None,
    causal: bool = False,
    causal_align: str = "bottom_right",
    splits: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """How far apart two runs of the same tiled attention on q, k, v (online softmax over
    K/V tiles of ``block_kv`` keys, then, for split-KV, ``splits`` states merged) may land
    when only the order of the sums inside their matmuls differs: (o roundings, o scale,
    lse roundings, lse scale) for ``assert_equal_to_rounding``.

    Counted to first order in u = eps / 2 for one run; two runs differ by up to that count
    of eps. Per query row, with w_j the softmax weights, M the largest score and
    L_j = |scale| sum |q||k_j| >= |s_j|, a run's weight of key j is off relatively by at most
    u times

    - (d + 1) L_j: the score, a dot product of d terms, then the scale;
    - 2 (M - s_j): the argument s_j - m of its exp, and those of the later tiles' rescale
      factors alpha, over which the running max climbs by at most M - s_j;
    - 2 EXP_ULPS per exp: P~'s own and each later tile's alpha.

    o, a weighted mean of v, moves by at most sum_j w_j (...) 2 max|v|, and lse by
    sum_j w_j (...). The sums add block_kv (a tile's P~ V, rowsum P~) + 2 per tile (rescale,
    add) roundings to o and to l, o / l one more; lse = m + log l adds log's error (EXP_ULPS
    ulps of log l <= log n_k) and one rounding of |lse|. A split's lse_s = m_s + log l_s
    (log's error, one rounding of |lse_s| <= max L + log n_k) and the merge's factors
    exp(lse_s - m) (arguments and exps, as above) move the weights further, and each merge
    adds 2 roundings to o and to l.
    """
    d, n_q, n_k = q.shape[-1], q.shape[-2], k.shape[-2]
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    offset = mask_offset(n_q, n_k, causal, causal_align)
    s = masked_scores(q, k, scale=scale, offset=offset, dtype=np.float64)  # (..., n_q, n_k)
    p, l, m = softmax_weights(s)
    w = p / np.where(l == 0, 1, l)  # 0 for masked keys and rows that see none
    seen = w > 0  # keys whose weight a rounding can move (masked: -inf, exactly 0)
    mags = np.abs(q).astype(np.float64) @ np.swapaxes(np.abs(k).astype(np.float64), -1, -2)
    big = abs(scale) * np.where(seen, mags, 0)  # L_j
    with np.errstate(invalid="ignore"):  # rows that see no key: -inf - (-inf)
        gap = np.where(seen, m - s, 0)  # M - s_j
    tiles = -(-n_k // block_kv)
    log_n = np.log(max(n_k, 2))
    per_key = (d + 1) * big + 2 * gap  # (..., n_q, n_k)
    exps, sums = tiles, block_kv + 2 * tiles + 1
    if splits:
        per_key = per_key + big.max(axis=-1, keepdims=True) + 2 * gap + (2 * EXP_ULPS + 3) * log_n
        exps, sums = exps + splits + 1, sums + 2 * splits + 1
    weights = (w * per_key).sum(axis=-1) + 2 * EXP_ULPS * exps  # (..., n_q)
    o_roundings = 2 * (weights + sums)[..., None]  # (..., n_q, 1)
    o_scale = (seen[..., None] * np.abs(v).astype(np.float64)[..., None, :, :]).max(axis=-2)
    with np.errstate(divide="ignore"):
        lse = (m + np.log(l))[..., 0]  # -inf for rows that see no key
    lse_roundings = weights + sums + 2 * EXP_ULPS * (log_n + np.log(max(splits, 1))) + 1
    lse_scale = np.maximum(1, np.abs(np.where(np.isfinite(lse), lse, 0)))
    return o_roundings, o_scale, lse_roundings, lse_scale


class AttentionProblem(TypedDict, total=False):
    """The keyword arguments of ``attention_rounding``: the tiling, scale and mask."""

    block_kv: Required[int]
    scale: float | None
    causal: bool
    causal_align: str
    splits: int


def assert_same_attention(
    found: tuple[np.ndarray, np.ndarray],
    expected: tuple[np.ndarray, np.ndarray],
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    **problem: Unpack[AttentionProblem],
) -> None:
    """Two runs' (o, lse) of the same tiled attention on q, k, v agree to the roundings
    ``attention_rounding(q, k, v, **problem)`` counts."""
    o_r, o_s, lse_r, lse_s = attention_rounding(q, k, v, **problem)
    assert_equal_to_rounding(found[0], expected[0], roundings=o_r, scale=o_s)
    assert_equal_to_rounding(found[1], expected[1], roundings=lse_r, scale=lse_s)


# --- Plotly figure JSON (Plotly >= 6 writes arrays as base64 typed arrays) ---

DTYPES = {
    "f8": np.float64,
    "f4": np.float32,
    "i4": np.int32,
    "i8": np.int64,
    "i1": np.int8,
    "u1": np.uint8,
    "i2": np.int16,
    "u2": np.uint16,
    "u4": np.uint32,
}


def decode(value: object) -> np.ndarray:
    """A typed-array spec {dtype, bdata, shape} or a plain list, as a NumPy array."""
    if isinstance(value, dict) and "bdata" in value:
        a = np.frombuffer(base64.b64decode(value["bdata"]), dtype=DTYPES[value["dtype"]])
        shape = value.get("shape")
        if shape:
            a = a.reshape([int(s) for s in str(shape).split(",")])
        return a
    return np.array(value, dtype=float)


def spec(fig_json: str) -> dict:
    return json.loads(fig_json)
