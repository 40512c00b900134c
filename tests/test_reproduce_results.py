"""benchmarks/reproduce_results.py --verdicts: which retrained verdicts count as held, undecided or reversed."""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "reproduce_results.py"
spec = importlib.util.spec_from_file_location("reproduce_results", SCRIPT)
reproduce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce)


def row(verdict, diff):
    return pd.Series({"verdict": verdict, "diff": diff})


@pytest.mark.parametrize(("committed", "retrained", "outcome"), [
    (row("better", -0.8), row("better", -0.5), "held"),
    (row("worse", 1.2), row("worse", 0.9), "held"),
    (row("better", -0.8), row("n.s.", -0.2), "undecided"),  # same direction, not decided again
    (row("better", -0.8), row("n.s.", 0.1), "REVERSED"),  # not decided, but pointing the other way
    (row("better", -0.8), row("worse", 0.4), "REVERSED"),
    (row("worse", 1.2), row("better", -0.3), "REVERSED"),
])
def test_a_retrained_verdict_is_held_undecided_or_reversed(committed, retrained, outcome):
    same_direction = (retrained["diff"] > 0) == (committed["diff"] > 0)
    assert reproduce._verdict_of(committed["verdict"], retrained["verdict"], same_direction) == outcome


@pytest.mark.parametrize(("effect", "scale", "upward"), [(1.3, "log", True), (0.7, "log", False),
                                                         (0.2, "linear", True), (-0.1, "linear", False)])
def test_a_crossed_effect_points_up_above_1_as_a_ratio_and_above_0_as_a_difference(effect, scale, upward):
    assert reproduce._upward(effect, scale) is upward


def test_a_sample_of_decided_rows_takes_the_datasets_in_turn():
    board = pd.DataFrame({"dataset": ["digits"] * 4 + ["ring8"] * 3,
                          "verdict": ["better", "n.s.", "worse", "baseline", "worse", "better", "too few seeds"]})
    assert list(reproduce._decided_rows(board, 3).index) == [0, 4, 2]
    assert list(reproduce._decided_rows(board, None).index) == [0, 2, 4, 5]
