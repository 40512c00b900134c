"""One training run, top to bottom: build, (resume), train under the budget, evaluate, checkpoint.

The budget counts real images shown to D, so a stack with 5 D steps per G step gets the same data
as one with 1 (and fewer G steps): that is what makes combinations comparable.
"""

from __future__ import annotations

import contextlib
import math
import resource
import time
import traceback
from pathlib import Path

import torch

from . import artifacts
from .build import Models, build_models, eval_generator, resolve_device
from .contracts import StepContext
from .records import DIVERGED, DONE, FAILED, RunResult
from .registry import Registry, get_registry
from .spec import RunSpec

__all__ = ["RunResult", "run", "train"]  # RunResult lives in ganzoo.records; kept importable from here

EVAL_SEED_OFFSET = 1_000_003  # evaluation latents come from their own stream, fixed across evaluations
DIVERGENCE_CHECK_EVERY = 25  # G steps between checks for non-finite losses (a check syncs the device)


class Diverged(RuntimeError):
    """A loss or a generated sample became non-finite."""


def run(spec: RunSpec, run_dir: Path, device: str = "auto", registry: Registry | None = None) -> RunResult:
    """Train ``spec`` and never raise for a bad run: failures come back as ``FAILED`` with the traceback."""
    device = resolve_device(device)
    try:
        return train(spec, Path(run_dir), device, registry or get_registry())
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        return RunResult(spec.run_id, FAILED, error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}",
                         device=str(device))


def train(spec: RunSpec, run_dir: Path, device: torch.device, registry: Registry) -> RunResult:
    from .metrics import Evaluator  # heavy import, only for runs

    models = build_models(spec, registry, device)
    G, D, loss, stabilizers, optim = (models.generator, models.discriminator, models.loss, models.stabilizers,
                                      models.optim)
    opt_g = torch.optim.Adam(G.parameters(), lr=optim.lr_g, betas=optim.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=optim.lr_d, betas=optim.betas)
    evaluator = Evaluator(models.dataset, spec.protocol, device)
    data_rng = torch.Generator(device=device).manual_seed(spec.seed)
    batch, total_images = spec.budget.batch_size, int(spec.budget.kimg * 1000)
    eval_every = int((spec.budget.eval_every_kimg or spec.budget.kimg) * 1000)
    result = RunResult(spec.run_id, DONE, device=describe_device(device), protocol=evaluator.protocol_record(),
                       fingerprint=evaluator.fingerprint)
    d_kwargs = {k: v for s in stabilizers for k, v in s.d_loss_kwargs().items()}
    if torch.cuda.is_available() and device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    # Resume: everything that decides the next step (weights, optimisers, stabilizer state, RNG) is in the checkpoint.
    images, seconds = 0, 0.0
    checkpoint_path = run_dir / artifacts.CHECKPOINT
    if checkpoint_path.exists():
        state = artifacts.load_checkpoint(checkpoint_path, device)
        G.load_state_dict(state["generator"])
        D.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        for stabilizer, s_state in zip(stabilizers, state["stabilizers"], strict=True):
            stabilizer.load_state_dict(s_state)
        artifacts.restore_rng(data_rng, state["rng"])
        images, seconds = state["images"], state["seconds"]
        result.g_steps, result.d_steps, result.evals = state["g_steps"], state["d_steps"], state["evals"]
        result.eval_seconds = state["eval_seconds"]
    next_eval = (images // eval_every + 1) * eval_every
    ctx = StepContext(generator=G, discriminator=D, loss=loss)
    loss_sums = torch.zeros(2, device=device)  # running sums of (d_loss, g_loss) since the last evaluation
    loss_count = 0
    started = time.perf_counter() - seconds

    def augment(x):
        for stabilizer in stabilizers:
            x = stabilizer.augment(x, ctx)
        return x

    def penalties(kind):
        terms = [getattr(s, kind)(ctx) for s in stabilizers]
        return sum(t for t in terms if t is not None)

    while images < total_images:
        ctx.progress = images / total_images
        ctx.step = result.g_steps

        # Discriminator: learn to tell real from fake (G frozen: fakes are detached).
        for _ in range(optim.d_steps):
            real = models.dataset.sample(batch, data_rng)
            z = torch.randn(batch, G.latent_dim, generator=data_rng, device=device)
            with torch.no_grad():
                fake = G(z)
            ctx.real, ctx.fake = augment(real), augment(fake)
            ctx.real_logits, ctx.fake_logits = D(ctx.real).view(-1), D(ctx.fake).view(-1)
            d_loss = loss.d_loss(ctx.real_logits, ctx.fake_logits, **d_kwargs) + penalties("d_penalty")
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            for stabilizer in stabilizers:
                stabilizer.after_d_step(ctx)
            images += batch
            result.d_steps += 1

        # Generator: fool D. Relativistic losses also need D's view of real data.
        z = torch.randn(batch, G.latent_dim, generator=data_rng, device=device)
        ctx.fake = augment(G(z))
        ctx.fake_logits = D(ctx.fake).view(-1)
        ctx.real_logits = D(ctx.real.detach()).view(-1) if loss.uses_real_logits_in_g else None
        g_loss = loss.g_loss(ctx.fake_logits, ctx.real_logits) + penalties("g_penalty")
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for stabilizer in stabilizers:
            stabilizer.after_g_step(ctx)
        result.g_steps += 1

        loss_sums += torch.stack([d_loss.detach(), g_loss.detach()])
        loss_count += 1
        if result.g_steps % DIVERGENCE_CHECK_EVERY == 0 and not torch.isfinite(loss_sums).all():
            return _diverged(result, images, started, device, f"non-finite loss at G step {result.g_steps}")

        capped = spec.budget.max_seconds is not None and time.perf_counter() - started > spec.budget.max_seconds
        if images >= next_eval or images >= total_images or capped:
            # Evaluate, then checkpoint: a resumed run continues exactly where this one stands.
            if not torch.isfinite(loss_sums).all():
                return _diverged(result, images, started, device, f"non-finite loss before G step {result.g_steps}")
            eval_started = time.perf_counter()
            try:
                metrics = _evaluate(models, evaluator, spec, device)
            except Diverged as exc:
                return _diverged(result, images, started, device, str(exc))
            result.eval_seconds += time.perf_counter() - eval_started
            d_mean, g_mean = (loss_sums / max(loss_count, 1)).tolist()
            result.evals.append({"kimg": images / 1000, "g_steps": result.g_steps, "d_steps": result.d_steps,
                                 "seconds": time.perf_counter() - started, "d_loss": d_mean, "g_loss": g_mean,
                                 "metrics": metrics})
            loss_sums.zero_()
            loss_count = 0
            next_eval = (images // eval_every + 1) * eval_every  # a big step (5 D steps) may pass a mark
            artifacts.save_checkpoint({
                "spec": spec.canonical(), "generator": G.state_dict(), "discriminator": D.state_dict(),
                "generator_eval": eval_generator(models).state_dict(),
                "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                "stabilizers": [s.state_dict() for s in stabilizers], "rng": artifacts.rng_state(data_rng),
                "images": images, "seconds": time.perf_counter() - started, "g_steps": result.g_steps,
                "d_steps": result.d_steps, "evals": result.evals, "eval_seconds": result.eval_seconds,
            }, run_dir)
        if capped:
            result.capped = True
            break

    result.artifacts["samples"] = str(_save_samples(models, spec, device, run_dir))
    result.artifacts["checkpoint"] = str(checkpoint_path)
    return _finish(result, images, started, device)


@contextlib.contextmanager
def _evaluated_generator(models: Models, spec: RunSpec, device: torch.device):
    """The evaluated G in eval mode and a latent sampler that draws the same z at every evaluation."""
    G = eval_generator(models)
    was_training = G.training
    G.eval()
    rng = torch.Generator(device=device).manual_seed(spec.seed + EVAL_SEED_OFFSET)
    try:
        with torch.no_grad():
            yield lambda n: G(torch.randn(n, G.latent_dim, generator=rng, device=device))
    finally:
        G.train(was_training)


def _evaluate(models: Models, evaluator, spec: RunSpec, device: torch.device) -> dict[str, float]:
    """Metrics of the evaluated generator, plus the dataset's own measures on the same samples."""
    kept: list[torch.Tensor] = []
    with _evaluated_generator(models, spec, device) as generate:

        def sample(n: int) -> torch.Tensor:
            x = generate(n)
            if not torch.isfinite(x).all():
                raise Diverged("the generator produced non-finite samples")
            kept.append(x)
            return x

        metrics = dict(evaluator(sample))
        metrics.update(models.dataset.extra_metrics(torch.cat(kept)[: spec.protocol.n_fake]))
    return {k: float(v) for k, v in metrics.items()}


def _save_samples(models: Models, spec: RunSpec, device: torch.device, run_dir: Path) -> Path:
    n = 64 if models.dataset.spec.modality == "image" else 2000
    with _evaluated_generator(models, spec, device) as generate:
        samples = generate(n)
    real = models.dataset.reference(2000) if models.dataset.spec.modality == "vector" else None
    return artifacts.save_samples(samples, run_dir / artifacts.SAMPLES, real)


def describe_device(device: torch.device) -> str:
    """CPU results depend on the thread count (reduction order), so it is part of the record."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' if threads != 1 else ''})"


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (KiB on Linux)


def _finish(result: RunResult, images: int, started: float, device: torch.device) -> RunResult:
    result.kimg = images / 1000
    result.seconds = time.perf_counter() - started
    training_seconds = result.seconds - result.eval_seconds  # throughput of training alone, evaluation excluded
    result.imgs_per_s = images / training_seconds if training_seconds > 0 else math.nan
    result.peak_mem_mb = _peak_memory_mb(device)
    return result


def _diverged(result: RunResult, images: int, started: float, device: torch.device, why: str) -> RunResult:
    result.status, result.error = DIVERGED, why
    return _finish(result, images, started, device)
