"""The online-softmax debugger page (AppTest) and its figure builders.

The page is driven by its ``dbg_`` keys: every source (each pattern, typed text, an
uploaded .npy), every bug switch, the step controls; its messages, tables and charts are
checked against ``flashviz.lab.bugzoo`` computed here.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from flashviz.app.pages.debugger import DEFAULTS, read_upload
from flashviz.app.widgets.safe_text import shown
from flashviz.figures.debugger import (
    CORRECT,
    estimate_figure,
    scores_figure,
    state_figure,
)
from flashviz.figures.style import CURRENT
from flashviz.lab.bugzoo import BUGS
from flashviz.lab.row_debugger import debug_row, first_bad_chunk, first_bite
from flashviz.lab.row_input import DEMO_PATTERN, MAX_ROW, ROW_PATTERNS, make_row, row_values
from tests.support import APP_SCRIPT, decode

ROOT = Path(__file__).resolve().parents[2]
PAGE = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + (
    "from flashviz.app.pages import debugger\ndebugger.render()\n"
)
NEG = -np.inf


@pytest.fixture
def app() -> AppTest:
    return AppTest.from_string(PAGE, default_timeout=60).run()


def charts(at: AppTest) -> dict[str, dict]:
    """The page's figures by title start: 'The row', 'State', 'Estimate'."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {s["layout"]["title"]["text"].split()[0]: s for s in specs}


def expected_runs(scores: np.ndarray, chunk: int, d: int, seed: int, bugs: list[str]) -> dict:
    values = row_values(scores.size, d, seed)
    return {
        bug: debug_row(scores, chunk, values, None if bug == CORRECT else bug)
        for bug in [CORRECT, *bugs]
    }


def default_row() -> np.ndarray:
    return make_row(
        DEFAULTS["dbg_pattern"], DEFAULTS["dbg_n"], DEFAULTS["dbg_chunk"], DEFAULTS["dbg_seed"]
    )


def npy(x: np.ndarray) -> bytes:
    f = io.BytesIO()
    np.save(f, x)
    return f.getvalue()


# The page ---------------------------------------------------------------------------------


def test_defaults_show_where_each_bug_bites_and_the_numbers(app: AppTest) -> None:
    assert not app.exception
    row = default_row()
    bugs = DEFAULTS["dbg_bugs"]
    runs = expected_runs(row, DEFAULTS["dbg_chunk"], 1, 0, bugs)
    errors = [e.value for e in app.error]
    assert len(errors) == len(bugs)
    for bug, text in zip(bugs, errors, strict=True):
        first = first_bad_chunk(runs[bug])
        assert first == 1  # "increasing": every bug of the default set bites at chunk 1
        assert f"**{BUGS[bug].title}** first bites at chunk 1 (keys 4-7)" in text
        assert first_bite(bug, row, 4).reason in text
    assert set(charts(app)) == {"The", "State", "Estimate"}
    tables = [t.value for t in app.dataframe]
    assert len(tables) == 1 + len(bugs)  # one tab per variant
    assert list(tables[0]["chunk"]) == [0]  # step 0: only the first chunk so far
    assert float(tables[0]["m"][0]) == pytest.approx(runs[CORRECT][0].m, rel=1e-5)


def test_stepping_moves_the_highlighted_chunk_and_grows_the_table(app: AppTest) -> None:
    row = default_row()
    last = -(-row.size // DEFAULTS["dbg_chunk"]) - 1
    app.button(key="dbg_next").click().run()
    assert app.slider(key="dbg_step").value == 1 and not app.exception
    app.button(key="dbg_last").click().run()
    assert app.slider(key="dbg_step").value == last
    app.button(key="dbg_next").click().run()  # stays at the last chunk
    assert app.slider(key="dbg_step").value == last
    app.button(key="dbg_prev").click().run()
    assert app.slider(key="dbg_step").value == last - 1
    app.slider(key="dbg_step").set_value(2).run()
    assert "chunk 2 (keys 8-11) is on chip" in charts(app)["The"]["layout"]["title"]["text"]
    runs = expected_runs(row, 4, 1, 0, DEFAULTS["dbg_bugs"])
    for table, steps in zip(app.dataframe, runs.values(), strict=True):
        assert list(table.value["chunk"]) == [0, 1, 2]
        got = table.value["max |error|"].astype(float).to_numpy()
        np.testing.assert_allclose(got, [s.error for s in steps[:3]], rtol=1e-2, atol=1e-300)
    app.button(key="dbg_first").click().run()
    assert app.slider(key="dbg_step").value == 0 and not app.exception


@pytest.mark.parametrize("bug", list(BUGS))
def test_every_bug_switch_says_where_it_bites_or_loads_a_row_where_it_does(
    app: AppTest, bug: str
) -> None:
    app.multiselect(key="dbg_bugs").set_value([bug]).run()
    assert not app.exception
    assert any(BUGS[bug].explanation in c.value for c in app.caption)
    row = default_row()
    first = first_bad_chunk(expected_runs(row, 4, 1, 0, [bug])[bug])
    if first is None:
        (ok,) = app.success
        assert "does not bite on this row" in ok.value and BUGS[bug].bites_when in ok.value
        app.button(key=f"dbg_demo_{bug}").click().run()
        assert not app.exception
        assert app.selectbox(key="dbg_pattern").value == DEMO_PATTERN[bug]
        row = make_row(DEMO_PATTERN[bug], DEFAULTS["dbg_n"], 4, 0)
        first = first_bad_chunk(expected_runs(row, 4, 1, 0, [bug])[bug])
        assert first is not None and app.slider(key="dbg_step").value == first
    (err,) = app.error
    assert f"first bites at chunk {first}" in err.value
    assert len(app.dataframe) == 2  # correct and the bug


def test_go_to_the_chunk_where_a_bug_bites(app: AppTest) -> None:
    app.button(key="dbg_goto_no_rescale_o").click().run()
    assert app.slider(key="dbg_step").value == 1
    assert "bites at chunk 1" in json.dumps(charts(app)["Estimate"]["layout"]["annotations"])


def test_no_bug_shows_the_correct_run_only(app: AppTest) -> None:
    app.multiselect(key="dbg_bugs").set_value([]).run()
    assert not app.exception and not app.error and not app.success
    assert len(app.dataframe) == 1
    app.button(key="dbg_last").click().run()
    (table,) = app.dataframe
    assert not table.value["off"].str.contains("x").any()  # the correct update is exact


@pytest.mark.parametrize("pattern", list(ROW_PATTERNS))
def test_every_pattern_renders(app: AppTest, pattern: str) -> None:
    app.multiselect(key="dbg_bugs").set_value(list(BUGS))
    app.selectbox(key="dbg_pattern").set_value(pattern).run()
    app.button(key="dbg_last").click().run()
    assert not app.exception
    row = make_row(pattern, 24, 4, 0)
    runs = expected_runs(row, 4, 1, 0, list(BUGS))
    bitten = [b for b in BUGS if first_bad_chunk(runs[b]) is not None]
    assert len(app.error) == len(bitten) and len(app.success) == len(BUGS) - len(bitten)
    est = charts(app)["Estimate"]
    exact = next(t for t in est["data"] if t["name"].startswith("exact"))
    np.testing.assert_allclose(decode(exact["y"]), [s.exact[0] for s in runs[CORRECT]])


def test_pattern_length_chunk_and_seed_change_the_row(app: AppTest) -> None:
    app.number_input(key="dbg_n").set_value(37)
    app.number_input(key="dbg_chunk").set_value(5)
    app.number_input(key="dbg_seed").set_value(9).run()
    assert not app.exception
    app.button(key="dbg_last").click().run()
    assert app.slider(key="dbg_step").value == 7  # ceil(37 / 5) - 1
    bars = charts(app)["The"]["data"][0]
    np.testing.assert_allclose(
        decode(bars["customdata"])[:, 1], make_row("increasing", 37, 5, 9), rtol=1e-12
    )
    app.number_input(key="dbg_chunk").set_value(40).run()  # one chunk: no slider, step 0
    assert not app.exception and not app.slider and app.session_state["dbg_step"] == 0


def test_d_above_one_shows_a_component_picker(app: AppTest) -> None:
    app.number_input(key="dbg_d").set_value(3).run()
    app.number_input(key="dbg_component").set_value(2).run()
    assert not app.exception
    assert "estimate o[2]" in app.dataframe[0].value.columns
    row = default_row()
    runs = expected_runs(row, 4, 3, 0, DEFAULTS["dbg_bugs"])
    assert float(app.dataframe[0].value["estimate o[2]"][0]) == pytest.approx(
        runs[CORRECT][0].estimate[2], rel=1e-5
    )
    app.number_input(key="dbg_d").set_value(1).run()  # the component follows d down
    assert not app.exception and "estimate o[0]" in app.dataframe[0].value.columns


def test_typed_row_is_debugged(app: AppTest) -> None:
    app.radio(key="dbg_source").set_value("typed")
    app.multiselect(key="dbg_bugs").set_value(["no_inf_guard", "mask_1e4"]).run()
    app.text_area(key="dbg_text").set_value("-inf, -inf, 1, 2, 3, 0.5").run()
    app.number_input(key="dbg_chunk").set_value(2).run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert "first bites at chunk 0" in errors[0] and "(-inf) - (-inf) = NaN" in errors[0]
    assert "first bites at chunk 0" in errors[1]


def test_typed_row_and_pattern_survive_a_switch_of_source(app: AppTest) -> None:
    app.number_input(key="dbg_n").set_value(30).run()
    app.radio(key="dbg_source").set_value("typed").run()
    app.text_area(key="dbg_text").set_value("3, 1, 2").run()
    app.radio(key="dbg_source").set_value("pattern").run()
    assert app.number_input(key="dbg_n").value == 30
    app.radio(key="dbg_source").set_value("typed").run()
    assert app.text_area(key="dbg_text").value == "3, 1, 2" and not app.exception


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the row is empty"),
        ("1, two, 3", "entry 2 ('two') is not a number"),
        ("1, nan", "entry 2 is NaN"),
        ("inf 1", "entry 1 is +inf"),
        ("1e999", "too large for float64"),
        (" ".join(["0"] * (MAX_ROW + 1)), f"at most {MAX_ROW} are allowed"),
    ],
    ids=["empty", "word", "nan", "inf", "overflow", "too long"],
)
def test_bad_typed_rows_say_why(app: AppTest, text: str, message: str) -> None:
    app.radio(key="dbg_source").set_value("typed").run()
    app.text_area(key="dbg_text").set_value(text).run()
    assert not app.exception
    (err,) = app.error
    assert message in shown(err.value)
    assert not app.get("plotly_chart")


def test_uploaded_row_is_debugged(app: AppTest) -> None:
    app.radio(key="dbg_source").set_value("upload").run()
    assert not app.exception and "Upload a .npy row" in app.info[0].value
    row = np.array([-2e4, -2e4 + 1, -2e4, NEG, 1.0, 0.0])
    app.multiselect(key="dbg_bugs").set_value(["mask_1e4", "mask_5e4"])
    app.get_by_key("dbg_upload").set_value(("row.npy", npy(row), "application/octet-stream"))
    app.run()
    app.number_input(key="dbg_chunk").set_value(2).run()
    assert not app.exception
    (err,) = app.error  # -1e4 bites where the masked key arrives; -5e4 is far enough below
    assert "-1e4 stands in for -inf** first bites at chunk 1" in err.value
    (ok,) = app.success
    assert "-5e4 stands in for -inf** does not bite" in ok.value
    np.testing.assert_allclose(
        decode(charts(app)["The"]["data"][0]["customdata"])[:, 1], row[row > NEG]
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (npy(np.ones((2, 3))), "must hold one score row of shape (n,)"),
        (npy(np.array([1.0, np.nan])), "NaN or +inf entries"),
        (b"not a numpy file", "is not a .npy file"),
        (npy(np.zeros(MAX_ROW + 1)), f"the debugger takes at most {MAX_ROW}"),
    ],
    ids=["2-D", "nan", "not npy", "too long"],
)
def test_bad_uploads_say_why(app: AppTest, data: bytes, message: str) -> None:
    app.radio(key="dbg_source").set_value("upload").run()
    app.get_by_key("dbg_upload").set_value(("bad.npy", data, "application/octet-stream"))
    app.run()
    assert not app.exception
    (err,) = app.error
    assert message in shown(err.value) and "bad.npy" in shown(err.value)


def test_read_upload_accepts_a_row_and_refuses_a_long_one() -> None:
    row = np.array([1.0, NEG, 3.0], dtype=np.float32)
    np.testing.assert_array_equal(read_upload(npy(row), "r.npy"), row.astype(np.float64))
    with pytest.raises(ValueError, match=f"holds {MAX_ROW + 1} scores"):
        read_upload(npy(np.zeros(MAX_ROW + 1)), "long.npy")


def test_navigation_lists_the_debugger_page() -> None:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60).run()
    assert not at.exception
    assert any(p.get("url_pathname") == "debugger" for p in at._registered_pages.values())


# The figure builders ----------------------------------------------------------------------


@pytest.fixture
def runs(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    row = make_row("masked start", 22, 3, seed=int(rng.integers(2**31)))
    return row, expected_runs(row, 3, 2, int(rng.integers(2**31)), list(BUGS))


@pytest.mark.parametrize("step", [0, 4, 7])
def test_figures_are_valid_plotly_and_show_chunks_up_to_the_step(runs, step: int) -> None:
    row, r = runs
    for fig in (
        scores_figure(row, r[CORRECT], step),
        state_figure(r, step),
        estimate_figure(r, step, component=1),
    ):
        go.Figure(fig.to_dict())  # validates every property
    est = estimate_figure(r, step, component=1).to_dict()
    for key, steps in r.items():
        label = "correct" if key == CORRECT else BUGS[key].title
        line = next(t for t in est["data"] if t["name"] == label)
        want = [s.estimate[1] if np.isfinite(s.estimate[1]) else np.nan for s in steps]
        want[step + 1 :] = [np.nan] * (len(steps) - step - 1)
        np.testing.assert_array_equal(decode(line["y"]), want)


def test_scores_figure_colours_the_current_chunk_and_crosses_masked_keys(runs) -> None:
    row, r = runs
    fig = scores_figure(row, r[CORRECT], 2).to_dict()
    bars, crosses, m_line = fig["data"]
    colours, x = np.array(bars["marker"]["color"]), decode(bars["x"])
    current = (x >= 6) & (x < 9)  # chunk 2 of 3 keys
    assert current.any() and (colours[current] == CURRENT).all()
    assert (colours[~current] != CURRENT).all()
    assert len(decode(crosses["x"])) == int(np.isneginf(row).sum())
    np.testing.assert_allclose(bars["base"] + decode(bars["y"]), row[row > NEG], atol=1e-12)
    m = decode(m_line["y"])
    assert [y for y in m if np.isfinite(y)] == [
        s.m for s in r[CORRECT][:3] for _ in (0, 1) if np.isfinite(s.m)
    ]


def test_estimate_figure_marks_the_first_bite_once_reached(runs) -> None:
    _, r = runs
    first = first_bad_chunk(r["no_inf_guard"])
    assert first == 0
    late = {CORRECT: r[CORRECT], "no_rescale_o": r["no_rescale_o"]}
    bite = first_bad_chunk(late["no_rescale_o"])
    for step in range(len(r[CORRECT])):
        text = json.dumps(estimate_figure(late, step).to_dict()["layout"]["annotations"])
        assert ("Forget to rescale O: bites at chunk" in text) == (
            bite is not None and bite <= step
        )
    err = next(
        t for t in estimate_figure(r, 0).to_dict()["data"]
        if t.get("xaxis") == "x2" and t["name"] == BUGS["no_inf_guard"].title
    )  # fmt: skip
    assert err["marker"]["symbol"][0] == "x"  # NaN is drawn at the top as a cross


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r, row: state_figure({}, 0), "runs must hold at least one variant"),
        (lambda r, row: state_figure({"typo": r[CORRECT]}, 0), "runs keys must be"),
        (lambda r, row: state_figure(r, 99), r"step must be an integer in \[0, 7\]"),
        (lambda r, row: estimate_figure(r, 0, component=2), r"component must be .* \[0, 1\]"),
        (
            lambda r, row: state_figure({CORRECT: r[CORRECT], "no_max": r["no_max"][:3]}, 0),
            "same chunks",
        ),
        (lambda r, row: scores_figure(row[:5], r[CORRECT], 0), "scores must be the row"),
    ],
)
def test_figure_builders_name_bad_arguments(runs, call, message) -> None:
    row, r = runs
    with pytest.raises(ValueError, match=message):
        call(r, row)


@pytest.mark.parametrize("bug", sorted(BUGS))
@pytest.mark.parametrize("n,chunk", [(1, 1), (24, 24)])
def test_demo_button_loads_a_row_where_the_bug_bites_even_from_a_tiny_row(
    app: AppTest, bug: str, n: int, chunk: int
) -> None:
    """Where the bug does not bite on the row shown, its button loads its demo row (at the
    demo's own size if this one is too small) and the page points at the chunk where it
    bites; where it does bite, the page says so and offers no button."""
    app.number_input(key="dbg_n").set_value(n).run()
    app.number_input(key="dbg_chunk").set_value(chunk).run()
    app.multiselect(key="dbg_bugs").set_value([bug]).run()
    row = make_row(DEFAULTS["dbg_pattern"], n, chunk, 0)
    steps = expected_runs(row, chunk, 1, 0, [bug])[bug]
    first = first_bad_chunk(steps)
    demo = [b for b in app.button if b.key == f"dbg_demo_{bug}"]
    assert len(demo) == (first is None)
    if first is None:
        (ok,) = app.success
        assert ok.value.startswith(f"**{BUGS[bug].title}** does not bite on this row")
        demo[0].click().run()
        assert not app.exception
        assert app.selectbox(key="dbg_pattern").value == DEMO_PATTERN[bug]
        n, chunk = app.session_state["dbg_n"], app.session_state["dbg_chunk"]
        row = make_row(DEMO_PATTERN[bug], n, chunk, 0)
        steps = expected_runs(row, chunk, 1, 0, [bug])[bug]
        first = first_bad_chunk(steps)
        assert first is not None and app.session_state["dbg_step"] == first
    cols = steps[first].cols
    (err,) = app.error
    assert err.value.startswith(
        f"**{BUGS[bug].title}** first bites at chunk {first} (keys {cols.start}-{cols.stop - 1})"
    )
