"""Training the seeds of one experiment as one vectorised computation, each seed still its own run.

A *group* is K run specs that differ only by seed. Each member is built exactly as a single run builds it
(``ganzoo.train._build``: its seed fixes its initial weights and its data stream), then the members' G and D
are stacked (``StackedModule``) and trained together, top to bottom like ``ganzoo.train.train``:

1. every step, each member draws its real batch and latents from its own stream, in a single run's order;
2. one vmapped forward pass per network; the members' losses (shape ``(K,)``) are summed, and since no
   member's output depends on another's weights, the backward pass gives each member its own gradient;
3. one Adam over the stacked weights is K independent Adams (Adam is elementwise);
4. at each evaluation mark every member's weights, optimiser and stabilizer state are copied back into its
   own modules, and the single-run code evaluates and checkpoints it (``_evaluate_and_checkpoint``): its own
   evaluation latents, its own checkpoint, in the single-run format.

So a member's checkpoint resumes as a group member or as a single run alike, and a member whose loss turns
non-finite is recorded diverged and frozen while the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.func import vmap

from .. import artifacts
from .. import train as single
from ..conditional import discriminate, generate, is_conditional
from ..contracts import StepContext
from ..records import RunResult
from ..registry import Registry
from ..spec import RunSpec
from .stacked import StackedModule


class GroupStepContext(StepContext):
    """The ``StepContext`` of a group: tensors carry a leading member dimension ``(K, B, ...)``; ``generator`` and
    ``discriminator`` are ``StackedModule``s; penalties return one value per member, shape ``(K,)``.

    ``per_member(fn, *tensors)`` runs ``fn`` on each member's slice with that member's global random stream,
    so random draws inside a hook (augmentations, interpolation weights) are the ones its single run makes.
    """

    def __init__(self, *args, rng_states: list[torch.Tensor], device: torch.device, **kwargs):
        super().__init__(*args, **kwargs)
        self.members = len(rng_states)
        self._rng_states, self._device = rng_states, device

    def per_member(self, fn: Callable[..., torch.Tensor], *tensors: torch.Tensor) -> torch.Tensor:
        outputs = []
        with _global_stream(self._device) as stream:
            for k in range(self.members):
                stream.set(self._rng_states[k])
                outputs.append(fn(*(t[k] for t in tensors)))
                self._rng_states[k] = stream.get()
        return torch.stack(outputs)


def global_stream_state(device: torch.device) -> torch.Tensor:
    """The state of the global random stream that ``device``'s random ops draw from (CPU, or that GPU's)."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


class _global_stream:
    """Swap the global random stream of ``device`` (CPU or one GPU) in and out; restore the caller's on exit."""

    def __init__(self, device: torch.device):
        self.device = device

    def get(self) -> torch.Tensor:
        return global_stream_state(self.device)

    def set(self, state: torch.Tensor) -> None:
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(state, self.device)
        else:
            torch.set_rng_state(state)

    def __enter__(self):
        self.saved = self.get()
        return self

    def __exit__(self, *exc):
        self.set(self.saved)


def train_group(specs: Sequence[RunSpec], run_dirs: Sequence[Path], device: torch.device, registry: Registry,
                options: single.RunOptions = single.RunOptions()) -> list[RunResult]:
    """Train ``specs`` (one experiment, different seeds) as one stacked computation; one result per spec.

    Members that finished before return their recorded result. Members resumed from checkpoints at
    different points (a kill between two members' checkpoints) train in sub-groups of equal progress.
    """
    results: dict[str, RunResult] = {}
    members: list[single._Run] = []
    evaluator = None
    for spec, run_dir in zip(specs, run_dirs, strict=True):
        state = artifacts.load_run_checkpoint(Path(run_dir), device)
        if state is not None and artifacts.RESULT_KEY in state:
            results[spec.run_id] = RunResult.from_dict(state[artifacts.RESULT_KEY])
            continue
        r = build_member(spec, Path(run_dir), device, registry, options, evaluator)
        evaluator = r.evaluator
        if state is not None:
            single._restore(r, state)
        members.append(r)
    # Members at the same point train together (all of them, unless a kill split their checkpoints).
    by_progress: dict[tuple[int, int], list[single._Run]] = {}
    for r in members:
        by_progress.setdefault((r.images, r.result.g_steps), []).append(r)
    for subgroup in by_progress.values():
        for r, result in zip(subgroup, _train(subgroup, registry), strict=True):
            results[r.spec.run_id] = result
    return [results[spec.run_id] for spec in specs]


def build_member(spec: RunSpec, run_dir: Path, device: torch.device, registry: Registry,
                 options: single.RunOptions = single.RunOptions(), evaluator=None) -> single._Run:
    """A group member, built as its single run is built, so its global stream stands where its run's would.

    ``evaluator``: another member's, shared (built in a fork of the stream, it draws nothing a run would see).
    """
    r = single._build(spec, run_dir, device, registry, options, evaluator)
    r.global_rng = global_stream_state(device)
    r.started = time.perf_counter()
    return r


def _train(members: list[single._Run], registry: Registry) -> list[RunResult]:
    g = _Group(members, registry)
    budget, batch = g.spec.budget, g.spec.budget.batch_size
    next_eval = single._next_mark(budget.spent(g.images, g.g_steps), budget.eval_every)
    while (spent := budget.spent(g.images, g.g_steps)) < budget.total and g.active:
        g.ctx.progress, g.ctx.step = spent / budget.total, g.g_steps

        for _ in range(g.optim.d_steps):
            d_loss = g.d_step(batch)
            g.images += batch
            g.d_steps += 1
        g_loss = g.g_step(batch)
        g.g_steps += 1

        g.loss_sums += torch.stack([d_loss.detach().float(), g_loss.detach().float()], dim=1)
        g.loss_count += 1
        if g.g_steps % single.DIVERGENCE_CHECK_EVERY == 0:
            g.freeze_diverged(f"non-finite loss at G step {g.g_steps}")

        spent = budget.spent(g.images, g.g_steps)
        capped = budget.max_seconds is not None and time.perf_counter() - g.started > budget.max_seconds
        if spent >= next_eval or spent >= budget.total or capped:
            g.evaluate_and_checkpoint()
            next_eval = single._next_mark(spent, budget.eval_every)
        if capped:
            for r in g.active:
                r.result.capped = True
            break
    return g.finish()


class _Group:
    """The live state of a group: stacked G and D, their optimisers, the group's stabilizers, the members."""

    def __init__(self, members: list[single._Run], registry: Registry):
        self.members = members
        m0 = members[0]
        self.spec, self.device = m0.spec, m0.device
        self.optim, self.loss, self.d_loss_kwargs = m0.models.optim, m0.models.loss, m0.models.d_loss_kwargs
        self.K = len(members)
        self.conditional = is_conditional(m0.models.generator)  # G(z, y), D(x, y): labels stacked like the batches
        self.generator = StackedModule([r.models.generator for r in members])
        self.discriminator = StackedModule([r.models.discriminator for r in members])
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.optim.lr_g, betas=self.optim.betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.optim.lr_d, betas=self.optim.betas)
        _stack_adam(self.opt_g, self.generator, [(r.opt_g, r.models.generator) for r in members])
        _stack_adam(self.opt_d, self.discriminator, [(r.opt_d, r.models.discriminator) for r in members])
        # The group's own stabilizer objects act on the stacked modules; each starts from its members' states.
        self.stabilizers = [registry.get("stabilizer", ref.name).build(**ref.hparams) for ref in self.spec.stack]
        for k, stabilizer in enumerate(self.stabilizers):
            stabilizer.stack_members([r.models.stabilizers[k] for r in members], self.generator, self.discriminator)
        self.ctx = GroupStepContext(generator=self.generator, discriminator=self.discriminator, loss=self.loss,
                                    rng_states=[r.global_rng for r in members], device=self.device)
        self.images, self.g_steps, self.d_steps = m0.images, m0.result.g_steps, m0.result.d_steps
        self.loss_sums = torch.zeros(self.K, 2, device=self.device)
        self.loss_count = 0
        self.started = min(r.started for r in members)
        self.active = list(members)  # members still training (not diverged)
        self.done: dict[int, RunResult] = {}
        self.eval_seconds = 0.0
        size = f"vectorised, {self.K} seeds in one group"
        for r in members:
            r.result.device = f"{r.result.device}; {size}"

    # ---- one D and one G update of every member -------------------------------------------------------------
    def _draw(self, batch: int, real: bool) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor,
                                                     torch.Tensor | None]:
        """Each member's real batch (optional) and latents, and for a conditional G their labels, from its own
        stream in a single run's order (``ganzoo.train._d_step``: real with labels, z, G's labels)."""
        reals, real_labels, zs, fake_labels = [], [], [], []
        for r in self.members:
            if real and self.conditional:
                x, y = r.models.dataset.sample_labelled(batch, r.data_rng)
                reals.append(x)
                real_labels.append(y)
            elif real:
                reals.append(r.models.dataset.sample(batch, r.data_rng))
            zs.append(torch.randn(batch, r.models.generator.latent_dim, generator=r.data_rng, device=self.device))
            if self.conditional:
                fake_labels.append(single._fake_labels(r, batch))

        def stack(tensors: list[torch.Tensor]) -> torch.Tensor | None:
            return torch.stack(tensors) if tensors else None

        return stack(reals), stack(real_labels), torch.stack(zs), stack(fake_labels)

    def d_step(self, batch: int) -> torch.Tensor:
        ctx, kwargs = self.ctx, self.d_loss_kwargs
        real, ctx.real_labels, z, ctx.fake_labels = self._draw(batch, real=True)
        with torch.no_grad():
            fake = generate(self.generator, z, ctx.fake_labels)
        ctx.real, ctx.fake = single.augment(self.stabilizers, real, ctx), single.augment(self.stabilizers, fake, ctx)
        ctx.real_logits = discriminate(self.discriminator, ctx.real, ctx.real_labels).reshape(self.K, -1)
        ctx.fake_logits = discriminate(self.discriminator, ctx.fake, ctx.fake_labels).reshape(self.K, -1)
        d_loss = vmap(lambda r, f: self.loss.d_loss(r, f, **kwargs))(ctx.real_logits, ctx.fake_logits)
        d_loss = d_loss + single.penalties(self.stabilizers, "d_penalty", ctx)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.sum().backward()  # member k's loss depends on member k's weights only: K gradients at once
        for stabilizer in self.stabilizers:
            stabilizer.before_d_step(ctx)
        self.opt_d.step()
        for stabilizer in self.stabilizers:
            stabilizer.after_d_step(ctx)
        return d_loss

    def g_step(self, batch: int) -> torch.Tensor:
        ctx = self.ctx
        _, _, z, ctx.fake_labels = self._draw(batch, real=False)
        ctx.fake = single.augment(self.stabilizers, generate(self.generator, z, ctx.fake_labels), ctx)
        ctx.fake_logits = discriminate(self.discriminator, ctx.fake, ctx.fake_labels).reshape(self.K, -1)
        if self.loss.uses_real_logits_in_g:
            ctx.real_logits = discriminate(self.discriminator, ctx.real.detach(), ctx.real_labels).reshape(self.K, -1)
            g_loss = vmap(self.loss.g_loss)(ctx.fake_logits, ctx.real_logits)
        else:
            ctx.real_logits = None
            g_loss = vmap(self.loss.g_loss)(ctx.fake_logits)
        g_loss = g_loss + single.penalties(self.stabilizers, "g_penalty", ctx)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.sum().backward()
        for stabilizer in self.stabilizers:
            stabilizer.before_g_step(ctx)
        self.opt_g.step()
        for stabilizer in self.stabilizers:
            stabilizer.after_g_step(ctx)
        return g_loss

    # ---- members as runs ------------------------------------------------------------------------------------
    def _sync(self, k: int) -> single._Run:
        """Copy member k's slice of everything into its own run state, which the single-run code then reads."""
        r = self.members[k]
        self.generator.load_member(k, r.models.generator)
        self.discriminator.load_member(k, r.models.discriminator)
        _unstack_adam(self.opt_g, self.generator, k, r.opt_g, r.models.generator)
        _unstack_adam(self.opt_d, self.discriminator, k, r.opt_d, r.models.discriminator)
        for stabilizer, own in zip(self.stabilizers, r.models.stabilizers, strict=True):
            stabilizer.unstack_into(k, own)
        r.global_rng = self.ctx._rng_states[k]
        r.images, r.result.g_steps, r.result.d_steps = self.images, self.g_steps, self.d_steps
        r.loss_sums = self.loss_sums[k].clone()
        r.loss_count = self.loss_count
        return r

    def freeze_diverged(self, why: str) -> None:
        finite = torch.isfinite(self.loss_sums).all(dim=1).tolist()
        for k, r in enumerate(self.members):
            if r in self.active and not finite[k]:
                self._stop(k, why)

    def _stop(self, k: int, why: str) -> None:
        r = self._sync(k)
        self.active.remove(r)
        self.done[k] = single._diverged(r, why)

    def evaluate_and_checkpoint(self) -> None:
        started = time.perf_counter()
        for k, r in enumerate(self.members):
            if r not in self.active:
                continue
            diverged = single._evaluate_and_checkpoint(self._sync(k))
            if diverged:
                self.active.remove(r)
                self.done[k] = single._diverged(r, diverged)
        self.loss_sums.zero_()
        self.loss_count = 0
        self.eval_seconds += time.perf_counter() - started

    def finish(self) -> list[RunResult]:
        # Throughput of the group's training alone: every member trained for the whole of it, side by side.
        training = time.perf_counter() - self.started - self.eval_seconds
        for k, r in enumerate(self.members):
            if k in self.done:
                continue
            r = self._sync(k)
            r.result.artifacts["samples"] = str(single._save_samples(r))
            self.done[k] = single._finish(r)
        for k, result in self.done.items():
            result.seconds = time.perf_counter() - self.started
            if training > 0:
                result.imgs_per_s = self.members[k].images / training
        return [self.done[k] for k in range(self.K)]


def _stack_adam(group: torch.optim.Optimizer, stacked: StackedModule,
                members: list[tuple[torch.optim.Optimizer, torch.nn.Module]]) -> None:
    """Set the group's Adam state to the members' (resumed members have one; fresh members do not)."""
    states = [(opt, dict(module.named_parameters())) for opt, module in members]
    if not any(opt.state for opt, _ in states):
        return
    for name, param in stacked.stacked_parameters().items():
        per_member = [opt.state[params[name]] for opt, params in states]
        group.state[param] = {
            "step": per_member[0]["step"].clone(),
            "exp_avg": torch.stack([s["exp_avg"] for s in per_member]),
            "exp_avg_sq": torch.stack([s["exp_avg_sq"] for s in per_member]),
        }


def _unstack_adam(group: torch.optim.Optimizer, stacked: StackedModule, k: int, opt: torch.optim.Optimizer,
                  module: torch.nn.Module) -> None:
    own = dict(module.named_parameters())
    for name, param in stacked.stacked_parameters().items():
        state: dict[str, Any] = group.state.get(param, {})
        if state:
            opt.state[own[name]] = {"step": state["step"].clone(), "exp_avg": state["exp_avg"][k].clone(),
                                    "exp_avg_sq": state["exp_avg_sq"][k].clone()}
