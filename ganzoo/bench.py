"""The sweep driver: grid -> store -> executor -> store -> leaderboard.

Idempotent by construction: run ids are hashes of the specs, finished runs are skipped, a run left
running by a killed sweep resumes from its checkpoint, and a failed run never stops the others.
"""

from __future__ import annotations

import json
import math
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import __version__
from .build import resolve_device
from .executor import ProcessExecutor, make_executor
from .grid import Filters, Grid, build_grid, explain_empty
from .judgement import DEFAULT_JUDGEMENT
from .records import FAILED, FINISHED, RUNNING
from .registry import Registry, get_registry
from .spec import RunSpec
from .store import Store, StoreError, held_elsewhere
from .suite import Suite, SuiteError
from .train import RunOptions, protocol_of, run

REAL_DATA_SEED = 2_000_003  # the real-data row draws its samples from its own stream
PROBE_BATCHES = 6  # training steps timed per combination by --dry-run's estimate
PROBE_EVAL_SAMPLES = 1000


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


def suite_record(suite: Suite, registry: Registry) -> dict:
    """What the reporter needs from a suite: design, baselines, and each dataset's judgement at this budget."""
    datasets = {}
    for plan in suite.datasets:
        component = registry.get("dataset", plan.dataset.name)
        judgement = (component.judgement or DEFAULT_JUDGEMENT).with_success(plan.success)
        datasets[plan.dataset.name] = {"baseline": dict(plan.baseline), "judgement": judgement.as_dict()}
    return {"design": suite.design, "description": suite.description, "source": suite.source, "datasets": datasets}


def record_real_data(grid: Grid, store: Store, suite: str, registry: Registry, device: str = "auto",
                     echo: Callable[[str], None] = print) -> None:
    """Evaluate real data through each (dataset, protocol) of the grid once: the leaderboard's ceiling row.

    Each dataset chooses what its real row is (``Dataset.real_samples``: fresh draws where it can,
    else the data resampled). A failure here is a warning: it never costs the runs' results.
    """
    known = {r.get("key") for r in store.references(suite).values()}
    seen = set()
    for spec in grid.specs:
        canonical = spec.canonical()
        key = json.dumps([spec.dataset.name, spec.dataset.hparams, canonical["protocol"]]
                         + ([] if spec.compute.is_default else [canonical["compute"]]), sort_keys=True)
        if key in known or key in seen:
            continue
        seen.add(key)
        try:
            metrics, note, fingerprint = real_data_metrics(spec, registry, resolve_device(device))
        except Exception as exc:  # the reference row is a courtesy; the sweep's results stand without it
            echo(f"warning: no real-data row for {spec.dataset.name}: {type(exc).__name__}: {exc}")
            continue
        store.set_reference(suite, spec.dataset.name, fingerprint,
                            {"key": key, "metrics": metrics, "note": note, "n": spec.protocol.n_fake})


def real_data_metrics(spec: RunSpec, registry: Registry, device: torch.device) -> tuple[dict, str, str]:
    """(metrics, what the real samples are, protocol fingerprint) of real data under ``spec``'s protocol."""
    from .metrics import Evaluator

    dataset = registry.get("dataset", spec.dataset.name).build(**spec.dataset.hparams).to(device)
    evaluator = Evaluator(dataset, spec.protocol, device, registry=registry)
    rng = torch.Generator(device=device).manual_seed(REAL_DATA_SEED)
    kept: list[torch.Tensor] = []

    def sample(n: int) -> torch.Tensor:
        kept.append(dataset.real_samples(n, rng))
        return kept[-1]

    metrics = dict(evaluator(sample))
    metrics.update(dataset.extra_metrics(torch.cat(kept)[: spec.protocol.n_fake]))
    # Filed under the fingerprint of the runs it stands beside (theirs includes how they were trained).
    return {k: float(v) for k, v in metrics.items()}, dataset.real_samples_note, protocol_of(evaluator, spec)[1]


def bench(suite: Suite, results_dir: str | Path, *, registry: Registry | None = None, filters: Filters = Filters(),
          seeds: list[int] | None = None, kimg: float | None = None, g_steps: int | None = None,
          device: str = "auto", executor: str = "auto", jobs: int | None = None, keep_checkpoints: bool = False,
          ray_settings: dict | None = None, progress: bool = True,
          echo: Callable[[str], None] = print) -> BenchSummary:
    """Train every run of the suite's grid that is not finished yet, then write the leaderboard.

    ``keep_checkpoints``: keep each finished run's training state (D, optimisers), not only its evaluated G.
    ``ray_settings``: with ``executor="ray"``, ``RayExecutor``'s settings (address, runs_per_gpu, storage...).
    """
    from .report import write_report

    registry = registry or get_registry()
    if executor == "ray":  # the cluster's GPUs are not the driver's: the executor checks the device
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
        _say_reused_versions(grid, rows, summary.skipped, registry, echo)
        where = "Ray" if executor == "ray" else resolve_device(device)
        echo(f"Suite {suite.name}: {len(grid.specs)} runs ({len(summary.skipped)} already finished, "
             f"{len(summary.busy)} running elsewhere, {len(todo)} to train) on {where}")
        runner = make_executor(executor, device, registry, jobs, options=RunOptions(keep_checkpoints),
                               **(ray_settings or {}))
        if isinstance(runner, ProcessExecutor) and todo:
            echo(f"{runner.jobs} runs at a time in worker processes of {runner.threads} thread(s) each")
        if runner.note and todo:
            echo(runner.note)
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


@dataclass
class Estimates:
    seconds: dict[str, float]  # run id -> estimated seconds (NaN where its probe failed)
    failures: dict[str, str] = field(default_factory=dict)  # run id -> why its combination's probe failed


class ProbeFailed(RuntimeError):
    """A timed probe run of a combination failed: the combination would fail in the sweep too."""


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


def _say_reused_versions(grid: Grid, rows: dict, skipped: list[str], registry: Registry, echo) -> None:
    """Finished runs are reused by id; say so when they were trained with other versions than installed now."""
    changes: dict[str, set[str]] = {}
    count = 0
    for spec in grid.specs:
        if spec.run_id not in skipped:
            continue
        then, now = rows[spec.run_id].get("versions") or {}, versions(spec, registry)
        changed = {f"{name} {then.get(name, '(none)')} -> {now.get(name, '(none)')}" for name in set(then) | set(now)
                   if then.get(name) != now.get(name)}
        if changed:
            count += 1
            for change in changed:
                changes.setdefault(change, set()).add(spec.run_id)
    if count:
        echo(f"{count} finished runs were trained with other versions than installed now "
             f"({'; '.join(sorted(changes))}); they are reused as they are. To train them again, use a new "
             "--results-dir.")


def estimate(grid: Grid, *, registry: Registry | None = None, device: str = "auto", threads: int | None = None,
             on_probe: Callable[[str], None] | None = None, skip: set[str] = frozenset()) -> Estimates:
    """Estimated seconds per run id, from timed probes; nothing is stored.

    ``skip``: run ids not to estimate (finished already). A combination whose probe fails gets NaN and the
    probe's error, which is what its runs would fail with.

    Training: two tiny real runs of each distinct (dataset, G, D, stack, batch, budget unit) in a temporary
    folder, whose difference gives seconds per unit of budget (real image or G step) without start-up
    costs. Evaluation: one evaluation per dataset and protocol at up to ``PROBE_EVAL_SAMPLES`` samples,
    scaled to the protocol's count.
    ``threads``: the torch thread count the runs will use (worker processes use one).
    """
    registry = registry or get_registry()
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _estimate(grid, registry, device, on_probe, skip)
    finally:
        torch.set_num_threads(previous_threads)


def _estimate(grid: Grid, registry: Registry, device: str, on_probe, skip: set[str]) -> Estimates:
    train_cost: dict[tuple, tuple[float, float] | str] = {}
    eval_cost: dict[tuple, float] = {}
    out = Estimates({})
    specs = [spec for spec in grid.specs if spec.run_id not in skip]
    with tempfile.TemporaryDirectory(prefix="ganzoo-probe-") as tmp:
        if specs:  # warm-up: first-call costs (lazy imports, kernel selection) would land on one probe
            run(_tiny(specs[0], 2, 16), Path(tmp) / "warm-up", device, registry)
        for i, spec in enumerate(specs):
            key = (spec.dataset.name, spec.generator.name, spec.discriminator.name, spec.stack_name,
                   spec.budget.batch_size, spec.budget.unit)
            protocol_key = (spec.dataset.name, repr(spec.protocol))
            if key not in train_cost:
                if on_probe:
                    on_probe(f"{spec.dataset.name} {spec.combination}")
                try:
                    train_cost[key] = _probe_training(spec, Path(tmp) / str(i), registry, device)
                except ProbeFailed as exc:
                    train_cost[key] = str(exc)
            if isinstance(train_cost[key], str):
                out.seconds[spec.run_id], out.failures[spec.run_id] = math.nan, train_cost[key]
                continue
            if protocol_key not in eval_cost:
                eval_cost[protocol_key] = _probe_evaluation(spec, Path(tmp) / f"eval{i}", registry, device)
            per_unit, start_up = train_cost[key]
            n_evals = math.ceil(spec.budget.total / spec.budget.eval_every)
            out.seconds[spec.run_id] = start_up + spec.budget.total * per_unit + n_evals * eval_cost[protocol_key]
    return out


def _tiny(spec: RunSpec, batches: int, n_fake: int) -> RunSpec:
    """``spec`` cut to about ``batches`` G steps, in the budget's own unit, evaluated once at the end."""
    if spec.budget.unit == "kimg":
        images = batches * spec.budget.batch_size * spec.optim.d_steps
        budget = replace(spec.budget, kimg=images / 1000, eval_every_kimg=None, max_seconds=None)
    else:
        budget = replace(spec.budget, g_steps=batches, eval_every_g_steps=None, max_seconds=None)
    return replace(spec, budget=budget, protocol=replace(spec.protocol, n_fake=n_fake, metrics=("fid",)))


def _probe_training(spec: RunSpec, run_dir: Path, registry: Registry, device: str) -> tuple[float, float]:
    """(seconds per unit of budget, fixed seconds per run) from runs of 2 and 2 + PROBE_BATCHES batches.

    The fixed part is wall time (building models and data, the evaluator, writing the checkpoint and
    samples), measured around the short run, minus its training and evaluation.
    """
    started = time.perf_counter()
    short = run(_tiny(spec, 2, 16), run_dir / "short", device, registry)
    short_wall = time.perf_counter() - started
    if short.status == FAILED:
        raise ProbeFailed((short.error or "failed").splitlines()[0])
    long = run(_tiny(spec, 2 + PROBE_BATCHES, 16), run_dir / "long", device, registry)
    if long.status == FAILED:
        raise ProbeFailed((long.error or "failed").splitlines()[0])

    def train_seconds(r):
        return r.seconds - r.eval_seconds

    def spent(r):  # real images or G steps
        return spec.budget.spent(r.kimg * 1000, r.g_steps)

    per_unit = max(train_seconds(long) - train_seconds(short), 0.0) / max(spent(long) - spent(short), 1)
    return per_unit, max(short_wall - short.eval_seconds - spent(short) * per_unit, 0.0)


def _probe_evaluation(spec: RunSpec, run_dir: Path, registry: Registry, device: str) -> float:
    """Seconds for one evaluation under the spec's protocol (measured at a capped sample count, scaled)."""
    n_fake = min(spec.protocol.n_fake, PROBE_EVAL_SAMPLES)
    probe = replace(_tiny(spec, 1, n_fake), protocol=replace(spec.protocol, n_fake=n_fake))
    run(probe, run_dir / "warm", device, registry)  # reference features are computed once per sweep: not counted
    result = run(probe, run_dir / "timed", device, registry)
    return result.eval_seconds * spec.protocol.n_fake / n_fake
