"""The CUDA kernel compiles with NVRTC (no GPU needed) for every offered build and arch.

Each (head dim, block pair) of flashviz.gpu.launch_params is compiled for sm_75 ... sm_90 with
-Xptxas=-v; ptxas's report must show no spills, no stack, registers that fit the block,
and exactly the static shared memory launch.py computes (<= 48 KiB).
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

from flashviz.core import inner_step
from flashviz.core.kernel_files import KERNEL_PATH
from flashviz.gpu.launch_params import (
    KERNEL_HEAD_DIMS,
    SCALAR,
    SHARED_LIMIT_BYTES,
    KernelConfig,
    kernel_text,
)
from flashviz.gpu.nvrtc import (
    ARCHS,
    Compiled,
    KernelCompileError,
    compile_kernel,
    compile_source,
    load_nvrtc,
    parse_ptxas,
)

CONFIGS = SCALAR.offered_configs()
JOBS = [(config, arch) for config in CONFIGS for arch in ARCHS]
if sys.platform not in ("linux", "win32"):  # NVIDIA ships the NVRTC wheel for these only
    pytest.skip(f"no NVRTC wheel for {sys.platform}", allow_module_level=True)

PHASES = [  # as flashviz.lab.code_view.PHASES; "reduce" is the kernel's only
    "init", "scores", "max", "exp", "alpha", "sum", "accumulate", "reduce", "normalize", "lse"
]  # fmt: skip


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("config", "arch"), JOBS, ids=[f"{c.defines}-{a}" for c, a in JOBS])
def test_compiles_without_spills(config, arch):
    result: Compiled = compile_kernel(config, arch)  # each job compiled by its test only
    info = result.ptxas
    assert result.cubin[:4] == b"\x7fELF"
    assert (info.spill_stores, info.spill_loads, info.stack_bytes) == (0, 0, 0), result.log
    assert info.registers <= 255 and info.registers * config.num_threads <= 65536
    assert info.shared_bytes == config.shared_bytes <= SHARED_LIMIT_BYTES


def test_every_head_dim_has_a_block_pair():
    for d in KERNEL_HEAD_DIMS:
        assert SCALAR.fitting_blocks(d), f"no block pair fits head dim {d}"


@pytest.mark.timeout(60)
def test_a_compile_error_names_file_and_line():
    source, file = kernel_text(KERNEL_PATH), KERNEL_PATH.read_text()
    good = "m_new[a] = m_i[a];"
    assert source.count(good) == 1
    line = file[: file.index(good)].count("\n") + 1  # its line in the .cu file
    broken = source.replace(good, "m_new[a] = m_i[a] + not_declared;")
    with pytest.raises(KernelCompileError) as failure:
        compile_kernel(CONFIGS[0], "sm_80", broken)
    message = str(failure.value)
    assert f"kernels/flash_attention.cu({line}): error" in message
    assert "not_declared" in message


@pytest.mark.timeout(60)
def test_a_config_that_breaks_the_static_asserts_does_not_compile():
    bad = KernelConfig(SCALAR, head_dim=64, block_q=32, block_kv=24, precision="float32")
    with pytest.raises(KernelCompileError, match="THREADS_PER_ROW must divide BLOCK_KV"):
        compile_kernel(bad, "sm_80")


def test_phase_markers_match_the_python_inner_step():
    kernel = re.findall(r"// phase:(\w+)", KERNEL_PATH.read_text())
    python = re.findall(r"# phase:(\w+)", Path(inner_step.__file__).read_text())
    assert kernel == PHASES
    assert sorted(python) == sorted(p for p in PHASES if p != "reduce")


def test_parse_ptxas_reads_the_report():
    log = (
        "ptxas info    : Compiling entry function 'k' for 'sm_80'\n"
        "ptxas info    : Function properties for k\n"
        "ptxas         .     16 bytes stack frame, 12 bytes spill stores, 8 bytes spill loads\n"
        "ptxas info    : Used 255 registers, used 1 barriers, 4096 bytes smem, 380 bytes cmem[0]\n"
    )
    info = parse_ptxas(log, "k")
    assert (info.registers, info.spill_stores, info.spill_loads) == (255, 12, 8)
    assert (info.stack_bytes, info.shared_bytes) == (16, 4096)
    with pytest.raises(ValueError, match="no ptxas report"):
        parse_ptxas(log, "other")


def test_compile_source_checks_the_arch():
    with pytest.raises(ValueError, match=r"^arch must look like 'sm_80', got '80'$"):
        compile_source("", "80")


def test_the_nvrtc_wheel_is_found():
    """load_nvrtc's fallback: libnvrtc.so.12 inside site-packages/nvidia/cuda_nvrtc/lib."""
    from flashviz.gpu.nvrtc import wheel_library

    if sys.platform == "linux":
        assert wheel_library() is not None and wheel_library().is_file()
    wheel = metadata.version("nvidia-cuda-nvrtc-cu12")  # e.g. 12.9.86 for NVRTC 12.9
    assert load_nvrtc().getVersion() == tuple(int(x) for x in wheel.split(".")[:2]), wheel


@pytest.mark.parametrize(
    ("platform", "folder", "name"),
    [("linux", "lib", "libnvrtc.so.12"), ("win32", "bin", "nvrtc64_120_0.dll")],
)
def test_the_nvrtc_wheel_library_of_each_platform(tmp_path, platform, folder, name):
    """Defect 7: on Windows the wheel keeps NVRTC as bin/nvrtc64_120_0.dll."""
    from flashviz.gpu.nvrtc import wheel_library

    lib = tmp_path / "site" / "nvidia" / "cuda_nvrtc" / folder / name
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"")
    assert wheel_library([str(tmp_path / "empty"), str(tmp_path / "site")], platform) == lib
    other = "win32" if platform == "linux" else "linux"
    assert wheel_library([str(tmp_path / "site")], other) is None
