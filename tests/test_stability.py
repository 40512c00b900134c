"""Stability measures of one run, on hand-made curves and samples whose answers are worked out by hand."""

import math

import pytest
import torch

from ganzoo import Judgement
from ganzoo.api.judgement import holds, parse_criterion
from ganzoo.report.stability import dropped, is_degraded, oscillation, run_stability
from ganzoo_plugins.datasets.mixtures import mixture_judgement, mode_metrics, ring_means

FID = Judgement(headline="fid", lower_is_better=True, collapse=("classes <= 5",), success=("fid <= 25",),
                degrade_tolerance=0.5, coverage="classes")
MODES = mixture_judgement(8)


def evals(*metrics):
    return [{"kimg": i + 1, "metrics": m} for i, m in enumerate(metrics)]


@pytest.mark.parametrize("text, parsed", [("modes >= 7", ("modes", ">=", 7.0)), ("fid<=30.5", ("fid", "<=", 30.5)),
                                          ("kid_mean < 1e-3", ("kid_mean", "<", 0.001))])
def test_criteria_parse(text, parsed):
    assert parse_criterion(text) == parsed


@pytest.mark.parametrize("text", ["modes >= seven", "modes => 7", "7 <= modes", "", "modes >="])
def test_malformed_criteria_are_rejected_with_an_example(text):
    with pytest.raises(ValueError, match='e.g. "modes >= 7"'):
        parse_criterion(text)


def test_a_criterion_on_an_unmeasured_metric_is_unknown_not_false():
    assert holds("fid <= 30", {"fid": 29.0}) is True
    assert holds("fid <= 30", {"fid": 31.0}) is False
    assert holds("fid <= 30", {"is_mean": 3.0}) is None
    assert holds("fid <= 30", {"fid": math.nan}) is None


@pytest.mark.parametrize("curve, degraded", [
    ([50.0, 30.0, 20.0, 35.0], True),   # 35 > 20 * 1.5 = 30
    ([50.0, 30.0, 20.0, 29.9], False),  # within 1.5x of the best
    ([50.0, 30.0, 20.0, 30.0], False),  # exactly 1.5x: not *more* than the tolerance
    ([20.0], False),                    # one point has no best to fall from
])
def test_degraded_lower_is_better(curve, degraded):
    assert is_degraded(curve, FID) is degraded


@pytest.mark.parametrize("curve, degraded", [
    ([2.0, 8.0, 8.0, 5.0], True),   # 5 < 8 * 0.75 = 6
    ([2.0, 8.0, 8.0, 6.0], False),
    ([0.0, 0.0, 0.0], False),       # never learned anything: not "degraded" (collapse says that)
])
def test_degraded_higher_is_better(curve, degraded):
    assert is_degraded(curve, MODES) is degraded


def test_oscillation_is_the_relative_mean_step_over_the_last_half():
    assert oscillation([10.0, 10.0, 10.0, 10.0, 10.0, 10.0]) == 0.0
    # last half of 6 points = [20, 10, 20]: steps 10 and 10, mean |value| 50/3 -> 10 / (50/3) = 0.6
    assert oscillation([5.0, 5.0, 10.0, 20.0, 10.0, 20.0]) == pytest.approx(0.6)
    assert math.isnan(oscillation([1.0, 2.0, 3.0]))  # last half holds 2 points: too few


def test_dropped_counts_modes_lost_since_the_peak():
    assert dropped([3.0, 8.0, 6.0]) == 2.0
    assert dropped([3.0, 5.0, 8.0]) == 0.0


def test_collapse_is_read_from_hand_made_samples_on_two_of_eight_modes():
    means = ring_means(8)
    generator = torch.Generator().manual_seed(0)
    on_two = means[torch.randint(2, (2500,), generator=generator)] + 0.005 * torch.randn(2500, 2, generator=generator)
    on_all = means[torch.arange(2500) % 8] + 0.005 * torch.randn(2500, 2, generator=generator)
    two, spread = mode_metrics(on_two, means, 0.01), mode_metrics(on_all, means, 0.01)
    assert (two["modes"], spread["modes"]) == (2.0, 8.0)
    collapsed = run_stability("done", evals({"modes": 5.0, "high_quality": 0.3}, two), MODES)
    healthy = run_stability("done", evals({"modes": 5.0, "high_quality": 0.3}, spread), MODES)
    assert collapsed.collapsed and collapsed.unstable and collapsed.success is False
    assert not healthy.collapsed and not healthy.unstable and healthy.success is True


def test_a_run_that_is_fine_until_it_falls_apart_is_degraded_and_the_headline_stays_final():
    result = run_stability("done", evals({"fid": 80.0, "classes": 10.0}, {"fid": 20.0, "classes": 10.0},
                                         {"fid": 90.0, "classes": 4.0}), FID)
    assert result.headline == 90.0 and result.best == 20.0  # the result is the final value, never the best
    assert result.degraded and result.collapsed and result.dropped == 6.0 and result.success is False


def test_a_diverged_run_is_unstable_and_unsuccessful_with_no_headline():
    result = run_stability("diverged", evals({"fid": 30.0, "classes": 10.0}), FID)
    assert result.diverged and result.unstable and result.success is False and math.isnan(result.headline)


def test_success_is_unknown_without_criteria():
    result = run_stability("done", evals({"fid": 30.0}), Judgement())
    assert result.success is None and not result.unstable
