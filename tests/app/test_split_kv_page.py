"""The split-KV page in AppTest: defaults, every control, the step buttons, links, invalid
inputs give a message (not a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from flashviz.app.pages.split_kv import DEFAULTS, SIZES
from flashviz.lab.split_kv import (
    GPUS,
    fa2_work,
    merge_steps,
    run_split_kv,
    schedule,
    split_work,
    utilisation,
)
from tests.support import APP_SCRIPT, decode, spec

ROOT = Path(__file__).resolve().parents[2]
PAGE = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + (
    "from flashviz.app.pages import split_kv\nsplit_kv.render()\n"
)
CHARTS = ("splitkv_sm", "splitkv_lanes", "splitkv_merge_chart", "splitkv_util")


def open_page(**params: object) -> AppTest:
    at = AppTest.from_string(PAGE, default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return at.run()


@pytest.fixture
def page() -> AppTest:
    return open_page()


def values(at: AppTest) -> dict[str, object]:
    return {key: at.session_state[key] for key in DEFAULTS}


def chart_titles(at: AppTest) -> list[str]:
    return [spec(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def table(at: AppTest, column: str):
    """The one table with this column."""
    (df,) = [t.value for t in at.dataframe if column in t.value.columns]
    return df


def check_page(at: AppTest) -> None:
    """No exception or error; every section's numbers are the lesson's for these inputs."""
    assert not at.exception and not at.error, [e.value for e in at.error]
    v = values(at)
    n_q, n_k, d, splits, block_kv, heads, seed = (int(v[f"splitkv_{n}"]) for n in SIZES)
    causal, gpu, row = bool(v["splitkv_causal"]), str(v["splitkv_gpu"]), int(v["splitkv_row"])
    run = run_split_kv(n_q, n_k, d, splits, block_kv, causal, seed)
    sms = GPUS[gpu]
    assert len(at.get("plotly_chart")) == 4
    titles = chart_titles(at)
    assert titles[0] == f"Thread blocks on the {sms} SMs of the {gpu} (colour: wave)"
    sm = spec(at.get("plotly_chart")[0].proto.spec)
    kv = schedule(split_work(n_q, n_k, block_kv, splits, run.offset, heads), sms)
    ran = [s for s in kv if s.stop > s.start]
    assert decode(sm["data"][1]["y"]).tolist() == [s.sm for s in ran]
    fa2 = utilisation(fa2_work(n_q, n_k, block_kv, run.offset, heads), sms)
    assert sm["layout"]["annotations"][0]["text"].endswith(f"{fa2:.0%} busy")
    splits_table = table(at, "tiles computed")
    assert splits_table["split s"].tolist() == list(range(splits))
    assert splits_table["tiles computed"].tolist() == run.work
    step = int(v["splitkv_step"])
    lanes = table(at, "tiles done")
    assert lanes["tiles done"].tolist() == [min(step, w) for w in run.work]  # the slider's
    steps = merge_steps(run, row)
    k = int(v["splitkv_merge"])
    assert titles[2] == f"The merge, split by split: step {k} merges split {k}"
    assert f"{steps[k].lse:.6g}" in at.latex[0].value or steps[k].lse == float("-inf")
    merge_table = table(at, "alpha_s")
    assert table(at, "SMs")["SMs"].tolist() == list(GPUS.values())
    assert merge_table["step"].tolist() == list(range(splits))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["max |o - o_ref|"] == f"{run.max_err_o:.2e}"
    assert metrics["max |lse - lse_ref|"] == f"{run.max_err_lse:.2e}"
    assert metrics["verdict"] == "matches" and at.success


def test_defaults_are_a_decoding_step(page) -> None:
    check_page(page)
    v = values(page)
    assert v["splitkv_n_q"] == 1 and v["splitkv_n_k"] >= 1000 and v["splitkv_splits"] > 1
    assert [s.value for s in page.subheader][:5] == [
        "1. The keys split across the SMs",
        "2. Each split's online softmax, in parallel lanes",
        "3. The merge, split by split",
        "4. SM utilisation: FA2 vs split-KV",
        "5. Correctness against attention_reference",
    ]
    assert not page.get("slider") or all(s.key != "splitkv_row" for s in page.slider)
    assert dict(page.query_params)["splitkv_splits"] == str(DEFAULTS["splitkv_splits"])


@pytest.mark.parametrize(
    ("name", "value"),
    [("n_q", 4), ("n_k", 777), ("d", 16), ("splits", 30), ("block_kv", 50), ("heads", 9),
     ("seed", 5)],
)  # fmt: skip
def test_every_number_input_reruns_and_goes_into_the_link(page, name, value) -> None:
    page.number_input(key=f"splitkv_{name}").set_value(value).run()
    assert page.session_state[f"splitkv_{name}"] == value
    assert page.query_params[f"splitkv_{name}"] == str(value)
    check_page(page)


@pytest.mark.parametrize("gpu", list(GPUS))
def test_every_gpu(page, gpu) -> None:
    page.selectbox(key="splitkv_gpu").set_value(gpu).run()
    check_page(page)
    assert f"{GPUS[gpu]} SMs" in chart_titles(page)[0]


def test_causal_switch(page) -> None:
    page.number_input(key="splitkv_n_q").set_value(8).run()
    page.number_input(key="splitkv_n_k").set_value(20).run()
    page.number_input(key="splitkv_block_kv").set_value(4).run()
    for causal in (False, True):
        page.checkbox(key="splitkv_causal").set_value(causal).run()
        check_page(page)
        assert page.query_params["splitkv_causal"] == str(causal).lower()


def test_the_row_slider_appears_with_several_rows_and_picks_the_row(page) -> None:
    page.number_input(key="splitkv_n_q").set_value(3).run()
    page.slider(key="splitkv_row").set_value(2).run()
    check_page(page)
    run = run_split_kv(3, 3000, 64, 8, 128, True, 0)
    assert f"{merge_steps(run, 2)[0].lse_s:.6g}" in page.latex[0].value
    page.number_input(key="splitkv_n_q").set_value(1).run()  # the row is clamped
    assert page.session_state["splitkv_row"] == 0
    check_page(page)


@pytest.mark.parametrize("prefix", ["splitkv_step_", "splitkv_merge_"])
def test_step_buttons(page, prefix) -> None:
    key = prefix.rstrip("_")
    page.button(key=f"{prefix}last").click().run()
    last = page.session_state[key]
    assert last > 0
    check_page(page)
    page.button(key=f"{prefix}prev").click().run()
    assert page.session_state[key] == last - 1
    page.button(key=f"{prefix}first").click().run()
    page.button(key=f"{prefix}next").click().run()
    assert page.session_state[key] == 1 and page.query_params[key] == "1"
    check_page(page)
    page.slider(key=key).set_value(last).run()
    check_page(page)


def test_the_last_merge_step_gives_the_result(page) -> None:
    page.button(key="splitkv_merge_last").click().run()
    run = run_split_kv(1, 3000, 64, 8, 128, True, 0)
    assert any(f"lse = {float(run.lse[0]):.6g}" in m.value for m in page.markdown)


def test_a_link_restores_the_view() -> None:
    at = open_page(splitkv_n_q=2, splitkv_n_k=500, splitkv_splits=5, splitkv_gpu="T4",
                   splitkv_causal=False, splitkv_row=1, splitkv_merge=3)  # fmt: skip
    v = values(at)
    assert (v["splitkv_n_q"], v["splitkv_n_k"], v["splitkv_splits"]) == (2, 500, 5)
    assert (v["splitkv_gpu"], v["splitkv_causal"], v["splitkv_row"]) == ("T4", False, 1)
    assert v["splitkv_merge"] == 3
    check_page(at)


def test_a_bad_link_value_warns_and_keeps_the_default() -> None:
    at = open_page(splitkv_gpu="Z80", splitkv_n_k="many")
    shown = sorted(w.value.replace("\\", "") for w in at.warning)
    assert shown == [
        "Ignored URL parameter splitkv_gpu = Z80: expected one of " + ", ".join(GPUS) + ".",
        "Ignored URL parameter splitkv_n_k = many: expected a whole number.",
    ]
    assert values(at)["splitkv_gpu"] == DEFAULTS["splitkv_gpu"]
    check_page(at)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"n_q": 9}, "`n_q` must be between 1 and 8, got 9."),
        ({"n_q": 0}, "`n_q` must be between 1 and 8, got 0."),
        ({"n_k": 0}, "`n_k` must be between 1 and 8192"),
        ({"d": 0}, "`head_dim` must be between 1 and 256"),
        ({"splits": 0}, "`num_splits` must be between 1 and 512"),
        ({"block_kv": 0}, "`block_kv` must be at least 1"),
        ({"heads": 0}, "`heads` must be between 1 and 32"),
        ({"seed": -2}, "`seed` must be a non-negative integer"),
        ({"n_k": 8000, "block_kv": 1}, "K/V tiles, more than the 2048"),
        ({"heads": 32, "splits": 500}, "thread blocks, more than the 4096"),
    ],
)
def test_invalid_input_gives_a_message_not_a_traceback(page, change, fragment) -> None:
    for name, value in change.items():
        page.number_input(key=f"splitkv_{name}").set_value(value)
    page.run()
    assert not page.exception
    assert any(fragment in e.value for e in page.error), [e.value for e in page.error]
    assert len(page.get("plotly_chart")) == 0


def test_a_fixed_input_recovers(page) -> None:
    page.number_input(key="splitkv_splits").set_value(0).run()
    assert page.error
    page.number_input(key="splitkv_splits").set_value(3).run()
    check_page(page)


def test_navigation_lists_the_split_kv_page() -> None:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60).run()
    assert not at.exception
    assert any(p.get("url_pathname") == "split_kv" for p in at._registered_pages.values())
