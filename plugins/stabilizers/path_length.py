"""Path-length regularisation (Karras et al. 2020, StyleGAN2, arXiv:1912.04958, section 3.2).

A fixed-size step in w should move the image by a fixed amount whatever the direction: G is penalised by
``(|J_w^T y| - a)^2``, with ``J_w`` the Jacobian of the image with respect to w, ``y`` a random image of
N(0, 1) pixels divided by sqrt(H * W), and ``a`` the exponential moving average of the lengths seen so far.
It needs G's w, so it works with generators that expose their two halves (``StyleBasedGenerator``; the
registry pairs it only with generators tagged ``style_based``, such as ``stylegan2``).
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from ganzoo import Stabilizer, StepContext


@runtime_checkable
class StyleBasedGenerator(Protocol):
    """A generator whose forward pass is ``synthesis(mapping(z))``, with every styled layer's w exposed.

    - ``mapping(z)``: ``(B, latent_dim)`` -> ``ws`` of shape ``(B, num_ws, w_dim)``;
    - ``synthesis(ws)``: ``ws`` -> images ``(B, C, H, W)``, differentiable twice.
    """

    latent_dim: int

    def mapping(self, z: torch.Tensor) -> torch.Tensor: ...

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor: ...


def path_lengths(synthesis, ws: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample's ``|J_w^T y|``, averaged over the styled layers as StyleGAN2 does, and the images.

    Args:
        synthesis: ``ws -> images``.
        ws: ``(B, num_ws, w_dim)``, part of the graph the penalty trains.
        y: the random image directions; drawn N(0, 1) / sqrt(H * W) from the global stream when ``None``.

    Returns:
        ``(lengths (B,), images)``; the lengths keep the graph (``create_graph``) so that a penalty on them trains G.
    """
    images = synthesis(ws)
    if y is None:
        y = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
    (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
    return grad.pow(2).sum(dim=2).mean(dim=1).sqrt(), images


class PathLengthRegularizer(Stabilizer):
    """StyleGAN2's path-length penalty on G, lazily: every ``every`` G steps, weighted ``weight * every``.

    Each penalised step maps a fresh batch of ``batch_size / batch_shrink`` latents (the real batch's size over
    the shrink factor, at least one) and differentiates G's images with respect to their ws.

    Args:
        weight: the penalty's weight before the lazy scaling (StyleGAN2: 2).
        decay: of the moving average ``a`` of the path lengths (StyleGAN2: 0.01).
        every: the interval in G steps (StyleGAN2: 4).
        batch_shrink: the penalty's batch is the training batch divided by this (StyleGAN2: 2).
    """

    def __init__(self, weight: float = 2.0, decay: float = 0.01, every: int = 4, batch_shrink: int = 2):
        if weight < 0 or not 0.0 < decay <= 1.0:
            raise ValueError(f"pl_reg: need weight >= 0 and decay in (0, 1]; got weight={weight}, decay={decay}")
        for name, value in (("every", every), ("batch_shrink", batch_shrink)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"pl_reg: {name} must be an integer >= 1; got {value!r}")
        self.weight, self.decay, self.every, self.batch_shrink = float(weight), float(decay), every, batch_shrink
        self.g_steps = 0
        # StyleGAN2 starts the average at 0 too. It stays on G's device (float64): reading it back each penalised
        # step would stall a GPU; it becomes a float only in the checkpoint.
        self.mean_length = torch.zeros((), dtype=torch.float64)

    def wrap_generator(self, generator: nn.Module) -> nn.Module:
        if not isinstance(generator, StyleBasedGenerator):
            raise ValueError(f"pl_reg regularises w -> image, so it needs a style-based generator with mapping(z) -> "
                             f"ws and synthesis(ws) (such as stylegan2); {type(generator).__name__} has no such "
                             "methods: choose another stabilizer or a style-based generator")
        return generator

    def g_penalty(self, ctx: StepContext) -> torch.Tensor | None:
        due = self.g_steps % self.every == 0
        self.g_steps += 1
        if not due:
            return None
        if ctx.members is not None:
            raise ValueError("pl_reg is not registered vectorized: its runs train one by one")
        generator = ctx.generator
        batch = max(ctx.fake.shape[0] // self.batch_shrink, 1)
        z = torch.randn(batch, generator.latent_dim, device=ctx.fake.device)
        lengths, _ = path_lengths(generator.synthesis, generator.mapping(z))
        mean = self.mean_length.to(lengths.device)
        self.mean_length = mean + self.decay * (lengths.detach().double().mean() - mean)
        return self.weight * self.every * (lengths - self.mean_length.to(lengths.dtype)).pow(2).mean()

    def state_dict(self) -> dict:
        return {"g_steps": self.g_steps, "mean_length": float(self.mean_length)}

    def load_state_dict(self, state: dict) -> None:
        self.g_steps = int(state.get("g_steps", 0))
        self.mean_length = torch.tensor(float(state.get("mean_length", 0.0)), dtype=torch.float64)
