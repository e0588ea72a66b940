"""The inner step: attn_fwd_inner is its scores plus online_update, and UpdateHooks reach
each intermediate value of the update exactly where their fields say."""

from __future__ import annotations

import warnings
from dataclasses import fields

import numpy as np
import pytest

from flashviz.core.inner_step import (
    FA2,
    UpdateHooks,
    attn_fwd_inner,
    finalize,
    initial_state,
    online_update,
)
from flashviz.core.masking import visible


def _state(rng: np.random.Generator, rows: int = 5, d: int = 4):
    m = rng.standard_normal(rows)
    m[0] = -np.inf  # a row with no key yet
    l = np.where(np.isneginf(m), 0.0, rng.random(rows) + 1)
    o = np.where(np.isneginf(m)[:, None], 0.0, rng.standard_normal((rows, d)))
    return m, l, o


def test_attn_fwd_inner_is_its_scores_folded_in_by_online_update(rng):
    q, k, v = (rng.standard_normal(s) for s in ((5, 4), (7, 4), (7, 3)))
    mask = visible(range(3, 8), range(0, 7), 0)
    m, l, o = _state(rng, d=3)
    tile = attn_fwd_inner(m, l, o, q, k, v, scale=0.5, visible=mask)
    s = np.where(mask, (q @ k.T) * 0.5, -np.inf)
    np.testing.assert_array_equal(tile.s_ij, s)
    for got, want in zip(online_update(m, l, o, s, v), tile, strict=True):
        np.testing.assert_array_equal(got, want)  # bit for bit: one update
    np.testing.assert_array_equal(tile.o_rescaled, tile.alpha[:, None] * o)
    np.testing.assert_array_equal(tile.o_i, tile.o_rescaled + tile.p_ij @ v)


def test_the_default_hooks_are_the_identity_and_fa2_is_the_default():
    assert UpdateHooks() == FA2 and FA2.name is None and not FA2.quiet
    x, y = np.arange(3.0), np.ones(3)
    hooks = [f.name for f in fields(UpdateHooks) if callable(getattr(FA2, f.name))]
    assert sorted(hooks) == sorted(
        ["scores", "max", "alpha", "sum", "rescale_o", "p_stored", "accumulate", "normalize",
         "exp"]
    )  # fmt: skip
    m_new, m_safe = FA2.max(x, y)
    assert m_new is x and m_safe is y
    for name in set(hooks) - {"max", "exp"}:
        assert getattr(FA2, name)(x, y, y) is x
    # FA4's softmax, off: FA2 rescales whenever the max rises, with NumPy's exp
    assert FA2.rescale_threshold == 0 and FA2.exp is np.exp


def _marked(factor: float):
    return lambda value, *_: value * factor


@pytest.mark.parametrize(
    ("field", "changed"),
    [
        ("scores", {"m_i", "l_i", "o_i", "p_ij", "alpha", "o_rescaled"}),
        ("alpha", {"alpha", "l_i", "o_i", "o_rescaled"}),
        ("sum", {"l_i"}),
        ("rescale_o", {"o_rescaled", "o_i"}),
        ("accumulate", {"o_i"}),
    ],
)
def test_each_hook_changes_only_what_follows_from_its_value(rng, field, changed):
    m, l, o = _state(rng, d=3)
    m[1:] = 0.5  # the max rises in every row that had a key: alpha < 1 there
    s = rng.standard_normal((5, 6)) + 2.0
    v = rng.standard_normal((6, 3))
    base = online_update(m, l, o, s, v)
    got = online_update(m, l, o, s, v, hooks=UpdateHooks(**{field: _marked(3.0)}))
    differ = {
        name for name, a, b in zip(base._fields, got, base, strict=True) if not np.array_equal(a, b)
    }
    assert differ == changed
    np.testing.assert_array_equal(got.s_ij, s)  # the scores as given are kept
    if field == "sum":
        np.testing.assert_array_equal(got.l_i, 3.0 * base.l_i)
    if field == "accumulate":
        np.testing.assert_array_equal(got.o_i, 3.0 * base.o_i)


def test_the_max_hook_sets_the_kept_and_the_subtracted_max(rng):
    m, l, o = _state(rng)
    s = rng.standard_normal((5, 6))
    v = rng.standard_normal((6, 4))
    zero = UpdateHooks(max=lambda m_new, m_safe: (m_new * 0, m_new * 0))
    got = online_update(m, l, o, s, v, hooks=zero)
    np.testing.assert_array_equal(got.m_i, 0.0)
    np.testing.assert_array_equal(got.p_ij, np.exp(s))  # nothing subtracted
    np.testing.assert_array_equal(got.alpha, np.exp(m))


def test_the_normalize_hook_sets_what_finalize_writes(rng):
    m, l, o = _state(rng)
    plain, lse = finalize(m, l, o)
    np.testing.assert_array_equal(plain, o / np.where(l == 0, 1, l)[:, None])
    kept, lse2 = finalize(m, l, o, hooks=UpdateHooks(normalize=lambda out, o_i: o_i))
    assert kept is o
    np.testing.assert_array_equal(lse, lse2)


def test_a_quiet_variant_silences_numpy_warnings_and_fa2_leaves_them_on():
    m, l, o = initial_state((), 1, 1, np.float64)
    s = np.full((1, 2), -np.inf)
    v = np.ones((2, 1))
    unguarded = dict(max=lambda m_new, m_safe: (m_new, m_new))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with UpdateHooks(quiet=True, **unguarded).errstate():
            got = online_update(m, l, o, s, v, hooks=UpdateHooks(**unguarded))
        assert np.isnan(got.p_ij).all()  # (-inf) - (-inf)
        with pytest.raises(RuntimeWarning), FA2.errstate():
            online_update(m, l, o, s, v, hooks=UpdateHooks(**unguarded))
