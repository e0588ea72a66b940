"""The online-softmax bug zoo: the classic mistakes as data, on a row or a tile.

Each ``Bug`` is one object: its name, its one-line explanation, when it bites (in words,
and as a ``reason`` read off the correct online state), the ``UpdateHooks`` that make
the one update, ``flashviz.core.inner_step.online_update``, commit the mistake, and that
update written as TeX (``UpdateTex``) for the step explanation's numbers. The tiled
run records it (``flashviz.record_trace(..., bug=key)``); the row debugger
(``flashviz.lab.row_debugger``) walks one row of scores through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from flashviz.core.inner_step import FA2, UpdateHooks

Array = np.ndarray

TOL = 1e-9  # a step diverges when its estimate is off the exact answer by more than this

# Where each mistake starts to matter, for changes of relative size TOL:
LOG_OVERFLOW = float(np.log(np.finfo(np.float64).max))  # 709.78: exp(x) = inf above it
# -723.7: below it exp(x) is subnormal with less than 1 / TOL relative precision (0 below -745.1)
LOG_UNDERFLOW = float(np.log(np.finfo(np.float64).smallest_subnormal / TOL))
LOG_TOL = -float(np.log(TOL))  # 20.7: a key this far below the max has weight below TOL


class ChunkState(NamedTuple):
    """The correct online state around one chunk, whether a masked key was seen, and the
    running max a lazy run (FA4's rescaling with the zoo's ``HIGH_THRESHOLD``) keeps after it."""

    m_prev: float
    m: float
    l_prev: float
    l: float
    alpha: float
    masked_seen: bool
    m_lazy: float


Reason = Callable[[ChunkState], str | None]  # why a mistake bites at this chunk, or None


@dataclass(frozen=True)
class UpdateTex:
    """An update as a run computes it, one TeX line per phase (``&=`` aligned), to be filled
    with one query row's numbers by ``str.format`` (``flashviz.lab.explain``). Fields:
    {row} (the global query row), {m_prev}, {rowmax} (of the tile's scores), {m}, {alpha},
    {l_prev}, {psum} (rowsum of P~), {l}, and for the first column of o: {o_prev}, {pv} (what
    the tile added: o - diag(alpha) o_prev), {pv_from_p} (P~ V from P~ and V) and {o}.
    The defaults are FlashAttention-2's update (``FA2_TEX``)."""

    max: str = r"m_{{{row}}} &= \max({m_prev},\ {rowmax}) = {m}"
    alpha: str = r"\alpha &= e^{{{m_prev} - ({m})}} = {alpha}"
    sum: str = r"\ell_{{{row}}} &= {alpha} \times {l_prev} + {psum} = {l}"
    accumulate: str = r"o_{{{row},0}} &= {alpha} \times {o_prev} + {pv} = {o}"

    def lines(self, **numbers: object) -> list[str]:
        """The four lines with the given numbers (already written as TeX) filled in."""
        return [
            line.format(**numbers) for line in (self.max, self.alpha, self.sum, self.accumulate)
        ]


FA2_TEX = UpdateTex()  # the correct update


@dataclass(frozen=True)
class Bug:
    """One classic mistake, the hooks that put it into the update, and that update in TeX."""

    key: str
    title: str
    explanation: str  # what the mistake computes, in one or two sentences
    bites_when: str  # the condition on the row, in words
    reason: Reason  # the same condition on one chunk's correct state, with its numbers
    hooks: UpdateHooks  # the update's variant (hooks.name == key)
    tex: UpdateTex = FA2_TEX  # the update as the bug computes it (FA2's lines it keeps)


# Forget to rescale O, forget to rescale l ------------------------------------------------


def _max_rose(c: ChunkState) -> bool:
    """The max rose from a finite value enough that alpha = exp(m_prev - m) < 1 - TOL."""
    return bool(np.isfinite(c.m_prev) and c.m - c.m_prev > TOL)


def _rescale_reason(c: ChunkState) -> str | None:
    if _max_rose(c):
        return (
            f"the running max rose from {c.m_prev:.4g} to {c.m:.4g}, so the old state "
            f"needs alpha = exp(m_prev - m) = {c.alpha:.3g}"
        )
    return None


def _o_not_rescaled(o_rescaled: Array, o_i: Array) -> Array:
    return o_i  # o_i = o_i + p_ij v_j


_O_NOT_RESCALED_TEX = UpdateTex(accumulate=r"o_{{{row},0}} &= {o_prev} + {pv} = {o}")


def _l_not_rescaled(l_new: Array, l_i: Array, p_ij: Array) -> Array:
    return l_i + p_ij.sum(axis=-1)  # l_i = l_i + rowsum(p_ij)


_L_NOT_RESCALED_TEX = UpdateTex(sum=r"\ell_{{{row}}} &= {l_prev} + {psum} = {l}")


# Rescale with the wrong sign -------------------------------------------------------------


def _wrong_sign_reason(c: ChunkState) -> str | None:
    if _max_rose(c):
        with np.errstate(over="ignore"):
            wrong = float(np.exp(c.m - c.m_prev))
        return (
            f"the running max rose from {c.m_prev:.4g} to {c.m:.4g}: alpha should be "
            f"exp(m_prev - m) = {c.alpha:.3g}, the wrong sign gives exp(m - m_prev) = {wrong:.3g}"
        )
    return None


def _alpha_wrong_sign(alpha: Array, m_i: Array, m_safe: Array) -> Array:
    return np.where(np.isneginf(m_i), 0, np.exp(m_safe - m_i))  # exp(m_new - m_i) >= 1


_WRONG_SIGN_TEX = UpdateTex(alpha=r"\alpha &= e^{{{m} - ({m_prev})}} = {alpha}")


# Do not subtract the max -----------------------------------------------------------------


def _no_max_reason(c: ChunkState) -> str | None:
    with np.errstate(divide="ignore"):
        log_l = c.m + np.log(c.l)  # log of l without the max subtracted: sum_j exp(s_j)
    if log_l > LOG_OVERFLOW:
        return (
            f"the largest score so far is {c.m:.4g}: sum exp(s) = exp({log_l:.4g}) is above "
            f"exp({LOG_OVERFLOW:.1f}), so l = inf and the estimate is inf / inf = NaN"
        )
    if np.isfinite(c.m) and c.m < LOG_UNDERFLOW:
        return (
            f"every score so far is at most {c.m:.4g} < {LOG_UNDERFLOW:.1f}: exp(s) underflows "
            "(to subnormals that lose the digits, or to 0: then l = 0 and the estimate is 0)"
        )
    return None


def _max_zero(m_new: Array, m_safe: Array) -> tuple[Array, Array]:
    zero = np.zeros_like(m_new)  # m = 0: p_ij = exp(s_ij), alpha = 1
    return zero, zero


_MAX_ZERO_TEX = UpdateTex(max=r"m_{{{row}}} &= 0 \quad\text{{(max not subtracted)}}")


# Normalise every step with a stale l -----------------------------------------------------


def _stale_l_reason(c: ChunkState) -> str | None:
    if c.l == 0:
        return "every key so far is masked: l = 0 and O / l = 0 / 0 = NaN"
    lost = c.alpha * (c.l_prev - 1) / c.l if np.isfinite(c.m_prev) else 0.0
    if lost > TOL:
        return (
            f"O was already divided by l = {c.l_prev:.4g}; without multiplying it back the "
            f"keys seen before lose {lost:.3g} of the total weight"
        )
    return None


def _o_divided_by_l(o_new: Array, l_new: Array) -> Array:
    return o_new / l_new[..., None]  # o_i = (alpha o_i + p_ij v_j) / l_new: kept normalised


def _o_already_normalised(o: Array, o_i: Array) -> Array:
    return o_i  # written as it is


# o is kept normalised, so what the tile added is not P~ V: P~ V is formed from P~ and V
_STALE_L_TEX = UpdateTex(
    accumulate=r"o_{{{row},0}} &= ({alpha} \times {o_prev} + {pv_from_p}) / {l} = {o}"
)


# -1e4 / -5e4 stand in for -inf ------------------------------------------------------------


def _stand_in_reason(stand_in: float) -> Reason:
    def reason(c: ChunkState) -> str | None:
        if not c.masked_seen:
            return None
        if np.isneginf(c.m):
            return (
                f"every key so far is masked: the exact answer is 0, but at {stand_in:g} "
                "the masked keys share the weight equally"
            )
        if c.m < stand_in:
            return (
                f"the real scores so far (max {c.m:.4g}) are below the stand-in {stand_in:g}: "
                f"the masked keys outweigh them by a factor exp({stand_in - c.m:.4g})"
            )
        if c.m < stand_in + LOG_TOL:
            weight = float(np.exp(stand_in - c.m))
            return (
                f"a key is masked and the max so far, {c.m:.4g}, is less than {LOG_TOL:.1f} "
                f"above {stand_in:g}: a masked key keeps weight exp({stand_in:g} - m) = "
                f"{weight:.3g} instead of 0"
            )
        return None

    return reason


def _stand_in_scores(stand_in: float) -> Callable[[Array], Array]:
    def scores(s_ij: Array) -> Array:
        return np.where(np.isneginf(s_ij), stand_in, s_ij)  # masked entries = stand_in

    return scores


# No guard for a row with no key ----------------------------------------------------------


def _no_inf_guard_reason(c: ChunkState) -> str | None:
    if np.isneginf(c.m):
        return "every key so far is masked: m = -inf and s - m = (-inf) - (-inf) = NaN"
    return None


def _max_unguarded(m_new: Array, m_safe: Array) -> tuple[Array, Array]:
    return m_new, m_new  # subtract m_new even where it is -inf


# A rescale threshold too high for float16 (FA4's lazy rescaling) ---------------------------

HIGH_THRESHOLD = 20.0  # log2 units: a stale max is kept while the max rises by <= 20 ln 2
LOG_F16_MAX = float(np.log(65504.0))  # 11.09: float16's largest finite value is e^11.09
LOG_F16_OVERFLOW = float(np.log(65520.0))  # P~ = e^x from here up rounds to inf in float16
_KEPT = HIGH_THRESHOLD * float(np.log(2.0))  # 13.86


def _p_overflows_float16(p_ij: Array) -> Array:
    return np.where(p_ij >= 65520.0, np.inf, p_ij)  # float16 rounds 65520 and up to inf


def _threshold_reason(c: ChunkState) -> str | None:
    gap = c.m - c.m_lazy  # the new max above the stale one kept: P~ reaches e^gap
    if np.isfinite(c.m_lazy) and gap >= LOG_F16_OVERFLOW:
        return (
            f"the max reached {c.m:.4g} while the stale max {c.m_lazy:.4g} is kept (it rose "
            f"by at most 20 ln 2 = {_KEPT:.4g} at a time): P~ reaches e^{gap:.4g} = "
            f"{np.exp(gap):.3g}, over float16's largest 65504"
        )
    return None


def lazy_max(m_lazy: float, m: float) -> float:
    """The running max a lazy run with ``HIGH_THRESHOLD`` keeps, given its previous one and
    the correct max after the chunk."""
    return m if m > m_lazy + _KEPT else m_lazy


_THRESHOLD_TEX = UpdateTex(
    max=r"m_{{{row}}} &= {m} \quad \text{{(}}\max({m_prev},\ {rowmax})\text{{ only if it is "
    r"more than }} 20\,\ln 2 \text{{ above)}}",
)


# The zoo ---------------------------------------------------------------------------------

_RISE = "when the running max rises after a chunk that had a key"


def _bug(
    key: str,
    title: str,
    explanation: str,
    bites_when: str,
    reason: Reason,
    *,
    tex: UpdateTex = FA2_TEX,
    **hooks: Any,
) -> Bug:
    """A bug whose update has ``hooks`` (``UpdateHooks`` fields) and is written ``tex``; its
    NaN and inf are meant."""
    update = UpdateHooks(key, quiet=True, **hooks)
    return Bug(key, title, explanation, bites_when, reason, update, tex)


BUGS: dict[str, Bug] = {
    b.key: b
    for b in (
        _bug(
            "no_rescale_o",
            "Forget to rescale O",
            "o_i = o_i + p_ij v_j without alpha: when the max rises, the old terms keep "
            "weights taken against the old, smaller max and are over-weighted.",
            _RISE,
            _rescale_reason,
            rescale_o=_o_not_rescaled,
            tex=_O_NOT_RESCALED_TEX,
        ),
        _bug(
            "no_rescale_l",
            "Forget to rescale l",
            "l_i = l_i + rowsum(p_ij) without alpha: the denominator mixes sums taken "
            "against different maxima, so the output is too small once the max rises.",
            _RISE,
            _rescale_reason,
            sum=_l_not_rescaled,
            tex=_L_NOT_RESCALED_TEX,
        ),
        _bug(
            "wrong_sign",
            "Rescale with the wrong sign",
            "alpha = exp(m_new - m_i) >= 1 inflates the old state instead of shrinking it.",
            _RISE,
            _wrong_sign_reason,
            alpha=_alpha_wrong_sign,
            tex=_WRONG_SIGN_TEX,
        ),
        _bug(
            "no_max",
            "Do not subtract the max",
            "p_ij = exp(s_ij) overflows to inf for logits above ~709 (float64; ~88 in "
            "float32) and inf / inf = NaN; below ~-745 every exp underflows to 0.",
            f"when a score so far is above ~{LOG_OVERFLOW:.1f} (exp overflows) or every score "
            f"so far is below ~{LOG_UNDERFLOW:.1f} (exp underflows: to subnormals that lose "
            "the digits, to 0 below ~-745.1)",
            _no_max_reason,
            max=_max_zero,
            tex=_MAX_ZERO_TEX,
        ),
        _bug(
            "stale_l",
            "Normalise every step with a stale l",
            "FA1 keeps O normalised at every step: O_new = (alpha l_old O + P~ V) / l_new. "
            "Dropping l_old rescales an already normalised O as if it were a raw sum.",
            "at the first chunk after one that left l != 1 (usually the second chunk), or "
            "while every key so far is masked (l = 0, and O / l = 0 / 0)",
            _stale_l_reason,
            accumulate=_o_divided_by_l,
            normalize=_o_already_normalised,
            tex=_STALE_L_TEX,
        ),
        _bug(
            "mask_1e4",
            "-1e4 stands in for -inf",
            "Masked scores become -1e4 instead of -inf: harmless while the real scores are "
            "far above -1e4, wrong when they are not, and a row with every key masked "
            "averages the masked keys instead of giving 0.",
            f"once a key was masked while the max so far is not ~{LOG_TOL:.1f} above -1e4 "
            "(or there is no real score yet)",
            _stand_in_reason(-1e4),
            scores=_stand_in_scores(-1e4),
        ),
        _bug(
            "mask_5e4",
            "-5e4 stands in for -inf",
            "The same with -5e4 (a value that still fits in float16): it fails later, for "
            "scores below about -5e4.",
            f"once a key was masked while the max so far is not ~{LOG_TOL:.1f} above -5e4 "
            "(or there is no real score yet)",
            _stand_in_reason(-5e4),
            scores=_stand_in_scores(-5e4),
        ),
        _bug(
            "threshold_too_high_f16",
            "Rescale threshold too high for float16",
            "FA4's lazy rescaling with a threshold of 20 (log2 units) on float16 P~: a stale "
            "max is kept while the max rises by up to 20 ln 2 = 13.9, so P~ = exp(s - m) "
            "reaches e^13.9 = 2^20, and P~ stored in float16 for P~ V overflows to inf above "
            "65504 (FA4 uses 8: P~ <= 256).",
            f"when the max gets more than ln 65504 = {LOG_F16_MAX:.2f} above the stale max "
            f"kept (a max kept while it rises by at most 20 ln 2 = {_KEPT:.2f} at a time)",
            _threshold_reason,
            tex=_THRESHOLD_TEX,
            rescale_threshold=HIGH_THRESHOLD,
            p_stored=_p_overflows_float16,
        ),
        _bug(
            "no_inf_guard",
            "No guard for a row with no key",
            "A row whose keys so far are all masked has m = -inf, and s - m = "
            "(-inf) - (-inf) = NaN poisons the row from then on.",
            "at a chunk where every key so far is masked",
            _no_inf_guard_reason,
            max=_max_unguarded,
        ),
    )
}


def find_bug(bug: str | None) -> Bug | None:
    """The mistake named ``bug`` (a key of ``BUGS``), or None for None (the correct update)."""
    if bug is not None and (not isinstance(bug, str) or bug not in BUGS):
        raise ValueError(f"bug must be None or one of {sorted(BUGS)}, got {bug!r}")
    return None if bug is None else BUGS[bug]


def bug_hooks(bug: str | None) -> UpdateHooks:
    """The update of mistake ``bug`` (a key of ``BUGS``), or FA2's own for None."""
    found = find_bug(bug)
    return FA2 if found is None else found.hooks


def bug_tex(bug: str | None) -> UpdateTex:
    """The update of mistake ``bug`` written as TeX, or FA2's own for None."""
    found = find_bug(bug)
    return FA2_TEX if found is None else found.tex
