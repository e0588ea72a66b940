"""The Stepper page's state: the whole problem, the step and the view's switches.

A link carries every problem field (``n_q``, ``n_k``, ``head_dim``, ``block_q``,
``block_kv``, ``causal``, ``causal_align``, ``scale``, ``seed``, ``pattern``,
``precision``, ``bug``), ``step`` and ``tile_scale`` (the tile's colour scale), so
opening it restores the same view. Uploaded tensors cannot travel in a link: ``upload``
(their digest) stays out of the URL. The values live in
``flashviz.app.widgets.page_state``'s store, shared with the other pages that have the
same fields; the stepper's widget keys are the fields' own names.
"""

from __future__ import annotations

from flashviz.app.widgets.page_state import Field
from flashviz.app.widgets.problem import DEFAULTS, problem_fields, problem_keys

PROBLEM = problem_keys("", DEFAULTS)  # every ProblemSpec field, keyed by its own name
PROBLEM_FIELDS = problem_fields(PROBLEM)
STEP = Field("step", 0)
TILE_SCALE = "tile_scale"  # stepper toggle: S coloured on the tile's own range
SCALE = Field(TILE_SCALE, True)  # the tile's S on its own colour scale (else the tile map's)
# presentation mode (flashviz/app/stepper/presentation.py): in a link only while it is on
PRESENT = Field("present", False, url_when_default=False)
STEPPER_FIELDS = [
    *PROBLEM_FIELDS,
    STEP,
    Field("row", 0, url=False),
    Field("speed", "1 step/s", url=False),
    PRESENT,
    SCALE,
]
