"""A mask drawn cell by cell with its tiles outlined by kind, for every figure of masks.

``mask_heatmap``: each cell (query r, key c) dark when r sees c, light when masked;
``tile_outlines``: every tile outlined by its kind (full green, partial orange, skipped or
empty blue and dashed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flashviz.core.masking import block_range
from flashviz.figures.style import CURRENT, DONE, SKIPPED, with_numbers
from flashviz.figures.tile_map import outline

SEEN = "#4D4D4D"  # dark grey: query r sees key c
MASKED = "#EDEDED"  # light grey: masked
KIND_STYLE = {
    "full": {"color": DONE, "width": 3},
    "partial": {"color": CURRENT, "width": 3},
    "skipped": {"color": SKIPPED, "width": 2, "dash": "dash"},
}


def tick_step(n: int) -> int:
    """Integer ticks, about a dozen along an axis of n cells."""
    return max(1, -(-n // 12))


def tile_outlines(
    kinds: np.ndarray, blocks: tuple[int, int], sizes: tuple[int, int], x: str, y: str
) -> list[dict]:
    """One rectangle per tile of ``kinds`` ("full", "partial" or "skipped"), tiles of
    ``blocks`` = (block_q, block_kv) over ``sizes`` = (n_q, n_k), on axes x, y."""
    (block_q, block_kv), (n_q, n_k) = blocks, sizes
    thin = max(kinds.shape) > 16  # many tiles: thinner outlines
    shapes = []
    for (i, j), kind in np.ndenumerate(kinds):
        rows, cols = block_range(i, block_q, n_q), block_range(j, block_kv, n_k)
        line = KIND_STYLE[str(kind)]
        shapes.append(
            {
                "type": "rect",
                "name": f"{kind} tile",
                "xref": x,
                "yref": y,
                "x0": cols.start - 0.5,
                "x1": cols.stop - 0.5,
                "y0": rows.start - 0.5,
                "y1": rows.stop - 0.5,
                "line": {**line, "width": 1.5} if thin else line,
            }
        )
    return shapes


def mask_heatmap(mask: np.ndarray, x: str, y: str, name: str) -> dict:
    """The (n_q, n_k) boolean ``mask`` as a two-colour heatmap on axes x, y."""
    return {
        "type": "heatmap",
        "z": mask.astype(np.int8),
        "xaxis": x,
        "yaxis": y,
        "zmin": 0,
        "zmax": 1,
        "colorscale": [[0.0, MASKED], [0.5, MASKED], [0.5, SEEN], [1.0, SEEN]],
        "showscale": False,
        **({"xgap": 1, "ygap": 1} if max(mask.shape) <= 32 else {}),
        "name": name,
        "showlegend": False,
        "hovertemplate": "query r = %{y}, key c = %{x}: sees = %{z}<extra></extra>",
        **with_numbers(mask.size, fmt="d"),
    }


def cell_legend(partial: str, skipped: str) -> list[tuple[str, dict[str, Any]]]:
    """Legend entries of ``mask_heatmap`` and ``tile_outlines``, the partial and skipped
    tiles named as a figure calls them."""
    return [
        ("r sees c", {"color": SEEN}),
        ("masked", {"color": MASKED, "line": {"color": "#999999", "width": 1}}),
        ("full tile", outline(DONE, 3)),
        (partial, outline(CURRENT, 3)),
        (skipped, outline(SKIPPED, 3)),
    ]
