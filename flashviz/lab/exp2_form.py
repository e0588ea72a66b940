"""Precision lesson 3: the exp2 form of the inner step, as real kernels write it.

Kernels fold log2(e) into the softmax scale and call exp2 (one hardware instruction); the
running max and the logsumexp then live in base 2 and L = ln(2) L2. ``attn_fwd_inner_exp2``
is the inner step in that form, ``compare_forms`` runs one query block in both forms and
``forms_table`` sets their numbers side by side, brought back to base e.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import islice

import numpy as np

from flashviz.core.checks import check_tiled_problem
from flashviz.core.inner_step import TileUpdate, attn_fwd_inner, finalize, initial_state
from flashviz.core.masking import visible

LN2 = math.log(2.0)
LOG2E = 1.0 / LN2


def attn_fwd_inner_exp2(
    m2_i: np.ndarray,
    l_i: np.ndarray,
    o_i: np.ndarray,
    q_i: np.ndarray,
    k_j: np.ndarray,
    v_j: np.ndarray,
    *,
    scale_log2e: float,
    visible: np.ndarray | None = None,
) -> TileUpdate:
    """``flashviz.core.inner_step.attn_fwd_inner`` in base 2, as Triton and flash-attn write it.

    A separate function rather than a switch in ``attn_fwd_inner``: the base-e step is the
    reference the CUDA kernel mirrors line by line and should stay plain. Only the scale
    constant (log2 e folded in) and the two exponentials (exp2) differ; the phases, names,
    the -inf guard and the returned ``TileUpdate`` are the same, with ``m_i`` holding m2
    and ``s_ij`` holding s2 (both in base-2 units). Dropout and P~ rounding are left out.
    """
    # phase:scores  s2_ij = (q_i k_j^T) * (scale * log2 e), masked entries = -inf
    s2_ij = (q_i @ np.swapaxes(k_j, -1, -2)) * scale_log2e  # (..., bq, bkv)
    if visible is not None:
        s2_ij = np.where(visible, s2_ij, -np.inf)
    # phase:max  m2_new = max(m2_i, rowmax(s2_ij))
    m2_new = np.maximum(m2_i, s2_ij.max(axis=-1))  # (..., bq)
    m2_safe = np.where(np.isneginf(m2_new), 0, m2_new)  # a row with no key yet: subtract 0
    # phase:exp  p_ij = exp2(s2_ij - m2_new)
    p_ij = np.exp2(s2_ij - m2_safe[..., None])  # (..., bq, bkv)
    # phase:alpha  alpha = exp2(m2_i - m2_new)
    alpha = np.exp2(m2_i - m2_safe)  # (..., bq)
    # phase:sum  l_i = alpha * l_i + rowsum(p_ij)
    l_new = alpha * l_i + p_ij.sum(axis=-1)  # (..., bq)
    # phase:accumulate  o_i = diag(alpha) o_i + p_ij v_j
    o_rescaled = alpha[..., None] * o_i  # (..., bq, d)
    o_new = o_rescaled + p_ij @ v_j  # (..., bq, d)
    stale = np.zeros(m2_new.shape, dtype=bool)  # FA2's rule: no max is kept stale
    return TileUpdate(m2_new, l_new, o_new, s2_ij, p_ij, alpha, o_rescaled, stale)


@dataclass(frozen=True, eq=False)
class FormsRun:
    """Query block i run through every K/V tile in the paper's form and in the exp2 form."""

    rows: range
    cols: list[range]
    scale: float  # tau
    scale_log2e: float  # tau log2 e, rounded to the compute type
    natural: list[TileUpdate]  # per tile: m_i, s_ij in base e
    base2: list[TileUpdate]  # per tile: m_i = m2, s_ij = s2 in base 2
    o: np.ndarray  # (bq, d) paper form
    lse: np.ndarray  # (bq,) L = m + ln l
    o2: np.ndarray  # (bq, d) exp2 form
    lse2: np.ndarray  # (bq,) L2 = m2 + log2 l

    @property
    def lse_from_base2(self) -> np.ndarray:
        """L = ln(2) L2."""
        return LN2 * self.lse2


def compare_forms(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    block_q: int,
    block_kv: int,
    i: int = 0,
    causal: bool = False,
    causal_align: str = "bottom_right",
    scale: float | None = None,
    dtype: str = "float32",
) -> FormsRun:
    """Run query block ``i`` of one head (q (n_q, d), k, v (n_k, d)) in both forms.

    Both compute in ``dtype`` ("float32", as kernels keep the softmax state, or "float64").
    The paper's form uses ``flashviz.core.inner_step.attn_fwd_inner``; the exp2 form
    ``attn_fwd_inner_exp2``. They agree to rounding: s2 = s log2 e, m2 = m log2 e, and
    alpha, P~, l, o and L = ln(2) L2 are the same numbers.
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    prob = check_tiled_problem(
        q, k, v, block_q=block_q, block_kv=block_kv, causal=causal,
        causal_align=causal_align, scale=scale, two_d=True,
    )  # fmt: skip
    n_blocks = prob.grid[0]
    if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < n_blocks:
        raise ValueError(f"i must be a query block index in [0, {n_blocks}), got {i!r}")
    t = np.dtype(dtype).type
    offset = prob.offset
    _, rows, kv = next(islice(prob.schedule(), i, None))  # query block i and its K/V blocks
    q_i = prob.q[rows.start : rows.stop].astype(t)
    k_, v_ = prob.k.astype(t), prob.v.astype(t)
    scale_, scale2 = t(prob.scale), t(prob.scale * LOG2E)
    state = initial_state((), len(rows), prob.d, t)
    state2 = initial_state((), len(rows), prob.d, t)
    cols_list, natural, base2 = [], [], []
    for _, cols in kv:
        k_j, v_j = k_[cols.start : cols.stop], v_[cols.start : cols.stop]
        vis = visible(rows, cols, offset)
        new = attn_fwd_inner(*state, q_i, k_j, v_j, scale=scale_, visible=vis)
        new2 = attn_fwd_inner_exp2(*state2, q_i, k_j, v_j, scale_log2e=scale2, visible=vis)
        cols_list.append(cols)
        natural.append(new)
        base2.append(new2)
        state, state2 = (new.m_i, new.l_i, new.o_i), (new2.m_i, new2.l_i, new2.o_i)
    o, lse = finalize(*state)
    o2, _ = finalize(*state2)
    with np.errstate(divide="ignore"):
        lse2 = state2[0] + np.log2(state2[1])  # phase:lse  L2 = m2 + log2(l)
    return FormsRun(rows, cols_list, float(scale_), float(scale2), natural, base2, o, lse, o2, lse2)


@dataclass(frozen=True)
class FormRow:
    """One line of the side-by-side table: a quantity in both forms."""

    quantity: str
    natural: float  # paper's form (base e)
    base2: float  # exp2 form as the kernel holds it
    base2_in_e: float  # the exp2 form's number brought back to base e (x ln 2 for logs)
    diff: float  # |natural - base2_in_e|


def forms_table(run: FormsRun, row: int, tile: int) -> list[FormRow]:
    """The numbers of query row ``row`` (index within the block) at K/V tile ``tile``.

    Log-domain quantities (scale, scores, max, L) differ by the factor log2 e and are
    brought back with x ln 2; alpha, P~, l and o are the same numbers in both forms.
    """
    if not 0 <= row < len(run.rows):
        raise ValueError(f"row must be in [0, {len(run.rows)}), got {row}")
    if not 0 <= tile < len(run.natural):
        raise ValueError(f"tile must be in [0, {len(run.natural)}), got {tile}")
    a, b = run.natural[tile], run.base2[tile]
    s_a, s_b = a.s_ij[row], b.s_ij[row]
    c = int(np.argmax(np.where(np.isfinite(s_a), s_a, -np.inf)))  # the tile's largest score
    m_prev_a = run.natural[tile - 1].m_i[row] if tile else -np.inf
    m_prev_b = run.base2[tile - 1].m_i[row] if tile else -np.inf
    lines = [
        ("scale", run.scale, run.scale_log2e, True),
        (f"s (row max of the tile, key {run.cols[tile].start + c})", s_a[c], s_b[c], True),
        ("m before the tile", m_prev_a, m_prev_b, True),
        ("m after the tile", a.m_i[row], b.m_i[row], True),
        ("alpha", a.alpha[row], b.alpha[row], False),
        ("P\u0303 of the smallest visible score", *_smallest_p(a, b, row), False),
        ("rowsum P\u0303", a.p_ij[row].sum(), b.p_ij[row].sum(), False),
        ("l after the tile", a.l_i[row], b.l_i[row], False),
        ("o[0] after the tile (unnormalised)", a.o_i[row, 0], b.o_i[row, 0], False),
        ("L = m + log l (after the last tile)", run.lse[row], run.lse2[row], True),
    ]
    out = []
    for name, x, y, is_log in lines:
        x, y = float(x), float(y)
        back = y * LN2 if is_log else y
        out.append(FormRow(name, x, y, back, 0.0 if x == back else abs(x - back)))
    return out


def _smallest_p(a: TileUpdate, b: TileUpdate, row: int) -> tuple[float, float]:
    seen = np.isfinite(a.s_ij[row])
    if not seen.any():
        return 0.0, 0.0
    c = int(np.argmin(np.where(seen, a.s_ij[row], np.inf)))
    return float(a.p_ij[row, c]), float(b.p_ij[row, c])
