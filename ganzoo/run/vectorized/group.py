"""Training the seeds of one experiment as one vectorised computation, each seed still its own run.

A *group* is K run specs that differ only by seed. Each member is built exactly as a single run builds it
(``ganzoo.run.train.build_run``: its seed fixes its initial weights and its data stream), then the members' G and D
are stacked (``StackedModule``) and trained by the single run's own loop and steps (``ganzoo.run.train.train_loop``,
``d_step``, ``g_step``); ``Group`` says only how a batch is drawn and how the networks and the loss are called:

1. every step, each member draws its real batch and latents from its own stream, in a single run's order;
2. one vmapped forward pass per network; the members' losses (shape ``(K,)``) are summed, and since no
   member's output depends on another's weights, the backward pass gives each member its own gradient;
3. one Adam over the stacked weights is K independent Adams (Adam is elementwise);
4. at each evaluation mark every member's weights, optimiser and stabilizer state are copied back into its
   own modules (``Group.sync``), and the single-run code evaluates and checkpoints it: its own evaluation
   latents, its own checkpoint, in the single-run format.

So a member's checkpoint resumes as a group member or as a single run alike, and a member whose loss turns
non-finite ends diverged (``ganzoo.run.train.Training.end_diverged``) while the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.func import vmap

from ...api.contracts import StepContext
from ...core.records import RunResult
from ...core.registry import Registry
from ...core.spec import RunSpec
from .. import artifacts, attempts
from ..train import RunOptions, RunState, Training, build_run, close_trackers, draw_batch, restore, train_loop
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
        self.rng_states, self._device = rng_states, device

    def per_member(self, fn: Callable[..., torch.Tensor], *tensors: torch.Tensor) -> torch.Tensor:
        outputs = []
        with _global_stream(self._device) as stream:
            for k in range(self.members):
                stream.set(self.rng_states[k])
                outputs.append(fn(*(t[k] for t in tensors)))
                self.rng_states[k] = stream.get()
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
                options: RunOptions = RunOptions()) -> list[RunResult]:
    """Train ``specs`` (one experiment, different seeds) as one stacked computation; one result per spec.

    Members that finished before return their recorded result. Members resumed from checkpoints at
    different points (a kill between two members' checkpoints) train in sub-groups of equal progress.
    """
    results: dict[str, RunResult] = {}
    members: list[RunState] = []
    evaluator = None
    for spec, run_dir in zip(specs, run_dirs, strict=True):
        checkpoint = artifacts.load_run_checkpoint(Path(run_dir), device)
        if checkpoint is not None and checkpoint.is_finished:
            results[spec.run_id] = RunResult.from_dict(checkpoint.result)
            continue
        resumed_from = checkpoint.g_steps if checkpoint is not None else 0
        attempt = attempts.record_start(Path(run_dir), resumed_from)
        r = build_member(spec, Path(run_dir), device, registry, options, evaluator)
        r.result.attempts, r.result.resumed_from = attempt, resumed_from
        evaluator = r.evaluator
        if checkpoint is not None:
            restore(r, checkpoint)
        members.append(r)
    # Members at the same point train together (all of them, unless a kill split their checkpoints).
    by_progress: dict[tuple[int, int], list[RunState]] = {}
    for r in members:
        by_progress.setdefault((r.images, r.result.g_steps), []).append(r)
    try:
        for subgroup in by_progress.values():
            for r, result in zip(subgroup, train_loop(Group(subgroup, registry)), strict=True):
                results[r.spec.run_id] = result
    finally:
        for r in members:
            close_trackers(r)  # members whose group raised; the others have closed theirs
    return [results[spec.run_id] for spec in specs]


def build_member(spec: RunSpec, run_dir: Path, device: torch.device, registry: Registry,
                 options: RunOptions = RunOptions(), evaluator=None) -> RunState:
    """A group member, built as its single run is built, so its global stream stands where its run's would.

    ``evaluator``: another member's, shared (built in a fork of the stream, it draws nothing a run would see).
    """
    r = build_run(spec, run_dir, device, registry, options, evaluator)
    r.global_rng = global_stream_state(device)
    r.started = time.perf_counter()
    return r


class Group(Training):
    """K members trained as one: stacked G and D, one Adam over the stacks, the group's own stabilizers."""

    def __init__(self, members: list[RunState], registry: Registry):
        super().__init__(members)
        m0 = members[0].models
        self.K = len(members)
        self.optim, self.loss, self.d_loss_kwargs = m0.optim, m0.loss, m0.d_loss_kwargs
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
        size = f"vectorised, {self.K} seeds in one group"
        for r in members:
            r.result.device = f"{r.result.device}; {size}"

    # ---- how a group draws and calls ----------------------------------------------------------------------
    def draw(self, batch: int, real: bool):
        """Each member's batch from its own stream in a single run's order (``ganzoo.run.train.draw_batch``), stacked
        along a new first dimension. Every member draws, those that have ended too: the stacks still hold them."""
        drawn = [draw_batch(r, batch, real) for r in self.members]
        return tuple(None if parts[0] is None else torch.stack(parts) for parts in zip(*drawn, strict=True))

    def logits(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.reshape(self.K, -1)

    def losses(self, fn: Callable[..., torch.Tensor], *logits: torch.Tensor) -> torch.Tensor:
        return vmap(fn)(*logits)  # one loss per member, shape (K,)

    def sync(self, k: int) -> RunState:
        """Copy member k's slice of everything into its own run state, which the single-run code then reads."""
        r = self.members[k]
        self.generator.load_member(k, r.models.generator)
        self.discriminator.load_member(k, r.models.discriminator)
        _unstack_adam(self.opt_g, self.generator, k, r.opt_g, r.models.generator)
        _unstack_adam(self.opt_d, self.discriminator, k, r.opt_d, r.models.discriminator)
        for stabilizer, own in zip(self.stabilizers, r.models.stabilizers, strict=True):
            stabilizer.unstack_into(k, own)
        r.global_rng = self.ctx.rng_states[k]
        return super().sync(k)

    def finish(self) -> list[RunResult]:
        # Throughput of the group's training alone: every member trained for the whole of it, side by side.
        training = time.perf_counter() - self.started - self.eval_seconds
        results = super().finish()
        for r, result in zip(self.members, results, strict=True):
            result.seconds = time.perf_counter() - self.started
            if training > 0:
                result.imgs_per_s = r.images / training
        return results


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
