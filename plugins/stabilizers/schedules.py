"""Stabilizers that change the schedule or targets of training rather than D's loss.

Instance noise is annealed over the budget; label smoothing lowers the real target; TTUR and D steps
set optimiser settings at build time through ``optim_overrides``.
"""

from __future__ import annotations

from typing import Any

import torch

from ganzoo import Stabilizer, StepContext


class InstanceNoise(Stabilizer):
    """Adds Gaussian noise to every batch D sees, with ``sigma = sigma0 * (1 - progress)``.

    Noise makes the real and generated distributions overlap, so D cannot separate them perfectly and its
    gradients stay informative early on; annealing it to 0 removes the bias by the end of the budget.
    """

    def __init__(self, sigma0: float = 0.1):
        if sigma0 < 0:
            raise ValueError(f"instance_noise: sigma0 must be >= 0, got {sigma0}")
        self.sigma0 = float(sigma0)

    def sigma(self, progress: float) -> float:
        """Noise level at ``progress`` in [0, 1] of the budget (clamped to that range)."""
        return self.sigma0 * (1.0 - min(max(float(progress), 0.0), 1.0))

    def augment(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        sigma = self.sigma(ctx.progress)
        if sigma == 0.0:
            return x
        return ctx.per_member(lambda t: t + sigma * torch.randn_like(t), x)  # a group member's own noise


class LabelSmoothing(Stabilizer):
    """One-sided label smoothing: D's target for real samples becomes ``real_target`` (fake stays 0)."""

    def __init__(self, real_target: float = 0.9):
        if not 0.0 < real_target <= 1.0:
            raise ValueError(f"label_smoothing: real_target must lie in (0, 1], got {real_target}")
        self.real_target = float(real_target)

    def d_loss_kwargs(self) -> dict[str, Any]:
        return {"real_target": self.real_target}


class TTUR(Stabilizer):
    """Two time-scale update rule: D learns faster than G.

    ``betas`` (optional) also sets Adam's betas, so that a stack can carry a paper's whole optimiser
    (WGAN-GP: rates 1e-4, betas (0.5, 0.9) on its toy data); ``None`` keeps the suite's.
    """

    def __init__(self, lr_g: float = 1e-4, lr_d: float = 4e-4, betas: list[float] | None = None):
        if lr_g <= 0 or lr_d <= 0:
            raise ValueError(f"ttur: learning rates must be > 0, got lr_g={lr_g}, lr_d={lr_d}")
        if betas is not None and (len(betas) != 2 or not all(0 <= b < 1 for b in betas)):
            raise ValueError(f"ttur: betas must be two numbers in [0, 1), got {betas}")
        self.lr_g, self.lr_d = float(lr_g), float(lr_d)
        self.betas = None if betas is None else (float(betas[0]), float(betas[1]))

    def optim_overrides(self) -> dict[str, Any]:
        overrides: dict[str, Any] = {"lr_g": self.lr_g, "lr_d": self.lr_d}
        if self.betas is not None:
            overrides["betas"] = self.betas
        return overrides


class DSteps(Stabilizer):
    """Several D (critic) steps per G step, so that D stays near its optimum."""

    def __init__(self, n: int = 5):
        if int(n) != n or n < 1:
            raise ValueError(f"d_steps: n must be a positive integer, got {n}")
        self.n = int(n)

    def optim_overrides(self) -> dict[str, Any]:
        return {"d_steps": self.n}
