"""What a benchmark measured: the records shared by the CPU bench (``flashviz.perf``), the
GPU sweep (``flashviz.gpu``) and the figures that draw them, and their CSV form.

Plain data; no measuring happens here.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

OK, OUT_OF_MEMORY, WRONG = "ok", "out of memory", "wrong result"  # GPU sweep statuses


@dataclass(frozen=True)
class CpuResult:
    """One row of the CPU sweep: seconds and peak bytes of each method at size n."""

    n: int
    d: int
    naive_s: float
    flash_s: float
    naive_peak: int
    flash_peak: int
    naive_err: float
    flash_err: float

    @property
    def time_ratio(self) -> float:
        """flash time / naive time (below 1: flash is faster)."""
        return self.flash_s / self.naive_s

    @property
    def memory_ratio(self) -> float:
        """flash peak / naive peak."""
        return self.flash_peak / self.naive_peak


@dataclass(frozen=True)
class BenchRow:
    """One method at one size; numbers only when ``status`` is "ok"."""

    method: str
    n: int
    d: int
    batch_heads: int
    causal: bool
    status: str  # ok | out of memory | wrong result | error: <one line>
    time_ms: float | None = None
    peak_bytes: int | None = None
    tflops: float | None = None  # useful FLOPs (flashviz.core.costs) / median time
    max_err: float | None = None  # vs the float64 reference, o and lse
    detail: str = ""  # which output was wrong and by how much


@dataclass(frozen=True)
class GpuSpec:
    name: str
    fp32_tflops: float  # peak, CUDA cores
    bandwidth_gbs: float  # HBM bandwidth, GB/s
    memory_gib: float
    tc_tflops: float | None = None  # dense fp16/bf16 tensor-core peak; None: no sm_80 mma
    tc_peak_needs_wgmma: bool = False  # Hopper: the peak is wgmma's, beyond mma.sync's reach


@dataclass(frozen=True)
class Expectation:
    n: int
    flops: int
    naive_bytes: int  # HBM traffic
    flash_bytes: int
    naive_ms: float  # roofline lower bound
    flash_ms: float
    naive_peak_bytes: int  # device memory at the peak, inputs and output included
    flash_peak_bytes: int
    tc_flash_bytes: int = 0  # the tensor-core kernel: Q, K, V in 16 bits, O and lse float32
    tc_flash_ms: float | None = None  # None where the GPU has no tensor-core peak for it
    tc_flash_peak_bytes: int = 0


def write_csv(
    path: str, rows: Sequence[DataclassInstance], row_type: type[DataclassInstance] | None = None
) -> None:
    """Rows (dataclasses) as CSV, one column per field; only the header when there are
    none (``row_type`` names the columns then)."""
    fields = [f.name for f in dataclasses.fields(row_type or type(rows[0]))]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in rows)
