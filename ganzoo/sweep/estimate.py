"""``ganzoo bench --dry-run``'s estimate: seconds per run from timed probes of each combination.

Nothing is stored: probes train in a temporary folder.
"""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import nnls

from ..core.records import FAILED
from ..core.registry import Registry, get_registry
from ..core.spec import RunSpec
from ..run.grid import Grid

PROBE_BATCHES = 6  # training steps timed per combination by --dry-run's estimate
# An evaluation is timed at its own sizes up to this many samples (generated or real); a larger protocol is
# timed at three smaller sizes and extrapolated (see _probe_evaluation).
PROBE_EVAL_SAMPLES = 4000
PROBE_EVAL_MIN = 16  # the fewest samples a scaled-down probe evaluates (k-NN metrics need k + 1 and more)


@dataclass
class Estimates:
    seconds: dict[str, float]  # run id -> estimated seconds (NaN where its probe failed)
    failures: dict[str, str] = field(default_factory=dict)  # run id -> why its combination's probe failed
    eval_seconds: dict[str, float] = field(default_factory=dict)  # run id -> seconds of its evaluations (in seconds)

    def evaluation_heavy(self) -> set[str]:
        """Run ids whose evaluations would take longer than their training."""
        return {run_id for run_id, spent in self.eval_seconds.items() if spent > self.seconds[run_id] - spent}


class ProbeFailed(RuntimeError):
    """A timed probe run of a combination failed: the combination would fail in the sweep too."""



def estimate(grid: Grid, *, registry: Registry | None = None, device: str = "auto", threads: int | None = None,
             on_probe: Callable[[str], None] | None = None, skip: set[str] = frozenset()) -> Estimates:
    """Estimated seconds per run id, from timed probes; nothing is stored.

    ``skip``: run ids not to estimate (finished already). A combination whose probe fails gets NaN and the
    probe's error, which is what its runs would fail with.

    Training: two tiny real runs of each distinct (dataset, G, D, stack, batch, budget unit) in a temporary
    folder, whose difference gives seconds per unit of budget (real image or G step) without start-up
    costs. Evaluation: one evaluation per dataset and protocol, timed at its sizes up to
    ``PROBE_EVAL_SAMPLES`` samples, else extrapolated from smaller ones (``_probe_evaluation``); each run's
    share is in ``Estimates.eval_seconds``.
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
    from ..run.train import run  # here, not at the top: importing ganzoo.sweep must not load the training loop

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
            out.eval_seconds[spec.run_id] = n_evals * eval_cost[protocol_key]
            out.seconds[spec.run_id] = start_up + spec.budget.total * per_unit + out.eval_seconds[spec.run_id]
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
    from ..run.train import run
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
    """Seconds for one evaluation under the spec's protocol.

    A protocol of at most ``PROBE_EVAL_SAMPLES`` generated and real samples is timed as it is. A larger one
    is timed at three sizes scaled down by the same factor s (s0/4, s0/2, s0, keeping the ratio of generated
    to real samples) and extrapolated to s = 1 with ``c + a*s + b*s**2`` fitted with non-negative
    coefficients: drawing samples and computing features grow with the count, while precision/recall and
    density/coverage compare every pair of points (each sample's k-th neighbour among all the others), so
    their cost grows with its square. Measured on this project's CPU: 21 ns per pair at 1,000 to 16,000 points
    in 2 or 64 dimensions, so against ring8's 100,000 reference points one neighbour search takes minutes.
    """
    n_fake, n_real = spec.protocol.n_fake, _reference_size(spec, registry)
    largest = max(n_fake, n_real)
    if largest <= PROBE_EVAL_SAMPLES:
        return _time_evaluation(spec, n_fake, spec.protocol.n_real, run_dir, registry, device)
    top = PROBE_EVAL_SAMPLES / largest
    scales = np.array([top / 4, top / 2, top])
    seconds = [_time_evaluation(spec, max(round(n_fake * s), PROBE_EVAL_MIN), max(round(n_real * s), PROBE_EVAL_MIN),
                                run_dir / f"s{i}", registry, device) for i, s in enumerate(scales)]
    coefficients, _ = nnls(np.stack([np.ones_like(scales), scales, scales ** 2], axis=1), np.array(seconds))
    return float(coefficients.sum())  # c + a + b: the fit at s = 1


def _reference_size(spec: RunSpec, registry: Registry) -> int:
    """Real samples the protocol's reference holds: ``n_real``, or the whole dataset when it is not set."""
    if spec.protocol.n_real is not None:
        return spec.protocol.n_real
    return len(registry.get("dataset", spec.dataset.name).build(**spec.dataset.hparams))


def _time_evaluation(spec: RunSpec, n_fake: int, n_real: int | None, run_dir: Path, registry: Registry,
                     device: str) -> float:
    """Seconds of one evaluation of ``n_fake`` generated against ``n_real`` real samples (the reference's
    features are computed, and cached, by a first run: a sweep computes them once, so they are not counted)."""
    from ..run.train import run
    probe = replace(_tiny(spec, 1, n_fake), protocol=replace(spec.protocol, n_fake=n_fake, n_real=n_real))
    with warnings.catch_warnings():  # a scaled-down KID warns that its subsets are smaller: expected here
        warnings.simplefilter("ignore")
        run(probe, run_dir / "warm", device, registry)
        # The faster of two: a timing is the cost plus whatever else ran, and the fit extrapolates far.
        return min(run(probe, run_dir / f"timed{i}", device, registry).eval_seconds for i in range(2))
