"""A figure as a person sees it: its structure, compared exactly, and its numbers, compared
to a stated number of significant digits.

The last bits of a figure's numbers depend on the CPU (which BLAS kernel and which SIMD
``exp`` it picks), so a figure is split into what must not move at all and what may move
by rounding:

- ``structure``: the figure's JSON with every number replaced by ``#`` (typed arrays by their
  dtype, shape and the places of their NaN and infinities), and every number printed in a
  string (titles, labels, hover text) replaced by ``#`` too. Compared exactly.
- ``numbers``: every finite number of the figure in the order of the JSON (typed arrays
  flattened), compared with ``Tolerance``.
- ``printed``: every number printed in a string, as printed. An integer must be the same;
  a decimal may also differ by one unit in its last printed digit, since a value that moves
  by a rounding error can round to the neighbouring printed number. (So a label printed with
  one more digit of the same value is not a change this comparison sees: the count of
  printed digits is left out because "%.3g" prints 0 or 3e-17 for the same float64 noise.)
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import plotly.graph_objects as go

# A number as Python or Plotly prints it: 3, -0.25, 1.5e-07, .5; a dot after it ends a sentence
PRINTED_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Tolerance:
    """|found - recorded| <= 10^-digits * max(|recorded|, floor).

    ``digits`` significant digits are compared; magnitudes below ``floor`` are compared as if
    they were ``floor``, so differences under 10^-digits * floor count as rounding noise.
    """

    digits: int
    floor: float

    def allows(self, found: np.ndarray, recorded: np.ndarray) -> np.ndarray:
        limit = 10.0**-self.digits * np.maximum(np.abs(recorded), self.floor)
        return np.abs(found - recorded) <= limit


@dataclass
class FigureParts:
    structure: str = ""
    numbers: list[float] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)
    # where each number and printed number is, for the failure message (not recorded)
    number_paths: list[str] = field(default_factory=list)
    printed_paths: list[str] = field(default_factory=list)

    def record(self, digits: int) -> dict[str, Any]:
        """What the snapshot keeps: the structure's SHA-256, the numbers to ``digits``
        significant digits (enough for a tolerance of fewer), the printed numbers as text."""
        return {
            "structure": hashlib.sha256(self.structure.encode()).hexdigest(),
            "numbers": [float(f"{x:.{digits}g}") for x in self.numbers],
            "printed": self.printed,
        }


def figure_parts(fig: go.Figure) -> FigureParts:
    """Split ``fig`` (its Plotly JSON) into structure, numbers and printed numbers."""
    parts = FigureParts()
    skeleton = _walk(json.loads(fig.to_json()), "", parts)
    parts.structure = json.dumps(skeleton, sort_keys=True, separators=(",", ":"))
    return parts


def _walk(x: Any, path: str, parts: FigureParts) -> Any:
    if isinstance(x, dict):
        if "bdata" in x and "dtype" in x:
            return _typed_array(x, path, parts)
        return {key: _walk(x[key], f"{path}/{key}", parts) for key in sorted(x)}
    if isinstance(x, list):
        return [_walk(item, f"{path}[{n}]", parts) for n, item in enumerate(x)]
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, int | float):
        if not np.isfinite(x):
            return repr(float(x))
        parts.numbers.append(float(x))
        parts.number_paths.append(path)
        return "#"
    if isinstance(x, str):
        for match in PRINTED_NUMBER.finditer(x):
            parts.printed.append(match.group())
            parts.printed_paths.append(f"{path} ({x[:80]!r})")
        return PRINTED_NUMBER.sub("#", x)
    raise TypeError(f"unexpected {type(x).__name__} in the figure JSON at {path}")


def _typed_array(spec: dict[str, Any], path: str, parts: FigureParts) -> dict[str, Any]:
    """Plotly's base64 array: dtype, shape and non-finite places are structure."""
    a = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=spec["dtype"]).astype(np.float64)
    finite = np.isfinite(a)
    nonfinite = {str(n): repr(float(a[n])) for n in np.flatnonzero(~finite)}
    for n in np.flatnonzero(finite):
        parts.number_paths.append(f"{path}[{n}]")
    parts.numbers.extend(a[finite].tolist())
    return {"dtype": spec["dtype"], "shape": spec.get("shape", str(a.size)), "nonfinite": nonfinite}


def last_digit_unit(printed: str) -> Decimal:
    """One unit in the last printed digit ('2.50' -> 0.01, '8.3e-17' -> 1e-18, '12' -> 0)."""
    mantissa, _, exponent = printed.lower().partition("e")
    if "." not in mantissa and not exponent:
        return Decimal(0)  # an integer (a count, an index): compared exactly
    decimals = len(mantissa.partition(".")[2])
    return Decimal(1).scaleb(int(exponent or 0) - decimals)


def mismatches(
    found: FigureParts, recorded: dict[str, Any], tol: Tolerance, limit: int = 5
) -> list[str]:
    """What differs between ``found`` and the recorded parts, at most ``limit`` lines."""
    if hashlib.sha256(found.structure.encode()).hexdigest() != recorded["structure"]:
        return ["the structure changed (a trace, a key, a string, an array's shape or its NaN)"]
    out: list[str] = []
    a, b = np.array(found.numbers), np.array(recorded["numbers"], dtype=np.float64)
    if a.shape != b.shape:
        return [f"{a.size} numbers instead of {b.size}"]
    for n in np.flatnonzero(~tol.allows(a, b))[:limit]:
        out.append(f"{found.number_paths[n]}: {a[n]!r}, recorded {b[n]!r}")
    if len(found.printed) != len(recorded["printed"]):
        return [*out, f"{len(found.printed)} printed numbers instead of {len(recorded['printed'])}"]
    for n, (f, r) in enumerate(zip(found.printed, recorded["printed"], strict=True)):
        if len(out) >= limit:
            break
        unit = max(last_digit_unit(f), last_digit_unit(r))
        if unit == 0:
            if Decimal(f) != Decimal(r):
                out.append(f"{found.printed_paths[n]}: printed {f}, recorded {r}")
        elif abs(Decimal(f) - Decimal(r)) > unit + Decimal(
            10.0**-tol.digits * max(abs(float(r)), tol.floor)
        ):
            out.append(f"{found.printed_paths[n]}: printed {f}, recorded {r}")
    return out
