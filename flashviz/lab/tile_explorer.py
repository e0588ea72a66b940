"""The tile-size explorer: block sizes x head dim -> shared bytes, fits or not, occupancy.

For each (block_q, block_kv) pair, the caller passes the build's ``#define`` values (from
``flashviz.gpu.kernel_resources.build_config``); the static shared memory is the sum of the
kernel's own ``__shared__`` declarations at those sizes (``inside_kernel.shared_total``), and
the occupancy is ``occupancy.occupancy`` on the chosen SM with each pair's register count:
ptxas's where the caller knows it (``known``: the builds compiled or recorded), else the
given build's count, marked as an estimate (``Cell.measured`` False): ptxas's count changes
with the sizes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flashviz.lab.inside_kernel import Defines, int_defines, shared_total
from flashviz.lab.occupancy import STATIC_SHARED_LIMIT, Occupancy, SmLimits, occupancy

BLOCK_SIZES = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class Cell:
    block_q: int
    block_kv: int
    threads: int
    shared_bytes: int
    occupancy: Occupancy
    registers: int  # a thread, as used for the occupancy
    measured: bool  # registers from ptxas for this very build (else another build's count)

    @property
    def fits(self) -> bool:
        """Within the 48 KiB of static shared memory a block may declare."""
        return self.shared_bytes <= STATIC_SHARED_LIMIT


def explore(
    kind: str,
    builds: Sequence[tuple[int, int, Defines]],
    registers: int,
    sm: SmLimits,
    text: str | None = None,
    known: Mapping[tuple[int, int], int] | None = None,
) -> list[Cell]:
    """One Cell per (block_q, block_kv, defines) of ``builds``: ``known[(block_q, block_kv)]``
    registers a thread where given (ptxas's), else ``registers`` (an estimate)."""
    known = known or {}
    cells = []
    for block_q, block_kv, defines in builds:
        shared = shared_total(kind, defines, text)
        threads = int_defines(defines)["NUM_THREADS"]
        regs = known.get((block_q, block_kv), registers)
        occ = occupancy(sm, threads, regs, shared)
        measured = (block_q, block_kv) in known
        cells.append(Cell(block_q, block_kv, threads, shared, occ, regs, measured))
    return cells
