"""The software exp2 lesson and the After-FA2 figures: numbers from the polynomial, words
from the numbers, the exp gap from its sources, the figure from the lesson."""

from __future__ import annotations

import numpy as np
import pytest

from flashviz.core.exp2 import POLY_REL_ERROR, exp2_poly
from flashviz.figures.precision import exp2_error_figure
from flashviz.lab.after_fa2 import FA3_PAPER, FACTS, exp_gap
from flashviz.lab.exp2_lesson import X_RANGE, exp2_errors, verdict


@pytest.mark.parametrize("degree", [1, 2, 3, 4, 5])
def test_the_errors_are_the_polynomials_in_each_type(degree):
    e = exp2_errors(degree)
    assert (e.x[0], e.x[-1]) == X_RANGE and e.bits == pytest.approx(
        -np.log2(POLY_REL_ERROR[degree])
    )
    # float32 ulps: the relative error over float32's spacing (2^-23 near 1), within 1 ulp
    rel = np.abs(exp2_poly(e.x, degree) / np.exp2(e.x.astype(np.float64)) - 1)
    assert e.max_ulps("float32") <= rel.max() * 2.0**24 + 1
    # coarser types see fewer ulps of the same difference
    assert e.max_ulps("float32") >= e.max_ulps("float16") >= e.max_ulps("bfloat16") - 1


def test_the_words_follow_the_numbers():
    assert "hides" not in verdict(exp2_errors(2)) and "too few bits" in verdict(exp2_errors(2))
    cubic = verdict(exp2_errors(3))
    assert cubic.startswith("Degree 3: 13.5 correct bits") and "at most one ulp" in cubic
    with pytest.raises(ValueError, match="degree"):
        exp2_errors(6)


def test_the_exp_gap_comes_from_the_published_figures():
    h100, b200 = exp_gap()
    assert h100 == pytest.approx(989 / 3.9) and b200 == pytest.approx(2.25 * 989 / 3.9)
    cited = {f.what: f.source for f in FACTS}
    assert cited["H100 SXM5 special functions (exp)"] == FA3_PAPER
    assert all(f.source for f in FACTS)


def test_the_figure_draws_one_line_per_type():
    fig = exp2_error_figure(exp2_errors(3))
    assert [d.name for d in fig.data] == ["float32 ulps", "float16 ulps (both rounded)",
                                          "bfloat16 ulps (both rounded)"]  # fmt: skip
    assert "13.5 correct bits" in fig.layout.title.text
    assert min(min(d.y) for d in fig.data) >= 0.1  # exact agreement drawn at 0.1 on the log axis
