"""Exponential moving average of the generator's weights, the copy that is evaluated.

Yazıcı et al. 2019 show that averaging G's weights over training smooths out the oscillation of the
adversarial game and improves IS/FID at no training cost. After every G step the shadow copy moves
towards the live weights: ``shadow <- decay * shadow + (1 - decay) * weight``; buffers (e.g. BatchNorm
statistics) are copied as they are.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ganzoo import Stabilizer, StepContext


class EMA(Stabilizer):
    """Keeps an averaged copy of G and hands it to evaluation.

    Args:
        decay: weight of the old average at each update (0.999, the value of Karras et al. 2018, Progressive GAN).
        start_step: until this G step the shadow just copies G, so that the average does not remember
            the first, poor weights.
        warmup: use ``min(decay, (1 + t) / (10 + t))`` at the t-th averaged step (the ``num_updates`` rule of
            TensorFlow's ExponentialMovingAverage). Without it a 0.999 average needs thousands of steps to
            forget the initial weights, which is longer than a small budget: the evaluated copy would be
            mostly the untrained G.
    """

    def __init__(self, decay: float = 0.999, start_step: int = 0, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema: decay must lie in [0, 1), got {decay}")
        if int(start_step) < 0:
            raise ValueError(f"ema: start_step must be >= 0, got {start_step}")
        self.decay, self.start_step, self.warmup = float(decay), int(start_step), bool(warmup)
        self.shadow: nn.Module | None = None
        self.num_updates = 0
        self._pending_state: dict | None = None

    def _shadow_of(self, generator: nn.Module) -> nn.Module:
        """The shadow copy, (re)made from ``generator`` when missing or when G's structure changed after it was made."""
        # A stabilizer later in the stack may wrap G (e.g. spectral norm renames `weight`), so compare names.
        if self.shadow is None or self.shadow.state_dict().keys() != generator.state_dict().keys():
            self.shadow = copy.deepcopy(generator).requires_grad_(False)
            if self._pending_state is not None:
                self.shadow.load_state_dict(self._pending_state)
                self._pending_state = None
        live = next(generator.parameters(), None)
        shadow = next(self.shadow.parameters(), None)
        if live is not None and shadow is not None and shadow.device != live.device:
            self.shadow.to(live.device)  # the harness may move G to the device after wrapping it
        return self.shadow

    def wrap_generator(self, generator: nn.Module) -> nn.Module:
        self._shadow_of(generator)  # start the average from the initial weights
        return generator

    @torch.no_grad()
    def update(self, generator: nn.Module, step: int) -> None:
        """Move the shadow towards ``generator`` (or copy it while ``step < start_step``)."""
        shadow = self._shadow_of(generator)
        decay = self.decay if step >= self.start_step else 0.0
        if self.warmup and step >= self.start_step:
            averaged = step - self.start_step
            decay = min(decay, (1 + averaged) / (10 + averaged))
        live = dict(generator.named_parameters())
        for name, average in shadow.named_parameters():
            average.lerp_(live[name].detach(), 1.0 - decay)
        live_buffers = dict(generator.named_buffers())
        for name, buffer in shadow.named_buffers():
            buffer.copy_(live_buffers[name])
        self.num_updates += 1

    def after_g_step(self, ctx: StepContext) -> None:
        self.update(ctx.generator, ctx.step)

    def eval_generator(self, generator: nn.Module) -> nn.Module:
        return self._shadow_of(generator)

    def state_dict(self) -> dict:
        state = {"decay": self.decay, "num_updates": self.num_updates}
        if self.shadow is not None:
            state["shadow"] = self.shadow.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.num_updates = int(state.get("num_updates", 0))
        shadow_state = state.get("shadow")
        if shadow_state is None:
            return
        if self.shadow is None:
            self._pending_state = shadow_state  # applied when the shadow is made from G
        else:
            self.shadow.load_state_dict(shadow_state)

    # A vectorised group averages the stacked G (a StackedModule) in one go: the decay depends on the step alone,
    # the same for every member, so each member's slice of the stacked average is exactly its own average.
    def stack_members(self, members: list[EMA], generator: nn.Module, discriminator: nn.Module) -> None:
        from ganzoo.run.vectorized import StackedModule

        self.shadow = StackedModule([member.shadow for member in members]).requires_grad_(False)
        self.num_updates = members[0].num_updates

    def unstack_into(self, k: int, member: EMA) -> None:
        self.shadow.load_member(k, member.shadow)
        member.num_updates = self.num_updates
