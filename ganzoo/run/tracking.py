"""Experiment trackers around a run (``--log NAME[=TARGET]``): chosen and checked in the sweep's process, built in
the process that trains, and never able to fail a run.

``parse_log`` reads the option and refuses an unknown tracker or a missing library before anything trains;
``prepare_trackers`` resolves each tracker's destination once, in the sweep's process, into ``TrackerSettings``:
plain, picklable values that travel in ``RunOptions`` to worker processes and Ray tasks. There ``RunTrackers``
builds the trackers and logs the run's spec, each evaluation and the sample grid through them. A tracker that
raises is reported once (a warning naming it and how to fix it), turned off for the run, and the run goes on: the
store and the run folders are the record, a tracker only a view of it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api.trackers import ParamValue, TrackedRun, Tracker, TrackerType
from ..core.registry import Registry
from ..core.spec import RunSpec


class TrackerWarning(UserWarning):
    """A tracker failed and was turned off; the run it logged went on."""


@dataclass(frozen=True)
class TrackerSettings:
    """One ``--log`` choice, resolved in the sweep's process: what a worker needs to build the tracker."""

    name: str
    results_dir: str  # absolute
    experiment: str = "ganzoo"
    target: str | None = None  # after the tracker's ``prepare``


def parse_log(values: Iterable[str], registry: Registry) -> list[tuple[str, str | None]]:
    """``--log NAME[=TARGET]`` values as (name, target) pairs, each tracker registered and its library installed.

    Raises:
        ValueError: an unknown tracker, one given twice, or one whose library is missing (with how to install it).
    """
    chosen: list[tuple[str, str | None]] = []
    for value in values:
        name, has_target, target = value.partition("=")
        name = name.strip()
        tracker = registry.tracker(name)  # unknown: UnknownComponentError, with the registered names
        if name in (n for n, _ in chosen):
            raise ValueError(f"--log {name} is given twice: give each tracker once")
        missing = [m for m in tracker.modules if not _importable(m)]
        if missing:
            how = tracker.install or f"pip install {' '.join(missing)}"
            raise ValueError(f"--log {name} needs {', '.join(missing)}, which is not installed: {how}")
        chosen.append((name, target.strip() or None if has_target else None))
    return chosen


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing or broken
        return False


def prepare_trackers(chosen: Iterable[tuple[str, str | None]], results_dir: str | Path, experiment: str,
                     registry: Registry, warn: Callable[[str], None]) -> tuple[TrackerSettings, ...]:
    """The settings every run of a sweep logs with; a tracker whose ``prepare`` raises is left out, with ``warn``."""
    results_dir = Path(results_dir).resolve()
    settings = []
    for name, target in chosen:
        tracker = registry.tracker(name)
        if tracker.prepare is not None:
            try:
                target = tracker.prepare(target, results_dir)
            except Exception as exc:
                warn(f"warning: {_failure(tracker, 'preparing its destination', exc)} It is off for this sweep; the "
                     "runs go on.")
                continue
        settings.append(TrackerSettings(name, str(results_dir), experiment, target))
    return tuple(settings)


def _failure(tracker: TrackerType, what: str, exc: BaseException) -> str:
    """What failed and how to fix it, in one sentence or two."""
    if isinstance(exc, ImportError):
        fix = tracker.install or f"install the module {exc.name or ''} it needs".replace("  ", " ")
        fix = f"Install it: {fix}"
    elif isinstance(exc, OSError):
        fix = "Check that its destination exists and is writable, or give another with --log NAME=TARGET"
    else:
        fix = f"Fix the cause above, or leave out --log {tracker.name}"
    return f'tracker "{tracker.name}" failed while {what}: {type(exc).__name__}: {exc}. {fix}.'


def params_of(spec: RunSpec) -> dict[str, ParamValue]:
    """The spec, flat: the components by name, their hyperparameters as ``KIND.KEY`` (a stabilizer's as
    ``stabilizer.NAME.KEY``), seed, budget, optimiser, evaluation protocol and compute as ``TABLE.KEY``."""
    params: dict[str, Any] = {"run_id": spec.run_id, "seed": spec.seed, "stack": spec.stack_name}
    for kind in ("dataset", "generator", "discriminator", "loss"):
        ref = getattr(spec, kind)
        params[kind] = ref.name
        params.update({f"{kind}.{key}": value for key, value in ref.hparams.items()})
    for ref in spec.stack:
        params.update({f"stabilizer.{ref.name}.{key}": value for key, value in ref.hparams.items()})
    canonical = spec.canonical()
    for table, key in (("budget", "budget"), ("optim", "optim"), ("protocol", "eval"), ("compute", "compute")):
        params.update({f"{key}.{name}": value for name, value in (canonical.get(table) or {}).items()})
    return {key: value if isinstance(value, str | int | float | bool) else json.dumps(value, sort_keys=True)
            for key, value in params.items() if value is not None}


def evaluation_metrics(evaluation: Mapping[str, Any], eval_seconds: float) -> dict[str, float]:
    """An evaluation's values as a tracker logs them: its metrics, the mean losses since the last evaluation,
    ``kimg``, and ``imgs_per_s``, training images per training second so far (evaluation time excluded, as in
    the run's record)."""
    kimg = float(evaluation["kimg"])
    training_seconds = float(evaluation.get("seconds", 0.0)) - eval_seconds
    values = {**evaluation.get("metrics", {}), "d_loss": evaluation["d_loss"], "g_loss": evaluation["g_loss"],
              "kimg": kimg, "imgs_per_s": kimg * 1000 / training_seconds if training_seconds > 0 else math.nan}
    return {key: float(value) for key, value in values.items() if isinstance(value, int | float)}


class RunTrackers:
    """A run's trackers, each guarded: the first exception from one is reported once and turns it off."""

    def __init__(self, settings: Iterable[TrackerSettings], spec: RunSpec, registry: Registry):
        self.spec = spec
        self.live: list[tuple[TrackerType, Tracker]] = []
        self.closed = False
        for setting in settings:
            tracker_type = registry.tracker(setting.name)
            run = TrackedRun(spec.run_id, f"{spec.dataset.name} {spec.combination} seed {spec.seed}",
                             setting.experiment, Path(setting.results_dir), spec.canonical())
            tracker = self._guarded(tracker_type, "starting", lambda t=tracker_type, r=run, s=setting:
                                    t.factory(r, s.target))
            if tracker is not None:
                self.live.append((tracker_type, tracker))
        if self.live:
            params = params_of(spec)
            self._each("logging the run's spec", lambda tracker: tracker.log_params(params))

    def log_evaluation(self, evaluation: Mapping[str, Any], eval_seconds: float) -> None:
        values, step = evaluation_metrics(evaluation, eval_seconds), int(evaluation["g_steps"])
        self._each(f"logging the evaluation at G step {step}", lambda tracker: tracker.log_metrics(values, step))

    def log_samples(self, path: Path, step: int) -> None:
        self._each("logging the sample grid", lambda tracker: tracker.log_image("samples", Path(path), step))

    def close(self, status: str | None) -> None:
        """Close every tracker once (a later call, from a ``finally`` after a run ended normally, does nothing)."""
        if self.closed:
            return
        self.closed = True
        self._each("closing", lambda tracker: tracker.close(status))

    def _each(self, what: str, call: Callable[[Tracker], None]) -> None:
        for tracker_type, tracker in list(self.live):
            if self._guarded(tracker_type, what, lambda tracker=tracker: call(tracker) or True) is None:
                self.live = [(t, k) for t, k in self.live if k is not tracker]
                if what != "closing":
                    with contextlib.suppress(Exception):  # let it release what it holds; it was reported once
                        tracker.close(None)

    def _guarded(self, tracker_type: TrackerType, what: str, call: Callable[[], Any]) -> Any:
        """``call()``, or ``None`` after warning once that it raised."""
        try:
            return call()
        except Exception as exc:
            warnings.warn(f"{_failure(tracker_type, f'{what} for run {self.spec.run_id}', exc)} It is off for the "
                          "rest of this run; the run goes on.", TrackerWarning, stacklevel=2)
            return None
