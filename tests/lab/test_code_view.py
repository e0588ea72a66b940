"""Phase markers in the Python inner step and the CUDA kernel, and the spans cut from them.

Every phase must be marked exactly once in each file that has it (the kernel-only
``reduce`` in the kernel alone), in the same order, and its span must hold the statement
that computes it. Each check is also run on mutated copies of the
sources (a marker removed, repeated, renamed, a blank line inserted) and must fail there.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flashviz.core import inner_step
from flashviz.core.kernel_files import KERNEL_PATH
from flashviz.lab.code_view import (
    KERNEL_ONLY,
    PHASES,
    PYTHON_FUNCTIONS,
    STEP_PHASES,
    MarkerError,
    Source,
    check_markers,
    highlight,
    inner_step_code,
    kernel_code,
    markers,
    phase_spans,
    phases_in,
    phases_of,
)

INNER_STEP_PATH = Path(inner_step.__file__)
PY, CU = inner_step_code(), kernel_code()
SOURCES = {"python": PY, "cuda": CU}
# (language, phase) for every phase a source marks
MARKED = [(lang, p) for lang, src in SOURCES.items() for p in phases_in(src.comment_prefix)]

# The statement that computes each phase's quantity: it must lie inside the phase's span
# (None: the source has no such phase).
DEFINING = {
    "init": (r"\bm_i = np\.full\(", r"\bm_i\[a\] = NEG_INF"),
    "scores": (r"\bs_ij = \(q_i @", r"\bs_ij\[a\]\[b\] \+= q_x \* k_x"),
    "max": (r"\bm_max = np\.maximum\(m_i", r"\bm_new\[a\] = fmaxf\(m_new\[a\]"),
    "exp": (r"\bp_ij = hooks\.exp\(s_ij", r"= expf\(s_ij\[a\]\[b\]"),
    "alpha": (r"\balpha = hooks\.exp\(m_i", r"\balpha\[a\] = expf\(m_i\[a\]"),
    "sum": (r"\bl_new = alpha \* l_i", r"\bl_part\[a\] = alpha\[a\] \* l_part\[a\]"),
    "accumulate": (r"\bo_rescaled = alpha\[\.\.\., None\] \* o_i", r"\bo_i\[a\]\[b\] \+= p \*"),
    "reduce": (None, r"\bl_i\[a\] \+= row_part\[row0 \+ a\]\[t\]"),
    "normalize": (r"\bo = o_i / ", r"= o_i\[a\]\[b\] / l_safe"),
    "lse": (r"\blse = m_i \+ np\.log\(l_i\)", r"\blse\[row\] = m_i\[a\] \+ logf"),
}


def _line_of(source: Source, pattern: str) -> int:
    hits = [n for n, line in enumerate(source.lines, 1) if re.search(pattern, line)]
    assert len(hits) == 1, f"{pattern!r} found on shown lines {hits} of {source.path}"
    return hits[0]


def _without_line(text: str, n: int) -> str:
    lines = text.splitlines()
    return "\n".join(lines[: n - 1] + lines[n:])


def _uncovered(source: Source) -> list[str]:
    """Code lines of the shown Python functions, from each one's first marker on, that lie
    in no span (every line of the inner step's functions after a marker belongs to a phase)."""
    spans = phase_spans(source.text, source.comment_prefix)
    covered = {n for a, b in spans.values() for n in range(a, b + 1)}
    marked = {n for _, n in markers(source.text, source.comment_prefix)}
    out, inside = [], False
    for n, line in enumerate(source.lines, 1):
        inside = (inside or n in marked) and not line.startswith("def ")
        if inside and line.strip() and n not in covered:
            out.append(line)
    return out


@pytest.mark.parametrize(
    ("path", "prefix"), [(INNER_STEP_PATH, "#"), (KERNEL_PATH, "//")], ids=["python", "cuda"]
)
def test_every_phase_is_marked_exactly_once_in_each_file(path, prefix):
    names = [name for name, _ in markers(path.read_text(), prefix)]
    assert sorted(names) == sorted(phases_in(prefix))
    check_markers(path.read_text(), prefix)


def test_markers_are_in_the_same_order_in_both_sources():
    for source in SOURCES.values():
        names = [name for name, _ in markers(source.text, source.comment_prefix)]
        assert names == list(phases_in(source.comment_prefix)), source.path


def test_only_the_kernel_only_phases_are_missing_from_python():
    assert phases_in("//") == PHASES
    assert [p for p in PHASES if p not in phases_in("#")] == list(KERNEL_ONLY) == ["reduce"]


def test_a_kernel_only_marker_in_python_fails_the_check():
    n = dict(markers(PY.text, "#"))["normalize"]
    lines = PY.lines
    indent = lines[n - 1][: len(lines[n - 1]) - len(lines[n - 1].lstrip())]
    added = "\n".join([*lines[: n - 1], f"{indent}# phase:reduce  l_i", "x = 0", *lines[n - 1 :]])
    with pytest.raises(MarkerError, match="unknown phase reduce"):
        phase_spans(added, "#")


def test_the_step_kinds_run_every_phase_once_in_order():
    assert sum(STEP_PHASES.values(), ()) == PHASES


@pytest.mark.parametrize("lang", SOURCES)
def test_spans_start_at_their_marker_hold_code_and_do_not_overlap(lang):
    source = SOURCES[lang]
    spans = phase_spans(source.text, source.comment_prefix)
    phases = phases_in(source.comment_prefix)
    assert list(spans) == list(phases)
    for name, n in markers(source.text, source.comment_prefix):
        assert spans[name][0] == n
    ordered = [spans[p] for p in phases]
    for (a, b), (c, _) in itertools.pairwise(ordered):
        assert a < b < c  # a code line after each marker; each span ends before the next
    assert ordered[-1][1] <= len(source.lines)
    for _, b in ordered:  # spans end on code, not on blank or `#pragma` lines
        assert source.lines[b - 1].strip() and not source.lines[b - 1].lstrip().startswith("#")


@pytest.mark.parametrize(("lang", "phase"), MARKED)
def test_each_span_holds_the_statement_of_its_phase(lang, phase):
    source = SOURCES[lang]
    spans = phase_spans(source.text, source.comment_prefix)
    n = _line_of(source, DEFINING[phase][lang == "cuda"])
    assert [p for p, (a, b) in spans.items() if a <= n <= b] == [phase]


def test_every_line_of_the_python_phases_belongs_to_one():
    assert _uncovered(PY) == []


def test_a_blank_line_inside_a_python_phase_leaves_code_uncovered():
    n = _line_of(PY, DEFINING["accumulate"][0])  # the blank goes after it: the marker
    lines = PY.lines  # keeps this line, the lines after the blank are left out
    mutated = "\n".join([*lines[:n], "", *lines[n:]])
    source = Source(PY.path, mutated, (*PY.line_numbers, None), "#")
    assert lines[n] in _uncovered(source)


def test_the_kernel_body_ends_every_cuda_span():
    spans = phase_spans(CU.text, "//")
    assert CU.lines[0].startswith('extern "C" __global__') and CU.lines[-1] == "}"
    assert max(b for _, b in spans.values()) < len(CU.lines)
    # lse sits inside the row loop: its span ends before the loop's closing brace
    a, b = spans["lse"]
    assert CU.lines[b].strip() == "}" and b - a == 1


@pytest.mark.parametrize("lang", SOURCES)
def test_shown_lines_are_the_files_lines(lang):
    source = SOURCES[lang]
    file_lines = (INNER_STEP_PATH if lang == "python" else KERNEL_PATH).read_text().splitlines()
    assert len(source.lines) == len(source.line_numbers)
    for line, n in zip(source.lines, source.line_numbers, strict=True):
        assert line == ("" if n is None else file_lines[n - 1])


def test_the_python_source_is_the_three_functions_in_execution_order():
    defs = [line.split("(")[0][4:] for line in PY.lines if line.startswith("def ")]
    assert defs == list(PYTHON_FUNCTIONS)


@pytest.mark.parametrize(("lang", "phase"), MARKED)
def test_removing_a_marker_fails_the_check(lang, phase):
    source = SOURCES[lang]
    n = dict(markers(source.text, source.comment_prefix))[phase]
    mutated = _without_line(source.text, n)
    with pytest.raises(MarkerError, match=rf"no marker for {phase}\b"):
        phase_spans(mutated, source.comment_prefix)


@pytest.mark.parametrize("lang", SOURCES)
def test_a_repeated_or_unknown_marker_fails_the_check(lang):
    source = SOURCES[lang]
    prefix = source.comment_prefix
    n = dict(markers(source.text, prefix))["alpha"]
    lines = source.lines
    repeated = "\n".join([*lines[:n], lines[n - 1], *lines[n:]])
    with pytest.raises(MarkerError, match="more than one marker for alpha"):
        phase_spans(repeated, prefix)
    renamed = source.text.replace(f"{prefix} phase:alpha", f"{prefix} phase:alfa")
    with pytest.raises(MarkerError, match="unknown phase alfa"):
        phase_spans(renamed, prefix)


@pytest.mark.parametrize("lang", SOURCES)
def test_a_marker_with_no_code_fails_the_check(lang):
    source = SOURCES[lang]
    a, b = phase_spans(source.text, source.comment_prefix)["alpha"]
    lines = source.lines
    mutated = "\n".join(lines[:a] + lines[b:])  # the marker stays, its code goes
    with pytest.raises(MarkerError, match=r"phase:alpha' \(line \d+\) marks no code"):
        phase_spans(mutated, source.comment_prefix)


def test_a_missing_function_or_kernel_is_reported(tmp_path):
    py = tmp_path / "inner_step.py"
    py.write_text(INNER_STEP_PATH.read_text().replace("def finalize(", "def finalise("))
    with pytest.raises(MarkerError, match="no function finalize"):
        inner_step_code(py)
    cu = tmp_path / "k.cu"
    cu.write_text(KERNEL_PATH.read_text().replace("flash_attention_fwd(", "fwd("))
    with pytest.raises(MarkerError, match="no kernel flash_attention_fwd"):
        kernel_code(cu)


def test_spans_follow_an_edit_of_the_file(tmp_path):
    """No line number is remembered: code added to a phase joins its span."""
    py = tmp_path / "inner_step.py"
    text = INNER_STEP_PATH.read_text()
    anchor = re.search(r"\n( +)# phase:exp", text)
    added = f"\n{anchor.group(1)}s_ij = s_ij + 0  # (..., bq, bkv) an added line"
    py.write_text(text[: anchor.start()] + added + text[anchor.start() :])
    before, after = phase_spans(PY.text, "#"), phase_spans(inner_step_code(py).text, "#")
    assert after["max"] == (before["max"][0], before["max"][1] + 1)
    assert after["lse"] == tuple(n + 1 for n in before["lse"])
    assert inner_step_code(py).lines[after["max"][1] - 1].endswith("an added line")


@given(
    order=st.permutations(PHASES),
    sizes=st.lists(st.integers(1, 4), min_size=len(PHASES), max_size=len(PHASES)),
    indents=st.lists(st.integers(0, 3), min_size=len(PHASES), max_size=len(PHASES)),
    gaps=st.lists(st.booleans(), min_size=len(PHASES), max_size=len(PHASES)),
    prefix=st.sampled_from(["#", "//"]),
)
def test_spans_of_generated_sources(order, sizes, indents, gaps, prefix):
    """Markers in any order, each followed by its code and closed by a blank line (then
    code of no phase) or by a dedent; `#` lines at column 0 inside do not end it."""
    order = [p for p in order if p in phases_in(prefix)]  # no kernel-only phase in Python
    lines, expected = [], {}
    for name, size, depth, gap in zip(order, sizes, indents, gaps, strict=False):
        pad = "    " * (depth + 1)
        start = len(lines) + 1
        lines.append(f"{pad}{prefix} phase:{name}  formula")
        for k in range(size):
            lines += ["#pragma unroll", f"{pad}x_{name}_{k} = 1"]
        expected[name] = (start, len(lines))
        if gap:
            lines += ["", f"{pad}no_phase_{name} = 0"]
        lines += ["#pragma unroll", "    " * depth + "end"]  # one level less: closes the block
    assert phase_spans("\n".join(lines), prefix) == expected


def test_load_q_shows_the_q_load_and_not_the_kv_loop():
    a, b = highlight(CU, "load_q")[0]
    assert CU.lines[b - 1].strip().startswith("load_tile<BLOCK_Q>(q_i,")
    assert not any("for (int p = 0, f = 0" in line for line in CU.lines[a - 1 : b])
    a, b = highlight(PY, "load_q")[0]
    assert PY.lines[b - 1].strip() == "return m_i, l_i, o_i"


def test_highlight_per_step_kind_and_phase():
    for source in SOURCES.values():
        spans = phase_spans(source.text, source.comment_prefix)
        assert highlight(source, "load_q") == [spans["init"]]
        assert highlight(source, "tile", "exp") == [spans["exp"]]
        tile = highlight(source, "tile")
        lit = {n for a, b in tile for n in range(a, b + 1)}
        assert lit == {n for p in STEP_PHASES["tile"] for n in range(spans[p][0], spans[p][1] + 1)}
        assert tile == sorted(tile)
    assert highlight(PY, "write") == [(phase_spans(PY.text, "#")["normalize"][0], len(PY.lines))]
    assert highlight(PY, "write", "reduce") == []  # kernel only: nothing lit in Python
    cu = phase_spans(CU.text, "//")
    assert highlight(CU, "write") == [cu["reduce"], (cu["normalize"][0], cu["lse"][1])]


def test_the_v_load_is_in_no_phase_and_the_reduction_is_its_own():
    """The V tile's load sits between max and exp, in neither; the cross-thread sum of l
    is in reduce, not in normalize; and each phase computes what the Python one does."""
    spans = phase_spans(CU.text, "//")
    load_v = _line_of(CU, r"load_tile<BLOCK_KV>\(kv_j, v,")
    assert spans["max"][1] < load_v < spans["exp"][0]
    assert not [p for p, (a, b) in spans.items() if a <= load_v <= b]
    a, b = spans["reduce"]
    assert any("__syncthreads()" in line for line in CU.lines[a - 1 : b])
    a, b = spans["normalize"]
    assert not any("row_part" in line for line in CU.lines[a - 1 : b])


def test_bad_step_kind_or_phase_is_refused():
    with pytest.raises(ValueError, match="step_kind must be one of load_q, tile, write"):
        phases_of("tiles")
    with pytest.raises(ValueError, match="phase must be one of reduce, normalize, lse for a"):
        phases_of("write", "exp")
    assert phases_of("tile") == STEP_PHASES["tile"]
