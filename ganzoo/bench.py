"""The sweep driver: grid -> store -> executor -> store -> leaderboard.

Idempotent by construction: run ids are hashes of the specs, finished runs are skipped, a run left
"running" by a killed sweep resumes from its checkpoint, and a failed run never stops the others.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import __version__
from .build import resolve_device
from .executor import make_executor
from .grid import Filters, Grid, build_grid
from .registry import Registry, get_registry
from .spec import RunSpec
from .store import FINISHED, Store
from .suite import Suite
from .train import run

PROBE_BATCHES = 6  # training steps timed per combination by --dry-run's estimate
PROBE_EVAL_SAMPLES = 256


@dataclass
class BenchSummary:
    grid: Grid
    skipped: list[str] = field(default_factory=list)  # finished before this invocation
    busy: list[str] = field(default_factory=list)  # running in another live process
    results: dict[str, str] = field(default_factory=dict)  # run id -> status of this invocation
    report_paths: list[Path] = field(default_factory=list)


def versions(spec: RunSpec, registry: Registry) -> dict[str, str]:
    """ganzoo, torch and every distribution that provided a component of ``spec``."""
    out = {"ganzoo": __version__, "torch": torch.__version__}
    parts = [("dataset", spec.dataset), ("generator", spec.generator), ("discriminator", spec.discriminator),
             ("loss", spec.loss)] + [("stabilizer", ref) for ref in spec.stack]
    for kind, ref in parts:
        component = registry.get(kind, ref.name)
        out[component.distribution] = component.version
    return out


def _alive_elsewhere(row: dict) -> bool:
    """A run marked running by another live process on this host is someone else's to finish."""
    if row.get("host") != socket.gethostname() or not row.get("pid") or row["pid"] == os.getpid():
        return False
    try:
        os.kill(row["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def bench(suite: Suite, results_dir: str | Path, *, registry: Registry | None = None, filters: Filters = Filters(),
          seeds: list[int] | None = None, kimg: float | None = None, device: str = "auto", executor: str = "inline",
          progress: bool = True, echo: Callable[[str], None] = print) -> BenchSummary:
    """Train every run of the suite's grid that is not finished yet, then write the leaderboard."""
    from .report import write_report

    registry = registry or get_registry()
    grid = build_grid(suite, registry, filters, seeds, kimg)
    summary = BenchSummary(grid)
    store = Store(results_dir)
    try:
        rows = {}
        for spec in grid.specs:
            store.add(spec, suite.name)
        for row in store.runs(suite.name):
            rows[row["run_id"]] = row
        todo = []
        for spec in grid.specs:
            row = rows[spec.run_id]
            if row["status"] in FINISHED:
                summary.skipped.append(spec.run_id)
            elif row["status"] == "running" and _alive_elsewhere(row):
                summary.busy.append(spec.run_id)
            else:
                todo.append(spec)
        echo(f"Suite {suite.name}: {len(grid.specs)} runs ({len(summary.skipped)} already finished, "
             f"{len(summary.busy)} running elsewhere, {len(todo)} to train) on {resolve_device(device)}")
        bar = tqdm(total=len(grid.specs), initial=len(summary.skipped), unit="run", disable=not progress,
                   dynamic_ncols=True)
        runner = make_executor(executor, device, registry)

        def on_start(spec: RunSpec) -> None:
            store.mark_running(spec.run_id, versions(spec, registry))
            bar.set_postfix_str(f"{spec.dataset.name} {spec.combination} seed {spec.seed}")

        jobs = [(spec, store.run_dir(spec.run_id)) for spec in todo]
        try:
            for result in runner.execute(jobs, on_start):
                store.record(result)
                summary.results[result.run_id] = result.status
                if result.status == "failed":
                    first_line = (result.error or "").splitlines()[0] if result.error else ""
                    bar.write(f"run {result.run_id} failed: {first_line} (see: ganzoo runs --status failed)")
                bar.update(1)
        finally:
            bar.close()
        summary.report_paths = write_report(store, Path(results_dir) / suite.name, suite=suite.name)
    finally:
        store.close()
    return summary


def estimate(grid: Grid, *, registry: Registry | None = None, device: str = "auto",
             on_probe: Callable[[str], None] | None = None) -> dict[str, float]:
    """Estimated seconds per run id, from a few timed training steps of each distinct combination.

    Each probe is a real (tiny) run in a temporary folder: same code path, nothing stored. Training time
    scales with images shown, evaluation time with generated samples and number of evaluations.
    """
    registry = registry or get_registry()
    per_key: dict[tuple, float] = {}
    out = {}
    with tempfile.TemporaryDirectory(prefix="ganzoo-probe-") as tmp:
        for spec in grid.specs:
            key = (spec.dataset.name, spec.combination, spec.budget.batch_size)
            if key not in per_key:
                if on_probe:
                    on_probe(f"{spec.dataset.name} {spec.combination}")
                per_key[key] = _probe(spec, Path(tmp) / spec.run_id, registry, device)
            out[spec.run_id] = per_key[key]
    return out


def _probe(spec: RunSpec, run_dir: Path, registry: Registry, device: str) -> float:
    batch = spec.budget.batch_size
    probe_images = PROBE_BATCHES * batch * spec.optim.d_steps
    n_fake = min(spec.protocol.n_fake, PROBE_EVAL_SAMPLES)
    tiny = replace(spec, budget=replace(spec.budget, kimg=probe_images / 1000, eval_every_kimg=None, max_seconds=None),
                   protocol=replace(spec.protocol, n_fake=n_fake))
    result = run(tiny, run_dir, device, registry)
    if result.status == "failed":
        return float("nan")
    train_per_image = max(result.seconds - result.eval_seconds, 0.0) / max(result.kimg * 1000, 1)
    eval_per_sample = result.eval_seconds / n_fake
    n_evals = 1 if spec.budget.eval_every_kimg is None else int(spec.budget.kimg / spec.budget.eval_every_kimg + 0.999)
    return spec.budget.kimg * 1000 * train_per_image + n_evals * spec.protocol.n_fake * eval_per_sample
