"""flashviz.perf.backward_bench: the backward's CPU bench measures both methods in one run
and reports their errors against the float64 gradient (no timing asserts)."""

from __future__ import annotations

import numpy as np
import pytest

from flashviz.core.accuracy import max_error
from flashviz.core.backward import (
    attention_backward_reference,
    flash_attention_backward,
    naive_attention_backward,
)
from flashviz.core.flash import flash_attention
from flashviz.perf import backward_bench, cpu_bench


def draw(rng, n_q, n_k, d, dtype):
    q, do = (rng.standard_normal((n_q, d)).astype(dtype) for _ in range(2))
    k, v = (rng.standard_normal((n_k, d)).astype(dtype) for _ in range(2))
    return q, k, v, do


@pytest.mark.parametrize(
    ("n_q", "n_k", "causal", "align"),
    [(33, 47, False, "bottom_right"), (47, 33, True, "bottom_right"), (47, 33, True, "top_left")],
)
def test_the_naive_backward_matches_the_reference(rng, n_q, n_k, causal, align):
    """The bench's baseline: in float64 it is the reference's formula to rounding; in float32
    close to it. 47 x 33 bottom-right: the first 14 rows see no key and get dq = 0."""
    kwargs = {"causal": causal, "causal_align": align}
    q, k, v, do = draw(rng, n_q, n_k, 8, np.float64)
    ref = attention_backward_reference(q, k, v, do, **kwargs)
    for g, r in zip(naive_attention_backward(q, k, v, do, **kwargs), ref, strict=True):
        assert g.dtype == np.float64 and g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-12)
    grads32 = naive_attention_backward(*(x.astype(np.float32) for x in (q, k, v, do)), **kwargs)
    for g, r in zip(grads32, ref, strict=True):
        assert g.dtype == np.float32
        assert max_error(g, r) <= 1e-5 * max(1.0, float(np.abs(r).max()))
    if causal and align == "bottom_right":
        assert (grads32[0][: n_q - n_k] == 0).all()


def test_grads_error_is_the_largest_of_the_three():
    ref = (np.zeros((2, 2)), np.zeros((3, 2)), np.zeros((3, 2)))
    off = (np.full((2, 2), 0.1), np.full((3, 2), -0.5), np.full((3, 2), 0.2))
    assert backward_bench.grads_error(off, ref) == 0.5
    assert backward_bench.grads_error((off[0], ref[1], ref[2]), ref) == pytest.approx(0.1)
    with pytest.raises(ValueError):  # zip(strict=True): a missing gradient is an error
        backward_bench.grads_error(off[:2], ref)


@pytest.mark.parametrize("causal", [False, True])
def test_measure_backward_reports_both_methods_and_their_errors(causal):
    n, d = 400, 16
    r = backward_bench.measure_backward(n, d, repeat=1, block_q=64, block_kv=128, causal=causal)
    assert (r.n, r.d) == (n, d) and r.naive_s > 0 and r.flash_s > 0
    rng = np.random.default_rng(0)  # measure_backward's inputs: seed 0, float32, q k v dO
    q, k, v, do = (rng.standard_normal((n, d)).astype(np.float32) for _ in range(4))
    ref = attention_backward_reference(q, k, v, do, causal=causal)
    o, lse = flash_attention(q, k, v, block_q=64, block_kv=128, causal=causal)
    flash = flash_attention_backward(q, k, v, o, lse, do, block_q=64, block_kv=128, causal=causal)
    naive = naive_attention_backward(q, k, v, do, causal=causal)
    assert r.flash_err == backward_bench.grads_error(flash, ref)
    assert r.naive_err == backward_bench.grads_error(naive, ref)
    assert 0 < r.naive_err < 1e-4 and 0 < r.flash_err < 1e-4
    assert r.naive_peak >= 3 * n * n * 4  # the standard backward holds P, dP, dS (float32) ...
    assert r.flash_peak < n * n * 4  # ... the tiled one not even one n x n matrix
    assert r.memory_ratio == r.flash_peak / r.naive_peak < 1


def test_sweep_runs_the_backward_and_the_table_has_the_forwards_columns(capsys):
    results = cpu_bench.sweep(
        [40, 72], 8, progress=True, measure_one=backward_bench.measure_backward,
        desc="CPU backward sweep", repeat=1, block_q=16, block_kv=32,
    )  # fmt: skip
    assert [(r.n, r.d) for r in results] == [(40, 8), (72, 8)]
    assert "CPU backward sweep: 100%" in capsys.readouterr().err
    header, rule, *rows = cpu_bench.format_table(results).splitlines()
    assert header.split()[:6] == ["n", "d", "naive", "ms", "flash", "ms"]
    assert rule == "-" * len(header)
    assert [row.split()[0] for row in rows] == ["40", "72"]
    assert rows[1].split()[-1] == f"{results[1].flash_err:.1e}"
