"""``ganzoo bench --dry-run``'s estimate: seconds per run from timed probes of each combination.

Nothing is stored: probes train in a temporary folder.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..grid import Grid
from ..records import FAILED
from ..registry import Registry, get_registry
from ..spec import RunSpec
from ..train import run

PROBE_BATCHES = 6  # training steps timed per combination by --dry-run's estimate
PROBE_EVAL_SAMPLES = 1000


@dataclass
class Estimates:
    seconds: dict[str, float]  # run id -> estimated seconds (NaN where its probe failed)
    failures: dict[str, str] = field(default_factory=dict)  # run id -> why its combination's probe failed


class ProbeFailed(RuntimeError):
    """A timed probe run of a combination failed: the combination would fail in the sweep too."""



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

