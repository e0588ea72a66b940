"""ThreadSanitizer on the CPU emulation: the kernel's shared-memory traffic is race-free.

The same harness, built with -fsanitize=thread into a small program (no Python in the
process), runs a few cases; every __syncthreads() is a std::barrier, which TSan
understands, so a missing one shows up as a data race on a __shared__ array. To show the
check is not blind, copies of the kernel with one __syncthreads() removed must give a
race report naming the kernel's line.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from flashviz.core.kernel_files import KERNEL_PATH
from flashviz.gpu.launch_params import SCALAR, kernel_text
from tests.gpu.cuda_emulation import emu
from tests.gpu.on_demand import OnDemand
from tests.support import assert_matches_reference

RACE = "WARNING: ThreadSanitizer"
CONFIG = SCALAR.config(32, 32, 32)  # 128 threads a block: quick under TSan
SYNCS = [
    "__syncthreads();  // q_i and k_j",
    "__syncthreads();  // all partial maxima",
    "__syncthreads();  // p_ij and v_j",
    "__syncthreads();  // everyone is done",
    "__syncthreads();  // every thread's share",
]
CASES = [  # (n_q, n_k, causal, causal_align)
    (70, 50, True, "bottom_right"),
    (33, 90, False, "bottom_right"),
    (40, 40, True, "top_left"),
]


def _tsan_works() -> bool:
    probe = subprocess.run(
        [emu.CXX, "-fsanitize=thread", "-x", "c++", "-", "-o", "/dev/null"],
        input="int main() { return 0; }",
        capture_output=True,
        text=True,
    )
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    shutil.which(emu.CXX) is None or not _tsan_works(), reason="g++ with libtsan is needed"
)


@pytest.fixture(scope="module")
def programs() -> OnDemand[str | None, Path]:
    """None: the kernel's TSan program; a sync: the kernel without that __syncthreads().
    Each built when a test first needs it."""
    source = kernel_text(KERNEL_PATH)

    def build(sync: str | None) -> Path:
        if sync is None:
            return emu.build(emu.Build(CONFIG, tsan=True))
        assert source.count(sync) == 1, f"{sync!r} is not in the kernel exactly once"
        text = source.replace(sync, "// removed:", 1)
        return emu.build(emu.Build(CONFIG, source=text, tsan=True))

    return OnDemand(build)


def _run(exe, make_qkv, n_q, n_k, causal, align):
    q, k, v = make_qkv(n_q, n_k, 32, dtype=np.float32)
    options = {"causal": causal, "causal_align": align}
    call, arrays = SCALAR.prepare(q, k, v, block_q=32, block_kv=32, **options)
    assert call.config == CONFIG
    o, lse, report = emu.run_tsan(exe, call, arrays, timeout=100)
    return (q, k, v), options, o, lse, report


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("n_q", "n_k", "causal", "align"), CASES)
def test_kernel_has_no_data_race(programs, make_qkv, n_q, n_k, causal, align):
    qkv, options, o, lse, report = _run(programs[None], make_qkv, n_q, n_k, causal, align)
    assert RACE not in report, report
    assert not np.isnan(o).any() and not np.isnan(lse).any(), "an output was never written"
    assert_matches_reference(o, lse, *qkv, **options)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sync", SYNCS)
def test_a_missing_syncthreads_is_caught(programs, make_qkv, sync):
    *_, report = _run(programs[sync], make_qkv, 70, 50, True, "bottom_right")
    assert RACE in report, "no race reported without " + sync
    assert "kernels/flash_attention.cu:" in report  # the report names the kernel's line
