"""The class's tally: a bar a choice, no answer given away before the reveal."""

from __future__ import annotations

import pytest

from flashviz.figures.class_tally import tally_figure
from flashviz.figures.style import GREEN

CHOICES = ("-inf", "0", "the largest score of the row")


def test_bars_count_each_choice_in_one_colour_until_the_reveal() -> None:
    fig = tally_figure(CHOICES, (3, 1, 0))
    (bar,) = fig.to_dict()["data"]
    assert list(bar["y"]) == list(CHOICES) and list(bar["x"]) == [3, 1, 0]
    assert list(bar["text"]) == ["3", "1", "0"]
    assert len(set(bar["marker"]["color"])) == 1  # nothing tells the right one
    assert fig.layout.title.text == "4 answered"


def test_the_reveal_marks_the_right_choice_alone() -> None:
    fig = tally_figure(CHOICES, (3, 1, 0), right=0)
    (bar,) = fig.to_dict()["data"]
    colours = bar["marker"]["color"]
    assert colours[0] == GREEN and GREEN not in colours[1:]
    assert list(bar["y"]) == ["\u2713 -inf", "0", "the largest score of the row"]  # ticked
    fig = tally_figure(CHOICES, (3, 1, 0), right=2)  # nobody chose it: its label says so
    assert fig.to_dict()["data"][0]["y"][2] == "\u2713 the largest score of the row"
    assert fig.layout.title.text.startswith("4 answered: the right answer")


def test_counts_must_match_the_choices() -> None:
    with pytest.raises(ValueError, match="3 choices but 2 counts"):
        tally_figure(CHOICES, (1, 2))
