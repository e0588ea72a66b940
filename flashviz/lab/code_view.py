"""The Python inner step and the CUDA kernel, cut into the phases of one FA2 step.

Both sources mark every phase with a whole-line comment, ``# phase:<name>`` in
``flashviz/core/inner_step.py`` and ``// phase:<name>`` in ``kernels/flash_attention.cu``. The
markers are read from the files at every call, so highlighting follows the code as it
changes; nothing here knows a line number.

**A phase in one source only** (``KERNEL_ONLY``): the kernel's ``reduce``, the sum of the
threads' shares of a row's l_i, has no Python counterpart (NumPy holds whole rows, so its
l_i is the row's sum all along). The kernel marks it, the Python source must not, and
``highlight`` lights nothing in the Python source for it.

**Span of a phase** (``phase_spans``): from its marker line to the last line before the
first of

1. the next marker (any phase);
2. a blank line: a phase is the paragraph its marker opens;
3. a line indented less than the marker: the end of the enclosing block (the next ``def``
   or a dedent in Python, a closing ``}`` in CUDA, so a phase never leaves its function or
   the kernel body). Lines starting with ``#`` (C preprocessor lines such as
   ``#pragma unroll`` at column 0, Python comments) never end a span this way;
4. the end of the text.

Trailing lines that start with ``#`` are not part of the span. Line numbers are 1-based
and inclusive, counted in the text given.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flashviz.core import inner_step
from flashviz.core.kernel_files import KERNEL_NAME, KERNEL_PATH, REPO_ROOT

PHASES: tuple[str, ...] = (
    "init",  # m_i = -inf, l_i = 0, o_i = 0
    "scores",  # s_ij = tau q_i k_j^T, masked
    "max",  # m_new = max(m_i, rowmax(s_ij))
    "exp",  # p_ij = exp(s_ij - m_new)
    "alpha",  # alpha = exp(m_i - m_new)
    "sum",  # l_i = alpha l_i + rowsum(p_ij)
    "accumulate",  # o_i = diag(alpha) o_i + p_ij v_j
    "reduce",  # l_i = sum over the row's threads of l_part (kernel only)
    "normalize",  # o_i = diag(l_i)^-1 o_i
    "lse",  # L_i = m_i + log(l_i)
)
KERNEL_ONLY: tuple[str, ...] = ("reduce",)  # marked in the kernel, not in Python
# The phases each step kind of flashviz.core.trace runs, in order.
STEP_PHASES: dict[str, tuple[str, ...]] = {
    "load_q": PHASES[:1],
    "tile": PHASES[1:7],
    "write": PHASES[7:],
}
PYTHON_FUNCTIONS = ("initial_state", "attn_fwd_inner", "online_update", "finalize")  # run order


class MarkerError(ValueError):
    """A phase marker is missing, repeated, unknown, or marks no code."""


@dataclass(frozen=True)
class Source:
    """Code as shown: its lines and, for each, its line number in the file."""

    path: str  # relative to the repository, e.g. "flashviz/core/inner_step.py"
    text: str
    line_numbers: tuple[int | None, ...]  # file line of each shown line (None: a separator)
    comment_prefix: str  # "#" or "//"

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def _marker_re(comment_prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(comment_prefix)}\s*phase:(\w+)")


def markers(source_text: str, comment_prefix: str) -> list[tuple[str, int]]:
    """Every ``<prefix> phase:<name>`` line as (name, 1-based line), in text order."""
    pattern = _marker_re(comment_prefix)
    return [
        (m.group(1), n)
        for n, line in enumerate(source_text.splitlines(), 1)
        if (m := pattern.match(line))
    ]


def phases_in(comment_prefix: str) -> tuple[str, ...]:
    """The phases a source marks, in order: all of PHASES in CUDA (``//``), all but
    KERNEL_ONLY in Python (``#``)."""
    if comment_prefix == "//":
        return PHASES
    return tuple(p for p in PHASES if p not in KERNEL_ONLY)


def check_markers(
    source_text: str, comment_prefix: str, expected: tuple[str, ...] | None = None
) -> list[tuple[str, int]]:
    """``markers``, after checking each phase of ``expected`` (default
    ``phases_in(comment_prefix)``, the forward's) is marked exactly once and no other is.

    Raises MarkerError naming every missing, repeated or unknown phase.
    """
    found = markers(source_text, comment_prefix)
    names = [name for name, _ in found]
    expected = phases_in(comment_prefix) if expected is None else expected
    problems = []
    if missing := [p for p in expected if p not in names]:
        problems.append(f"no marker for {', '.join(missing)}")
    if repeated := sorted({p for p in names if names.count(p) > 1}):
        problems.append(f"more than one marker for {', '.join(repeated)}")
    if unknown := [p for p in names if p not in expected]:
        problems.append(f"unknown phase {', '.join(unknown)} (phases: {', '.join(expected)})")
    if problems:
        raise MarkerError(f"'{comment_prefix} phase:<name>' markers: " + "; ".join(problems))
    return found


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def phase_spans(
    source_text: str, comment_prefix: str, expected: tuple[str, ...] | None = None
) -> dict[str, tuple[int, int]]:
    """(first line, last line) of each phase, 1-based and inclusive (rule: module docstring).
    ``expected``: the phases the source must mark (``check_markers``).

    Raises MarkerError if a phase is not marked exactly once or its marker opens no code.
    """
    lines = source_text.splitlines()
    found = check_markers(source_text, comment_prefix, expected)
    marker_lines = {n for _, n in found}
    spans = {}
    for name, start in found:
        indent, last = _indent(lines[start - 1]), start
        for n in range(start + 1, len(lines) + 1):
            line = lines[n - 1]
            if n in marker_lines or not line.strip():
                break
            if line.lstrip().startswith("#"):
                continue
            if _indent(line) < indent:
                break
            last = n
        if last == start:
            raise MarkerError(f"'{comment_prefix} phase:{name}' (line {start}) marks no code")
        spans[name] = (start, last)
    return spans


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path.name


def _shown(path: Path, ranges: list[tuple[int, int]], comment_prefix: str) -> Source:
    """The file's lines in ``ranges`` (1-based, inclusive), one blank line between ranges."""
    file_lines = path.read_text().splitlines()
    shown: list[str] = []
    numbers: list[int | None] = []
    for first, last in ranges:
        if shown:
            shown.append("")
            numbers.append(None)
        shown.extend(file_lines[first - 1 : last])
        numbers.extend(range(first, last + 1))
    return Source(_relative(path), "\n".join(shown), tuple(numbers), comment_prefix)


def function_code(path: Path, names: Sequence[str]) -> Source:
    """The module-level functions ``names`` of the Python file ``path``, in that order
    (decorators included), read from the file now."""
    tree = ast.parse(path.read_text())
    defs = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    if missing := [name for name in names if name not in defs]:
        raise MarkerError(f"{_relative(path)} has no function {', '.join(missing)}")
    ranges = []
    for name in names:
        node = defs[name]
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        ranges.append((first, node.end_lineno or node.lineno))
    return _shown(path, ranges, "#")


def inner_step_code(path: Path | None = None) -> Source:
    """initial_state, attn_fwd_inner, online_update and finalize of
    flashviz/core/inner_step.py, in the order they run.

    Read from the file now (``path`` defaults to flashviz/core/inner_step.py), so the
    markers, in PHASES order, match the kernel's.
    """
    return function_code(Path(inner_step.__file__) if path is None else path, PYTHON_FUNCTIONS)


def kernel_range(text: str, kernel: str = KERNEL_NAME) -> tuple[int, int]:
    """1-based (first, last) line of the function ``kernel`` (default: the float32 kernel's)
    in a .cu text: its declaration to its closing brace."""
    lines = text.splitlines()
    code = [line.split("//", 1)[0] for line in lines]  # braces in comments do not count
    name = re.compile(rf"\b{kernel}\s*\(")
    start = next((n for n, line in enumerate(code) if name.search(line)), None)
    if start is None:
        raise MarkerError(f"no kernel {kernel} in the source")
    while start > 0 and code[start - 1].strip():  # `extern "C" __global__ ...` above the name
        start -= 1
    depth, opened = 0, False
    for n in range(start, len(code)):
        depth += code[n].count("{") - code[n].count("}")
        opened = opened or "{" in code[n]
        if opened and depth == 0:
            return start + 1, n + 1
    raise MarkerError(f"the body of {kernel} is not closed")


def kernel_code(path: Path | None = None) -> Source:
    """The kernel ``flash_attention_fwd`` (declaration and body), read from the .cu now."""
    path = KERNEL_PATH if path is None else path
    return _shown(path, [kernel_range(path.read_text())], "//")


def phases_of(
    step_kind: str,
    phase: str | None = None,
    step_phases: dict[str, tuple[str, ...]] | None = None,
) -> tuple[str, ...]:
    """The phases a step of ``step_kind`` runs, or just ``phase`` (one of them).
    ``step_phases``: step kind -> its phases (default ``STEP_PHASES``, the forward's)."""
    table = STEP_PHASES if step_phases is None else step_phases
    if step_kind not in table:
        raise ValueError(f"step_kind must be one of {', '.join(table)}, got {step_kind!r}")
    if phase is None:
        return table[step_kind]
    if phase not in table[step_kind]:
        raise ValueError(
            f"phase must be one of {', '.join(table[step_kind]) or 'none'} for a {step_kind} "
            f"step, got {phase!r}"
        )
    return (phase,)


def highlight(source: Source, step_kind: str, phase: str | None = None) -> list[tuple[int, int]]:
    """Shown-line ranges (1-based, inclusive, sorted, touching ones merged) to highlight.

    A phase the source does not mark (``KERNEL_ONLY`` in Python) lights nothing there.
    """
    return phase_ranges(source, phases_of(step_kind, phase))


def phase_ranges(
    source: Source, phases: Sequence[str], expected: tuple[str, ...] | None = None
) -> list[tuple[int, int]]:
    """Shown-line ranges (1-based, inclusive, sorted, touching ones merged) of ``phases``
    in ``source``, which marks exactly ``expected`` (default: the forward's phases); a
    phase it does not mark lights nothing."""
    spans = phase_spans(source.text, source.comment_prefix, expected)
    merged: list[tuple[int, int]] = []
    for first, last in sorted(spans[p] for p in phases if p in spans):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged
