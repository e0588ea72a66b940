"""The CPU benchmark runs and reports both methods measured in one run (no timing asserts)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from flashviz import bench


def test_measure_reports_both_methods_and_their_errors():
    (r,) = bench.sweep([300], 16, progress=False, repeat=1, block_q=64, block_kv=128)
    assert r.n == 300 and r.naive_s > 0 and r.flash_s > 0
    assert r.flash_peak < r.naive_peak  # naive holds 300 x 300 scores, flash one 64 x 128 tile
    assert r.naive_err < 1e-5 and r.flash_err < 1e-5
    table = bench.format_table([r])
    assert "time ratio" in table and f"{r.time_ratio:.2f}x" in table


def test_peak_bytes_sees_numpy_buffers():
    assert bench.peak_bytes(lambda: np.ones(2**20)) >= 8 * 2**20


def test_cli_help_and_run():
    out = subprocess.run(
        [sys.executable, "-m", "flashviz.bench", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--n" in out and "time ratio" in out
    run = subprocess.run(
        [sys.executable, "-m", "flashviz.bench", "--n", "64", "--d", "8", "--repeat", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "naive ms" in run.stdout and "CPU sweep" in run.stderr  # table + progress bar


def test_gpu_flag_without_gpu_says_why_and_how_to_enable():
    run = subprocess.run(
        [sys.executable, "-m", "flashviz.bench", "--gpu", "--n", "128"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "No GPU benchmark:" in run.stderr and "requirements-gpu.txt" in run.stderr
    assert "Traceback" not in run.stderr


def test_gpu_table_and_csv_show_out_of_memory_as_a_result(tmp_path):
    from flashviz.gpu import BenchRow, out_of_memory_row

    rows = [
        BenchRow("flash (CUDA kernel)", 65536, 64, 1, False, "ok", 12.5, 2**25, 44.0, 3e-7),
        out_of_memory_row(BenchRow("naive (CuPy)", 65536, 64, 1, False, "not run")),
    ]
    table = bench.format_gpu_table(rows)
    assert "12.500" in table and "32.0" in table and "out of memory at n = 65536" in table
    bench.write_csv(str(tmp_path / "gpu.csv"), rows)
    lines = (tmp_path / "gpu.csv").read_text().splitlines()
    assert lines[0].startswith("method,n,d") and len(lines) == 3
    assert "out of memory at n = 65536" in lines[2]
