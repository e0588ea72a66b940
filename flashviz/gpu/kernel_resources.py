"""Registers and shared memory of a kernel build, from ptxas: now, or as recorded.

``ptxas_for`` compiles the build with NVRTC (``flashviz.gpu.nvrtc``, no GPU needed) and
returns ptxas's report. Where NVRTC is not installed it falls back to ``ptxas_recorded.json``
(next to this file), written by ``python -m flashviz.gpu.kernel_resources``: every build the
app offers of both kernels (``offered_configs`` x ``nvrtc.ARCHS``, ``offered_tc_configs`` x
``nvrtc.TC_ARCHS``) with the NVRTC version, date and command that produced it. The answer
says which of the two it is (``Resources.source``).

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
    ROWS_PER_THREAD,
    THREADS_PER_ROW,
    KernelConfig,
    TcConfig,
    offered_configs,
    offered_tc_configs,
    padded_head_dim,
)

RECORDED_PATH = Path(__file__).with_name("ptxas_recorded.json")
KINDS = ("float32", "tensor cores")  # as flashviz.lab.inside_kernel.KINDS


@dataclass(frozen=True)
class Resources:
    ptxas: nvrtc.PtxasInfo
    source: str  # where the numbers come from, in words


def build_config(
    kind: str, d: int, block_q: int, block_kv: int, precision: str = "float16"
) -> KernelConfig | TcConfig:
    """The build of (d, block_q, block_kv) for ``kind``, unchecked (its shared memory may
    exceed the limit: ``launch_params.kernel_config`` / ``tc_config`` validate)."""
    head_dim = padded_head_dim(d)
    if kind == "float32":
        threads = block_q * THREADS_PER_ROW // ROWS_PER_THREAD  # as launch_params.kernel_config
        return KernelConfig(head_dim, block_q, block_kv, threads)
    if kind == "tensor cores":
        return TcConfig(head_dim, block_q, block_kv, precision)
    raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def _key(config: KernelConfig | TcConfig, arch: str) -> str:
    kind = "tensor cores" if isinstance(config, TcConfig) else "float32"
    precision = f" {config.precision}" if isinstance(config, TcConfig) else ""
    return f"{kind} {config.head_dim} {config.block_q} {config.block_kv}{precision} {arch}"


def compile_build(config: KernelConfig | TcConfig, arch: str) -> nvrtc.PtxasInfo:
    if isinstance(config, TcConfig):
        return nvrtc.compile_tc_kernel(config, arch).ptxas
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


def recorded_registers(
    configs: Sequence[KernelConfig | TcConfig], arch: str
) -> dict[tuple[int, int], int]:
    """(block_q, block_kv) -> registers a thread, for those of ``configs`` the recorded table
    has on ``arch`` (no compiling: the tile-size explorer asks for 25 builds at once)."""
    _, table = recorded()
    found = {(c.block_q, c.block_kv): table.get(_key(c, arch)) for c in configs}
    return {pair: info.registers for pair, info in found.items() if info is not None}


def ptxas_for(config: KernelConfig | TcConfig, arch: str) -> Resources | None:
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


def record(path: Path = RECORDED_PATH) -> int:
    """Compile every offered build of both kernels, one at a time; write the table."""
    version = nvrtc_version()
    if version is None:
        raise RuntimeError("NVRTC is missing: pip install -r requirements-gpu.txt")
    jobs: list[tuple[KernelConfig | TcConfig, str]] = [
        (c, a) for c in offered_configs() for a in nvrtc.ARCHS
    ]
    jobs += [(c, a) for c in offered_tc_configs() for a in nvrtc.TC_ARCHS]
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
