"""The core's one problem type: Problem (inputs, scale, mask) and TiledProblem (+ blocks),
built by the checks and shared by the tiled forward, FA2's trace and FA1's."""

from __future__ import annotations

import numpy as np
import pytest

from flashviz import record_trace
from flashviz.core.checks import check_problem, check_tiled_problem
from flashviz.core.masking import mask_offset, tile_schedule
from flashviz.core.problem import Problem, TiledProblem
from flashviz.core.trace import record_problem


@pytest.mark.parametrize("align", ["bottom_right", "top_left"])
def test_check_problem_keeps_the_mask_and_resolves_the_scale(rng, align):
    q, k, v = (
        rng.standard_normal((2, 7, 4)),
        rng.standard_normal((2, 5, 4)),
        rng.standard_normal((2, 5, 4)),
    )
    p = check_problem(q, k, v, None, align, causal=np.bool_(True))
    assert isinstance(p, Problem) and not isinstance(p, TiledProblem)
    assert (p.n_q, p.n_k, p.d, p.scale) == (7, 5, 4, 0.5)
    assert p.causal is True and p.causal_align == align
    assert p.offset == mask_offset(7, 5, True, align)
    assert check_problem(q, k, v, 2.0, align, causal=False).offset is None
    with pytest.raises(TypeError):
        check_problem(q, k, v, None, align)  # the mask is never left to a default


def test_a_tiled_problem_is_a_problem_with_blocks_and_their_schedule(rng):
    q, k, v = rng.standard_normal((9, 3)), rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    t = check_tiled_problem(q, k, v, block_q=4, block_kv=np.int64(4), causal=True,
                            causal_align="bottom_right", scale=1.5, two_d=True)  # fmt: skip
    assert isinstance(t, Problem) and (t.block_q, t.block_kv, t.scale) == (4, 4, 1.5)
    assert t.grid == (3, 2) and type(t.block_kv) is int
    assert list(t.schedule()) == list(tile_schedule(9, 6, 4, 4, t.offset))
    with pytest.raises(ValueError, match="block_q must be a positive integer"):
        check_tiled_problem(q, k, v, block_q=0, block_kv=4, causal=False,
                            causal_align="top_left", scale=None)  # fmt: skip


def test_a_trace_is_the_problem_it_ran(rng):
    q, k, v = rng.standard_normal((9, 3)), rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    kw = {"block_q": 4, "block_kv": 2, "causal": True, "causal_align": "top_left", "scale": 0.7}
    problem = check_tiled_problem(q, k, v, **kw, two_d=True)
    fa2 = record_trace(q, k, v, **kw)
    assert isinstance(fa2, TiledProblem)
    for name in ("scale", "causal", "causal_align", "block_q", "block_kv", "offset", "grid"):
        assert getattr(fa2, name) == getattr(problem, name), name
    again = record_problem(problem)
    np.testing.assert_array_equal(again.o, fa2.o)
    np.testing.assert_array_equal(again.lse, fa2.lse)
    assert len(again.steps) == len(fa2.steps)


def test_record_problem_takes_one_head(rng):
    x = rng.standard_normal((2, 4, 3))
    batched = check_tiled_problem(x, x, x, block_q=2, block_kv=2, causal=False,
                                  causal_align="bottom_right", scale=None)  # fmt: skip
    with pytest.raises(ValueError, match="a trace records one head"):
        record_problem(batched)
