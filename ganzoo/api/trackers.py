"""Experiment trackers: what a plugin writes to log runs to TensorBoard, MLflow, W&B or anything else.

A tracker is registered through ``register_trackers(register)`` and chosen with ``--log NAME[=TARGET]`` on
``ganzoo bench`` and ``ganzoo train``. Runs train in worker processes, so the harness builds each run's tracker
inside the process that trains it, from plain settings: ``factory(run, target) -> Tracker``.

The harness guards every call: a tracker that raises is reported once, turned off for that run, and the run
goes on. A tracker therefore need not catch its own errors, and must never be relied on for the results
(the store and the run folders are the record).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .components import NAME_PATTERN

ParamValue = str | int | float | bool


@dataclass(frozen=True)
class TrackedRun:
    """The run a tracker logs, as its factory receives it.

    Args:
        run_id: the run's id (the hash of its spec): the same run, resumed, has the same id.
        label: a readable name, ``dataset generator/discriminator/loss/stack seed N``.
        experiment: the suite the run trains for (``train`` for ``ganzoo train``), a natural experiment name.
        results_dir: the results folder of the sweep (absolute), where offline logs belong by default.
        spec: the run's spec in its canonical JSON form (``RunSpec.canonical()``).
    """

    run_id: str
    label: str
    experiment: str
    results_dir: Path
    spec: Mapping[str, Any] = field(default_factory=dict)


class Tracker:
    """One run's logger. Subclass it and override what your backend records; every method defaults to nothing.

    Calls come in this order: ``log_params`` once when the run starts (or resumes), ``log_metrics`` at each
    evaluation, ``log_image`` once when the run has trained to its end, and ``close`` last.
    """

    def log_params(self, params: Mapping[str, ParamValue]) -> None:
        """The run's spec, flat: ``generator``, ``generator.ch``, ``budget.kimg``, ``seed``, ..."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """One evaluation: every metric, ``d_loss``, ``g_loss``, ``imgs_per_s``, ``kimg``; ``step`` is G steps."""

    def log_image(self, name: str, path: Path, step: int) -> None:
        """A picture the run wrote (its sample grid, a PNG at ``path``), taken at G step ``step``."""

    def close(self, status: str | None) -> None:
        """The run ended: ``done``, ``diverged``, or ``None`` when it stopped early (an error, an interrupt)."""


@dataclass(frozen=True)
class TrackerType:
    """A tracker as registered by ``register_trackers``.

    Args:
        name: what ``--log`` names (same rules as component names).
        factory: ``factory(run: TrackedRun, target: str | None) -> Tracker``, called in the training process.
            ``target`` is what the user wrote after ``--log NAME=`` (after ``prepare``), else ``None``.
        description: one line.
        modules: the modules the factory imports; ``--log NAME`` fails before anything trains when one is missing.
        install: how to install them, shown in that error (``pip install 'ganzoo[tensorboard]'``).
        prepare: ``prepare(target, results_dir) -> target``, called once in the sweep's own process before any
            run trains: resolve a default destination (so that every worker, on any node, logs to the same one)
            and create a store that runs would otherwise race to create. An exception turns the tracker off for
            the sweep, with a warning.
        plugin, distribution, version: who registered it, filled in by the registry.
    """

    name: str
    factory: Callable[[TrackedRun, str | None], Tracker]
    description: str
    modules: tuple[str, ...] = ()
    install: str = ""
    prepare: Callable[[str | None, Path], str | None] | None = None
    plugin: str = ""
    distribution: str = ""
    version: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise ValueError(f'Invalid tracker name "{self.name}": use lowercase letters, digits, "_", "." or "-", '
                             "starting with a letter (e.g. wandb)")
        if not callable(self.factory):
            raise ValueError(f'tracker "{self.name}": factory must be callable (run, target) -> Tracker, '
                             f"got {type(self.factory).__name__}")
        if self.prepare is not None and not callable(self.prepare):
            raise ValueError(f'tracker "{self.name}": prepare must be callable (target, results_dir) -> target')
        if not isinstance(self.description, str) or not self.description.strip() or "\n" in self.description.strip():
            raise ValueError(f'tracker "{self.name}": description must be one non-empty line')
        if isinstance(self.modules, str) or not all(isinstance(m, str) and m for m in self.modules):
            raise ValueError(f'tracker "{self.name}": modules must be a tuple of module names, got {self.modules!r}')
        object.__setattr__(self, "modules", tuple(self.modules))
