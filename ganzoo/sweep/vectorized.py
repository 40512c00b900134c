"""The vectorised executor: the seeds of each experiment train as one stacked computation per worker.

``VectorizedExecutor`` is ``ProcessExecutor`` whose unit of work is a group (``ganzoo.vectorized.plan``):
each worker process trains one group at a time, every member still its own run with its own result. Runs
that cannot be grouped (a component not declared ``vectorized``, a single seed) train as single runs in
the same workers. With one job (or a registry built in process) it trains inline, group after group.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from ..build import resolve_device
from ..records import FAILED, RunResult
from ..registry import Registry, get_registry
from ..spec import RunSpec
from ..train import RunOptions, run
from ..vectorized.plan import DEFAULT_MAX_GROUP, Unit, plan_units
from .executors import ProcessExecutor


class VectorizedExecutor(ProcessExecutor):
    """Groups of seeds, ``jobs`` at a time in one-thread worker processes (or inline when ``inline``)."""

    name = "vectorized"

    def __init__(self, device: str = "auto", jobs: int = 2, max_group: int = DEFAULT_MAX_GROUP,
                 registry: Registry | None = None, inline: bool = False, note: str = "",
                 options: RunOptions = RunOptions()):
        super().__init__(device, jobs, options=options)
        self.max_group, self.registry, self.inline, self.note = max_group, registry, inline, note

    def plan(self, specs: list[RunSpec]) -> list[Unit]:
        return plan_units(specs, self.registry or get_registry(), self.max_group)

    def units(self, jobs: list[tuple[RunSpec, Path]]) -> list[list[tuple[RunSpec, Path]]]:
        run_dirs = {spec.run_id: run_dir for spec, run_dir in jobs}
        return [[(spec, run_dirs[spec.run_id]) for spec in unit.specs] for unit in self.plan([s for s, _ in jobs])]

    def _submit(self, worker: ProcessPoolExecutor, unit: list[tuple[RunSpec, Path]]) -> Future:
        return worker.submit(_unit_in_worker, [spec.canonical() for spec, _ in unit],
                             [str(run_dir) for _, run_dir in unit], self.device, self.options)

    def execute(self, jobs: Iterable[tuple[RunSpec, Path]], on_start: Callable[[RunSpec], bool]) -> Iterator[RunResult]:
        if not self.inline:
            yield from super().execute(jobs, on_start)
            return
        for unit in self.units(list(jobs)):
            claimed = [(spec, run_dir) for spec, run_dir in unit if on_start(spec)]
            if claimed:
                yield from train_unit([s for s, _ in claimed], [d for _, d in claimed], self.device, self.registry,
                                      self.options)


def train_unit(specs: list[RunSpec], run_dirs: list[Path], device: str, registry: Registry | None = None,
               options: RunOptions = RunOptions()) -> list[RunResult]:
    """One run as a single run; several as a vectorised group, all of whose members fail together if it fails
    (each resumes from its last checkpoint when the sweep is run again)."""
    if len(specs) == 1:
        return [run(specs[0], Path(run_dirs[0]), device, registry, options)]
    from ..vectorized.group import train_group

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
