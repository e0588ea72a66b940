"""flashviz.gpu.kernel_resources: ptxas compiled now, or recorded with its provenance, and
the unchecked builds of the tile-size explorer."""

from __future__ import annotations

import json

import pytest

from flashviz.gpu import kernel_resources as kr
from flashviz.gpu.launch_params import SCALAR, TENSOR_CORES
from flashviz.gpu.nvrtc import ARCHS, kernel_archs

HAVE_NVRTC = kr.nvrtc_version() is not None


def test_the_recorded_table_covers_every_offered_build() -> None:
    provenance, table = kr.recorded()
    assert set(provenance) == {"nvrtc", "date", "command"}
    assert provenance["command"] == "python -m flashviz.gpu.kernel_resources"
    keys = {kr._key(c, a) for c in SCALAR.offered_configs() for a in ARCHS}
    keys |= {
        kr._key(c, a) for c in TENSOR_CORES.offered_configs() for a in kernel_archs(TENSOR_CORES)
    }
    assert set(table) == keys
    assert all(i.spill_stores == i.spill_loads == i.stack_bytes == 0 for i in table.values())


def test_without_nvrtc_the_recorded_numbers_say_so(monkeypatch) -> None:
    monkeypatch.setattr(kr, "nvrtc_version", lambda: None)
    res = kr.ptxas_for(TENSOR_CORES.config(64, 64, 64, "float16"), "sm_80")
    assert res is not None and "recorded with NVRTC" in res.source
    assert "not installed" in res.source
    assert res.ptxas == kr.recorded()[1]["tensor cores 64 64 64 float16 sm_80"]
    # a build nobody recorded (an unchecked explorer pair): no numbers at all
    assert kr.ptxas_for(kr.build_config("float32", 16, 256, 256), "sm_80") is None


def test_a_missing_table_is_empty(tmp_path) -> None:
    assert kr.recorded(tmp_path / "none.json") == ({}, {})


@pytest.mark.skipif(not HAVE_NVRTC, reason="NVRTC (pip install -r requirements-gpu.txt)")
def test_with_nvrtc_it_compiles_now_and_matches_the_record() -> None:
    config = SCALAR.config(64, 64, 32)
    res = kr.ptxas_for(config, "sm_86")
    assert res is not None and res.source == f"NVRTC {kr.nvrtc_version()}, compiled now"
    provenance, table = kr.recorded()
    if provenance["nvrtc"] == kr.nvrtc_version():
        assert res.ptxas == table[kr._key(config, "sm_86")]


def test_record_writes_the_table(tmp_path, monkeypatch) -> None:
    fake = kr.nvrtc.PtxasInfo(40, 0, 0, 0, 1234)
    monkeypatch.setattr(kr, "compile_build", lambda config, arch: fake)
    monkeypatch.setattr(kr, "nvrtc_version", lambda: "12.9")
    path = tmp_path / "table.json"
    assert kr.record(path, [(SCALAR.config(16, 32, 32), "sm_80")]) == 1
    data = json.loads(path.read_text())
    assert data["provenance"]["nvrtc"] == "12.9"
    assert data["builds"] == {"float32 16 32 32 sm_80": fake.__dict__}


def test_build_config_is_unchecked_but_follows_the_launch_rules() -> None:
    big = kr.build_config("float32", 128, 256, 256)
    assert big.shared_bytes > 48 * 1024 and big.num_threads == 1024
    assert kr.build_config("float32", 64, 64, 32) == SCALAR.config(64, 64, 32)
    assert kr.build_config("tensor cores", 50, 64, 64, "bfloat16") == TENSOR_CORES.config(
        64, 64, 64, "bfloat16"
    )
    with pytest.raises(ValueError, match="kind must be one of"):
        kr.build_config("int8", 64, 64, 64)
