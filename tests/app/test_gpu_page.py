"""The GPU timings page: without a GPU it says why, shows the doctor's checklist, the
roofline expectation and the CPU sweep as charts; its GPU section runs on the stand-in."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from flashviz.app import gpu_work
from flashviz.app.cached import CACHE
from flashviz.app.jobs import SLOT
from flashviz.gpu.device import FLASH, NAIVE, TC_METHODS, available
from flashviz.perf.roofline import KNOWN_GPUS, expect
from tests.support import APP_SCRIPT, decode

ROOT = Path(__file__).resolve().parents[2]
HEAD = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
PAGE = HEAD + "from flashviz.app.pages import gpu\ngpu.render()\n"
# The emulated kernels are slow: each method runs once to be checked, once for its peak
# memory and once timed, with no warm-up.
STAND_IN = HEAD + (
    "from tests.gpu.standin import CpuDevice\nfrom flashviz.app.pages import gpu as gpu_page\n"
    "gpu_page.gpu_section('CPU stand-in', "
    "lambda: CpuDevice(memory_bytes=2**22, max_repeat=1, max_warmup=0))\n"
)
STAND_IN_TC = STAND_IN.replace("max_warmup=0)", "max_warmup=0, tc=('float16', 'bfloat16'))")

HAS_GPU = available()[0]


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def roofline_text(page: AppTest, gpu_name: str) -> str:
    """Pick the GPU whose name contains ``gpu_name`` and return the roofline's "Both methods
    do ..." paragraph."""
    gpu_spec = page.selectbox(key="gpu_spec")
    gpu_spec.set_value(next(g for g in gpu_spec.options if gpu_name in g))
    page.run()
    assert not page.exception
    (why,) = [m.value for m in page.markdown if m.value.startswith("Both methods do")]
    return why


def settled(at: AppTest) -> AppTest:
    """``at`` run again once the server's background job (checks, sweep) has finished, as
    the page's progress poll does in a browser."""
    assert SLOT.wait(timeout_s=120)
    return at.run()


@pytest.fixture
def page() -> AppTest:
    return settled(AppTest.from_string(PAGE, default_timeout=60).run())


@pytest.fixture
def no_checks_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as if no one had opened the GPU page yet."""
    assert SLOT.wait(timeout_s=120)
    monkeypatch.setattr(gpu_work, "_checks", [])


@pytest.fixture
def held_slot() -> Iterator[threading.Event]:
    """The job slot taken by another session's CPU sweep until the event is set."""
    assert SLOT.wait(timeout_s=120)
    release = threading.Event()
    job = SLOT.try_start("CPU sweep, d = 64", "another session", lambda job: release.wait(60))
    assert job is not None
    yield release
    release.set()
    assert SLOT.wait(timeout_s=60)


def test_the_first_visit_checks_the_gpu_layers_off_the_request_path(no_checks_yet: None) -> None:
    at = AppTest.from_string(PAGE, default_timeout=60).run()
    assert not at.exception
    (bar,) = at.get("progress")
    assert "Checking the GPU layers" in bar.proto.text and "once for this server" in bar.proto.text
    assert SLOT.running() is not None  # the request ended before the checks did
    assert not at.warning and not at.table
    settled(at)
    assert not at.exception and at.table and not at.get("progress")


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
def test_a_second_asker_is_told_the_server_is_busy_and_sees_the_running_job(
    page: AppTest, held_slot: threading.Event
) -> None:
    page.multiselect(key="cpu_ns").set_value([256, 512])
    page.selectbox(key="cpu_d").set_value(32)
    page.button(key="cpu_run").click().run()
    assert not page.exception
    (info,) = page.info
    assert info.value.startswith("The server is busy with CPU sweep, d = 64 (0% done), started "
                                 "by another session.")  # fmt: skip
    assert "press the button again when it has finished" in info.value
    (bar,) = page.get("progress")
    assert bar.proto.text.startswith("CPU sweep, d = 64")
    held_slot.set()
    settled(page)
    assert not page.info and not page.get("progress")
    assert any("Not measured yet: n = 256, n = 512" in c.value for c in page.caption)


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
def test_a_size_over_a_clicks_cpu_budget_is_named_with_the_command_to_time_it(
    page: AppTest,
) -> None:
    CACHE.store(gpu_work._over_key(4096, 16), 9.4, "another session")
    page.multiselect(key="cpu_ns").set_value([4096])
    page.selectbox(key="cpu_d").set_value(16)
    page.button(key="cpu_run").click().run()
    assert not page.exception and SLOT.running() is None  # nothing to measure
    (over,) = [c.value for c in page.caption if c.value.startswith("n = 4096")]
    assert "about 9 s of the server's CPU, more than the 4 s one click may use" in over
    assert "python -m flashviz.bench --n 4096 --d 16" in over


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
def test_no_gpu_says_why_shows_the_checklist_and_how_to_enable(page):
    assert not page.exception
    (warning,) = page.warning
    assert warning.value.startswith("No GPU here: ") and available()[1] in warning.value
    assert "no NVIDIA driver on this machine" in warning.value
    (checklist,) = page.table
    table = checklist.value
    assert list(table["layer"]) == ["CuPy", "NVRTC", "cuBLAS", "CUDA headers", "NVIDIA driver",
                                    "GPU device", "NVRTC compile", "kernel launch",
                                    "cuBLAS matmul", "flash kernel"]  # fmt: skip
    driver = table[table["layer"] == "NVIDIA driver"].iloc[0]
    assert driver["status"] == "missing" and "install the NVIDIA driver" in driver["fix"]
    assert any("--acceptance" in c.value and "requirements-gpu.txt" in c.value for c in page.code)
    (roofline,) = chart_specs(page)  # the expectation is a chart, not a table
    assert "roofline" in roofline["layout"]["title"]["text"]
    assert any("fraction of the fp32 peak" in c.value for c in page.caption)


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
def test_cpu_sweep_is_a_chart_and_a_table(page):
    page.multiselect(key="cpu_ns").set_value([256, 512])
    page.selectbox(key="cpu_d").set_value(16)
    page.button(key="cpu_run").click().run()
    assert not page.exception
    settled(page)
    assert not page.exception
    _, cpu = chart_specs(page)
    assert cpu["layout"]["title"]["text"] == "CPU: naive vs tiled attention"
    lines = {(t["name"], t["xaxis"]): t for t in cpu["data"]}
    assert set(lines) == {(name, axis) for name in ("naive (NumPy)", "flash (NumPy, tiled)")
                          for axis in ("x", "x2")}  # fmt: skip  # time, peak memory
    for line in lines.values():
        assert decode(line["x"]).tolist() == [256, 512]
    ms = {name: decode(lines[name, "x"]["y"]) for name in ("naive (NumPy)", "flash (NumPy, tiled)")}
    mib = {name: decode(lines[name, "x2"]["y"]) for name in ms}
    table = page.dataframe[0].value  # the chart's numbers, rounded
    assert list(table["n"]) == [256, 512] and list(table["d"]) == [16, 16]
    assert list(table["naive ms"]) == [round(x, 2) for x in ms["naive (NumPy)"]]
    assert list(table["flash ms"]) == [round(x, 2) for x in ms["flash (NumPy, tiled)"]]
    ratios = mib["flash (NumPy, tiled)"] / mib["naive (NumPy)"]
    assert list(table["memory ratio"]) == [f"{r:.1%}" for r in ratios]
    # naive holds the n x n float32 scores, flash one tile of them
    assert (mib["naive (NumPy)"] >= np.array([256, 512]) ** 2 * 4 / 2**20).all()
    assert (ratios < 1).all()
    assert all(float(e) < 1e-5 for e in (*table["naive max error"], *table["flash max error"]))
    assert not page.get("progress")  # the bar is cleared


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
def test_expectations_follow_the_chosen_gpu(page):
    why = roofline_text(page, "A100")
    a100 = next(g for g in KNOWN_GPUS if "A100" in g.name)
    assert "at 2039 GB/s" in why and "(19.5 TFLOP/s fp32 peak" in why
    assert "tensor-core peak instead, 312 TFLOP/s dense, 16 times the fp32 one" in why
    assert "wgmma" not in why  # an A100's peak is mma.sync's
    (caption,) = [c.value for c in page.caption if c.value.startswith("d = ")]
    d = int(caption.split(",")[0].removeprefix("d = "))
    roofline = chart_specs(page)[0]
    assert "A100" in roofline["layout"]["title"]["text"]
    lines = {(t["name"], t["yaxis"]): t for t in roofline["data"]}
    lines_of = {"naive (memory-bound)": "naive_ms", "flash (compute-bound)": "flash_ms",
                "flash, tensor cores (float16/bfloat16)": "tc_flash_ms"}  # fmt: skip
    for name, ms in lines_of.items():
        line = lines[name, "y"]  # the time panel: this GPU's roofline bound at each n
        want = [getattr(expect(int(n), d, a100), ms) for n in decode(line["x"])]
        np.testing.assert_allclose(decode(line["y"]), want, rtol=1e-12)


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ runs the kernel's CPU emulation")
@pytest.mark.timeout(180)
def test_gpu_section_on_the_stand_in_charts_every_row_and_marks_out_of_memory():
    at = AppTest.from_string(STAND_IN, default_timeout=150).run()
    at.selectbox(key="gpu_d").set_value(16)
    at.multiselect(key="gpu_ns").set_value([512, 1024])  # naive's S and P fit at 512 only
    at.button(key="gpu_run").click().run()
    assert not at.exception
    measured, _roofline = chart_specs(at)
    names = {t["name"] for t in measured["data"]}
    assert {"flash (CUDA kernel)", "naive (CuPy)", "naive (CuPy): out of memory"} <= names
    (table,) = at.dataframe
    assert list(table.value["status"]) == ["ok", "ok", "ok", "out of memory"]
    assert any("x = out of memory" in c.value for c in at.caption)
    # NumPy's naive beats the emulated kernel: the page says so, and why
    (info,) = at.info
    assert info.value.startswith("Naive attention is faster here at n = 512: ")
    assert "cuBLAS" in info.value
    assert not at.get("progress")


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
def test_a_gpu_without_tensor_core_peak_says_the_kernel_cannot_run_there(page):
    why = roofline_text(page, "T4")
    assert why.endswith("needs sm_80 or newer (mma.sync.m16n8k16), so this GPU has no line for it.")
    assert not any("tensor" in t["name"] for t in chart_specs(page)[0]["data"])


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ runs the kernel's CPU emulation")
@pytest.mark.timeout(180)
def test_gpu_section_on_the_stand_in_shows_the_tensor_core_rows():
    at = AppTest.from_string(STAND_IN_TC, default_timeout=150).run()
    at.selectbox(key="gpu_d").set_value(16)
    at.multiselect(key="gpu_ns").set_value([512])
    at.checkbox(key="gpu_causal").check()  # the emulation skips the tiles past the diagonal
    at.button(key="gpu_run").click().run()
    assert not at.exception
    measured, roofline = chart_specs(at)
    tc = list(TC_METHODS.values())
    assert set(tc) <= {t["name"] for t in measured["data"]}
    (table,) = at.dataframe
    assert list(table.value["method"]) == [FLASH, NAIVE, *tc]
    assert list(table.value["status"]) == ["ok"] * 4
    errors = dict(zip(table.value["method"], table.value["max_err"], strict=True))
    assert errors[FLASH] < 1e-5 < errors[tc[0]] < errors[tc[1]]  # float32 < fp16 < bf16
    (caption,) = [c.value for c in at.caption if c.value.startswith("flash (tensor cores")]
    assert "kernels/flash_attention_tc.cu" in caption and "blocks 128 x 64" in caption
    assert "flash, tensor cores (float16/bfloat16)" in {t["name"] for t in roofline["data"]}


def test_navigation_lists_the_gpu_page():
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60).run()
    assert not at.exception
    assert any(p.get("url_pathname") == "gpu" for p in at._registered_pages.values())


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
def test_on_hopper_the_tensor_core_peak_is_called_a_bound_not_a_target(page):
    why = roofline_text(page, "H100")
    assert "989.5 TFLOP/s dense" in why
    assert "only the warpgroup instruction (wgmma) reaches that peak" in why
