"""The cached work of the FA1 vs FA2 page: both recorded runs, and the HBM-over-n series.

The problem is a ``flashviz.lab.problem_spec.ProblemSpec`` (same limits and input patterns as the
stepper); ``cached`` hands back the same ``Comparison`` on every step change.
"""

from __future__ import annotations

from flashviz.app.cached import cached
from flashviz.lab.fa_compare import Comparison, HbmOverN, compare, hbm_over_n
from flashviz.lab.problem import problem_errors, spec_inputs
from flashviz.lab.problem_spec import ProblemSpec


@cached(spinner="Recording FA1 and FA2 ...")
def _comparison(spec: ProblemSpec) -> Comparison:
    return compare(*spec_inputs(spec), **spec.tiling)


def load_comparison(spec: ProblemSpec) -> Comparison:
    """FA1 and FA2 recorded on the spec's inputs; ValueError if the spec is not valid."""
    errors = problem_errors(spec)
    if errors:
        raise ValueError(" ".join(errors))
    return _comparison(spec)


@cached(spinner="Counting HBM accesses ...")
def hbm_series(ns: tuple[int, ...], d: int, sram_elements: int, causal: bool) -> HbmOverN:
    return hbm_over_n(ns, d, sram_elements, causal)
