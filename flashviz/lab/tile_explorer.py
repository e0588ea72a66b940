"""The tile-size explorer: block sizes x head dim -> shared bytes, fits or not, occupancy.

For each (block_q, block_kv) pair, the caller passes the build's ``#define`` values (from
``flashviz.gpu.kernel_resources.build_config``); the static shared memory is the sum of the
kernel's own ``__shared__`` declarations at those sizes (``inside_kernel.shared_total``), and
the occupancy is ``occupancy.occupancy`` on the chosen SM with a given register count (ptxas
reports registers per build; the explorer uses one count for every pair and says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flashviz.lab.inside_kernel import shared_total
from flashviz.lab.occupancy import STATIC_SHARED_LIMIT, Occupancy, SmLimits, occupancy

BLOCK_SIZES = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class Cell:
    block_q: int
    block_kv: int
    threads: int
    shared_bytes: int
    occupancy: Occupancy

    @property
    def fits(self) -> bool:
        """Within the 48 KiB of static shared memory a block may declare."""
        return self.shared_bytes <= STATIC_SHARED_LIMIT


def explore(
    kind: str,
    builds: Sequence[tuple[int, int, dict[str, int]]],
    registers: int,
    sm: SmLimits,
    text: str | None = None,
) -> list[Cell]:
    """One Cell per (block_q, block_kv, defines) of ``builds``, with ``registers`` a thread."""
    cells = []
    for block_q, block_kv, defines in builds:
        shared = shared_total(kind, defines, text)
        threads = defines["NUM_THREADS"]
        cells.append(
            Cell(block_q, block_kv, threads, shared, occupancy(sm, threads, registers, shared))
        )
    return cells
