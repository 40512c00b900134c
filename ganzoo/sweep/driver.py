"""The sweep driver: grid -> store -> executor -> store -> leaderboard.

Idempotent by construction: run ids are hashes of the specs, finished runs are skipped, a run left
running by a killed sweep resumes from its checkpoint, and a failed run never stops the others.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..api.judgement import DEFAULT_JUDGEMENT
from ..core.records import FAILED, FINISHED, RUNNING, DatasetRecord, SuiteRecord
from ..core.registry import Registry, get_registry
from ..core.spec import RunSpec
from ..core.store import Store, StoreError, held_elsewhere
from ..run.build import resolve_device
from ..run.grid import Filters, Grid, build_grid, explain_empty
from ..run.suite import Suite, SuiteError
from ..run.tracking import prepare_trackers
from ..run.train import RunOptions
from .factory import make_executor
from .real_data import record_real_data
from .slurm import LOG_FOLDER
from .versions import say_reused_versions, versions


@dataclass
class BenchSummary:
    grid: Grid
    skipped: list[str] = field(default_factory=list)  # finished before this invocation
    busy: list[str] = field(default_factory=list)  # running in another live process
    results: dict[str, str] = field(default_factory=dict)  # run id -> status of this invocation
    report_paths: list[Path] = field(default_factory=list)


def suite_record(suite: Suite, registry: Registry) -> SuiteRecord:
    """What the reporter needs from a suite: design, baselines, and each dataset's judgement at this budget."""
    datasets = {}
    for plan in suite.datasets:
        component = registry.get("dataset", plan.dataset.name)
        judgement = (component.judgement or DEFAULT_JUDGEMENT).with_overrides(plan.judgement).with_success(plan.success)
        datasets[plan.dataset.name] = DatasetRecord(baseline=dict(plan.baseline), judgement=judgement,
                                                    design=plan.design if plan.design != suite.design else None)
    return SuiteRecord(design=suite.design, description=suite.description, source=suite.source, datasets=datasets)



def bench(suite: Suite, results_dir: str | Path, *, registry: Registry | None = None, filters: Filters = Filters(),
          seeds: list[int] | None = None, kimg: float | None = None, g_steps: int | None = None,
          device: str = "auto", executor: str = "auto", jobs: int | None = None, keep_checkpoints: bool = False,
          ray_settings: dict | None = None, slurm_settings: dict | None = None, progress: bool = True,
          max_group: int | None = None, trackers: Sequence[tuple[str, str | None]] = (),
          echo: Callable[[str], None] = print) -> BenchSummary:
    """Train every run of the suite's grid that is not finished yet, then write the leaderboard.

    ``keep_checkpoints``: keep each finished run's training state (D, optimisers), not only its evaluated G.
    ``ray_settings``: with ``executor="ray"``, ``RayExecutor``'s settings (address, runs_per_gpu, storage...).
    ``slurm_settings``: with ``executor="slurm"``, ``SlurmExecutor``'s (partition, gpus_per_node, cluster...);
    its logs go to ``<results_dir>/slurm-logs`` unless they name a ``log_dir``.
    ``max_group``: with ``executor="vectorized"``, the most seeds trained as one group.
    ``trackers``: ``--log`` as ``ganzoo.run.tracking.parse_log`` reads it: (tracker, target) pairs every run logs to.
    """
    from ..report import write_report

    registry = registry or get_registry()
    if executor in ("ray", "slurm"):  # the cluster's GPUs are not the driver's: the executor checks the device
        driver_device = "auto"
    else:
        driver_device = device
        resolve_device(device)  # a missing GPU stops the sweep before anything is written
    grid = build_grid(suite, registry, filters, seeds, kimg, g_steps)
    if not grid.specs:
        raise SuiteError(explain_empty(suite, registry, filters, seeds=seeds, kimg=kimg, g_steps=g_steps))
    summary = BenchSummary(grid)
    store = Store(results_dir)
    try:
        store.set_suite_record(suite.name, suite_record(suite, registry))
        store.add_many(grid.specs, suite.name)
        rows = {row["run_id"]: row for row in store.runs(suite.name)}
        todo = []
        for spec in grid.specs:
            row = rows[spec.run_id]
            if row["status"] in FINISHED:
                summary.skipped.append(spec.run_id)
            elif row["status"] == RUNNING and held_elsewhere(row):
                summary.busy.append(spec.run_id)
            else:
                todo.append(spec)
        say_reused_versions(grid, rows, summary.skipped, registry, echo)
        where = {"ray": "Ray", "slurm": "SLURM"}.get(executor) or resolve_device(device)
        echo(f"Suite {suite.name}: {len(grid.specs)} runs ({len(summary.skipped)} already finished, "
             f"{len(summary.busy)} running elsewhere, {len(todo)} to train) on {where}")
        settings = ray_settings or {}
        if executor == "slurm":
            settings = {"log_dir": Path(results_dir) / LOG_FOLDER, **(slurm_settings or {})}
        tracking = prepare_trackers(trackers, results_dir, suite.name, registry, echo) if todo else ()
        options = RunOptions(keep_checkpoints, trackers=tracking)
        runner = make_executor(executor, device, registry, jobs, options=options, max_group=max_group, **settings)
        for line in runner.describe(todo) if todo else []:
            echo(line)
        bar = tqdm(total=len(grid.specs), initial=len(summary.skipped), unit="run", disable=not progress,
                   dynamic_ncols=True)

        in_flight: dict[str, str] = {}  # run id -> label, shown next to the bar

        def on_start(spec: RunSpec) -> bool:
            # Claimed just before dispatch: another sweep on this folder may have taken or finished it since.
            if not store.claim(spec.run_id, versions(spec, registry)):
                summary.busy.append(spec.run_id)
                bar.update(1)
                return False
            in_flight[spec.run_id] = f"{spec.dataset.name} {spec.combination} seed {spec.seed}"
            bar.set_postfix_str(" | ".join(in_flight.values()))
            return True

        work = [(spec, store.run_dir(spec.run_id)) for spec in todo]
        try:
            for result in runner.execute(work, on_start):
                _record(store, result)
                in_flight.pop(result.run_id, None)
                bar.set_postfix_str(" | ".join(in_flight.values()))
                summary.results[result.run_id] = result.status
                if result.status == FAILED:
                    first_line = (result.error or "").splitlines()[0] if result.error else ""
                    bar.write(f"run {result.run_id} failed: {first_line} (see: ganzoo runs --status failed)")
                bar.update(1)
        finally:
            bar.close()
        record_real_data(grid, store, suite.name, registry, driver_device, echo)
        summary.report_paths = write_report(store, Path(results_dir) / suite.name, suite=suite.name)
    finally:
        store.close()
    return summary


class DiskFull(StoreError):
    """The disk under the results folder is full: the sweep stops, everything recorded so far stays."""


def _record(store: Store, result) -> None:
    """Record ``result``; a full disk stops the sweep with one line (the run stays resumable)."""
    try:
        store.record(result)
    except sqlite3.OperationalError as exc:
        if "full" not in str(exc):
            raise
        raise DiskFull(f"The disk holding {store.path} is full ({exc}): the sweep stopped. Everything recorded "
                       f"before is intact; run {result.run_id} finished but is not recorded. Free some space and rerun "
                       "the same command: it is recovered from its checkpoint without training again.") from exc
    if result.status == FAILED and "No space left on device" in (result.error or ""):
        raise DiskFull(f"The disk holding {store.results_dir} is full: run {result.run_id} could not write its "
                       "checkpoint, so the sweep stopped (the run is recorded failed and resumes from its last "
                       "checkpoint). Free some space and rerun the same command.")


