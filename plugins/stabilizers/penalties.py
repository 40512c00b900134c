"""Penalty terms added to D's loss: gradient penalties, LeCam and balanced consistency regularisation.

The gradient penalties differentiate D with respect to its input, so they build the graph of that
gradient (``create_graph=True``) and their own backward pass reaches D's weights. They evaluate D once
more on inputs that require gradients, because the batch D saw in the loss term does not. A class-conditional
D is called with the labels of what it judges (``ctx.real_labels``, ``ctx.fake_labels``); WGAN-GP's
interpolates take the real sample's label, as in StudioGAN.
"""

from __future__ import annotations

import torch
from torch import nn

from ganzoo import Stabilizer, StepContext
from ganzoo.api.conditional import discriminate

from .diffaugment import random_translation


def _logits(discriminator: nn.Module, x: torch.Tensor, labels: torch.Tensor | None = None,
            batch_dims: int = 1) -> torch.Tensor:
    return discriminate(discriminator, x, labels).reshape(x.shape[:batch_dims])


def _mean(values: torch.Tensor, batch_dims: int = 1) -> torch.Tensor:
    """The mean over the batch: a scalar, or one per member ``(K,)`` in a vectorised group (``batch_dims`` 2)."""
    return values.mean() if batch_dims == 1 else values.mean(dim=-1)


def _require(ctx: StepContext, *names: str) -> None:
    missing = [name for name in names if getattr(ctx, name) is None]
    if missing:
        raise ValueError(f"This penalty needs ctx.{', ctx.'.join(missing)}, which the harness left empty")


def input_gradients(discriminator: nn.Module, x: torch.Tensor, labels: torch.Tensor | None = None,
                    batch_dims: int = 1) -> torch.Tensor:
    """Per-sample gradients of D's logit with respect to its input, flattened to ``(B, numel)``.

    Summing the logits before differentiating gives every sample its own gradient because each logit
    depends on its own input only (true for D without batch statistics, which these penalties assume). In a
    vectorised group (``batch_dims`` 2) the same holds across members: ``(K, B, numel)``.
    """
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(_logits(discriminator, x, labels, batch_dims).sum(), x, create_graph=True)
    return grad.flatten(batch_dims)


def gradient_penalty(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float = 10.0,
                     alpha: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                     batch_dims: int = 1) -> torch.Tensor:
    """WGAN-GP: ``weight * E[(||grad D(x_hat)|| - 1)^2]`` at ``x_hat = alpha * real + (1 - alpha) * fake``.

    Args:
        discriminator: the critic.
        real, fake: batches of the same shape.
        weight: the penalty coefficient (lambda = 10 in the paper).
        alpha: per-sample mixing weights ``(B,)``; drawn from U(0, 1) when ``None``.
        labels: the labels a conditional D judges the interpolates by (the real batch's).
        batch_dims: 2 in a vectorised group (``(K, B, ...)`` batches, ``(K, B)`` alpha, a ``(K,)`` penalty).
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty interpolates real and fake batches of one shape, got "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}")
    if alpha is None:
        alpha = torch.rand(real.shape[0], device=real.device)
    alpha = alpha.to(real.dtype).view(*alpha.shape, *([1] * (real.dim() - alpha.dim())))  # per sample
    mixed = alpha * real.detach() + (1.0 - alpha) * fake.detach()
    norms = input_gradients(discriminator, mixed, labels, batch_dims).norm(dim=-1)
    return weight * _mean((norms - 1.0).pow(2), batch_dims)


def squared_gradient_penalty(discriminator: nn.Module, x: torch.Tensor, gamma: float = 10.0,
                             labels: torch.Tensor | None = None, batch_dims: int = 1) -> torch.Tensor:
    """``gamma / 2 * E[||grad D(x)||^2]``: R1 when ``x`` is real, R2 when it is generated."""
    return 0.5 * gamma * _mean(input_gradients(discriminator, x, labels, batch_dims).pow(2).sum(dim=-1), batch_dims)


class GradientPenalty(Stabilizer):
    """WGAN-GP on random interpolates of the real and fake batches D saw."""

    def __init__(self, weight: float = 10.0):
        if weight < 0:
            raise ValueError(f"gradient_penalty: weight must be >= 0, got {weight}")
        self.weight = float(weight)

    def d_penalty(self, ctx: StepContext) -> torch.Tensor:
        _require(ctx, "real", "fake")
        # The mixing weights come from the global stream, drawn per member in a vectorised group.
        alpha = ctx.per_member(lambda real: torch.rand(real.shape[0], device=real.device), ctx.real)
        return gradient_penalty(ctx.discriminator, ctx.real, ctx.fake, self.weight, alpha, ctx.real_labels,
                                ctx.batch_dims)


class R1Penalty(Stabilizer):
    """Zero-centred gradient penalty on real data (R1), or on generated data with ``on="fake"`` (R2)."""

    def __init__(self, gamma: float = 10.0, on: str = "real"):
        if gamma < 0:
            raise ValueError(f"r1/r2: gamma must be >= 0, got {gamma}")
        if on not in ("real", "fake"):
            raise ValueError(f'r1/r2: on must be "real" or "fake", got "{on}"')
        self.gamma, self.on = float(gamma), on

    def d_penalty(self, ctx: StepContext) -> torch.Tensor:
        _require(ctx, self.on)
        return squared_gradient_penalty(ctx.discriminator, getattr(ctx, self.on), self.gamma,
                                        getattr(ctx, f"{self.on}_labels"), ctx.batch_dims)


def r1(gamma: float = 10.0) -> R1Penalty:
    """R1 regulariser (factory registered as ``r1``)."""
    return R1Penalty(gamma, on="real")


def r2(gamma: float = 10.0) -> R1Penalty:
    """R2 regulariser (factory registered as ``r2``)."""
    return R1Penalty(gamma, on="fake")


class LazyR1(Stabilizer):
    """R1 every ``every`` D steps with ``gamma * every`` (StyleGAN2's lazy regularisation), nothing in between.

    Scaling gamma by the interval keeps the penalty's average weight per step that of plain R1 at ``gamma``, for a
    ``1 / every`` share of R1's double-backward cost. It runs on the first D step and every ``every``-th after it;
    the count of D steps is in the checkpoint.

    Args:
        gamma: R1's weight before the scaling (StyleGAN2: 10 at 1024px, 0.01 at CIFAR size in StyleGAN2-ADA).
        every: the interval in D steps (StyleGAN2: 16).
    """

    def __init__(self, gamma: float = 10.0, every: int = 16):
        if gamma < 0 or not isinstance(every, int) or every < 1:
            raise ValueError(f"r1_lazy: need gamma >= 0 and an integer every >= 1; got gamma={gamma}, every={every!r}")
        self.gamma, self.every = float(gamma), every
        self.d_steps = 0  # D steps taken, whether penalised or not

    def d_penalty(self, ctx: StepContext) -> torch.Tensor | None:
        due = self.d_steps % self.every == 0
        self.d_steps += 1
        if not due:
            return None
        _require(ctx, "real")
        return squared_gradient_penalty(ctx.discriminator, ctx.real, self.gamma * self.every, ctx.real_labels,
                                        ctx.batch_dims)

    def state_dict(self) -> dict:
        return {"d_steps": self.d_steps}

    def load_state_dict(self, state: dict) -> None:
        self.d_steps = int(state.get("d_steps", 0))

    # The members of a vectorised group step in lockstep: one count serves them all.
    def stack_members(self, members: list[LazyR1], generator: nn.Module, discriminator: nn.Module) -> None:
        self.d_steps = members[0].d_steps

    def unstack_into(self, k: int, member: LazyR1) -> None:
        member.d_steps = self.d_steps


def lecam_penalty(real_logits: torch.Tensor, fake_logits: torch.Tensor, anchor_real: float,
                  anchor_fake: float, batch_dims: int = 1) -> torch.Tensor:
    """``E[(D(x) - anchor_fake)^2] + E[(D(G(z)) - anchor_real)^2]`` (Tseng et al. 2021, Eq. 3, without the weight).

    In a vectorised group (``batch_dims`` 2) the logits are ``(K, B)``, the anchors ``(K,)``, the result ``(K,)``.
    """
    if batch_dims == 1:
        return ((real_logits.reshape(-1) - anchor_fake).pow(2).mean()
                + (fake_logits.reshape(-1) - anchor_real).pow(2).mean())
    anchor_real, anchor_fake = anchor_real.unsqueeze(-1), anchor_fake.unsqueeze(-1)
    return (real_logits - anchor_fake).pow(2).mean(-1) + (fake_logits - anchor_real).pow(2).mean(-1)


class LeCam(Stabilizer):
    """LeCam regularisation: pull D's real logits towards the running mean of its fake logits and vice versa.

    Args:
        weight: lambda; 0.3 is the paper's value for CIFAR-scale BigGAN.
        decay: of the exponential moving averages ("anchors") of the mean real and fake logits.
    """

    def __init__(self, weight: float = 0.3, decay: float = 0.99):
        if weight < 0 or not 0.0 <= decay < 1.0:
            raise ValueError(f"lecam: need weight >= 0 and decay in [0, 1), got weight={weight}, decay={decay}")
        self.weight, self.decay = float(weight), float(decay)
        # The anchors stay on D's device (float64, as Python floats would be): reading them back every D
        # step would stall a GPU on each one. They become floats only in the checkpoint.
        self.anchor_real: torch.Tensor | None = None
        self.anchor_fake: torch.Tensor | None = None

    def d_penalty(self, ctx: StepContext) -> torch.Tensor:
        _require(ctx, "real_logits", "fake_logits")
        # Before the first update the anchors are the current batch means (detached), not an arbitrary 0.
        dims = ctx.batch_dims
        anchor_real = _batch_mean(ctx.real_logits, dims) if self.anchor_real is None else self.anchor_real
        anchor_fake = _batch_mean(ctx.fake_logits, dims) if self.anchor_fake is None else self.anchor_fake
        return self.weight * lecam_penalty(ctx.real_logits, ctx.fake_logits, anchor_real, anchor_fake, dims)

    def after_d_step(self, ctx: StepContext) -> None:
        dims = ctx.batch_dims
        real_mean, fake_mean = _batch_mean(ctx.real_logits, dims), _batch_mean(ctx.fake_logits, dims)
        if self.anchor_real is None:
            self.anchor_real, self.anchor_fake = real_mean, fake_mean
            return
        self.anchor_real = self.decay * self.anchor_real + (1.0 - self.decay) * real_mean
        self.anchor_fake = self.decay * self.anchor_fake + (1.0 - self.decay) * fake_mean

    def state_dict(self) -> dict:
        if self.anchor_real is None:
            return {}
        return {"anchor_real": float(self.anchor_real), "anchor_fake": float(self.anchor_fake)}

    def load_state_dict(self, state: dict) -> None:
        self.anchor_real, self.anchor_fake = (
            None if state.get(key) is None else torch.tensor(state[key], dtype=torch.float64)
            for key in ("anchor_real", "anchor_fake"))

    # In a vectorised group the anchors are one per member, shape (K,).
    def stack_members(self, members: list[LeCam], generator: nn.Module, discriminator: nn.Module) -> None:
        if members[0].anchor_real is None:
            return
        device = next(discriminator.parameters()).device
        self.anchor_real, self.anchor_fake = (torch.stack([getattr(m, key) for m in members]).to(device)
                                              for key in ("anchor_real", "anchor_fake"))

    def unstack_into(self, k: int, member: LeCam) -> None:
        if self.anchor_real is not None:
            member.anchor_real, member.anchor_fake = self.anchor_real[k].clone(), self.anchor_fake[k].clone()


def _batch_mean(logits: torch.Tensor, batch_dims: int = 1) -> torch.Tensor:
    """The detached mean logit in float64, where it stays (no read-back to the host); ``(K,)`` in a group."""
    return logits.detach().mean().double() if batch_dims == 1 else logits.detach().mean(-1).double()


def random_flip(x: torch.Tensor) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], device=x.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


class BalancedConsistency(Stabilizer):
    """bCR: D should give an image and its augmented copy the same logit, for real and for generated images.

    Adds ``lambda_real * E[(D(x) - D(T(x)))^2] + lambda_fake * E[(D(G(z)) - D(T(G(z))))^2]`` with T a random
    horizontal flip followed by a translation, the augmentation of Zhao et al. for CIFAR-10. T must not
    change what an image shows: a flipped digit is another symbol, so suites turn ``flip`` off for digits.

    Args:
        lambda_real, lambda_fake: weights of the two terms (10 and 10 in the paper).
        translation_ratio: largest shift as a fraction of the image size (1/8 is 4 pixels at 32x32).
        flip: include the random horizontal flip (label-preserving on natural images, not on digits).
    """

    def __init__(self, lambda_real: float = 10.0, lambda_fake: float = 10.0, translation_ratio: float = 0.125,
                 flip: bool = True):
        if lambda_real < 0 or lambda_fake < 0:
            raise ValueError(f"consistency: lambdas must be >= 0, got {lambda_real} and {lambda_fake}")
        self.lambda_real, self.lambda_fake = float(lambda_real), float(lambda_fake)
        self.translation_ratio = float(translation_ratio)
        self.flip = bool(flip)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"consistency augments image batches (B, C, H, W), got {tuple(x.shape)}")
        return random_translation(random_flip(x) if self.flip else x, self.translation_ratio)

    def d_penalty(self, ctx: StepContext) -> torch.Tensor:
        _require(ctx, "real", "fake", "real_logits", "fake_logits")
        discriminator, dims = ctx.discriminator, ctx.batch_dims
        # The transforms draw from the global stream: per member in a vectorised group (ctx.per_member).
        real_gap = (_logits(discriminator, ctx.per_member(self.transform, ctx.real.detach()), ctx.real_labels, dims)
                    - ctx.real_logits.reshape(*ctx.real_logits.shape[:dims - 1], -1))
        fake_gap = (_logits(discriminator, ctx.per_member(self.transform, ctx.fake.detach()), ctx.fake_labels, dims)
                    - ctx.fake_logits.reshape(*ctx.fake_logits.shape[:dims - 1], -1))
        return self.lambda_real * _mean(real_gap.pow(2), dims) + self.lambda_fake * _mean(fake_gap.pow(2), dims)
