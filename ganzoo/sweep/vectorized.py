"""The vectorised executor: the seeds of each experiment train as one stacked computation per worker.

``VectorizedExecutor`` is ``ProcessExecutor`` whose unit of work is a group (``ganzoo.run.vectorized.plan``):
each worker process trains one group at a time, every member still its own run with its own result. Runs
that cannot be grouped (a component not declared ``vectorized``, a single seed) train as single runs in
the same workers. ``InlineGroupExecutor`` trains the same units in this process, group after group (one
job, or a registry that worker processes could not rebuild).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from ..core.records import FAILED, RunResult
from ..core.registry import Registry, get_registry
from ..core.spec import RunSpec
from ..run.build import resolve_device
from ..run.train import RunOptions, run
from ..run.vectorized.plan import DEFAULT_MAX_GROUP, Unit, describe_plan, plan_units
from .executors import ProcessExecutor


class VectorizedExecutor(ProcessExecutor):
    """Groups of seeds, ``jobs`` at a time in one-thread worker processes."""

    name = "vectorized"
    unit_name = "groups"

    def __init__(self, device: str = "auto", jobs: int = 2, max_group: int = DEFAULT_MAX_GROUP,
                 registry: Registry | None = None, options: RunOptions = RunOptions()):
        super().__init__(device, jobs, options=options)
        self.max_group, self.registry = max_group, registry  # a registry the workers rebuild from the entry points

    def plan(self, specs: list[RunSpec]) -> list[Unit]:
        return plan_units(specs, self.registry or get_registry(), self.max_group)

    def describe(self, todo: list[RunSpec]) -> list[str]:
        return [describe_units(self.plan(todo), self.max_group), *super().describe(todo)]

    def units(self, jobs: list[tuple[RunSpec, Path]]) -> list[list[tuple[RunSpec, Path]]]:
        return units_of(self.plan([spec for spec, _ in jobs]), jobs)

    def _submit(self, worker: ProcessPoolExecutor, unit: list[tuple[RunSpec, Path]]) -> Future:
        return worker.submit(_unit_in_worker, [spec.canonical() for spec, _ in unit],
                             [str(run_dir) for _, run_dir in unit], self.device, self.options)


class InlineGroupExecutor:
    """Groups of seeds trained in this process, one after another: one job, or a registry workers cannot rebuild."""

    name = "vectorized"

    def __init__(self, device: str = "auto", max_group: int = DEFAULT_MAX_GROUP, registry: Registry | None = None,
                 note: str = "", options: RunOptions = RunOptions()):
        self.device, self.max_group, self.registry, self.note, self.options = device, max_group, registry, note, options

    def plan(self, specs: list[RunSpec]) -> list[Unit]:
        return plan_units(specs, self.registry or get_registry(), self.max_group)

    def describe(self, todo: list[RunSpec]) -> list[str]:
        return [describe_units(self.plan(todo), self.max_group), *([self.note] if self.note else [])]

    def execute(self, jobs: Iterable[tuple[RunSpec, Path]], on_start: Callable[[RunSpec], bool]) -> Iterator[RunResult]:
        jobs = list(jobs)
        for unit in units_of(self.plan([spec for spec, _ in jobs]), jobs):
            claimed = [(spec, run_dir) for spec, run_dir in unit if on_start(spec)]
            if claimed:
                yield from train_unit([s for s, _ in claimed], [d for _, d in claimed], self.device, self.registry,
                                      self.options)


def describe_units(units: list[Unit], max_group: int) -> str:
    return f"{describe_plan(units, max_group)}; the others one by one (--dry-run says why)"


def units_of(units: list[Unit], jobs: list[tuple[RunSpec, Path]]) -> list[list[tuple[RunSpec, Path]]]:
    """The planned ``units`` as lists of (spec, run folder) pairs, the folders taken from ``jobs``."""
    run_dirs = {spec.run_id: run_dir for spec, run_dir in jobs}
    return [[(spec, run_dirs[spec.run_id]) for spec in unit.specs] for unit in units]


def train_unit(specs: list[RunSpec], run_dirs: list[Path], device: str, registry: Registry | None = None,
               options: RunOptions = RunOptions()) -> list[RunResult]:
    """One run as a single run; several as a vectorised group, all of whose members fail together if it fails
    (each resumes from its last checkpoint when the sweep is run again)."""
    if len(specs) == 1:
        return [run(specs[0], Path(run_dirs[0]), device, registry, options)]
    from ..run.vectorized.group import train_group

    try:
        return train_group(specs, [Path(d) for d in run_dirs], resolve_device(device), registry or get_registry(),
                           options)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        error = (f"vectorised group of {len(specs)} seeds failed: {type(exc).__name__}: {exc}. Rerun the same "
                 "command to resume its members from their last checkpoints, or train them one by one with "
                 f"--executor processes.\n\n{traceback.format_exc()}")
        return [RunResult(spec.run_id, FAILED, error=error, device=str(device)) for spec in specs]


def _unit_in_worker(spec_data: list[dict], run_dirs: list[str], device: str, options: RunOptions) -> list[RunResult]:
    return train_unit([RunSpec.from_dict(d) for d in spec_data], [Path(d) for d in run_dirs], device, None, options)
