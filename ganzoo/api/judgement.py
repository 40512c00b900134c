"""How a dataset's runs are judged: the headline metric, its direction, and the states a run can end in.

A dataset plugin declares a ``Judgement`` when it registers (``register("ring8", ..., judgement=...)``):
FID of a Gaussian fit says little on a 2-D mixture, where modes and the share of high-quality samples
do, so the dataset, not the harness, knows what to rank by and what "collapsed" means. A suite may
override the success criterion (it depends on the budget); the rest belongs to the data.

Criteria are short strings, ``"<metric> <op> <number>"`` with ``op`` one of ``<= < >= > ==``, so that a
leaderboard can print them verbatim and a reader can check a run by hand.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

SCALES = ("linear", "log")
# The widest equivalence margin a judgement may declare: x0.8-1.25 on a log headline, +-10% on a linear one.
MAX_MARGIN = {"log": 1.25, "linear": 0.1}
EVAL_SIZES = ("n_fake", "n_real")  # the evaluation sizes a dataset may declare, named as in a suite's [eval]
OPERATORS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}
_CRITERION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|<|>)\s*([-+0-9.eE]+|inf|-inf)\s*$")


def parse_criterion(text: str) -> tuple[str, str, float]:
    """``"modes >= 7"`` -> ``("modes", ">=", 7.0)``; a clear ValueError for anything else."""
    match = _CRITERION.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f'Criterion {text!r} is not "<metric> <op> <number>" with op one of '
                         f'{", ".join(OPERATORS)}; e.g. "modes >= 7" or "fid <= 30"')
    metric, op, number = match.groups()
    try:
        value = float(number)
    except ValueError as exc:
        raise ValueError(f"Criterion {text!r}: {number!r} is not a number") from exc
    return metric, op, value


def holds(criterion: str, metrics: Mapping[str, Any]) -> bool | None:
    """Whether ``criterion`` holds for ``metrics``; ``None`` when the metric was not measured or is NaN."""
    metric, op, value = parse_criterion(criterion)
    measured = metrics.get(metric)
    if measured is None or (isinstance(measured, float) and math.isnan(measured)):
        return None
    return bool(OPERATORS[op](float(measured), value))


@dataclass(frozen=True)
class Judgement:
    """What a leaderboard ranks a dataset's runs by, and how it classifies how each run ended.

    Args:
        headline: the metric rows are ranked by (a key of the evaluation's metrics).
        lower_is_better: the headline's direction.
        tiebreak: a second metric for equal headline means (e.g. ``high_quality`` between equal mode counts).
        tiebreak_lower_is_better: its direction.
        collapse: a run is *collapsed* when any of these holds at its final evaluation (few modes or classes).
        success: a run *succeeds* when all of these hold at its final evaluation (suites set them per budget).
        degrade_tolerance: a run is *degraded* when its final headline is worse than its best over training
            by more than this fraction of the best (``final > best * (1 + tol)`` when lower is better,
            ``final < best * (1 - tol)`` when higher is better).
        coverage: the metric that counts modes or classes, for "dropped over training" (``None``: not counted).
        note: one line a leaderboard prints under the table (what the headline means on this data).
        scale: "linear", or "log" for a positive headline that behaves multiplicatively (FID: seeds of one
            row at 31, 206 and 297): rows are then compared by geometric means and their ratio, tests run on
            the logs. A table with a value <= 0 falls back to "linear" and says so.
        ceiling: the best value the headline can take (8 for modes of 8; ``None`` when unbounded): rows whose
            seeds sit at it cannot be told apart, and the leaderboard's findings say so instead of "n.s.".
        n_fake, n_real: the evaluation sizes the headline needs (generated samples per evaluation, real samples
            in the reference), used where a suite's ``[eval]`` does not set them; ``None``: the protocol's
            defaults (2,000 generated, every real sample). A dataset with many real points declares
            ``n_real``: precision/recall and density/coverage compare every pair of reference points, so
            their cost grows with its square (100,000 points: minutes per evaluation).
        window: how many of a run's last evaluations make its headline value: their mean on the judgement's
            scale (the geometric mean on the log scale), 1 for the final evaluation alone. A headline that
            swings between evaluations almost as much as between seeds (FID on digits) is measured where the run got
            to over its last evaluations, not at one point of its oscillation; never its best. The run's state
            (collapsed, degraded, success) is still judged at its final evaluation, so a late collapse is
            flagged whatever the window.
    """

    headline: str = "fid"
    lower_is_better: bool = True
    tiebreak: str | None = None
    tiebreak_lower_is_better: bool = False
    collapse: tuple[str, ...] = ()
    success: tuple[str, ...] = ()
    degrade_tolerance: float = 0.5
    coverage: str | None = None
    note: str = ""
    scale: str = "linear"
    ceiling: float | None = None
    margin: float | None = None
    margin_reason: str = ""
    n_fake: int | None = None
    n_real: int | None = None
    window: int = 1

    def __post_init__(self):
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"Judgement.window must be a whole number of evaluations >= 1 (1: the final evaluation), "
                             f"got {self.window!r}")
        for name in ("n_fake", "n_real"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 2):
                raise ValueError(f"Judgement.{name} must be a whole number of samples >= 2 or None, got {value!r}")
        if self.scale not in SCALES:
            raise ValueError(f'Judgement.scale must be one of {", ".join(SCALES)}, got {self.scale!r}; use "log" '
                             "for a positive, multiplicative headline such as FID")
        if self.ceiling is not None:
            if isinstance(self.ceiling, bool) or not isinstance(self.ceiling, (int, float)) \
                    or not math.isfinite(self.ceiling):
                raise ValueError(f"Judgement.ceiling must be a finite number (e.g. 8 for modes of 8) or None, got "
                                 f"{self.ceiling!r}")
            object.__setattr__(self, "ceiling", float(self.ceiling))
        for criterion in (*self.collapse, *self.success):
            parse_criterion(criterion)
        self._check_margin()
        if not 0 < self.degrade_tolerance:
            raise ValueError(f"Judgement.degrade_tolerance must be positive, got {self.degrade_tolerance}")
        object.__setattr__(self, "collapse", tuple(self.collapse))
        object.__setattr__(self, "success", tuple(self.success))

    def _check_margin(self) -> None:
        if self.margin is None:
            return
        widest = MAX_MARGIN[self.scale]
        low = 1.0 if self.scale == "log" else 0.0
        what = ("a factor: 1.25 calls a ratio within x0.8-1.25 equivalent" if self.scale == "log"
                else "a fraction of the baseline's value: 0.1 calls a difference within +-10% of it equivalent")
        if isinstance(self.margin, bool) or not isinstance(self.margin, (int, float)) \
                or not low < self.margin <= widest:
            raise ValueError(f"Judgement.margin on the {self.scale} scale must lie in ({low:g}, {widest:g}] ({what}), "
                             f"got {self.margin!r}")
        if not isinstance(self.margin_reason, str) or not self.margin_reason.strip():
            raise ValueError("Judgement.margin needs its margin_reason: say why differences inside "
                             f"{self.margin:g} do not matter for {self.headline}")
        object.__setattr__(self, "margin", float(self.margin))

    def margin_bounds(self, reference: float) -> tuple[float, float] | None:
        """The equivalence interval of an effect on the analysis scale (a log ratio, or a difference on the
        linear scale around a baseline value ``reference``); ``None`` without a usable margin."""
        if self.margin is None:
            return None
        if self.scale == "log":
            return -math.log(self.margin), math.log(self.margin)
        if reference is None or not math.isfinite(reference) or reference == 0:
            return None
        half = self.margin * abs(reference)
        return -half, half

    def run_headline(self, values: Sequence[float]) -> float:
        """One run's headline value from its curve of the headline metric (evaluations in training order).

        The mean of the last ``window`` measured values on the judgement's scale (on the log scale their
        geometric mean, or their plain mean if one is <= 0); NaN when the final evaluation has no finite value
        (the run diverged, or never measured it). A run with fewer evaluations than the window uses those it has.
        """
        values = [float(v) for v in values]
        if not values or not math.isfinite(values[-1]):
            return math.nan
        if self.window == 1:
            return values[-1]
        tail = [v for v in values[-self.window:] if math.isfinite(v)]
        if self.scale == "log" and all(v > 0 for v in tail):
            return math.exp(math.fsum(math.log(v) for v in tail) / len(tail))
        return math.fsum(tail) / len(tail)

    def window_text(self) -> str:
        """How a run's headline value is read, as a table header says it."""
        if self.window == 1:
            return "final evaluation"
        mean = "geometric mean" if self.scale == "log" else "mean"
        return f"{mean} of the last {self.window} evaluations"

    def margin_text(self) -> str:
        """The margin as a reader checks it: "x0.8-1.25" or "+-10% of the baseline's value"."""
        if self.margin is None:
            return "none declared"
        if self.scale == "log":
            return f"×{1 / self.margin:.3g}-{self.margin:.3g}"
        return f"±{self.margin:.0%} of the baseline's value"

    def with_overrides(self, overrides: Mapping[str, Any]) -> Judgement:
        """The judgement with a suite's fields; the margin goes when the suite changes the headline or scale
        and sets no margin of its own (a margin for modes says nothing about mode_kl)."""
        overrides = dict(overrides)
        changes_meaning = any(k in overrides and overrides[k] != getattr(self, k) for k in ("headline", "scale"))
        if changes_meaning and "margin" not in overrides:
            overrides |= {"margin": None, "margin_reason": ""}
        return replace(self, **overrides)

    def with_success(self, success: list[str] | tuple[str, ...] | None) -> Judgement:
        """The same judgement with a suite's success criterion (``None`` keeps the dataset's)."""
        return self if success is None else replace(self, success=tuple(success))

    def eval_sizes(self) -> dict[str, int]:
        """``{"n_fake": ..., "n_real": ...}`` for the sizes this judgement declares (a suite's ``[eval]`` wins)."""
        return {name: getattr(self, name) for name in EVAL_SIZES if getattr(self, name) is not None}

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["collapse"], data["success"] = list(self.collapse), list(self.success)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Judgement:
        if not data:
            return cls()
        return cls(**{f: data[f] for f in cls.__dataclass_fields__ if f in data})  # lists become tuples on init

    def better(self, a: float, b: float) -> bool:
        """Whether headline value ``a`` is better than ``b``."""
        return a < b if self.lower_is_better else a > b


DEFAULT_JUDGEMENT = Judgement(note="FID on the protocol's features")
