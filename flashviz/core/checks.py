"""Input validation shared by every public entry point.

Every failure raises ``ValueError`` (or ``TypeError`` for dtypes) whose message names the
argument and what was expected, so the app can show it to a user as it is.
"""

from __future__ import annotations

import numbers

import numpy as np

from flashviz.core.block_mask import BlockMask, create_block_mask
from flashviz.core.masks import MaskMod
from flashviz.core.problem import Problem, TiledProblem

CAUSAL_ALIGNS = ("bottom_right", "top_left")
DEFAULT_BLOCK_Q = 128  # a tiled run's block sizes when the caller gives none
DEFAULT_BLOCK_KV = 512
SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _as_float_array(name: str, x: object) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind == "f" and not arr.dtype.isnative:  # big-endian on a little-endian CPU
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype not in SUPPORTED_DTYPES:
        raise TypeError(
            f"{name} must be a float32 or float64 array, got dtype {arr.dtype}; "
            f"convert it with {name}.astype(np.float32)"
        )
    return arr


def check_qkv(
    q: object, k: object, v: object, *, two_d: bool = False, grouped: bool = False
) -> tuple[np.ndarray, ...]:
    """Check shapes, dtypes and finiteness of q (..., n_q, d), k and v (..., n_k, d). k and v
    have q's leading dims, or with ``grouped`` (grouped-query attention) fewer heads in the
    last one, a divisor of q's."""
    arrays = [_as_float_array(name, x) for name, x in (("q", q), ("k", k), ("v", v))]
    q_, k_, v_ = arrays
    rank = "(n, d)" if two_d else "(..., n, d)"
    for name, arr in zip("qkv", arrays, strict=True):
        if (two_d and arr.ndim != 2) or arr.ndim < 2:
            raise ValueError(f"{name} must have shape {rank}, got shape {arr.shape}")
        if arr.shape[-2] < 1 or arr.shape[-1] < 1:
            raise ValueError(
                f"{name} must have at least one row and one column (n >= 1, d >= 1), "
                f"got shape {arr.shape}"
            )
    if len({a.dtype for a in arrays}) != 1:
        raise TypeError(f"q, k and v must share one dtype, got {q_.dtype}, {k_.dtype}, {v_.dtype}")
    d = q_.shape[-1]
    for name, arr in (("k", k_), ("v", v_)):
        if arr.shape[-1] != d:
            raise ValueError(
                f"{name} must have head dim d = {d} like q (shape (..., n_k, {d})), "
                f"got shape {arr.shape}"
            )
        if arr.shape[:-2] != q_.shape[:-2] and not (
            grouped and _grouped(q_.shape[:-2], arr.shape[:-2])
        ):
            gqa = ", or fewer heads dividing q's (grouped-query attention)" if grouped else ""
            raise ValueError(
                f"{name} must have the same leading (batch, head) dims as q "
                f"{q_.shape[:-2]}{gqa}, got shape {arr.shape}"
            )
    if v_.shape[:-1] != k_.shape[:-1]:
        raise ValueError(
            f"v must have as many rows as k (and its heads): k {k_.shape}, v {v_.shape}"
        )
    for name, arr in zip("qkv", arrays, strict=True):
        if not np.isfinite(arr).all():
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{name} must be finite, got {bad} NaN or Inf entries")
    return q_, k_, v_


def _grouped(q_lead: tuple[int, ...], kv_lead: tuple[int, ...]) -> bool:
    """K/V leading dims of grouped-query attention: q's, with a head count that divides q's."""
    return (
        len(q_lead) == len(kv_lead) >= 1
        and q_lead[:-1] == kv_lead[:-1]
        and kv_lead[-1] >= 1
        and q_lead[-1] % kv_lead[-1] == 0
    )


def check_scale(scale: float | None, d: int) -> float:
    """Resolve the softmax scale: 1/sqrt(d) by default, else a finite real number
    (a Python or NumPy real, ``fractions.Fraction`` included)."""
    if scale is None:
        return 1.0 / float(np.sqrt(d))
    if isinstance(scale, bool | np.bool_) or not isinstance(scale, numbers.Real):
        raise ValueError(
            f"scale must be a finite real number or None (1/sqrt(d)), got {scale!r} "
            f"({type(scale).__name__}; convert it with float())"
        )
    try:
        value = float(scale)
    except OverflowError:  # a Fraction beyond the float range
        value = float("inf")
    if not np.isfinite(value):
        raise ValueError(f"scale must be a finite real number or None (1/sqrt(d)), got {scale!r}")
    return value


def check_causal(causal: object) -> bool:
    """``causal`` must be a bool: a string such as "False" is truthy and would mask."""
    if not isinstance(causal, bool | np.bool_):
        raise ValueError(f"causal must be True or False, got {causal!r}")
    return bool(causal)


def check_seed(seed: object) -> int | None:
    """A dropout seed: an integer (any size; reduced mod 2**64) or None for a fresh one."""
    if seed is None:
        return None
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    return int(seed)


_SCORE_CHUNK = 2**16  # scores computed at a time by the exact range check


def max_abs_score(q: np.ndarray, k: np.ndarray, dtype: type[np.floating]) -> float:
    """max |q k^T| over every query-key pair and head, computed in ``dtype`` a few rows at a
    time (O(chunk) memory, never the n_q x n_k matrix); inf if it overflows ``dtype``."""
    q2 = np.asarray(q, dtype=dtype).reshape(-1, q.shape[-2], q.shape[-1])
    k2 = np.asarray(k, dtype=dtype).reshape(-1, k.shape[-2], k.shape[-1])
    group = q2.shape[0] // k2.shape[0]  # query heads per K/V head (grouped-query attention)
    rows = max(1, _SCORE_CHUNK // max(1, k2.shape[1]))
    best = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for h in range(q2.shape[0]):
            for r in range(0, q2.shape[1], rows):
                top = float(np.abs(q2[h, r : r + rows] @ k2[h // group].T).max(initial=0.0))
                if not np.isfinite(top):  # inf, or NaN from inf - inf in a partial sum
                    return float("inf")
                best = max(best, top)
    return best


def check_scores_fit(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    scale: float,
    dtype: type[np.floating],
    p_max: float = 1.0,
) -> None:
    """ValueError if scale * q k^T, or the accumulator sum P~ v (|P~| <= ``p_max``: 1, or
    2^threshold under FA4's lazy rescaling), can overflow ``dtype``: the running max keeps
    exp() finite, not the scores themselves.

    A cheap bound first (|q . k| <= d max|q| max|k|); the exact scores, a few rows at a
    time, only when the bound does not settle it.
    """
    big = float(np.finfo(dtype).max)
    d, n_k = q.shape[-1], k.shape[-2]
    q_max, k_max = (float(np.abs(x).max(initial=0.0)) for x in (q, k))
    bound = d * q_max * k_max * max(1.0, abs(scale))  # Python floats: inf on overflow
    if not abs(scale) < big:
        raise ValueError(
            f"the softmax scale {scale:g} overflows {np.dtype(dtype)} (largest {big:.4g}), "
            f"so the scores scale * q k^T would too: use a smaller scale"
        )
    if not bound < big:
        s_max = max_abs_score(q, k, dtype)
        if not (s_max < big and s_max * abs(scale) < big):
            raise ValueError(
                f"the scores scale * q k^T overflow {np.dtype(dtype)} (largest "
                f"{big:.4g}): scale q or k down (or the softmax scale, now {scale:g})"
            )
    v_max = float(np.abs(v).max(initial=0.0))
    if not v_max * n_k * p_max < big:
        headroom = "" if p_max == 1.0 else f" (P~ up to {p_max:.4g} with a stale max)"
        raise ValueError(
            f"v has values up to {v_max:.4g}: the accumulator o = sum P~ v over {n_k} keys"
            f"{headroom} may overflow {np.dtype(dtype)} (largest {big:.4g}); scale v down"
        )


def check_causal_align(causal_align: str) -> str:
    if not isinstance(causal_align, str) or causal_align not in CAUSAL_ALIGNS:
        raise ValueError(f"causal_align must be one of {CAUSAL_ALIGNS}, got {causal_align!r}")
    return causal_align


def _integer(value: object) -> int | None:
    """``value`` as an int if it is a Python or NumPy integer (a bool is not one), else None."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
        return int(value)
    return None


def check_block(name: str, value: object) -> int:
    """A positive integer (a block size, a length, a count of bytes)."""
    n = _integer(value)
    if n is None or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return n


def check_blocks(**values: object) -> tuple[int, ...]:
    """``check_block`` of each keyword argument, in order."""
    return tuple(check_block(name, value) for name, value in values.items())


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """An integer in [low, high] (no upper bound for None), as a Python int."""
    n = _integer(value)
    if n is None:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if n < low or (high is not None and n > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bound}, got {n}")
    return n


def check_dropout_p(dropout_p: object) -> float:
    if (
        isinstance(dropout_p, bool)
        or not isinstance(dropout_p, numbers.Real)
        or not 0.0 <= float(dropout_p) < 1.0
    ):
        raise ValueError(f"dropout_p must be a number in [0, 1), got {dropout_p!r}")
    return float(dropout_p)


def check_problem(
    q: object,
    k: object,
    v: object,
    scale: float | None,
    causal_align: str,
    *,
    causal: object,
    two_d: bool = False,
    mask_mod: object = None,
    block_mask: object = None,
    grouped: bool = False,
) -> Problem:
    """Validate everything an attention call shares: the arrays, the scale (resolved) and
    the mask (causal, or FlexAttention's ``mask_mod`` or ``block_mask``: ``flashviz.masks``).
    ``two_d``: one head, q (n_q, d), k and v (n_k, d); ``grouped``: k and v may have fewer
    heads (grouped-query attention)."""
    q_, k_, v_ = check_qkv(q, k, v, two_d=two_d, grouped=grouped)
    causal_, align = check_causal(causal), check_causal_align(causal_align)
    mod, heads = _check_mask(q_, k_, causal_, mask_mod, block_mask)
    return Problem(
        q_, k_, v_, check_scale(scale, q_.shape[-1]), causal_, align, mask_mod=mod,
        mask_heads=heads,
    )  # fmt: skip


def _check_mask(
    q: np.ndarray, k: np.ndarray, causal: bool, mask_mod: object, block_mask: object
) -> tuple[MaskMod | None, tuple[int, int]]:
    """The mask function and the (B, H) it varies over, from at most one of ``causal``,
    ``mask_mod`` and ``block_mask``; a block mask must fit q and k."""
    given = [
        name for name, x in (("mask_mod", mask_mod), ("block_mask", block_mask)) if x is not None
    ]
    if causal and given:
        raise ValueError(f"pass causal=True or {given[0]}, not both (causal() is a mask_mod)")
    if len(given) == 2:
        raise ValueError("pass mask_mod or block_mask, not both")
    if mask_mod is not None:
        if not callable(mask_mod):
            raise ValueError(f"mask_mod must be a function (b, h, q_idx, kv_idx), got {mask_mod!r}")
        return mask_mod, (1, 1)
    if block_mask is None:
        return None, (1, 1)
    if not isinstance(block_mask, BlockMask):
        raise ValueError(
            f"block_mask must be a BlockMask (flashviz.masks.create_block_mask), got "
            f"{type(block_mask).__name__}"
        )
    n = (q.shape[-2], k.shape[-2])
    if block_mask.seq_lengths != n:
        raise ValueError(
            f"block_mask was built for (n_q, n_k) = {block_mask.seq_lengths}, the inputs have {n}"
        )
    lead = q.shape[:-2]
    batches, heads = block_mask.shape[:2]
    want = (int(np.prod(lead[:-1], dtype=np.int64)), lead[-1] if lead else 1)
    if batches not in (1, want[0]) or heads not in (1, want[1]):
        raise ValueError(
            f"block_mask has (B, H) = {(batches, heads)}: each must be 1 (None, the same for "
            f"all) or q's, {want}"
        )
    return block_mask.mask_mod, (batches, heads)


def check_tiled_problem(
    q: object,
    k: object,
    v: object,
    *,
    block_q: object,
    block_kv: object,
    causal: object,
    causal_align: str,
    scale: float | None,
    two_d: bool = False,
    mask_mod: object = None,
    block_mask: object = None,
    grouped: bool = False,
) -> TiledProblem:
    """``check_problem``, and block sizes that are positive integers; a ``mask_mod`` gets
    its block mask (one for all heads), and a ``block_mask`` must have the run's tiles.
    Block sizes of None are the block mask's, else 128 and 512."""
    p = check_problem(
        q, k, v, scale, causal_align, causal=causal, two_d=two_d, mask_mod=mask_mod,
        block_mask=block_mask, grouped=grouped,
    )  # fmt: skip
    if isinstance(block_mask, BlockMask):
        block_q = block_mask.block_size[0] if block_q is None else block_q
        block_kv = block_mask.block_size[1] if block_kv is None else block_kv
    block_q, block_kv = check_blocks(
        block_q=DEFAULT_BLOCK_Q if block_q is None else block_q,
        block_kv=DEFAULT_BLOCK_KV if block_kv is None else block_kv,
    )
    tiles: BlockMask | None = None
    if isinstance(block_mask, BlockMask):
        if block_mask.block_size != (block_q, block_kv):
            raise ValueError(
                f"block_mask has tiles of {block_mask.block_size}, the run (block_q, block_kv) "
                f"= {(block_q, block_kv)}: build it with block_size=({block_q}, {block_kv}), "
                "or leave the block sizes out"
            )
        tiles = block_mask
    elif p.mask_mod is not None:
        tiles = create_block_mask(p.mask_mod, None, None, p.n_q, p.n_k, (block_q, block_kv))
    return TiledProblem(
        p.q, p.k, p.v, p.scale, p.causal, p.causal_align, block_q, block_kv,
        mask_mod=p.mask_mod, mask_heads=p.mask_heads, block_mask=tiles,
    )  # fmt: skip


def check_like(name: str, x: object, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An array of ``shape`` and ``dtype`` (a saved forward output or an incoming gradient)."""
    arr = _as_float_array(name, x)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {arr.shape}")
    if arr.dtype != dtype:
        raise TypeError(f"{name} must have the dtype of q ({dtype}), got {arr.dtype}")
    return arr


def check_grad_output(prob: Problem, do: object) -> np.ndarray:
    """dO, the gradient of the loss with respect to o: o's shape (..., n_q, d), finite, and
    small enough that dP = dO V^T and the gradients built from it fit the precision."""
    do_ = check_like("do", do, prob.q.shape, prob.q.dtype)
    if not np.isfinite(do_).all():
        raise ValueError("do must be finite, got NaN or Inf entries")
    big = float(np.finfo(prob.q.dtype).max)
    top = [float(np.abs(x).max(initial=0.0)) for x in (do_, prob.v, prob.q, prob.k)]
    n = max(prob.n_q, prob.n_k)
    # |dP| <= d |dO| |V|, |dS| <= 2 |dP|, |dQ|, |dK| <= n |scale| |dS| max(|K|, |Q|), |dV| <= n |dO|
    bound = 2 * prob.d * top[0] * top[1] * n * abs(prob.scale) * max(top[2], top[3], 1.0)
    if not (bound < big and n * top[0] < big):
        raise ValueError(
            f"do and v (up to {top[0]:.4g} and {top[1]:.4g}) are large enough that the "
            f"gradients may overflow {prob.q.dtype} (largest {big:.4g}): scale do down"
        )
    return do_


def check_saved(prob: Problem, o: object, lse: object) -> tuple[np.ndarray, np.ndarray]:
    """The forward's saved o (..., n_q, d), finite, and lse (..., n_q), finite or -inf (a row
    that sees no key)."""
    o_ = check_like("o", o, prob.q.shape, prob.q.dtype)
    lse_ = check_like("lse", lse, prob.q.shape[:-1], prob.q.dtype)
    if not np.isfinite(o_).all():
        raise ValueError("o must be finite, got NaN or Inf entries")
    if np.isnan(lse_).any() or np.isposinf(lse_).any():
        raise ValueError("lse must be finite, or -inf for a row that sees no key; got NaN or +inf")
    _check_saved_rows(prob, o_, lse_)
    return o_, lse_


SAVED_ROWS_CHECKED = 8  # rows of o and lse recomputed by check_saved, spread over all heads
SAVED_ULPS = 2**10  # their tolerance: ulps of the scores' terms (a tiled run is off by a few)


def _check_saved_rows(prob: Problem, o: np.ndarray, lse: np.ndarray) -> None:
    """A few rows of o and lse recomputed in float64 from q, k and v (O(n_k d) each): saved
    outputs of another problem, scale or mask, or edited ones, are refused here instead of
    turning into NaN or wrong gradients."""
    n_q, d = prob.n_q, prob.d
    q3, k3, v3 = (x.reshape(-1, x.shape[-2], d) for x in (prob.q, prob.k, prob.v))
    o3, lse2 = o.reshape(-1, n_q, d), lse.reshape(-1, n_q)
    rows = q3.shape[0] * n_q
    picks = np.unique(np.linspace(0, rows - 1, num=min(SAVED_ROWS_CHECKED, rows)).round())
    eps = float(np.finfo(prob.q.dtype).eps)
    for h, r in (divmod(int(i), n_q) for i in picks):
        q_r, k_h = q3[h, r].astype(np.float64), k3[h // prob.group].astype(np.float64)
        v_h = v3[h // prob.group]
        s = prob.scale * (k_h @ q_r)  # (n_k,)
        row_seen = prob.entries_visible(range(r, r + 1), range(prob.n_k), h)  # (1, n_k)
        if row_seen is not None:
            s = np.where(row_seen[0], s, -np.inf)
        where = f"row {r}" + (f" of head {h}" if q3.shape[0] > 1 else "")
        seen = np.isfinite(s)
        # the scores' terms: each s_rc rounds d products of size |q_r| . |k_c|
        size = 1.0 + abs(prob.scale) * float((np.abs(k_h[seen]) @ np.abs(q_r)).max(initial=0.0))
        if not seen.any():
            want_lse, want_o = -np.inf, np.zeros(d)
        else:
            p = np.exp(s - s.max())  # (n_k,)
            want_lse = float(s.max() + np.log(p.sum()))
            want_o = p @ v_h.astype(np.float64) / p.sum()  # (d,)
        got_lse = float(lse2[h, r])
        tol = (SAVED_ULPS + d) * eps * size
        if np.isneginf(got_lse) != np.isneginf(want_lse) or abs(got_lse - want_lse) > tol:
            raise ValueError(
                f"lse does not belong to q, k and v with these arguments: {where} has lse "
                f"{got_lse:.6g}, recomputed {want_lse:.6g}; pass the o and lse that "
                "flash_attention returned for the same q, k, v, scale and mask"
            )
        err = float(np.abs(o3[h, r] - want_o).max())
        if err > 2 * tol * float(np.abs(v_h).max()):
            raise ValueError(
                f"o does not belong to q, k and v with these arguments: {where} is off by "
                f"{err:.3g} from its recomputed value; pass the o and lse that "
                "flash_attention returned for the same q, k, v, scale and mask"
            )


def _parts(name: str, value: object, parts: tuple[str, ...]) -> list[np.ndarray]:
    """``value`` as the arrays ``parts`` (a tuple or list of exactly that many), each a float32
    or float64 array, all of one dtype."""
    what = f"({', '.join(parts)})"
    if not isinstance(value, tuple | list):
        raise ValueError(f"{name} must be a tuple {what}, got {type(value).__name__}")
    if len(value) != len(parts):
        raise ValueError(f"{name} must be a tuple {what}, got {len(value)} items")
    arrays = [_as_float_array(f"{name}'s {p}", x) for p, x in zip(parts, value, strict=True)]
    if len({a.dtype for a in arrays}) != 1:
        dtypes = ", ".join(f"{p} {a.dtype}" for p, a in zip(parts, arrays, strict=True))
        raise TypeError(f"{name}'s {what} must share one dtype, got {dtypes}")
    return arrays


def _rows_and_output(name: str, rows: list[np.ndarray], o: np.ndarray) -> None:
    """Per-row arrays (..., n_q) and an output o (..., n_q, d) that agree in shape."""
    if o.ndim < 2 or o.shape[-1] < 1:
        raise ValueError(f"{name}'s o must have shape (..., n_q, d), got shape {o.shape}")
    for r in rows:
        if r.shape != o.shape[:-1]:
            raise ValueError(
                f"{name}'s per-row values must have shape {o.shape[:-1]} (o's without d), "
                f"got shape {r.shape}"
            )
    if not np.isfinite(o).all():
        raise ValueError(f"{name}'s o must be finite, got NaN or Inf entries")


def _max_or_empty(name: str, x: np.ndarray) -> None:
    """A row's max or logsumexp: finite, or -inf for a row that saw no key."""
    if np.isnan(x).any() or np.isposinf(x).any():
        raise ValueError(f"{name} must be finite, or -inf for a row with no key; got NaN or +inf")


def check_state(name: str, state: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An online-softmax state (m, l, o): m (..., n_q) finite or -inf, l (..., n_q) finite and
    >= 0, o (..., n_q, d) finite, one float dtype."""
    m, l, o = _parts(name, state, ("m", "l", "o"))
    _rows_and_output(name, [m, l], o)
    _max_or_empty(f"{name}'s m", m)
    if not np.isfinite(l).all() or (l < 0).any():
        raise ValueError(f"{name}'s l must be finite and >= 0 (a sum of exponentials)")
    return m, l, o


def check_output(name: str, output: object) -> tuple[np.ndarray, np.ndarray]:
    """A finished (o, lse): o (..., n_q, d) finite, lse (..., n_q) finite or -inf."""
    o, lse = _parts(name, output, ("o", "lse"))
    _rows_and_output(name, [lse], o)
    _max_or_empty(f"{name}'s lse", lse)
    return o, lse


def check_pair(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> None:
    """Two states or outputs to merge: the same shapes and dtype (no broadcasting)."""
    if [x.shape for x in a] != [x.shape for x in b]:
        raise ValueError(
            f"a and b must have the same shapes, got {[x.shape for x in a]} and "
            f"{[x.shape for x in b]}"
        )
    if a[0].dtype != b[0].dtype:
        raise TypeError(f"a and b must share one dtype, got {a[0].dtype} and {b[0].dtype}")
