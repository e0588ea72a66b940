"""The CPU benchmark runs and reports both methods measured in one run (no timing asserts)."""

from __future__ import annotations

import csv
import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest

from flashviz import bench  # the command line
from flashviz.core.accuracy import max_error
from flashviz.core.flash import flash_attention
from flashviz.core.measurement import BenchRow, CpuResult, write_csv
from flashviz.core.reference import attention_reference, naive_attention
from flashviz.gpu import report
from flashviz.perf import backward_bench, cpu_bench


def test_measure_reports_both_methods_and_their_errors():
    (r,) = cpu_bench.sweep([300], 16, progress=False, repeat=1, block_q=64, block_kv=128)
    assert (r.n, r.d) == (300, 16) and r.naive_s > 0 and r.flash_s > 0
    rng = np.random.default_rng(0)  # measure's inputs: seed 0, float32
    q, k, v = (rng.standard_normal((300, 16)).astype(np.float32) for _ in range(3))
    o_ref, _ = attention_reference(q, k, v)
    assert r.naive_err == max_error(naive_attention(q, k, v)[0], o_ref)
    assert r.flash_err == max_error(flash_attention(q, k, v, block_q=64, block_kv=128)[0], o_ref)
    assert r.naive_err < 1e-5 and r.flash_err < 1e-5
    assert r.naive_peak >= 300 * 300 * 4  # naive holds the 300 x 300 float32 scores ...
    assert r.flash_peak < r.naive_peak  # ... flash one 64 x 128 tile of them
    header, rule, row = cpu_bench.format_table([r]).splitlines()
    assert header.split() == ["n", "d", "naive", "ms", "flash", "ms", "time", "ratio", "naive",
                              "MiB", "flash", "MiB", "mem", "ratio", "naive", "err", "flash",
                              "err"]  # fmt: skip
    assert rule == "-" * len(header)
    assert row.split() == [
        "300", "16", f"{r.naive_s * 1e3:.1f}", f"{r.flash_s * 1e3:.1f}", f"{r.time_ratio:.2f}x",
        f"{r.naive_peak / 2**20:.2f}", f"{r.flash_peak / 2**20:.2f}", f"{r.memory_ratio:.1%}",
        f"{r.naive_err:.1e}", f"{r.flash_err:.1e}",
    ]  # fmt: skip
    assert r.time_ratio == r.flash_s / r.naive_s and r.memory_ratio == r.flash_peak / r.naive_peak


def test_peak_bytes_sees_numpy_buffers():
    peak = cpu_bench.peak_bytes(lambda: np.ones(2**20))  # 8 MiB of float64
    assert 8 * 2**20 <= peak < 8 * 2**20 + 2**16  # the buffer and a little bookkeeping


def test_cli_help_and_run():
    out = subprocess.run(
        [sys.executable, "-m", "flashviz.bench", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("usage: python -m flashviz.bench ")
    assert "time ratio < 1 means flash is faster" in " ".join(out.split())
    for option in ("--n", "--d", "--dtype", "--block-q", "--block-kv", "--causal", "--repeat",
                   "--seed", "--backward", "--gpu", "--acceptance", "--csv"):  # fmt: skip
        assert f"\n  {option} " in out, option
    run = subprocess.run(
        [sys.executable, "-m", "flashviz.bench", "--n", "64", "--d", "8", "--repeat", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    header, _, row = run.stdout.splitlines()
    assert header.split()[:4] == ["n", "d", "naive", "ms"]
    r = cpu_bench.measure(64, 8, repeat=1)  # the same inputs: the same errors
    assert row.split()[:2] == ["64", "8"]
    assert row.split()[-2:] == [f"{r.naive_err:.1e}", f"{r.flash_err:.1e}"]
    assert "CPU sweep: 100%" in run.stderr and "1/1" in run.stderr  # the progress bar


def test_cli_backward_runs_the_backward_bench_and_writes_the_csv(tmp_path):
    out = tmp_path / "backward.csv"
    run = subprocess.run(
        [sys.executable, "-m", "flashviz.bench", "--backward", "--n", "48", "80", "--d", "8",
         "--repeat", "1", "--causal", "--block-q", "16", "--block-kv", "32", "--csv", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    header, _, *rows = run.stdout.splitlines()
    assert header == cpu_bench.format_table([]).splitlines()[0]
    for n, row in zip((48, 80), rows, strict=True):  # the same inputs: the same errors
        r = backward_bench.measure_backward(n, 8, repeat=1, causal=True, block_q=16, block_kv=32)
        forward = cpu_bench.measure(n, 8, repeat=1, causal=True, block_q=16, block_kv=32)
        assert row.split()[:2] == [str(n), "8"]
        assert row.split()[-2:] == [f"{r.naive_err:.1e}", f"{r.flash_err:.1e}"]
        assert row.split()[-2:] != [f"{forward.naive_err:.1e}", f"{forward.flash_err:.1e}"]
    assert "CPU backward sweep: 100%" in run.stderr and "2/2" in run.stderr
    with out.open() as f:
        written = list(csv.DictReader(f))
    assert [r["n"] for r in written] == ["48", "80"]
    assert list(written[0]) == [f.name for f in fields(CpuResult)]


def test_cli_backward_with_gpu_is_refused():
    run = subprocess.run(
        [sys.executable, "-m", "flashviz.bench", "--backward", "--gpu"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "--backward is a CPU benchmark" in run.stderr
    assert bench.parse_args(["--backward"]).backward and not bench.parse_args([]).backward


def test_a_sliding_window_is_timed_under_the_same_mask_for_both(capsys):
    """--window: the tiled run with the window's block mask, naive attention with its mask,
    both checked against the float64 reference under it (errors of a few ulps, where the
    wrong mask would be off by the order of the values)."""
    assert bench.main(["--n", "96", "--d", "8", "--window", "10", "--block-q", "16",
                       "--block-kv", "16", "--repeat", "1"]) == 0  # fmt: skip
    row = capsys.readouterr().out.splitlines()[-1].split()
    assert row[:2] == ["96", "8"]
    assert float(row[-1]) < 1e-5 and float(row[-2]) < 1e-5  # naive's and flash's errors
    for args, message in ((["--window", "8", "--causal"], "causal already"),
                          (["--window", "-1"], "0 or more")):  # fmt: skip
        with pytest.raises(SystemExit):
            bench.parse_args(args)
        assert message in capsys.readouterr().err


def test_gpu_flag_without_gpu_says_why_and_still_writes_the_csv(tmp_path):
    out = tmp_path / "gpu.csv"
    run = subprocess.run(
        [sys.executable, "-m", "flashviz.bench", "--gpu", "--n", "128", "--csv", str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "No GPU benchmark: NVIDIA driver: no NVIDIA driver" in run.stderr
    assert "requirements-gpu.txt" in run.stderr and "flashviz.gpu.doctor" in run.stderr
    assert "Traceback" not in run.stderr
    assert out.read_text().splitlines() == [",".join(f.name for f in fields(BenchRow))]


def test_gpu_table_and_csv_show_every_status(tmp_path):
    rows = [
        BenchRow("flash (CUDA kernel)", 65536, 64, 1, False, "ok", 12.5, 2**25, 44.0, 3e-7),
        BenchRow("naive (CuPy)", 65536, 64, 1, False, "out of memory"),
        BenchRow(
            "PyTorch SDPA (FLASH)",
            65536,
            64,
            1,
            False,
            "wrong result",
            max_err=0.1,
            detail="o error 1.00e-01 > 2.00e-03",
        ),
    ]
    header, rule, *lines = report.format_gpu_table(rows).splitlines()
    assert header.split() == ["method", "n", "d", "time", "ms", "peak", "MiB", "TFLOP/s", "max",
                              "err", "status"]  # fmt: skip
    assert rule == "-" * len(header)
    assert [line[:24].rstrip() for line in lines] == [r.method for r in rows]
    assert [" ".join(line[24:].split()) for line in lines] == [
        "65536 64 12.500 32.0 44.00 3.0e-07 ok",
        "65536 64 - - - - out of memory",
        "65536 64 - - - 1.0e-01 wrong result (o error 1.00e-01 > 2.00e-03)",
    ]
    write_csv(str(tmp_path / "gpu.csv"), rows)
    with (tmp_path / "gpu.csv").open() as f:
        written = list(csv.DictReader(f))
    assert [
        (r["method"], r["status"], r["time_ms"], r["max_err"], r["detail"]) for r in written
    ] == [
        ("flash (CUDA kernel)", "ok", "12.5", "3e-07", ""),
        ("naive (CuPy)", "out of memory", "", "", ""),
        ("PyTorch SDPA (FLASH)", "wrong result", "", "0.1", "o error 1.00e-01 > 2.00e-03"),
    ]


def test_gpu_table_columns_line_up_where_a_number_is_missing():
    rows = [
        BenchRow("flash (CUDA kernel)", 65536, 64, 1, False, "ok", 12.5, 2**25, 44.0, 3e-7),
        BenchRow("naive (CuPy)", 65536, 64, 1, False, "out of memory"),
    ]
    header, _, ok, oom = report.format_gpu_table(rows).splitlines()
    assert ok.index(" ok") + 1 == oom.index(" out of memory") + 1 == header.index("status")


def test_gpu_cli_on_the_stand_in_clears_its_bar_and_writes_the_csv(tmp_path, capsys):
    """The CLI's GPU path with the CPU stand-in device: a failing method is a row, the
    CSV is written, the progress bar is gone at the end."""
    from tests.gpu.standin import CpuDevice

    def fails():
        raise RuntimeError("CUDA_ERROR_LAUNCH_FAILED")

    out = tmp_path / "gpu.csv"
    args = bench.parse_args(["--gpu", "--n", "64", "96", "--d", "16", "--csv", str(out)])
    assert report.run_gpu(args, CpuDevice(broken={"flash (CUDA kernel)": fails})) == 0
    captured = capsys.readouterr()
    assert "error: RuntimeError: CUDA_ERROR_LAUNCH_FAILED" in captured.out
    *_, last, end = captured.err.split("\r")  # the bar's last draw is blanks: cleared
    assert "GPU sweep" in captured.err and last.strip() == end == ""
    with out.open() as f:
        written = list(csv.DictReader(f))
    assert [(r["n"], r["method"], r["status"].split(":")[0]) for r in written] == [
        ("64", "flash (CUDA kernel)", "error"), ("64", "naive (CuPy)", "ok"),
        ("96", "flash (CUDA kernel)", "error"), ("96", "naive (CuPy)", "ok"),
    ]  # fmt: skip


def test_gpu_cli_on_the_stand_in_has_the_tensor_core_rows(capsys):
    """``--gpu`` with a device that runs the tensor-core kernel (here its warp emulation):
    a row in each precision, checked and timed, in a table that widens to their names."""
    from tests.gpu.standin import CpuDevice

    args = bench.parse_args(["--gpu", "--n", "64", "--d", "16"])
    assert report.run_gpu(args, CpuDevice(tc=("float16", "bfloat16"), max_repeat=1)) == 0
    header, rule, *lines = capsys.readouterr().out.splitlines()
    width = len("flash (tensor cores, bfloat16)")
    assert [line[:width].rstrip() for line in lines] == [
        "flash (CUDA kernel)", "naive (CuPy)",
        "flash (tensor cores, float16)", "flash (tensor cores, bfloat16)",
    ]  # fmt: skip
    assert all(line.endswith(" ok") for line in lines), lines
    assert header.index(" n ") > width and rule == "-" * len(header)


def test_gpu_cli_writes_the_csv_even_when_interrupted(tmp_path):
    """Ctrl-C during the second size: the CSV keeps the rows of the first."""
    from tests.gpu.standin import CpuDevice

    class InterruptedAt96(CpuDevice):
        def runners(self, call, q, k, v):
            if call.n_q == 96:
                raise KeyboardInterrupt
            return super().runners(call, q, k, v)

    out = tmp_path / "gpu.csv"
    args = bench.parse_args(["--gpu", "--n", "64", "96", "--d", "16", "--csv", str(out)])
    with pytest.raises(KeyboardInterrupt):
        report.run_gpu(args, InterruptedAt96(max_repeat=1))
    header, *rows = out.read_text().splitlines()
    assert header == ",".join(f.name for f in fields(BenchRow))
    measured = {(r.split(",")[0], r.split(",")[1], r.split(",")[5]) for r in rows}
    assert {("flash (CUDA kernel)", "64", "ok"), ("naive (CuPy)", "64", "ok")} <= measured
    assert all(n == "64" for _, n, _ in measured), measured


def test_cpu_table_columns_line_up_with_the_header():
    r = CpuResult(4096, 64, 1.25, 0.5, 3 * 2**30, 2**27, 1e-7, 2e-7)
    header, rule, row = cpu_bench.format_table([r]).splitlines()
    assert len(row) == len(header) == len(rule)
    for title, value in (("time ratio", "0.40x"), ("mem ratio", "4.2%"), ("flash err", "2.0e-07")):
        end = header.index(title) + len(title)
        assert row[end - len(value) : end] == value, (title, row)


def test_acceptance_on_the_stand_in_writes_csv_png_and_one_summary_line(tmp_path, capsys):
    """--gpu --acceptance's flow, up to the device: the stand-in's memory holds naive's
    n x n scores at n = 64 but not at n = 128."""
    from tests.gpu.standin import CpuDevice

    device = CpuDevice(memory_bytes=100_000)
    code = bench.acceptance(str(tmp_path), device, ns=(64, 128), ds=(16, 32), batch_heads=2,
                            gpu_tests=False, repeat=1)  # fmt: skip
    assert code == 0  # out of memory is a result, not a failure
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith(
        "acceptance: GPU tests not run; 8 rows: 6 ok, 2 out of memory, 0 wrong result, 0 error; "
        "at n = 64, d = 32: flash "
    )
    assert out[-1].endswith(f"wrote gpu_acceptance.csv, gpu_acceptance.png in {tmp_path}")
    with (tmp_path / "gpu_acceptance.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["d"], r["n"], r["status"]) for r in rows if r["method"] == "naive (CuPy)"] == [
        ("16", "64", "ok"), ("16", "128", "out of memory"),
        ("32", "64", "ok"), ("32", "128", "out of memory"),
    ]  # fmt: skip
    assert (tmp_path / "gpu_acceptance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_acceptance_without_gpu_prints_the_doctor_and_measures_nothing(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "flashviz.bench",
            "--gpu",
            "--acceptance",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "NVIDIA driver  missing  no NVIDIA driver on this machine" in run.stderr
    assert run.stderr.splitlines()[-1].startswith("acceptance: no GPU (NVIDIA driver: ")
    assert list(tmp_path.iterdir()) == []


def test_naive_faster_and_the_summary_line():
    def row(method, n, ms, status="ok"):
        return BenchRow(method, n, 64, 8, False, status, ms, 1, 1.0, 0.0)

    rows = [row("flash (CUDA kernel)", 512, 0.2), row("naive (CuPy)", 512, 0.1),
            row("flash (CUDA kernel)", 4096, 3.0), row("naive (CuPy)", 4096, 5.0),
            row("naive (CuPy)", 8192, None, "out of memory")]  # fmt: skip
    assert report.naive_faster(rows) == [(512, 64)]
    assert report.acceptance_summary(rows, True, 42.4) == (
        "acceptance: GPU tests passed; 5 rows: 4 ok, 1 out of memory, 0 wrong result, 0 error; "
        "at n = 4096, d = 64: flash 3 ms, naive 5 ms; 42 s"
    )
    tc = [row("flash (tensor cores, float16)", 4096, 0.5), row("flash (tensor cores, bfloat16)",
          4096, None, "error: RuntimeError: no sm_80")]  # fmt: skip
    assert report.acceptance_summary(rows + tc, True, 42.4) == (
        "acceptance: GPU tests passed; 7 rows: 5 ok, 1 out of memory, 0 wrong result, 1 error; "
        "at n = 4096, d = 64: flash 3 ms, tensor cores float16 0.5 ms, naive 5 ms; 42 s"
    )
