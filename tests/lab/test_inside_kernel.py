"""flashviz.lab.inside_kernel and tile_explorer: shared arrays from the kernels'
declarations (equal to launch_params' formulas and to ptxas), ownership maps' structure,
the phase / barrier / shuffle timeline. That the ownership maps are the kernels' own index
arithmetic: tests/gpu/test_inside_kernel_emulation.py."""

from __future__ import annotations

import numpy as np
import pytest

from flashviz.core.kernel_files import KERNEL_PATH, TC_KERNEL_PATH
from flashviz.gpu.kernel_resources import build_config, recorded, recorded_registers
from flashviz.gpu.launch_params import SCALAR, TENSOR_CORES
from flashviz.lab.code_view import PHASES
from flashviz.lab.inside_kernel import (
    HOLDS,
    LOOP_LOAD,
    ownership,
    shared_buffers,
    shared_total,
    source_defines,
    timeline,
)
from flashviz.lab.occupancy import SM_LIMITS, occupancy
from flashviz.lab.tile_explorer import BLOCK_SIZES, explore


def _kind(config) -> str:
    return config.kernel.name


@pytest.mark.parametrize(
    "config", SCALAR.offered_configs() + TENSOR_CORES.offered_configs(), ids=lambda c: repr(c)[:60]
)
def test_shared_arrays_add_up_to_the_launch_parameters(config) -> None:
    buffers = shared_buffers(_kind(config), config.defines)
    assert sum(b.bytes for b in buffers) == config.shared_bytes
    assert {b.name for b in buffers} == set(HOLDS[_kind(config)])


def test_shared_arrays_add_up_to_what_ptxas_reported() -> None:
    provenance, table = recorded()
    assert provenance["nvrtc"] and len(table) > 100
    for config in SCALAR.offered_configs() + TENSOR_CORES.offered_configs():
        for key, info in table.items():
            kind = _kind(config)
            if key.startswith(f"{kind} {config.head_dim} {config.block_q} {config.block_kv} "):
                assert info.shared_bytes == shared_total(kind, config.defines), key


@pytest.mark.parametrize("q", BLOCK_SIZES)
@pytest.mark.parametrize("kv", BLOCK_SIZES)
def test_explorer_builds_match_the_formulas_too(q: int, kv: int) -> None:
    for kind in ("float32", "tensor cores"):
        config = build_config(kind, 128, q, kv)
        assert shared_total(kind, config.defines) == config.shared_bytes


def test_the_declarations_are_read_not_assumed() -> None:
    last = "    __shared__ unsigned vt_s[HEAD_DIM][ROW_WORDS_KV];\n"
    text = TC_KERNEL_PATH.read_text().replace(last, last + "    __shared__ float spare[8][2];\n")
    config = TENSOR_CORES.config(64, 64, 64, "float16")
    buffers = shared_buffers("tensor cores", config.defines, text)
    assert buffers[-1].name == "spare" and buffers[-1].bytes == 64
    assert buffers[-1].holds == "(not described)"
    assert shared_total("tensor cores", config.defines, text) == config.shared_bytes + 64
    with pytest.raises(ValueError, match="double"):
        shared_buffers("tensor cores", config.defines, text.replace("float spare", "double spare"))


def test_source_defines_evaluates_sizes_and_skips_the_rest() -> None:
    names = source_defines(KERNEL_PATH.read_text(), build_config("float32", 64, 64, 32).defines)
    assert (names["ROWS_PER_THREAD"], names["COLS_PER_THREAD"], names["PAD"]) == (4, 2, 1)
    assert "NEG_INF" not in names


@pytest.mark.parametrize("kind", ["float32", "tensor cores"])
@pytest.mark.parametrize("matrix", ["S_ij", "O_i"])
def test_every_thread_owns_the_same_share(kind: str, matrix: str) -> None:
    config = build_config(kind, 64, 64, 64 if kind == "tensor cores" else 32)
    own = ownership(kind, config.defines, matrix)
    counts = np.bincount(own.thread.ravel(), minlength=config.num_threads)
    assert len(counts) == config.num_threads and np.all(counts == counts[0])
    # each (thread, register) names one entry
    pairs = {(t, r) for t, r in zip(own.thread.ravel(), own.register.ravel(), strict=True)}
    assert len(pairs) == own.thread.size


def test_tensor_core_rows_live_in_one_quad_of_one_warp() -> None:
    own = ownership("tensor cores", TENSOR_CORES.config(64, 64, 64, "float16").defines, "S_ij")
    for row in range(64):
        assert set(own.warp[row]) == {row // 16}
        g = row % 8
        assert set(own.lane[row]) == {4 * g, 4 * g + 1, 4 * g + 2, 4 * g + 3}
    assert own.register[9, 10] == "s[1][2]"  # row g + 8 (h = 1), n-tile 1, column 2t (e = 0)


@pytest.mark.parametrize("kind", ["float32", "tensor cores"])
def test_timeline_is_the_kernel_in_phase_order(kind: str) -> None:
    tl = timeline(kind)
    phases = [e.phase for e in tl.events if e.kind == "phase"]
    assert phases == list(PHASES)
    lines = [e.line for e in tl.events]
    assert lines == sorted(lines) and tl.kernel[0] < tl.loop[0] < tl.loop[1] < tl.kernel[1]
    barriers = [e for e in tl.events if e.kind == "barrier"]
    assert all(e.note for e in barriers), "every __syncthreads() says why"
    loop_phases = {e.phase for e in tl.events if e.kind == "phase" and e.in_loop}
    assert loop_phases == {"scores", "max", "exp", "alpha", "sum", "accumulate"}


def test_float32_barriers_and_tc_shuffles() -> None:
    scalar = [(e.kind, e.phase, e.in_loop) for e in timeline("float32").events]
    assert scalar.count(("barrier", "reduce", False)) == 1
    assert sum(1 for k, _, loop in scalar if k == "barrier" and loop) == 4
    assert not any(k in ("shuffle", "mma") for k, _, _ in scalar)
    tc = [(e.kind, e.phase) for e in timeline("tensor cores").events]
    assert tc.count(("shuffle", "max")) == 2 and tc.count(("shuffle", "reduce")) == 2
    assert tc.count(("mma", "scores")) == 1 and tc.count(("mma", "accumulate")) == 1
    assert [p for k, p in tc if k == "barrier"] == [LOOP_LOAD, "accumulate"]


@pytest.mark.parametrize("kind", ["float32", "tensor cores"])
def test_what_the_loop_does_every_tile_is_never_labelled_init(kind: str) -> None:
    """The K/V tile loads and their barrier sit above the loop's first marker (scores): they
    belong to each tile, so they are labelled as the tile's load, not as the last phase
    above them in the source (init)."""
    events = timeline(kind).events
    assert all(e.phase != "init" for e in events if e.in_loop)
    first = next(i for i, e in enumerate(events) if e.in_loop)
    scores = next(i for i, e in enumerate(events) if e.kind == "phase" and e.in_loop)
    assert first < scores and {e.phase for e in events[first:scores]} == {LOOP_LOAD}
    assert any(e.kind == "load" for e in events[first:scores])


def test_explorer() -> None:
    builds = [
        (q, kv, build_config("float32", 128, q, kv).defines) for q in (32, 64) for kv in (32, 64)
    ]
    cells = explore("float32", builds, 128, SM_LIMITS["sm_80"])
    fits = {(c.block_q, c.block_kv): c.fits for c in cells}
    assert fits == {(32, 32): True, (32, 64): False, (64, 32): False, (64, 64): False}
    small = cells[0]
    assert small.threads == 128 and small.occupancy.blocks > 0
    assert all(c.registers == 128 and not c.measured for c in cells)


def test_explorer_uses_ptxas_counts_where_known() -> None:
    """The recorded table's count for the builds it has, the given one (marked) elsewhere."""
    configs = [
        build_config("tensor cores", 128, q, kv, "bfloat16") for q in (32, 64) for kv in (32, 64)
    ]
    known = recorded_registers(configs, "sm_80")
    assert (64, 32) in known and (64, 64) not in known  # offered at d = 128: 64 x 32 only
    builds = [(c.block_q, c.block_kv, c.defines) for c in configs]
    cells = {
        (c.block_q, c.block_kv): c
        for c in explore("tensor cores", builds, 200, SM_LIMITS["sm_80"], known=known)
    }
    assert cells[64, 32].measured and cells[64, 32].registers == known[64, 32] != 200
    assert not cells[64, 64].measured and cells[64, 64].registers == 200
    assert cells[64, 32].occupancy == occupancy(
        SM_LIMITS["sm_80"], cells[64, 32].threads, known[64, 32], cells[64, 32].shared_bytes
    )
