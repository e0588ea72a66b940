"""Shared look of every figure: fonts readable on a projector, colour-blind-safe scales.

Scores (S_ij, the running max m_i) share one diverging scale centred on 0; probabilities
(P~_ij, alpha) share one sequential scale on [0, 1]; outputs (o_i) use their own diverging
scale. Tile states use the Okabe-Ito palette, which stays distinct under colour blindness.
"""

from __future__ import annotations

import numpy as np
from plotly.colors import get_colorscale

FONT_SIZE = 16
CELL_FONT_SIZE = 16  # numbers in cells: as readable as the rest
CHAR_WIDTH = 0.62  # a digit, sign or point is at most this many font sizes wide
HALF_WIDTH = 380  # px: a half-column chart of the stepper at 1280 x 720, sidebar open
FULL_WIDTH = 780  # px: a full-width chart there (the main column is 790 px wide)
# Resolved to explicit [position, colour] lists: figures skip Python-side validation, and
# plotly.js itself knows neither reversed ("_r") nor all ColorBrewer names.
SCORE_SCALE = get_colorscale("RdBu_r")  # ColorBrewer RdBu: colour-blind safe; red = high
PROB_SCALE = get_colorscale("Cividis")  # designed for colour-vision deficiency
OUT_SCALE = get_colorscale("PuOr_r")  # ColorBrewer PuOr: diverging, colour-blind safe
ERROR_SCALE = get_colorscale("Viridis")

# Okabe-Ito palette: stays distinct under colour blindness
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
GREEN = "#009E73"  # bluish green
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"  # reddish purple

# lines and markers in the text's colour (the app draws them in the theme's ink instead)
INK = "#262730"
CURRENT = ORANGE  # the tile / rows being worked on now
DONE = GREEN  # already processed
TO_COME = "rgba(128, 128, 128, 0.55)"  # grey veil over tiles still to come
SKIPPED = SKY_BLUE  # outline: skipped by the causal mask
CHANGED = VERMILLION  # rows whose max just rose

MAX_CELLS_WITH_NUMBERS = 16 * 16  # print numbers in cells up to this many cells


def base_layout(layout: dict, *, title: str, height: int, margin: dict | None = None) -> dict:
    """Title, fonts and margins every figure shares; colours follow the app's theme.

    ``template: {}`` keeps Plotly's default template (10 kB) out of every figure's JSON.
    """
    return {
        **layout,
        "title": {"text": title, "font": {"size": FONT_SIZE + 2}},
        "font": {"size": FONT_SIZE},
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 70, "b": 50, **(margin or {})},
        "template": {},
    }


def with_numbers(n_cells: int, fmt: str = ".2f") -> dict:
    """Heatmap keywords that print each cell's value while the grid is small enough."""
    if n_cells > MAX_CELLS_WITH_NUMBERS:
        return {}
    return {"texttemplate": f"%{{z:{fmt}}}", "textfont": {"size": CELL_FONT_SIZE}}


def _widest(z: np.ndarray, fmt: str) -> int:
    finite = np.asarray(z, dtype=float)[np.isfinite(z)]
    if not finite.size:
        return 0
    return max(len(format(float(v), fmt)) for v in (finite.min(), finite.max(), 0.0))


def fit_numbers(data: list[dict], layout: dict, width: float) -> None:
    """Print each heatmap's values in its cells where they fit, in place.

    A heatmap trace that asks for numbers carries ``"numbers": (fmt, ...)``, formats tried
    in order (e.g. ``(".2f", ".1f")``); the key is removed. ``width`` is the narrowest the
    app draws the figure (``HALF_WIDTH``, ``FULL_WIDTH``): a format is used only if its
    widest label fits a cell there, so numbers never run into each other; wider screens
    only make cells larger. Needs the layout's margin, height and axis domains.
    """
    margin = layout["margin"]
    plot_w = width - margin["l"] - margin["r"]
    plot_h = layout["height"] - margin["t"] - margin["b"]
    for trace in data:
        formats = trace.pop("numbers", ())
        z = np.asarray(trace.get("z"))
        if not formats or z.ndim != 2 or not 0 < z.size <= MAX_CELLS_WITH_NUMBERS:
            continue
        x_axis = "xaxis" + trace.get("xaxis", "x")[1:]
        y_axis = "yaxis" + trace.get("yaxis", "y")[1:]
        x0, x1 = layout.get(x_axis, {}).get("domain", [0.0, 1.0])
        y0, y1 = layout.get(y_axis, {}).get("domain", [0.0, 1.0])
        cell_w = plot_w * (x1 - x0) / z.shape[1]
        cell_h = plot_h * (y1 - y0) / z.shape[0]
        if cell_h < 1.2 * CELL_FONT_SIZE:
            continue
        for fmt in formats:
            if _widest(z, fmt) * CHAR_WIDTH * CELL_FONT_SIZE + 4 <= cell_w:
                trace.update(texttemplate=f"%{{z:{fmt}}}", textfont={"size": CELL_FONT_SIZE})
                break


def index_ticks(count: int, most: int = 8) -> dict:
    """Ticks for an axis of ``count`` whole indices: on whole numbers only (a wide chart
    otherwise labels 3.5, 4.5), at most about ``most`` of them."""
    return {"tick0": 0, "dtick": max(1, -(-count // most))}


def log_ticks(*arrays: object) -> dict:
    """Tick spacing for a log axis over ``arrays``: at most ~6 labels of 16 px, whole
    decades when the values span two or more, else 3 labels in between."""
    flat = [np.ravel(np.asarray(a, dtype=float)) for a in arrays]
    values = np.concatenate(flat) if flat else np.empty(0)
    values = values[np.isfinite(values) & (values > 0)]
    if not values.size:
        return {}
    lo, hi = np.log10(values.min()), np.log10(values.max())
    if hi - lo >= 2:
        return {"dtick": max(1, int(np.ceil((hi - lo + 1) / 6)))}
    ticks = 10 ** np.linspace(lo, hi, 3) if hi > lo else values[:1]
    return {"tickvals": ticks.tolist(), "ticktext": [tick_label(t) for t in ticks]}


def tick_label(value: float) -> str:
    """Two significant figures, read as a person writes them: '987', '1.5', '0.012',
    '3.2e-7' (never Plotly's '9.9e+2')."""
    if value == 0 or not np.isfinite(value):
        return f"{value:g}"
    if 1e-3 <= abs(value) < 1e5:
        digits = max(0, 1 - int(np.floor(np.log10(abs(value)))))
        return f"{value:.{digits}f}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def finite_or_nan(a: np.ndarray) -> np.ndarray:
    """-inf (masked score, row with no key yet) drawn as an empty cell."""
    return np.where(np.isfinite(a), a, np.nan)


def symmetric_range(*arrays: np.ndarray) -> float:
    """max |x| over the finite entries of ``arrays`` (1 if there are none)."""
    peaks = [float(np.max(np.abs(a[np.isfinite(a)]))) for a in arrays if np.isfinite(a).any()]
    return max(peaks, default=0.0) or 1.0


# Symbols for titles (escapes keep the source ASCII-unambiguous).
ALPHA = "\u03b1"
ELL = "\u2113"
MINUS = "\u2212"
TAU = "\u03c4"
P_TILDE = "P\u0303"
