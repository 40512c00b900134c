"""One training run, top to bottom: build, resume, train under the budget, evaluate and checkpoint.

The budget counts real images shown to D (unit ``kimg``) or G steps (unit ``g_steps``). Under a kimg
budget a stack with 5 D steps per G step sees the same data as one with 1 and makes a fifth of the G
steps; under a g_steps budget it makes as many G steps and sees five times the data. Every evaluation
records images, G steps and D steps, whichever the unit.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import resource
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from . import artifacts
from .build import Models, build_models, eval_generator, resolve_device, sampling
from .conditional import discriminate, draw_labels, evaluation_labels, generate, is_conditional, num_classes_of
from .contracts import Stabilizer, StepContext
from .cpu import describe_cpu
from .records import DIVERGED, DONE, FAILED, Evaluation, ProtocolRecord, RunResult
from .registry import Registry, get_registry
from .spec import Compute, RunSpec

# RunResult lives in ganzoo.records; kept importable from here.
__all__ = ["RunOptions", "RunResult", "evaluate_generator", "evaluate_samples", "evaluation_samples", "run",
           "train"]

EVAL_SEED_OFFSET = 1_000_003  # evaluation latents come from their own stream, fixed across evaluations
DIVERGENCE_CHECK_EVERY = 25  # G steps between checks for non-finite losses (a check syncs the device)


@dataclass(frozen=True)
class RunOptions:
    """How a run is executed, not what it computes: never part of its spec, its id or its numbers."""

    keep_checkpoints: bool = False  # keep D, the training G and the optimiser states once the run has finished
    runs_per_device: int = 1  # runs sharing this device (packed on one GPU); recorded beside the device

    def __post_init__(self):
        if self.runs_per_device < 1:
            raise ValueError(f"runs_per_device must be at least 1, got {self.runs_per_device}")


class Diverged(RuntimeError):
    """A loss or a generated sample became non-finite."""


@dataclass
class _Run:
    """One run's live state. With the counters in ``result``, it is what the checkpoint saves."""

    spec: RunSpec
    run_dir: Path
    device: torch.device
    models: Models
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    data_rng: torch.Generator  # one stream for real batches and training latents
    evaluator: Any  # ganzoo.metrics.Evaluator
    result: RunResult  # g_steps, d_steps, evals and eval_seconds so far
    options: RunOptions
    loss_sums: torch.Tensor  # (d_loss, g_loss) summed on the device since the last evaluation
    loss_count: int = 0
    images: int = 0  # real images shown to D
    started: float = 0.0  # perf_counter at the start, less the seconds of earlier sessions of a resumed run
    global_rng: torch.Tensor | None = None  # a vectorised group member's global random stream (ganzoo.vectorized)


def run(spec: RunSpec, run_dir: Path, device: str = "auto", registry: Registry | None = None,
        options: RunOptions = RunOptions()) -> RunResult:
    """Train ``spec`` and never raise for a bad run: failures come back as ``FAILED`` with the traceback."""
    device = resolve_device(device)
    try:
        return train(spec, Path(run_dir), device, registry or get_registry(), options)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        return RunResult(spec.run_id, FAILED, error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}",
                         device=str(device))


def train(spec: RunSpec, run_dir: Path, device: torch.device, registry: Registry,
          options: RunOptions = RunOptions()) -> RunResult:
    """Train ``spec`` in ``run_dir`` on ``device``, resuming from the folder's checkpoint when there is one."""
    state = artifacts.load_run_checkpoint(run_dir, device)  # None: nothing (readable) to resume from
    if state is not None and artifacts.RESULT_KEY in state:
        return RunResult.from_dict(state[artifacts.RESULT_KEY])  # finished before, its record lost (a killed driver)
    # Build G, D, loss, stack, optimisers and evaluator; the seed fixes the initial weights and the data order.
    r = _build(spec, run_dir, device, registry, options)
    models, budget, batch, result = r.models, spec.budget, spec.budget.batch_size, r.result
    # Resume: the last checkpoint holds everything that decides the next step, so the run continues exactly.
    r.started = time.perf_counter()
    if state is not None:
        _restore(r, state)
    next_eval = _next_mark(budget.spent(r.images, result.g_steps), budget.eval_every)
    ctx = StepContext(generator=models.generator, discriminator=models.discriminator, loss=models.loss)

    while (spent := budget.spent(r.images, result.g_steps)) < budget.total:
        # Annealed stabilizers (instance noise) read how far through the budget the run is.
        ctx.progress, ctx.step = spent / budget.total, result.g_steps

        # Discriminator: d_steps updates telling real from fake (the fakes are detached: G stays frozen).
        for _ in range(models.optim.d_steps):
            d_loss = _d_step(r, ctx, batch)
            r.images += batch
            result.d_steps += 1

        # Generator: one update to fool D.
        g_loss = _g_step(r, ctx, batch)
        result.g_steps += 1

        # Losses are summed on the device; checking them for NaN syncs it, so only every few steps.
        r.loss_sums += torch.stack([d_loss.detach().float(), g_loss.detach().float()])
        r.loss_count += 1
        if result.g_steps % DIVERGENCE_CHECK_EVERY == 0 and not torch.isfinite(r.loss_sums).all():
            return _diverged(r, f"non-finite loss at G step {result.g_steps}")

        # Evaluate and checkpoint at every mark, at the end of the budget, and when the time cap is hit.
        spent = budget.spent(r.images, result.g_steps)
        capped = budget.max_seconds is not None and time.perf_counter() - r.started > budget.max_seconds
        if spent >= next_eval or spent >= budget.total or capped:
            diverged = _evaluate_and_checkpoint(r)
            if diverged:
                return _diverged(r, diverged)
            next_eval = _next_mark(spent, budget.eval_every)  # one G step of 5 D steps may pass a mark
        if capped:
            result.capped = True
            break

    # Leave a sample grid (a scatter plot for 2-D data) to look at next to the checkpoint.
    result.artifacts["samples"] = str(_save_samples(r))
    return _finish(r)


def _build(spec: RunSpec, run_dir: Path, device: torch.device, registry: Registry,
           options: RunOptions = RunOptions(), evaluator=None) -> _Run:
    """A run's live state. ``evaluator``: one already built for the same dataset and protocol, shared (the seeds of
    a vectorised group share one: one extractor in memory, the real side measured once)."""
    from .metrics import Evaluator  # heavy import, only for runs

    models = build_models(spec, registry, device)
    _apply_compute(models, spec.compute)
    opt_g = torch.optim.Adam(models.generator.parameters(), lr=models.optim.lr_g, betas=models.optim.betas)
    opt_d = torch.optim.Adam(models.discriminator.parameters(), lr=models.optim.lr_d, betas=models.optim.betas)
    # The real side, once. Building it draws from the global random stream only the first time in a process
    # (a classifier's random init before its weights load, then cached), so it is built in a fork of the
    # stream: what augmentations and penalties draw next never depends on which run a process trained first.
    # Sharing one is therefore invisible to training too.
    if evaluator is None:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            evaluator = Evaluator(models.dataset, spec.protocol, device, registry=registry)
    protocol = protocol_of(evaluator, spec)
    result = RunResult(spec.run_id, DONE, device=describe_device(device, options.runs_per_device),
                       protocol=protocol.to_dict(), fingerprint=protocol.fingerprint)
    if torch.cuda.is_available() and device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    return _Run(spec, run_dir, device, models, opt_g, opt_d, torch.Generator(device=device).manual_seed(spec.seed),
                evaluator, result, options, loss_sums=torch.zeros(2, device=device))


def protocol_of(evaluator, spec: RunSpec) -> ProtocolRecord:
    """What a run's numbers come from: the evaluation protocol and, when it is not the fp32 default, how training
    computed. Runs trained in bf16 (or compiled) therefore rank in tables of their own (``.fingerprint``).
    """
    record = evaluator.record()
    return record if spec.compute.is_default else record.with_training_compute(asdict(spec.compute))


def _apply_compute(models: Models, compute: Compute) -> None:
    """channels_last and torch.compile, in place (the checkpoint's weight names stay those of plain modules)."""
    if compute.channels_last and models.dataset.spec.modality == "image":
        models.generator.to(memory_format=torch.channels_last)
        models.discriminator.to(memory_format=torch.channels_last)
        data = getattr(models.dataset, "data", None)
        if isinstance(data, torch.Tensor) and data.dim() == 4:
            models.dataset.data = data.contiguous(memory_format=torch.channels_last)
    if compute.compile:
        models.generator.compile()
        models.discriminator.compile()


def _autocast(r: _Run):
    """bf16 autocast around forward passes and losses when the spec asks for it; backward runs outside."""
    if r.spec.compute.precision == "bf16":
        return torch.autocast(r.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _next_mark(spent: int, every: int) -> int:
    """The first evaluation mark after ``spent`` (both in the budget's unit)."""
    return (spent // every + 1) * every


def _d_step(r: _Run, ctx: StepContext, batch: int) -> torch.Tensor:
    """One D update on a real batch and a batch of fakes, both augmented as D sees them; returns the D loss."""
    m = r.models
    # A conditional run draws the same real indices, with their labels, then G's labels after z: an
    # unconditional run's stream is untouched.
    conditional = is_conditional(m.generator)
    real, ctx.real_labels = (m.dataset.sample_labelled(batch, r.data_rng) if conditional
                             else (m.dataset.sample(batch, r.data_rng), None))
    z = torch.randn(batch, m.generator.latent_dim, generator=r.data_rng, device=r.device)
    ctx.fake_labels = _fake_labels(r, batch) if conditional else None
    with _autocast(r):
        with torch.no_grad():
            fake = generate(m.generator, z, ctx.fake_labels)
        ctx.real, ctx.fake = augment(m.stabilizers, real, ctx), augment(m.stabilizers, fake, ctx)
        ctx.real_logits = discriminate(m.discriminator, ctx.real, ctx.real_labels).view(-1)
        ctx.fake_logits = discriminate(m.discriminator, ctx.fake, ctx.fake_labels).view(-1)
        d_loss = (m.loss.d_loss(ctx.real_logits, ctx.fake_logits, **m.d_loss_kwargs)
                  + penalties(m.stabilizers, "d_penalty", ctx))
    r.opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    for stabilizer in m.stabilizers:
        stabilizer.before_d_step(ctx)  # gradients in place, weights unchanged (e.g. gradient clipping)
    r.opt_d.step()
    for stabilizer in m.stabilizers:
        stabilizer.after_d_step(ctx)
    return d_loss


def _g_step(r: _Run, ctx: StepContext, batch: int) -> torch.Tensor:
    """One G update through D; relativistic losses also need D's view of the last real batch."""
    m = r.models
    z = torch.randn(batch, m.generator.latent_dim, generator=r.data_rng, device=r.device)
    ctx.fake_labels = _fake_labels(r, batch) if is_conditional(m.generator) else None
    with _autocast(r):
        ctx.fake = augment(m.stabilizers, generate(m.generator, z, ctx.fake_labels), ctx)
        ctx.fake_logits = discriminate(m.discriminator, ctx.fake, ctx.fake_labels).view(-1)
        ctx.real_logits = (discriminate(m.discriminator, ctx.real.detach(), ctx.real_labels).view(-1)
                           if m.loss.uses_real_logits_in_g else None)
        g_loss = m.loss.g_loss(ctx.fake_logits, ctx.real_logits) + penalties(m.stabilizers, "g_penalty", ctx)
    r.opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    for stabilizer in m.stabilizers:
        stabilizer.before_g_step(ctx)
    r.opt_g.step()
    for stabilizer in m.stabilizers:
        stabilizer.after_g_step(ctx)
    return g_loss


def _fake_labels(r: _Run, batch: int) -> torch.Tensor:
    """Labels for a batch of G's samples: uniform over the classes, from the run's data stream (after z)."""
    return draw_labels(batch, num_classes_of(r.models.generator), r.data_rng, r.device)


def augment(stabilizers: list[Stabilizer], x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
    """``x`` as D sees it: each stabilizer's ``augment`` in stack order (a vectorised group calls it too)."""
    for stabilizer in stabilizers:
        x = stabilizer.augment(x, ctx)
    return x


def penalties(stabilizers: list[Stabilizer], hook: str, ctx: StepContext) -> torch.Tensor | int:
    """The sum of the stabilizers' ``hook`` (``d_penalty`` or ``g_penalty``) terms; 0 when none gives one."""
    terms = [getattr(stabilizer, hook)(ctx) for stabilizer in stabilizers]
    return sum(t for t in terms if t is not None)


def _evaluate_and_checkpoint(r: _Run) -> str | None:
    """Evaluate, record the evaluation, then checkpoint; returns why the run diverged, or ``None``.

    The checkpoint comes after the evaluation, so a run resumed from it repeats nothing and skips nothing.
    """
    result = r.result
    if not torch.isfinite(r.loss_sums).all():
        return f"non-finite loss before G step {result.g_steps}"
    eval_started = time.perf_counter()
    try:
        # In a fork of the global stream: the first evaluation in a process draws from it (a classifier's random
        # init before its weights load), and training must not see whether this run was the process's first.
        with torch.random.fork_rng(devices=[r.device] if r.device.type == "cuda" else []):
            metrics = _evaluate(r)
    except Diverged as exc:
        return str(exc)
    result.eval_seconds += time.perf_counter() - eval_started
    d_mean, g_mean = (r.loss_sums / max(r.loss_count, 1)).tolist()
    result.evals.append(Evaluation(kimg=r.images / 1000, g_steps=result.g_steps, d_steps=result.d_steps,
                                   seconds=time.perf_counter() - r.started, d_loss=d_mean, g_loss=g_mean,
                                   metrics=metrics).to_dict())
    r.loss_sums.zero_()
    r.loss_count = 0
    artifacts.save_checkpoint(_checkpoint_state(r), r.run_dir)
    return None


def _checkpoint_state(r: _Run) -> dict[str, Any]:
    """Everything that decides the next step, and the record so far. ``_restore`` reads it back.

    ``SPEC_KEY`` and ``EVAL_GENERATOR_KEY`` are also what ``ganzoo.build.load_generator`` reads (``ganzoo eval``).
    """
    m, result = r.models, r.result
    return {
        artifacts.SPEC_KEY: r.spec.canonical(),
        "generator": m.generator.state_dict(),
        "discriminator": m.discriminator.state_dict(),
        artifacts.EVAL_GENERATOR_KEY: eval_generator(m).state_dict(),
        "opt_g": r.opt_g.state_dict(),
        "opt_d": r.opt_d.state_dict(),
        "stabilizers": [s.state_dict() for s in m.stabilizers],
        "rng": artifacts.rng_state(r.data_rng),
        "images": r.images,
        "seconds": time.perf_counter() - r.started,
        "g_steps": result.g_steps,
        "d_steps": result.d_steps,
        "evals": result.evals,
        "eval_seconds": result.eval_seconds,
    }


def _restore(r: _Run, state: dict[str, Any]) -> None:
    """The inverse of ``_checkpoint_state``; the seconds already trained move ``r.started`` back."""
    m, result = r.models, r.result
    m.generator.load_state_dict(state["generator"])
    m.discriminator.load_state_dict(state["discriminator"])
    r.opt_g.load_state_dict(state["opt_g"])
    r.opt_d.load_state_dict(state["opt_d"])
    for stabilizer, stabilizer_state in zip(m.stabilizers, state["stabilizers"], strict=True):
        stabilizer.load_state_dict(stabilizer_state)
    artifacts.restore_rng(r.data_rng, state["rng"])
    r.images = state["images"]
    r.started -= state["seconds"]
    result.g_steps, result.d_steps, result.evals = state["g_steps"], state["d_steps"], state["evals"]
    result.eval_seconds = state["eval_seconds"]


def _evaluate(r: _Run) -> dict[str, float]:
    return evaluate_generator(eval_generator(r.models), r.evaluator, r.models.dataset, r.spec, r.device)


def evaluate_generator(generator, evaluator, dataset, spec: RunSpec, device) -> dict[str, float]:
    """Metrics of ``generator`` under ``spec``'s protocol, plus the dataset's own measures on the same samples.

    The one evaluation path: training's evaluations and ``ganzoo eval`` of a run checkpoint both call it, so
    a checkpoint re-evaluated on the device it trained on gives the numbers its run recorded. The latents
    come from their own stream (``evaluation_sampling``), the same at every evaluation. A class-conditional
    G's samples carry the labels of their positions (``ganzoo.conditional.evaluation_labels``), so the
    conditional metrics (``cond_accuracy``, ``intra_fid``) are computed too.

    Raises:
        Diverged: a generated sample is not finite.
    """
    labels = (evaluation_labels(evaluator.protocol.n_fake, num_classes_of(generator), device=device)
              if is_conditional(generator) else None)
    with evaluation_sampling(generator, spec, device) as draw:

        def sample(n: int) -> torch.Tensor:
            x = draw(n)
            if not torch.isfinite(x).all():
                raise Diverged("the generator produced non-finite samples")
            return x

        return evaluate_samples(sample, evaluator, dataset, labels)


def evaluate_samples(sample: Callable[[int], torch.Tensor], evaluator, dataset,
                     labels: torch.Tensor | None = None) -> dict[str, float]:
    """``evaluator``'s metrics of the samples ``sample(n)`` draws, and ``dataset.extra_metrics`` of those same
    samples (modes, classes). A generator's evaluation and the leaderboards' real-data rows both end here.

    Args:
        sample: draws ``n`` samples (called in the evaluator's batches until it has ``protocol.n_fake``).
        evaluator: a ``ganzoo.metrics.Evaluator``.
        dataset: the real data, whose ``extra_metrics`` are added.
        labels: the class each of the ``protocol.n_fake`` samples was drawn for (a conditional G), else ``None``.
    """
    kept: list[torch.Tensor] = []

    def keep(n: int) -> torch.Tensor:
        kept.append(sample(n))
        return kept[-1]

    metrics = dict(evaluator(keep) if labels is None else evaluator(keep, labels=labels))
    metrics.update(dataset.extra_metrics(torch.cat(kept)[: evaluator.protocol.n_fake]))
    return {k: float(v) for k, v in metrics.items()}


@contextlib.contextmanager
def evaluation_sampling(generator, spec: RunSpec, device) -> Iterator[Callable[[int], torch.Tensor]]:
    """``sample(n)`` on the evaluation latents of ``spec``'s run: ``ganzoo.build.sampling`` seeded with
    ``spec.seed + EVAL_SEED_OFFSET``, a stream of their own, so every evaluation of a run sees the same latents."""
    with sampling(generator, spec.seed + EVAL_SEED_OFFSET, device) as generate:
        yield generate


def evaluation_samples(generator, spec: RunSpec, device, n: int | None = None) -> torch.Tensor:
    """The first ``n`` samples (default ``spec.protocol.n_fake``) an evaluation of ``generator`` measures.

    The evaluation latents drawn in the evaluator's batches of ``protocol.batch_size`` (a batch of 64 latents is
    not the first 64 of a batch of 500), so they are the very samples the evaluation saw: the run's saved
    samples and the report's pictures are drawn here.
    """
    from .metrics.features import iter_batches

    n_fake, batch_size = spec.protocol.n_fake, spec.protocol.batch_size
    n = n_fake if n is None else n
    drawn: list[torch.Tensor] = []
    with evaluation_sampling(generator, spec, device) as generate:
        # Whole batches as the evaluator draws them, then cut at n; past n_fake the stream goes on in new batches.
        batches = itertools.chain(iter_batches(generate, n_fake, batch_size),
                                  iter_batches(generate, max(n - n_fake, 1), batch_size))
        while sum(len(b) for b in drawn) < n:
            drawn.append(next(batches))
    return torch.cat(drawn)[:n]


def _save_samples(r: _Run) -> Path:
    """The first samples of the run's evaluation (64 images, or 2,000 points over as many real ones)."""
    dataset, generator = r.models.dataset, eval_generator(r.models)
    if dataset.spec.modality == "image" and is_conditional(generator):
        return _save_class_rows(generator, r)
    n = 64 if dataset.spec.modality == "image" else 2000
    samples = evaluation_samples(generator, r.spec, r.device, n)
    real = dataset.reference(2000) if dataset.spec.modality == "vector" else None
    return artifacts.save_samples(samples, r.run_dir / artifacts.SAMPLES, real)


CLASS_ROW_SAMPLES = 8  # samples per class in a conditional run's grid
MAX_CLASS_ROWS = 16  # more classes (Stacked MNIST's 1,000) show their first 16


def class_rows(samples: torch.Tensor, num_classes: int, per_class: int = CLASS_ROW_SAMPLES) -> torch.Tensor:
    """Evaluation samples reordered class by class: sample ``i`` of the stream is class ``i mod K``, so the
    first ``per_class * K`` samples hold ``per_class`` of each class; row ``c`` of the result's grid is class ``c``.
    """
    rows = min(num_classes, MAX_CLASS_ROWS)
    grid = samples[: per_class * num_classes].reshape(per_class, num_classes, *samples.shape[1:])
    return grid[:, :rows].transpose(0, 1).reshape(rows * per_class, *samples.shape[1:])


def _save_class_rows(generator, r: _Run) -> Path:
    """A conditional run's grid: one row per class (the first 16 classes when there are more)."""
    num_classes = num_classes_of(generator)
    samples = evaluation_samples(generator, r.spec, r.device, CLASS_ROW_SAMPLES * num_classes)
    grid = class_rows(samples, num_classes)
    return artifacts.save_samples(grid, r.run_dir / artifacts.SAMPLES, nrow=CLASS_ROW_SAMPLES, limit=len(grid))


def describe_device(device: torch.device, runs_per_device: int = 1) -> str:
    """CPU results depend on the thread count (reduction order), the CPU and the kernels' settings
    (``ganzoo.cpu``), so all three are part of the record.

    On a GPU, the number of runs packed on it is: their speed and peak memory are read with it.
    """
    if device.type == "cuda":
        shared = f", {runs_per_device} runs per GPU" if runs_per_device > 1 else ""
        return f"cuda ({torch.cuda.get_device_name(device)}{shared})"
    return describe_cpu(torch.get_num_threads())


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (KiB on Linux)


def _finish(r: _Run) -> RunResult:
    result = r.result
    result.kimg = r.images / 1000
    result.seconds = time.perf_counter() - r.started
    training_seconds = result.seconds - result.eval_seconds  # throughput of training alone, evaluation excluded
    result.imgs_per_s = r.images / training_seconds if training_seconds > 0 else math.nan
    result.peak_mem_mb = _peak_memory_mb(r.device)
    if (r.run_dir / artifacts.CHECKPOINT).exists():
        result.artifacts["checkpoint"] = str(r.run_dir / artifacts.CHECKPOINT)
        artifacts.finish_checkpoint(r.run_dir, result.to_dict(), keep_training_state=r.options.keep_checkpoints)
    return result


def _diverged(r: _Run, why: str) -> RunResult:
    r.result.status, r.result.error = DIVERGED, why
    return _finish(r)
