"""Inside the two CUDA kernels: who owns what, what shared memory holds, where they sync.

Pure functions of a build's ``#define`` values (``KernelConfig.defines`` of either kernel
of ``flashviz.gpu.launch_params``, passed in as a dict: the lab does not import the GPU
layer) and of the kernels' source text, read from ``kernels/`` at every call:

* ``ownership``: which thread (warp, lane, register) holds each entry of S_ij and O_i. The
  float32 kernel (``kernels/flash_attention.cu``): thread t owns ROWS_PER_THREAD consecutive
  rows from row0 = (t / THREADS_PER_ROW) * ROWS_PER_THREAD and the columns
  col0 + b * THREADS_PER_ROW, col0 = t % THREADS_PER_ROW. The tensor-core kernel
  (``kernels/flash_attention_tc.cu``): warp w owns rows 16w .. 16w+15; inside the warp the
  mma.sync m16n8k16 C-fragment layout of the PTX ISA: lane = 4 g + t owns rows g and g + 8
  of the warp's 16 and columns 2t, 2t + 1 of every 8-column n-tile (register slot
  2h + e: h = 0, 1 for rows g, g + 8; e = 0, 1 for the two columns).
  ``tests/gpu/test_inside_kernel_emulation.py`` checks these maps against the kernels' own
  index arithmetic (each thread writes its id where it would write o, on the CPU emulator).
* ``shared_buffers``: every ``__shared__`` array of the kernel, its shape evaluated from
  the declaration with the build's defines and the file's own ``#define`` lines, its bytes
  and what it holds.
* ``timeline``: the kernel body in program order: its ``// phase:`` markers, its
  ``__syncthreads()`` barriers, warp shuffles (``__shfl_xor_sync``), mma.sync calls and
  shared-memory loads, with the K/V loop marked.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flashviz.core.kernel_files import KERNEL_NAME, KERNEL_PATH, TC_KERNEL_NAME, TC_KERNEL_PATH
from flashviz.lab.code_view import kernel_range, markers

KINDS = ("float32", "tensor cores")
KERNELS: dict[str, tuple[Path, str]] = {
    "float32": (KERNEL_PATH, KERNEL_NAME),
    "tensor cores": (TC_KERNEL_PATH, TC_KERNEL_NAME),
}
MATRICES = ("S_ij", "O_i")
WARP = 32
TC_ROWS = 16  # rows of a warp (the m of mma.m16n8k16)
ELEMENT_BYTES = {"float": 4, "unsigned": 4}

HOLDS: dict[str, dict[str, str]] = {  # kernel -> shared array -> what it holds
    "float32": {
        "q_i": "Q tile q_i: the block's query rows, loaded once (float32, one pad float a row)",
        "kv_j": "K tile k_j for the scores, then V tile v_j in the same place for accumulate",
        "p_ij": "P~ = exp(s_ij - m_new) of the tile: each thread's columns, read back whole "
        "rows by every thread of the row for P~ V",
        "row_part": "one partial per thread and row: the row max (phase max), the row sum "
        "(phase reduce)",
    },
    "tensor cores": {
        "q_s": "Q tile: the block's query rows, two 16-bit values a 32-bit word, 4 pad words "
        "a row (A fragments of Q K^T)",
        "k_s": "K tile k_j, as q_s (B fragments of Q K^T: K^T read column by column)",
        "vt_s": "V tile v_j transposed: word (x, w) = (v[2w][x], v[2w+1][x]); B of P~ V",
    },
}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


# --- Ownership -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ownership:
    """Owner of each entry of one matrix of a query block: arrays of shape (rows, cols)."""

    kind: str
    matrix: str  # "S_ij" or "O_i"
    thread: np.ndarray  # threadIdx.x
    warp: np.ndarray
    lane: np.ndarray
    register: np.ndarray  # str: the thread's register holding the entry, e.g. "s[3][2]"

    @property
    def shape(self) -> tuple[int, int]:
        return self.thread.shape


def ownership(kind: str, build: Defines, matrix: str) -> Ownership:
    """Owners of S_ij (BLOCK_Q x BLOCK_KV) or O_i (BLOCK_Q x HEAD_DIM) in a build."""
    _check_kind(kind)
    defines = int_defines(build)
    if matrix not in MATRICES:
        raise ValueError(f"matrix must be one of {', '.join(MATRICES)}, got {matrix!r}")
    rows = defines["BLOCK_Q"]
    cols = defines["BLOCK_KV"] if matrix == "S_ij" else defines["HEAD_DIM"]
    r = np.arange(rows)[:, None]
    c = np.arange(cols)[None, :]
    if kind == "float32":
        per_row = defines["THREADS_PER_ROW"]
        rows_per_thread = rows * per_row // defines["NUM_THREADS"]
        thread = (r // rows_per_thread) * per_row + c % per_row
        a, b = np.broadcast_arrays(r % rows_per_thread, c // per_row)
        name = "s_ij" if matrix == "S_ij" else "o_i"
        register = np.char.add(np.char.add(f"{name}[", a.astype(str)), "][")
        register = np.char.add(np.char.add(register, b.astype(str)), "]")
    else:
        rr = r % TC_ROWS
        g, h = rr % 8, rr // 8
        n, t, e = c // 8, (c % 8) // 2, c % 2
        thread = WARP * (r // TC_ROWS) + 4 * g + t
        n, slot = np.broadcast_arrays(n, 2 * h + e)
        name = "s" if matrix == "S_ij" else "o_acc"
        register = np.char.add(np.char.add(f"{name}[", n.astype(str)), "][")
        register = np.char.add(np.char.add(register, slot.astype(str)), "]")
    thread = np.broadcast_to(thread, (rows, cols)).copy()
    return Ownership(kind, matrix, thread, thread // WARP, thread % WARP, register)


# --- Shared memory ---------------------------------------------------------------------------

_DEFINE = re.compile(r"^\s*#define\s+(\w+)\s+(.+?)\s*(?://.*)?$")
_SHARED = re.compile(r"^\s*__shared__\s+(\w+)\s+(\w+)((?:\s*\[[^\]]+\])+)\s*;\s*(?://\s*(.*))?$")
_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.floordiv,  # C integer division (sizes are non-negative)
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


def int_expr(text: str, names: dict[str, int]) -> int:
    """A C integer expression of numbers, names, + - * / % and parentheses."""

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        raise ValueError(f"not an integer expression of known names: {text!r}")

    return value(ast.parse(text.strip(), mode="eval").body)


Defines = Mapping[str, int | str]  # a build's #defines (KernelConfig.defines)


def int_defines(defines: Defines) -> dict[str, int]:
    """The integer ones of a build's ``#define``s (sizes, codes; not a float literal)."""
    return {name: value for name, value in defines.items() if isinstance(value, int)}


def source_defines(text: str, defines: Defines) -> dict[str, int]:
    """``defines`` (their integers) plus every ``#define`` of ``text`` that is an integer
    expression of them (in file order, so a define may use the ones above it)."""
    names = int_defines(defines)
    for line in text.splitlines():
        if found := _DEFINE.match(line):
            try:
                names[found.group(1)] = int_expr(found.group(2), names)
            except (ValueError, SyntaxError):
                continue  # not a size (-inf, a mask, ...)
    return names


@dataclass(frozen=True)
class SharedBuffer:
    name: str
    element: str  # C type of an element
    dims: tuple[int, ...]
    declaration: str  # the line as written
    line: int  # 1-based, in the .cu
    holds: str

    @property
    def bytes(self) -> int:
        return ELEMENT_BYTES[self.element] * int(np.prod(self.dims))


def shared_buffers(kind: str, defines: Defines, text: str | None = None) -> list[SharedBuffer]:
    """The kernel's ``__shared__`` arrays with this build's sizes (``text``: the .cu's text,
    default: read from kernels/ now)."""
    _check_kind(kind)
    path, _ = KERNELS[kind]
    text = path.read_text() if text is None else text
    names = source_defines(text, defines)
    buffers = []
    for n, line in enumerate(text.splitlines(), 1):
        if not (found := _SHARED.match(line)):
            continue
        element, name, dims, _ = found.groups()
        if element not in ELEMENT_BYTES:
            raise ValueError(f"line {n}: shared element type {element!r} is not one of "
                             f"{', '.join(ELEMENT_BYTES)}")  # fmt: skip
        sizes = tuple(int_expr(d, names) for d in re.findall(r"\[([^\]]+)\]", dims))
        holds = HOLDS[kind].get(name, "(not described)")
        buffers.append(SharedBuffer(name, element, sizes, line.strip(), n, holds))
    return buffers


def shared_total(kind: str, defines: Defines, text: str | None = None) -> int:
    """Static shared bytes of a build: the sum of its ``__shared__`` arrays."""
    return sum(b.bytes for b in shared_buffers(kind, defines, text))


# --- Timeline --------------------------------------------------------------------------------

EVENT_KINDS = ("phase", "load", "barrier", "mma", "shuffle")
_EVENTS = {
    "barrier": re.compile(r"__syncthreads\s*\(\s*\)"),
    "shuffle": re.compile(r"__shfl_xor_sync\s*\("),
    "mma": re.compile(r"\bmma_16816\s*\("),
    "load": re.compile(r"\b(load_tile|load_rows|load_v_transposed)\b"),
}
_LOOP = re.compile(r"\bfor\s*\(\s*int\s+p\s*=\s*0\s*,\s*f\s*=")  # the walk over the K/V tiles


@dataclass(frozen=True)
class Event:
    """One thing in the kernel body, in program order."""

    kind: str  # one of EVENT_KINDS
    line: int  # 1-based, in the .cu
    phase: str  # the phase marked last before it ("" before the first marker)
    in_loop: bool  # inside the loop over K/V tiles
    code: str  # the line's code, stripped
    note: str  # the line's comment (a phase marker: its text after the name)


LOOP_LOAD = "load k_j, v_j"  # the phase of what the K/V loop does before its first marker


@dataclass(frozen=True)
class Timeline:
    kind: str
    events: tuple[Event, ...]
    loop: tuple[int, int]  # first and last line of the K/V loop
    kernel: tuple[int, int]  # first and last line of the kernel


def _block_end(code: list[str], start: int) -> int:
    """0-based index of the line closing the brace block opened at line ``start``."""
    depth, opened = 0, False
    for n in range(start, len(code)):
        depth += code[n].count("{") - code[n].count("}")
        opened = opened or "{" in code[n]
        if opened and depth == 0:
            return n
    raise ValueError(f"the block opened at line {start + 1} is not closed")


def timeline(kind: str, text: str | None = None) -> Timeline:
    """Phases, loads, barriers, mma calls and shuffles of the kernel body in program order."""
    _check_kind(kind)
    path, name = KERNELS[kind]
    text = path.read_text() if text is None else text
    lines = text.splitlines()
    first, last = kernel_range(text, name)
    code = [line.split("//", 1)[0] for line in lines]
    loop_start = next(
        (n for n in range(first - 1, last) if _LOOP.search(code[n])), None
    )  # fmt: skip
    if loop_start is None:
        raise ValueError(f"no loop over K/V tiles (for (int p = 0, f = ...) in {name}")
    loop = (loop_start + 1, _block_end(code, loop_start) + 1)
    phase_at = {line: phase for phase, line in markers(text, "//")}
    events, phase = [], ""
    for n in range(first, last + 1):
        in_loop = loop[0] <= n <= loop[1]
        line = lines[n - 1]
        comment = line.split("//", 1)[1].strip() if "//" in line else ""
        if n == loop[0]:
            phase = LOOP_LOAD  # the tile loads at the loop's top run every tile, not at init
        if n in phase_at:
            phase = phase_at[n]
            note = comment.split(None, 1)[1] if " " in comment else ""
            events.append(Event("phase", n, phase, in_loop, "", note))
            continue
        for event_kind, pattern in _EVENTS.items():
            if pattern.search(code[n - 1]):
                events.append(Event(event_kind, n, phase, in_loop, code[n - 1].strip(), comment))
    return Timeline(kind, tuple(events), loop, (first, last))
