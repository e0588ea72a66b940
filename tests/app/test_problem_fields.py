"""The problem fields the pages share are declared once (``problem.problem_fields``): each
page's shared widgets take their defaults from ``ProblemSpec`` (unless the page says
otherwise) and their allowed values from one table."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from flashviz.app.pages import causal, fa1, precision
from flashviz.app.stepper.state import STEPPER_FIELDS
from flashviz.app.widgets.problem import CHOICES, problem_fields
from flashviz.lab.problem_spec import ProblemSpec

SPEC = asdict(ProblemSpec())


def test_a_shared_field_takes_the_specs_default_and_the_one_choice_table() -> None:
    (f,) = problem_fields({"causal_align": "x_align"})
    assert (f.name, f.key, f.default) == ("causal_align", "x_align", SPEC["causal_align"])
    assert f.choices == tuple(CHOICES["causal_align"]) and f.url
    (g,) = problem_fields({"pattern": "x_pattern"}, pattern="random")
    assert g.default == "random" and g.choices == tuple(CHOICES["pattern"])


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="not problem fields of this page: \\['n'\\]"):
        problem_fields({"n": "x_n"})
    with pytest.raises(ValueError, match="\\['seed'\\]"):
        problem_fields({"n_q": "x_n_q"}, seed=3)


@pytest.mark.parametrize(
    ("fields", "own"),
    [
        (STEPPER_FIELDS, {}),
        (fa1.FIELDS, {"pattern": "random"}),
        (causal.FIELDS, {"n_q": 12, "n_k": 5, "block_q": 4, "block_kv": 2}),
        (
            precision.FIELDS,
            {
                "precision": "float16",
                "pattern": "random",
                "n_q": 64,
                "n_k": 64,
                "head_dim": 32,
                "block_q": 16,
                "block_kv": 16,
            },
        ),
    ],
)
def test_every_pages_shared_fields_agree_with_the_spec(fields, own) -> None:
    shared = [f for f in fields if f.name in SPEC]
    assert shared, "the page shares no problem field"
    for f in shared:
        assert f.default == own.get(f.name, SPEC[f.name]), f
        assert f.choices == tuple(CHOICES.get(f.name, ())), f
    assert fa1.FIELDS[0].key == "fa1_pattern"  # widget keys (and so links) are unchanged
    assert next(f for f in fa1.FIELDS if f.name == "head_dim").key == "fa1_d"
