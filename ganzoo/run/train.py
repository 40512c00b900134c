"""One training run, top to bottom: build, resume, train under the budget, evaluate and checkpoint.

The budget counts real images shown to D (unit ``kimg``) or G steps (unit ``g_steps``). Under a kimg
budget a stack with 5 D steps per G step sees the same data as one with 1 and makes a fifth of the G
steps; under a g_steps budget it makes as many G steps and sees five times the data. Every evaluation
records images, G steps and D steps, whichever the unit.

The loop and the D and G steps are written once. They train a ``Training``: one run (``OneRun``), or the seeds
of one experiment stacked into one computation (``ganzoo.run.vectorized.group.Group``), which says only how a batch
is drawn (each member's own stream, in a single run's order), how D's logits are shaped and how the loss is
called (vmapped: one loss per member), and how a member's slice reaches its own run before it is evaluated.
"""

from __future__ import annotations

import contextlib
import math
import resource
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..api.conditional import discriminate, draw_labels, generate, is_conditional, num_classes_of
from ..api.contracts import Loss, Stabilizer, StepContext
from ..core.records import DIVERGED, DONE, FAILED, Evaluation, ProtocolRecord, RunResult
from ..core.registry import Registry, get_registry
from ..core.spec import Compute, Optim, RunSpec
from ..system.device import describe_device
from . import artifacts, attempts
from .attempts import AttemptLog
from .build import Models, build_models, eval_generator, resolve_device
from .evaluate import Diverged, evaluate_generator, save_run_samples
from .tracking import RunTrackers, TrackerSettings

# RunResult lives in ganzoo.core.records; kept importable from here.
__all__ = ["OneRun", "RunOptions", "RunResult", "RunState", "Training", "build_run", "checkpoint_of",
           "close_trackers", "d_step", "draw_batch", "finish_run", "g_step", "protocol_of", "record_evaluation",
           "restore", "run", "train", "train_loop"]

DIVERGENCE_CHECK_EVERY = 25  # G steps between checks for non-finite losses (a check syncs the device)


@dataclass(frozen=True)
class RunOptions:
    """How a run is executed, not what it computes: never part of its spec, its id or its numbers."""

    keep_checkpoints: bool = False  # keep D, the training G and the optimiser states once the run has finished
    runs_per_device: int = 1  # runs sharing this device (packed on one GPU); recorded beside the device
    trackers: tuple[TrackerSettings, ...] = ()  # --log: experiment trackers, built in the process that trains

    def __post_init__(self):
        if self.runs_per_device < 1:
            raise ValueError(f"runs_per_device must be at least 1, got {self.runs_per_device}")


@dataclass
class RunState:
    """One run's live state. With the counters in ``result``, it is what its checkpoint saves (``checkpoint_of``)."""

    spec: RunSpec
    run_dir: Path
    device: torch.device
    models: Models
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    data_rng: torch.Generator  # one stream for real batches, training latents and G's labels
    evaluator: Any  # ganzoo.metrics.evaluate.Evaluator
    result: RunResult  # g_steps, d_steps, evals and eval_seconds so far
    options: RunOptions
    images: int = 0  # real images shown to D
    started: float = 0.0  # perf_counter at the start, less the seconds of earlier sessions of a resumed run
    global_rng: torch.Tensor | None = None  # a vectorised group member's global random stream (ganzoo.run.vectorized)
    trackers: RunTrackers | None = None  # --log; None without trackers


def run(spec: RunSpec, run_dir: Path, device: str = "auto", registry: Registry | None = None,
        options: RunOptions = RunOptions(), attempt_log: AttemptLog | None = None) -> RunResult:
    """Train ``spec`` and never raise for a bad run: failures come back as ``FAILED`` with the traceback.

    ``attempt_log``: where the run's starts are logged (``ganzoo.run.attempts``); by default its own folder.
    """
    device = resolve_device(device)
    try:
        return train(spec, Path(run_dir), device, registry or get_registry(), options, attempt_log)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        started = attempts.read_attempts(Path(run_dir))  # a start that failed counts as one
        return RunResult(spec.run_id, FAILED, error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}",
                         device=str(device), attempts=len(started),
                         resumed_from=started[-1].get("resumed_from") if started else None)


def train(spec: RunSpec, run_dir: Path, device: torch.device, registry: Registry,
          options: RunOptions = RunOptions(), attempt_log: AttemptLog | None = None) -> RunResult:
    """Train ``spec`` in ``run_dir`` on ``device``, resuming from the folder's checkpoint when there is one."""
    checkpoint = artifacts.load_run_checkpoint(run_dir, device)  # None: nothing (readable) to resume from
    if checkpoint is not None and checkpoint.is_finished:
        return RunResult.from_dict(checkpoint.result)  # finished before, its record lost (a killed driver)
    # Counted before anything can fail or be killed: the record says how often the run started, and from where.
    resumed_from = checkpoint.g_steps if checkpoint is not None else 0
    attempt = attempts.record_start(run_dir, resumed_from, attempt_log)
    # Build G, D, loss, stack, optimisers and evaluator; the seed fixes the initial weights and the data order.
    r = build_run(spec, run_dir, device, registry, options)
    r.result.attempts, r.result.resumed_from = attempt, resumed_from
    try:
        r.started = time.perf_counter()
        # Resume: the last checkpoint holds everything that decides the next step, so the run continues exactly.
        if checkpoint is not None:
            restore(r, checkpoint)
        (result,) = train_loop(OneRun(r))
    finally:
        close_trackers(r)  # a run that raised: its trackers end too (after a normal end, they already have)
    return result


def train_loop(t: Training) -> list[RunResult]:
    """Train ``t`` (one run, or a group of seeds in lockstep) to the end of its budget; one result per run."""
    budget, batch = t.spec.budget, t.spec.budget.batch_size
    next_eval = _next_mark(budget.spent(t.images, t.g_steps), budget.eval_every)
    while (spent := budget.spent(t.images, t.g_steps)) < budget.total and t.active:
        # Annealed stabilizers (instance noise) read how far through the budget the run is.
        t.ctx.progress, t.ctx.step = spent / budget.total, t.g_steps

        # Discriminator: d_steps updates telling real from fake (the fakes are detached: G stays frozen).
        for _ in range(t.optim.d_steps):
            d_loss = d_step(t, batch)
            t.images += batch
            t.d_steps += 1

        # Generator: one update to fool D.
        g_loss = g_step(t, batch)
        t.g_steps += 1

        # Losses are summed on the device; checking them for NaN syncs it, so only every few steps.
        t.loss_sums += torch.stack([d_loss.detach().float(), g_loss.detach().float()], dim=-1)
        t.loss_count += 1
        if t.g_steps % DIVERGENCE_CHECK_EVERY == 0:
            t.end_non_finite(f"non-finite loss at G step {t.g_steps}")

        # Evaluate and checkpoint at every mark, at the end of the budget, and when the time cap is hit.
        spent = budget.spent(t.images, t.g_steps)
        capped = budget.max_seconds is not None and time.perf_counter() - t.started > budget.max_seconds
        if spent >= next_eval or spent >= budget.total or capped:
            t.evaluate_and_checkpoint()
            next_eval = _next_mark(spent, budget.eval_every)  # one G step of 5 D steps may pass a mark
        if capped:
            t.cap()
            break

    # Each run that trained to its end leaves a sample grid (a scatter for 2-D data) next to its checkpoint.
    return t.finish()


def d_step(t: Training, batch: int) -> torch.Tensor:
    """One D update on a real batch and a batch of fakes, both augmented as D sees them; returns the D loss
    (in a group, one per member)."""
    ctx = t.ctx
    real, ctx.real_labels, z, ctx.fake_labels = t.draw(batch, real=True)
    with t.autocast():
        with torch.no_grad():
            fake = generate(t.generator, z, ctx.fake_labels)
        ctx.real, ctx.fake = augment(t.stabilizers, real, ctx), augment(t.stabilizers, fake, ctx)
        ctx.real_logits = t.logits(discriminate(t.discriminator, ctx.real, ctx.real_labels))
        ctx.fake_logits = t.logits(discriminate(t.discriminator, ctx.fake, ctx.fake_labels))
        d_loss = (t.losses(lambda real, fake: t.loss.d_loss(real, fake, **t.d_loss_kwargs),
                           ctx.real_logits, ctx.fake_logits)
                  + penalties(t.stabilizers, "d_penalty", ctx))
    t.opt_d.zero_grad(set_to_none=True)
    d_loss.sum().backward()  # a group member's loss depends on its own weights only: K gradients at once
    for stabilizer in t.stabilizers:
        stabilizer.before_d_step(ctx)  # gradients in place, weights unchanged (e.g. gradient clipping)
    t.opt_d.step()
    for stabilizer in t.stabilizers:
        stabilizer.after_d_step(ctx)
    return d_loss


def g_step(t: Training, batch: int) -> torch.Tensor:
    """One G update through D; relativistic losses also need D's view of the last real batch."""
    ctx = t.ctx
    _, _, z, ctx.fake_labels = t.draw(batch, real=False)
    with t.autocast():
        ctx.fake = augment(t.stabilizers, generate(t.generator, z, ctx.fake_labels), ctx)
        ctx.fake_logits = t.logits(discriminate(t.discriminator, ctx.fake, ctx.fake_labels))
        if t.loss.uses_real_logits_in_g:
            ctx.real_logits = t.logits(discriminate(t.discriminator, ctx.real.detach(), ctx.real_labels))
            g_loss = t.losses(t.loss.g_loss, ctx.fake_logits, ctx.real_logits)
        else:
            ctx.real_logits = None
            g_loss = t.losses(lambda fake: t.loss.g_loss(fake, None), ctx.fake_logits)
        g_loss = g_loss + penalties(t.stabilizers, "g_penalty", ctx)
    t.opt_g.zero_grad(set_to_none=True)
    g_loss.sum().backward()
    for stabilizer in t.stabilizers:
        stabilizer.before_g_step(ctx)
    t.opt_g.step()
    for stabilizer in t.stabilizers:
        stabilizer.after_g_step(ctx)
    return g_loss


def draw_batch(r: RunState, batch: int, real: bool) -> tuple[torch.Tensor | None, torch.Tensor | None,
                                                               torch.Tensor, torch.Tensor | None]:
    """A run's real batch (when ``real``) with its labels, its latents, and G's labels: from the run's data stream,
    in this order. A conditional run draws the same real indices (with their labels) as an unconditional one,
    and G's labels after z, so an unconditional run's stream is untouched by the labels."""
    m = r.models
    conditional = is_conditional(m.generator)
    x, y = None, None
    if real:
        x, y = (m.dataset.sample_labelled(batch, r.data_rng) if conditional
                else (m.dataset.sample(batch, r.data_rng), None))
    z = torch.randn(batch, m.generator.latent_dim, generator=r.data_rng, device=r.device)
    fake_labels = draw_labels(batch, num_classes_of(m.generator), r.data_rng, r.device) if conditional else None
    return x, y, z, fake_labels


def augment(stabilizers: list[Stabilizer], x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
    """``x`` as D sees it: each stabilizer's ``augment`` in stack order."""
    for stabilizer in stabilizers:
        x = stabilizer.augment(x, ctx)
    return x


def penalties(stabilizers: list[Stabilizer], hook: str, ctx: StepContext) -> torch.Tensor | int:
    """The sum of the stabilizers' ``hook`` (``d_penalty`` or ``g_penalty``) terms; 0 when none gives one."""
    terms = [getattr(stabilizer, hook)(ctx) for stabilizer in stabilizers]
    return sum(t for t in terms if t is not None)


# -- what the loop trains -------------------------------------------------------------------------------------


class Training:
    """What ``train_loop`` trains: the runs in ``members``, in lockstep, and the networks the steps update.

    A subclass sets the networks (``generator``, ``discriminator``, ``loss``, ``stabilizers``, their optimisers,
    ``optim``, ``d_loss_kwargs``, ``ctx``) and says how a batch is drawn (``draw``), how D's logits are shaped
    (``logits``), how the loss is called (``losses``) and how member ``k``'s state reaches its run (``sync``).
    The rest is here once: the counters, the losses summed since the last evaluation (one row per member),
    divergence (a member whose loss is not finite ends diverged; the others go on), evaluation, checkpoints.
    """

    generator: torch.nn.Module
    discriminator: torch.nn.Module
    loss: Loss
    stabilizers: list[Stabilizer]
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    optim: Optim  # the spec's, with the stabilizers' overrides (d_steps, learning rates)
    d_loss_kwargs: dict[str, Any]
    ctx: StepContext

    def __init__(self, members: list[RunState]):
        first = members[0]  # members share their progress: a group trains runs at the same point only
        self.members, self.spec, self.device = members, first.spec, first.device
        self.images, self.g_steps, self.d_steps = first.images, first.result.g_steps, first.result.d_steps
        self.loss_sums = torch.zeros(len(members), 2, device=self.device)  # (d_loss, g_loss) per member
        self.loss_count = 0
        self.started = min(r.started for r in members)
        self.eval_seconds = 0.0
        self.active = list(range(len(members)))  # members still training
        self.results: dict[int, RunResult] = {}  # members that have ended

    # ---- how a subclass draws and calls -------------------------------------------------------------------
    def draw(self, batch: int, real: bool) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor,
                                                    torch.Tensor | None]:
        """(real, real labels, z, G's labels) as ``draw_batch`` gives them, for every member."""
        raise NotImplementedError

    def logits(self, logits: torch.Tensor) -> torch.Tensor:
        """D's output as one logit per sample: ``(B,)``, or ``(K, B)`` in a group."""
        raise NotImplementedError

    def losses(self, fn: Callable[..., torch.Tensor], *logits: torch.Tensor) -> torch.Tensor:
        """``fn`` (a loss term) of the logits: a scalar, or one per member ``(K,)`` in a group."""
        raise NotImplementedError

    def sync(self, k: int) -> RunState:
        """Member ``k``'s run state, brought up to date (a group copies its slice of the stacks back first)."""
        r = self.members[k]
        r.images, r.result.g_steps, r.result.d_steps = self.images, self.g_steps, self.d_steps
        return r

    def autocast(self):
        """bf16 autocast around forward passes and losses when the spec asks for it; backward runs outside."""
        if self.spec.compute.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---- the members as runs ------------------------------------------------------------------------------
    def end_non_finite(self, why: str) -> None:
        """Members whose summed losses are not finite end diverged; the others go on."""
        finite = torch.isfinite(self.loss_sums).all(dim=1).tolist()
        for k in [k for k in self.active if not finite[k]]:
            self.end_diverged(k, why)

    def end_diverged(self, k: int, why: str) -> None:
        """Member ``k`` ends diverged: its result is recorded now and its last checkpoint is its final one."""
        r = self.sync(k)
        self.active.remove(k)
        r.result.status, r.result.error = DIVERGED, why
        self.results[k] = finish_run(r)

    def evaluate_and_checkpoint(self) -> None:
        """Evaluate every member still training, record the evaluation, then checkpoint it.

        The checkpoint comes after the evaluation, so a run resumed from it repeats nothing and skips nothing.
        """
        started = time.perf_counter()
        finite = torch.isfinite(self.loss_sums).all(dim=1).tolist()
        for k in list(self.active):
            r = self.sync(k)
            if not finite[k]:
                self.end_diverged(k, f"non-finite loss before G step {self.g_steps}")
                continue
            diverged = record_evaluation(r, *(self.loss_sums[k] / max(self.loss_count, 1)).tolist())
            if diverged:
                self.end_diverged(k, diverged)
        self.loss_sums.zero_()
        self.loss_count = 0
        self.eval_seconds += time.perf_counter() - started

    def cap(self) -> None:
        """The time cap was hit: the members still training end here, marked capped."""
        for k in self.active:
            self.members[k].result.capped = True

    def finish(self) -> list[RunResult]:
        """Every member still training ends done, with a picture of its evaluation's first samples."""
        for k in list(self.active):
            r = self.sync(k)
            r.result.artifacts["samples"] = str(save_run_samples(eval_generator(r.models), r.models.dataset, r.spec,
                                                                 r.device, r.run_dir))
            if r.trackers is not None:
                r.trackers.log_samples(Path(r.result.artifacts["samples"]), r.result.g_steps)
            self.active.remove(k)
            self.results[k] = finish_run(r)
        return [self.results[k] for k in range(len(self.members))]


class OneRun(Training):
    """A single run: its own networks, one data stream, plain calls."""

    def __init__(self, r: RunState):
        super().__init__([r])
        m = r.models
        self.generator, self.discriminator, self.loss, self.stabilizers = (m.generator, m.discriminator, m.loss,
                                                                           m.stabilizers)
        self.opt_g, self.opt_d, self.optim, self.d_loss_kwargs = r.opt_g, r.opt_d, m.optim, m.d_loss_kwargs
        self.ctx = StepContext(generator=m.generator, discriminator=m.discriminator, loss=m.loss)

    def draw(self, batch: int, real: bool):
        return draw_batch(self.members[0], batch, real)

    def logits(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.view(-1)

    def losses(self, fn: Callable[..., torch.Tensor], *logits: torch.Tensor) -> torch.Tensor:
        return fn(*logits)


# -- one run's life: build, evaluate, checkpoint, finish -------------------------------------------------------


def build_run(spec: RunSpec, run_dir: Path, device: torch.device, registry: Registry,
              options: RunOptions = RunOptions(), evaluator=None) -> RunState:
    """A run's live state. ``evaluator``: one already built for the same dataset and protocol, shared (the seeds of
    a vectorised group share one: one extractor in memory, the real side measured once)."""
    from ..metrics.evaluate import Evaluator  # heavy import, only for runs

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
    trackers = RunTrackers(options.trackers, spec, registry) if options.trackers else None
    return RunState(spec, run_dir, device, models, opt_g, opt_d, torch.Generator(device=device).manual_seed(spec.seed),
                    evaluator, result, options, trackers=trackers)


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


def _next_mark(spent: int, every: int) -> int:
    """The first evaluation mark after ``spent`` (both in the budget's unit)."""
    return (spent // every + 1) * every


def record_evaluation(r: RunState, d_loss: float, g_loss: float) -> str | None:
    """Evaluate ``r``'s G, record it with the mean losses since the last evaluation, then checkpoint the run;
    returns why the run diverged (its samples are not finite), or ``None``."""
    result = r.result
    eval_started = time.perf_counter()
    try:
        # In a fork of the global stream: the first evaluation in a process draws from it (a classifier's random
        # init before its weights load), and training must not see whether this run was the process's first.
        with torch.random.fork_rng(devices=[r.device] if r.device.type == "cuda" else []):
            metrics = evaluate_generator(eval_generator(r.models), r.evaluator, r.models.dataset, r.spec, r.device)
    except Diverged as exc:
        return str(exc)
    result.eval_seconds += time.perf_counter() - eval_started
    result.evals.append(Evaluation(kimg=r.images / 1000, g_steps=result.g_steps, d_steps=result.d_steps,
                                   seconds=time.perf_counter() - r.started, d_loss=d_loss, g_loss=g_loss,
                                   metrics=metrics, stabilizers=stabilizer_reports(r)).to_dict())
    artifacts.save_checkpoint(checkpoint_of(r), r.run_dir)
    if r.trackers is not None:  # after the checkpoint: a run resumed from it never logs an evaluation twice
        r.trackers.log_evaluation(result.evals[-1], result.eval_seconds)
    return None


def stabilizer_reports(r: RunState) -> dict[str, float]:
    """Every stabilizer's ``report()``, each value named ``"<stabilizer>.<name>"`` (``"ada.p"``)."""
    pairs = zip(r.spec.stack, r.models.stabilizers, strict=True)
    return {f"{ref.name}.{key}": float(value) for ref, stabilizer in pairs
            for key, value in stabilizer.report().items()}


def checkpoint_of(r: RunState) -> artifacts.Checkpoint:
    """Everything that decides the next step, and the record so far. ``restore`` reads it back."""
    m, result = r.models, r.result
    return artifacts.Checkpoint(
        spec=r.spec.canonical(),
        generator=m.generator.state_dict(),
        discriminator=m.discriminator.state_dict(),
        generator_eval=eval_generator(m).state_dict(),
        opt_g=r.opt_g.state_dict(),
        opt_d=r.opt_d.state_dict(),
        stabilizers=[s.state_dict() for s in m.stabilizers],
        rng=artifacts.rng_state(r.data_rng),
        images=r.images,
        seconds=time.perf_counter() - r.started,
        g_steps=result.g_steps,
        d_steps=result.d_steps,
        evals=result.evals,
        eval_seconds=result.eval_seconds,
    )


def restore(r: RunState, checkpoint: artifacts.Checkpoint) -> None:
    """The inverse of ``checkpoint_of``; the seconds already trained move ``r.started`` back."""
    m, result = r.models, r.result
    m.generator.load_state_dict(checkpoint.generator)
    m.discriminator.load_state_dict(checkpoint.discriminator)
    r.opt_g.load_state_dict(checkpoint.opt_g)
    r.opt_d.load_state_dict(checkpoint.opt_d)
    for stabilizer, stabilizer_state in zip(m.stabilizers, checkpoint.stabilizers, strict=True):
        stabilizer.load_state_dict(stabilizer_state)
    artifacts.restore_rng(r.data_rng, checkpoint.rng)
    r.images = checkpoint.images
    r.started -= checkpoint.seconds
    result.g_steps, result.d_steps, result.evals = checkpoint.g_steps, checkpoint.d_steps, checkpoint.evals
    result.eval_seconds = checkpoint.eval_seconds


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (KiB on Linux)


def finish_run(r: RunState) -> RunResult:
    """``r``'s result, final: totals, throughput, peak memory; its last checkpoint becomes its final one."""
    result = r.result
    result.kimg = r.images / 1000
    result.seconds = time.perf_counter() - r.started
    training_seconds = result.seconds - result.eval_seconds  # throughput of training alone, evaluation excluded
    result.imgs_per_s = r.images / training_seconds if training_seconds > 0 else math.nan
    result.peak_mem_mb = _peak_memory_mb(r.device)
    if (r.run_dir / artifacts.CHECKPOINT).exists():
        result.artifacts["checkpoint"] = str(r.run_dir / artifacts.CHECKPOINT)
        artifacts.finish_checkpoint(r.run_dir, result.to_dict(), keep_training_state=r.options.keep_checkpoints)
    close_trackers(r, result.status)
    return result


def close_trackers(r: RunState, status: str | None = None) -> None:
    """End ``r``'s trackers (``status``: how the run ended; ``None``: it stopped early). Only the first call counts."""
    if r.trackers is not None:
        r.trackers.close(status)
