"""Registers and shared memory of a kernel build, from ptxas: now, or as recorded.

``ptxas_for`` compiles the build with NVRTC (``flashviz.gpu.nvrtc``, no GPU needed) and
returns ptxas's report. Where NVRTC is not installed it falls back to ``ptxas_recorded.json``
(next to this file), written by ``python -m flashviz.gpu.kernel_resources``: every build the
app offers of every kernel (``Kernel.offered_configs`` x ``nvrtc.kernel_archs``) with
the NVRTC version, date and command that produced it. The answer says which of the two it
is (``Resources.source``).

``build_config`` makes the build of any (block_q, block_kv) pair without the 48 KiB check,
for the tile-size explorer (which shows the pairs that do not fit, too).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from flashviz.gpu import nvrtc
from flashviz.gpu.launch_params import (
    KERNELS,
    KernelConfig,
    kernel_named,
    padded_head_dim,
)

RECORDED_PATH = Path(__file__).with_name("ptxas_recorded.json")
KINDS = tuple(
    k.name for k in KERNELS
)  # "float32", "tensor cores": as flashviz.lab.inside_kernel.KINDS


@dataclass(frozen=True)
class Resources:
    ptxas: nvrtc.PtxasInfo
    source: str  # where the numbers come from, in words


def build_config(
    kind: str, d: int, block_q: int, block_kv: int, precision: str = "float16"
) -> KernelConfig:
    """The build of (d, block_q, block_kv) of the kernel named ``kind``, unchecked (its shared
    memory may exceed the limit: ``Kernel.config`` validates); ``precision`` where the kernel
    has more than one."""
    kernel = kernel_named(kind)
    chosen = precision if precision in kernel.precisions else kernel.precisions[0]
    return KernelConfig(kernel, padded_head_dim(d), block_q, block_kv, chosen)


def _key(config: KernelConfig, arch: str) -> str:
    kernel = config.kernel
    precision = f" {config.precision}" if len(kernel.precisions) > 1 else ""
    return f"{kernel.name} {config.head_dim} {config.block_q} {config.block_kv}{precision} {arch}"


def compile_build(config: KernelConfig, arch: str) -> nvrtc.PtxasInfo:
    return nvrtc.compile_kernel(config, arch).ptxas


def nvrtc_version() -> str | None:
    """'12.9' if NVRTC loads, else None."""
    try:
        major, minor = nvrtc.load_nvrtc().getVersion()
    except RuntimeError:
        return None
    return f"{major}.{minor}"


@cache
def recorded(path: Path = RECORDED_PATH) -> tuple[dict[str, str], dict[str, nvrtc.PtxasInfo]]:
    """(provenance, key -> report) of the recorded table; empty if there is none."""
    if not path.is_file():
        return {}, {}
    data = json.loads(path.read_text())
    table = {key: nvrtc.PtxasInfo(**info) for key, info in data["builds"].items()}
    return data["provenance"], table


def recorded_registers(configs: Sequence[KernelConfig], arch: str) -> dict[tuple[int, int], int]:
    """(block_q, block_kv) -> registers a thread, for those of ``configs`` the recorded table
    has on ``arch`` (no compiling: the tile-size explorer asks for 25 builds at once)."""
    _, table = recorded()
    found = {(c.block_q, c.block_kv): table.get(_key(c, arch)) for c in configs}
    return {pair: info.registers for pair, info in found.items() if info is not None}


def ptxas_for(config: KernelConfig, arch: str) -> Resources | None:
    """ptxas's report for the build on ``arch``: compiled now if NVRTC is there, else the
    recorded one; None if neither has it. Compile errors (KernelCompileError) propagate."""
    version = nvrtc_version()
    if version is not None:
        return Resources(compile_build(config, arch), f"NVRTC {version}, compiled now")
    provenance, table = recorded()
    info = table.get(_key(config, arch))
    if info is None:
        return None
    return Resources(
        info,
        f"recorded with NVRTC {provenance['nvrtc']} on {provenance['date']} "
        f"({provenance['command']}); NVRTC is not installed here",
    )


def offered_builds() -> list[tuple[KernelConfig, str]]:
    """(config, arch) of every build the app offers: each kernel's, on each of its archs."""
    return [(c, a) for k in KERNELS for c in k.offered_configs() for a in nvrtc.kernel_archs(k)]


def record(path: Path = RECORDED_PATH, jobs: Sequence[tuple[KernelConfig, str]] = ()) -> int:
    """Compile ``jobs`` (default: ``offered_builds()``), one at a time; write the table."""
    version = nvrtc_version()
    if version is None:
        raise RuntimeError("NVRTC is missing: pip install -r requirements-gpu.txt")
    jobs = jobs or offered_builds()
    builds = {_key(c, a): asdict(compile_build(c, a)) for c, a in jobs}
    provenance = {
        "nvrtc": version,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": "python -m flashviz.gpu.kernel_resources",
    }
    path.write_text(json.dumps({"provenance": provenance, "builds": builds}, indent=1) + "\n")
    return len(builds)


def main(argv: list[str] | None = None) -> None:
    """`python -m flashviz.gpu.kernel_resources`: record ptxas's reports (see the module)."""
    del argv
    count = record()
    print(f"{count} builds recorded in {RECORDED_PATH}", file=sys.stderr)


if __name__ == "__main__":
    main()
