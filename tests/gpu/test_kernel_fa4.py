"""FA4's lazy rescaling compiled into both CUDA kernels (``RESCALE_MARGIN``), on the CPU.

1. With a threshold the kernels still match the float64 reference within twice the error of
   the trace recorded with the same threshold (the rule of tests/gpu/test_tc_kernel.py).
2. The output alone cannot tell a lazy kernel from FA2's (both are exact), so a copy of each
   kernel writes its final running max m_i where lse goes: it must be the trace's stale max,
   which sits well below the rows' true max on inputs built for it; a kernel that ignores
   the threshold fails that check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flashviz.core.precision import get_precision
from flashviz.core.trace import WriteStep, record_steps
from tests.gpu.cuda_emulation import emu
from tests.gpu.on_demand import OnDemand
from tests.gpu.test_kernel_masks import KERNELS, check, edited_build
from tests.gpu.test_tc_kernel import needs_cxx

pytestmark = needs_cxx

THRESHOLD = 8.0  # FA4's, log2 units: the max may rise by 8 ln 2 = 5.5 before a rescale
BLOCKS = (32, 32)
# the line that writes lse, and the same line writing the final running max instead
LSE_LINES = {
    "float32": ("lse[row] = m_i[a] + logf(l_i[a]);", "lse[row] = m_i[a];"),
    "tensor cores": ("lse[row] = m_i[h] + logf(l_i[h]);", "lse[row] = m_i[h];"),
}


@pytest.fixture(scope="module")
def libs() -> OnDemand[object, Path]:
    return OnDemand(lambda config: emu.build(emu.Build(config)))


def rising_scores(rng) -> tuple[np.ndarray, ...]:
    """70 queries, 128 keys (4 tiles): a shared direction adds 1.2, 2.4, 3.6 to the scores of
    tiles 1, 2, 3, so the rows' max rises tile after tile, mostly by less than the margin
    in all (5.5): a lazy kernel keeps the first tile's max to the end, FA2 takes each new
    one. Over 150 seeds at least 94% of the rows end on a stale max more than 2 below."""
    q, k, v = (rng.standard_normal((1, n, 40)) for n in (70, 128, 128))
    q[..., -1] = 8.0
    k[..., -1] = np.repeat([0.0, 1.2, 2.4, 3.6], 32) * np.sqrt(40) / 8.0
    return q, k, v


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KERNELS)
def test_with_a_threshold_the_kernels_match_the_trace(libs, rng, kind):
    kernel, precision = KERNELS[kind]
    q, k, v = rising_scores(rng)
    check(libs, kernel, precision, q, k, v, block_q=BLOCKS[0], block_kv=BLOCKS[1],
          mask_mod=None, rescale_threshold=THRESHOLD)  # fmt: skip


@pytest.fixture(scope="module")
def max_writers() -> OnDemand[tuple[str, float], Path]:
    """(kernel, threshold) -> a build whose lse is the final running max m_i."""

    def build(key: tuple[str, float]) -> Path:
        kind, threshold = key
        kernel, precision = KERNELS[kind]
        return edited_build(kernel.config(40, *BLOCKS, precision, threshold), *LSE_LINES[kind])

    return OnDemand(build)


def _final_max(q, k, v, precision, threshold) -> np.ndarray:
    storage = np.float32 if precision is None else get_precision(precision).storage
    q, k, v = (x[0].astype(storage).astype(np.float64) for x in (q, k, v))
    trace = record_steps(q, k, v, block_q=BLOCKS[0], block_kv=BLOCKS[1], precision=precision,
                         rescale_threshold=threshold)  # fmt: skip
    return np.concatenate([s.m for s in trace.steps if isinstance(s, WriteStep)])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KERNELS)
def test_the_kernels_keep_the_stale_max(max_writers, rng, kind):
    kernel, precision = KERNELS[kind]
    q, k, v = rising_scores(rng)
    stale = _final_max(q, k, v, precision, THRESHOLD)
    true = _final_max(q, k, v, precision, None)
    assert ((true - stale) > 2).mean() > 0.8  # most rows end on a stale max, far below
    call, arrays = kernel.prepare(q, k, v, precision=precision, block_q=BLOCKS[0],
                                  block_kv=BLOCKS[1], rescale_threshold=THRESHOLD)  # fmt: skip
    _, m_lazy = emu.run(max_writers[kind, THRESHOLD], call, arrays)
    np.testing.assert_allclose(m_lazy[0], stale, atol=1e-4)


def test_a_kernel_without_the_threshold_fails_that_check(max_writers, rng):
    """The check bites: an FA2 build (threshold 0) ends on the true max, not the stale one.
    lazy_max is the kernels' shared header: one kernel shows it."""
    kernel, precision = KERNELS["float32"]
    q, k, v = rising_scores(rng)
    stale = _final_max(q, k, v, precision, THRESHOLD)
    true = _final_max(q, k, v, precision, None)
    call, arrays = kernel.prepare(q, k, v, precision=precision, block_q=BLOCKS[0],
                                  block_kv=BLOCKS[1], rescale_threshold=THRESHOLD)  # fmt: skip
    _, m_fa2 = emu.run(max_writers["float32", 0.0], call, arrays)
    np.testing.assert_allclose(m_fa2[0], true, atol=1e-4)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(m_fa2[0], stale, atol=1e-4)


def test_a_threshold_too_high_for_float16_is_refused_before_a_build():
    from flashviz.gpu.launch_params import TENSOR_CORES

    with pytest.raises(ValueError, match="too high for float16"):
        TENSOR_CORES.config(64, 64, 32, "float16", rescale_threshold=16)
    TENSOR_CORES.config(64, 64, 32, "bfloat16", rescale_threshold=16)  # bfloat16 holds 2^16
