"""The snapshot's comparison passes a rounding error and fails a change a person could see."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import plotly.graph_objects as go
import pytest

from tests.figures.figure_numbers import Tolerance, figure_parts, last_digit_unit, mismatches

FLOAT64 = Tolerance(digits=6, floor=1e-6)
FLOAT16 = Tolerance(digits=3, floor=1.0)
Z = np.array([[0.1234567, -2.5, np.nan], [3.0e-17, 1.0, 7.75]])


TITLE = "m = 0.532, step 3 of 12"


def _figure(z: np.ndarray = Z, title: str = TITLE, x0: float = 0.5) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=z, x0=x0, text=[["q_0 = 1.25"] * 3] * 2))
    return fig.update_layout(title=title)


def _differences(found: go.Figure, tol: Tolerance = FLOAT64) -> list[str]:
    recorded = figure_parts(_figure()).record(digits=8)
    return mismatches(figure_parts(found), recorded, tol)


def _ulps(x: np.ndarray, n: int) -> np.ndarray:
    out = np.array(x, dtype=np.float64)
    for _ in range(n):
        out = np.nextafter(out, np.inf)
    return out


def test_the_same_figure_matches() -> None:
    assert _differences(_figure()) == []


def test_rounding_errors_pass() -> None:
    # a few ulps on every number, rounding noise on the tiny entry, the title's value printed
    # one unit lower in its last digit (a value at a rounding boundary moved across it)
    z = _ulps(Z, 4)
    z[1, 0] = 9.0e-17
    assert _differences(_figure(z, title="m = 0.531, step 3 of 12", x0=_ulps(0.5, 3))) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda z: z.__setitem__((0, 0), 0.1234577), "/data[0]/z[0]"),  # 6th significant digit
        (lambda z: z.__setitem__((1, 0), 2.0e-12), "/data[0]/z[3]"),  # above float64 noise
        (lambda z: z.__setitem__((1, 2), -7.75), "/data[0]/z[5]"),  # a sign
        (lambda z: z.__setitem__((0, 1), np.nan), "structure"),  # a new gap in the heatmap
        (lambda z: z.__setitem__((0, 2), 1.0), "structure"),  # a gap filled
    ],
)
def test_a_changed_array_fails(change: object, message: str) -> None:
    z = Z.copy()
    change(z)  # type: ignore[operator]
    found = _differences(_figure(z))
    assert found and message in found[0], found


def test_a_changed_shape_fails() -> None:
    assert "structure" in _differences(_figure(Z[:, :2]))[0]


@pytest.mark.parametrize(
    "title",
    [
        "m = 0.534, step 3 of 12",  # printed value two units away in its last digit
        "m = 0.532, step 4 of 12",  # an integer: the step number
        "m = 0.532, step 3 of 12.",  # other text
        "m = 0.532 step 3 of 12",
    ],
)
def test_a_changed_string_fails(title: str) -> None:
    assert _differences(_figure(title=title))


def test_a_16_bit_tolerance_passes_a_16_bit_rounding_flip_only() -> None:
    z = Z.copy()
    z[1, 2] = 7.75 + 2.0**-8  # the next float16 after 7.75: one ulp, relative 5e-4
    assert _differences(_figure(z), FLOAT16) == []
    assert _differences(_figure(z), FLOAT64)  # float64's tolerance sees it
    z[1, 2] = 7.75 + 4 * 2.0**-8
    assert _differences(_figure(z), FLOAT16)


@pytest.mark.parametrize(
    ("printed", "unit"),
    [("12", 0), ("-3", 0), ("2.50", "0.01"), ("0.5", "0.1"), ("8.33e-17", "1e-19"),
     ("1e-05", "1e-5"), (".25", "0.01")],
)  # fmt: skip
def test_last_digit_unit(printed: str, unit: object) -> None:
    assert last_digit_unit(printed) == Decimal(str(unit))
