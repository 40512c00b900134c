"""PacGAN packing: D judges m samples at once, all real or all generated.

Lin et al. 2018 concatenate m samples into one input of D, which outputs one logit for the pack; G is
unchanged and the loss is the usual one over packs. A generator that covers few modes produces packs
whose members look alike, which D can tell from real packs even when each member alone looks real: the
pack makes mode collapse visible to D. For vectors the pack is the (m * D)-dimensional concatenation and
D keeps its architecture with a wider first layer; for images the members are stacked along channels.

The batch still counts samples: a batch of 100 is 50 packs of 2, so a packed run sees the same data as
an unpacked one under the same budget. A pack's gradient mixes its members, so penalties on the gradient
of D at single samples (WGAN-GP, R1, R2) are undefined for it; the registration keeps them apart.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ganzoo import DataSpec, Stabilizer


class Packed(nn.Module):
    """Feeds ``discriminator`` packs of ``m`` consecutive samples: ``(B, *shape) -> (B / m, m * shape[0], ...)``."""

    def __init__(self, discriminator: nn.Module, m: int):
        super().__init__()
        self.discriminator = discriminator
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        if batch % self.m:
            raise ValueError(f"pac: D got a batch of {batch} samples, which is not a multiple of the pack size "
                             f"m={self.m}; choose a batch_size divisible by {self.m}")
        # Row-major reshape puts sample i's features (or channels) right before sample i+1's.
        return self.discriminator(x.reshape(batch // self.m, self.m * x.shape[1], *x.shape[2:]))


class Pac(Stabilizer):
    """PacGAN: D is built for packs of ``m`` samples and sees every batch as packs.

    Args:
        m: samples per pack (PacGAN2: 2); 1 is an unpacked GAN.
    """

    def __init__(self, m: int = 2):
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"pac: m (samples per pack) must be an integer >= 1, got {m!r}")
        self.m = m

    def discriminator_spec(self, spec: DataSpec) -> DataSpec:
        return replace(spec, shape=(self.m * spec.shape[0], *spec.shape[1:]))

    def wrap_discriminator(self, discriminator: nn.Module) -> nn.Module:
        return Packed(discriminator, self.m)
