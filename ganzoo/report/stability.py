"""Stability of one run, measured from its evaluation curve under its dataset's ``Judgement``.

Every measure is defined so that a reader can recompute it from ``runs.csv`` and the store's
evaluations (docs/reading-results.md, "Reading a leaderboard"):

- *diverged*: the run stopped on a non-finite loss or sample (status ``diverged``);
- *collapsed*: a collapse criterion of the dataset holds at the final evaluation (e.g. ``modes <= 2``);
- *headline*: the run's headline value, the mean of its last ``Judgement.window`` evaluations on the
  judgement's scale (the final evaluation when the window is 1): what its table ranks and tests;
- *degraded*: the final headline is worse than the run's own best by more than ``degrade_tolerance``
  of the best. The best is only used to judge the run, never reported as its result;
- *oscillation*: mean absolute change of the headline between consecutive evaluations in the last
  half of training, divided by the mean absolute headline there (0 for a flat curve; needs 3 points);
- *dropped*: the most modes/classes the run covered at any evaluation minus those at the end;
- *success*: every success criterion holds at the final evaluation (``None`` without criteria).

A run is *unstable* when it diverged, collapsed or degraded (a failed run is a crash, counted apart).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..api.judgement import Judgement, holds
from ..core.records import DIVERGED, Evaluation

MIN_OSCILLATION_POINTS = 3


@dataclass(frozen=True)
class RunStability:
    headline: float  # the run's headline value: Judgement.run_headline of its curve (NaN when it diverged)
    best: float  # best value over the curve, for "degraded" only
    diverged: bool
    collapsed: bool
    degraded: bool
    oscillation: float
    dropped: float
    success: bool | None

    @property
    def unstable(self) -> bool:
        return self.diverged or self.collapsed or self.degraded

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "unstable": self.unstable}


def curve(evals: Sequence[Mapping[str, Any]], metric: str) -> list[float]:
    """The values of ``metric`` over a run's evaluations (NaN where it was not measured)."""
    return [_float(Evaluation.metrics_of(e).get(metric)) for e in evals]


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def best_value(values: Sequence[float], judgement: Judgement) -> float:
    """The best finite value of a curve in the headline's direction (NaN when there is none)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan
    return min(finite) if judgement.lower_is_better else max(finite)


def is_degraded(values: Sequence[float], judgement: Judgement) -> bool:
    if sum(math.isfinite(v) for v in values) < 2 or not math.isfinite(values[-1]):
        return False
    final, best, tol = values[-1], best_value(values, judgement), judgement.degrade_tolerance
    if judgement.lower_is_better:
        return final > best * (1 + tol) if best > 0 else final > best + tol
    return final < best * (1 - tol) if best > 0 else False


def oscillation(values: Sequence[float]) -> float:
    """Relative mean absolute step over the last half of the curve (see the module docstring)."""
    tail = [v for v in values[len(values) // 2:] if math.isfinite(v)]
    if len(tail) < MIN_OSCILLATION_POINTS:
        return math.nan
    scale = sum(abs(v) for v in tail) / len(tail)
    steps = [abs(b - a) for a, b in zip(tail, tail[1:], strict=False)]
    if scale == 0:
        return 0.0 if not any(steps) else math.inf
    return sum(steps) / len(steps) / scale


def dropped(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    if not finite or not math.isfinite(values[-1]):
        return math.nan
    return max(finite) - values[-1]


def run_stability(status: str, evals: Sequence[Mapping[str, Any]], judgement: Judgement) -> RunStability:
    """All stability measures of one run; ``evals`` are its evaluation records in training order."""
    diverged = status == DIVERGED
    values = curve(evals, judgement.headline)
    final_metrics = dict(Evaluation.metrics_of(evals[-1])) if evals and not diverged else {}
    collapsed = any(holds(c, final_metrics) for c in judgement.collapse) if final_metrics else False
    if judgement.success and not diverged:
        verdicts = [holds(c, final_metrics) for c in judgement.success]
        success = None if any(v is None for v in verdicts) else all(verdicts)
    else:
        success = False if (diverged and judgement.success) else None
    coverage = curve(evals, judgement.coverage) if judgement.coverage else []
    return RunStability(
        headline=math.nan if diverged else judgement.run_headline(values),
        best=best_value(values, judgement),
        diverged=diverged,
        collapsed=bool(collapsed),
        degraded=False if diverged else is_degraded(values, judgement),
        oscillation=math.nan if diverged else oscillation(values),
        dropped=dropped(coverage) if coverage and not diverged else math.nan,
        success=success,
    )
